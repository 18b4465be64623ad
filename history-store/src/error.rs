//! Errors of the store. Every variant names what the caller can act on;
//! corrupt bytes are reported for the one run or record they belong to.

use crate::codec::CodecError;
use crate::ids::{CommandSeq, EventSeq, RunId, WorkflowId};
use crate::store::records::RunStatus;
use std::fmt;
use std::path::PathBuf;

/// Errors returned by `Store` operations.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// Another handle (usually another process) holds the store's file
    /// lock. Nothing was changed.
    StorageLocked {
        /// The store directory.
        path: PathBuf,
    },
    /// sled or the file system failed. I/O errors are sticky in sled: treat
    /// this as fatal for the engine and restart.
    Storage(sled::Error),
    /// An external storage engine (PostgreSQL: see
    /// [`Store::open_external`](crate::Store::open_external)) failed; its
    /// own words are the source. Nothing of the failed transaction was
    /// written.
    Backend(crate::store::ExternalError),
    /// An fsync of the data file failed; nothing later is acknowledged.
    Sync(std::io::Error),
    /// Stored bytes failed to decode. Only the named record is affected.
    Corrupt {
        /// Which record: `history`, `run`, `inbox`, `activity task`, ...
        what: &'static str,
        /// The run it belongs to, when known.
        run: Option<RunId>,
        /// The decoding failure.
        source: CodecError,
    },
    /// A run of this workflow id is open and the start policy is to reject.
    AlreadyRunning {
        /// The id.
        workflow_id: WorkflowId,
        /// The open run.
        run: RunId,
    },
    /// No workflow with this id exists.
    WorkflowNotFound {
        /// The id.
        workflow_id: WorkflowId,
    },
    /// The run is closed and cannot take this request.
    WorkflowClosed {
        /// The id.
        workflow_id: WorkflowId,
        /// The closed run.
        run: RunId,
        /// How it closed.
        status: RunStatus,
    },
    /// No run with this number exists.
    RunNotFound {
        /// The run.
        run: RunId,
    },
    /// A payload exceeds `StoreConfig::max_payload_bytes`. Nothing was
    /// written.
    PayloadTooLarge {
        /// Its size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The activation lease was lost (another claim, or a restart).
    /// Nothing was written.
    LeaseLost {
        /// The run.
        run: RunId,
    },
    /// The run's history moved since the claim. Nothing was written.
    Conflict {
        /// The run.
        run: RunId,
        /// `last_seq` the commit expected.
        expected: EventSeq,
        /// `last_seq` found.
        found: EventSeq,
    },
    /// An activity completion or heartbeat presented a token that no longer
    /// holds (the attempt timed out or the task is gone). Nothing was
    /// written.
    StaleActivity {
        /// The run.
        run: RunId,
        /// The activity's command.
        cmd: CommandSeq,
    },
    /// A commit was malformed (events out of order, an inbound event in the
    /// command part, ...). Nothing was written.
    InvalidCommit {
        /// The run.
        run: RunId,
        /// What is wrong.
        reason: String,
    },
    /// The commit would take the run's history past
    /// `StoreConfig::max_history_events` or `max_history_bytes`. Nothing
    /// was written. The workflow should continue as new earlier; a commit
    /// whose only command is `WorkflowFailed` is still accepted, so the run
    /// can be closed.
    HistoryLimitExceeded {
        /// The run.
        run: RunId,
        /// Events the history would hold after the commit.
        events: u64,
        /// Encoded bytes the history would hold after the commit.
        bytes: u64,
        /// The configured event limit.
        max_events: u64,
        /// The configured byte limit.
        max_bytes: u64,
    },
    /// The store was shut down or its flusher stopped after an error.
    Closed,
    /// No human task with this command was ever assigned in the run (or
    /// the run does not exist). Nothing was written.
    HumanTaskNotFound {
        /// The run.
        run: RunId,
        /// The command named.
        cmd: CommandSeq,
    },
    /// The human task is no longer open: it was decided, closed without a
    /// decision, or its run closed. Nothing was written.
    HumanTaskClosed {
        /// The run.
        run: RunId,
        /// The task's command.
        cmd: CommandSeq,
        /// How it ended (`decided by ...`, `closed: ...`).
        why: String,
    },
    /// The decision expected the human task to be assigned to `expected`,
    /// but it is `assignee`'s now (it escalated after the decider looked).
    /// Nothing was written.
    HumanTaskReassigned {
        /// The run.
        run: RunId,
        /// The task's command.
        cmd: CommandSeq,
        /// The assignee the decision was made as.
        expected: String,
        /// The task's assignee now.
        assignee: String,
    },
    /// The store lost data it had acknowledged (its data file is damaged,
    /// truncated or older than its watermark), found when opening it.
    /// Nothing was written; the operator decides what to do, starting
    /// with `refrain verify --db DIR` (to accept the data as it is, remove
    /// the store's `refrain.watermark`).
    Damaged {
        /// The store directory.
        path: PathBuf,
        /// What is missing or unreadable.
        reason: String,
    },
    /// A run's stored data disagrees with its record (events missing, an
    /// id naming a run that is gone): it is refused rather than read short.
    /// Other runs are unaffected.
    RunDamaged {
        /// The run.
        run: RunId,
        /// What is wrong.
        reason: String,
    },
    /// A schedule with this id already exists. Nothing was written.
    ScheduleExists {
        /// The schedule id.
        id: String,
    },
    /// No update with this id was ever requested of the run. Nothing was
    /// written.
    UpdateNotFound {
        /// The run.
        run: RunId,
        /// The update id named.
        update_id: String,
    },
    /// No schedule has this id. Nothing was written.
    ScheduleNotFound {
        /// The schedule id.
        id: String,
    },
    /// A schedule's cron expression does not parse. Nothing was written.
    BadCronExpression {
        /// The expression.
        expression: String,
        /// What the parser objected to.
        reason: String,
    },
    /// A schedule spec cannot be used (empty id or workflow type, a zero
    /// interval, a pattern that never fires). Nothing was written.
    InvalidSchedule {
        /// The schedule id.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::StorageLocked { path } => write!(
                f,
                "store at {} is locked by another process (sled allows one process per database)",
                path.display()
            ),
            StoreError::Storage(e) => write!(f, "storage error: {e}"),
            StoreError::Backend(e) => write!(f, "storage backend error: {e}"),
            StoreError::Sync(e) => write!(f, "fsync of the data file failed: {e}"),
            StoreError::Corrupt { what, run, source } => match run {
                Some(run) => write!(f, "corrupt {what} record of {run}: {source}"),
                None => write!(f, "corrupt {what} record: {source}"),
            },
            StoreError::AlreadyRunning { workflow_id, run } => {
                write!(f, "workflow {workflow_id} is already running as {run}")
            }
            StoreError::WorkflowNotFound { workflow_id } => {
                write!(f, "no workflow with id {workflow_id}")
            }
            StoreError::WorkflowClosed {
                workflow_id,
                run,
                status,
            } => write!(
                f,
                "workflow {workflow_id} ({run}) is closed ({})",
                status.as_str()
            ),
            StoreError::RunNotFound { run } => write!(f, "no such run {run}"),
            StoreError::PayloadTooLarge { size, limit } => {
                write!(
                    f,
                    "payload of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            StoreError::LeaseLost { run } => write!(f, "activation lease on {run} was lost"),
            StoreError::Conflict {
                run,
                expected,
                found,
            } => write!(
                f,
                "history of {run} moved: expected last event {expected}, found {found}"
            ),
            StoreError::StaleActivity { run, cmd } => write!(
                f,
                "activity {cmd} of {run} was not running under that token (timed out or gone)"
            ),
            StoreError::InvalidCommit { run, reason } => {
                write!(f, "invalid commit for {run}: {reason}")
            }
            StoreError::HistoryLimitExceeded {
                run,
                events,
                bytes,
                max_events,
                max_bytes,
            } => write!(
                f,
                "history of {run} would exceed its limit: {events} events (max {max_events}), \
                 {bytes} bytes (max {max_bytes}); continue as new sooner"
            ),
            StoreError::Closed => write!(f, "store is closed"),
            StoreError::HumanTaskNotFound { run, cmd } => {
                write!(f, "no human task {cmd} in {run}")
            }
            StoreError::HumanTaskClosed { run, cmd, why } => {
                write!(f, "human task {cmd} of {run} is no longer open: {why}")
            }
            StoreError::HumanTaskReassigned {
                run,
                cmd,
                expected,
                assignee,
            } => reassigned(f, *run, *cmd, expected, assignee),
            StoreError::Damaged { path, reason } => write!(
                f,
                "store at {} is damaged and was not opened for writing: {reason}; nothing was \
                 written; run `refrain verify --db {}` to list the damaged runs",
                path.display(),
                path.display()
            ),
            StoreError::RunDamaged { run, reason } => write!(
                f,
                "{run} is damaged: {reason}; run `refrain verify` on the store"
            ),
            StoreError::ScheduleExists { id } => {
                write!(f, "a schedule with id {id} already exists")
            }
            StoreError::ScheduleNotFound { id } => write!(f, "no schedule with id {id}"),
            StoreError::UpdateNotFound { run, update_id } => {
                write!(f, "no update {update_id:?} was requested of {run}")
            }
            StoreError::BadCronExpression { expression, reason } => {
                write!(f, "bad cron expression {expression:?}: {reason}")
            }
            StoreError::InvalidSchedule { id, reason } => {
                write!(f, "invalid schedule {id}: {reason}")
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Storage(e) => Some(e),
            StoreError::Backend(e) => Some(e),
            StoreError::Sync(e) => Some(e),
            StoreError::Corrupt { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Storage(e)
    }
}

/// The message of a decision refused because its task moved: said once
/// for the store's error and the seam's.
pub(crate) fn reassigned(
    f: &mut fmt::Formatter<'_>,
    run: RunId,
    cmd: CommandSeq,
    expected: &str,
    assignee: &str,
) -> fmt::Result {
    write!(
        f,
        "human task {cmd} of {run} is assigned to {assignee} now, not {expected} (it was \
         reassigned); the decision was not recorded"
    )
}
