//! Records the store keeps beside the history: one per run, one per
//! activity task. Persisted through the codec like events, so the same
//! append-only rules apply to their fields and variants.

use crate::event::{Failure, ParentClosePolicy, ParentRef, Payload};
use crate::ids::{CommandSeq, EventSeq, LeaseToken, RunId, Timestamp, WorkflowId};
use crate::options::ActivityOptions;
use crate::store::durability::FlushTicket;
use serde::{Deserialize, Serialize};

/// Lifecycle of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunStatus {
    /// Started and not yet closed.
    Running,
    /// The workflow returned a value.
    Completed,
    /// The workflow returned an error.
    Failed,
    /// The workflow continued as a new run (`continued_to`).
    ContinuedAsNew,
    /// The workflow ended after a cancellation request.
    Cancelled,
    /// The run was terminated without cleanup.
    Terminated,
}

impl RunStatus {
    /// Whether the run can still make progress.
    pub fn is_open(self) -> bool {
        matches!(self, RunStatus::Running)
    }
    /// Lower-case name, as printed by tools.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::ContinuedAsNew => "continued-as-new",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Terminated => "terminated",
        }
    }
}

/// An activation's claim on a run, held by the store (owner) that granted
/// it. A store that owns its storage alone treats every other owner's
/// lease as void (after a crash, recovery does not wait for lease expiry);
/// over a storage several stores share, another owner's lease holds until
/// that owner stops renewing its leases for the configured lease duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLease {
    /// Fencing token the commit must present.
    pub token: LeaseToken,
    /// The store epoch of the store that granted it: its owner id.
    pub epoch: u64,
}

/// A timer a run is waiting on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTimer {
    /// Command that started it.
    pub cmd: CommandSeq,
    /// When it fires.
    pub fire_at: Timestamp,
}

/// The store's record of one run (tree `runs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The caller-chosen id.
    pub workflow_id: WorkflowId,
    /// Registered workflow type.
    pub workflow_type: String,
    /// Lifecycle state.
    pub status: RunStatus,
    /// When the run was started.
    pub started_at: Timestamp,
    /// When it closed, if it has.
    pub closed_at: Option<Timestamp>,
    /// Sequence number of the last event in history (1 after start).
    pub last_seq: EventSeq,
    /// First inbox index not yet consumed by an activation.
    pub inbox_head: u64,
    /// Next inbox index to be written.
    pub inbox_tail: u64,
    /// Whether the first activation is still to run.
    pub needs_first_activation: bool,
    /// Current activation claim, if any.
    pub lease: Option<RunLease>,
    /// Timers started and neither fired nor cancelled.
    pub pending_timers: Vec<PendingTimer>,
    /// Activities scheduled and not yet resolved.
    pub pending_activities: Vec<CommandSeq>,
    /// Final outcome once closed.
    pub outcome: Option<Result<Payload, Failure>>,
    /// Last reason an activation failed without committing (panic,
    /// nondeterminism, corrupt history), for operators; cleared on commit.
    pub last_task_failure: Option<String>,
    /// Encoded size of the history so far, in bytes.
    pub history_bytes: u64,
    /// The run this one continues.
    pub continued_from: Option<RunId>,
    /// The run that continues this one.
    pub continued_to: Option<RunId>,
    /// The parent command that started this run as a child.
    pub parent: Option<ParentRef>,
    /// Child workflows started by this run and not yet closed.
    pub pending_children: Vec<PendingChild>,
    /// Names of the signals the workflow waits for, as of its last
    /// committed activation (see [`crate::ActivationCommit::awaited_signals`]).
    /// Empty before the first activation and for records written before
    /// schema version 2.
    #[serde(deserialize_with = "crate::codec::since_v2")]
    pub awaited_signals: Vec<String>,
}

/// A child workflow its parent is waiting on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChild {
    /// The parent's command that started it.
    pub cmd: CommandSeq,
    /// The child's workflow id (its latest run is the one to act on).
    pub workflow_id: WorkflowId,
    /// What happens to it when the parent closes first.
    pub parent_close: ParentClosePolicy,
}

