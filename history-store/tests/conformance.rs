//! The `HistoryStore` conformance suite on each backend of this crate (the
//! sled store, the in-memory store, and two stores sharing one in-memory
//! storage): one test per case (see
//! `refrain_history::conformance`), in a module per backend so that each
//! backend's cases are named apart (`sled::start_...`, `memory::start_...`).

use refrain_history::conformance::Fixture;
use refrain_history::{HistoryStore, MemoryStorage, Store, StoreConfig};
use std::sync::Arc;

/// Small, so the oversized-payload cases stay small.
const MAX_PAYLOAD: usize = 64 * 1024;

/// A fresh store in a temporary directory, with the default (fsync)
/// durability. sled admits one process per database, so the second handle
/// is a second handle on the same open store.
fn sled_store() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = StoreConfig {
        max_payload_bytes: MAX_PAYLOAD,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config).expect("open store");
    let other: Arc<dyn HistoryStore> = Arc::new(store.clone());
    Fixture::new(Arc::new(store), other, MAX_PAYLOAD, dir)
}

/// A fresh in-memory store with the same limits and durability setting.
fn memory_store() -> Fixture {
    let store = Store::in_memory(StoreConfig {
        max_payload_bytes: MAX_PAYLOAD,
        ..StoreConfig::default()
    });
    let other: Arc<dyn HistoryStore> = Arc::new(store.clone());
    Fixture::new(Arc::new(store), other, MAX_PAYLOAD, ())
}

/// A store over a shared in-memory storage, which another store could
/// open beside it: it takes the paths of a store among several (leased
/// activations, owned attempts, run-number blocks, discovery), and must
/// keep the same contract. (Two stores together are `tests/suite/fleet`
/// in the workspace's tests: queries, for one, reach only the workers of
/// the store they are asked through, so the second handle here is the
/// same store.)
fn shared_memory_store() -> Fixture {
    let storage = MemoryStorage::shared();
    let store = Store::open_in_memory(
        &storage,
        StoreConfig {
            max_payload_bytes: MAX_PAYLOAD,
            ..StoreConfig::default()
        },
    )
    .expect("open store");
    let other: Arc<dyn HistoryStore> = Arc::new(store.clone());
    Fixture::new(Arc::new(store), other, MAX_PAYLOAD, ())
}

mod memory {
    refrain_history::history_store_conformance!(super::memory_store);
}

mod shared_memory {
    refrain_history::history_store_conformance!(super::shared_memory_store);
}

mod sled {
    refrain_history::history_store_conformance!(super::sled_store);
}
