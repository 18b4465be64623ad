//! Fires durable timers and expires activity attempts when their time
//! comes. The store holds both in indexes keyed by time, so this loop only
//! ever looks at the earliest key.

use refrain_history::{Store, Timestamp};
use std::time::Duration;
use tokio::sync::watch;
use tracing::warn;

/// Longest sleep between looks at the store, as a safety net against
/// wall-clock jumps.
const MAX_IDLE: Duration = Duration::from_secs(1);

pub(crate) async fn run_timer_service(store: Store, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = Timestamp::now();
        if let Err(e) = store.fire_due(now) {
            warn!(error = %e, "cannot fire due timers");
        }
        let idle = match store.next_deadline() {
            Ok(Some(at)) => at.saturating_since(now).min(MAX_IDLE),
            Ok(None) => MAX_IDLE,
            Err(e) => {
                warn!(error = %e, "cannot read the next deadline");
                MAX_IDLE
            }
        };
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break,
            _ = store.timer_notify().notified() => {}
            _ = tokio::time::sleep(idle.max(Duration::from_millis(1))) => {}
        }
    }
}
