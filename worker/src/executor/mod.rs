//! Activation threads. Workflow futures need not be `Send`, and their
//! polling is pure CPU work, so each run is pinned to one plain OS thread
//! (no async runtime: tokio's timers and spawn panic there, which is how
//! they are caught in workflow code). A thread takes the run's task,
//! replays or reuses its instance, runs one activation and commits it.
//! The task is taken without a lease (no claim transaction): the
//! dispatcher runs one task per run at a time, and the commit is fenced by
//! the run's last seq.
//!
//! Commits are pipelined: a thread hands its commit to the runtime as a
//! future of its own ([`HistoryStore::commit_activation`]) and goes on
//! with the next job; the store applies it with whatever other commits
//! arrive meanwhile (one transaction per batch), the future hears back once
//! it is durable, hands the activities it claimed to the runner (so an
//! attempt never starts before the history that schedules it is durable)
//! and sends the thread a `Settled` job. Until then the run's task is not
//! over: the dispatcher sends it nothing new, and queries wait, so a query
//! never sees an activation whose commit may still be refused. A thread
//! therefore spends its time running workflow code, not waiting for
//! transactions, and a few threads per CPU keep the store's batches full.
//!
//! Reads a thread needs before it can run an activation (a run's task, a
//! history to replay) it waits for in place (`Handle::block_on`): the
//! thread has nothing else to do for that run meanwhile.
//!
//! A thread also takes the starts of runs pinned to it that were made
//! through the worker's client (see `eager_start` and `starts`): it runs
//! the first activation and hands it to the store with the start. The dispatcher does not know of
//! that commit, so a task for the run that reaches the thread before it
//! settles waits for it.

mod queries;
mod starts;

use crate::cache::StickyCache;
use crate::direct::{record_in_store, ActivityHandoff, Delivered};
use crate::eager_start::StartJob;
use crate::registry::Registry;
use crate::telemetry::TaskReport;
use refrain::replay::{ActivationError, WorkflowMachine};
use refrain::OversizedCommand;
use refrain_history::{
    Activation, ActivationCommit, ActivityTask, CommitError, DirectActivities, Event, Failure,
    HistoryLimits, HistoryStore, LocalCompletion, QueryTask, RetryPolicy, RunId, RunRecord,
};
use refrain_history::{Clock, LeaseToken, HISTORY_LIMIT_KIND};
use starts::start_here;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, WeakUnboundedSender};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, error, info_span, warn};

/// Work for a workflow thread.
pub(crate) enum Job {
    /// Run a workflow task the store's poll returned.
    Activate(Box<Activation>),
    /// Run the activation of a run, if it has work (a run that had
    /// work while its previous task ran, or whose failed task is retried):
    /// the thread reads the task afresh.
    Again(RunId),
    /// Run the next activation of a run with results of attempts that
    /// succeeded in this worker (see `direct`).
    Deliver(RunId, Vec<Delivered>),
    /// Answer a query from the run's instance (between activations, so it
    /// sees committed state).
    Query(QueryJob),
    /// Run the first activation of a run started in this process and
    /// commit it with the start (see `eager_start`).
    Start(Box<StartJob>),
    /// The store applied (or refused) the commit of the run's activation:
    /// `Ok(false)` if an eager start's id stood for another run, so its
    /// activation was discarded.
    Settled {
        run: RunId,
        outcome: Result<bool, CommitError>,
    },
}

/// A query for the run's thread, as the store's poll gave it.
pub(crate) type QueryJob = QueryTask;

/// A commit handed to the store and not yet settled: what its task needs
/// if the store refuses it.
struct InFlight {
    token: LeaseToken,
    record: RunRecord,
    /// Results it carried: recorded the ordinary way if it is refused.
    delivered: Vec<Delivered>,
    /// Queries that arrived meanwhile, answered once it settles.
    queries: Vec<QueryJob>,
    /// Whether the dispatcher handed out the task (an eager start's was
    /// not): then it hears when the task is over.
    dispatched: bool,
    /// A task for the run that arrived meanwhile, run once it settles.
    /// Only an eager start's commit can be overtaken: the dispatcher does
    /// not know of it, and the run may have work as soon as it is applied.
    next: Option<Vec<Delivered>>,
}

