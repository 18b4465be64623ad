//! [`Clock`]: where the store and the worker read the time.
//!
//! Workflow time (`ctx.now()`), timer fire times, activity deadlines and
//! retries, human-task deadlines and schedule fires all come from one
//! clock, so a test can replace it with a virtual one and move time
//! forward by days in a moment (the `refrain-testkit` crate does). Every
//! part must read the same clock: a deadline computed on one clock and
//! checked on another fires early or never.
//!
//! An `Option` around the function rather than a bare
//! `Arc<dyn Fn>`: the system clock, the case every production process
//! runs, is a branch and a direct call with no indirection.

use crate::ids::Timestamp;
use std::fmt;
use std::sync::Arc;

/// A source of the current time: the system clock (the default), or a
/// function a test controls.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<dyn Fn() -> Timestamp + Send + Sync>>);

impl Clock {
    /// The system's wall clock ([`Timestamp::now`]).
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that reads `now`, for tests that move time themselves.
    pub fn new(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Clock {
        Clock(Some(Arc::new(now)))
    }

    /// The current time on this clock.
    #[inline]
    pub fn now(&self) -> Timestamp {
        match &self.0 {
            None => Timestamp::now(),
            Some(now) => now(),
        }
    }

    /// Whether this is the system clock.
    pub fn is_system(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_system() {
            "Clock::system"
        } else {
            "Clock::custom"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn a_custom_clock_reads_its_function_and_the_default_is_the_system_clock() {
        let t = Arc::new(AtomicU64::new(5));
        let clock = Clock::new({
            let t = t.clone();
            move || Timestamp(t.load(Ordering::SeqCst))
        });
        assert_eq!(clock.now(), Timestamp(5));
        t.store(9, Ordering::SeqCst);
        assert_eq!(clock.now(), Timestamp(9));
        assert!(!clock.is_system());
        let system = Clock::default();
        assert!(system.is_system());
        assert!(system.now() >= Timestamp(1_600_000_000_000));
    }
}
