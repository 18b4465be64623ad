//! The `refrain` command line: list, inspect, export, replay and signal
//! workflows in a store directory.
//!
//! ```text
//! refrain --db DIR list [--status running|completed|failed|continued-as-new|cancelled|terminated] [--type T]
//! refrain --db DIR describe ID
//! refrain --db DIR history ID [--run N]
//! refrain --db DIR export ID --out FILE [--run N]     # FILE.json: JSON, else binary
//! refrain --db DIR signal ID NAME JSON [--sender WHO]
//! refrain replay FILE_OR_DIR...
//! ```
//!
//! `--db` may also come from the `REFRAIN_DB` environment variable.
//!
//! sled lets one process at a time open a store, so these commands work on
//! a store whose application is stopped; while it runs they fail at once
//! with a one-line "locked" error (exit code 2) and touch nothing.
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
//! history that does not replay); 2 the command could not run at all
//! (usage error, store missing or locked, nothing to replay with).

use crate::replayer::{history_files, indent, ReplayError, Replayer};
use clap::{Parser, Subcommand, ValueEnum};
use refrain::history_file::{FileFormat, HistoryExport};
use refrain_history::{
    ActivityOptions, ActivityState, CommandSeq, Event, Failure, FailureCause, ParentClosePolicy,
    Payload, RunFilter, RunId, RunRecord, RunStatus, Store, StoreConfig, StoreError, TimeoutKind,
    Timestamp, WorkflowId,
};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Runs the command line with the process arguments and `replayer`'s
/// workflow types for `replay`. Call it from a plain `fn main` (it does
/// its own blocking; inside an async runtime it moves to a thread of its
/// own).
pub fn run(replayer: Replayer) -> ExitCode {
    run_with_args(replayer, std::env::args_os())
}

