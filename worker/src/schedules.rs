//! Fires schedules. The store keeps an index of schedules by next fire
//! time, so this loop sleeps until the earliest one (or until a schedule
//! is created or resumed, which notifies it), asks the store to handle
//! everything due, and goes back to sleep.
//!
//! Catching up after downtime needs nothing special: on start-up the first
//! pass sees fire times in the past and the store handles them per each
//! schedule's catch-up window and overlap policy, exactly as it handles a
//! fire this loop wakes up for a few milliseconds late.
//!
//! A buffered fire (`BufferOne`) starts when the previous run closes. The
//! loop also waits for those runs to close, through the store's
//! `wait_closed`, which wakes exactly when that run closes (no polling,
//! and no cost for the thousands of other runs closing meanwhile); the
//! one-second idle cap is only a safety net.

use refrain_history::{RunId, Store, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, warn};

/// Where the schedule service reads the time: the system clock unless a
/// test replaces it (see `WorkerBuilder::schedule_clock`).
pub(crate) type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Longest sleep between looks at the store: a safety net against
/// wall-clock jumps (and against a clock replaced by a test that moved
/// it without notifying).
const MAX_IDLE: Duration = Duration::from_secs(1);

pub(crate) async fn run_schedule_service(
    store: Store,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let now = clock();
        match store.fire_due_schedules(now) {
            Ok(fires) => {
                for (schedule, run) in &fires.started {
                    debug!(schedule, workflow_id = %run.workflow_id, run = %run.run, "schedule fired");
                }
                // Nobody waits on a fire, but a fire acknowledged by the
                // log line above should survive a crash like any other
                // start; one shared flush covers the whole pass.
                if !fires.is_empty() {
                    if let Err(e) = store.durable().await {
                        warn!(error = %e, "cannot make schedule fires durable");
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot fire due schedules"),
        }
        let idle = match store.next_schedule_due() {
            Ok(Some(at)) => at.saturating_since(clock()).min(MAX_IDLE),
            Ok(None) => MAX_IDLE,
            Err(e) => {
                warn!(error = %e, "cannot read the next schedule fire");
                MAX_IDLE
            }
        };
        let blockers = store.schedule_blockers().unwrap_or_else(|e| {
            warn!(error = %e, "cannot read the runs buffered fires wait on");
            Vec::new()
        });
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break,
            _ = store.schedule_notify().notified() => {}
            _ = any_closed(&store, blockers) => {}
            _ = tokio::time::sleep(idle.max(Duration::from_millis(1))) => {}
        }
    }
}

/// Resolves when any of `runs` has closed. Never resolves for none, nor
/// for a run that cannot be waited on (that would spin the loop; the idle
/// cap covers it).
async fn any_closed(store: &Store, runs: Vec<RunId>) {
    if runs.is_empty() {
        return std::future::pending().await;
    }
    let waits = runs.into_iter().map(|run| {
        Box::pin(async move {
            if let Err(e) = store.wait_closed(run).await {
                debug!(error = %e, %run, "cannot wait for a schedule's previous run");
                std::future::pending::<()>().await;
            }
        })
    });
    futures::future::select_all(waits).await;
}
