//! The virtual clock: time that moves only when the test environment
//! moves it.

use refrain_history::{Clock, Timestamp};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A clock shared by the environment's store and worker. It never goes
/// back: [`VirtualClock::advance_to`] an earlier time does nothing.
#[derive(Clone, Debug)]
pub struct VirtualClock {
    millis: Arc<AtomicU64>,
}

impl VirtualClock {
    /// A clock that reads `start` until it is moved.
    pub fn starting_at(start: Timestamp) -> VirtualClock {
        VirtualClock {
            millis: Arc::new(AtomicU64::new(start.0)),
        }
    }

    /// The time on this clock.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }

    /// The time on this clock as a `SystemTime` (what `ctx.now()` gives
    /// a workflow).
    pub fn system_time(&self) -> SystemTime {
        self.now().to_system_time()
    }

    /// Moves the clock to `t` if that is later than its time.
    pub fn advance_to(&self, t: Timestamp) {
        self.millis.fetch_max(t.0, Ordering::SeqCst);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.advance_to(self.now().saturating_add(d));
    }

    /// This clock as the engine's [`Clock`].
    pub fn as_clock(&self) -> Clock {
        let millis = self.millis.clone();
        Clock::new(move || Timestamp(millis.load(Ordering::SeqCst)))
    }
}
