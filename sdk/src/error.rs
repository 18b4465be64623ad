//! The errors workflow and activity authors return and receive.
//!
//! [`ActivityError`] is what an activity returns: it says whether a retry
//! can help. [`ActivityFailed`] is what a workflow receives once the store
//! has given up retrying. [`WorkflowError`] is what a workflow returns; `?`
//! converts any error into it.

use refrain_history::{CommandSeq, Event, Failure, FailureCause, Payload};
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

/// `Failure::kind` of a run closed because one of its commands carries a
/// payload over the store's limit (`StoreConfig::max_payload_bytes`), and
/// of an activity attempt whose result is over it. The worker, not the
/// workflow code, writes the closing activation (`ActivationStarted`, then
/// `WorkflowFailed` alone), so replay takes it as the run's end instead of
/// checking it against the code, whatever the limit is by then.
pub const PAYLOAD_TOO_LARGE_KIND: &str = "payload-too-large";

/// A command of an activation with a payload over the store's payload
/// limit. The store refuses the whole activation, so retrying the task
/// would only produce the same command again: the worker closes the run
/// with [`OversizedCommand::into_failure`] instead.
///
/// Failing the run, rather than failing the call in the workflow code, is
/// also what Temporal's server does with a command over its blob size
/// limit. An error at the call site would make the code's path depend on
/// the limit in force, which may differ when the history is replayed; the
/// recorded failure does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OversizedCommand {
    /// The command's event kind (`WorkflowCompleted`, `ActivityScheduled`).
    pub command: &'static str,
    /// Which of its payloads is too large ("the result", "the input").
    pub field: &'static str,
    /// The command number and what the command calls, when it has them.
    pub target: Option<String>,
    /// The payload's size in bytes.
    pub size: usize,
    /// The limit in bytes.
    pub limit: usize,
}

impl OversizedCommand {
    /// The first command among `events` with a payload over `limit` bytes
    /// (`StoreConfig::max_payload_bytes`, capped, as the store caps it, by
    /// the codec's largest value): what the store would refuse, read from
    /// the same table ([`Event::payload_sizes`]).
    pub fn find(events: &[Event], limit: usize) -> Option<Self> {
        let limit = limit.min(refrain_history::codec::MAX_VALUE_BYTES);
        events.iter().find_map(|e| {
            let (field, size) = e
                .payload_sizes()
                .into_iter()
                .find(|&(_, size)| size > limit)?;
            Some(OversizedCommand {
                command: e.kind(),
                field,
                target: target_of(e),
                size,
                limit,
            })
        })
    }

    /// The failure the run closes with: kind [`PAYLOAD_TOO_LARGE_KIND`],
    /// not retryable, the message naming command, size and limit.
    pub fn into_failure(self) -> Failure {
        let mut failure = Failure::application(PAYLOAD_TOO_LARGE_KIND, self.to_string());
        failure.non_retryable = true;
        failure
    }
}

impl fmt::Display for OversizedCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.field, self.command)?;
        if let Some(target) = &self.target {
            write!(f, " ({target})")?;
        }
        write!(
            f,
            " is {} bytes, over the payload limit of {} bytes; the run cannot record it, so it fails (keep large data outside the history and pass a reference to it)",
            self.size, self.limit
        )
    }
}

/// The command number of `event` and what it calls, if it has them.
fn target_of(event: &Event) -> Option<String> {
    match event {
        Event::ActivityScheduled {
            cmd, activity_type, ..
        } => Some(format!("{cmd}, activity {activity_type}")),
        Event::ChildWorkflowStarted {
            cmd,
            workflow_type,
            workflow_id,
            ..
        } => Some(format!("{cmd}, child {workflow_type} {workflow_id}")),
        Event::SideEffectRecorded { cmd, .. } => Some(cmd.to_string()),
        Event::HumanTaskAssigned { cmd, task, .. } => Some(format!("{cmd}, human task {task}")),
        Event::UpdateCompleted { update_id, .. } | Event::UpdateFailed { update_id, .. } => {
            Some(format!("update {update_id}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refrain_history::{ActivityOptions, Callsite};

    fn scheduled(cmd: u32, size: usize) -> Event {
        Event::ActivityScheduled {
            cmd: CommandSeq(cmd),
            activity_type: "upload".into(),
            input: Payload::from_bytes(vec![b'x'; size]),
            options: ActivityOptions::default(),
            callsite: Callsite::from_location(std::panic::Location::caller()),
        }
    }

    #[test]
    fn a_payload_at_the_limit_passes_as_the_store_admits_it() {
        let events = [
            Event::ActivationStarted {
                time: refrain_history::Timestamp(0),
            },
            scheduled(1, 100),
            Event::WorkflowCompleted {
                result: Payload::from_bytes(vec![b'r'; 100]),
            },
        ];
        assert_eq!(OversizedCommand::find(&events, 100), None);
    }

    #[test]
    fn the_first_command_over_the_limit_is_named() {
        let events = [
            scheduled(1, 10),
            scheduled(2, 101),
            Event::WorkflowCompleted {
                result: Payload::from_bytes(vec![b'r'; 500]),
            },
        ];
        let found = OversizedCommand::find(&events, 100).expect("found");
        assert_eq!(
            found,
            OversizedCommand {
                command: "ActivityScheduled",
                field: "the input",
                target: Some("cmd 2, activity upload".into()),
                size: 101,
                limit: 100,
            }
        );
        let failure = found.into_failure();
        assert_eq!(failure.kind, PAYLOAD_TOO_LARGE_KIND);
        assert!(failure.non_retryable);
        assert!(
            failure.message.starts_with(
                "the input of ActivityScheduled (cmd 2, activity upload) is 101 bytes, over the payload limit of 100 bytes"
            ),
            "{}",
            failure.message
        );
    }

    #[test]
    fn signals_carried_into_the_next_run_count_together() {
        let signal = |n| refrain_history::SignalRecord {
            name: "s".into(),
            payload: Payload::from_bytes(vec![b's'; n]),
            sender: None,
        };
        let events = [Event::WorkflowContinuedAsNew {
            input: Payload::from_bytes(vec![b'i'; 10]),
            seed: 0,
            carried_signals: vec![signal(60), signal(60)],
        }];
        let found = OversizedCommand::find(&events, 100).expect("found");
        assert_eq!((found.field, found.size), ("the carried signals", 120));
    }
}
