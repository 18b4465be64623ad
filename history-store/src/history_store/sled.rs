//! [`HistoryStore`] for the sled [`Store`]: each operation is the store's
//! own, then its durability.
//!
//! How each kind of call keeps the runtime thread free:
//!
//! - Writes with an `_async` form (start, signal, cancel, activity claims
//!   and completions) use it: while another transaction is applied they
//!   wait without blocking the thread, and share its batch.
//! - The activation commit uses `commit_activation_then`, the form the
//!   worker uses: the commit joins the batch and its outcome comes back
//!   through a channel.
//! - Writes with only a blocking form (terminate, update requests,
//!   decisions, heartbeats, schedules, firing timers, releasing a task,
//!   a purge batch, which reads many records first)
//!   run on tokio's blocking pool (`off_thread`): they wait for the
//!   transaction in progress, which must not stall the runtime's workers.
//! - Reads are plain sled reads and run inline, as every caller of the
//!   store has always run them: they never wait for a transaction or a
//!   flush.
//! - Every acknowledged write then awaits [`Store::durable`], the group
//!   commit shared with every concurrent caller.

use super::sled_tasks::RECHECK;
use super::{
    ActivityError, AttemptRef, CommitError, HistoryLimits, HistoryStore, HumanTaskDecision,
    HumanTaskError, PageRequest, QueryError, QueryId, QueryQueue, ReadError, ReservedStart,
    RunCursor, RunOpError, RunPage, ScheduleError, StartError, StartedWith, UpdateError,
    UpdateRequest, WorkflowTask,
};
use crate::error::StoreError;
use crate::event::{Event, Failure, Payload};
use crate::ids::{CommandSeq, EventSeq, LeaseToken, RunId, Timestamp, WorkflowId};
use crate::store::api::{
    Activation, ActivationCommit, ActivityResolution, HeartbeatAck, ListOrder, RunFilter,
    StartOutcome, StartRequest,
};
use crate::store::records::{ActivityTask, ActivityTaskRecord, RunRecord};
use crate::store::retention::{PurgeBatch, PurgeRequest};
use crate::store::schedules::{ScheduleFires, ScheduleRecord, ScheduleSpec, TriggerOutcome};
use crate::store::{DirectActivities, HumanTaskRecord, Store, StoreProgress, UpdateWait};
use async_trait::async_trait;
use std::time::Duration;
use tokio::time::Instant;

/// Runs a blocking store call on tokio's blocking pool.
async fn off_thread<T, F>(store: &Store, op: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = store.clone();
    match tokio::task::spawn_blocking(move || op(&store)).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down.
        Err(_) => Err(StoreError::Closed),
    }
}

/// Marks a newest-first cursor: `b` and the run number the next page
/// comes before. An oldest-first cursor is the bare number of the run the
/// next page comes after (as it always was, so cursors given out before
/// lists had an order still work). Each order refuses the other's cursor:
/// "after 7" read as "before 7" would jump back over the pages between.
const NEWEST_FIRST_MARK: &str = "b";

/// The cursor of the page past `run` in `order`.
fn cursor_past(run: RunId, order: ListOrder) -> RunCursor {
    match order {
        ListOrder::OldestFirst => RunCursor::new(run.0.to_string()),
        ListOrder::NewestFirst => RunCursor::new(format!("{NEWEST_FIRST_MARK}{}", run.0)),
    }
}

/// The run a cursor of `order` points past.
fn parse_cursor(cursor: &RunCursor, order: ListOrder) -> Result<RunId, ReadError> {
    let text = cursor.as_str();
    let number = match order {
        ListOrder::OldestFirst => Some(text),
        ListOrder::NewestFirst => text.strip_prefix(NEWEST_FIRST_MARK),
    };
    number
        // `u64::from_str` takes a leading `+`; a cursor is only digits.
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u64>().ok())
        .map(RunId)
        .ok_or_else(|| ReadError::BadCursor {
            cursor: text.to_owned(),
        })
}

