//! Plumbing shared by every operation: the set of trees, the mapping of
//! stored bytes to records (and of decode failures to `StoreError::Corrupt`),
//! and the few writes that must always happen together inside a
//! transaction (a run record and its `ready` mirror; an inbox append).

use super::journal::{Journal, TxTree};
use super::META_NEXT_RUN;
use crate::codec::{self, CodecError, MAX_VALUE_BYTES};
use crate::error::StoreError;
use crate::event::{Event, Payload};
use crate::ids::RunId;
use crate::keys;
use crate::store::records::RunRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
};
use sled::{Db, Tree};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Result of a transaction closure: aborts carry our own error.
pub(super) type TxResult<A> = ConflictableTransactionResult<A, StoreError>;

/// Every tree of the store, opened once, the journal that writes to them
/// atomically, and the run-number counter that transactions over them
/// draw from (shared by every copy).
#[derive(Clone)]
pub(super) struct Trees {
    pub(super) meta: Tree,
    pub(super) workflow_ids: Tree,
    pub(super) runs: Tree,
    pub(super) history: Tree,
    pub(super) inbox: Tree,
    pub(super) ready: Tree,
    pub(super) activity_tasks: Tree,
    pub(super) activity_ready: Tree,
    pub(super) activity_deadlines: Tree,
    pub(super) timers: Tree,
    pub(super) human_tasks: Tree,
    pub(super) run_human_tasks: Tree,
    pub(super) updates: Tree,
    pub(super) run_ids: Arc<RunIds>,
    pub(super) journal: Arc<Journal>,
}

impl Trees {
    pub(super) fn open(db: &Db) -> Result<Trees, StoreError> {
        // First: completes a transaction a crash interrupted, before
        // anything is read.
        let journal = Arc::new(Journal::open(db)?);
        let meta = db.open_tree("meta")?;
        Ok(Trees {
            journal,
            run_ids: Arc::new(RunIds::load(&meta)?),
            meta,
            workflow_ids: db.open_tree("workflow_ids")?,
            runs: db.open_tree("runs")?,
            history: db.open_tree("history")?,
            inbox: db.open_tree("inbox")?,
            ready: db.open_tree("ready")?,
            activity_tasks: db.open_tree("activity_tasks")?,
            activity_ready: db.open_tree("activity_ready")?,
            activity_deadlines: db.open_tree("activity_deadlines")?,
            timers: db.open_tree("timers")?,
            human_tasks: db.open_tree("human_tasks")?,
            run_human_tasks: db.open_tree("run_human_tasks")?,
            updates: db.open_tree("updates")?,
        })
    }
}

/// Maps the outcome of `Transactional::transaction` back to our error.
pub(super) fn finish<A>(r: Result<A, TransactionError<StoreError>>) -> Result<A, StoreError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Storage(e),
    })
}

/// Aborts the surrounding transaction with `e`; nothing it staged is
/// written.
pub(super) fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

/// Decodes a stored value, naming the record on failure.
pub(super) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    run: Option<RunId>,
) -> Result<T, StoreError> {
    codec::decode(bytes).map_err(|source| StoreError::Corrupt { what, run, source })
}

/// Encodes a value for storage. Our own types always encode; the only
/// realistic failure is a value past the codec's hard limit, which is
/// reported like an oversized payload.
pub(super) fn encode<T: Serialize>(
    value: &T,
    what: &'static str,
    run: Option<RunId>,
) -> Result<Vec<u8>, StoreError> {
    codec::encode(value).map_err(|source| match source {
        CodecError::TooLarge { declared, limit } => StoreError::PayloadTooLarge {
            size: usize::try_from(declared).unwrap_or(usize::MAX),
            limit,
        },
        source => StoreError::Corrupt { what, run, source },
    })
}

/// Reads a raw big-endian u64 value (counters, run numbers, tokens).
pub(super) fn decode_u64(
    bytes: &[u8],
    what: &'static str,
    run: Option<RunId>,
) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        what,
        run,
        source: if bytes.len() < 8 {
            CodecError::Truncated {
                needed: 8,
                got: bytes.len(),
            }
        } else {
            CodecError::TrailingBytes {
                count: bytes.len() - 8,
            }
        },
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// The error for an index entry or inbox slot that should exist and does
/// not: reported as a zero-length (truncated) value of that record.
pub(super) fn missing(what: &'static str, run: Option<RunId>) -> StoreError {
    StoreError::Corrupt {
        what,
        run,
        source: CodecError::Truncated {
            needed: codec::HEADER_LEN,
            got: 0,
        },
    }
}

