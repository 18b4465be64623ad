//! Transitions run directly, without a store: fresh in-memory tables, and
//! one transaction over all of them at a time. No directory, no thread, no
//! batcher; a transition's outcome is what the test inspects.

use super::tables::{RunNumbers, Tx, TxResult, TX_TABLES};
use crate::error::StoreError;
use crate::ids::RunId;
use crate::store::engine::memory::MemoryStorage;
use crate::store::engine::{Engine, Table, TxError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The run tables, by name, in the order [`Tables::run`] views them.
const NAMES: [&str; TX_TABLES] = [
    "meta",
    "workflow_ids",
    "runs",
    "inbox",
    "ready",
    "activity_tasks",
    "activity_ready",
    "activity_deadlines",
    "history",
    "timers",
    "human_tasks",
    "run_human_tasks",
    "updates",
];

/// Run numbers from a plain counter (nothing to survive here).
#[derive(Default)]
struct Counter(AtomicU64);

impl RunNumbers for Counter {
    fn reserve(&self) -> Result<RunId, StoreError> {
        Ok(RunId(self.0.fetch_add(1, Ordering::Relaxed) + 1))
    }
}

/// Fresh, empty tables in memory.
pub(super) struct Tables {
    engine: Engine,
    tables: [Table; TX_TABLES],
    run_ids: Counter,
}

impl Tables {
    pub(super) fn new() -> Tables {
        let engine = Engine::memory(&MemoryStorage::new(), Duration::ZERO).expect("memory engine");
        let tables = NAMES.map(|name| engine.open_table(name).expect("memory table"));
        Tables {
            engine,
            tables,
            run_ids: Counter::default(),
        }
    }

    /// Runs `f` as one transaction over every table: its writes land if it
    /// returns `Ok`, none of them if it aborts.
    pub(super) fn run<A>(&self, f: impl Fn(&Tx<'_>) -> TxResult<A>) -> Result<A, StoreError> {
        let t = &self.tables;
        let views = [
            &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7], &t[8], &t[9], &t[10], &t[11],
            &t[12],
        ];
        let done = self
            .engine
            .transaction(views, |views| f(&Tx::over(views, &self.run_ids)));
        done.map_err(|e| match e {
            TxError::Abort(e) => e,
            TxError::Storage(e) => e.into(),
        })
    }

    /// Every key of table `name`, in order.
    pub(super) fn keys(&self, name: &str) -> Vec<Vec<u8>> {
        self.contents(name).into_keys().collect()
    }

    /// Every entry of table `name`.
    pub(super) fn contents(&self, name: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let i = NAMES.iter().position(|n| *n == name).expect("a run table");
        self.tables[i]
            .iter()
            .map(|entry| {
                let (k, v) = entry.expect("memory read");
                (k.to_vec(), v.to_vec())
            })
            .collect()
    }

    /// Every entry of every table.
    pub(super) fn snapshot(&self) -> Vec<BTreeMap<Vec<u8>, Vec<u8>>> {
        NAMES.iter().map(|name| self.contents(name)).collect()
    }
}
