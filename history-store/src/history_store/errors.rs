//! The errors of [`HistoryStore`](super::HistoryStore), one type per
//! family of operations: here the client side's, in `worker_errors` the
//! worker side's. Each variant carries what a caller acts on; the
//! failures of the backend itself (I/O, a shut-down store, damaged data)
//! carry their source so that an operator sees the backend's own words.
//!
//! The sled [`Store`](crate::Store) keeps its own [`StoreError`]; the
//! `From<StoreError>` conversions here are how its implementation of the
//! seam reports.

use crate::error::StoreError;
use crate::ids::{CommandSeq, RunId, WorkflowId};
use crate::store::records::RunStatus;
use std::fmt;

/// A backend's own failure, as it reported it (for sled, a [`StoreError`]).
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a backend failure that no operation names is reported: damaged data
/// (one run's, or the store's) or a failing backend.
pub(super) enum Failure {
    Damaged(Option<RunId>, BackendError),
    Storage(BackendError),
}

pub(super) fn classify(e: StoreError) -> Failure {
    match e {
        StoreError::Corrupt { run, .. } => Failure::Damaged(run, Box::new(e)),
        StoreError::RunDamaged { run, .. } => Failure::Damaged(Some(run), Box::new(e)),
        StoreError::Damaged { .. } => Failure::Damaged(None, Box::new(e)),
        other => Failure::Storage(Box::new(other)),
    }
}

/// `Display` and `Error` for an error family: `$fmt` writes each variant;
/// the `Storage` and `Damaged` variants every family has give their source.
macro_rules! error_family {
    ($name:ident, |$s:ident, $f:ident| $fmt:expr) => {
        impl fmt::Display for $name {
            fn fmt(&self, $f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let $s = self;
                $fmt
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $name::Storage { source } | $name::Damaged { source, .. } => {
                        Some(source.as_ref())
                    }
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}

pub(super) use error_family;

/// Writes the two variants every family shares.
pub(super) fn backend(
    f: &mut fmt::Formatter<'_>,
    run: Option<&Option<RunId>>,
    source: &BackendError,
) -> fmt::Result {
    match run {
        None => write!(f, "the store failed: {source}"),
        Some(Some(run)) => write!(f, "{run} is damaged: {source}"),
        Some(None) => write!(f, "the store is damaged: {source}"),
    }
}

// ----- start -----

/// Errors of [`HistoryStore::start`](super::HistoryStore::start). Nothing
/// was written.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// A run of the id is open and the policy is `Reject`.
    AlreadyRunning {
        /// The id.
        workflow_id: WorkflowId,
        /// The open run.
        run: RunId,
    },
    /// The input (or the id, or the type name) exceeds the store's limit.
    PayloadTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Stored data the start had to read is damaged.
    Damaged {
        /// The run it belongs to, when known.
        run: Option<RunId>,
        /// The backend's report.
        source: BackendError,
    },
    /// The backend failed (I/O, shut down); retrying later may succeed.
    Storage {
        /// The backend's report.
        source: BackendError,
    },
}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyRunning { workflow_id, run } => {
                StartError::AlreadyRunning { workflow_id, run }
            }
            StoreError::PayloadTooLarge { size, limit } => {
                StartError::PayloadTooLarge { size, limit }
            }
            other => match classify(other) {
                Failure::Damaged(run, source) => StartError::Damaged { run, source },
                Failure::Storage(source) => StartError::Storage { source },
            },
        }
    }
}

error_family!(StartError, |s, f| match s {
    StartError::AlreadyRunning { workflow_id, run } => {
        write!(f, "workflow {workflow_id} is already running as {run}")
    }
    StartError::PayloadTooLarge { size, limit } => too_large(f, *size, *limit),
    StartError::Damaged { run, source } => backend(f, Some(run), source),
    StartError::Storage { source } => backend(f, None, source),
});

pub(super) fn too_large(f: &mut fmt::Formatter<'_>, size: usize, limit: usize) -> fmt::Result {
    write!(
        f,
        "payload of {size} bytes exceeds the limit of {limit} bytes"
    )
}

// ----- operations on an existing run -----

/// Errors of the operations on the latest run of a workflow id: signal,
/// cancel, terminate. Nothing was written.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunOpError {
    /// No workflow has this id.
    NotFound {
        /// The id.
        workflow_id: WorkflowId,
    },
    /// The latest run of the id is closed.
    Closed {
        /// The id.
        workflow_id: WorkflowId,
        /// The closed run.
        run: RunId,
        /// How it closed.
        status: RunStatus,
    },
    /// The payload exceeds the store's limit.
    PayloadTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The run's stored data is damaged.
    Damaged {
        /// The run, when known.
        run: Option<RunId>,
        /// The backend's report.
        source: BackendError,
    },
    /// The backend failed (I/O, shut down).
    Storage {
        /// The backend's report.
        source: BackendError,
    },
}

