//! The events of a run's history. This is a persisted format: variants and
//! fields are only ever appended under a new schema version, never
//! reordered, and golden byte fixtures in `tests/` keep old histories
//! readable. No serde attribute that bincode cannot honour is used here;
//! a field added in schema version 2 reads as its default from a version-1
//! value (`crate::codec::since_v2`, see the codec's module docs).

use crate::ids::{CommandSeq, RunId, Timestamp, WorkflowId};
use crate::options::ActivityOptions;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A user value as recorded in history: JSON bytes. JSON rather than
/// bincode because user types evolve (a new optional field must still
/// decode old histories) and because operators read histories.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Payload(pub Vec<u8>);

impl Payload {
    /// Wraps already-encoded bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Payload(bytes)
    }
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the payload holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// A short stable digest (CRC32C) used in reports to tell inputs apart
    /// without printing them.
    pub fn digest(&self) -> u32 {
        crc32c::crc32c(&self.0)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) if s.len() <= 200 => write!(f, "{s}"),
            Ok(s) => write!(
                f,
                "{}… ({} bytes)",
                &s[..s.floor_char_boundary_compat(200)],
                s.len()
            ),
            Err(_) => write!(f, "<{} bytes>", self.0.len()),
        }
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        if i >= self.len() {
            return self.len();
        }
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

/// Where in workflow source code a command was issued, so that a
/// nondeterminism report can point at the line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Callsite {
    /// Source file as the compiler names it.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Callsite {
    /// The location of `loc`, typically `Location::caller()`.
    pub fn from_location(loc: &std::panic::Location<'_>) -> Self {
        Callsite {
            file: loc.file().to_owned(),
            line: loc.line(),
            column: loc.column(),
        }
    }
}

impl fmt::Display for Callsite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Which deadline an activity attempt missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeoutKind {
    /// One attempt ran longer than its start-to-close timeout.
    StartToClose,
    /// All attempts together ran past the schedule-to-close timeout.
    ScheduleToClose,
    /// A running attempt stopped heartbeating.
    Heartbeat,
}

/// What kind of thing went wrong, beyond the user's own error kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureCause {
    /// The activity or workflow returned an error.
    Application,
    /// The activity panicked.
    Panicked,
    /// A deadline passed.
    Timeout(TimeoutKind),
    /// No worker had the activity type registered.
    NotRegistered,
    /// Cancellation was requested and the work stopped.
    Cancelled,
    /// The run was terminated without cleanup.
    Terminated,
}

/// `Failure::kind` of the failure a worker closes a run with when its next
/// commit would pass the store's history limits. The worker, not the
/// workflow code, writes that last activation (`ActivationStarted`, then
/// `WorkflowFailed` alone), so replay takes it as the run's end instead of
/// checking it against the code.
pub const HISTORY_LIMIT_KIND: &str = "history-limit";

/// A failure as recorded in history: what an activity or workflow error
/// looks like once it has crossed a process boundary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// User-defined error kind, matched by `RetryPolicy::non_retryable`.
    pub kind: String,
    /// Human-readable message.
    pub message: String,
    /// Whether the failing code said that retrying cannot help.
    pub non_retryable: bool,
    /// What kind of failure this is.
    pub cause: FailureCause,
    /// Optional structured details.
    pub details: Option<Payload>,
}

