//! What a stall watchdog reads: whether commits and flushes are moving.
//! Counters and clocks only; reading them takes the same short locks the
//! committer and the flusher take, and nothing else.

pub use super::batch::CommitProgress;
pub use super::durability::FlushProgress;
use super::Store;

/// A snapshot of the store's commit and flush progress (see
/// [`Store::progress`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreProgress {
    /// The group committer: transactions of activations, starts,
    /// completions and claims.
    pub commits: CommitProgress,
    /// The flusher: what makes acknowledgements durable.
    pub flushes: FlushProgress,
}

impl Store {
    /// How far commits and flushes have got, and how long the one in
    /// progress (or the oldest caller waiting for one) has taken. A
    /// watchdog compares snapshots: counters that stop moving while
    /// something waits mean the engine has stalled.
    pub fn progress(&self) -> StoreProgress {
        StoreProgress {
            commits: self.inner.batcher.progress(),
            flushes: self.inner.flusher.progress(),
        }
    }
}
