//! The seam between the engine and its store: [`HistoryStore`].
//!
//! Everything the engine asks of durable storage passes through this one
//! async trait, so that the store behind it can be the embedded sled
//! [`Store`](crate::Store) (the first backend, `impl HistoryStore for
//! Store` in `sled.rs`), an in-memory store for tests, a store in another
//! process, or a network database shared by several worker processes. The
//! operations are coarse on purpose: each is one request and one answer,
//! so a backend across a network pays one round trip per operation.
//!
//! # The two sides
//!
//! - **Client side**: what an application, an API server, a dashboard or
//!   the command line does to workflows: start, signal, cancel,
//!   terminate, update (request and wait for the answer), query, wait for
//!   a run to close, read histories and records, list runs page by page,
//!   human tasks and schedules. These name workflows by id and runs by
//!   number and need nothing from a worker (except a query, below).
//! - **Worker side**: what the engine does to make progress. Workflow
//!   tasks: long-poll for runs with work and for queries to answer
//!   ([`WorkflowTask`]), answer a query, commit an activation (with the
//!   results of attempts completed in the worker's process and the
//!   activities it runs at once folded in), or fail the task. Activity
//!   tasks: long-poll (claim), complete, heartbeat. Services: fire due
//!   timers, attempt deadlines and schedules, and say when the next is due.
//!
//! The split follows the one durable-execution systems share (a frontend
//! for callers, task queues for workers), kept to what Refrain uses.
//!
//! # Words
//!
//! One glossary, in code and docs:
//!
//! - **Activation**: one execution of a run's workflow code over the events
//!   that arrived since the last one (results, signals, fired timers),
//!   producing commands that are committed together with those events
//!   ([`ActivationCommit`]). The worker takes one as
//!   an [`Activation`], under the run's lease.
//! - **Workflow task**: an item of the workflow side's queue, what
//!   [`HistoryStore::poll_workflow_tasks`] returns: an activation to run, or a
//!   query to answer from the run's instance ([`WorkflowTask`]). Activity
//!   tasks are the activity side's items.
//! - **Eager start**: a start that carries the run's first activation, run by
//!   the starting process and committed in the start's transaction
//!   ([`HistoryStore::start_with_activation`]).
//! - **Direct dispatch**: activities a commit schedules that the committing
//!   worker claims in that same transaction and runs at once, and results of
//!   attempts that completed in the worker folded into the run's next commit
//!   ([`DirectActivities`]), instead of a poll and a
//!   completion transaction each.
//! - **Sequence numbers**: events of a run are numbered from 1
//!   ([`EventSeq`]); commands by their own count
//!   ([`CommandSeq`]).
//!
//! # Acknowledged means durable
//!
//! Every write that returns `Ok` is durable when it returns: the backend
//! owns that, not the caller. (The sled backend applies the operation,
//! then waits for its group commit: `Store::durable`, or
//! `Store::durable_since` for a claim's ticket.) A claimed activity task
//! is returned only once the history that schedules it is durable, so an
//! attempt may start at once. A write that returns an error wrote nothing,
//! unless its error says otherwise.
//!
//! # Long-polls
//!
//! [`HistoryStore::poll_workflow_tasks`],
//! [`HistoryStore::poll_activity_tasks`] and [`HistoryStore::wait_due`]
//! wait up to the duration given and return early as soon as there is
//! work; an empty answer after the wait is normal, and the caller simply
//! polls again. A backend in another process holds the request open; the
//! sled backend waits on its in-process notifications. Dropping the
//! future of a poll is safe: an activation taken and never committed is
//! offered again (a poll's runs go back to the queue on error, and a
//! restart queues every ready run), an activity claim that is never
//! completed times out and is retried.
//!
//! # Queries, starts with an activation, the worker
//!
//! - **Queries** are not stored: [`HistoryStore::query`] waits in the
//!   backend's memory for a worker's workflow-task poll to take it and
//!   for its answer ([`HistoryStore::answer_query`]); with no worker
//!   polling it times out by name.
//! - **Starting with the first activation** (a worker's client runs the
//!   run's first activation itself and the start carries it):
//!   [`HistoryStore::reserve_start`] names the run first, then
//!   [`HistoryStore::start_with_activation`] makes both in one durable
//!   step. A backend that cannot reserves nothing (the default), and the
//!   client starts the ordinary way.
//! - **The worker** speaks only this trait (polls, commits, activity
//!   tasks, timers, schedules, the watchdog's reads); nothing in the
//!   store calls the worker.
//! - **`verify`** and opening a store are backend-specific and stay on
//!   `Store`.

