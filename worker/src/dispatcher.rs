//! Hands ready runs to workflow threads, one task per run at a time, and
//! retries failed tasks with backoff.

use crate::executor::{task_retry_backoff, TaskDone};
use refrain_history::{RunId, Store};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tracing::debug;

pub(crate) async fn run_dispatcher(
    store: Store,
    threads: Vec<mpsc::Sender<RunId>>,
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
        let thread = (run.0 % threads.len() as u64) as usize;
        let _ = threads[thread].send(run);
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
