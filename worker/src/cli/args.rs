//! The command line's arguments, as clap parses them.

use clap::{Parser, Subcommand, ValueEnum};
use refrain_history::{RunId, RunStatus};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "refrain",
    version,
    about = "Inspect, export, replay and signal Refrain workflows",
    after_help = "Exit codes: 0 ok, 1 the command failed, 2 it could not run (usage, store missing or locked)."
)]
pub(super) struct Cli {
    /// Store directory (the application's sled directory; it must not be
    /// open in another process).
    #[arg(long, global = true, value_name = "DIR", env = "REFRAIN_DB")]
    pub(super) db: Option<PathBuf>,
    #[command(subcommand)]
    pub(super) command: Command,
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
    /// damaged ones (exit code 1 if any).
    Verify,
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
    fn runs_parse_with_or_without_prefix() {
        assert_eq!(parse_run("3"), Ok(RunId(3)));
        assert_eq!(parse_run("run-3"), Ok(RunId(3)));
        assert!(parse_run("three").is_err());
    }
}
