//! The store's side of every transaction: the set of trees, opened once,
//! the run-number counter, and the mapping of a transaction's outcome back
//! to our error. The record helpers the transitions share live in
//! `transitions::tables` and are re-exported here for the rest of the
//! store.

use super::engine::{Engine, Table, TxError};
use super::transitions::tables::RunNumbers;
pub(super) use super::transitions::tables::{
    check_payload, decode, decode_u64, missing, TxResult, META_NEXT_RUN,
};
use crate::error::StoreError;
use crate::ids::RunId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Every tree of the store, opened once, the engine that writes to them
/// atomically, and the run-number counter that transactions over them
/// draw from (shared by every copy).
#[derive(Clone)]
pub(super) struct Trees {
    pub(super) meta: Table,
    pub(super) workflow_ids: Table,
    pub(super) runs: Table,
    pub(super) history: Table,
    pub(super) inbox: Table,
    pub(super) ready: Table,
    pub(super) activity_tasks: Table,
    pub(super) activity_ready: Table,
    pub(super) activity_deadlines: Table,
    pub(super) timers: Table,
    pub(super) human_tasks: Table,
    pub(super) run_human_tasks: Table,
    pub(super) updates: Table,
    pub(super) run_ids: Arc<RunIds>,
    pub(super) engine: Engine,
}

impl Trees {
    /// The trees of `engine`, which has completed whatever transaction a
    /// crash interrupted (see `engine::disk`).
    pub(super) fn open(engine: &Engine) -> Result<Trees, StoreError> {
        let meta = engine.open_table("meta")?;
        Ok(Trees {
            run_ids: Arc::new(RunIds::load(engine, &meta)?),
            meta,
            workflow_ids: engine.open_table("workflow_ids")?,
            runs: engine.open_table("runs")?,
            history: engine.open_table("history")?,
            inbox: engine.open_table("inbox")?,
            ready: engine.open_table("ready")?,
            activity_tasks: engine.open_table("activity_tasks")?,
            activity_ready: engine.open_table("activity_ready")?,
            activity_deadlines: engine.open_table("activity_deadlines")?,
            timers: engine.open_table("timers")?,
            human_tasks: engine.open_table("human_tasks")?,
            run_human_tasks: engine.open_table("run_human_tasks")?,
            updates: engine.open_table("updates")?,
            engine: engine.clone(),
        })
    }
}

/// Maps the outcome of `Engine::transaction` back to our error.
pub(super) fn finish<A>(r: Result<A, TxError<StoreError>>) -> Result<A, StoreError> {
    r.map_err(|e| match e {
        TxError::Abort(e) => e,
        TxError::Storage(e) => e.into(),
    })
}

/// `meta` key below which every run number may have been handed out.
const META_RUN_CEILING: &str = "run_ceiling";

/// The run-number counter. Numbers are drawn from memory (seeded from
/// `meta` at open) rather than read from `meta` inside each transaction,
/// so that a number can be reserved *before* the transaction that starts
/// the run: an eager start runs the run's first activation, which may ask
/// for its run id, and then commits start and activation together. `meta`
/// keeps the high-water mark, written by every transaction that takes a
/// number. A number drawn by a transaction that is then refused or re-run
/// is skipped; gaps are harmless, numbers only need to be unique.
///
/// Unique across crashes too: a number is part of every idempotency key
/// of its run (`workflow-id/run/cmd`), so a number handed out by a process
/// that died before its start was durable must not come round again. The
/// counter therefore works below a ceiling recorded in `meta` and flushed
/// *before* any number under it is handed out, in blocks of
/// [`RUN_BLOCK`]; an open continues at the ceiling, skipping whatever the
/// last process may have drawn. The flush is the engine's (sled's survives
/// a killed process, not a power cut; memory's survives a reopen of its
/// storage); across a power cut a number can come round
/// again only if no activity attempt of its run ever started, since
/// attempts wait for the group commit's fsync.
pub(super) struct RunIds {
    next: AtomicU64,
    /// Every number below this may have been handed out (durably recorded).
    ceiling: AtomicU64,
    /// Serialises raising the ceiling.
    raise: Mutex<()>,
    engine: Engine,
    meta: Table,
}

/// How many run numbers one durable raise of the ceiling covers: one sled
/// flush per this many starts, and at most this many numbers skipped at
/// each open.
pub(super) const RUN_BLOCK: u64 = 1024;

