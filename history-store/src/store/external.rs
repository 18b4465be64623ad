//! A store over an engine kept outside this crate (PostgreSQL, in
//! `refrain-postgres`): every transition, the batching, the ready queue,
//! notifications, timers, schedules and the open-time recovery, as over
//! sled or memory (see `engine::external`).
//!
//! The engine's commit is its flush: a transaction returns once it is
//! durable, so the store's flusher has nothing to write and
//! [`Store::durable`] holds by the time an operation returns.

use super::api::StoreConfig;
use super::durability::Flusher;
use super::engine::external::ExternalEngine;
use super::engine::Engine;
use super::transitions::leases::Owner;
use super::tx::Trees;
use super::{bump_epoch, schedules, Store};
use crate::error::StoreError;
use crate::ids::Timestamp;
use std::path::PathBuf;
use std::sync::Arc;

impl Store {
    /// Opens (or reopens) a store over `engine`, as [`Store::open`] opens
    /// a directory: bumps the epoch (voiding every activation lease of an
    /// earlier store over it), fails every activity attempt still running
    /// (its retry is due at once) and queues every ready run. One store
    /// at a time may be open over the engine's storage (as one process at
    /// a time may open a sled directory); the engine does not check it.
    ///
    /// [`Store::path`] is empty. The engine's commits are durable when
    /// they return, so [`DurabilityMode`](crate::DurabilityMode) only
    /// decides whether [`Store::durable`] waits for a (no-op) group flush.
    ///
    /// # Errors
    /// `Backend` if the engine fails; `Sync` if the store's threads cannot
    /// be started; `Corrupt` if the meta counters cannot be read.
    pub fn open_external(
        engine: Arc<dyn ExternalEngine>,
        config: StoreConfig,
    ) -> Result<Store, StoreError> {
        Store::open_external_at(engine, config, Timestamp::now())
    }

    /// [`Store::open_external`] with `now` as the time the open fails
    /// orphaned attempts at (a test's clock).
    pub(super) fn open_external_at(
        engine: Arc<dyn ExternalEngine>,
        config: StoreConfig,
        now: Timestamp,
    ) -> Result<Store, StoreError> {
        let engine = Engine::external(engine);
        let trees = Trees::open(&engine)?;
        let schedule_trees = schedules::ScheduleTrees::open(&engine)?;
        // One store per external storage for now: the owner of it alone.
        let owner = Owner {
            id: bump_epoch(&trees)?,
            shared: false,
        };
        let flusher = Flusher::in_memory(config.durability)?;
        Store::start(
            flusher,
            (PathBuf::new(), config, owner),
            (trees, schedule_trees),
            now,
        )
    }
}
