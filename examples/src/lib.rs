//! The Refrain examples as a library: each example's workflows, activities
//! and scenario live in a module here ([`order_to_cash`],
//! [`employee_onboarding`], [`incident_response`], [`loan_approval`],
//! [`nightly_reconciliation`]), and the example binaries
//! (`examples/order_to_cash.rs` and so on) are thin mains that drive
//! them. Tests run the same workflows in-process, and replay their
//! recorded histories, through this library.
//!
//! Every example binary:
//!
//! - takes `--db DIR` ([`StoreArgs`]); without it the store goes into a new
//!   temporary directory that is kept and printed, so a run can be inspected
//!   or resumed afterwards;
//! - takes `--serve ADDR` and `--identities FILE` ([`ServeArgs`]): the
//!   dashboard and API of `refrain_server` beside its worker, serving on
//!   after the story ends until Ctrl-C ([`serve`]);
//! - logs through `tracing` to stderr, quiet unless `RUST_LOG` says otherwise
//!   ([`init_tracing`]);
//! - starts its workflows under fixed ids and attaches to runs a killed
//!   process left open ([`start_or_resume`]), which is what makes
//!   `kill -9` followed by a rerun with the same `--db` carry on instead of
//!   starting over;
//! - prints what ran: activities and workflows announce their steps
//!   ([`activity_says`], [`narrate`]) and each finished workflow's history is
//!   printed compactly ([`print_history`]).
//!
//! Every example binary also embeds the `refrain` command line with its
//! workflows registered ([`Mode::Cli`]), so that histories can be
//! inspected and replayed through the example's own code:
//!
//! ```text
//! cargo run --example order_to_cash -- --db /tmp/o2c
//! cargo run --example order_to_cash -- cli --db /tmp/o2c list
//! cargo run --example order_to_cash -- cli --db /tmp/o2c history order-1002
//! cargo run --example order_to_cash -- cli --db /tmp/o2c export order-1002 --out /tmp/order-1002.json
//! cargo run --example order_to_cash -- cli replay /tmp/order-1002.json tests/histories/order_to_cash
//! ```
//!
//! The package's `refrain-examples` binary is the same command line with
//! the workflows of all of them registered ([`replayer`]):
//! `cargo run -p refrain-examples --bin refrain-examples -- replay tests/histories/order_to_cash`.
//!
//! # Recorded histories
//!
//! `tests/histories/<example>/` at the root of the repository holds the
//! history of every run each example creates, exported as JSON
//! ([`refrain::history_file`]). The test `examples/tests/replay_histories.rs`
//! replays them through the current code, so a change to a workflow that
//! would break runs recorded with the old code fails it, with the
//! nondeterminism report naming the position and both source lines. To
//! regenerate them, after a deliberate change that old runs cannot follow
//! (better: guard the change with `ctx.patched` and keep the old files),
//! run each example in [`Mode::ExportHistories`]:
//!
//! ```text
//! cargo run --example order_to_cash -- export-histories tests/histories/order_to_cash
//! cargo run --example employee_onboarding -- export-histories tests/histories/employee_onboarding
//! cargo run --example incident_response -- export-histories tests/histories/incident_response
//! cargo run --example loan_approval -- export-histories tests/histories/loan_approval
//! cargo run --example nightly_reconciliation -- export-histories tests/histories/nightly_reconciliation
//! ```
//!
//! Each runs its example's scenarios on fresh temporary stores, with the
//! example's real timings (about 7 s, 20 s, 35 s, 26 s and 3 s: the
//! scenarios in which nobody answers wait out every deadline), and writes
//! every run to `DIR/<workflow-id>.json` (the default scenario) or
//! `DIR/<scenario>/<workflow-id>.json` (the others: `ops-substitutes`,
//! `director-away`, `nobody-acknowledges`, `underwriter-rejects`,
//! `nobody-decides`), overwriting files of the same name; workflow ids
//! that are not portable file names are adjusted ([`history_file_stem`]). Every run means every run in the store: the
//! child workflows of `nightly_reconciliation` too, and the runs its
//! schedule started, which are named after their fire times (so that its
//! export first deletes the files of earlier ones). Timestamps and seeds
//! differ from one regeneration to the next; the format does not.

