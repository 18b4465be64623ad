//! Workflow-task threads. Workflow futures need not be `Send`, and their
//! polling is pure CPU work, so each run is pinned to one plain OS thread
//! (no async runtime: tokio's timers and spawn panic there, which is how
//! they are caught in workflow code). A thread takes the run's task,
//! replays or reuses its instance, runs one activation and commits it.
//! The task is taken without a lease (no claim transaction): the
//! dispatcher runs one task per run at a time, and the commit is fenced by
//! the run's last seq.

use crate::cache::StickyCache;
use crate::eager::{record_in_store, ActivityHandoff, Delivered};
use crate::registry::Registry;
use refrain::replay::{ActivationError, WorkflowMachine};
use refrain_history::{
    ActivationCommit, EagerCommit, Event, Failure, Payload, RetryPolicy, RunId, RunRecord, Store,
    StoreError, Timestamp,
};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tracing::{debug, error, info_span, warn};

/// Work for a workflow thread.
pub(crate) enum Job {
    /// Run the workflow task of a ready run.
    Activate(RunId),
    /// Run the next activation of a run with results of attempts that
    /// succeeded in this worker (see `eager`).
    Deliver(RunId, Vec<Delivered>),
    /// Answer a query from the run's instance (between activations, so it
    /// sees committed state).
    Query {
        run: RunId,
        name: String,
        args: Payload,
        reply: oneshot::Sender<Result<Payload, String>>,
    },
}

/// How a workflow task ended, reported back to the dispatcher.
pub(crate) struct TaskDone {
    pub run: RunId,
    /// Whether the task failed and should be retried after a backoff.
    pub failed: bool,
}

pub(crate) struct Executor {
    store: Store,
    registry: Arc<Registry>,
    cache: StickyCache,
    done: UnboundedSender<TaskDone>,
    handoff: ActivityHandoff,
}

enum Outcome {
    Committed,
    Nothing,
    Failed,
}