mod errors;
mod sled;
mod sled_tasks;
mod worker_errors;

pub(crate) use crate::store::queries::QueryQueue;
pub use crate::store::queries::{QueryError, QueryId, QueryTask};

pub use errors::{
    BackendError, HumanTaskError, ReadError, RunOpError, ScheduleError, StartError, UpdateError,
};
pub use worker_errors::{ActivityError, CommitError};

use crate::event::{Event, Failure, Payload};
use crate::ids::{CommandSeq, EventSeq, LeaseToken, RunId, Timestamp, WorkflowId};
use crate::store::api::{
    Activation, ActivationCommit, ActivityResolution, HeartbeatAck, ListOrder, RunFilter,
    RunSummary, StartOutcome, StartRequest,
};
use crate::store::records::{ActivityTask, ActivityTaskRecord, RunRecord};
use crate::store::retention::{PurgeBatch, PurgeRequest};
use crate::store::schedules::{ScheduleFires, ScheduleRecord, ScheduleSpec, TriggerOutcome};
use crate::store::{DirectActivities, HumanTaskRecord, StoreProgress, UpdateWait};
use async_trait::async_trait;
use std::fmt;
use std::time::Duration;

/// The one async seam between the engine and its store; see the module
/// documentation for the two sides, the durability rule and long-polls.
/// Object safe: the engine holds an `Arc<dyn HistoryStore>`.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    // ----- client side: changing workflows -----

    /// Starts a run of `req.workflow_id` under `req.on_conflict` (see
    /// [`IdConflictPolicy`](crate::IdConflictPolicy)); durable when it
    /// returns. `started: false` when the policy returned an existing run.
    ///
    /// A start may also carry the run's first activation: see
    /// [`HistoryStore::reserve_start`].
    async fn start(&self, req: StartRequest) -> Result<StartOutcome, StartError>;

    /// Reserves the run number of `req`'s start, for a caller that runs
    /// the run's first activation before the start is made and hands both
    /// in with [`HistoryStore::start_with_activation`]. Writes nothing (a
    /// reservation never used leaves its number unused). `None`, the
    /// default, for a backend that does not start with an activation: make
    /// the ordinary start.
    async fn reserve_start(&self, req: StartRequest) -> Result<Option<ReservedStart>, StartError> {
        let _ = req;
        Ok(None)
    }

    /// Makes a reserved start and commits `first`, the run's first
    /// activation (against `reserved.record`, token `UNLEASED`), with it:
    /// one durable step whose outcome is the start's, as an ordinary start
    /// would give it. With `local`, activities the activation schedules
    /// are claimed for the caller, as for
    /// [`HistoryStore::commit_activation`]. `claimed` is `None` when the
    /// activation was not used: the id's conflict policy returned another
    /// run, or the backend could not apply it and made the ordinary start
    /// instead (whose first activation then takes the ordinary path).
    async fn start_with_activation(
        &self,
        reserved: ReservedStart,
        first: ActivationCommit,
        local: DirectActivities,
    ) -> Result<StartedWith, StartError> {
        let _ = (first, local);
        let outcome = self.start(reserved.request).await?;
        Ok(StartedWith {
            outcome,
            claimed: None,
        })
    }

    /// Delivers signal `name` with `payload` to the open latest run of
    /// `workflow_id`, recording `sender` when given; returns the run.
    async fn signal(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<RunId, RunOpError>;

    /// Signal-with-start: delivers signal `name` with `payload` (recording
    /// `sender` when given) to the open latest run of `req.workflow_id`,
    /// or, when no run of the id is open (never used, or its latest run
    /// closed), starts a run per `req` with the signal in its inbox before
    /// its first activation, so the workflow sees it at its first step.
    /// Atomic: one transaction decides and writes, so a run that closes
    /// meanwhile cannot lose the signal, and concurrent calls start at
    /// most one run. `req.on_conflict` is not consulted. Durable when it
    /// returns; `started` says whether a run was started, `run` is the
    /// run that has the signal.
    ///
    /// A start made this way never carries its first activation (see
    /// [`HistoryStore::reserve_start`]): a worker polls it as any other
    /// run with work.
    async fn signal_with_start(
        &self,
        req: StartRequest,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<StartOutcome, StartError>;

    /// Asks the open latest run of `workflow_id` to cancel; the workflow
    /// decides what that means. Returns the run.
    async fn cancel(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        requested_by: Option<&str>,
    ) -> Result<RunId, RunOpError>;

    /// Ends the open latest run of `workflow_id` at once, without running
    /// its code. `terminated_by` (a person or system) is recorded with the
    /// reason. Returns the run.
    async fn terminate(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        terminated_by: Option<&str>,
    ) -> Result<RunId, RunOpError>;

    /// Requests an update of the latest run of the workflow id (unless
    /// that run already answered `update_id`) and waits until it is
    /// answered or the run closes; the answer is durable when it returns.
    /// The same `update_id` is the same request: it is never applied twice.
    async fn update(&self, req: UpdateRequest) -> Result<UpdateWait, UpdateError>;

    /// Asks `run` query `name` with `args` and waits up to `wait` for the
    /// answer of the workflow's handler, which a worker gives from the
    /// run's instance (a closed run's too): the query reaches it through
    /// its workflow-task poll. Nothing is written. `TimedOut` when no
    /// worker answered within `wait`.
    async fn query(
        &self,
        run: RunId,
        name: &str,
        args: Payload,
        wait: Duration,
    ) -> Result<Payload, QueryError>;

    // ----- client side: reading -----

    /// Waits until `run` is closed and its closing is durable; returns its
    /// record. A run that continued as new names the next in `continued_to`.
    async fn wait_closed(&self, run: RunId) -> Result<RunRecord, ReadError>;

    /// The events of `run` from `from` on (`EventSeq(1)` for all of it).
    async fn read_history(&self, run: RunId, from: EventSeq) -> Result<Vec<Event>, ReadError>;

    /// The latest run of `workflow_id` and its record, if the id was used.
    async fn latest_run(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<Option<(RunId, RunRecord)>, ReadError>;

    /// The record of `run`, if it exists.
    async fn run_record(&self, run: RunId) -> Result<Option<RunRecord>, ReadError>;

    /// The pending activity task `cmd` of `run` (scheduled or running).
    async fn activity_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
    ) -> Result<Option<ActivityTaskRecord>, ReadError>;

    /// One page of the runs matching `filter`, in `page.order` (by run
    /// number, which follows start order). Pass the page's `next_cursor`
    /// back, with the same order, for the next page: pages neither skip
    /// nor repeat a run, also while runs start. Oldest first, a run
    /// started while a caller pages appears on a later page; newest
    /// first, it is on none of the pages after the one already read (it
    /// is newer than all of them), so a caller that wants it reads the
    /// first page again.
    ///
    /// A cursor carries the order it was given out for: used with the
    /// other order it is refused with `BadCursor`, like a forged one.
    ///
    /// The sled backend walks the runs from the cursor on, forwards or
    /// back, and tests each (no index yet: see [`RunFilter`]), so a
    /// narrow filter over many runs costs a walk of them; the walk stops
    /// once the page is full.
    async fn list_runs(&self, filter: &RunFilter, page: PageRequest) -> Result<RunPage, ReadError>;

    /// Runs one batch of a purge of closed runs whose retention passed
    /// (`req.policy` at `req.now`): up to
    /// [`MAX_PURGE_BATCH`](crate::store::retention::MAX_PURGE_BATCH) runs
    /// deleted completely (record, history, inbox, tasks, timers, human
    /// tasks, updates, the workflow id's entry when it names the run), in
    /// one step, durable when it returns; with `req.dry_run`, only named.
    /// Never an open run, nor a closed run whose parent is open (kept until
    /// the parent closes). Reads of a purged run then say `RunNotFound`.
    /// Call again with `after: batch.next` until `next` is `None`; a purge
    /// interrupted by a crash resumes by being run again (each batch is
    /// whole or not at all). The default refuses: a backend that keeps
    /// every run forever.
    async fn purge_closed(&self, req: PurgeRequest) -> Result<PurgeBatch, ReadError> {
        let _ = req;
        Err(ReadError::Storage {
            source: "this store does not purge runs".into(),
        })
    }

    // ----- client side: human tasks -----

    /// The open human tasks assigned to `assignee` now.
    async fn list_human_tasks(&self, assignee: &str) -> Result<Vec<HumanTaskRecord>, ReadError>;

    /// The open human tasks of `run`, in assignment order.
    async fn human_tasks_of_run(&self, run: RunId) -> Result<Vec<HumanTaskRecord>, ReadError>;

    /// Records a decision on an open human task (at most once), and only
    /// while the task is still `expected_assignee`'s when that is given.
    async fn decide_human_task(&self, decision: HumanTaskDecision) -> Result<(), HumanTaskError>;

    /// Claims task `cmd` of `run`, assigned to group `group`, for the
    /// member `claimed_by` (a member check is the caller's): the task
    /// moves to `claimed_by` and `HumanTaskClaimed` is recorded.
    /// [`HumanTaskError::Reassigned`] if the task is no longer the group's
    /// (someone claimed it first, or it escalated); nothing is written on
    /// error.
    async fn claim_human_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
        group: &str,
        claimed_by: &str,
    ) -> Result<(), HumanTaskError>;

    // ----- client side: schedules -----

    /// Creates a schedule; its first fire is the first fire time after now.
    async fn create_schedule(&self, spec: ScheduleSpec) -> Result<ScheduleRecord, ScheduleError>;

    /// Every schedule, in creation order.
    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, ScheduleError>;

    /// Schedule `id`.
    async fn describe_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError>;

    /// Pauses schedule `id`: no fires until resumed.
    async fn pause_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError>;

    /// Resumes schedule `id` (fires within its catch-up window act).
    async fn resume_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError>;

    /// Fires schedule `id` now (the fire's time is `now`), whatever its
    /// next fire time, as a fire of its own would under its overlap
    /// policy: it starts a run, or, while the previous run is open,
    /// `Skip` drops it (`TriggerOutcome::Skipped`, counted in `skipped`)
    /// and `BufferOne` remembers it to start when that run closes
    /// (`Buffered`; `Skipped` if a fire is remembered already). A paused
    /// schedule may be triggered; it stays paused (a remembered fire then
    /// waits for the resume). The schedule's own next fire is unchanged.
    /// Durable when it returns.
    async fn trigger_schedule(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<TriggerOutcome, ScheduleError>;

    /// Deletes schedule `id`; runs it started carry on.
    async fn delete_schedule(&self, id: &str) -> Result<(), ScheduleError>;

    // ----- worker side: workflow tasks -----

    /// Waits up to `wait` for runs with work or queries to answer and
    /// returns up to `max` tasks (empty after the wait if none came),
    /// queries first. An activation's task is the run's record and its
    /// unconsumed inbox: commit it with [`HistoryStore::commit_activation`]
    /// or give it back with [`HistoryStore::fail_activation`]. A query
    /// is answered with [`HistoryStore::answer_query`].
    async fn poll_workflow_tasks(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<WorkflowTask>, ReadError>;

    /// Answers query `id` (taken from a poll) with the handler's answer, or
    /// why there is none (`QueryError::Refused`). `UnknownQuery` if its
    /// caller stopped waiting.
    async fn answer_query(
        &self,
        id: QueryId,
        answer: Result<Payload, QueryError>,
    ) -> Result<(), QueryError>;

    /// The activation of `run` for a worker that brings results of its
    /// own (attempts it completed in process, for `commit_activation`'s
    /// `local`): a task for an open run even when nothing waits in its
    /// inbox. `None` if the run is closed, missing, or leased.
    async fn activation(&self, run: RunId) -> Result<Option<Activation>, ReadError>;

    /// Commits one activation of a task, durably, in one transaction; with
    /// `local`, it also resolves attempts completed in the worker's process
    /// (their results are among the commit's events) and claims for the
    /// worker activities the commit schedules, which it returns, ready to
    /// start.
    async fn commit_activation(
        &self,
        commit: ActivationCommit,
        local: DirectActivities,
    ) -> Result<Vec<ActivityTask>, CommitError>;

    /// Gives an activation back without committing (the workflow
    /// panicked, diverged from its history, or the history is damaged),
    /// recording `failure` on the run for operators. The run is offered
    /// again after `retry_after`; with `None`, only once something new
    /// arrives for it (or the store restarts).
    async fn fail_activation(
        &self,
        run: RunId,
        token: LeaseToken,
        failure: Option<String>,
        retry_after: Option<Duration>,
    ) -> Result<(), CommitError>;

    // ----- worker side: activity tasks -----

    /// Waits up to `wait` for claimable activity tasks and claims up to
    /// `max` of them (empty after the wait if none came). Each may start at
    /// once: the history that schedules it is durable.
    async fn poll_activity_tasks(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ActivityTask>, ActivityError>;

    /// Records the outcome of a running attempt, durably: a result, or a
    /// failure that is retried or recorded per the activity's policy.
    async fn complete_activity(
        &self,
        attempt: AttemptRef,
        outcome: Result<Payload, Failure>,
    ) -> Result<ActivityResolution, ActivityError>;

    /// Records a heartbeat of a running attempt (moving its heartbeat
    /// deadline) and says whether the workflow still wants the result.
    async fn heartbeat_activity(
        &self,
        attempt: AttemptRef,
        details: Option<Payload>,
    ) -> Result<HeartbeatAck, ActivityError>;

    // ----- services: time -----

    /// Fires every timer due at `now` and expires every attempt whose
    /// deadline passed (each once); returns how many were handled.
    async fn fire_due(&self, now: Timestamp) -> Result<usize, ReadError>;

    /// Fires every schedule due at `now` (starting, buffering, skipping or
    /// counting missed fires per its policy).
    async fn fire_due_schedules(&self, now: Timestamp) -> Result<ScheduleFires, ScheduleError>;

    /// When the earliest timer, attempt deadline or schedule fire is due.
    async fn next_due(&self) -> Result<Option<Timestamp>, ReadError>;

    /// Waits up to `wait` until something may be due: the time
    /// [`HistoryStore::next_due`] named has come, or an earlier timer,
    /// deadline or schedule was added. A timer service is a loop of this,
    /// `fire_due` and `fire_due_schedules`.
    async fn wait_due(&self, wait: Duration) -> Result<(), ReadError>;

    // ----- what the engine reads of the backend itself -----

    /// The time on the backend's clock, for what a caller dates (a start,
    /// a schedule trigger): the system clock unless a test gave the
    /// backend another (`StoreConfig::clock`). Reading it waits for
    /// nothing.
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    /// The limits the backend enforces on what is written (payload and
    /// history sizes), so that a worker can fail a run whose activation
    /// could never be accepted instead of retrying it forever. Known when
    /// the handle is made; reading them waits for nothing.
    fn limits(&self) -> HistoryLimits;

    /// How far the backend's commits and flushes have got, for a stall
    /// watchdog; `None` (the default) for a backend that does not expose
    /// them, whose stalls the watchdog then sees only through attempts.
    /// Counters only: reading them waits for nothing.
    fn progress(&self) -> Option<StoreProgress> {
        None
    }

    /// Samples the backend's gauges ([`telemetry`](crate::telemetry):
    /// ready-queue depth, pending timers, open and overdue human tasks at
    /// `now`) into the installed `metrics` recorder. A scan: a caller
    /// samples every [`GAUGE_INTERVAL`](crate::telemetry::GAUGE_INTERVAL)
    /// (the worker's time service does). The default samples nothing.
    async fn record_gauges(&self, now: Timestamp) -> Result<(), ReadError> {
        let _ = now;
        Ok(())
    }
}

/// What a backend accepts at most: see [`HistoryStore::limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Largest payload (input, result, signal) in bytes.
    pub max_payload_bytes: usize,
    /// Most events in one run's history.
    pub max_history_events: u64,
    /// Most encoded bytes of one run's history.
    pub max_history_bytes: u64,
}

/// A start whose run number is reserved: see
/// [`HistoryStore::reserve_start`].
pub struct ReservedStart {
    /// The start asked for.
    pub request: StartRequest,
    /// The run it makes, if it makes one.
    pub run: RunId,
    /// The run's first event (`WorkflowStarted`), for its first activation.
    pub started: Event,
    /// The run's record as the start writes it, which the first
    /// activation's commit is checked against.
    pub record: RunRecord,
    /// What the backend needs to make the start.
    backend: Box<dyn std::any::Any + Send>,
}

impl ReservedStart {
    /// A reservation, with what the backend needs to make it (given back by
    /// [`ReservedStart::into_backend`]).
    pub fn new(
        request: StartRequest,
        (run, started, record): (RunId, Event, RunRecord),
        backend: impl std::any::Any + Send,
    ) -> Self {
        ReservedStart {
            request,
            run,
            started,
            record,
            backend: Box::new(backend),
        }
    }

    /// What the backend gave [`ReservedStart::new`].
    pub fn into_backend(self) -> Box<dyn std::any::Any + Send> {
        self.backend
    }
}

impl fmt::Debug for ReservedStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReservedStart")
            .field("request", &self.request)
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

/// What [`HistoryStore::start_with_activation`] did.
#[derive(Clone, Debug)]
pub struct StartedWith {
    /// The start's outcome.
    pub outcome: StartOutcome,
    /// The activities claimed for the caller, ready to start; `None` if
    /// the activation was not used.
    pub claimed: Option<Vec<ActivityTask>>,
}

/// A task of [`HistoryStore::poll_workflow_tasks`].
#[derive(Clone, Debug)]
pub enum WorkflowTask {
    /// A run has work: run its next activation.
    Activation(Box<Activation>),
    /// A caller asks a run's query.
    Query(QueryTask),
}

/// An update request: see [`HistoryStore::update`].
#[derive(Clone, Debug)]
pub struct UpdateRequest {
    /// The workflow; the request goes to its latest run.
    pub workflow_id: WorkflowId,
    /// The caller's id for the request; the same id is the same request.
    pub update_id: String,
    /// Update name (`Update::NAME`).
    pub name: String,
    /// Encoded arguments.
    pub input: Payload,
}

/// A decision on a human task: see [`HistoryStore::decide_human_task`].
#[derive(Clone, Debug)]
pub struct HumanTaskDecision {
    /// The run that asks.
    pub run: RunId,
    /// The task's `HumanTaskAssigned` command.
    pub cmd: CommandSeq,
    /// The decision.
    pub decision: Payload,
    /// Who decided, for the audit trail.
    pub decided_by: String,
    /// Why, if they said.
    pub comment: Option<String>,
    /// The assignee the decision is made as (the one whose right to decide
    /// the caller checked), or `None` to accept the decision whoever has
    /// the task now (whoever holds the reference may decide). With `Some`,
    /// the store compares it with the task's current assignee in the
    /// transaction that records the decision, and refuses it
    /// ([`HumanTaskError::Reassigned`], nothing written) if the task
    /// escalated to someone else after the check.
    pub expected_assignee: Option<String>,
}

/// One attempt of an activity, as a worker names it when it completes or
/// heartbeats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptRef {
    /// The run.
    pub run: RunId,
    /// The activity's command.
    pub cmd: CommandSeq,
    /// The attempt's number.
    pub attempt: u32,
    /// The token the claim gave it.
    pub token: LeaseToken,
}

impl From<&ActivityTask> for AttemptRef {
    fn from(task: &ActivityTask) -> Self {
        AttemptRef {
            run: task.run,
            cmd: task.cmd,
            attempt: task.attempt,
            token: task.token,
        }
    }
}

/// Where a page of [`HistoryStore::list_runs`] starts, how long it is and
/// which way it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// `next_cursor` of the previous page; `None` for the first page.
    pub after: Option<RunCursor>,
    /// Most runs in the page (at least 1 is used).
    pub limit: usize,
    /// Oldest first (the default) or newest first. A cursor is only good
    /// for the order it was given out for.
    pub order: ListOrder,
}