/// Like [`run`] with explicit arguments; the first is the program name.
pub fn run_with_args<I, T>(replayer: Replayer, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // Store::durable_blocking panics inside a tokio runtime, and workflow
    // code must be replayed outside one: a thread of our own is neither.
    let worker = std::thread::Builder::new()
        .name("refrain-cli".into())
        .spawn(move || run_inner(replayer, args));
    match worker.map(|t| t.join()) {
        Ok(Ok(code)) => ExitCode::from(code),
        _ => {
            eprintln!("error: the command panicked");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

const EXIT_FAILED: u8 = 1;
const EXIT_UNUSABLE: u8 = 2;

fn run_inner(replayer: Replayer, args: Vec<OsString>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with exit code 0; usage errors
            // to stderr with 2.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(EXIT_UNUSABLE);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = execute(cli, &replayer, &mut out);
    let _ = out.flush();
    match result {
        Ok(code) => code,
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

#[derive(Parser)]
#[command(
    name = "refrain",
    version,
    about = "Inspect, export, replay and signal Refrain workflows",
    after_help = "Exit codes: 0 ok, 1 the command failed, 2 it could not run (usage, store missing or locked)."
)]
struct Cli {
    /// Store directory (the application's sled directory; it must not be
    /// open in another process).
    #[arg(long, global = true, value_name = "DIR", env = "REFRAIN_DB")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lists runs: id, run, type, status, start and close times.
    List {
        /// Only runs in this state.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Only runs of this workflow type.
        #[arg(long = "type", value_name = "TYPE")]
        workflow_type: Option<String>,
    },
    /// Shows the latest run of a workflow: status, times, pending
    /// activities and timers, the last workflow-task failure.
    Describe {
        /// Workflow id.
        id: String,
    },
    /// Prints a run's history as a timeline.
    History {
        /// Workflow id.
        id: String,
        /// Run number (default: the latest run of ID).
        #[arg(long, value_name = "N", value_parser = parse_run)]
        run: Option<RunId>,
    },
    /// Writes a run's history to a file, for `replay` and for tests.
    Export {
        /// Workflow id.
        id: String,
        /// Output file: JSON if it ends in .json, binary otherwise.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Run number (default: the latest run of ID).
        #[arg(long, value_name = "N", value_parser = parse_run)]
        run: Option<RunId>,
    },
    /// Replays exported histories (files, or directories of .json/.bin
    /// files) through the registered workflow code.
    Replay {
        /// History files or directories.
        #[arg(required = true, value_name = "FILE_OR_DIR")]
        paths: Vec<PathBuf>,
    },
    /// Sends a signal with a raw JSON value to the open run of a workflow.
    Signal {
        /// Workflow id.
        id: String,
        /// Signal name.
        name: String,
        /// The signal's value, as JSON (e.g. '{"approved":true}').
        json: String,
        /// Who sends it, recorded in the history for the audit trail.
        #[arg(long, value_name = "WHO")]
        sender: Option<String>,
    },
    /// Asks the open run of a workflow to cancel; the workflow may clean up
    /// (compensate) before it ends.
    Cancel {
        /// Workflow id.
        id: String,
        /// Why, recorded in the history.
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
        /// Who asks, recorded in the history.
        #[arg(long = "by", value_name = "WHO")]
        requested_by: Option<String>,
    },
    /// Ends the open run of a workflow at once, without running any of its
    /// code (no cleanup).
    Terminate {
        /// Workflow id.
        id: String,
        /// Why, recorded in the history.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StatusArg {
    Running,
    Completed,
    Failed,
    ContinuedAsNew,
    Cancelled,
    Terminated,
}

impl From<StatusArg> for RunStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Running => RunStatus::Running,
            StatusArg::Completed => RunStatus::Completed,
            StatusArg::Failed => RunStatus::Failed,
            StatusArg::ContinuedAsNew => RunStatus::ContinuedAsNew,
            StatusArg::Cancelled => RunStatus::Cancelled,
            StatusArg::Terminated => RunStatus::Terminated,
        }
    }
}

/// `3` or `run-3`, as runs are printed.
fn parse_run(s: &str) -> Result<RunId, String> {
    s.strip_prefix("run-")
        .unwrap_or(s)
        .parse()
        .map(RunId)
        .map_err(|_| format!("{s:?} is not a run number"))
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

type Out<'a> = &'a mut dyn Write;

fn execute(cli: Cli, replayer: &Replayer, out: Out<'_>) -> Result<u8, CliError> {
    let db = cli.db.as_deref();
    match cli.command {
        Command::List {
            status,
            workflow_type,
        } => list(&open_store(db)?, status, workflow_type, out),
        Command::Describe { id } => describe(&open_store(db)?, &WorkflowId::new(id), out),
        Command::History { id, run } => history(&open_store(db)?, &WorkflowId::new(id), run, out),
        Command::Export { id, out: file, run } => {
            export(&open_store(db)?, &WorkflowId::new(id), run, &file, out)
        }
        Command::Replay { paths } => return replay(replayer, &paths, out),
        Command::Signal {
            id,
            name,
            json,
            sender,
        } => {
            // Checked before the store is opened: bad input touches nothing.
            let value: serde_json::Value = serde_json::from_str(&json)
                .map_err(|e| CliError::Failed(format!("the signal value is not JSON: {e}")))?;
            let payload = Payload::from_bytes(value.to_string().into_bytes());
            signal(
                &open_store(db)?,
                &WorkflowId::new(id),
                &name,
                payload,
                sender.as_deref(),
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
            writeln!(
                out,
                "cancellation of {id} (run {}) requested: {reason}",
                run.0
            )?;
            Ok(())
        }
        Command::Terminate { id, reason } => {
            let store = open_store(db)?;
            let id = WorkflowId::new(id);
            let run = store
                .terminate(&id, &reason, Timestamp::now())
                .map_err(|e| CliError::Failed(format!("not terminated: {e}")))?;
            acknowledge(&store, "termination")?;
            writeln!(out, "{id} (run {}) terminated: {reason}", run.0)?;
            Ok(())
        }
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

fn open_store(db: Option<&Path>) -> Result<Store, CliError> {
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
    let config = StoreConfig {
        // Whoever holds the lock is a running application, not a handle
        // about to be dropped: do not make the operator wait.
        lock_timeout: Duration::from_millis(500),
        ..StoreConfig::default()
    };
    Store::open(dir, config).map_err(|e| match e {
        StoreError::StorageLocked { path } => CliError::Unusable(format!(
            "store at {} is locked by another process (sled allows one process per database); stop the application that owns it, or run this command from within it",
            path.display()
        )),
        other => CliError::Unusable(format!("cannot open the store at {}: {other}", dir.display())),
    })
}

// ----- list -----

fn list(
    store: &Store,
    status: Option<StatusArg>,
    workflow_type: Option<String>,
    out: Out<'_>,
) -> Result<(), CliError> {
    let runs = store.list_runs(&RunFilter {
        status: status.map(Into::into),
        workflow_type,
    })?;
    let mut rows = vec![[
        "ID".to_owned(),
        "RUN".to_owned(),
        "TYPE".to_owned(),
        "STATUS".to_owned(),
        "STARTED (UTC)".to_owned(),
        "CLOSED (UTC)".to_owned(),
    ]];
    for r in &runs {
        rows.push([
            r.workflow_id.to_string(),
            r.run.0.to_string(),
            r.workflow_type.clone(),
            r.status.as_str().to_owned(),
            utc(r.started_at),
            r.closed_at.map_or_else(|| "-".to_owned(), utc),
        ]);
    }
    write_table(out, &rows)?;
    if runs.is_empty() {
        writeln!(out, "(no runs match)")?;
    }
    Ok(())
}

fn write_table<const N: usize>(out: Out<'_>, rows: &[[String; N]]) -> std::io::Result<()> {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

// ----- describe -----

fn latest(store: &Store, id: &WorkflowId) -> Result<(RunId, RunRecord), CliError> {
    store
        .latest_run(id)?
        .ok_or_else(|| CliError::Failed(format!("no workflow with id {id}")))
}

fn describe(store: &Store, id: &WorkflowId, out: Out<'_>) -> Result<(), CliError> {
    let (run, record) = latest(store, id)?;
    let now = Timestamp::now();
    writeln!(out, "workflow  {id}")?;
    writeln!(out, "run       {}", run.0)?;
    writeln!(out, "type      {}", record.workflow_type)?;
    writeln!(out, "status    {}", record.status.as_str())?;
    writeln!(out, "started   {}", utc(record.started_at))?;
    match record.closed_at {
        Some(closed) => writeln!(
            out,
            "closed    {} (ran {})",
            utc(closed),
            human(closed.saturating_since(record.started_at))
        )?,
        None => writeln!(
            out,
            "closed    - (open for {})",
            human(now.saturating_since(record.started_at))
        )?,
    }
    writeln!(
        out,
        "history   {} events, {}",
        record.last_seq,
        bytes(record.history_bytes)
    )?;
    if let Some(from) = record.continued_from {
        writeln!(out, "continues run {}", from.0)?;
    }
    if let Some(to) = record.continued_to {
        writeln!(out, "continued as run {}", to.0)?;
    }
    if let Some(parent) = &record.parent {
        writeln!(
            out,
            "parent    {} run {} (cmd {})",
            parent.workflow_id, parent.run.0, parent.cmd.0
        )?;
    }
    match &record.outcome {
        Some(Ok(result)) => writeln!(out, "result    {}", short(result))?,
        Some(Err(failure)) => writeln!(out, "failure   {}", failure_text(failure))?,
        None => {}
    }
    if record.status.is_open() {
        let waiting = record.inbox_tail.saturating_sub(record.inbox_head);
        if record.needs_first_activation {
            writeln!(out, "inbox     waiting for its first workflow task")?;
        } else if waiting > 0 {
            writeln!(
                out,
                "inbox     {waiting} event(s) waiting for the next workflow task"
            )?;
        }
    }

    writeln!(out)?;
    if record.pending_activities.is_empty() {
        writeln!(out, "pending activities: none")?;
    } else {
        writeln!(
            out,
            "pending activities ({}):",
            record.pending_activities.len()
        )?;
    }
    for &cmd in &record.pending_activities {
        let Some(task) = store.activity_task(run, cmd)? else {
            writeln!(out, "  cmd {}  (task record missing)", cmd.0)?;
            continue;
        };
        let cancel = if task.cancel_requested {
            ", cancel requested"
        } else {
            ""
        };
        let state = match task.state {
            ActivityState::Running {
                started_at,
                deadline,
                ..
            } => format!(
                "running since {} (times out {})",
                utc(started_at),
                utc(deadline)
            ),
            ActivityState::Scheduled { visible_at } if visible_at > now => format!(
                "waiting to retry at {} (in {})",
                utc(visible_at),
                human(visible_at.saturating_since(now))
            ),
            ActivityState::Scheduled { .. } => "scheduled, waiting for a worker".into(),
        };
        writeln!(
            out,
            "  cmd {}  {}{}  attempt {}{}  {state}{cancel}",
            cmd.0,
            task.activity_type,
            role_tag(&task.activity_type),
            task.attempt,
            attempts_of(&task.options),
        )?;
        writeln!(
            out,
            "         first scheduled {}, input {}",
            utc(task.first_scheduled_at),
            short(&task.input)
        )?;
        if let Some(f) = &task.last_failure {
            writeln!(
                out,
                "         last failure (attempt {}): {}",
                task.attempt.saturating_sub(1),
                failure_text(f)
            )?;
        }
    }
    if record.pending_timers.is_empty() {
        writeln!(out, "pending timers: none")?;
    } else {
        writeln!(out, "pending timers ({}):", record.pending_timers.len())?;
    }
    for t in &record.pending_timers {
        let when = if t.fire_at > now {
            format!("in {}", human(t.fire_at.saturating_since(now)))
        } else {
            format!("overdue by {}", human(now.saturating_since(t.fire_at)))
        };
        writeln!(out, "  cmd {}  fires {} ({when})", t.cmd.0, utc(t.fire_at))?;
    }
    match &record.last_task_failure {
        None => writeln!(out, "last workflow-task failure: none")?,
        Some(f) => {
            writeln!(
                out,
                "last workflow-task failure (the task is retried until fixed code is deployed):"
            )?;
            writeln!(out, "{}", indent(f))?;
        }
    }
    Ok(())
}

fn attempts_of(options: &ActivityOptions) -> String {
    match options.retry.max_attempts {
        0 => String::new(),
        n => format!(" of {n}"),
    }
}

// ----- history -----

/// The run `run` of `id`, or its latest run.
fn pick_run(
    store: &Store,
    id: &WorkflowId,
    run: Option<RunId>,
) -> Result<(RunId, RunRecord), CliError> {
    let Some(run) = run else {
        return latest(store, id);
    };
    let record = store
        .run_record(run)?
        .ok_or_else(|| CliError::Failed(format!("no run {} in this store", run.0)))?;
    if record.workflow_id != *id {
        return Err(CliError::Failed(format!(
            "run {} belongs to workflow {}, not {id}",
            run.0, record.workflow_id
        )));
    }
    Ok((run, record))
}

/// What the timeline remembers about each command while it walks the
/// history.
#[derive(Default)]
struct Commands {
    activities: BTreeMap<CommandSeq, (String, ActivityOptions)>,
    timers: BTreeMap<CommandSeq, (Timestamp, Timestamp)>,
    children: BTreeMap<CommandSeq, String>,
    human_tasks: BTreeMap<CommandSeq, String>,
}

fn history(
    store: &Store,
    id: &WorkflowId,
    run: Option<RunId>,
    out: Out<'_>,
) -> Result<(), CliError> {
    let (run, record) = pick_run(store, id, run)?;
    let events = store.read_history(run)?;
    let activations = events
        .iter()
        .filter(|e| matches!(e, Event::ActivationStarted { .. }))
        .count();
    writeln!(
        out,
        "{id}, run {} ({}, {}): {} events in {activations} activation{}",
        run.0,
        record.workflow_type,
        record.status.as_str(),
        events.len(),
        if activations == 1 { "" } else { "s" }
    )?;
    writeln!(
        out,
        "Times are UTC. Events carry the time of the activation that recorded them; an inbound result arrived at most that much earlier. Retries happen inside the store: only the final attempt is recorded."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:>4}  {:<24}  {:>8}  EVENT",
        "SEQ", "TIME (UTC)", "WAIT"
    )?;
    let mut known = Commands::default();
    let mut time = record.started_at;
    let mut previous: Option<Timestamp> = None;
    let mut activation = 0;
    for (event, seq) in events.iter().zip(1u64..) {
        match event {
            Event::WorkflowStarted { start_time, .. } => time = *start_time,
            Event::ActivationStarted { time: t } => {
                time = *t;
                activation += 1;
            }
            // Appended by the store outside any activation: its only time
            // is the run's close.
            Event::WorkflowTerminated { .. } => time = record.closed_at.unwrap_or(time),
            _ => {}
        }
        let wait = match previous {
            Some(p) if time > p => format!("+{}", human(time.saturating_since(p))),
            _ => String::new(),
        };
        previous = Some(time);
        let text = describe_event(event, time, activation, &mut known);
        writeln!(out, "{seq:>4}  {:<24}  {wait:>8}  {text}", utc(time))?;
    }
    if record.status.is_open() {
        open_run_footer(store, run, &record, out)?;
    }
    Ok(())
}

/// For an open run, what it is waiting on now: retries in progress are not
/// in the history yet.
fn open_run_footer(
    store: &Store,
    run: RunId,
    record: &RunRecord,
    out: Out<'_>,
) -> Result<(), CliError> {
    writeln!(out)?;
    writeln!(out, "now: the run is open")?;
    for &cmd in &record.pending_activities {
        if let Some(task) = store.activity_task(run, cmd)? {
            let retry = match &task.last_failure {
                Some(f) if task.attempt > 1 => format!(
                    ", retrying after attempt {} failed: {}",
                    task.attempt - 1,
                    failure_text(f)
                ),
                _ => String::new(),
            };
            writeln!(
                out,
                "  activity {}{} (cmd {}) pending, attempt {}{}{retry}",
                task.activity_type,
                role_tag(&task.activity_type),
                cmd.0,
                task.attempt,
                attempts_of(&task.options),
            )?;
        }
    }
    for t in &record.pending_timers {
        writeln!(out, "  timer (cmd {}) fires {}", t.cmd.0, utc(t.fire_at))?;
    }
    for t in store.human_tasks_of_run(run)? {
        let due = t
            .deadline
            .map(|d| format!(", due {}", utc(d)))
            .unwrap_or_default();
        writeln!(
            out,
            "  human task {} (cmd {}) waits for {} (level {}){due}",
            t.task, t.cmd.0, t.assignee, t.level
        )?;
    }
    if let Some(f) = &record.last_task_failure {
        let first = f.lines().next().unwrap_or_default();
        writeln!(
            out,
            "  workflow task failing: {first} (see `describe` for the full report)"
        )?;
    }
    Ok(())
}

/// One line per event: what an operator needs to follow the run.
fn describe_event(event: &Event, time: Timestamp, activation: u64, known: &mut Commands) -> String {
    let activity = |known: &Commands, cmd: &CommandSeq| -> String {
        match known.activities.get(cmd) {
            Some((name, _)) => format!("{name}{} (cmd {})", role_tag(name), cmd.0),
            None => format!("(cmd {})", cmd.0),
        }
    };
    let child = |known: &Commands, cmd: &CommandSeq| -> String {
        match known.children.get(cmd) {
            Some(name) => format!("{name} (cmd {})", cmd.0),
            None => format!("(cmd {})", cmd.0),
        }
    };
    match event {
        Event::WorkflowStarted {
            workflow_type,
            input,
            continued_from,
            parent,
            ..
        } => {
            let mut s = format!("started {workflow_type} with input {}", short(input));
            if let Some(from) = continued_from {
                let _ = write!(s, ", continuing run {}", from.0);
            }
            if let Some(p) = parent {
                let _ = write!(
                    s,
                    ", child of {} run {} (cmd {})",
                    p.workflow_id, p.run.0, p.cmd.0
                );
            }
            s
        }
        Event::ActivationStarted { .. } => format!("-- workflow task {activation}"),
        Event::ActivityScheduled {
            cmd,
            activity_type,
            input,
            options,
            ..
        } => {
            known
                .activities
                .insert(*cmd, (activity_type.clone(), options.clone()));
            format!(
                "schedule activity {} with input {}{}",
                activity(known, cmd),
                short(input),
                options_text(options)
            )
        }
        Event::ActivityCompleted {
            cmd,
            attempt,
            result,
        } => {
            let retries = if *attempt > 1 {
                format!(" after {} failed attempt(s), retried", attempt - 1)
            } else {
                String::new()
            };
            format!(
                "activity {} completed on attempt {attempt}{retries}: result {}",
                activity(known, cmd),
                short(result)
            )
        }
        Event::ActivityFailed {
            cmd,
            attempt,
            failure,
        } => {
            let why = known
                .activities
                .get(cmd)
                .map(|(_, o)| gave_up(failure, *attempt, o))
                .unwrap_or_default();
            format!(
                "activity {} FAILED on attempt {attempt}{why}: {}",
                activity(known, cmd),
                failure_text(failure)
            )
        }
        Event::TimerStarted { cmd, fire_at, .. } => {
            known.timers.insert(*cmd, (time, *fire_at));
            format!(
                "start timer (cmd {}) for {}, fires {}",
                cmd.0,
                human(fire_at.saturating_since(time)),
                utc(*fire_at)
            )
        }
        Event::TimerFired { cmd } => match known.timers.get(cmd) {
            Some((started, fire_at)) => format!(
                "timer (cmd {}) fired: {} since it was started at {}",
                cmd.0,
                human(fire_at.saturating_since(*started)),
                utc(*started)
            ),
            None => format!("timer (cmd {}) fired", cmd.0),
        },
        Event::TimerCancelled { cmd } => format!("cancel timer (cmd {})", cmd.0),
        Event::SignalReceived {
            name,
            payload,
            sender,
        } => format!(
            "signal {name} from {}: {}",
            sender.as_deref().unwrap_or("(sender not given)"),
            short(payload)
        ),
        Event::SideEffectRecorded { cmd, value, .. } => {
            format!("side effect (cmd {}) recorded {}", cmd.0, short(value))
        }
        Event::WorkflowCompleted { result } => {
            format!("workflow COMPLETED with result {}", short(result))
        }
        Event::WorkflowFailed { failure } => {
            format!("workflow FAILED: {}", failure_text(failure))
        }
        Event::PatchMarker {
            patch_id,
            deprecated,
        } => {
            if *deprecated {
                format!("patch {patch_id:?} (deprecated) marked")
            } else {
                format!("patch {patch_id:?} applied: this run takes the new code path")
            }
        }
        Event::WorkflowContinuedAsNew {
            input,
            carried_signals,
            ..
        } => format!(
            "CONTINUED AS NEW run with input {}, carrying {} signal(s)",
            short(input),
            carried_signals.len()
        ),
        Event::WorkflowCancelRequested {
            reason,
            requested_by,
        } => format!(
            "CANCEL REQUESTED by {}: {reason}",
            requested_by.as_deref().unwrap_or("(requester not given)")
        ),
        Event::ActivityCancelRequested { cmd } => {
            format!("cancel activity {}", activity(known, cmd))
        }
        Event::WorkflowCancelled { reason } => format!("workflow CANCELLED: {reason}"),
        Event::WorkflowTerminated { reason } => format!("workflow TERMINATED: {reason}"),
        Event::ChildWorkflowStarted {
            cmd,
            workflow_type,
            workflow_id,
            input,
            parent_close,
            ..
        } => {
            known
                .children
                .insert(*cmd, format!("{workflow_id} ({workflow_type})"));
            let on_close = match parent_close {
                ParentClosePolicy::Terminate => "terminated",
                ParentClosePolicy::RequestCancel => "asked to cancel",
                ParentClosePolicy::Abandon => "left running",
            };
            format!(
                "start child workflow {} with input {}; {on_close} if this run closes first",
                child(known, cmd),
                short(input)
            )
        }
        Event::ChildWorkflowCompleted { cmd, result } => format!(
            "child workflow {} completed: result {}",
            child(known, cmd),
            short(result)
        ),
        Event::ChildWorkflowFailed { cmd, failure } => format!(
            "child workflow {} FAILED: {}",
            child(known, cmd),
            failure_text(failure)
        ),
        Event::ChildWorkflowCancelRequested { cmd } => {
            format!("cancel child workflow {}", child(known, cmd))
        }
        Event::HumanTaskAssigned { .. }
        | Event::HumanTaskReminded { .. }
        | Event::HumanTaskEscalated { .. }
        | Event::HumanTaskDecided { .. }
        | Event::HumanTaskClosed { .. } => human_task_line(event, time, known),
    }
}

/// The timeline line of a human-task event.
fn human_task_line(event: &Event, time: Timestamp, known: &mut Commands) -> String {
    let name = |known: &Commands, cmd: &CommandSeq| match known.human_tasks.get(cmd) {
        Some(task) => format!("human task {task} (cmd {})", cmd.0),
        None => format!("human task (cmd {})", cmd.0),
    };
    let due = |deadline: &Option<Timestamp>| match deadline {
        Some(d) => format!(", due in {} ({})", human(d.saturating_since(time)), utc(*d)),
        None => String::new(),
    };
    match event {
        Event::HumanTaskAssigned {
            cmd,
            task,
            assignee,
            form,
            deadline,
            ..
        } => {
            known.human_tasks.insert(*cmd, task.clone());
            let form = form
                .as_ref()
                .map(|f| format!(" with form {}", short(f)))
                .unwrap_or_default();
            format!(
                "ASSIGN {} to {assignee}{form}{}",
                name(known, cmd),
                due(deadline)
            )
        }
        Event::HumanTaskReminded { cmd, assignee } => {
            format!("remind {assignee} of {}", name(known, cmd))
        }
        Event::HumanTaskEscalated {
            cmd,
            from,
            to,
            level,
            deadline,
        } => format!(
            "ESCALATE {} from {from} to {to} (level {level}){}",
            name(known, cmd),
            due(deadline)
        ),
        Event::HumanTaskDecided {
            cmd,
            decision,
            decided_by,
            comment,
            decided_at,
        } => format!(
            "{} DECIDED by {decided_by} at {}: {}{}",
            name(known, cmd),
            utc(*decided_at),
            short(decision),
            comment
                .as_ref()
                .map(|c| format!(" ({c:?})"))
                .unwrap_or_default()
        ),
        Event::HumanTaskClosed { cmd, reason } => {
            format!("close {} without a decision: {reason}", name(known, cmd))
        }
        _ => String::new(),
    }
}

/// Why the store stopped retrying a failed activity.
fn gave_up(failure: &Failure, attempt: u32, options: &ActivityOptions) -> String {
    let retry = &options.retry;
    if failure.cause == FailureCause::Cancelled {
        " (cancelled)".into()
    } else if failure.non_retryable {
        " (not retryable)".into()
    } else if retry.non_retryable_kinds.contains(&failure.kind) {
        format!(" (kind {:?} is not retried)", failure.kind)
    } else if retry.max_attempts != 0 && attempt >= retry.max_attempts {
        format!(" (retries exhausted: {} attempts)", retry.max_attempts)
    } else if failure.cause == FailureCause::Timeout(TimeoutKind::ScheduleToClose) {
        " (schedule-to-close deadline passed)".into()
    } else {
        String::new()
    }
}

fn options_text(o: &ActivityOptions) -> String {
    let mut parts = Vec::new();
    match o.retry.max_attempts {
        0 => {}
        1 => parts.push("no retries".to_owned()),
        n => parts.push(format!("up to {n} attempts")),
    }
    if let Some(d) = o.start_to_close {
        parts.push(format!("start-to-close {}", human(d)));
    }
    if let Some(d) = o.schedule_to_close {
        parts.push(format!("schedule-to-close {}", human(d)));
    }
    if let Some(d) = o.heartbeat_timeout {
        parts.push(format!("heartbeat {}", human(d)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" [{}]", parts.join(", "))
    }
}

/// Marks activities whose names say they undo an earlier step (saga
/// compensations: refund, release, cancel, ...) or escalate, so that the
/// moment a run turned is visible at a glance.
fn role_tag(activity_type: &str) -> &'static str {
    let name = activity_type.to_ascii_lowercase();
    const UNDO: [&str; 9] = [
        "compensate",
        "undo",
        "refund",
        "release",
        "revert",
        "rollback",
        "cancel",
        "void",
        "reverse",
    ];
    if name.contains("escalat") {
        " [ESCALATION]"
    } else if UNDO.iter().any(|p| name.starts_with(p)) {
        " [COMPENSATION]"
    } else {
        ""
    }
}

fn failure_text(f: &Failure) -> String {
    let cause = match f.cause {
        FailureCause::Application => String::new(),
        FailureCause::Panicked => " [panicked]".into(),
        FailureCause::NotRegistered => " [not registered on any worker]".into(),
        FailureCause::Cancelled => " [cancelled]".into(),
        FailureCause::Terminated => " [terminated]".into(),
        FailureCause::Timeout(k) => format!(
            " [{} timeout]",
            match k {
                TimeoutKind::StartToClose => "start-to-close",
                TimeoutKind::ScheduleToClose => "schedule-to-close",
                TimeoutKind::Heartbeat => "heartbeat",
            }
        ),
    };
    let non_retryable = if f.non_retryable {
        " (non-retryable)"
    } else {
        ""
    };
    format!("{}: {}{cause}{non_retryable}", f.kind, f.message)
}

/// A payload on one line, shortened.
fn short(p: &Payload) -> String {
    const MAX: usize = 120;
    match std::str::from_utf8(p.as_bytes()) {
        Ok("") => "(empty)".into(),
        Ok(s) => {
            let one_line: String = s
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if one_line.chars().count() > MAX {
                let cut: String = one_line.chars().take(MAX).collect();
                format!("{cut}… ({} bytes)", p.len())
            } else {
                one_line
            }
        }
        Err(_) => format!("<{} bytes of binary>", p.len()),
    }
}

// ----- export -----

fn export(
    store: &Store,
    id: &WorkflowId,
    run: Option<RunId>,
    file: &Path,
    out: Out<'_>,
) -> Result<(), CliError> {
    let (run, _) = pick_run(store, id, run)?;
    let history = HistoryExport::from_run(store, run)
        .map_err(|e| CliError::Failed(format!("cannot read the history of {id}: {e}")))?;
    history
        .write_file(file)
        .map_err(|e| CliError::Failed(format!("cannot write the export: {e}")))?;
    let form = match FileFormat::for_path(file) {
        FileFormat::Json => "JSON",
        FileFormat::Binary => "binary",
    };
    writeln!(
        out,
        "exported {} events of {id} run {} to {} ({form})",
        history.events.len(),
        run.0,
        file.display()
    )?;
    Ok(())
}

// ----- replay -----

fn replay(replayer: &Replayer, paths: &[PathBuf], out: Out<'_>) -> Result<u8, CliError> {
    if replayer.is_empty() {
        return Err(CliError::Unusable(NO_WORKFLOWS.trim().to_owned()));
    }
    let mut results = Vec::new();
    for path in paths {
        if path.is_dir() {
            let files = history_files(path).map_err(|e| {
                CliError::Failed(format!("cannot read directory {}: {e}", path.display()))
            })?;
            if files.is_empty() {
                return Err(CliError::Failed(format!(
                    "no history files (*.json, *.bin) in {}",
                    path.display()
                )));
            }
            results.extend(files.into_iter().map(|f| {
                let r = replayer.replay_file(&f);
                (f, r)
            }));
        } else {
            results.push((path.clone(), replayer.replay_file(path)));
        }
    }
    let mut failed = 0;
    for (path, result) in &results {
        match result {
            Ok(report) => writeln!(out, "ok    {}: {report}", path.display())?,
            Err(e) => {
                failed += 1;
                writeln!(out, "FAIL  {}:", path.display())?;
                writeln!(out, "{}", indent(&e.to_string()))?;
                if let ReplayError::UnknownWorkflowType { .. } = e {
                    writeln!(
                        out,
                        "  (this binary registers: {})",
                        replayer.workflow_types().join(", ")
                    )?;
                }
            }
        }
    }
    writeln!(
        out,
        "{} of {} histories replayed",
        results.len() - failed,
        results.len()
    )?;
    Ok(if failed == 0 { 0 } else { EXIT_FAILED })
}

const NO_WORKFLOWS: &str = r#"
this `refrain` binary has no workflow types registered, so it cannot replay histories.
Replaying runs your workflow code. Give your project a binary with the same
command line and your workflows registered, e.g. src/bin/refrain.rs:

    fn main() -> std::process::ExitCode {
        refrain_worker::cli::run(
            refrain_worker::Replayer::new()
                .workflow::<OrderToCash>()
                .workflow::<EmployeeOnboarding>(),
        )
    }

and run `cargo run --bin refrain -- replay FILE_OR_DIR...`. In tests, use
`Replayer::new().workflow::<W>().assert_replays("tests/histories")`.
"#;

// ----- signal -----

fn signal(
    store: &Store,
    id: &WorkflowId,
    name: &str,
    payload: Payload,
    sender: Option<&str>,
    out: Out<'_>,
) -> Result<(), CliError> {
    let sent = match sender {
        Some(who) => store.signal_from(id, name, payload, who),
        None => store.signal(id, name, payload),
    };
    let run = sent.map_err(|e| CliError::Failed(format!("signal not sent: {e}")))?;
    acknowledge(store, "signal")?;
    writeln!(out, "signal {name} sent to {id} (run {})", run.0)?;
    Ok(())
}

// ----- formatting -----

/// RFC 3339 UTC with millisecond precision, e.g. `2024-05-01T12:00:00.004Z`.
fn utc(t: Timestamp) -> String {
    // RFC 3339 ends with year 9999; a timer that far out was almost
    // certainly computed by saturating, and reads better as such.
    const LAST_RFC3339_MS: u64 = 253_402_300_799_999;
    if t.0 > LAST_RFC3339_MS {
        return format!("after 9999-12-31 ({} ms since the epoch)", t.0);
    }
    humantime::format_rfc3339_millis(t.to_system_time()).to_string()
}

/// A duration the way people say it: `350ms`, `1.2s`, `4m05s`, `2h10m`,
/// `3d04h`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{}.{}s", s, ms % 1000 / 100)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600)
    }
}

fn bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(Timestamp(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(Timestamp(951_782_400_000)), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            utc(Timestamp(1_714_564_800_004)),
            "2024-05-01T12:00:00.004Z"
        );
        assert_eq!(
            utc(Timestamp(253_402_300_799_999)),
            "9999-12-31T23:59:59.999Z"
        );
        // No panic at the far end.
        assert_eq!(
            utc(Timestamp(u64::MAX)),
            "after 9999-12-31 (18446744073709551615 ms since the epoch)"
        );
    }

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(human(Duration::from_millis(350)), "350ms");
        assert_eq!(human(Duration::from_millis(1_234)), "1.2s");
        assert_eq!(human(Duration::from_secs(245)), "4m05s");
        assert_eq!(human(Duration::from_secs(7_800)), "2h10m");
        assert_eq!(human(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3d04h");
    }

    #[test]
    fn compensations_and_escalations_are_tagged() {
        assert_eq!(role_tag("refund-payment"), " [COMPENSATION]");
        assert_eq!(role_tag("release-credit-hold"), " [COMPENSATION]");
        assert_eq!(role_tag("escalate-approval"), " [ESCALATION]");
        assert_eq!(role_tag("charge-payment"), "");
    }

    #[test]
    fn runs_parse_with_or_without_prefix() {
        assert_eq!(parse_run("3"), Ok(RunId(3)));
        assert_eq!(parse_run("run-3"), Ok(RunId(3)));
        assert!(parse_run("three").is_err());
    }
}