/// How an activation ended, reported back to the dispatcher.
pub(crate) struct TaskDone {
    pub run: RunId,
    /// Whether the task failed and should be retried after a backoff.
    pub failed: bool,
}

pub(crate) struct Executor {
    store: Arc<dyn HistoryStore>,
    /// The runtime the commits and the ordinary recording of results run on.
    rt: Handle,
    limits: HistoryLimits,
    registry: Arc<Registry>,
    cache: StickyCache,
    done: UnboundedSender<TaskDone>,
    handoff: ActivityHandoff,
    /// This thread's own job queue, for the `Settled` reports of its
    /// commits. Weak, so the thread still ends when everyone else has
    /// dropped the queue and no commit is in flight.
    own: WeakUnboundedSender<Job>,
    in_flight: HashMap<RunId, InFlight>,
    /// Workflow time: what `ctx.now()` reads and activations are dated
    /// with (the system clock unless a test moves time).
    clock: Clock,
}

enum Outcome {
    Committed,
    Nothing,
    Failed,
    /// Handed to the store; the task ends when it settles.
    Submitted,
}

impl Executor {
    pub fn spawn(
        index: usize,
        store: Arc<dyn HistoryStore>,
        registry: Arc<Registry>,
        cache_capacity: usize,
        done: UnboundedSender<TaskDone>,
        handoff: ActivityHandoff,
        clock: Clock,
    ) -> (UnboundedSender<Job>, std::thread::JoinHandle<()>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let own = tx.downgrade();
        let rt = Handle::current();
        let handle = std::thread::Builder::new()
            .name(format!("refrain-wf-{index}"))
            .spawn(move || {
                // Built on the thread: cached instances are not `Send`.
                let limits = store.limits();
                let mut exec = Executor {
                    store,
                    rt,
                    limits,
                    registry,
                    cache: StickyCache::new(cache_capacity),
                    done,
                    handoff,
                    own,
                    in_flight: HashMap::new(),
                    clock,
                };
                exec.run(rx);
            })
            .expect("spawning a workflow thread");
        (tx, handle)
    }

    /// Takes jobs until the dispatcher and the query router are gone and
    /// no commit of this thread is in flight.
    fn run(&mut self, mut rx: UnboundedReceiver<Job>) {
        while let Some(job) = rx.blocking_recv() {
            let (run, delivered, polled) = match job {
                Job::Activate(task) => (task.run, Vec::new(), Some(*task)),
                Job::Again(run) => (run, Vec::new(), None),
                Job::Deliver(run, delivered) => (run, delivered, None),
                Job::Start(start) => {
                    self.start_eagerly(*start);
                    continue;
                }
                Job::Query(q) => {
                    match self.in_flight.get_mut(&q.run) {
                        Some(waiting) => waiting.queries.push(q),
                        None => self.answer(q),
                    }
                    continue;
                }
                Job::Settled { run, outcome } => {
                    self.settle(run, outcome);
                    continue;
                }
            };
            if let Some(waiting) = self.in_flight.get_mut(&run) {
                // A polled task is out of date once the commit settles:
                // the task that waits reads it afresh.
                waiting.next.get_or_insert_with(Vec::new).extend(delivered);
                continue;
            }
            self.task(run, delivered, polled);
        }
    }

    /// Runs a task the dispatcher handed out; reports it unless it is
    /// still in flight.
    fn task(&mut self, run: RunId, delivered: Vec<Delivered>, polled: Option<Activation>) {
        match self.process(run, delivered, polled) {
            Outcome::Submitted => {}
            outcome => self.report(run, &outcome),
        }
    }

    /// Tells the dispatcher the run's task is over.
    fn report(&self, run: RunId, outcome: &Outcome) {
        let failed = matches!(outcome, Outcome::Failed);
        // A closed channel means the dispatcher stopped: nothing to tell.
        let _ = self.done.send(TaskDone { run, failed });
    }

    /// Hands results the short path cannot apply to the store the
    /// ordinary way, without waiting for them.
    fn record_later(&self, delivered: Vec<Delivered>) {
        if !delivered.is_empty() {
            self.rt
                .spawn(record_in_store(self.store.clone(), delivered));
        }
    }

    /// The task of `run` read afresh: with results to bring, any open
    /// run's; without, only one with work.
    fn read_task(&self, run: RunId, with_results: bool) -> Result<Option<Activation>, String> {
        let task = self
            .rt
            .block_on(self.store.activation(run))
            .map_err(|e| e.to_string())?;
        Ok(task.filter(|t| with_results || t.record.is_ready()))
    }