impl RunIds {
    /// The counter, continuing after every number `meta` records as used
    /// or as possibly handed out (the ceiling).
    pub(super) fn load(engine: &Engine, meta: &Table) -> Result<RunIds, StoreError> {
        let stored = |key: &str| -> Result<Option<u64>, StoreError> {
            meta.get(key)?
                .map(|bytes| decode_u64(&bytes, "meta", None))
                .transpose()
        };
        let next = stored(META_NEXT_RUN)?.unwrap_or(1);
        let ceiling = stored(META_RUN_CEILING)?.unwrap_or(0);
        Ok(RunIds {
            next: AtomicU64::new(next.max(ceiling).max(1)),
            ceiling: AtomicU64::new(ceiling),
            raise: Mutex::new(()),
            engine: engine.clone(),
            meta: meta.clone(),
        })
    }

    /// A number no other run has or will be given, even after a crash.
    ///
    /// # Errors
    /// `Storage` if the ceiling could not be raised and flushed.
    pub(super) fn reserve(&self) -> Result<RunId, StoreError> {
        let run = self.next.fetch_add(1, Ordering::Relaxed);
        if run >= self.ceiling.load(Ordering::Acquire) {
            self.raise_past(run)?;
        }
        Ok(RunId(run))
    }

    /// Records (durably) a ceiling above `run`. A plain write to its own
    /// key, outside the journal: it only ever grows and nothing else
    /// depends on it atomically.
    fn raise_past(&self, run: u64) -> Result<(), StoreError> {
        let _one = self.raise.lock().unwrap_or_else(|p| p.into_inner());
        if run < self.ceiling.load(Ordering::Acquire) {
            return Ok(());
        }
        let ceiling = run.saturating_add(RUN_BLOCK);
        self.meta
            .insert(META_RUN_CEILING, &ceiling.to_be_bytes()[..])?;
        self.engine.flush()?;
        self.ceiling.store(ceiling, Ordering::Release);
        Ok(())
    }
}

impl RunNumbers for RunIds {
    fn reserve(&self) -> Result<RunId, StoreError> {
        RunIds::reserve(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::engine::memory::MemoryStorage;
    use crate::store::transitions::tables::record_run_number;
    use std::time::Duration;

    fn take(trees: &Trees, run: RunId) {
        finish(
            trees
                .engine
                .transaction([&trees.meta], |[meta]| record_run_number(meta, run)),
        )
        .unwrap();
    }

    /// Draws numbers in one "process", commits two of them, and checks
    /// that the next process continues past every number drawn.
    fn numbers_survive_a_restart(open: impl Fn() -> Engine) {
        let drawn: Vec<RunId> = {
            let trees = Trees::open(&open()).unwrap();
            // Across a block boundary, so the ceiling is raised while
            // running too, not only at the first draw.
            let drawn: Vec<RunId> = (0..RUN_BLOCK + 3)
                .map(|_| trees.run_ids.reserve().unwrap())
                .collect();
            assert_eq!(drawn[0], RunId(1));
            // Only two of them ever reach a committed transaction (out of
            // order); the process "dies" with the others unrecorded.
            take(&trees, drawn[1]);
            take(&trees, drawn[0]);
            drawn
        };
        let trees = Trees::open(&open()).unwrap();
        let next = trees.run_ids.reserve().unwrap();
        let highest = drawn.iter().max().copied().unwrap();
        assert!(
            next > highest,
            "{next} was drawn again after a restart (highest drawn before: {highest})"
        );
        // Both engines continue at the same ceiling: the same operations
        // get the same run numbers on either.
        assert_eq!(next, RunId(2 * RUN_BLOCK + 1));
    }

    #[test]
    fn run_numbers_drawn_by_an_earlier_process_never_come_round_again() {
        let dir = tempfile::tempdir().unwrap();
        numbers_survive_a_restart(|| {
            let db = super::super::open_db(dir.path(), &Default::default()).unwrap();
            Engine::disk(&db).unwrap()
        });
    }

    #[test]
    fn run_numbers_drawn_before_a_memory_restart_never_come_round_again() {
        let storage = MemoryStorage::new();
        numbers_survive_a_restart(|| Engine::memory(&storage, Duration::from_secs(5)).unwrap());
    }
}
