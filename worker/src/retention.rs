//! The retention service: every so often, purges the closed runs whose
//! retention passed ([`WorkerBuilder::retention`]), batch by batch
//! through [`HistoryStore::purge_closed`], so that a store under steady
//! load stays bounded without an operator. The same purge on demand is
//! `Client::purge`, `refrain purge` and `POST /api/v1/purge`.
//!
//! A purge of many runs is many small transactions (see the store's
//! `retention`), so the service never holds other writers up for long,
//! and it stops between two batches when the worker shuts down. It runs
//! apart from the time service: a long purge delays no timer.
//!
//! [`WorkerBuilder::retention`]: crate::WorkerBuilder::retention

use refrain_history::Clock;
use refrain_history::{HistoryStore, PurgeRequest, RetentionPolicy};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// What the service purges, and how often it looks.
#[derive(Clone, Debug)]
pub(crate) struct RetentionSettings {
    pub(crate) policy: RetentionPolicy,
    pub(crate) every: Duration,
}

pub(crate) async fn run_retention_service(
    store: Arc<dyn HistoryStore>,
    settings: RetentionSettings,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut req = PurgeRequest::new(settings.policy.clone(), clock.now());
        let mut purged = 0usize;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match store.purge_closed(req.clone()).await {
                Ok(batch) => {
                    purged += batch.runs.len();
                    match batch.next {
                        Some(next) => req.after = Some(next),
                        None => break,
                    }
                }
                Err(e) => {
                    warn!(error = %e, "cannot purge closed runs; trying again later");
                    break;
                }
            }
        }
        if purged > 0 {
            info!(runs = purged, "purged closed runs past their retention");
        }
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => return,
            () = tokio::time::sleep(settings.every) => {}
        }
    }
}