impl PageRequest {
    /// The first page, of up to `limit` runs, oldest first.
    pub fn first(limit: usize) -> Self {
        PageRequest {
            after: None,
            limit,
            order: ListOrder::OldestFirst,
        }
    }

    /// The page after `cursor`, of up to `limit` runs, oldest first.
    pub fn after(cursor: RunCursor, limit: usize) -> Self {
        PageRequest {
            after: Some(cursor),
            limit,
            order: ListOrder::OldestFirst,
        }
    }

    /// The same page, newest first: `PageRequest::first(50).newest_first()`.
    #[must_use]
    pub fn newest_first(self) -> Self {
        self.in_order(ListOrder::NewestFirst)
    }

    /// The same page, in `order`.
    #[must_use]
    pub fn in_order(self, order: ListOrder) -> Self {
        PageRequest { order, ..self }
    }
}

/// A position in a list of runs, handed out by the backend in
/// [`RunPage::next_cursor`]. Opaque: its text may be shown and passed back
/// (as a command-line argument, a URL parameter) but means nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunCursor(String);

impl RunCursor {
    /// A cursor as given back by a caller; the backend checks it.
    pub fn new(text: impl Into<String>) -> Self {
        RunCursor(text.into())
    }

    /// The cursor's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of [`HistoryStore::list_runs`].
#[derive(Clone, Debug, PartialEq)]
pub struct RunPage {
    /// The runs, in the list's order.
    pub runs: Vec<RunSummary>,
    /// Where the next page starts; `None` when this page ends the list as
    /// it stood. (Runs started later may still appear after it.)
    pub next_cursor: Option<RunCursor>,
}