    /// Runs one activation of `run` (of the task `polled`, or of one read
    /// now), applying its inbox and then the `delivered` results. Whatever
    /// path does not commit them hands the results to the store the
    /// ordinary way first.
    fn process(
        &mut self,
        run: RunId,
        delivered: Vec<Delivered>,
        polled: Option<Activation>,
    ) -> Outcome {
        let began = Instant::now();
        let begun = match polled {
            Some(task) if delivered.is_empty() => Ok(Some(task)),
            _ => self.read_task(run, !delivered.is_empty()),
        };
        let task = match begun {
            Ok(Some(task)) => task,
            Ok(None) => {
                self.record_later(delivered);
                return Outcome::Nothing;
            }
            Err(e) => {
                error!(%run, error = %e, "cannot read activation");
                self.record_later(delivered);
                return Outcome::Failed;
            }
        };
        let span = task_span(run, &task.record);
        let _enter = span.enter();
        let machine = match self.cache.take(run) {
            Some(m) if m.last_seq() == task.record.last_seq => Ok(m),
            _ => self.rebuild(run, &task.record),
        };
        let mut machine = match machine {
            Ok(m) => m,
            Err(reason) => {
                self.record_later(delivered);
                return self.fail_task(run, task.token, reason);
            }
        };
        let mut inbound = task.inbox;
        inbound.extend(delivered.iter().map(Delivered::event));
        let events = match self.activate(&mut machine, &task.record, inbound) {
            Ok(events) => events,
            Err(e) => {
                let reason = match &e {
                    ActivationError::Nondeterminism(_) => format!("{e}"),
                    _ => e.to_string(),
                };
                self.record_later(delivered);
                return self.fail_task(run, task.token, reason);
            }
        };
        let limit = self.limits.max_payload_bytes;
        if let Some(oversized) = OversizedCommand::find(&events, limit) {
            // The store would refuse this activation, and every retry
            // produces it again: the run fails instead, naming the command.
            self.record_later(delivered);
            return self.close_failed(run, &task.record, task.token, oversized.into_failure());
        }
        let commit = ActivationCommit {
            run,
            token: task.token,
            expected_last_seq: task.record.last_seq,
            inbox_upto: task.inbox_upto,
            events,
            rejected_updates: machine.take_rejected_updates(),
            awaited_signals: machine.awaited_signals(),
        };
        let report = self.task_report(&task.record, &commit, began);
        let completed = delivered.iter().map(Delivered::completion).collect();
        let waiting = InFlight {
            token: task.token,
            record: task.record,
            delivered,
            queries: Vec::new(),
            dispatched: true,
            next: None,
        };
        let (direct, slots) = self.hand_over(machine, &commit, completed, waiting);
        match self.own.upgrade() {
            Some(own) => {
                let settled = self.on_settled(run, own, slots, true);
                let store = self.store.clone();
                start_here(&self.rt, async move {
                    let outcome = store.commit_activation(commit, direct).await;
                    if let Some(report) = report {
                        report.settled(outcome.is_ok());
                    }
                    settled(outcome.map(Some));
                });
                Outcome::Submitted
            }
            None => {
                // Everyone else dropped this thread's queue (the worker is
                // stopping): nothing could report back, so wait here.
                let outcome = self
                    .rt
                    .block_on(self.store.commit_activation(commit, direct));
                if let Some(report) = report {
                    report.settled(outcome.is_ok());
                }
                let outcome = outcome.map(|claimed| {
                    self.handoff.hand_out(claimed, slots);
                    true
                });
                self.finish(run, outcome)
                    .map_or(Outcome::Nothing, |(outcome, ..)| outcome)
            }
        }
    }

    /// Applies `inbound` to the instance, within the store's history
    /// limits as `record` stands.
    fn activate(
        &self,
        machine: &mut WorkflowMachine,
        record: &RunRecord,
        inbound: Vec<Event>,
    ) -> Result<Vec<Event>, ActivationError> {
        machine.set_history_info(
            record.history_bytes,
            self.limits.max_history_events,
            self.limits.max_history_bytes,
        );
        machine.activate(self.clock.now(), inbound)
    }