/// Rejects a payload over the configured limit (or the codec's hard one).
pub(super) fn check_payload(size: usize, limit: usize) -> Result<(), StoreError> {
    let limit = limit.min(MAX_VALUE_BYTES);
    if size > limit {
        return Err(StoreError::PayloadTooLarge { size, limit });
    }
    Ok(())
}

/// Checks every payload an event carries.
pub(super) fn check_event_payloads(event: &Event, limit: usize) -> Result<(), StoreError> {
    let sizes: [usize; 2] = match event {
        Event::WorkflowStarted { input, .. } => [input.len(), 0],
        Event::ActivityScheduled { input, .. } => [input.len(), 0],
        Event::ActivityCompleted { result, .. } => [result.len(), 0],
        Event::ActivityFailed { failure, .. } | Event::WorkflowFailed { failure } => [
            failure.details.as_ref().map_or(0, |d| d.len()),
            failure.message.len(),
        ],
        Event::SignalReceived { payload, .. } => [payload.len(), 0],
        Event::SideEffectRecorded { value, .. } => [value.len(), 0],
        Event::WorkflowCompleted { result } => [result.len(), 0],
        Event::WorkflowContinuedAsNew {
            input,
            carried_signals,
            ..
        } => [
            input.len(),
            carried_signals.iter().map(|s| s.payload.len()).sum(),
        ],
        Event::PatchMarker { patch_id, .. } => [patch_id.len(), 0],
        Event::WorkflowCancelRequested {
            reason,
            requested_by,
        } => [reason.len(), requested_by.as_ref().map_or(0, String::len)],
        Event::WorkflowCancelled { reason } | Event::WorkflowTerminated { reason } => {
            [reason.len(), 0]
        }
        Event::ChildWorkflowStarted {
            workflow_type,
            workflow_id,
            input,
            ..
        } => [
            input.len(),
            workflow_type.len() + workflow_id.as_str().len(),
        ],
        Event::ChildWorkflowCompleted { result, .. } => [result.len(), 0],
        Event::ChildWorkflowFailed { failure, .. } => [
            failure.details.as_ref().map_or(0, |d| d.len()),
            failure.message.len(),
        ],
        Event::ActivityCancelRequested { .. } | Event::ChildWorkflowCancelRequested { .. } => {
            [0, 0]
        }
        Event::HumanTaskAssigned {
            task,
            assignee,
            form,
            ..
        } => [
            form.as_ref().map_or(0, Payload::len),
            task.len() + assignee.len(),
        ],
        Event::HumanTaskReminded { assignee, .. } => [assignee.len(), 0],
        Event::HumanTaskEscalated { from, to, .. } => [from.len() + to.len(), 0],
        Event::HumanTaskDecided {
            decision,
            decided_by,
            comment,
            ..
        } => [
            decision.len(),
            decided_by.len() + comment.as_ref().map_or(0, String::len),
        ],
        Event::HumanTaskClosed { reason, .. } => [reason.len(), 0],
        Event::UpdateRequested {
            update_id,
            name,
            input,
        }
        | Event::UpdateAccepted {
            update_id,
            name,
            input,
        } => [input.len(), update_id.len() + name.len()],
        Event::UpdateCompleted { update_id, result } => [result.len(), update_id.len()],
        Event::UpdateFailed { update_id, failure } => [
            failure.details.as_ref().map_or(0, |d| d.len()),
            failure.message.len() + update_id.len(),
        ],
        Event::ActivationStarted { .. }
        | Event::TimerStarted { .. }
        | Event::TimerFired { .. }
        | Event::TimerCancelled { .. } => [0, 0],
    };
    sizes.iter().try_for_each(|&s| check_payload(s, limit))
}

/// The run-number counter. Numbers are drawn from memory (seeded from
/// `meta` at open) rather than read from `meta` inside each transaction,
/// so that a number can be reserved *before* the transaction that starts
/// the run: an eager start runs the run's first activation, which may ask
/// for its run id, and then commits start and activation together. `meta`
/// keeps the high-water mark, written by every transaction that takes a
/// number. A number drawn by a transaction that is then refused or re-run
/// is skipped (until the next open, which continues after the highest
/// number a run was given); gaps are harmless, numbers only need to be
/// unique.
pub(super) struct RunIds {
    next: AtomicU64,
}

