//! The seeded model test on PostgreSQL: the random operation sequences
//! the sled store is checked with, applied to a store on PostgreSQL and to
//! the in-memory store side by side (answers, tables and invariants must
//! agree after every step, restarts included). 2,000 operations by
//! default; `REFRAIN_MODEL_OPS` and `REFRAIN_MODEL_SEED` as for sled.

use refrain_history::store::model::{external_and_memory_stores_agree, ExternalOpener};
use refrain_history::ExternalEngine;
use refrain_postgres::PostgresEngine;
use std::sync::Arc;

#[test]
fn postgres_and_memory_stores_agree_on_random_operations() {
    let test = "postgres_and_memory_stores_agree_on_random_operations";
    let Some(first) = refrain_postgres::testing::fresh(test) else {
        return;
    };
    let first = std::sync::Mutex::new(Some(first));
    external_and_memory_stores_agree(2_000, &|| -> ExternalOpener {
        // A fresh schema per seed (the first one already checked above).
        let db = first
            .lock()
            .unwrap()
            .take()
            .or_else(|| refrain_postgres::testing::fresh(test))
            .expect("the server found for the first seed");
        Box::new(move || {
            PostgresEngine::connect(&db.url, &db.options()).expect("connect")
                as Arc<dyn ExternalEngine>
        })
    });
}