#[async_trait]
impl HistoryStore for Store {
    async fn start(&self, req: StartRequest) -> Result<StartOutcome, StartError> {
        let outcome = self.start_workflow_async(req).await?;
        self.durable().await?;
        Ok(outcome)
    }

    async fn reserve_start(&self, req: StartRequest) -> Result<Option<ReservedStart>, StartError> {
        let (start, answer) = self.reserve_eager_start(&req)?;
        let parts = (start.run(), start.started().clone(), start.record().clone());
        Ok(Some(ReservedStart::new(req, parts, (start, answer))))
    }

    async fn start_with_activation(
        &self,
        reserved: ReservedStart,
        first: ActivationCommit,
        local: DirectActivities,
    ) -> Result<StartedWith, StartError> {
        super::sled_tasks::start_with_activation(self, reserved, first, local).await
    }

    async fn signal(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<RunId, RunOpError> {
        let run = self
            .signal_async(workflow_id, name, payload, sender)
            .await?;
        self.durable().await?;
        Ok(run)
    }

    async fn purge_closed(&self, req: PurgeRequest) -> Result<PurgeBatch, ReadError> {
        // Its walk and key listing read many records: off the runtime's
        // threads, as the blocking writes are.
        let batch = off_thread(self, move |s| s.purge_closed_blocking(req)).await?;
        if !batch.runs.is_empty() {
            self.durable().await?;
        }
        Ok(batch)
    }

    async fn signal_with_start(
        &self,
        req: StartRequest,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<StartOutcome, StartError> {
        let outcome = self
            .signal_with_start_async(req, name, payload, sender)
            .await?;
        self.durable().await?;
        Ok(outcome)
    }

    async fn cancel(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        requested_by: Option<&str>,
    ) -> Result<RunId, RunOpError> {
        let run = self
            .request_cancel_async(workflow_id, reason, requested_by)
            .await?;
        self.durable().await?;
        Ok(run)
    }

    async fn terminate(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        terminated_by: Option<&str>,
    ) -> Result<RunId, RunOpError> {
        let (reason, by) = (reason.to_owned(), terminated_by.map(str::to_owned));
        let workflow_id = workflow_id.clone();
        let run = off_thread(self, move |s| {
            s.terminate_by(&workflow_id, &reason, by.as_deref(), s.config().clock.now())
        })
        .await?;
        self.durable().await?;
        Ok(run)
    }

    async fn update(&self, req: UpdateRequest) -> Result<UpdateWait, UpdateError> {
        let UpdateRequest {
            workflow_id,
            update_id,
            name,
            input,
        } = req;
        // An answer the latest run already gave (it may have closed since)
        // is returned rather than asking a closed run again.
        if let Some((run, _)) = self.latest_run(&workflow_id)? {
            if let Some(update) = self.update_record(run, &update_id)? {
                if update.state.is_answered() {
                    self.durable().await?;
                    return Ok(UpdateWait::Answered(update));
                }
            }
        }
        let asked = update_id.clone();
        let run = off_thread(self, move |s| {
            s.request_update(&workflow_id, &asked, &name, input, s.config().clock.now())
        })
        .await?;
        self.durable().await?;
        let wait = self
            .wait_update(run, &update_id)
            .await
            .map_err(|e| match e {
                // Requested a moment ago: a store that lost it is damaged.
                StoreError::UpdateNotFound { run, .. } => UpdateError::Damaged {
                    run: Some(run),
                    source: Box::new(e),
                },
                other => other.into(),
            })?;
        Ok(wait)
    }

    async fn query(
        &self,
        run: RunId,
        name: &str,
        args: Payload,
        wait: Duration,
    ) -> Result<Payload, QueryError> {
        let (id, answer) = self.queries().ask(run, name, args);
        // However this call ends (answered, timed out, or its caller
        // dropped it), the query leaves the queue: one nobody waits for
        // must not stay queued for a worker, or in memory.
        let _forget = ForgetQuery {
            queries: self.queries(),
            id,
        };
        match tokio::time::timeout(wait, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(QueryError::WorkerStopped),
            Err(_) => Err(QueryError::TimedOut { run, waited: wait }),
        }
    }

    async fn wait_closed(&self, run: RunId) -> Result<RunRecord, ReadError> {
        Ok(Store::wait_closed(self, run).await?)
    }

    async fn read_history(&self, run: RunId, from: EventSeq) -> Result<Vec<Event>, ReadError> {
        Ok(Store::read_history_from(self, run, from)?)
    }

    async fn latest_run(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<Option<(RunId, RunRecord)>, ReadError> {
        Ok(Store::latest_run(self, workflow_id)?)
    }

    async fn run_record(&self, run: RunId) -> Result<Option<RunRecord>, ReadError> {
        Ok(Store::run_record(self, run)?)
    }

    async fn activity_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
    ) -> Result<Option<ActivityTaskRecord>, ReadError> {
        Ok(Store::activity_task(self, run, cmd)?)
    }

    async fn list_runs(&self, filter: &RunFilter, page: PageRequest) -> Result<RunPage, ReadError> {
        let order = page.order;
        let from = page
            .after
            .as_ref()
            .map(|c| parse_cursor(c, order))
            .transpose()?;
        let limit = page.limit.max(1);
        // The store walks in run order, and run numbers only grow: a run
        // started while a caller pages comes after every cursor it holds,
        // so it lands on a later page oldest first and on none newest first.
        let runs = self.list_runs_from(filter, from, order, limit)?;
        let next_cursor = match runs.last() {
            Some(last) if runs.len() == limit => Some(cursor_past(last.run, order)),
            _ => None,
        };
        Ok(RunPage { runs, next_cursor })
    }

    async fn list_human_tasks(&self, assignee: &str) -> Result<Vec<HumanTaskRecord>, ReadError> {
        Ok(Store::list_human_tasks(self, assignee)?)
    }

    async fn human_tasks_of_run(&self, run: RunId) -> Result<Vec<HumanTaskRecord>, ReadError> {
        Ok(Store::human_tasks_of_run(self, run)?)
    }

    async fn decide_human_task(&self, d: HumanTaskDecision) -> Result<(), HumanTaskError> {
        off_thread(self, move |s| {
            s.decide_human_task_as_assignee(&d, s.config().clock.now())
        })
        .await?;
        self.durable().await?;
        Ok(())
    }

    async fn claim_human_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
        group: &str,
        claimed_by: &str,
    ) -> Result<(), HumanTaskError> {
        let (group, claimed_by) = (group.to_owned(), claimed_by.to_owned());
        off_thread(self, move |s| {
            Store::claim_human_task(s, run, cmd, &group, &claimed_by, Timestamp::now())
        })
        .await?;
        self.durable().await?;
        Ok(())
    }

    async fn create_schedule(&self, spec: ScheduleSpec) -> Result<ScheduleRecord, ScheduleError> {
        let record = off_thread(self, move |s| {
            s.create_schedule(spec, s.config().clock.now())
        })
        .await?;
        self.durable().await?;
        Ok(record)
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, ScheduleError> {
        Ok(Store::list_schedules(self)?)
    }

    async fn describe_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        Ok(Store::describe_schedule(self, id)?)
    }

    async fn pause_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        let id = id.to_owned();
        let record = off_thread(self, move |s| s.pause_schedule(&id)).await?;
        self.durable().await?;
        Ok(record)
    }

