//! The errors of the worker side of [`HistoryStore`](super::HistoryStore):
//! committing activations, and completing or heartbeating activity
//! attempts. The shared machinery is in `errors`.

use super::errors::{backend, classify, error_family, too_large, BackendError, Failure};
use crate::error::StoreError;
use crate::ids::{CommandSeq, EventSeq, RunId};
use std::fmt;

// ----- activations -----

/// Errors of committing or failing an activation. Nothing was written:
/// the task is void, and the run is offered again with what it has now.
#[derive(Debug)]
#[non_exhaustive]
pub enum CommitError {
    /// The task's lease was lost (another claim, or a restart).
    LeaseLost {
        /// The run.
        run: RunId,
    },
    /// The run's history moved since the task was taken.
    Conflict {
        /// The run.
        run: RunId,
        /// The last event the commit expected.
        expected: EventSeq,
        /// The last event found.
        found: EventSeq,
    },
    /// The commit is malformed (events out of order, an inbound event among
    /// the commands, a result it does not carry, ...).
    Invalid {
        /// The run.
        run: RunId,
        /// What is wrong.
        reason: String,
    },
    /// An attempt completed in process no longer holds its token (it timed
    /// out): its result cannot be recorded.
    StaleActivity {
        /// The run.
        run: RunId,
        /// The activity's command.
        cmd: CommandSeq,
    },
    /// A payload in the commit exceeds the store's limit.
    PayloadTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The commit would take the history past the store's limits; continue
    /// as new sooner (a commit whose only command is `WorkflowFailed` is
    /// still accepted).
    HistoryLimitExceeded {
        /// The run.
        run: RunId,
        /// Events the history would hold.
        events: u64,
        /// Encoded bytes the history would hold.
        bytes: u64,
        /// The event limit.
        max_events: u64,
        /// The byte limit.
        max_bytes: u64,
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

impl From<StoreError> for CommitError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::LeaseLost { run } => CommitError::LeaseLost { run },
            StoreError::Conflict {
                run,
                expected,
                found,
            } => CommitError::Conflict {
                run,
                expected,
                found,
            },
            StoreError::InvalidCommit { run, reason } => CommitError::Invalid { run, reason },
            StoreError::StaleActivity { run, cmd } => CommitError::StaleActivity { run, cmd },
            StoreError::PayloadTooLarge { size, limit } => {
                CommitError::PayloadTooLarge { size, limit }
            }
            StoreError::HistoryLimitExceeded {
                run,
                events,
                bytes,
                max_events,
                max_bytes,
            } => CommitError::HistoryLimitExceeded {
                run,
                events,
                bytes,
                max_events,
                max_bytes,
            },
            other => match classify(other) {
                Failure::Damaged(run, source) => CommitError::Damaged { run, source },
                Failure::Storage(source) => CommitError::Storage { source },
            },
        }
    }
}

error_family!(CommitError, |s, f| match s {
    CommitError::LeaseLost { run } => write!(f, "activation lease on {run} was lost"),
    CommitError::Conflict {
        run,
        expected,
        found,
    } => write!(
        f,
        "history of {run} moved: expected last event {expected}, found {found}"
    ),
    CommitError::Invalid { run, reason } => write!(f, "invalid commit for {run}: {reason}"),
    CommitError::StaleActivity { run, cmd } => write!(
        f,
        "activity {cmd} of {run} completed in process but no longer holds its attempt (timed out)"
    ),
    CommitError::PayloadTooLarge { size, limit } => too_large(f, *size, *limit),
    CommitError::HistoryLimitExceeded {
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
    CommitError::Damaged { run, source } => backend(f, Some(run), source),
    CommitError::Storage { source } => backend(f, None, source),
});

// ----- activity tasks -----

/// Errors of completing or heartbeating an activity attempt.
#[derive(Debug)]
#[non_exhaustive]
pub enum ActivityError {
    /// The attempt no longer holds its token (it timed out, its run closed,
    /// or the task is gone). Nothing was written: a late result of a
    /// timed-out attempt is never recorded.
    Stale {
        /// The run.
        run: RunId,
        /// The activity's command.
        cmd: CommandSeq,
        /// The attempt that presented the token (0 if the backend's report
        /// did not name it; the sled implementation always does).
        attempt: u32,
    },
    /// The result or the heartbeat details exceed the store's limit.
    /// Nothing was written.
    PayloadTooLarge {
        /// Their size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The task's stored data is damaged.
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

impl ActivityError {
    /// `e` reported for `attempt` of an activity (a `StoreError` does not
    /// name the attempt).
    pub(crate) fn for_attempt(e: StoreError, attempt: u32) -> Self {
        match e {
            StoreError::StaleActivity { run, cmd } => ActivityError::Stale { run, cmd, attempt },
            other => other.into(),
        }
    }
}

impl From<StoreError> for ActivityError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::StaleActivity { run, cmd } => ActivityError::Stale {
                run,
                cmd,
                attempt: 0,
            },
            StoreError::PayloadTooLarge { size, limit } => {
                ActivityError::PayloadTooLarge { size, limit }
            }
            other => match classify(other) {
                Failure::Damaged(run, source) => ActivityError::Damaged { run, source },
                Failure::Storage(source) => ActivityError::Storage { source },
            },
        }
    }
}

error_family!(ActivityError, |s, f| match s {
    ActivityError::Stale { run, cmd, attempt } => write!(
        f,
        "attempt {attempt} of activity {cmd} of {run} no longer holds its token (timed out or gone)"
    ),
    ActivityError::PayloadTooLarge { size, limit } => too_large(f, *size, *limit),
    ActivityError::Damaged { run, source } => backend(f, Some(run), source),
    ActivityError::Storage { source } => backend(f, None, source),
});
