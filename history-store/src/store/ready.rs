//! In-process wake-ups: the queue of runs with work for an activation, and
//! the waiters of `wait_closed`. Neither is durable; the `ready` tree is,
//! and `Store::open` rebuilds the queue from it.

use super::durability::FlushTicket;
use crate::ids::RunId;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{oneshot, Notify};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something ever did, the
    // queue is still structurally sound, so keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// FIFO of ready runs, each queued at most once. Clones share the queue.
#[derive(Default, Clone)]
pub(super) struct ReadyQueue {
    inner: Arc<QueueInner>,
}

#[derive(Default)]
struct QueueInner {
    queue: Mutex<(VecDeque<RunId>, HashSet<RunId>)>,
    notify: Notify,
}

impl ReadyQueue {
    pub(super) fn push(&self, run: RunId) {
        let mut q = lock(&self.inner.queue);
        if q.1.insert(run) {
            q.0.push_back(run);
        }
        drop(q);
        // `notify_one` stores a permit when nobody waits, so a consumer that
        // found the queue empty and is about to await `notified()` still
        // wakes for a push that raced with it.
        self.inner.notify.notify_one();
    }

    /// How many runs are queued.
    pub(super) fn len(&self) -> usize {
        lock(&self.inner.queue).0.len()
    }

    pub(super) fn take(&self, max: usize) -> Vec<RunId> {
        let mut q = lock(&self.inner.queue);
        let n = max.min(q.0.len());
        let taken: Vec<RunId> = q.0.drain(..n).collect();
        for run in &taken {
            q.1.remove(run);
        }
        taken
    }

    pub(super) fn notify(&self) -> &Notify {
        &self.inner.notify
    }
}

/// Callers of `wait_closed`, by run. A wake-up carries a flush ticket
/// taken after the close was applied, so the caller waits only for the
/// flush that covers the close.
#[derive(Default)]
pub(super) struct CloseWaiters {
    waiters: Mutex<HashMap<RunId, Vec<oneshot::Sender<FlushTicket>>>>,
}

impl CloseWaiters {
    /// Registers interest in `run` closing. Senders of callers that gave up
    /// waiting are dropped here, so an abandoned wait does not accumulate.
    pub(super) fn register(&self, run: RunId) -> oneshot::Receiver<FlushTicket> {
        let (tx, rx) = oneshot::channel();
        let mut map = lock(&self.waiters);
        let list = map.entry(run).or_default();
        list.retain(|s| !s.is_closed());
        list.push(tx);
        rx
    }

    /// Wakes every waiter of `run` with a ticket for its close, taken
    /// (by `ticket`) only when someone is waiting. Dropping a sender wakes
    /// its receiver too, which callers treat as a wake-up without a ticket.
    pub(super) fn wake(&self, run: RunId, ticket: impl FnOnce() -> FlushTicket) {
        let Some(list) = lock(&self.waiters).remove(&run) else {
            return;
        };
        let ticket = ticket();
        for tx in list {
            let _ = tx.send(ticket);
        }
    }
}
