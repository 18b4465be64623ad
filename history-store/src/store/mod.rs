//! The sled-backed store. Every durable state transition of Refrain happens
//! here, each in one sled transaction; acknowledgement waits for
//! [`Store::durable`], which shares one flush (+ fsync) between all
//! concurrent callers (group commit).
//!
//! Trees (all keys from [`crate::keys`], all values through [`crate::codec`]):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | name | counters: next run number, epoch, next lease token |
//! | `workflow_ids` | workflow id bytes | latest `RunId` (u64 BE) |
//! | `runs` | run | [`RunRecord`] |
//! | `history` | run ++ seq | [`Event`] |
//! | `inbox` | run ++ n | inbound [`Event`] |
//! | `ready` | run | empty: runs with work for a workflow task |
//! | `activity_tasks` | run ++ cmd | [`ActivityTaskRecord`] |
//! | `activity_ready` | visible_at ++ run ++ cmd | empty |
//! | `activity_deadlines` | deadline ++ run ++ cmd | lease token (u64 BE) |
//! | `timers` | fire_at ++ run ++ cmd | empty |

pub mod api;
pub mod records;

use crate::error::StoreError;
use crate::event::{Event, Failure, Payload};
use crate::ids::{CommandSeq, LeaseToken, RunId, Timestamp, WorkflowId};
use api::{
    ActivationCommit, ActivityResolution, RunFilter, RunSummary, StartOutcome, StartRequest,
    StoreConfig, WorkflowTask,
};
use records::{ActivityTask, ActivityTaskRecord, RunRecord};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Notify;

/// Handle to an open store. Cheap to clone; all clones share one sled
/// database, one flusher and one set of in-process notifications.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    _todo: (),
}

impl Store {
    /// Opens (or creates) the store in `path`, bumps the epoch (voiding every
    /// workflow-task lease of earlier processes) and queues every ready run.
    ///
    /// # Errors
    /// `StorageLocked` if another process holds the directory after
    /// `lock_timeout`; `Storage` for other sled failures; `Corrupt` if the
    /// meta counters cannot be read.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Store, StoreError> {
        let _ = (path, config);
        todo!()
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        todo!()
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &StoreConfig {
        todo!()
    }

    /// Waits until every write made before this call is durable in the
    /// configured [`DurabilityMode`](api::DurabilityMode). Concurrent callers
    /// share one flush and one fsync.
    ///
    /// # Errors
    /// `Sync` or `Storage` if the flush failed; after that the store refuses
    /// every later acknowledgement (`Closed`).
    pub async fn durable(&self) -> Result<(), StoreError> {
        todo!()
    }

    /// Blocking form of [`Store::durable`], for threads outside an async
    /// runtime.
    ///
    /// # Errors
    /// As [`Store::durable`].
    pub fn durable_blocking(&self) -> Result<(), StoreError> {
        todo!()
    }

    // ----- clients -----

    /// Starts a run: writes `WorkflowStarted` as event 1, maps the id to the
    /// new run and marks it ready. With `AttachToOpen`, an open run of the id
    /// is returned instead (`started: false`) and nothing is written. A
    /// closed run of the id does not prevent a new one.
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// `AlreadyRunning` (policy `Reject`), `PayloadTooLarge`; nothing is
    /// written on error.
    pub fn start_workflow(&self, req: StartRequest) -> Result<StartOutcome, StoreError> {
        let _ = req;
        todo!()
    }

    /// Appends a `SignalReceived` to the latest run of `workflow_id`.
    ///
    /// # Errors
    /// `WorkflowNotFound`, `WorkflowClosed`, `PayloadTooLarge`; nothing is
    /// written on error.
    pub fn signal(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
    ) -> Result<RunId, StoreError> {
        let _ = (workflow_id, name, payload);
        todo!()
    }