impl RunIds {
    /// The counter, continuing after every run number `meta` has recorded.
    pub(super) fn load(meta: &Tree) -> Result<RunIds, StoreError> {
        let next = match meta.get(META_NEXT_RUN)? {
            None => 1,
            Some(bytes) => decode_u64(&bytes, "meta", None)?,
        };
        Ok(RunIds {
            next: AtomicU64::new(next),
        })
    }

    /// A number no other run has or will be given.
    pub(super) fn reserve(&self) -> RunId {
        RunId(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// Takes the next run number.
pub(super) fn allocate_run(meta: &TxTree<'_>, ids: &RunIds) -> TxResult<RunId> {
    let run = ids.reserve();
    record_run_number(meta, run)?;
    Ok(run)
}

/// Raises the high-water mark in `meta` past `run` (numbers reserved
/// ahead may commit out of order), so the next open continues after it.
pub(super) fn record_run_number(meta: &TxTree<'_>, run: RunId) -> TxResult<()> {
    let stored = match meta.get(META_NEXT_RUN)? {
        None => 1,
        Some(bytes) => decode_u64(&bytes, "meta", None).map_err(abort)?,
    };
    if run.0 >= stored {
        meta.insert(META_NEXT_RUN, &run.0.saturating_add(1).to_be_bytes()[..])?;
    }
    Ok(())
}

/// Reads a run record inside a transaction.
pub(super) fn get_run(runs: &TxTree<'_>, run: RunId) -> TxResult<Option<RunRecord>> {
    match runs.get(keys::run_key(run))? {
        None => Ok(None),
        Some(bytes) => decode(&bytes, "run", Some(run)).map(Some).map_err(abort),
    }
}

/// Writes a run record and keeps the `ready` tree equal to
/// `RunRecord::is_ready` for it. Every record write goes through here so the
/// mirror cannot drift.
pub(super) fn put_run(
    runs: &TxTree<'_>,
    ready: &TxTree<'_>,
    run: RunId,
    record: &RunRecord,
) -> TxResult<()> {
    let bytes = encode(record, "run", Some(run)).map_err(abort)?;
    runs.insert(&keys::run_key(run)[..], bytes)?;
    if record.is_ready() {
        ready.insert(&keys::run_key(run)[..], &[][..])?;
    } else {
        ready.delete(&keys::run_key(run)[..])?;
    }
    Ok(())
}

/// Appends an inbound event to `record`'s inbox (the caller writes the
/// record afterwards with `put_run`).
pub(super) fn push_inbox(
    inbox: &TxTree<'_>,
    run: RunId,
    record: &mut RunRecord,
    event: &Event,
) -> TxResult<()> {
    let bytes = encode(event, "inbox", Some(run)).map_err(abort)?;
    inbox.insert(&keys::run_seq_key(run, record.inbox_tail)[..], bytes)?;
    record.inbox_tail += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(trees: &Trees, run: RunId) {
        finish(
            trees
                .journal
                .transaction([&trees.meta], |[meta]| record_run_number(meta, run)),
        )
        .unwrap();
    }

    #[test]
    fn run_numbers_reserved_ahead_continue_after_the_highest_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, unused) = {
            let db = super::super::open_db(dir.path(), &Default::default()).unwrap();
            let trees = Trees::open(&db).unwrap();
            let (a, b, unused) = (
                trees.run_ids.reserve(),
                trees.run_ids.reserve(),
                trees.run_ids.reserve(),
            );
            assert_eq!((a, b, unused), (RunId(1), RunId(2), RunId(3)));
            // Committed out of order; the third is never used.
            take(&trees, b);
            take(&trees, a);
            db.flush().unwrap();
            (a, b, unused)
        };
        let db = super::super::open_db(dir.path(), &Default::default()).unwrap();
        let trees = Trees::open(&db).unwrap();
        // Past every number a run was given; a number reserved and never
        // given to a run may come round again, which is harmless.
        assert_eq!(trees.run_ids.reserve(), unused);
        assert!(unused > a && unused > b);
    }
}