impl From<StoreError> for RunOpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WorkflowNotFound { workflow_id } => RunOpError::NotFound { workflow_id },
            StoreError::WorkflowClosed {
                workflow_id,
                run,
                status,
            } => RunOpError::Closed {
                workflow_id,
                run,
                status,
            },
            StoreError::PayloadTooLarge { size, limit } => {
                RunOpError::PayloadTooLarge { size, limit }
            }
            other => match classify(other) {
                Failure::Damaged(run, source) => RunOpError::Damaged { run, source },
                Failure::Storage(source) => RunOpError::Storage { source },
            },
        }
    }
}

error_family!(RunOpError, |s, f| match s {
    RunOpError::NotFound { workflow_id } => write!(f, "no workflow with id {workflow_id}"),
    RunOpError::Closed {
        workflow_id,
        run,
        status,
    } => write!(
        f,
        "workflow {workflow_id} ({run}) is closed ({})",
        status.as_str()
    ),
    RunOpError::PayloadTooLarge { size, limit } => too_large(f, *size, *limit),
    RunOpError::Damaged { run, source } => backend(f, Some(run), source),
    RunOpError::Storage { source } => backend(f, None, source),
});

// ----- updates -----

/// Errors of [`HistoryStore::update`](super::HistoryStore::update). The
/// workflow's own answer (completed, failed, rejected, or its run closed
/// first) is not an error: it is the [`UpdateWait`](crate::UpdateWait).
#[derive(Debug)]
#[non_exhaustive]
pub enum UpdateError {
    /// No workflow has this id. Nothing was written.
    NotFound {
        /// The id.
        workflow_id: WorkflowId,
    },
    /// The latest run of the id is closed and never answered this
    /// request. Nothing was written.
    Closed {
        /// The id.
        workflow_id: WorkflowId,
        /// The closed run.
        run: RunId,
        /// How it closed.
        status: RunStatus,
    },
    /// The arguments exceed the store's limit. Nothing was written.
    PayloadTooLarge {
        /// Their size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The run's stored data is damaged.
    Damaged {
        /// The run, when known.
        run: Option<RunId>,
        /// The backend's report.
        source: BackendError,
    },
    /// The backend failed (I/O, shut down). The request may have been
    /// recorded: asking again with the same update id is safe.
    Storage {
        /// The backend's report.
        source: BackendError,
    },
}

impl From<StoreError> for UpdateError {
    fn from(e: StoreError) -> Self {
        match RunOpError::from(e) {
            RunOpError::NotFound { workflow_id } => UpdateError::NotFound { workflow_id },
            RunOpError::Closed {
                workflow_id,
                run,
                status,
            } => UpdateError::Closed {
                workflow_id,
                run,
                status,
            },
            RunOpError::PayloadTooLarge { size, limit } => {
                UpdateError::PayloadTooLarge { size, limit }
            }
            RunOpError::Damaged { run, source } => UpdateError::Damaged { run, source },
            RunOpError::Storage { source } => UpdateError::Storage { source },
        }
    }
}

error_family!(UpdateError, |s, f| match s {
    UpdateError::NotFound { workflow_id } => write!(f, "no workflow with id {workflow_id}"),
    UpdateError::Closed {
        workflow_id,
        run,
        status,
    } => write!(
        f,
        "workflow {workflow_id} ({run}) is closed ({}) and cannot take an update",
        status.as_str()
    ),
    UpdateError::PayloadTooLarge { size, limit } => too_large(f, *size, *limit),
    UpdateError::Damaged { run, source } => backend(f, Some(run), source),
    UpdateError::Storage { source } => backend(f, None, source),
});

// ----- reads -----

/// Errors of the reads (records, histories, lists, task lists) and of the
/// long-polls, which write nothing a caller could act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// No run with this number exists.
    RunNotFound {
        /// The run.
        run: RunId,
    },
    /// A list cursor that this backend did not hand out.
    BadCursor {
        /// The cursor as given.
        cursor: String,
    },
    /// The data read is damaged; other runs are unaffected.
    Damaged {
        /// The run, when known.
        run: Option<RunId>,
        /// The backend's report.
        source: BackendError,
    },
    /// The backend failed (I/O, shut down).
    Storage {
        /// The backend's report.
        source: BackendError,
    },
}

impl From<StoreError> for ReadError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RunNotFound { run } => ReadError::RunNotFound { run },
            other => match classify(other) {
                Failure::Damaged(run, source) => ReadError::Damaged { run, source },
                Failure::Storage(source) => ReadError::Storage { source },
            },
        }
    }
}

error_family!(ReadError, |s, f| match s {
    ReadError::RunNotFound { run } => write!(f, "no such run {run}"),
    ReadError::BadCursor { cursor } => {
        write!(f, "list cursor {cursor:?} was not given out by this store")
    }
    ReadError::Damaged { run, source } => backend(f, Some(run), source),
    ReadError::Storage { source } => backend(f, None, source),
});

// ----- human tasks -----