    /// The latest run of `workflow_id`, if any.
    ///
    /// # Errors
    /// `Corrupt` or `Storage`.
    pub fn latest_run(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<Option<(RunId, RunRecord)>, StoreError> {
        let _ = workflow_id;
        todo!()
    }

    /// The record of `run`, if it exists.
    ///
    /// # Errors
    /// `Corrupt` or `Storage`.
    pub fn run_record(&self, run: RunId) -> Result<Option<RunRecord>, StoreError> {
        let _ = run;
        todo!()
    }

    /// The record of a pending activity task.
    ///
    /// # Errors
    /// `Corrupt` or `Storage`.
    pub fn activity_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
    ) -> Result<Option<ActivityTaskRecord>, StoreError> {
        let _ = (run, cmd);
        todo!()
    }

    /// Runs matching `filter`, in run order.
    ///
    /// # Errors
    /// `Corrupt` or `Storage`.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError> {
        let _ = filter;
        todo!()
    }

    /// Waits until `run` is closed and its closing is durable, and returns
    /// its record (with `outcome` set).
    ///
    /// # Errors
    /// `RunNotFound`, `Corrupt`, `Storage`, `Sync`.
    pub async fn wait_closed(&self, run: RunId) -> Result<RunRecord, StoreError> {
        let _ = run;
        todo!()
    }

    /// The whole history of `run`; element `i` is event `i + 1`.
    ///
    /// # Errors
    /// `RunNotFound`; `Corrupt { what: "history", run: Some(run), .. }` for
    /// undecodable events.
    pub fn read_history(&self, run: RunId) -> Result<Vec<Event>, StoreError> {
        let _ = run;
        todo!()
    }

    // ----- workflow tasks -----

    /// Takes up to `max` runs from the in-process ready queue. A run is
    /// queued (once, deduplicated) when it becomes ready: at start, when an
    /// inbound event enters its inbox, when [`Store::requeue`] is called,
    /// and at open for every run in the `ready` tree.
    pub fn take_ready(&self, max: usize) -> Vec<RunId> {
        let _ = max;
        todo!()
    }

    /// Notified whenever a run is queued.
    pub fn ready_notify(&self) -> &Notify {
        todo!()
    }

    /// Puts `run` back on the ready queue (after a failed task's backoff).
    pub fn requeue(&self, run: RunId) {
        let _ = run;
        todo!()
    }

    /// Claims the workflow task of `run`: sets a lease (new token, current
    /// epoch) and returns the record and the inbox items from `inbox_head`
    /// up to `inbox_tail` at claim time. `None` if the run is closed, not
    /// ready, missing, or already leased in this epoch.
    ///
    /// # Errors
    /// `Corrupt` (run record or an inbox item), `Storage`.
    pub fn claim_workflow_task(&self, run: RunId) -> Result<Option<WorkflowTask>, StoreError> {
        let _ = run;
        todo!()
    }

    /// Commits one activation in one transaction: checks the lease token and
    /// `expected_last_seq`, appends `events` contiguously, deletes the inbox
    /// items below `inbox_upto`, and applies what the events imply:
    /// `ActivityScheduled` creates an activity task visible now (attempt 1),
    /// `TimerStarted` a timer, `TimerCancelled` removes one, and
    /// `WorkflowCompleted`/`WorkflowFailed` close the run (status, outcome,
    /// closed_at) and delete its pending timers and activity tasks. Releases
    /// the lease; keeps or removes the run in `ready` depending on whether
    /// work remains (and queues it if so). Wakes activity pollers, timer
    /// service, and `wait_closed` callers as needed.
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// `LeaseLost`, `Conflict`, `InvalidCommit`, `PayloadTooLarge`; nothing
    /// is written on error.
    pub fn commit_activation(&self, commit: ActivationCommit) -> Result<(), StoreError> {
        let _ = commit;
        todo!()
    }

    /// Releases a workflow task without committing (the workflow panicked,
    /// diverged from its history, or its history is corrupt) and records
    /// `failure` in `last_task_failure`. The run stays in the `ready` tree
    /// but is not queued: the caller decides when to [`Store::requeue`].
    ///
    /// # Errors
    /// `LeaseLost` if the token no longer holds.
    pub fn release_workflow_task(
        &self,
        run: RunId,
        token: LeaseToken,
        failure: Option<String>,
    ) -> Result<(), StoreError> {
        let _ = (run, token, failure);
        todo!()
    }

    // ----- activity tasks -----

    /// Notified when an activity task may have become claimable.
    pub fn activity_notify(&self) -> &Notify {
        todo!()
    }

    /// Claims up to `max` activity tasks visible at `now`, oldest first:
    /// each becomes `Running` with a new token and a deadline of
    /// min(now + start_to_close, now + heartbeat_timeout,
    /// first_scheduled_at + schedule_to_close), indexed in
    /// `activity_deadlines`. A task whose schedule-to-close has already
    /// passed is failed instead of returned.
    ///
    /// # Errors
    /// `Corrupt`, `Storage`.
    pub fn claim_activity_tasks(
        &self,
        now: Timestamp,
        max: usize,
    ) -> Result<Vec<ActivityTask>, StoreError> {
        let _ = (now, max);
        todo!()
    }

    /// Earliest `visible_at` among scheduled activity tasks, so pollers can
    /// sleep until a retry's backoff ends.
    ///
    /// # Errors
    /// `Storage`.
    pub fn next_activity_visible(&self) -> Result<Option<Timestamp>, StoreError> {
        todo!()
    }

    /// Records the outcome of a running attempt presented with its token.
    /// Success enters the inbox as `ActivityCompleted`. A failure is retried
    /// when the task's policy allows it (`allows_retry(attempt, kind)`, not
    /// `non_retryable`, and the next attempt would start before the
    /// schedule-to-close deadline): the task becomes `Scheduled` at
    /// now + `backoff_after(attempt)` with `attempt + 1` and `last_failure`
    /// set. Otherwise it enters the inbox as `ActivityFailed`. Either inbox
    /// entry removes the task and marks the run ready.
    ///
    /// # Errors
    /// `StaleActivity` if the task is gone or not running under `token`
    /// (nothing is written: a late result of a timed-out attempt is never
    /// recorded); `PayloadTooLarge`.
    pub fn complete_activity(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        outcome: Result<Payload, Failure>,
        now: Timestamp,
    ) -> Result<ActivityResolution, StoreError> {
        let _ = (run, cmd, token, outcome, now);
        todo!()
    }

    /// Records a heartbeat: stores `details` (if given) for later attempts
    /// and, with a heartbeat timeout, moves the attempt's deadline to
    /// min(now + heartbeat_timeout, start-to-close deadline,
    /// schedule-to-close deadline).
    ///
    /// # Errors
    /// `StaleActivity` if the attempt no longer holds `token`.
    pub fn heartbeat_activity(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let _ = (run, cmd, token, details, now);
        todo!()
    }

    // ----- time -----

    /// Notified when a timer or attempt deadline earlier than any known may
    /// have been added.
    pub fn timer_notify(&self) -> &Notify {
        todo!()
    }

    /// Earliest timer fire time or running-attempt deadline.
    ///
    /// # Errors
    /// `Storage`.
    pub fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        todo!()
    }

    /// Fires every timer due at `now` (once: the timer key is removed in
    /// the same transaction that enters `TimerFired` in the inbox) and
    /// expires every running attempt whose deadline passed (a timeout
    /// failure, retried or recorded as in `complete_activity`). Returns how
    /// many were handled.
    ///
    /// # Errors
    /// `Storage`; a corrupt record is skipped and logged, not fatal.
    pub fn fire_due(&self, now: Timestamp) -> Result<usize, StoreError> {
        let _ = now;
        todo!()
    }
}
