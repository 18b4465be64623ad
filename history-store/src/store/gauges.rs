//! The store's gauges (`telemetry`): sampled by a scan when asked, rather
//! than kept by every transition, so that no hot transaction pays for them.

use super::transitions::human_tasks::HumanTaskRecord;
use super::tx::decode;
use super::Store;
use crate::error::StoreError;
use crate::ids::Timestamp;
use crate::telemetry::{self, gauge};

impl Store {
    /// Samples the gauges of [`telemetry`] into the
    /// installed recorder: runs queued for an activation, pending timers,
    /// open human tasks and those past their deadline at `now`. A walk of
    /// the timer index and the human tasks: call it every few seconds,
    /// not per operation. A human task whose record cannot be decoded
    /// counts as open and not overdue.
    ///
    /// # Errors
    /// `Storage`.
    pub fn record_gauges(&self, now: Timestamp) -> Result<(), StoreError> {
        let inner = &self.inner;
        let ready = inner.ready_queue.len();
        let mut timers = 0u64;
        for key in inner.trees.timers.iter().keys() {
            key?;
            timers += 1;
        }
        let (mut open, mut overdue) = (0u64, 0u64);
        for value in inner.trees.human_tasks.iter().values() {
            let value = value?;
            open += 1;
            if let Ok(task) = decode::<HumanTaskRecord>(&value, "human task", None) {
                if task.deadline.is_some_and(|d| d <= now) {
                    overdue += 1;
                }
            }
        }
        gauge(telemetry::READY_QUEUE_DEPTH).set(ready as f64);
        gauge(telemetry::PENDING_TIMERS).set(timers as f64);
        gauge(telemetry::HUMAN_TASKS_OPEN).set(open as f64);
        gauge(telemetry::HUMAN_TASKS_OVERDUE).set(overdue as f64);
        Ok(())
    }
}
