//! The command line's arguments, as clap parses them.

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use refrain_history::{RunId, RunStatus};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "refrain",
    version,
    about = "Inspect, start, signal, decide and replay Refrain workflows, in a store or through a running server",
    after_help = "Through a server: --server URL (or REFRAIN_SERVER) and the access token in REFRAIN_TOKEN (never a flag: it would show in shell history and `ps`).\n\
Exit codes: 0 ok, 1 the command failed (unknown id, refused by the workflow or the API), 2 it could not run (usage, store missing or locked, server unreachable, token missing, unknown or not allowed)."
)]
pub(super) struct Cli {
    /// Store directory (the application's sled directory; it must not be
    /// open in another process).
    #[arg(long, global = true, value_name = "DIR", env = "REFRAIN_DB")]
    pub(super) db: Option<PathBuf>,
    /// A running Refrain server (`http://HOST:PORT`) to act through
    /// instead of a store; the access token comes from REFRAIN_TOKEN.
    #[arg(long, global = true, value_name = "URL", env = "REFRAIN_SERVER")]
    pub(super) server: Option<String>,
    /// Machine-readable output: the JSON of the HTTP API's answers (on a
    /// store as through a server; `verify` and `replay` print text).
    #[arg(long, global = true)]
    pub(super) json: bool,
    #[command(subcommand)]
    pub(super) command: Command,
}