impl Failure {
    /// An application failure of `kind` with `message`.
    pub fn application(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            kind: kind.into(),
            message: message.into(),
            non_retryable: false,
            cause: FailureCause::Application,
            details: None,
        }
    }

    /// A cancellation, with the reason given.
    pub fn cancelled(reason: impl Into<String>) -> Self {
        Failure {
            kind: "cancelled".into(),
            message: reason.into(),
            non_retryable: true,
            cause: FailureCause::Cancelled,
            details: None,
        }
    }

    /// A termination, with the reason given.
    pub fn terminated(reason: impl Into<String>) -> Self {
        Failure {
            kind: "terminated".into(),
            message: reason.into(),
            non_retryable: true,
            cause: FailureCause::Terminated,
            details: None,
        }
    }

    /// A timeout of the given kind.
    pub fn timeout(kind: TimeoutKind) -> Self {
        let what = match kind {
            TimeoutKind::StartToClose => "start-to-close",
            TimeoutKind::ScheduleToClose => "schedule-to-close",
            TimeoutKind::Heartbeat => "heartbeat",
        };
        Failure {
            kind: "timeout".into(),
            message: format!("activity {what} timeout expired"),
            non_retryable: false,
            cause: FailureCause::Timeout(kind),
            details: None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// One immutable entry of a run's history.
///
/// An activation is recorded as `ActivationStarted`, then the inbound
/// events it applied (`ActivityCompleted`, `TimerFired`, `SignalReceived`,
/// ...), then the commands the workflow produced (`ActivityScheduled`,
/// `TimerStarted`, ..., `WorkflowCompleted`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// First event of every run.
    WorkflowStarted {
        /// Registered workflow type name.
        workflow_type: String,
        /// The caller-chosen id.
        workflow_id: WorkflowId,
        /// The workflow's input.
        input: Payload,
        /// Seed of the run's deterministic random generator.
        seed: u64,
        /// When the client started the run.
        start_time: Timestamp,
        /// The run this one continues, after `WorkflowContinuedAsNew`.
        continued_from: Option<RunId>,
        /// The parent workflow's command that started this run as a child.
        parent: Option<ParentRef>,
    },
    /// Opens an activation; `time` is what `ctx.now()` returns during it.
    ActivationStarted {
        /// Recorded wall-clock time of the activation.
        time: Timestamp,
    },
    /// Command: run an activity.
    ActivityScheduled {
        /// Command number.
        cmd: CommandSeq,
        /// Registered activity type name.
        activity_type: String,
        /// The activity's input.
        input: Payload,
        /// Timeouts and retry policy.
        options: ActivityOptions,
        /// Where the workflow asked for it.
        callsite: Callsite,
    },
    /// Inbound: an activity finished successfully.
    ActivityCompleted {
        /// Command that scheduled it.
        cmd: CommandSeq,
        /// Which attempt succeeded (1-based).
        attempt: u32,
        /// Its result.
        result: Payload,
    },
    /// Inbound: an activity failed for good (retries exhausted or not
    /// retryable).
    ActivityFailed {
        /// Command that scheduled it.
        cmd: CommandSeq,
        /// Attempts made.
        attempt: u32,
        /// The last failure.
        failure: Failure,
    },
    /// Command: start a durable timer.
    TimerStarted {
        /// Command number.
        cmd: CommandSeq,
        /// When it fires.
        fire_at: Timestamp,
        /// Where the workflow asked for it.
        callsite: Callsite,
    },
    /// Inbound: a timer fired.
    TimerFired {
        /// Command that started it.
        cmd: CommandSeq,
    },
    /// Command: a timer that has not fired is no longer wanted.
    TimerCancelled {
        /// Command that started it.
        cmd: CommandSeq,
    },
    /// Inbound: a signal arrived.
    SignalReceived {
        /// Signal name.
        name: String,
        /// Signal value.
        payload: Payload,
        /// Who sent it, as the sender said (a person, a system), for the
        /// audit trail.
        sender: Option<String>,
    },
    /// Command: a value computed once by `ctx.side_effect` (also used by
    /// `ctx.uuid`-style helpers that must not be recomputed on replay).
    SideEffectRecorded {
        /// Command number.
        cmd: CommandSeq,
        /// The recorded value.
        value: Payload,
        /// Where the workflow asked for it.
        callsite: Callsite,
    },
    /// Command: the workflow returned a value. Last event of the run.
    WorkflowCompleted {
        /// The result.
        result: Payload,
    },
    /// Command: the workflow returned an error. Last event of the run.
    WorkflowFailed {
        /// The error.
        failure: Failure,
    },
    /// Command: `ctx.patched(id)` took the new path in this run, so replays
    /// of it take the new path too. Not matched against code on replay.
    PatchMarker {
        /// The patch id.
        patch_id: String,
        /// Recorded by `ctx.deprecate_patch` rather than `ctx.patched`.
        deprecated: bool,
    },
    /// Command: the run ends and a new run of the same workflow id starts
    /// with `input` and a fresh history. Last event of the run.
    WorkflowContinuedAsNew {
        /// Input of the new run.
        input: Payload,
        /// Seed of the new run's random generator.
        seed: u64,
        /// Signals this run received but its code never took; they are
        /// delivered to the new run first, in this order.
        carried_signals: Vec<SignalRecord>,
    },
    /// Inbound: someone asked the workflow to cancel. The workflow sees it
    /// through `ctx.cancelled()` and may clean up before it ends.
    WorkflowCancelRequested {
        /// Why.
        reason: String,
        /// Who asked.
        requested_by: Option<String>,
    },
    /// Command: a running or scheduled activity is no longer wanted (its
    /// future was dropped, or the workflow is cancelling). A scheduled one
    /// fails at once as cancelled; a running one learns it at its next
    /// heartbeat.
    ActivityCancelRequested {
        /// Command that scheduled it.
        cmd: CommandSeq,
    },
    /// Command: the workflow ended because it was cancelled. Last event of
    /// the run.
    WorkflowCancelled {
        /// The reason given with the request.
        reason: String,
    },
    /// Written by the store, not by workflow code: the run was terminated
    /// without cleanup. Last event of the run.
    WorkflowTerminated {
        /// Why.
        reason: String,
        /// Who terminated it (a person or a system), as the caller said;
        /// `None` when not said, and in runs terminated before schema
        /// version 2 (whose reason may end with "(terminated by …)").
        #[serde(deserialize_with = "crate::codec::since_v2")]
        terminated_by: Option<String>,
    },
    /// Command: start a child workflow. The store starts it in the same
    /// transaction that records this command.
    ChildWorkflowStarted {
        /// Command number.
        cmd: CommandSeq,
        /// The child's workflow type.
        workflow_type: String,
        /// The child's workflow id.
        workflow_id: WorkflowId,
        /// The child's input.
        input: Payload,
        /// Seed of the child's random generator.
        seed: u64,
        /// What happens to the child if this run closes first.
        parent_close: ParentClosePolicy,
        /// Where the workflow asked for it.
        callsite: Callsite,
    },
    /// Inbound: a child workflow returned a value.
    ChildWorkflowCompleted {
        /// Command that started it.
        cmd: CommandSeq,
        /// Its result.
        result: Payload,
    },
    /// Inbound: a child workflow failed, was cancelled or terminated, or
    /// could not start (its id was taken).
    ChildWorkflowFailed {
        /// Command that started it.
        cmd: CommandSeq,
        /// Why.
        failure: Failure,
    },
    /// Command: a child workflow's result is no longer wanted; the child
    /// receives a cancellation request.
    ChildWorkflowCancelRequested {
        /// Command that started it.
        cmd: CommandSeq,
    },
    /// Command: a person is asked to decide something (approve a loan,
    /// acknowledge an incident). The store indexes the open task under its
    /// assignee until it is decided, escalated or closed; `cmd` names the
    /// task in every later event about it.
    HumanTaskAssigned {
        /// Command number; the task's identity within the run.
        cmd: CommandSeq,
        /// What is asked (`underwriting-review`, `ack-incident`).
        task: String,
        /// Who is asked.
        assignee: String,
        /// What the person needs to decide (the form they see), if any.
        form: Option<Payload>,
        /// When this assignee's time runs out, if it does.
        deadline: Option<Timestamp>,
        /// Escalation level: 0 for the first assignee, +1 per escalation.
        level: u32,
        /// Where the workflow asked for it.
        callsite: Callsite,
        /// Who gets the task next, in order, each when the previous
        /// assignee's deadline passes (the first when `deadline` does).
        /// Empty without a chain, and in tasks assigned before schema
        /// version 2. Informational: replay does not compare it.
        #[serde(deserialize_with = "crate::codec::since_v2")]
        escalations: Vec<EscalationStep>,
    },
    /// Command: the assignee of an open human task was reminded.
    HumanTaskReminded {
        /// The task (its `HumanTaskAssigned` command).
        cmd: CommandSeq,
        /// Who was reminded.
        assignee: String,
    },
    /// Command: an open human task moved to the next person because its
    /// assignee's deadline passed.
    HumanTaskEscalated {
        /// The task (its `HumanTaskAssigned` command).
        cmd: CommandSeq,
        /// Who had it.
        from: String,
        /// Who has it now.
        to: String,
        /// The new escalation level.
        level: u32,
        /// When the new assignee's time runs out, if it does.
        deadline: Option<Timestamp>,
    },
    /// Inbound: a person decided an open human task. Written by the store
    /// when the decision is submitted; this is the audit record of who
    /// decided what, when and why.
    HumanTaskDecided {
        /// The task (its `HumanTaskAssigned` command).
        cmd: CommandSeq,
        /// The decision.
        decision: Payload,
        /// Who decided, as the caller said.
        decided_by: String,
        /// Why, if they said.
        comment: Option<String>,
        /// When the decision was submitted (the activation that applies it
        /// may come later).
        decided_at: Timestamp,
    },
    /// Command: a human task ended without a decision (nobody answered and
    /// a fallback was used or the task failed, or the workflow stopped
    /// waiting for it). The store drops it from the assignee's list.
    HumanTaskClosed {
        /// The task (its `HumanTaskAssigned` command).
        cmd: CommandSeq,
        /// Why.
        reason: String,
    },
    /// Inbox only, never part of a history: a client asks the run to
    /// apply an update. The workflow's validator turns it into
    /// `UpdateAccepted`, or rejects it, in which case the history keeps
    /// no trace of it and the store answers the caller directly.
    UpdateRequested {
        /// The caller's id for the request; a repeated id is the same
        /// request.
        update_id: String,
        /// Update name (`Update::NAME`).
        name: String,
        /// The arguments.
        input: Payload,
    },
    /// Command: the workflow's validator accepted an update; its handler
    /// runs from here. Replay re-runs the handler from this record rather
    /// than asking the validator again.
    UpdateAccepted {
        /// The request's id.
        update_id: String,
        /// Update name.
        name: String,
        /// The arguments.
        input: Payload,
    },
    /// Command: an accepted update's handler returned a result.
    UpdateCompleted {
        /// The request's id.
        update_id: String,
        /// The handler's result.
        result: Payload,
    },
    /// Command: an accepted update's handler returned an error.
    UpdateFailed {
        /// The request's id.
        update_id: String,
        /// The handler's error.
        failure: Failure,
    },
    /// Inbound (schema version 2): a member of the group an open human task was assigned to
    /// took it for themselves. Written by the store when the claim is
    /// made (the task moves to the claimer's list at once); the workflow
    /// sees it at its next activation, so that a later reminder or
    /// escalation names the claimer.
    HumanTaskClaimed {
        /// The task (its `HumanTaskAssigned` command).
        cmd: CommandSeq,
        /// The group that had it.
        from: String,
        /// Who claimed it (and has it now).
        claimed_by: String,
        /// When the claim was made.
        claimed_at: Timestamp,
    },
}

/// One step of a human task's escalation chain, as recorded with its
/// assignment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EscalationStep {
    /// Who gets the task at this step.
    pub assignee: String,
    /// How long they have once they get it; `None` when it is the task's
    /// own deadline (or the task has none).
    pub deadline: Option<Duration>,
}

