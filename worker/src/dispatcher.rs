//! Hands runs with work to workflow threads, one task per run at a time,
//! and retries failed tasks with backoff. The runs come from the store's
//! workflow-task poll; results of activities that succeeded in this worker
//! arrive here too and ride on the run's next task (see `direct`).

use crate::direct::{record_in_store, Delivered};
use crate::executor::{task_retry_backoff, Job, TaskDone};
use refrain_history::{HistoryStore, ReadError, RunId, WorkflowTask};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tracing::{debug, warn};

/// Most workflow tasks one poll returns.
const POLL_MAX: usize = 1024;
/// How long one poll waits for work before it is made again.
const POLL_WAIT: Duration = Duration::from_secs(1);
/// The pause after a poll failed, so a broken store is not polled hot.
const POLL_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// What woke the dispatcher.
enum Wake {
    Stop,
    Done(TaskDone),
    Delivered(Delivered),
    Retry(RunId),
    Polled(Result<Vec<WorkflowTask>, ReadError>),
}

pub(crate) async fn run_dispatcher(
    store: Arc<dyn HistoryStore>,
    threads: Vec<UnboundedSender<Job>>,
    mut done: UnboundedReceiver<TaskDone>,
    mut delivered: UnboundedReceiver<Delivered>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut in_flight: HashSet<RunId> = HashSet::new();
    // Runs that had work again while their task was running.
    let mut again: HashSet<RunId> = HashSet::new();
    // Results for runs whose task was running when they arrived.
    let mut waiting: HashMap<RunId, Vec<Delivered>> = HashMap::new();
    let mut failures: HashMap<RunId, u32> = HashMap::new();
    // Failed runs whose backoff is over.
    let (retry_tx, mut retry_rx) = tokio::sync::mpsc::unbounded_channel::<RunId>();
    let dispatch = |job: Job, run: RunId, in_flight: &mut HashSet<RunId>| {
        in_flight.insert(run);
        // Pin each run to one thread so its cached instance is found again.
        let _ = threads[thread_of(run, threads.len())].send(job);
    };
    // One poll at a time, kept across wake-ups: a poll is never dropped
    // halfway (it may have taken runs from the store's queue).
    let mut poll = store.poll_workflow_tasks(POLL_MAX, POLL_WAIT);
    loop {
        let wake = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => Wake::Stop,
            Some(d) = done.recv() => Wake::Done(d),
            Some(d) = delivered.recv() => Wake::Delivered(d),
            Some(run) = retry_rx.recv() => Wake::Retry(run),
            polled = &mut poll => Wake::Polled(polled),
        };
        match wake {
            Wake::Stop => break,
            Wake::Done(d) => {
                in_flight.remove(&d.run);
                if d.failed {
                    let n = failures.entry(d.run).or_insert(0);
                    *n += 1;
                    let delay = task_retry_backoff(*n);
                    debug!(run = %d.run, ?delay, "retrying failed activation later");
                    again.remove(&d.run);
                    // Results must not wait out the backoff in memory.
                    if let Some(results) = waiting.remove(&d.run) {
                        tokio::spawn(record_in_store(store.clone(), results));
                    }
                    let retry = retry_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = retry.send(d.run);
                    });
                } else {
                    failures.remove(&d.run);
                    if let Some(results) = waiting.remove(&d.run) {
                        // That task also takes whatever reached the inbox.
                        again.remove(&d.run);
                        dispatch(Job::Deliver(d.run, results), d.run, &mut in_flight);
                    } else if again.remove(&d.run) {
                        dispatch(Job::Again(d.run), d.run, &mut in_flight);
                    }
                }
            }
            Wake::Delivered(result) => {
                let run = result.run;
                if in_flight.contains(&run) {
                    waiting.entry(run).or_default().push(result);
                } else {
                    again.remove(&run);
                    dispatch(Job::Deliver(run, vec![result]), run, &mut in_flight);
                }
            }
            Wake::Retry(run) => {
                if in_flight.contains(&run) {
                    again.insert(run);
                } else {
                    dispatch(Job::Again(run), run, &mut in_flight);
                }
            }
            Wake::Polled(polled) => {
                poll = store.poll_workflow_tasks(POLL_MAX, POLL_WAIT);
                match polled {
                    Ok(tasks) => {
                        for task in tasks {
                            let task = match task {
                                WorkflowTask::Activation(task) => task,
                                WorkflowTask::Query(q) => {
                                    // The run's thread answers between
                                    // its activations.
                                    let thread = &threads[thread_of(q.run, threads.len())];
                                    let _ = thread.send(Job::Query(q));
                                    continue;
                                }
                            };
                            let run = task.run;
                            if in_flight.contains(&run) {
                                // Out of date once that task commits: the
                                // next one reads the run afresh.
                                again.insert(run);
                            } else {
                                dispatch(Job::Activate(task), run, &mut in_flight);
                            }
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot poll workflow tasks");
                        tokio::time::sleep(POLL_ERROR_PAUSE).await;
                    }
                }
            }
        }
    }
    drop(poll);
    // Stopping: results not yet handed to a thread are recorded the
    // ordinary way (so are any that arrive until every runner is gone).
    delivered.close();
    let mut left: Vec<Delivered> = waiting.into_values().flatten().collect();
    while let Some(d) = delivered.recv().await {
        left.push(d);
    }
    record_in_store(store, left).await;
}

/// The thread a run is pinned to, so its cached instance is found again.
pub(crate) fn thread_of(run: RunId, threads: usize) -> usize {
    (run.0 % threads as u64) as usize
}
