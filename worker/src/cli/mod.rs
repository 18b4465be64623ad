//! The `refrain` command line: list, inspect, start, signal, decide,
//! export and replay workflows, in a store directory (`--db DIR`) or
//! through a running server (`--server URL`).
//!
//! ```text
//! refrain --db DIR list [--status running|completed|failed|continued-as-new|cancelled|terminated] [--type T] [--limit N [--after CURSOR]]
//! refrain --db DIR describe ID
//! refrain --db DIR history ID [--run N]
//! refrain --db DIR export ID --out FILE [--run N]     # FILE.json: JSON, else binary
//! refrain --db DIR signal ID NAME JSON [--sender WHO]
//! refrain --db DIR cancel ID [--reason WHY] [--by WHO]
//! refrain --db DIR terminate ID --reason WHY
//! refrain --db DIR start TYPE ID JSON [--on-conflict fail|attach-to-open|use-existing]
//! refrain --db DIR tasks --assignee NAME
//! refrain --db DIR decide RUN/CMD JSON --as NAME [--comment WHY]
//! refrain --db DIR schedules [list | describe ID | pause ID | resume ID | trigger ID]
//! refrain --db DIR purge --older-than 30d [--type T] [--export DIR] [--dry-run]
//! refrain --db DIR verify
//! refrain --db DIR serve [--bind ADDR] [--identities FILE]
//! refrain replay FILE_OR_DIR...
//! refrain token
//!
//! REFRAIN_TOKEN=… refrain --server http://127.0.0.1:8233 VERB …
//!     every verb above but verify, replay, serve and token, plus
//!     query ID NAME [JSON], update ID NAME JSON [--update-id X],
//!     tasks (the token's inbox)
//! ```
//!
//! `--db` may also come from the `REFRAIN_DB` environment variable,
//! `--server` from `REFRAIN_SERVER`; the access token only ever comes from
//! `REFRAIN_TOKEN` (a flag would show in shell history and `ps`). Through
//! a server, the token's identity is the actor recorded (signal sender,
//! cancellation requester, decider); `--sender`, `--by` and `--as` are for
//! stores only. `--json` prints the HTTP API's JSON instead of text, on a
//! store as through a server. See [`remote`](self) for the exit codes of
//! the API's errors: 401 and 403 exit with 2.
//!
//! `list`, `describe` and `history` read through the [`HistoryStore`]
//! seam, as any client of the store would (`list` page by page; with
//! `--limit` it prints one page and the cursor of the next); `verify` and
//! `export` read the sled store itself.
//!
//! [`HistoryStore`]: refrain_history::HistoryStore
//!
//! sled lets one process at a time open a store, so these commands work on
//! a store whose application is stopped; while it runs they fail at once
//! with a one-line "locked" error (exit code 2) and touch nothing.
//!
//! A store whose data file lost acknowledged data is refused by the
//! application (`Damaged`). `verify` then lists every damaged run without
//! writing to the store (it reads a copy), and `list`, `describe`,
//! `history` and `export` read the same copy, so intact runs can still be
//! exported; a damaged run is refused by name. Commands that write
//! (`signal`, `cancel`, `terminate`) refuse a damaged store.
//!
//! Replaying needs the workflow code, which the stock `refrain` binary does
//! not have. Give your application (or a small binary next to it) the same
//! command line with its workflows registered:
//!
//! ```no_run
//! # use refrain::{Workflow, WorkflowContext, WorkflowError};
//! # struct OrderToCash;
//! # impl Workflow for OrderToCash {
//! #     const NAME: &'static str = "order-to-cash";
//! #     type Input = ();
//! #     type Output = ();
//! #     async fn run(_: WorkflowContext, _: ()) -> Result<(), WorkflowError> { Ok(()) }
//! # }
//! // src/bin/refrain.rs
//! fn main() -> std::process::ExitCode {
//!     refrain_worker::cli::run(refrain_worker::Replayer::new().workflow::<OrderToCash>())
//! }
//! ```
//!
//! Exit codes: 0 success; 1 the command failed (unknown id, bad JSON, a
//! history that does not replay, refused by the API); 2 the command could
//! not run at all (usage error, store missing or locked, nothing to replay
//! with, no server at the URL, a token missing, unknown or not allowed).

mod args;
mod commands;
mod describe;
mod format;
mod local;
mod purge;
mod remote;
mod serve;
mod timeline;
mod verify;

