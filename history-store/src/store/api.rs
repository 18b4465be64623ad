//! Request and response types of the store's operations.

use crate::clock::Clock;
use crate::event::{Event, Payload};
use crate::ids::{EventSeq, LeaseToken, RunId, Timestamp, WorkflowId};
use crate::store::records::{RunRecord, RunStatus};
use std::time::Duration;

/// How durable an acknowledged write is. Every figure Refrain reports
/// states which mode it was measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DurabilityMode {
    /// Survives power loss: sled `flush()` and then an fsync of sled's data
    /// file, shared by all concurrent writers (group commit). The default.
    #[default]
    Fsync,
    /// Survives a process crash but not necessarily power loss: sled
    /// `flush()` only (which is `sync_file_range` in sled 0.34.7).
    Flush,
    /// Acknowledges before anything is flushed; sled's background flush
    /// (every 500 ms) writes it later. A crash may lose recent
    /// acknowledged writes. For tests and throwaway data only.
    None,
}

/// Settings of an opened store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// What an acknowledgement promises.
    pub durability: DurabilityMode,
    /// Largest payload (input, result, signal, heartbeat details) accepted.
    pub max_payload_bytes: usize,
    /// sled page cache size in bytes (default 16 MiB). It holds decoded
    /// tree pages; pages outside it are read back from the file, which the
    /// operating system caches in any case, so a miss costs decoding, not
    /// a disk read while memory is free. Resident memory grows to about
    /// 1.5 times this bound. The default keeps a worker with 100,000 idle
    /// runs under 1 KiB of memory per run and costs the benchmark
    /// workloads nothing measurable; raise it for a working set of large
    /// histories that are often replayed (runs evicted from the worker's
    /// sticky cache).
    pub cache_capacity_bytes: u64,
    /// How long `open` retries while another handle holds the file lock.
    pub lock_timeout: Duration,
    /// Most events one run's history may hold (`WorkflowStarted`
    /// included). A commit that would take a run past it is refused with
    /// `StoreError::HistoryLimitExceeded`, except a commit whose only
    /// command is `WorkflowFailed`, so an over-long run can always be
    /// closed. Workflows that run indefinitely continue as new well before
    /// this. Default 50 000.
    pub max_history_events: u64,
    /// Most encoded bytes one run's history may hold (`RunRecord::history_bytes`:
    /// the sum of the stored sizes of its events, envelopes included).
    /// Enforced like `max_history_events`. Default 50 MiB.
    pub max_history_bytes: u64,
    /// Over a storage several stores share (a shared
    /// [`MemoryStorage`](crate::MemoryStorage)), how long this store's
    /// leases (on runs and on activity attempts) outlive its last renewal:
    /// a store that stops (killed, paused, cut off) holds its runs this
    /// long before the others take them over. Renewed every third of it.
    /// Unused by a store that owns its storage alone. Default 30 s.
    pub lease_duration: Duration,
    /// Over a shared storage, how often this store looks in the `ready`
    /// table for work another store made (a signal sent, a timer fired or
    /// a result recorded through another store, or runs a dead store left)
    /// beside the in-process wake-ups that carry its own. Default 250 ms.
    pub discovery_interval: Duration,
    /// Where the store reads the time for what a caller does not date
    /// (claims and their deadlines, completions and retries, commits that
    /// append nothing, schedules created, waits for the next due time).
    /// The system clock by default; a test's virtual clock must be the
    /// worker's clock too (`WorkerBuilder::clock`).
    pub clock: Clock,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            durability: DurabilityMode::Fsync,
            max_payload_bytes: 4 * 1024 * 1024,
            cache_capacity_bytes: 16 * 1024 * 1024,
            lock_timeout: Duration::from_secs(2),
            max_history_events: 50_000,
            max_history_bytes: 50 * 1024 * 1024,
            lease_duration: Duration::from_secs(30),
            discovery_interval: Duration::from_millis(250),
            clock: Clock::system(),
        }
    }
}

/// What to do when a workflow id is started while a run of it is open (or,
/// for `UseExisting`, has ever run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IdConflictPolicy {
    /// Return `StoreError::AlreadyRunning` and write nothing.
    #[default]
    Reject,
    /// Return the open run instead of starting a new one. A closed run of
    /// the id does not count: a new run starts.
    AttachToOpen,
    /// Return the latest run of the id, open or closed; start one only if
    /// the id was never used. The idempotent start of a process that must
    /// run once per id (an order, an applicant), even when it is restarted
    /// after that run finished.
    UseExisting,
}

/// A request to start a run.
#[derive(Clone, Debug)]
pub struct StartRequest {
    /// Caller-chosen id.
    pub workflow_id: WorkflowId,
    /// Registered workflow type.
    pub workflow_type: String,
    /// Encoded input.
    pub input: Payload,
    /// Behaviour when a run of the id is open.
    pub on_conflict: IdConflictPolicy,
    /// Seed of the run's random generator.
    pub seed: u64,
    /// Start time recorded in `WorkflowStarted`.
    pub now: Timestamp,
}