pub mod employee_onboarding;
pub mod incident_response;
pub mod loan_approval;
pub mod nightly_reconciliation;
pub mod order_to_cash;
pub mod serve;

pub use serve::{keep_serving, ServeArgs, Serving};

use anyhow::{bail, Context as _, Result};
use refrain::history_file::HistoryExport;
use refrain::{
    ActivityContext, Client, ClientError, Event, RunFilter, RunStatus, StartOptions, Store,
    StoreConfig, Workflow, WorkflowContext, WorkflowHandle,
};
use refrain_worker::Replayer;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tracing_subscriber::EnvFilter;

/// A replayer with the workflow types of every example in this library
/// registered. An example that moves its workflows here registers them
/// here too, and checks its histories into `tests/histories/<example>/`.
pub fn replayer() -> Replayer {
    Replayer::new()
        .workflow::<order_to_cash::OrderToCash>()
        .workflow::<employee_onboarding::EmployeeOnboarding>()
        .workflow::<incident_response::IncidentResponse>()
        .workflow::<loan_approval::LoanApproval>()
        .workflow::<nightly_reconciliation::NightlyReconciliation>()
        .workflow::<nightly_reconciliation::ReconcileBatch>()
}

/// What an example binary does instead of running its example.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Mode {
    /// Runs the `refrain` command line with this example's workflows.
    ///
    /// list, describe, history, export, replay, signal, cancel and
    /// terminate, with this example's workflows registered so that `replay`
    /// runs the example's code. Everything after `cli` goes to it:
    /// `cli --db DIR history ID`, `cli replay FILE`, `cli --help`.
    #[command(disable_help_flag = true)]
    Cli {
        /// The `refrain` command line's arguments.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "REFRAIN ARGS"
        )]
        args: Vec<OsString>,
    },
    /// Exports the history of every run of the example to DIR.
    ///
    /// Runs the example's scenarios on fresh temporary stores and writes
    /// the history of every run they create to DIR as JSON, which is how
    /// the histories in tests/histories are regenerated.
    ExportHistories {
        /// Where to write the histories (created if missing).
        dir: PathBuf,
    },
}

/// Runs the `refrain` command line with `replayer`'s workflow types and
/// `args` (without a program name; `program` is shown in its usage text)
/// and returns its exit code. See [`refrain_worker::cli`].
pub fn run_cli(replayer: Replayer, program: &str, args: Vec<OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from(program)).chain(args);
    refrain_worker::cli::run_with_args(replayer, argv)
}

/// Opens a store in a new temporary directory, with the default (fsync)
/// durability. The directory is deleted when the returned guard is
/// dropped; drop the store (and every worker and client on it) first.
///
/// # Errors
/// If the directory cannot be created or the store cannot be opened.
pub fn temporary_store(prefix: &str) -> Result<(tempfile::TempDir, Store)> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("creating a temporary directory for the store")?;
    let store = Store::open(dir.path(), StoreConfig::default())
        .with_context(|| format!("opening the store in {}", dir.path().display()))?;
    Ok((dir, store))
}