use crate::replayer::Replayer;
use crate::shadow::ShadowSource;
use args::{Cli, Command};
use commands::{export, list, replay, shadow, signal, ListArgs};
use describe::describe;
use refrain::history_file::HistoryExport;
use refrain_history::{
    HistoryStore, Payload, ReadError, RunId, RunRecord, Store, StoreConfig, StoreError, Timestamp,
    WorkflowId,
};
use std::ffi::OsString;
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use timeline::history;

/// Runs the command line with the process arguments and `replayer`'s
/// workflow types for `replay`. Call it from a plain `fn main` (it does
/// its own blocking; inside an async runtime it moves to a thread of its
/// own).
pub fn run(replayer: Replayer) -> ExitCode {
    run_with_args(replayer, std::env::args_os())
}

/// Like [`run`] with explicit arguments; the first is the program name.
/// The access token of `--server` comes from `REFRAIN_TOKEN`.
pub fn run_with_args<I, T>(replayer: Replayer, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let token = std::env::var("REFRAIN_TOKEN").ok();
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let code = on_own_thread(move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let mut err = std::io::stderr();
        run_inner(&replayer, args, token.as_deref(), &mut out, &mut err)
    });
    ExitCode::from(code)
}

/// What [`run_captured`] printed, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The exit code [`run`] would exit with.
    pub code: u8,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr (its error line, usage errors).
    pub stderr: String,
}

/// Runs the command line with `args` (the first is the program name) and
/// `token` as the access token of `--server` instead of `REFRAIN_TOKEN`,
/// and returns what it printed: for programs that run commands on behalf
/// of someone, and for tests (which run side by side, so cannot share the
/// process environment). `serve` still prints its address and login link
/// on the process's stderr.
pub fn run_captured<I, T>(replayer: Replayer, args: I, token: Option<&str>) -> Captured
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let token = token.map(str::to_owned);
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let code = on_own_thread(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_inner(&replayer, args, token.as_deref(), &mut out, &mut err);
        let _ = tx.send((out, err));
        code
    });
    let (out, err) = rx.recv().unwrap_or_default();
    Captured {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// Runs `f` on a thread of its own: Store::durable_blocking panics inside
/// a tokio runtime, and workflow code must be replayed outside one.
fn on_own_thread(f: impl FnOnce() -> u8 + Send + 'static) -> u8 {
    let worker = std::thread::Builder::new()
        .name("refrain-cli".into())
        .spawn(f);
    match worker.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("error: the command panicked");
            EXIT_UNUSABLE
        }
    }
}

const EXIT_FAILED: u8 = 1;
const EXIT_UNUSABLE: u8 = 2;

fn run_inner(
    replayer: &Replayer,
    args: Vec<OsString>,
    token: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let cli = match Cli::parse_args(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with exit code 0; usage errors
            // to stderr with 2.
            let text = e.render().to_string();
            let _ = if e.use_stderr() {
                err.write_all(text.as_bytes())
            } else {
                out.write_all(text.as_bytes())
            };
            return u8::try_from(e.exit_code()).unwrap_or(EXIT_UNUSABLE);
        }
    };
    let result = execute(cli, replayer, token, out);
    let _ = out.flush();
    match result {
        Ok(code) => code,
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            e.exit_code()
        }
    }
}

enum CliError {
    /// The command could not run (exit 2).
    Unusable(String),
    /// The command ran and failed (exit 1).
    Failed(String),
    /// Writing the output failed.
    Output(std::io::Error),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Unusable(_) => EXIT_UNUSABLE,
            CliError::Failed(_) | CliError::Output(_) => EXIT_FAILED,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Unusable(m) | CliError::Failed(m) => f.write_str(m),
            CliError::Output(e) => write!(f, "cannot write output: {e}"),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Failed(e.to_string())
    }
}

impl From<ReadError> for CliError {
    fn from(e: ReadError) -> Self {
        CliError::Failed(e.to_string())
    }
}

/// Runs `read` (a command that reads through the [`HistoryStore`] seam,
/// which is async) to completion on this thread.
fn on_runtime<F: Future>(read: F) -> Result<F::Output, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Unusable(format!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(read))
}

type Out<'a> = &'a mut dyn Write;