/// What happens to a running child workflow when its parent closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParentClosePolicy {
    /// The child is terminated with the parent.
    Terminate,
    /// The child receives a cancellation request and may clean up.
    RequestCancel,
    /// The child runs on by itself.
    Abandon,
}

/// A signal carried from one run to the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// Signal name.
    pub name: String,
    /// Signal value.
    pub payload: Payload,
    /// Who sent it.
    pub sender: Option<String>,
}

/// Which parent command started a child run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// Parent workflow id.
    pub workflow_id: WorkflowId,
    /// Parent run.
    pub run: RunId,
    /// The parent's command.
    pub cmd: CommandSeq,
}

impl Event {
    /// Short name of the event kind, as used in reports and the JSON form.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::WorkflowStarted { .. } => "WorkflowStarted",
            Event::ActivationStarted { .. } => "ActivationStarted",
            Event::ActivityScheduled { .. } => "ActivityScheduled",
            Event::ActivityCompleted { .. } => "ActivityCompleted",
            Event::ActivityFailed { .. } => "ActivityFailed",
            Event::TimerStarted { .. } => "TimerStarted",
            Event::TimerFired { .. } => "TimerFired",
            Event::TimerCancelled { .. } => "TimerCancelled",
            Event::SignalReceived { .. } => "SignalReceived",
            Event::SideEffectRecorded { .. } => "SideEffectRecorded",
            Event::WorkflowCompleted { .. } => "WorkflowCompleted",
            Event::WorkflowFailed { .. } => "WorkflowFailed",
            Event::PatchMarker { .. } => "PatchMarker",
            Event::WorkflowContinuedAsNew { .. } => "WorkflowContinuedAsNew",
            Event::WorkflowCancelRequested { .. } => "WorkflowCancelRequested",
            Event::ActivityCancelRequested { .. } => "ActivityCancelRequested",
            Event::WorkflowCancelled { .. } => "WorkflowCancelled",
            Event::WorkflowTerminated { .. } => "WorkflowTerminated",
            Event::ChildWorkflowStarted { .. } => "ChildWorkflowStarted",
            Event::ChildWorkflowCompleted { .. } => "ChildWorkflowCompleted",
            Event::ChildWorkflowFailed { .. } => "ChildWorkflowFailed",
            Event::ChildWorkflowCancelRequested { .. } => "ChildWorkflowCancelRequested",
            Event::HumanTaskAssigned { .. } => "HumanTaskAssigned",
            Event::HumanTaskReminded { .. } => "HumanTaskReminded",
            Event::HumanTaskEscalated { .. } => "HumanTaskEscalated",
            Event::HumanTaskDecided { .. } => "HumanTaskDecided",
            Event::HumanTaskClosed { .. } => "HumanTaskClosed",
            Event::UpdateRequested { .. } => "UpdateRequested",
            Event::UpdateAccepted { .. } => "UpdateAccepted",
            Event::UpdateCompleted { .. } => "UpdateCompleted",
            Event::UpdateFailed { .. } => "UpdateFailed",
            Event::HumanTaskClaimed { .. } => "HumanTaskClaimed",
        }
    }

    /// Whether this event records a command the workflow produced (as
    /// opposed to something that happened to it).
    pub fn is_command(&self) -> bool {
        matches!(
            self,
            Event::ActivityScheduled { .. }
                | Event::TimerStarted { .. }
                | Event::TimerCancelled { .. }
                | Event::SideEffectRecorded { .. }
                | Event::WorkflowCompleted { .. }
                | Event::WorkflowFailed { .. }
                | Event::PatchMarker { .. }
                | Event::WorkflowContinuedAsNew { .. }
                | Event::ActivityCancelRequested { .. }
                | Event::WorkflowCancelled { .. }
                | Event::ChildWorkflowStarted { .. }
                | Event::ChildWorkflowCancelRequested { .. }
                | Event::HumanTaskAssigned { .. }
                | Event::HumanTaskReminded { .. }
                | Event::HumanTaskEscalated { .. }
                | Event::HumanTaskClosed { .. }
                | Event::UpdateAccepted { .. }
                | Event::UpdateCompleted { .. }
                | Event::UpdateFailed { .. }
        )
    }

    /// Whether this event arrives through a run's inbox and is recorded in
    /// its history as it arrived. (`UpdateRequested` also arrives through
    /// the inbox, but is never recorded: see [`Event::is_inbox_only`].)
    pub fn is_inbound(&self) -> bool {
        matches!(
            self,
            Event::ActivityCompleted { .. }
                | Event::ActivityFailed { .. }
                | Event::TimerFired { .. }
                | Event::SignalReceived { .. }
                | Event::WorkflowCancelRequested { .. }
                | Event::ChildWorkflowCompleted { .. }
                | Event::ChildWorkflowFailed { .. }
                | Event::HumanTaskDecided { .. }
                | Event::HumanTaskClaimed { .. }
        )
    }

    /// Whether this event travels through a run's inbox but must never be
    /// appended to a history.
    pub fn is_inbox_only(&self) -> bool {
        matches!(self, Event::UpdateRequested { .. })
    }

    /// Whether this event closes the run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Event::WorkflowCompleted { .. }
                | Event::WorkflowFailed { .. }
                | Event::WorkflowContinuedAsNew { .. }
                | Event::WorkflowCancelled { .. }
                | Event::WorkflowTerminated { .. }
        )
    }
}
