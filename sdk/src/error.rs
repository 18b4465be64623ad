//! The errors workflow and activity authors return and receive.
//!
//! [`ActivityError`] is what an activity returns: it says whether a retry
//! can help. [`ActivityFailed`] is what a workflow receives once the store
//! has given up retrying. [`WorkflowError`] is what a workflow returns; `?`
//! converts any error into it.

use refrain_history::{CommandSeq, Failure, FailureCause, Payload};
use std::fmt;

/// Error returned by an activity attempt.
///
/// Like `anyhow::Error`, it converts from any `std::error::Error` (as a
/// retryable failure), so `?` works inside activities. It does not itself
/// implement `std::error::Error`, which is what makes that conversion
/// possible.
pub struct ActivityError {
    failure: Failure,
}

impl ActivityError {
    /// A failure that a later attempt may not repeat (a network blip, a
    /// locked row).
    pub fn retryable(err: impl fmt::Display) -> Self {
        ActivityError {
            failure: Failure::application("error", err.to_string()),
        }
    }

    /// A failure that retrying cannot fix (card declined, invalid input):
    /// the workflow sees it at once.
    pub fn non_retryable(err: impl fmt::Display) -> Self {
        let mut failure = Failure::application("error", err.to_string());
        failure.non_retryable = true;
        ActivityError { failure }
    }

    /// Sets the error kind that retry policies match with
    /// `RetryPolicy::non_retryable(kind)`.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.failure.kind = kind.into();
        self
    }

    /// Attaches structured details the workflow can read.
    pub fn with_details(mut self, details: Payload) -> Self {
        self.failure.details = Some(details);
        self
    }

    /// The failure as it will be recorded.
    pub fn failure(&self) -> &Failure {
        &self.failure
    }

    /// Converts into the recorded failure.
    pub fn into_failure(self) -> Failure {
        self.failure
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ActivityError {
    fn from(e: E) -> Self {
        ActivityError::retryable(e)
    }
}

impl fmt::Debug for ActivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.failure, f)
    }
}

impl fmt::Display for ActivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.failure, f)
    }
}

/// An activity failed for good: retries were exhausted, the error was not
/// retryable, or a timeout ended it. Returned by awaiting an activity.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityFailed {
    /// The activity type.
    pub activity_type: String,
    /// The command that scheduled it.
    pub cmd: CommandSeq,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's failure.
    pub failure: Failure,
}

impl ActivityFailed {
    /// Whether the final failure was a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.failure.cause, FailureCause::Timeout(_))
    }
}

impl fmt::Display for ActivityFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "activity {} ({}) failed after {} attempt{}: {}",
            self.activity_type,
            self.cmd,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.failure
        )
    }
}

impl std::error::Error for ActivityFailed {}

/// Error returned by a workflow; recorded as `WorkflowFailed`.
///
/// Converts from any `std::error::Error`, so `?` works on activity results,
/// payload errors and user errors alike.
pub struct WorkflowError {
    failure: Failure,
}

impl WorkflowError {
    /// A workflow failure of `kind` with `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        let mut failure = Failure::application(kind, message);
        failure.non_retryable = true;
        WorkflowError { failure }
    }

    /// The workflow stops because cancellation was requested; recorded as
    /// `WorkflowCancelled` and the run ends `Cancelled`.
    pub fn cancelled(reason: impl Into<String>) -> Self {
        WorkflowError {
            failure: Failure::cancelled(reason),
        }
    }

    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        self.failure.cause == refrain_history::FailureCause::Cancelled
    }

    /// The failure as it will be recorded.
    pub fn failure(&self) -> &Failure {
        &self.failure
    }

    /// Converts into the recorded failure.
    pub fn into_failure(self) -> Failure {
        self.failure
    }

    /// Rebuilds an error from a recorded failure.
    pub fn from_failure(failure: Failure) -> Self {
        WorkflowError { failure }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for WorkflowError {
    fn from(e: E) -> Self {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
        let kind = if boxed.is::<ActivityFailed>() {
            "activity-failed"
        } else if boxed.is::<crate::child::ChildWorkflowFailed>() {
            "child-failed"
        } else if boxed.is::<crate::human_task::HumanTaskFailed>() {
            "human-task-failed"
        } else if boxed.is::<crate::payload::PayloadError>() {
            "payload"
        } else {
            "error"
        };
        WorkflowError::new(kind, boxed.to_string())
    }
}

impl fmt::Debug for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.failure, f)
    }
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.failure, f)
    }
}
