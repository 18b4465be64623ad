//! The `HistoryStore` conformance suite on PostgreSQL: one test per case
//! (see `refrain_history::conformance`), each in a fresh schema. Skipped,
//! and said so, where there is no PostgreSQL (see
//! `refrain_postgres::testing`); never in CI.

use refrain_history::conformance::Fixture;
use refrain_history::{HistoryStore, StoreConfig};
use std::sync::Arc;

/// Small, so the oversized-payload cases stay small.
const MAX_PAYLOAD: usize = 64 * 1024;

/// A fresh store in a fresh schema, with the default durability. One
/// process per schema, so the second handle is a second handle of the
/// same open store.
fn postgres_store(test: &str) -> Option<Fixture> {
    let db = refrain_postgres::testing::fresh(test)?;
    let config = StoreConfig {
        max_payload_bytes: MAX_PAYLOAD,
        ..StoreConfig::default()
    };
    let store = refrain_postgres::open_with(&db.url, &db.options(), config).expect("open store");
    let other: Arc<dyn HistoryStore> = Arc::new(store.clone());
    Some(Fixture::new(Arc::new(store), other, MAX_PAYLOAD, ()))
}

mod postgres {
    refrain_history::history_store_conformance!(skippable super::postgres_store);
}