/// Errors of [`HistoryStore::decide_human_task`](super::HistoryStore::decide_human_task).
/// Nothing was written.
#[derive(Debug)]
#[non_exhaustive]
pub enum HumanTaskError {
    /// The run never assigned a human task with this command (or does not
    /// exist).
    NotFound {
        /// The run.
        run: RunId,
        /// The command named.
        cmd: CommandSeq,
    },
    /// The task is no longer open: decided, closed, or its run closed. A
    /// decision is recorded at most once.
    Closed {
        /// The run.
        run: RunId,
        /// The task's command.
        cmd: CommandSeq,
        /// How it ended (`decided by ...`, `closed: ...`).
        why: String,
    },
    /// The decision named the assignee it was made as
    /// ([`HumanTaskDecision::expected_assignee`](super::HumanTaskDecision::expected_assignee))
    /// and the task is someone else's now: it escalated after the decider
    /// looked.
    Reassigned {
        /// The run.
        run: RunId,
        /// The task's command.
        cmd: CommandSeq,
        /// The assignee the decision was made as.
        expected: String,
        /// The task's assignee now.
        assignee: String,
    },
    /// The decision exceeds the store's limit.
    PayloadTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The run's stored data is damaged.
    Damaged {
        /// The run, when known.
        run: Option<RunId>,
        /// The backend's report.
        source: BackendError,
    },
    /// The backend failed (I/O, shut down).
    Storage {
        /// The backend's report.
        source: BackendError,
    },
}

impl From<StoreError> for HumanTaskError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::HumanTaskNotFound { run, cmd } => HumanTaskError::NotFound { run, cmd },
            StoreError::HumanTaskClosed { run, cmd, why } => {
                HumanTaskError::Closed { run, cmd, why }
            }
            StoreError::HumanTaskReassigned {
                run,
                cmd,
                expected,
                assignee,
            } => HumanTaskError::Reassigned {
                run,
                cmd,
                expected,
                assignee,
            },
            StoreError::PayloadTooLarge { size, limit } => {
                HumanTaskError::PayloadTooLarge { size, limit }
            }
            other => match classify(other) {
                Failure::Damaged(run, source) => HumanTaskError::Damaged { run, source },
                Failure::Storage(source) => HumanTaskError::Storage { source },
            },
        }
    }
}

error_family!(HumanTaskError, |s, f| match s {
    HumanTaskError::NotFound { run, cmd } => write!(f, "no human task {cmd} in {run}"),
    HumanTaskError::Closed { run, cmd, why } => {
        write!(f, "human task {cmd} of {run} is no longer open: {why}")
    }
    HumanTaskError::Reassigned {
        run,
        cmd,
        expected,
        assignee,
    } => crate::error::reassigned(f, *run, *cmd, expected, assignee),
    HumanTaskError::PayloadTooLarge { size, limit } => too_large(f, *size, *limit),
    HumanTaskError::Damaged { run, source } => backend(f, Some(run), source),
    HumanTaskError::Storage { source } => backend(f, None, source),
});

// ----- schedules -----

/// Errors of the schedule operations. Nothing was written.
#[derive(Debug)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A schedule with this id exists.
    AlreadyExists {
        /// The id.
        id: String,
    },
    /// No schedule has this id.
    NotFound {
        /// The id.
        id: String,
    },
    /// The cron expression does not parse.
    BadCronExpression {
        /// The expression.
        expression: String,
        /// What the parser objected to.
        reason: String,
    },
    /// The spec cannot be used (empty id or type, zero interval, a pattern
    /// that never fires).
    Invalid {
        /// The schedule id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The schedule's input exceeds the store's limit.
    PayloadTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A stored schedule (or a run it reads) is damaged.
    Damaged {
        /// The run, when known.
        run: Option<RunId>,
        /// The backend's report.
        source: BackendError,
    },
    /// The backend failed (I/O, shut down).
    Storage {
        /// The backend's report.
        source: BackendError,
    },
}

impl From<StoreError> for ScheduleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ScheduleExists { id } => ScheduleError::AlreadyExists { id },
            StoreError::ScheduleNotFound { id } => ScheduleError::NotFound { id },
            StoreError::BadCronExpression { expression, reason } => {
                ScheduleError::BadCronExpression { expression, reason }
            }
            StoreError::InvalidSchedule { id, reason } => ScheduleError::Invalid { id, reason },
            StoreError::PayloadTooLarge { size, limit } => {
                ScheduleError::PayloadTooLarge { size, limit }
            }
            other => match classify(other) {
                Failure::Damaged(run, source) => ScheduleError::Damaged { run, source },
                Failure::Storage(source) => ScheduleError::Storage { source },
            },
        }
    }
}

error_family!(ScheduleError, |s, f| match s {
    ScheduleError::AlreadyExists { id } => write!(f, "a schedule with id {id} already exists"),
    ScheduleError::NotFound { id } => write!(f, "no schedule with id {id}"),
    ScheduleError::BadCronExpression { expression, reason } => {
        write!(f, "bad cron expression {expression:?}: {reason}")
    }
    ScheduleError::Invalid { id, reason } => write!(f, "invalid schedule {id}: {reason}"),
    ScheduleError::PayloadTooLarge { size, limit } => too_large(f, *size, *limit),
    ScheduleError::Damaged { run, source } => backend(f, Some(run), source),
    ScheduleError::Storage { source } => backend(f, None, source),
});
