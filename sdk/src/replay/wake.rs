//! The waker handed to workflow code. Wakes while Refrain is applying
//! events or polling are expected (SDK futures, channels between branches
//! of the same workflow). A wake at any other time came from outside the
//! workflow (another thread, a tokio timer) and cannot be replayed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

#[derive(Default)]
pub(crate) struct WakeFlag {
    active: AtomicBool,
    woken: AtomicBool,
    foreign: AtomicBool,
}

impl WakeFlag {
    pub fn waker(self: &Arc<Self>) -> Waker {
        Waker::from(self.clone())
    }

    /// Marks the start of a window in which wakes are expected.
    pub fn enter(&self) {
        self.woken.store(false, Ordering::SeqCst);
        self.active.store(true, Ordering::SeqCst);
    }

    /// Ends the window; returns whether anything woke during it.
    pub fn leave(&self) -> bool {
        self.active.store(false, Ordering::SeqCst);
        self.woken.swap(false, Ordering::SeqCst)
    }

    /// Whether a wake arrived outside any window since the last call.
    pub fn take_foreign(&self) -> bool {
        self.foreign.swap(false, Ordering::SeqCst)
    }
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.active.load(Ordering::SeqCst) {
            self.woken.store(true, Ordering::SeqCst);
        } else {
            self.foreign.store(true, Ordering::SeqCst);
        }
    }
}