    /// Readies an activation's commit for the store: reserves activity
    /// slots for what it schedules, keeps the instance (the next job for
    /// this run comes only after the commit settles, and a refused commit
    /// evicts it) and records the commit as in flight.
    fn hand_over(
        &mut self,
        machine: WorkflowMachine,
        commit: &ActivationCommit,
        completed: Vec<LocalCompletion>,
        waiting: InFlight,
    ) -> (DirectActivities, Vec<OwnedSemaphorePermit>) {
        let run = commit.run;
        let (claim, slots) = self.handoff.reserve(commit.run, &commit.events);
        let closed = machine.is_closed();
        debug!(
            last_seq = machine.last_seq().0,
            closed, "activation handed to the store"
        );
        if !closed {
            self.cache.put(run, machine);
        }
        self.in_flight.insert(run, waiting);
        (DirectActivities { completed, claim }, slots)
    }

    /// What runs once a commit of this thread settles: the activities it
    /// claimed go to the runner (unused slots are freed), and the thread
    /// hears of it with a `Settled` job. `None` (an eager start whose
    /// activation was discarded) claimed nothing.
    fn on_settled(
        &self,
        run: RunId,
        own: UnboundedSender<Job>,
        slots: Vec<OwnedSemaphorePermit>,
        dispatched: bool,
    ) -> impl FnOnce(Result<Option<Vec<ActivityTask>>, CommitError>) + Send + 'static {
        let handoff = self.handoff.clone();
        let done = dispatched.then(|| self.done.clone());
        move |outcome| {
            let (outcome, claimed) = match outcome {
                Ok(Some(tasks)) => (Ok(true), tasks),
                Ok(None) => (Ok(false), Vec::new()),
                Err(e) => (Err(e), Vec::new()),
            };
            let committed = matches!(outcome, Ok(true));
            // The thread first, then (for a commit that went through) the
            // dispatcher at once, without waiting for a busy thread: the
            // next job the dispatcher sends the run queues behind
            // `Settled` on the thread's queue. Then the attempts, whose
            // results then find the run free.
            // Gone only if the thread is: nobody is left to tell.
            let _ = own.send(Job::Settled { run, outcome });
            if let (true, Some(done)) = (committed, done) {
                let _ = done.send(TaskDone { run, failed: false });
            }
            handoff.hand_out(claimed, slots);
        }
    }

    /// A commit of this thread settled: ends the run's task (telling the
    /// dispatcher, if it handed it out) and runs the task that waited for
    /// it, if any.
    fn settle(&mut self, run: RunId, outcome: Result<bool, CommitError>) {
        let Some((outcome, dispatched, next)) = self.finish(run, outcome) else {
            return;
        };
        // A commit that went through was reported when it settled.
        if dispatched && !matches!(outcome, Outcome::Committed) {
            self.report(run, &outcome);
        }
        if let Some(delivered) = next {
            self.task(run, delivered, None);
        }
    }

    /// What follows the outcome of `run`'s commit in flight, and the
    /// queries that waited for it; `None` if it has none. Also says
    /// whether the dispatcher handed the task out, and gives back the task
    /// that waited for the commit.
    fn finish(
        &mut self,
        run: RunId,
        outcome: Result<bool, CommitError>,
    ) -> Option<(Outcome, bool, Option<Vec<Delivered>>)> {
        let waiting = self.in_flight.remove(&run)?;
        let result = match outcome {
            Ok(true) => Outcome::Committed,
            Ok(false) => {
                // An eager start attached to another run: this instance
                // never existed in the store.
                self.cache.take(run);
                Outcome::Nothing
            }
            Err(e) => {
                // The instance ran ahead of what the store holds.
                self.cache.take(run);
                if waiting.dispatched {
                    self.refused(run, waiting.token, &waiting.record, waiting.delivered, e)
                } else {
                    // An eager start: nothing was written, and the store
                    // starts the run the ordinary way.
                    debug!(%run, error = %e, "eager start refused");
                    Outcome::Nothing
                }
            }
        };
        for q in waiting.queries {
            self.answer(q);
        }
        Some((result, waiting.dispatched, waiting.next))
    }

    /// The store refused a commit: its results go the ordinary way, and
    /// the run is retried, closed or left as the error says.
    fn refused(
        &mut self,
        run: RunId,
        token: LeaseToken,
        record: &RunRecord,
        delivered: Vec<Delivered>,
        e: CommitError,
    ) -> Outcome {
        // Not applied: record them the ordinary way (a stale attempt's
        // result is rejected there); each one recorded puts the run's
        // task back in the store's queue.
        self.record_later(delivered);
        match e {
            CommitError::LeaseLost { .. } | CommitError::Conflict { .. } => {
                // Someone else moved the run on; the next task replays.
                warn!(%run, error = %e, "activation discarded");
                Outcome::Nothing
            }
            CommitError::StaleActivity { .. } => {
                // A delivered attempt timed out meanwhile; its retry's
                // result will come through the inbox.
                warn!(%run, error = %e, "activation discarded");
                Outcome::Nothing
            }
            CommitError::HistoryLimitExceeded { .. } => {
                // Retrying cannot help: close the run with a failure that
                // says why (the store always admits a lone failure).
                let mut failure = Failure::application(
                    HISTORY_LIMIT_KIND,
                    format!("{e}; continue as new before the history grows this large"),
                );
                failure.non_retryable = true;
                self.close_failed(run, record, token, failure)
            }
            CommitError::PayloadTooLarge { size, limit } => {
                // `OversizedCommand::find` reads the store's own table, so
                // this means the two disagree (a bug): the refusal is as
                // final as the others all the same.
                let failure = OversizedCommand {
                    command: "the activation",
                    field: "a payload",
                    target: None,
                    size,
                    limit,
                }
                .into_failure();
                self.close_failed(run, record, token, failure)
            }
            e => self.fail_task(run, token, format!("commit failed: {e}")),
        }
    }

    /// Closes `run` with `failure`, whose cause would fail every retry of
    /// the run's task the same way. The closing activation is the
    /// worker's, not the code's: replay takes it as the run's end.
    fn close_failed(
        &mut self,
        run: RunId,
        record: &RunRecord,
        token: LeaseToken,
        failure: Failure,
    ) -> Outcome {
        let cause = failure.message.clone();
        let commit = ActivationCommit {
            run,
            token,
            expected_last_seq: record.last_seq,
            inbox_upto: record.inbox_head,
            events: vec![
                Event::ActivationStarted {
                    time: self.clock.now(),
                },
                Event::WorkflowFailed { failure },
            ],
            rejected_updates: Vec::new(),
            awaited_signals: Vec::new(),
        };
        let report = self.task_report(record, &commit, Instant::now());
        let closed = self.rt.block_on(
            self.store
                .commit_activation(commit, DirectActivities::default()),
        );
        if let Some(report) = report {
            report.settled(closed.is_ok());
        }
        match closed {
            Ok(_) => {
                error!(%run, "run failed: {cause}");
                Outcome::Committed
            }
            Err(e) => self.fail_task(run, token, format!("{cause}; closing it failed: {e}")),
        }
    }

    /// The metrics a task of `record`'s run owes once `commit` settles.
    fn task_report(
        &self,
        record: &RunRecord,
        commit: &ActivationCommit,
        began: Instant,
    ) -> Option<TaskReport> {
        let labels = self.registry.workflow_labels.get(&record.workflow_type);
        TaskReport::of(labels.copied(), commit, began)
    }

    fn fail_task(
        &mut self,
        run: RunId,
        token: refrain_history::LeaseToken,
        reason: String,
    ) -> Outcome {
        error!(%run, "activation failed; history unchanged, will retry:\n{reason}");
        // The dispatcher offers the run again after a backoff; the store
        // keeps why it failed, for operators.
        let store = self.store.clone();
        self.rt.spawn(async move {
            if let Err(e) = store.fail_activation(run, token, Some(reason), None).await {
                warn!(%run, error = %e, "cannot release activation");
            }
        });
        Outcome::Failed
    }
}

/// The span of one activation (or eager first activation) of `run`.
fn task_span(run: RunId, record: &RunRecord) -> tracing::Span {
    info_span!(
        "workflow_task",
        workflow_id = %record.workflow_id,
        run = run.0,
        workflow_type = %record.workflow_type,
    )
}

/// Backoff before retrying a run whose activation failed `failures`
/// times in a row: 100 ms doubling to at most one minute.
pub(crate) fn task_retry_backoff(failures: u32) -> Duration {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(100))
        .max_interval(Duration::from_secs(60))
        .backoff_after(failures)
}