fn execute(
    cli: Cli,
    replayer: &Replayer,
    token: Option<&str>,
    out: Out<'_>,
) -> Result<u8, CliError> {
    if let Some(url) = cli.server.as_deref() {
        return on_runtime(remote::execute(url, token, cli.json, cli.command, out))?;
    }
    let db = cli.db.as_deref();
    let json = cli.json;
    match cli.command {
        Command::List {
            status,
            workflow_type,
            limit,
            after,
            id_prefix,
            newest_first,
        } => {
            let args = ListArgs {
                status,
                workflow_type,
                limit: limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                after,
                id_prefix,
                newest_first,
            };
            on_runtime(list(&open_for_reading(db)?, args, json, out))?
        }
        Command::Describe { id } => on_runtime(describe(
            &open_for_reading(db)?,
            &WorkflowId::new(id),
            json,
            out,
        ))?,
        Command::History { id, run } => {
            let store = open_for_reading(db)?;
            let id = WorkflowId::new(id);
            if json {
                on_runtime(async {
                    let (run, _) = pick_run(&store, &id, run).await?;
                    let export = HistoryExport::from_run(&store, run).await.map_err(|e| {
                        CliError::Failed(format!("cannot read the history of {id}: {e}"))
                    })?;
                    writeln!(out, "{}", export.to_json())?;
                    Ok(())
                })?
            } else {
                on_runtime(history(&store, &id, run, out))?
            }
        }
        Command::Export { id, out: file, run } => export(
            &open_for_reading(db)?,
            &WorkflowId::new(id),
            run,
            &file,
            json,
            out,
        ),
        Command::Verify => return verify::verify(store_dir(db)?, out),
        Command::Replay { paths } => return replay(replayer, &paths, out),
        Command::Shadow { exports } => {
            let source = match exports {
                Some(dir) => ShadowSource::ExportDir(dir),
                None => ShadowSource::StoreDir(store_dir(db)?.to_path_buf()),
            };
            return shadow(replayer, &source, out);
        }
        Command::Signal {
            id,
            name,
            value,
            sender,
        } => {
            // Checked before the store is opened: bad input touches nothing.
            let value = remote::parse_json(&value, "the signal value")?;
            let payload = Payload::from_bytes(value.to_string().into_bytes());
            signal(
                &open_store(db)?,
                &WorkflowId::new(id),
                &name,
                payload,
                sender.as_deref(),
                json,
                out,
            )
        }
        Command::Cancel {
            id,
            reason,
            requested_by,
        } => {
            let store = open_store(db)?;
            let id = WorkflowId::new(id);
            let run = store
                .request_cancel(&id, &reason, requested_by.as_deref())
                .map_err(|e| CliError::Failed(format!("cancellation not requested: {e}")))?;
            acknowledge(&store, "cancellation request")?;
            if json {
                return remote::print_json(out, &commands::run_ref(&id, run)).map(|()| 0);
            }
            writeln!(
                out,
                "cancellation of {id} (run {}) requested: {reason}",
                run.0
            )?;
            Ok(())
        }
        Command::Terminate {
            id,
            reason,
            terminated_by,
        } => {
            let store = open_store(db)?;
            let id = WorkflowId::new(id);
            let run = store
                .terminate_by(&id, &reason, terminated_by.as_deref(), Timestamp::now())
                .map_err(|e| CliError::Failed(format!("not terminated: {e}")))?;
            acknowledge(&store, "termination")?;
            if json {
                return remote::print_json(out, &commands::run_ref(&id, run)).map(|()| 0);
            }
            writeln!(out, "{id} (run {}) terminated: {reason}", run.0)?;
            Ok(())
        }
        Command::Start {
            workflow_type,
            id,
            value: input,
            on_conflict,
        } => {
            let input = remote::parse_json(&input, "the input")?;
            local::start(
                &open_store(db)?,
                workflow_type,
                id,
                input,
                on_conflict,
                json,
                out,
            )
        }
        Command::Query { .. } | Command::Update { .. } => {
            return Err(CliError::Unusable(
                "queries and updates are answered by the workflow's running instance: run the \
                 application (with its server) and use --server URL"
                    .into(),
            ))
        }
        Command::Tasks { assignee } => local::tasks(&open_for_reading(db)?, assignee, json, out),
        Command::Decide {
            task,
            value,
            comment,
            decided_by,
        } => {
            let value = remote::parse_json(&value, "the decision")?;
            let decision = local::Decision {
                task,
                value,
                comment,
                decided_by,
            };
            local::decide(&open_store(db)?, decision, json, out)
        }
        Command::Claim { task, claimed_by } => {
            local::claim(&open_store(db)?, &task, claimed_by, json, out)
        }
        Command::Schedules { action } => local::schedules(&open_store(db)?, action, json, out),
        Command::Purge {
            older_than,
            workflow_type,
            export,
            dry_run,
        } => {
            let args = purge::PurgeArgs {
                older_than,
                workflow_type,
                export,
                dry_run,
            };
            let store = if dry_run {
                open_for_reading(db)?
            } else {
                open_store(db)?
            };
            on_runtime(purge::local(&store, args, json, out))?
        }
        Command::Serve { bind, identities } => serve::serve(db, bind, identities),
        Command::Token => serve::token(json, out),
    }?;
    Ok(0)
}