    async fn resume_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        let id = id.to_owned();
        let record = off_thread(self, move |s| s.resume_schedule(&id)).await?;
        self.durable().await?;
        Ok(record)
    }

    async fn trigger_schedule(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<TriggerOutcome, ScheduleError> {
        let id = id.to_owned();
        let outcome = off_thread(self, move |s| s.trigger_schedule(&id, now)).await?;
        self.durable().await?;
        Ok(outcome)
    }

    async fn delete_schedule(&self, id: &str) -> Result<(), ScheduleError> {
        let id = id.to_owned();
        off_thread(self, move |s| s.delete_schedule(&id)).await?;
        self.durable().await?;
        Ok(())
    }

    async fn poll_workflow_tasks(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<WorkflowTask>, ReadError> {
        super::sled_tasks::poll_workflow_tasks(self, max, wait).await
    }

    async fn answer_query(
        &self,
        id: QueryId,
        answer: Result<Payload, QueryError>,
    ) -> Result<(), QueryError> {
        self.queries().answer(id, answer)
    }

    async fn activation(&self, run: RunId) -> Result<Option<Activation>, ReadError> {
        // Plain reads, no transaction.
        Ok(self.begin_activation_with_results(run)?)
    }

    async fn commit_activation(
        &self,
        commit: ActivationCommit,
        local: DirectActivities,
    ) -> Result<Vec<ActivityTask>, CommitError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commit_activation_then(commit, local, move |outcome| {
            let _ = tx.send(outcome);
        });
        let (claimed, applied) = rx.await.map_err(|_| StoreError::Closed)??;
        // Taken when the commit was applied: a flush that began since
        // covers it, where `durable` would wait for the next one.
        self.durable_since(applied).await?;
        Ok(claimed)
    }

    async fn fail_activation(
        &self,
        run: RunId,
        token: LeaseToken,
        failure: Option<String>,
        retry_after: Option<Duration>,
    ) -> Result<(), CommitError> {
        off_thread(self, move |s| s.release_activation(run, token, failure)).await?;
        self.durable().await?;
        if let Some(pause) = retry_after {
            // The run stays in the durable `ready` tree, so a restart
            // offers it again even if this wake-up is lost.
            let store = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(pause).await;
                store.requeue(run);
            });
        }
        Ok(())
    }

    async fn poll_activity_tasks(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ActivityTask>, ActivityError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.activity_notify().notified();
            tokio::pin!(notified);
            // Registered before the claim, so a task scheduled in between
            // wakes this poll.
            notified.as_mut().enable();
            let claimed = self
                .claim_activity_tasks_async(self.config().clock.now(), max.max(1))
                .await?;
            if !claimed.is_empty() {
                // The histories that schedule them, and the claims.
                self.durable().await?;
                return Ok(claimed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            // A retry's backoff ends without a notification.
            let visible = self.next_activity_visible()?.map(|t| until(self, t));
            let pause = (deadline - now)
                .min(RECHECK)
                .min(visible.unwrap_or(RECHECK));
            let _ = tokio::time::timeout(pause, notified).await;
        }
    }

    async fn complete_activity(
        &self,
        attempt: AttemptRef,
        outcome: Result<Payload, Failure>,
    ) -> Result<ActivityResolution, ActivityError> {
        let resolution = self
            .complete_activity_async(
                attempt.run,
                attempt.cmd,
                attempt.token,
                outcome,
                self.config().clock.now(),
            )
            .await
            .map_err(|e| ActivityError::for_attempt(e, attempt.attempt))?;
        self.durable().await?;
        Ok(resolution)
    }

    async fn heartbeat_activity(
        &self,
        attempt: AttemptRef,
        details: Option<Payload>,
    ) -> Result<HeartbeatAck, ActivityError> {
        let ack = off_thread(self, move |s| {
            s.heartbeat_activity(
                attempt.run,
                attempt.cmd,
                attempt.token,
                details,
                s.config().clock.now(),
            )
        })
        .await
        .map_err(|e| ActivityError::for_attempt(e, attempt.attempt))?;
        // Acknowledged like every write: the details reach a later attempt
        // even across a crash.
        self.durable().await?;
        Ok(ack)
    }

    async fn fire_due(&self, now: Timestamp) -> Result<usize, ReadError> {
        // The service asks at every wake-up; most find nothing due, and a
        // read says so without a trip to the blocking pool.
        if self.next_deadline()?.is_none_or(|due| due > now) {
            return Ok(0);
        }
        let fired = off_thread(self, move |s| Store::fire_due(s, now)).await?;
        if fired > 0 {
            self.durable().await?;
        }
        Ok(fired)
    }

    async fn fire_due_schedules(&self, now: Timestamp) -> Result<ScheduleFires, ScheduleError> {
        let due = self.next_schedule_due()?.is_some_and(|due| due <= now);
        if !due && self.schedule_blockers()?.is_empty() {
            return Ok(ScheduleFires::default());
        }
        let fires = off_thread(self, move |s| Store::fire_due_schedules(s, now)).await?;
        if !fires.is_empty() {
            self.durable().await?;
        }
        Ok(fires)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, ReadError> {
        let timers = self.next_deadline()?;
        let schedules = self.next_schedule_due()?;
        Ok(match (timers, schedules) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    async fn wait_due(&self, wait: Duration) -> Result<(), ReadError> {
        let timers = self.timer_notify().notified();
        let schedules = self.schedule_notify().notified();
        tokio::pin!(timers, schedules);
        timers.as_mut().enable();
        schedules.as_mut().enable();
        let pause = match HistoryStore::next_due(self).await? {
            Some(due) => wait.min(until(self, due)),
            None => wait,
        };
        if pause.is_zero() {
            return Ok(());
        }
        // A buffered schedule fire becomes due when the run it waits on
        // closes.
        let blockers = self.schedule_blockers()?;
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = timers => {}
            _ = schedules => {}
            _ = any_closed(self, blockers) => {}
        }
        Ok(())
    }

    fn now(&self) -> Timestamp {
        self.config().clock.now()
    }

    fn limits(&self) -> HistoryLimits {
        let config = self.config();
        HistoryLimits {
            max_payload_bytes: config.max_payload_bytes,
            max_history_events: config.max_history_events,
            max_history_bytes: config.max_history_bytes,
        }
    }

    fn progress(&self) -> Option<StoreProgress> {
        Some(Store::progress(self))
    }

    async fn record_gauges(&self, now: Timestamp) -> Result<(), ReadError> {
        // A walk of two tables: kept off the runtime's threads.
        Ok(off_thread(self, move |s| Store::record_gauges(s, now)).await?)
    }
}

/// Resolves when any of `runs` has closed. Never resolves for none, nor
/// for a run that cannot be waited on (the caller's pause covers it).
async fn any_closed(store: &Store, runs: Vec<RunId>) {
    if runs.is_empty() {
        return std::future::pending().await;
    }
    // Dropped with the wait, which aborts the rest.
    let mut waits = tokio::task::JoinSet::new();
    for run in runs {
        let store = store.clone();
        waits.spawn(async move { Store::wait_closed(&store, run).await.is_ok() });
    }
    while let Some(closed) = waits.join_next().await {
        if matches!(closed, Ok(true)) {
            return;
        }
    }
    std::future::pending().await
}

/// Time from now on the store's clock until `t` (zero if it passed).
fn until(store: &Store, t: Timestamp) -> Duration {
    t.saturating_since(store.config().clock.now())
}

/// So that `Client::new(store)` takes a `Store` as it is.
impl From<Store> for std::sync::Arc<dyn HistoryStore> {
    fn from(store: Store) -> Self {
        std::sync::Arc::new(store)
    }
}

/// Forgets a query when its caller's wait ends (see `query`); forgetting
/// an answered query is harmless.
struct ForgetQuery<'a> {
    queries: &'a QueryQueue,
    id: QueryId,
}

impl Drop for ForgetQuery<'_> {
    fn drop(&mut self) {
        self.queries.forget(self.id);
    }
}