/// Result of `start_workflow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartOutcome {
    /// The run that now stands for the id.
    pub run: RunId,
    /// False when an open run was attached to instead.
    pub started: bool,
}

/// A claimed activation: everything an activation needs.
#[derive(Clone, Debug)]
pub struct Activation {
    /// The run.
    pub run: RunId,
    /// Fencing token for the commit.
    pub token: LeaseToken,
    /// The run record at claim time.
    pub record: RunRecord,
    /// Inbound events `record.inbox_head .. inbox_upto`, in arrival order.
    pub inbox: Vec<Event>,
    /// Inbox index up to which (exclusive) the commit consumes.
    pub inbox_upto: u64,
}

/// What one activation writes.
#[derive(Clone, Debug)]
pub struct ActivationCommit {
    /// The run.
    pub run: RunId,
    /// Token from the claim.
    pub token: LeaseToken,
    /// `record.last_seq` at claim time; the commit fails if it moved.
    pub expected_last_seq: EventSeq,
    /// `Activation::inbox_upto`.
    pub inbox_upto: u64,
    /// Events to append, starting at `expected_last_seq + 1`.
    pub events: Vec<Event>,
    /// Update requests from the consumed inbox that the workflow refused.
    /// They are answered without entering the history.
    pub rejected_updates: Vec<UpdateRejection>,
    /// Names of the signals the workflow waits for once this activation
    /// ends (sorted, each once), stored as `RunRecord::awaited_signals`
    /// so that `describe` can say "signal stock-resolved".
    ///
    /// Why a field of the run record, set by every commit, and not an
    /// event: waiting for a signal is not a command (nothing happens until
    /// the signal arrives, and a signal that is already buffered is taken
    /// without waiting), so an event would be one that replay has to skip
    /// and that nondeterminism checks must ignore; a workflow that changes
    /// what it waits for would then rewrite history for no one's benefit.
    /// The record field is outside the history: replay never reads it, a
    /// replayed activation recomputes the same names from the same code,
    /// and each commit replaces the last value, so it always describes the
    /// workflow as of its latest committed activation. An activation that
    /// fails to commit leaves the previous value, which was true when the
    /// workflow last blocked.
    pub awaited_signals: Vec<String>,
}

/// An update request the workflow refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRejection {
    /// The request's id.
    pub update_id: String,
    /// The validator's reason (or that no handler is registered).
    pub reason: String,
}

/// How `complete_activity` disposed of an attempt's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivityResolution {
    /// The result (or final failure) entered the run's inbox.
    Recorded,
    /// The attempt failed and another is scheduled.
    RetryScheduled {
        /// The next attempt's number.
        attempt: u32,
        /// When it becomes claimable.
        at: Timestamp,
    },
}

/// The store's answer to a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatAck {
    /// The workflow no longer wants this activity: stop, clean up, and
    /// return (any error); no further attempt will be made.
    pub cancel_requested: bool,
}

/// Which runs `list_runs` returns: those that pass every condition set
/// (`RunFilter::default()` passes every run).
///
/// The store answers by walking the runs in run order and testing each
/// record: a filter narrows what is returned, not what is read, so a
/// narrow filter over many runs costs a walk of them all (an index by
/// start time and id comes later). Paging still neither skips nor repeats
/// a run, since the walk follows run numbers.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// Only runs in this state.
    pub status: Option<RunStatus>,
    /// Only runs of this workflow type.
    pub workflow_type: Option<String>,
    /// Only runs whose workflow id starts with this text (`""` passes
    /// every run).
    pub id_prefix: Option<String>,
    /// Only runs started at or after this time.
    pub started_after: Option<Timestamp>,
    /// Only runs started strictly before this time, so that consecutive
    /// ranges `[a, b)`, `[b, c)` neither overlap nor leave a gap.
    pub started_before: Option<Timestamp>,
}

impl RunFilter {
    /// Whether the run described by these fields passes the filter.
    pub fn admits(
        &self,
        workflow_id: &WorkflowId,
        workflow_type: &str,
        status: RunStatus,
        started_at: Timestamp,
    ) -> bool {
        self.status.is_none_or(|s| s == status)
            && self
                .workflow_type
                .as_deref()
                .is_none_or(|t| t == workflow_type)
            && self
                .id_prefix
                .as_deref()
                .is_none_or(|prefix| workflow_id.as_str().starts_with(prefix))
            && self.started_after.is_none_or(|t| started_at >= t)
            && self.started_before.is_none_or(|t| started_at < t)
    }
}

/// The order of a list of runs: by run number, which follows start order
/// (run numbers only grow).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ListOrder {
    /// Lowest run number first: the order runs started in.
    #[default]
    OldestFirst,
    /// Highest run number first: the latest run started leads.
    NewestFirst,
}

/// One row of `list_runs`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The run.
    pub run: RunId,
    /// Its workflow id.
    pub workflow_id: WorkflowId,
    /// Its workflow type.
    pub workflow_type: String,
    /// Its state.
    pub status: RunStatus,
    /// When it started.
    pub started_at: Timestamp,
    /// When it closed.
    pub closed_at: Option<Timestamp>,
}