impl Cli {
    /// Parses `args`. A store and a server given together: the one given
    /// as a flag wins over the other's environment variable (an exported
    /// REFRAIN_SERVER does not stop `--db DIR`); both as flags, or both
    /// from the environment, is a usage error.
    pub(super) fn parse_args(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
        let matches: ArgMatches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        if cli.db.is_some() && cli.server.is_some() {
            let from_env = |id| matches.value_source(id) == Some(ValueSource::EnvVariable);
            match (from_env("db"), from_env("server")) {
                (true, false) => cli.db = None,
                (false, true) => cli.server = None,
                _ => {
                    return Err(Cli::command().error(
                        clap::error::ErrorKind::ArgumentConflict,
                        "--db (REFRAIN_DB) and --server (REFRAIN_SERVER) cannot be used together: \
                         act on a store, or through a server",
                    ))
                }
            }
        }
        Ok(cli)
    }
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Lists runs: id, run, type, status, start and close times.
    List {
        /// Only runs in this state.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Only runs of this workflow type.
        #[arg(long = "type", value_name = "TYPE")]
        workflow_type: Option<String>,
        /// Show one page of at most N runs, and the cursor of the next.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Start after this cursor (printed by the page before).
        #[arg(long, value_name = "CURSOR")]
        after: Option<String>,
        /// Only workflow ids starting with this.
        #[arg(long, value_name = "PREFIX")]
        id_prefix: Option<String>,
        /// Latest started first (default: the order runs started in). A
        /// cursor only continues the order it was printed for.
        #[arg(long)]
        newest_first: bool,
    },
    /// Shows the latest run of a workflow: status, times, pending
    /// activities and timers, the last activation failure.
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
    /// Checks every run of the store without writing to it and lists the
    /// damaged ones (exit code 1 if any). Local only (--db).
    Verify,
    /// Replays exported histories (files, or directories of .json/.bin
    /// files) through the registered workflow code. Local only: export
    /// the histories first (`export --server URL`).
    Replay {
        /// History files or directories.
        #[arg(required = true, value_name = "FILE_OR_DIR")]
        paths: Vec<PathBuf>,
    },
    /// Before a deploy: replays every open run of the store (--db; a copy
    /// is read, so the application may keep running) or of a directory of
    /// exported histories (--exports) through the registered workflow code,
    /// and lists the runs the new code would not replay, each with its
    /// report. Exits 1 if any would fail. Local only.
    Shadow {
        /// Check the open runs among the exported histories (.json/.bin)
        /// in DIR instead of a store.
        #[arg(long, value_name = "DIR")]
        exports: Option<PathBuf>,
    },
    /// Sends a signal with a raw JSON value to the open run of a workflow.
    Signal {
        /// Workflow id.
        id: String,
        /// Signal name.
        name: String,
        /// The signal's value, as JSON (e.g. '{"approved":true}').
        #[arg(value_name = "JSON")]
        value: String,
        /// Who sends it, recorded in the history for the audit trail.
        /// With --server the server records the token's identity instead.
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
        /// Who asks, recorded in the history. With --server the server
        /// records the token's identity instead.
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
        /// Who terminates, recorded in the history (with --db only: a
        /// server records the token's identity).
        #[arg(long = "by", value_name = "WHO")]
        terminated_by: Option<String>,
    },
    /// Starts a run of a workflow type with a JSON input. No workflow code
    /// is needed here: the application's workers run it.
    Start {
        /// Registered workflow type, e.g. loan-approval.
        workflow_type: String,
        /// Workflow id.
        id: String,
        /// The input, as JSON.
        #[arg(value_name = "JSON")]
        value: String,
        /// When a run of ID is open: fail, return it (attach-to-open), or
        /// return the latest run even if closed (use-existing).
        #[arg(long, value_enum, default_value = "fail")]
        on_conflict: ConflictArg,
    },
    /// Asks a workflow's query handler (needs a running application:
    /// --server).
    Query {
        /// Workflow id.
        id: String,
        /// Query name.
        name: String,
        /// The query's input, as JSON.
        #[arg(value_name = "JSON")]
        value: Option<String>,
    },
    /// Sends an update and waits for the workflow's answer (needs a
    /// running application: --server).
    Update {
        /// Workflow id.
        id: String,
        /// Update name.
        name: String,
        /// The update's input, as JSON.
        #[arg(value_name = "JSON")]
        value: String,
        /// Names the request: the same id is never applied twice, so a
        /// retried command is safe.
        #[arg(long, value_name = "ID")]
        update_id: Option<String>,
    },
    /// Lists open human tasks: with --server the token's inbox (or
    /// ASSIGNEE's), with --db ASSIGNEE's.
    Tasks {
        /// Whose tasks: a person's or a group's name.
        #[arg(long, value_name = "NAME")]
        assignee: Option<String>,
    },
    /// Records a decision on an open human task. With --server the
    /// server records the token's identity as the decider; with --db the
    /// name given with --as.
    Decide {
        /// The task, RUN/CMD as `tasks` prints it.
        task: String,
        /// The decision, as JSON (e.g. '"Approve"').
        #[arg(value_name = "JSON")]
        value: String,
        /// Why, recorded with the decision.
        #[arg(long)]
        comment: Option<String>,
        /// Who decides (with --db only, where it is required: nobody
        /// vouches for it but the person at the keyboard).
        #[arg(long = "as", value_name = "NAME")]
        decided_by: Option<String>,
    },
    /// Deletes closed runs that closed longer ago than --older-than (of
    /// --type only, when given), in batches, printing each run and the
    /// progress. Never an open run, nor a closed child of an open parent.
    /// Through a server it needs an admin's token.
    Purge {
        /// How long closed runs are kept: a whole number and a unit, s, m,
        /// h, d or w (e.g. 30d).
        #[arg(long, value_name = "PERIOD", value_parser = parse_period)]
        older_than: String,
        /// Only runs of this workflow type.
        #[arg(long = "type", value_name = "TYPE")]
        workflow_type: Option<String>,
        /// First write each run's history to DIR as JSON
        /// (`{id}.{run}.json`). Local only (--db).
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// Only print the runs that would go; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Claims a human task assigned to a group for one member, taking it
    /// out of the other members' inboxes. With --server the token's
    /// identity claims (it must be a member of the group); with --db the
    /// name given with --as.
    Claim {
        /// The task, RUN/CMD as `tasks` prints it.
        task: String,
        /// Who claims (with --db only, where it is required).
        #[arg(long = "as", value_name = "NAME")]
        claimed_by: Option<String>,
    },
    /// Lists, describes, pauses, resumes or fires schedules.
    Schedules {
        #[command(subcommand)]
        action: Option<ScheduleAction>,
    },
    /// Serves the HTTP API and dashboard on a store, with its time service
    /// (timers, activity deadlines, schedules), until Ctrl-C or SIGTERM.
    ///
    /// It runs no workflow code: the application's workers run the
    /// workflows. With sled, which one process at a time may open, use
    /// it while the application is stopped (to inspect, decide, signal
    /// and export), or embed the server in the application instead
    /// (`refrain_server::Server::new(worker.client())`).
    Serve {
        /// Address to listen on. Anything but loopback exposes the server
        /// to the network: put a TLS proxy in front of it.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8233")]
        bind: std::net::SocketAddr,
        /// Identities file (TOML: name, role, groups, token_sha256). Without
        /// one, only the one-time login link printed at start gets in.
        #[arg(long, value_name = "FILE")]
        identities: Option<PathBuf>,
    },
    /// Prints a new access token, and the line that gives it to an
    /// identity in an identities file.
    Token,
}

/// `schedules` actions.
#[derive(Subcommand)]
pub(super) enum ScheduleAction {
    /// Every schedule (the default).
    List,
    /// One schedule.
    Describe {
        /// Schedule id.
        id: String,
    },
    /// No fires until resumed.
    Pause {
        /// Schedule id.
        id: String,
    },
    /// Fires again (fires within the catch-up window act).
    Resume {
        /// Schedule id.
        id: String,
    },
    /// Fires now, as the schedule's own fire would (under its overlap
    /// policy). On a store, the run it starts runs when the application
    /// does.
    Trigger {
        /// Schedule id.
        id: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum ConflictArg {
    Fail,
    AttachToOpen,
    UseExisting,
}

impl From<ConflictArg> for refrain_server::remote::OnConflict {
    fn from(c: ConflictArg) -> Self {
        use refrain_server::remote::OnConflict;
        match c {
            ConflictArg::Fail => OnConflict::Fail,
            ConflictArg::AttachToOpen => OnConflict::AttachToOpen,
            ConflictArg::UseExisting => OnConflict::UseExisting,
        }
    }
}

impl From<ConflictArg> for refrain_history::IdConflictPolicy {
    fn from(c: ConflictArg) -> Self {
        use refrain_history::IdConflictPolicy;
        match c {
            ConflictArg::Fail => IdConflictPolicy::Reject,
            ConflictArg::AttachToOpen => IdConflictPolicy::AttachToOpen,
            ConflictArg::UseExisting => IdConflictPolicy::UseExisting,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum StatusArg {
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
/// Checks a retention period (kept as written, for the API's body).
fn parse_period(s: &str) -> Result<String, String> {
    refrain::retention::parse_period(s)
        .map(|_| s.trim().to_owned())
        .map_err(|e| e.to_string())
}

fn parse_run(s: &str) -> Result<RunId, String> {
    s.strip_prefix("run-")
        .unwrap_or(s)
        .parse()
        .map(RunId)
        .map_err(|_| format!("{s:?} is not a run number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn json_is_a_flag_and_a_value_alike() {
        let cli = Cli::try_parse_from(["refrain", "--json", "signal", "w", "s", "{}"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Signal { value, .. } if value == "{}"));
    }

    #[test]
    fn a_flag_wins_over_the_other_ones_environment_variable() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        // Both as flags: refused.
        let both = Cli::parse_args(args(&[
            "refrain", "--db", "d", "--server", "http://s", "list",
        ]));
        assert!(both.is_err());
        let one = Cli::parse_args(args(&["refrain", "--db", "d", "list"])).expect("parses");
        assert!(one.db.is_some() && one.server.is_none());
    }

    #[test]
    fn runs_parse_with_or_without_prefix() {
        assert_eq!(parse_run("3"), Ok(RunId(3)));
        assert_eq!(parse_run("run-3"), Ok(RunId(3)));
        assert!(parse_run("three").is_err());
    }
}
