//! How the error families of the [`HistoryStore`] seam become
//! [`ClientError`]s: what a caller acts on keeps its fields (the id not
//! found, the closed run's status, the payload's size and limit), and the
//! store's own failures keep their source.
//!
//! [`HistoryStore`]: refrain_history::HistoryStore

use crate::client::ClientError;
use refrain_history::{HumanTaskError, ReadError, RunOpError, StartError, UpdateError};

impl From<StartError> for ClientError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::AlreadyRunning { workflow_id, run } => {
                ClientError::AlreadyRunning { workflow_id, run }
            }
            StartError::PayloadTooLarge { size, limit } => {
                ClientError::PayloadTooLarge { size, limit }
            }
            StartError::Damaged { run, source } => ClientError::Damaged { run, source },
            StartError::Storage { source } => ClientError::Storage { source },
            other => ClientError::Storage {
                source: Box::new(other),
            },
        }
    }
}

impl From<RunOpError> for ClientError {
    fn from(e: RunOpError) -> Self {
        match e {
            RunOpError::NotFound { workflow_id } => ClientError::NotFound { workflow_id },
            RunOpError::Closed {
                workflow_id,
                status,
                ..
            } => ClientError::Closed {
                workflow_id,
                status,
            },
            RunOpError::PayloadTooLarge { size, limit } => {
                ClientError::PayloadTooLarge { size, limit }
            }
            RunOpError::Damaged { run, source } => ClientError::Damaged { run, source },
            RunOpError::Storage { source } => ClientError::Storage { source },
            other => ClientError::Storage {
                source: Box::new(other),
            },
        }
    }
}

impl From<UpdateError> for ClientError {
    fn from(e: UpdateError) -> Self {
        match e {
            UpdateError::NotFound { workflow_id } => ClientError::NotFound { workflow_id },
            UpdateError::Closed {
                workflow_id,
                status,
                ..
            } => ClientError::Closed {
                workflow_id,
                status,
            },
            UpdateError::PayloadTooLarge { size, limit } => {
                ClientError::PayloadTooLarge { size, limit }
            }
            UpdateError::Damaged { run, source } => ClientError::Damaged { run, source },
            UpdateError::Storage { source } => ClientError::Storage { source },
            other => ClientError::Storage {
                source: Box::new(other),
            },
        }
    }
}

impl From<ReadError> for ClientError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::RunNotFound { run } => ClientError::RunNotFound { run },
            ReadError::BadCursor { cursor } => ClientError::BadCursor { cursor },
            ReadError::Damaged { run, source } => ClientError::Damaged { run, source },
            ReadError::Storage { source } => ClientError::Storage { source },
            other => ClientError::Storage {
                source: Box::new(other),
            },
        }
    }
}

impl From<HumanTaskError> for ClientError {
    fn from(e: HumanTaskError) -> Self {
        match e {
            HumanTaskError::NotFound { run, cmd } => ClientError::HumanTaskNotFound {
                task: format!("{cmd} of {run}"),
            },
            HumanTaskError::Closed { run, cmd, why } => ClientError::HumanTaskClosed {
                task: format!("{cmd} of {run}"),
                why,
            },
            HumanTaskError::Reassigned {
                run,
                cmd,
                expected,
                assignee,
            } => ClientError::HumanTaskReassigned {
                task: format!("{cmd} of {run}"),
                expected,
                assignee,
            },
            HumanTaskError::PayloadTooLarge { size, limit } => {
                ClientError::PayloadTooLarge { size, limit }
            }
            HumanTaskError::Damaged { run, source } => ClientError::Damaged { run, source },
            HumanTaskError::Storage { source } => ClientError::Storage { source },
            other => ClientError::Storage {
                source: Box::new(other),
            },
        }
    }
}
