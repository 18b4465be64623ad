//! A store without a directory: every transition, the batching and group
//! commit, the ready queue, notifications, timers, schedules and the
//! open-time recovery, over the in-memory engine (see `engine::memory`).
//! For tests that need no files, and for comparing the engines.

use super::api::StoreConfig;
use super::durability::Flusher;
pub use super::engine::memory::MemoryStorage;
use super::engine::Engine;
use super::tx::Trees;
use super::{bump_epoch, schedules, Store};
use crate::error::StoreError;
use std::path::PathBuf;

impl Store {
    /// A new, empty store held in memory: the same transitions as a store
    /// opened with [`Store::open`], with nothing written to disk. Its
    /// [`DurabilityMode`](crate::DurabilityMode) only decides whether
    /// [`Store::durable`] waits for a (no-op) group flush; nothing survives
    /// the process. [`Store::path`] is empty. To restart it, keep its
    /// [`Store::memory_storage`], drop every handle, and
    /// [`Store::open_in_memory`] again.
    ///
    /// # Panics
    /// If the operating system refuses to start the store's committer or
    /// flusher thread.
    pub fn in_memory(config: StoreConfig) -> Store {
        match Store::open_in_memory(&MemoryStorage::new(), config) {
            Ok(store) => store,
            Err(e) => panic!("cannot start an in-memory store: {e}"),
        }
    }

    /// Opens (or reopens) a store over `storage`, as [`Store::open`] opens
    /// a directory: bumps the epoch (voiding every workflow-task lease of
    /// an earlier store over it), fails every activity attempt still
    /// running (its retry is due at once) and queues every ready run.
    /// Reopening after the last handle of the previous store was dropped
    /// is how a test restarts an in-memory store.
    ///
    /// # Errors
    /// `StorageLocked` (with an empty path) if another store over
    /// `storage` is still open after `lock_timeout`; `Sync` if the store's
    /// threads cannot be started; `Corrupt` if the meta counters cannot be
    /// read.
    pub fn open_in_memory(
        storage: &MemoryStorage,
        config: StoreConfig,
    ) -> Result<Store, StoreError> {
        let engine = Engine::memory(storage, config.lock_timeout)?;
        let trees = Trees::open(&engine)?;
        let schedule_trees = schedules::ScheduleTrees::open(&engine)?;
        let epoch = bump_epoch(&trees)?;
        let flusher = Flusher::in_memory(config.durability)?;
        Store::start(
            flusher,
            (PathBuf::new(), config, epoch),
            (trees, schedule_trees),
        )
    }

    /// The storage of a store opened in memory (to open it again after a
    /// restart); `None` for a store in a directory.
    pub fn memory_storage(&self) -> Option<MemoryStorage> {
        match &self.inner.trees.engine {
            Engine::Memory(e) => Some(e.storage().clone()),
            Engine::Disk(_) => None,
        }
    }
}
