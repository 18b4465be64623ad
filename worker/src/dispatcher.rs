//! Hands ready runs to workflow threads, one task per run at a time, and
//! retries failed tasks with backoff.

use crate::executor::{task_retry_backoff, Job, TaskDone};
use refrain_history::{RunId, Store};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tracing::debug;

pub(crate) async fn run_dispatcher(
    store: Store,
    threads: Vec<mpsc::Sender<Job>>,
    mut done: UnboundedReceiver<TaskDone>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut in_flight: HashSet<RunId> = HashSet::new();
    // Runs that became ready again while their task was running.
    let mut again: HashSet<RunId> = HashSet::new();
    let mut failures: HashMap<RunId, u32> = HashMap::new();
    let dispatch = |run: RunId, in_flight: &mut HashSet<RunId>| {
        in_flight.insert(run);
        // Pin each run to one thread so its cached instance is found again.
        let _ = threads[thread_of(run, threads.len())].send(Job::Activate(run));
    };
    loop {
        for run in store.take_ready(1024) {
            if in_flight.contains(&run) {
                again.insert(run);
            } else {
                dispatch(run, &mut in_flight);
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
                    let store = store.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        store.requeue(d.run);
                    });
                } else {
                    failures.remove(&d.run);
                    if again.remove(&d.run) {
                        dispatch(d.run, &mut in_flight);
                    }
                }
            }
            _ = store.ready_notify().notified() => {}
        }
    }
}

/// The thread a run is pinned to, so its cached instance is found again.
pub(crate) fn thread_of(run: RunId, threads: usize) -> usize {
    (run.0 % threads as u64) as usize
}
