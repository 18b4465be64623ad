//! Hands ready runs to workflow threads, one task per run at a time, and
//! retries failed tasks with backoff. Results of activities that succeeded
//! in this worker arrive here too and ride on the run's next task (see
//! `eager`).

use crate::eager::Delivered;
use crate::executor::{task_retry_backoff, Job, TaskDone};
use refrain_history::{RunId, Store, StoreError, Timestamp};
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tracing::{debug, warn};

pub(crate) async fn run_dispatcher(
    store: Store,
    threads: Vec<UnboundedSender<Job>>,
    mut done: UnboundedReceiver<TaskDone>,
    mut delivered: UnboundedReceiver<Delivered>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut in_flight: HashSet<RunId> = HashSet::new();
    // Runs that became ready again while their task was running.
    let mut again: HashSet<RunId> = HashSet::new();
    // Results for runs whose task was running when they arrived.
    let mut waiting: HashMap<RunId, Vec<Delivered>> = HashMap::new();
    let mut failures: HashMap<RunId, u32> = HashMap::new();
    let dispatch = |job: Job, run: RunId, in_flight: &mut HashSet<RunId>| {
        in_flight.insert(run);
        // Pin each run to one thread so its cached instance is found again.
        let _ = threads[thread_of(run, threads.len())].send(job);
    };
    loop {
        for run in store.take_ready(1024) {
            if in_flight.contains(&run) {
                again.insert(run);
            } else {
                dispatch(Job::Activate(run), run, &mut in_flight);
            }
        }
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break,
            Some(d) = done.recv() => {
                in_flight.remove(&d.run);
                if d.failed {
                    let n = failures.entry(d.run).or_insert(0);
                    *n += 1;
                    let delay = task_retry_backoff(*n);
                    debug!(run = %d.run, ?delay, "retrying failed workflow task later");
                    again.remove(&d.run);
                    // Results must not wait out the backoff in memory.
                    if let Some(results) = waiting.remove(&d.run) {
                        tokio::spawn(record_in_store(store.clone(), results));
                    }
                    let store = store.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        store.requeue(d.run);
                    });
                } else {
                    failures.remove(&d.run);
                    if let Some(results) = waiting.remove(&d.run) {
                        // That task also takes whatever reached the inbox.
                        again.remove(&d.run);
                        dispatch(Job::Deliver(d.run, results), d.run, &mut in_flight);
                    } else if again.remove(&d.run) {
                        dispatch(Job::Activate(d.run), d.run, &mut in_flight);
                    }
                }
            }
            Some(result) = delivered.recv() => {
                let run = result.run;
                if in_flight.contains(&run) {
                    waiting.entry(run).or_default().push(result);
                } else {
                    again.remove(&run);
                    dispatch(Job::Deliver(run, vec![result]), run, &mut in_flight);
                }
            }
            _ = store.ready_notify().notified() => {}
        }
    }
    // Stopping: results not yet handed to a thread are recorded the
    // ordinary way (so are any that arrive until every runner is gone).
    delivered.close();
    let mut left: Vec<Delivered> = waiting.into_values().flatten().collect();
    while let Some(d) = delivered.recv().await {
        left.push(d);
    }
    record_in_store(store, left).await;
}

/// The ordinary way for results that cannot ride on an activation.
async fn record_in_store(store: Store, results: Vec<Delivered>) {
    for d in results {
        let recorded = store
            .complete_activity_async(d.run, d.cmd, d.token, Ok(d.result), Timestamp::now())
            .await;
        match recorded {
            Ok(_) => {}
            Err(StoreError::StaleActivity { .. }) => {
                warn!(run = %d.run, "late result of a timed-out attempt rejected")
            }
            Err(e) => warn!(run = %d.run, error = %e, "cannot record activity outcome"),
        }
    }
}

/// The thread a run is pinned to, so its cached instance is found again.
pub(crate) fn thread_of(run: RunId, threads: usize) -> usize {
    (run.0 % threads as u64) as usize
}