impl RunRecord {
    /// The record of a run that has just been started with a
    /// `WorkflowStarted` of `history_bytes` bytes.
    pub fn started(
        workflow_id: WorkflowId,
        workflow_type: String,
        started_at: Timestamp,
        history_bytes: u64,
        continued_from: Option<RunId>,
        parent: Option<ParentRef>,
    ) -> Self {
        RunRecord {
            workflow_id,
            workflow_type,
            status: RunStatus::Running,
            started_at,
            closed_at: None,
            last_seq: EventSeq(1),
            inbox_head: 0,
            inbox_tail: 0,
            needs_first_activation: true,
            lease: None,
            pending_timers: Vec::new(),
            pending_activities: Vec::new(),
            outcome: None,
            last_task_failure: None,
            history_bytes,
            continued_from,
            continued_to: None,
            parent,
            pending_children: Vec::new(),
            awaited_signals: Vec::new(),
        }
    }

    /// Whether an activation presenting `token` in store epoch `epoch`
    /// may commit or release: a leased task needs its own lease, an
    /// unleased one ([`LeaseToken::UNLEASED`]) needs the run not to be
    /// leased. Leases of earlier epochs are void (their process is gone):
    /// the rule of a store that owns its storage alone; over a shared
    /// storage, other stores' leases stand.
    pub fn admits_task(&self, token: LeaseToken, epoch: u64) -> bool {
        let held = self.lease.filter(|l| l.epoch == epoch);
        if token == LeaseToken::UNLEASED {
            held.is_none()
        } else {
            held == Some(RunLease { token, epoch })
        }
    }

    /// Whether the run has work for an activation.
    pub fn is_ready(&self) -> bool {
        self.status.is_open() && (self.needs_first_activation || self.inbox_head < self.inbox_tail)
    }
}

/// State of an activity task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivityState {
    /// Waiting to be claimed once `visible_at` has passed.
    Scheduled {
        /// Earliest time a worker may claim it (later than now during
        /// retry backoff).
        visible_at: Timestamp,
    },
    /// Claimed by a worker.
    Running {
        /// Token the completion must present.
        token: LeaseToken,
        /// When the attempt started.
        started_at: Timestamp,
        /// When the attempt times out unless completed or heartbeated.
        deadline: Timestamp,
    },
}

/// The store's record of one activity task (tree `activity_tasks`, keyed by
/// run and command).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityTaskRecord {
    /// Owning workflow id (for the idempotency key and tracing).
    pub workflow_id: WorkflowId,
    /// Registered activity type.
    pub activity_type: String,
    /// Input.
    pub input: Payload,
    /// Timeouts and retry policy.
    pub options: ActivityOptions,
    /// Current (or next) attempt, 1-based.
    pub attempt: u32,
    /// When it was first scheduled (schedule-to-close counts from here).
    pub first_scheduled_at: Timestamp,
    /// Claim state.
    pub state: ActivityState,
    /// Details of the last heartbeat, readable by the next attempt.
    pub heartbeat_details: Option<Payload>,
    /// Failure of the previous attempt, if any.
    pub last_failure: Option<Failure>,
    /// The workflow no longer wants the result: the running attempt learns
    /// it at its next heartbeat, and no further attempt is made.
    pub cancel_requested: bool,
}

/// What a worker receives when it claims an activity task.
#[derive(Clone, Debug)]
pub struct ActivityTask {
    /// Owning run.
    pub run: RunId,
    /// Command that scheduled it.
    pub cmd: CommandSeq,
    /// Owning workflow id.
    pub workflow_id: WorkflowId,
    /// Registered activity type.
    pub activity_type: String,
    /// Input.
    pub input: Payload,
    /// This attempt, 1-based.
    pub attempt: u32,
    /// Token to present on heartbeat and completion.
    pub token: LeaseToken,
    /// When this attempt times out unless it heartbeats or completes.
    pub deadline: Timestamp,
    /// Heartbeat timeout, if any.
    pub heartbeat_timeout: Option<std::time::Duration>,
    /// Details from the last heartbeat of an earlier attempt.
    pub heartbeat_details: Option<Payload>,
    /// The attempt may start only once [`Store::durable_since`] returns for
    /// this ticket: then the history that schedules it and the claim that
    /// makes it this attempt are durable, so a crash cannot undo either
    /// after its side effects began (the call keeps its idempotency key,
    /// and the attempt counts). Every claim, by a poller or by a commit,
    /// becomes durable with the group flush that follows it.
    ///
    /// [`Store::durable_since`]: crate::Store::durable_since
    pub durable_after: FlushTicket,
}

impl ActivityTask {
    /// Stable across retries and restarts: `workflow-id/run/cmd`. Activities
    /// pass it to external systems to deduplicate their effects.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}/{}", self.workflow_id, self.run.0, self.cmd.0)
    }
}
