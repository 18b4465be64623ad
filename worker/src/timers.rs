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
use refrain_history::{Clock, HistoryStore};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{debug, warn};

/// Longest wait between looks at the store: a safety net against
/// wall-clock jumps (and against a clock replaced by a test that moved it
/// without notifying).
const MAX_IDLE: Duration = Duration::from_secs(1);

/// The service's clocks: timers, deadlines and gauges go by `clock`,
/// schedules by `schedules` (the same clock unless a test set
/// `WorkerBuilder::schedule_clock`).
pub(crate) struct Clocks {
    pub clock: Clock,
    pub schedules: Clock,
}

pub(crate) async fn run_time_service(
    store: Arc<dyn HistoryStore>,
    clocks: Clocks,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sampled: Option<Instant> = None;
    loop {
        if sampled.is_none_or(|at| at.elapsed() >= GAUGE_INTERVAL) {
            if let Err(e) = store.record_gauges(clocks.clock.now()).await {
                warn!(error = %e, "cannot sample the store's gauges");
            }
            sampled = Some(Instant::now());
        }
        if let Err(e) = store.fire_due(clocks.clock.now()).await {
            warn!(error = %e, "cannot fire due timers");
        }
        match store.fire_due_schedules(clocks.schedules.now()).await {
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

/// The time service on its own, for a process that holds a store without
/// running its workflows: `refrain serve`, which serves the HTTP API while
/// the timers, activity deadlines and schedules of the store still come
/// due. A [`Worker`](crate::Worker) runs its own; do not run both on one
/// store.
pub struct TimeService {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TimeService {
    /// Starts the service on the current tokio runtime, with the system
    /// clock.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(store: Arc<dyn HistoryStore>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let clocks = Clocks {
            clock: Clock::system(),
            schedules: Clock::system(),
        };
        let task = tokio::spawn(run_time_service(store, clocks, stopped));
        TimeService { stop, task }
    }

    /// Stops it after the pass in progress, if any, and waits for that.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
