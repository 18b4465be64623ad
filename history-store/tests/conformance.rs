//! The sled `Store` through the `HistoryStore` conformance suite: one test
//! per case (see `refrain_history::conformance`), in a module per backend
//! so that each backend's cases are named apart (`sled::start_...`).

use refrain_history::conformance::Fixture;
use refrain_history::{HistoryStore, Store, StoreConfig};
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

mod sled {
    refrain_history::history_store_conformance!(super::sled_store);
}
