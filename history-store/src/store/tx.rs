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
/// counter therefore hands out numbers from blocks of [`RUN_BLOCK`], each
/// reserved by raising a ceiling recorded in `meta` and flushed *before*
/// any number in it is handed out; an open continues at the ceiling,
/// skipping whatever the last process may have drawn. The flush is the
/// engine's (sled's survives a killed process, not a power cut; memory's
/// survives a reopen of its storage); across a power cut a number can come
/// round again only if no activity attempt of its run ever started, since
/// attempts wait for the group commit's fsync.
///
/// Unique across stores sharing one storage as well: a block is reserved
/// by one atomic update of the ceiling ([`Engine::update_key`]), which
/// starts it at the stored ceiling when another store has raised it past
/// this one's numbers, so two stores never draw from overlapping blocks.
/// With one store the stored ceiling is always this counter's own, and
/// the blocks are the ones a single process always took.
pub(super) struct RunIds {
    /// The block numbers are drawn from; a lock rather than atomics, since
    /// a new block may start past the numbers other threads would draw.
    block: Mutex<Block>,
    engine: Engine,
    meta: Table,
}

/// Numbers `next..end` are reserved for this store and not yet drawn.
struct Block {
    next: u64,
    end: u64,
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
        // Empty: the first draw reserves a block from the ceiling on.
        let next = next.max(ceiling).max(1);
        Ok(RunIds {
            block: Mutex::new(Block { next, end: next }),
            engine: engine.clone(),
            meta: meta.clone(),
        })
    }

    /// A number no other run has or will be given, even after a crash or
    /// by another store over the same storage.
    ///
    /// # Errors
    /// `Storage` if a block could not be reserved and flushed; `Corrupt`
    /// if the stored ceiling cannot be read.
    pub(super) fn reserve(&self) -> Result<RunId, StoreError> {
        let mut block = self.block.lock().unwrap_or_else(|p| p.into_inner());
        if block.next >= block.end {
            let at_least = block.next;
            let start =
                self.engine
                    .update_key(&self.meta, META_RUN_CEILING.as_bytes(), |stored| {
                        let stored = match stored {
                            Some(bytes) => decode_u64(bytes, "meta", None)?,
                            None => 0,
                        };
                        let start = stored.max(at_least);
                        let ceiling = start.saturating_add(RUN_BLOCK);
                        Ok((ceiling.to_be_bytes().to_vec(), start))
                    })?;
            *block = Block {
                next: start,
                end: start.saturating_add(RUN_BLOCK),
            };
        }
        let run = block.next;
        block.next += 1;
        Ok(RunId(run))
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
    fn stores_sharing_a_storage_never_draw_the_same_run_number() {
        let storage = MemoryStorage::shared();
        let open =
            || Trees::open(&Engine::memory(&storage, Duration::from_secs(5)).unwrap()).unwrap();
        let (a, b) = (open(), open());
        let mut seen = std::collections::HashSet::new();
        // Interleaved across several blocks, so each store reserves a
        // block after the other has raised the ceiling past its own.
        for i in 0..3 * RUN_BLOCK {
            let trees = if i % 3 == 0 { &a } else { &b };
            let run = trees.run_ids.reserve().unwrap();
            assert!(seen.insert(run), "{run} drawn twice");
        }
    }

    #[test]
    fn run_numbers_drawn_before_a_memory_restart_never_come_round_again() {
        let storage = MemoryStorage::new();
        numbers_survive_a_restart(|| Engine::memory(&storage, Duration::from_secs(5)).unwrap());
    }
}