/// The file name, without `.json`, under which [`export_histories`]
/// writes the history of workflow `id`: `id` itself, except that every
/// character other than an ASCII letter or digit, `-`, `_`, `.` and `@`
/// becomes `_`. Ids of schedule runs and of child workflows
/// (`nightly-reconciliation@2026-11-21T04:34:33Z/batch-1`) thus make one
/// file directly in the directory, with a name every file system takes
/// (`nightly-reconciliation@2026-11-21T04_34_33Z_batch-1`).
///
/// ```
/// use refrain_examples::history_file_stem;
/// assert_eq!(history_file_stem("order-1002"), "order-1002");
/// assert_eq!(
///     history_file_stem("nightly-reconciliation@2026-11-21T04:34:33.250Z/batch-1"),
///     "nightly-reconciliation@2026-11-21T04_34_33.250Z_batch-1"
/// );
/// ```
pub fn history_file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes the history of every run in `store` to `dir` in the JSON form,
/// one file per run named `<workflow-id>.json` (or
/// `<workflow-id>.run-<n>.json` when the id has more than one run, or
/// another id has the same file name), with the id made a portable file
/// name ([`history_file_stem`]), creating `dir` and overwriting files of
/// the same name. Returns the files written, in run order.
///
/// # Errors
/// Storage errors, and files or directories that cannot be written.
pub async fn export_histories(store: &Store, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let runs = store.list_runs(&RunFilter::default())?;
    let mut per_stem: BTreeMap<String, usize> = BTreeMap::new();
    for r in &runs {
        *per_stem
            .entry(history_file_stem(r.workflow_id.as_str()))
            .or_default() += 1;
    }
    let mut written = Vec::new();
    for r in &runs {
        let id = r.workflow_id.to_string();
        let stem = history_file_stem(&id);
        let name = if per_stem[&stem] > 1 {
            format!("{stem}.run-{}.json", r.run.0)
        } else {
            format!("{stem}.json")
        };
        let path = dir.join(name);
        let export = HistoryExport::from_run(store, r.run)
            .await
            .with_context(|| format!("exporting {id} ({})", r.run))?;
        export
            .write_file(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "[export] {id}: {} events of {} ({}) to {}",
            export.events.len(),
            r.run,
            r.status.as_str(),
            path.display()
        );
        written.push(path);
    }
    Ok(written)
}

/// The `--db` option of every example.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Directory of the workflow store. Pass the directory of an earlier,
    /// interrupted run to resume its workflows. Default: a new temporary
    /// directory, kept afterwards.
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
}

impl StoreArgs {
    /// Opens the store in `--db`, or in a new temporary directory named
    /// after `example`, with the default (fsync) durability, and prints
    /// where it is.
    ///
    /// # Errors
    /// If the directory cannot be created or the store cannot be opened
    /// (for instance because another process holds it).
    pub fn open_store(&self, example: &str) -> Result<Store> {
        let (path, fresh) = match &self.db {
            Some(dir) => {
                let fresh = std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none());
                (dir.clone(), fresh)
            }
            None => {
                // Kept rather than deleted on exit: the printed path is how a
                // reader resumes or inspects this run.
                let dir = tempfile::Builder::new()
                    .prefix(&format!("refrain-{example}-"))
                    .tempdir()
                    .context("creating a temporary directory for the store")?;
                (dir.keep(), true)
            }
        };
        let store = Store::open(&path, StoreConfig::default())
            .with_context(|| format!("opening the store in {}", path.display()))?;
        if fresh {
            println!("store: {} (new)", path.display());
            println!(
                "       kill this process at any point and rerun with --db {} to resume",
                path.display()
            );
        } else {
            println!(
                "store: {} (existing: resuming what it holds)",
                path.display()
            );
        }
        Ok(store)
    }
}

/// Sends `tracing` output to stderr. Only warnings and errors unless
/// `RUST_LOG` asks for more (`RUST_LOG=refrain_worker=debug`), so that the
/// story on stdout stays readable.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Prints one line of workflow narration, `[workflow] <id>: <message>`,
/// except while the workflow re-executes recorded history: after a restart
/// the reader should see only what is new, not the replayed past again.
pub fn narrate(ctx: &WorkflowContext, message: impl Display) {
    if !ctx.is_replaying() {
        println!("[workflow] {}: {message}", ctx.workflow_id());
    }
}

/// Prints one line for an activity attempt,
/// `[activity] <name> <workflow id> attempt <n>: <message>`. Attempts run at
/// least once, so after a crash the same line may appear again with a
/// higher attempt number; that is the point of printing it.
pub fn activity_says(ctx: &ActivityContext, name: &str, message: impl Display) {
    println!(
        "[activity] {name:<20} {} attempt {}: {message}",
        ctx.workflow_id(),
        ctx.attempt()
    );
}

/// How [`start_or_resume`] found the workflow id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begun {
    /// No run existed; a new one was started.
    Started,
    /// A run left open by an earlier process was attached to; the worker
    /// replays its history and carries on.
    Resumed,
    /// A run had already closed in an earlier process; nothing was started.
    AlreadyClosed(RunStatus),
}

