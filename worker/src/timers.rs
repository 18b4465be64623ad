//! The time service: fires durable timers, expires activity attempts and
//! fires schedules when their time comes. The store keeps each in an index
//! keyed by time and says when the earliest is due
//! ([`HistoryStore::wait_due`]), so this loop only ever handles what is
//! due and then waits.
//!
//! Catching up after downtime needs nothing special: on start-up the first
//! pass sees fire times in the past and the store handles them per each
//! schedule's catch-up window and overlap policy, exactly as it handles a
//! fire this loop wakes up for a few milliseconds late. A buffered fire
//! (`BufferOne`) starts when the previous run closes; the store's
//! `wait_due` wakes for that too.
//!
//! The loop also samples the store's gauges (`record_gauges`) every
//! `GAUGE_INTERVAL`: it wakes at least every `MAX_IDLE` anyway.

use refrain_history::telemetry::GAUGE_INTERVAL;
use refrain_history::{HistoryStore, Timestamp};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{debug, warn};

/// Where the time service reads the time for schedules: the system clock
/// unless a test replaces it (see `WorkerBuilder::schedule_clock`).
pub(crate) type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Longest wait between looks at the store: a safety net against
/// wall-clock jumps (and against a schedule clock replaced by a test that
/// moved it without notifying).
const MAX_IDLE: Duration = Duration::from_secs(1);

pub(crate) async fn run_time_service(
    store: Arc<dyn HistoryStore>,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sampled: Option<Instant> = None;
    loop {
        if sampled.is_none_or(|at| at.elapsed() >= GAUGE_INTERVAL) {
            if let Err(e) = store.record_gauges(Timestamp::now()).await {
                warn!(error = %e, "cannot sample the store's gauges");
            }
            sampled = Some(Instant::now());
        }
        if let Err(e) = store.fire_due(Timestamp::now()).await {
            warn!(error = %e, "cannot fire due timers");
        }
        match store.fire_due_schedules(clock()).await {
            Ok(fires) => {
                for (schedule, run) in &fires.started {
                    debug!(schedule, workflow_id = %run.workflow_id, run = %run.run, "schedule fired");
                }
            }
            Err(e) => warn!(error = %e, "cannot fire due schedules"),
        }
        let waited = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break,
            waited = store.wait_due(MAX_IDLE) => waited,
        };
        if let Err(e) = waited {
            warn!(error = %e, "cannot wait for the next due time");
            tokio::time::sleep(MAX_IDLE).await;
        }
    }
}