impl Executor {
    pub fn spawn(
        index: usize,
        store: Store,
        registry: Arc<Registry>,
        cache_capacity: usize,
        done: UnboundedSender<TaskDone>,
        handoff: ActivityHandoff,
    ) -> (mpsc::Sender<Job>, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name(format!("refrain-wf-{index}"))
            .spawn(move || {
                // Built on the thread: cached instances are not `Send`.
                let mut exec = Executor {
                    store,
                    registry,
                    cache: StickyCache::new(cache_capacity),
                    done,
                    handoff,
                };
                while let Ok(job) = rx.recv() {
                    let (run, delivered) = match job {
                        Job::Activate(run) => (run, Vec::new()),
                        Job::Deliver(run, delivered) => (run, delivered),
                        Job::Query {
                            run,
                            name,
                            args,
                            reply,
                        } => {
                            let _ = reply.send(exec.query(run, &name, &args));
                            continue;
                        }
                    };
                    let failed = matches!(exec.process(run, delivered), Outcome::Failed);
                    if exec.done.send(TaskDone { run, failed }).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning a workflow thread");
        (tx, handle)
    }

    /// Runs one activation of `run`, applying its inbox and then the
    /// `delivered` results. Whatever path does not commit them hands the
    /// results to the store the ordinary way first.
    fn process(&mut self, run: RunId, delivered: Vec<Delivered>) -> Outcome {
        let begun = if delivered.is_empty() {
            self.store.begin_workflow_task(run)
        } else {
            self.store.begin_workflow_task_with_results(run)
        };
        let task = match begun {
            Ok(Some(task)) => task,
            Ok(None) => {
                record_in_store(&self.store, delivered);
                return Outcome::Nothing;
            }
            Err(e) => {
                error!(%run, error = %e, "cannot claim workflow task");
                record_in_store(&self.store, delivered);
                return Outcome::Failed;
            }
        };
        let span = info_span!(
            "workflow_task",
            workflow_id = %task.record.workflow_id,
            run = run.0,
            workflow_type = %task.record.workflow_type,
        );
        let _enter = span.enter();
        let machine = match self.cache.take(run) {
            Some(m) if m.last_seq() == task.record.last_seq => Ok(m),
            _ => self.rebuild(run, &task.record),
        };
        let mut machine = match machine {
            Ok(m) => m,
            Err(reason) => {
                record_in_store(&self.store, delivered);
                return self.fail_task(run, task.token, reason);
            }
        };
        let config = self.store.config();
        machine.set_history_info(
            task.record.history_bytes,
            config.max_history_events,
            config.max_history_bytes,
        );
        let mut inbound = task.inbox;
        inbound.extend(delivered.iter().map(Delivered::event));
        let events = match machine.activate(Timestamp::now(), inbound) {
            Ok(events) => events,
            Err(e) => {
                let reason = match &e {
                    ActivationError::Nondeterminism(_) => format!("{e}"),
                    _ => e.to_string(),
                };
                record_in_store(&self.store, delivered);
                return self.fail_task(run, task.token, reason);
            }
        };
        let closed = machine.is_closed();
        let commit = ActivationCommit {
            run,
            token: task.token,
            expected_last_seq: task.record.last_seq,
            inbox_upto: task.inbox_upto,
            events,
            rejected_updates: machine.take_rejected_updates(),
        };
        let (claim, slots) = self.handoff.reserve(&commit.events);
        let committed = if claim.is_empty() && delivered.is_empty() {
            self.store.commit_activation(commit).map(|()| Vec::new())
        } else {
            let eager = EagerCommit {
                completed: delivered.iter().map(Delivered::completion).collect(),
                claim,
            };
            self.store.commit_activation_eager(commit, eager)
        };
        if committed.is_err() && !delivered.is_empty() {
            // Not applied: record them the ordinary way (a stale attempt's
            // result is rejected there), and look at the run again.
            record_in_store(&self.store, delivered);
            self.store.requeue(run);
        }
        match committed {
            Ok(claimed) => {
                debug!(
                    last_seq = machine.last_seq(),
                    closed, "activation committed"
                );
                self.handoff.hand_out(claimed, slots);
                if !closed {
                    self.cache.put(run, machine);
                }
                Outcome::Committed
            }
            Err(e @ (StoreError::LeaseLost { .. } | StoreError::Conflict { .. })) => {
                // Someone else moved the run on; the next task replays.
                warn!(error = %e, "activation discarded");
                Outcome::Nothing
            }
            Err(e @ StoreError::StaleActivity { .. }) => {
                // A delivered attempt timed out meanwhile; its retry's
                // result will come through the inbox.
                warn!(error = %e, "activation discarded");
                Outcome::Nothing
            }
            Err(e @ StoreError::HistoryLimitExceeded { .. }) => {
                // Retrying cannot help: close the run with a failure that
                // says why (the store always admits a lone failure).
                self.close_over_limit(run, &task.record, task.token, &e)
            }
            Err(e) => self.fail_task(run, task.token, format!("commit failed: {e}")),
        }
    }

    /// Answers a query from the cached instance of `run`, or from one
    /// rebuilt by replaying its history (kept in the cache if the run is
    /// open).
    fn query(&mut self, run: RunId, name: &str, args: &Payload) -> Result<Payload, String> {
        let record = self
            .store
            .run_record(run)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no such run {run}"))?;
        let machine = match self.cache.take(run) {
            Some(m) if m.last_seq() == record.last_seq => m,
            _ => self.rebuild(run, &record)?,
        };
        let answer = machine.query(name, args).map_err(|e| e.to_string());
        if !machine.is_closed() {
            self.cache.put(run, machine);
        }
        answer
    }

    /// Builds the instance of `run` by replaying its stored history.
    fn rebuild(&self, run: RunId, record: &RunRecord) -> Result<WorkflowMachine, String> {
        let workflow = self
            .registry
            .workflows
            .get(&record.workflow_type)
            .ok_or_else(|| {
                format!(
                    "workflow type {:?} is not registered on this worker",
                    record.workflow_type
                )
            })?;
        let history = self.store.read_history(run).map_err(|e| e.to_string())?;
        let Some((first, rest)) = history.split_first() else {
            return Err(format!("{run} has an empty history"));
        };
        let mut machine =
            WorkflowMachine::new(workflow.as_ref(), run, first).map_err(|e| e.to_string())?;
        machine.replay(rest).map_err(|e| e.to_string())?;
        debug!(events = history.len(), "replayed history");
        Ok(machine)
    }

    fn close_over_limit(
        &mut self,
        run: RunId,
        record: &RunRecord,
        token: refrain_history::LeaseToken,
        cause: &StoreError,
    ) -> Outcome {
        let mut failure = Failure::application(
            "history-limit",
            format!("{cause}; continue as new before the history grows this large"),
        );
        failure.non_retryable = true;
        let commit = ActivationCommit {
            run,
            token,
            expected_last_seq: record.last_seq,
            inbox_upto: record.inbox_head,
            events: vec![
                Event::ActivationStarted {
                    time: Timestamp::now(),
                },
                Event::WorkflowFailed { failure },
            ],
            rejected_updates: Vec::new(),
        };
        match self.store.commit_activation(commit) {
            Ok(()) => {
                error!(%run, "run failed: {cause}");
                Outcome::Committed
            }
            Err(e) => self.fail_task(run, token, format!("{cause}; closing it failed: {e}")),
        }
    }

    fn fail_task(
        &mut self,
        run: RunId,
        token: refrain_history::LeaseToken,
        reason: String,
    ) -> Outcome {
        error!(%run, "workflow task failed; history unchanged, will retry:\n{reason}");
        if let Err(e) = self.store.release_workflow_task(run, token, Some(reason)) {
            warn!(%run, error = %e, "cannot release workflow task");
        }
        Outcome::Failed
    }
}

/// Backoff before retrying a run whose workflow task failed `failures`
/// times in a row: 100 ms doubling to at most one minute.
pub(crate) fn task_retry_backoff(failures: u32) -> Duration {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(100))
        .max_interval(Duration::from_secs(60))
        .backoff_after(failures)
}