/// Starts workflow `W` under `id` (with `use_existing`, so that a start
/// is never doubled), or returns a handle to the run of `id` that an
/// earlier (killed) process left open, or to the run that already finished
/// there, without starting anything. Prints which.
///
/// # Errors
/// Storage errors.
pub async fn start_or_resume<W: Workflow>(
    client: &Client,
    id: &str,
    input: W::Input,
) -> Result<(WorkflowHandle<W>, Begun)> {
    // Looked up first to tell the reader which case this is; the start
    // itself uses `use_existing`, which never starts a second run of an id
    // (even one whose run closed since the lookup).
    match client.describe(id).await {
        Ok(d) if !d.status().is_open() => {
            println!(
                "[main] {id}: already {} in an earlier process; not starting it again",
                d.status().as_str()
            );
            Ok((
                client.handle::<W>(id).await?,
                Begun::AlreadyClosed(d.status()),
            ))
        }
        Ok(d) => {
            println!(
                "[main] {id}: resuming {} left open by an earlier process",
                d.run
            );
            Ok((client.handle::<W>(id).await?, Begun::Resumed))
        }
        Err(ClientError::NotFound { .. }) => {
            println!("[main] {id}: starting");
            let handle = client
                .start_with::<W>(id, input, StartOptions::use_existing())
                .await
                .with_context(|| format!("starting {id}"))?;
            Ok((handle, Begun::Started))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the history of `id` already holds a signal named `name`: a
/// sender that checks this first can be rerun after a crash without
/// delivering the signal twice.
///
/// # Errors
/// Storage errors.
pub async fn signal_recorded(client: &Client, id: &str, name: &str) -> Result<bool> {
    Ok(client
        .history(id)
        .await?
        .iter()
        .any(|e| matches!(e, Event::SignalReceived { name: n, .. } if n == name)))
}

/// Polls the history of `id` until an activity of type `activity_type`
/// has completed (`Ok(true)`) or the run has closed without one
/// (`Ok(false)`).
///
/// # Errors
/// After `timeout`, or on storage errors.
pub async fn wait_for_activity(
    client: &Client,
    id: &str,
    activity_type: &str,
    timeout: Duration,
) -> Result<bool> {
    let give_up = Instant::now() + timeout;
    loop {
        let history = client.history(id).await?;
        let mut cmds = Vec::new();
        for e in &history {
            match e {
                Event::ActivityScheduled {
                    cmd,
                    activity_type: t,
                    ..
                } if t == activity_type => cmds.push(*cmd),
                Event::ActivityCompleted { cmd, .. } if cmds.contains(cmd) => return Ok(true),
                e if e.is_terminal() => return Ok(false),
                _ => {}
            }
        }
        if Instant::now() >= give_up {
            bail!("{id}: no {activity_type} completed within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Prints the history of the latest run of `id`, one line per event, with
/// activity names, attempts and timer durations resolved. Activation
/// boundaries are counted rather than printed.
///
/// # Errors
/// Storage errors.
pub async fn print_history(client: &Client, id: &str) -> Result<()> {
    let history = client.history(id).await?;
    let activations = history
        .iter()
        .filter(|e| matches!(e, Event::ActivationStarted { .. }))
        .count();
    println!(
        "  history of {id}: {} events in {activations} activations",
        history.len()
    );
    let mut names = BTreeMap::new();
    let mut now = None;
    for (i, event) in history.iter().enumerate() {
        let detail = match event {
            Event::ActivationStarted { time } => {
                now = Some(*time);
                continue;
            }
            Event::WorkflowStarted {
                workflow_type,
                input,
                ..
            } => format!("{workflow_type} {}", short(&format!("{input:?}"), 60)),
            Event::ActivityScheduled {
                cmd,
                activity_type,
                options,
                ..
            } => {
                names.insert(*cmd, activity_type.clone());
                let attempts = match options.retry.max_attempts {
                    0 => "retried until it succeeds".to_owned(),
                    1 => "no retries".to_owned(),
                    n => format!("up to {n} attempts"),
                };
                format!("{activity_type} ({cmd}, {attempts})")
            }
            Event::ActivityCompleted { cmd, attempt, .. } => {
                format!("{} ({cmd}) on attempt {attempt}", name(&names, *cmd))
            }
            Event::ActivityFailed {
                cmd,
                attempt,
                failure,
            } => format!(
                "{} ({cmd}) after {attempt} attempt{}: {failure}",
                name(&names, *cmd),
                if *attempt == 1 { "" } else { "s" }
            ),
            Event::TimerStarted { cmd, fire_at, .. } => match now {
                Some(t) => format!("({cmd}) fires after {:.1?}", fire_at.saturating_since(t)),
                None => format!("({cmd}) fires at {fire_at}"),
            },
            Event::TimerFired { cmd } | Event::TimerCancelled { cmd } => format!("({cmd})"),
            Event::SignalReceived { name, payload, .. } => {
                format!("{name} {}", short(&format!("{payload:?}"), 80))
            }
            Event::SideEffectRecorded { cmd, value, .. } => format!("({cmd}) {value:?}"),
            Event::WorkflowCompleted { result } => short(&format!("{result:?}"), 90),
            Event::WorkflowFailed { failure } => failure.to_string(),
            Event::PatchMarker {
                patch_id,
                deprecated,
            } => format!(
                "{patch_id}{}",
                if *deprecated { " (deprecated)" } else { "" }
            ),
            Event::WorkflowContinuedAsNew { input, .. } => short(&format!("{input:?}"), 90),
            Event::WorkflowCancelRequested {
                reason,
                requested_by,
            } => format!(
                "{reason} (by {})",
                requested_by.as_deref().unwrap_or("unknown")
            ),
            Event::ActivityCancelRequested { cmd } => format!("{} ({cmd})", name(&names, *cmd)),
            Event::WorkflowCancelled { reason } | Event::WorkflowTerminated { reason, .. } => {
                reason.clone()
            }
            Event::ChildWorkflowStarted {
                cmd,
                workflow_type,
                workflow_id,
                ..
            } => format!("{workflow_type} {workflow_id} ({cmd})"),
            Event::ChildWorkflowCompleted { cmd, result } => {
                format!("({cmd}) {}", short(&format!("{result:?}"), 80))
            }
            Event::ChildWorkflowFailed { cmd, failure } => format!("({cmd}) {failure}"),
            Event::ChildWorkflowCancelRequested { cmd } => format!("({cmd})"),
            Event::HumanTaskAssigned {
                cmd,
                task,
                assignee,
                level,
                ..
            } => format!("{task} for {assignee} ({cmd}, level {level})"),
            Event::HumanTaskReminded { cmd, assignee } => format!("({cmd}) {assignee}"),
            Event::HumanTaskEscalated {
                cmd,
                from,
                to,
                level,
                ..
            } => format!("({cmd}) from {from} to {to}, level {level}"),
            Event::HumanTaskDecided {
                cmd,
                decision,
                decided_by,
                ..
            } => format!(
                "({cmd}) by {decided_by}: {}",
                short(&format!("{decision:?}"), 60)
            ),
            Event::HumanTaskClosed { cmd, reason } => format!("({cmd}) {reason}"),
            Event::HumanTaskClaimed {
                cmd,
                from,
                claimed_by,
                ..
            } => format!("({cmd}) from {from} by {claimed_by}"),
            Event::UpdateRequested {
                update_id, name, ..
            }
            | Event::UpdateAccepted {
                update_id, name, ..
            } => format!("{name} ({update_id})"),
            Event::UpdateCompleted { update_id, result } => {
                format!("({update_id}) {}", short(&format!("{result:?}"), 60))
            }
            Event::UpdateFailed { update_id, failure } => {
                format!("({update_id}) {}", failure.message)
            }
        };
        println!("  {:>4}  {:<18} {detail}", i + 1, event.kind());
    }
    Ok(())
}

fn name(
    names: &BTreeMap<refrain_history::CommandSeq, String>,
    cmd: refrain_history::CommandSeq,
) -> &str {
    names.get(&cmd).map_or("?", String::as_str)
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}