/// Waits until what was just written is durable: acknowledged means
/// durable.
fn acknowledge(store: &Store, what: &str) -> Result<(), CliError> {
    store
        .durable_blocking()
        .map_err(|e| CliError::Failed(format!("{what} may not be durable: {e}")))
}

/// The store directory given, if it holds a store.
fn store_dir(db: Option<&Path>) -> Result<&Path, CliError> {
    let dir = db.ok_or_else(|| {
        CliError::Unusable("no store given: pass --db DIR (or set REFRAIN_DB)".into())
    })?;
    // Store::open would create a fresh, empty store in a mistyped path.
    if !dir.join("db").is_file() {
        return Err(CliError::Unusable(format!(
            "no Refrain store at {}",
            dir.display()
        )));
    }
    Ok(dir)
}

fn cli_config() -> StoreConfig {
    StoreConfig {
        // Whoever holds the lock is a running application, not a handle
        // about to be dropped: do not make the operator wait.
        lock_timeout: Duration::from_millis(500),
        ..StoreConfig::default()
    }
}

fn cannot_open(dir: &Path, e: StoreError) -> CliError {
    match e {
        StoreError::StorageLocked { path } => CliError::Unusable(format!(
            "store at {} is locked by another process (sled allows one process per database); stop the application that owns it, or run this command from within it",
            path.display()
        )),
        other => CliError::Unusable(format!("cannot open the store at {}: {other}", dir.display())),
    }
}

/// Opens the store for a command that writes.
fn open_store(db: Option<&Path>) -> Result<Store, CliError> {
    let dir = store_dir(db)?;
    Store::open(dir, cli_config()).map_err(|e| cannot_open(dir, e))
}

/// Opens the store for a command that only reads: a damaged store, which
/// `open` refuses, is read from a copy (nothing is written to it), so its
/// intact runs stay readable.
fn open_for_reading(db: Option<&Path>) -> Result<Store, CliError> {
    let dir = store_dir(db)?;
    match Store::open(dir, cli_config()) {
        Err(StoreError::Damaged { reason, .. }) => {
            eprintln!(
                "warning: the store is damaged ({reason}); reading a copy, nothing is written; \
                 run `refrain verify --db {}` to list the damaged runs",
                dir.display()
            );
            Store::open_read_only(dir, cli_config()).map_err(|e| cannot_open(dir, e))
        }
        opened => opened.map_err(|e| cannot_open(dir, e)),
    }
}

// ----- picking a run -----

async fn latest(store: &dyn HistoryStore, id: &WorkflowId) -> Result<(RunId, RunRecord), CliError> {
    store
        .latest_run(id)
        .await?
        .ok_or_else(|| CliError::Failed(format!("no workflow with id {id}")))
}

/// The run `run` of `id`, or its latest run.
async fn pick_run(
    store: &dyn HistoryStore,
    id: &WorkflowId,
    run: Option<RunId>,
) -> Result<(RunId, RunRecord), CliError> {
    let Some(run) = run else {
        return latest(store, id).await;
    };
    let record = store
        .run_record(run)
        .await?
        .ok_or_else(|| CliError::Failed(format!("no run {} in this store", run.0)))?;
    if record.workflow_id != *id {
        return Err(CliError::Failed(format!(
            "run {} belongs to workflow {}, not {id}",
            run.0, record.workflow_id
        )));
    }
    Ok((run, record))
}
