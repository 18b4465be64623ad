//! The base every transition stands on: the table views of one
//! transaction ([`Tx`]), the mapping of stored bytes to records (and of
//! decode failures to `StoreError::Corrupt`), and the few writes that must
//! always happen together (a run record and its `ready` mirror; an inbox
//! append; a run number taken and its high-water mark).

use crate::codec::{self, CodecError, MAX_VALUE_BYTES};
use crate::error::StoreError;
use crate::event::Event;
use crate::ids::{RunId, WorkflowId};
use crate::keys;
use crate::store::engine::{TxError, TxTree};
use crate::store::records::RunRecord;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Result of a transition: aborts carry our own error and write nothing.
pub(in crate::store) type TxResult<A> = Result<A, TxError<StoreError>>;

/// The tables an activity transition touches.
pub(in crate::store) struct TaskTx<'a> {
    pub(in crate::store) runs: &'a TxTree<'a>,
    pub(in crate::store) inbox: &'a TxTree<'a>,
    pub(in crate::store) ready: &'a TxTree<'a>,
    pub(in crate::store) tasks: &'a TxTree<'a>,
    pub(in crate::store) task_ready: &'a TxTree<'a>,
    pub(in crate::store) deadlines: &'a TxTree<'a>,
}

/// Every run table as one transaction sees it (a view costs nothing until
/// it is written, so one struct serves every transition), and where new
/// run numbers come from.
pub(in crate::store) struct Tx<'a> {
    pub(in crate::store) task: TaskTx<'a>,
    pub(in crate::store) meta: &'a TxTree<'a>,
    pub(in crate::store) ids: &'a TxTree<'a>,
    pub(in crate::store) history: &'a TxTree<'a>,
    pub(in crate::store) timers: &'a TxTree<'a>,
    pub(in crate::store) human_tasks: &'a TxTree<'a>,
    pub(in crate::store) run_human_tasks: &'a TxTree<'a>,
    pub(in crate::store) updates: &'a TxTree<'a>,
    /// Where new run numbers come from.
    pub(in crate::store) run_ids: &'a dyn RunNumbers,
}

/// How many tables a [`Tx`] spans, in the order [`Tx::over`] takes them.
pub(in crate::store) const TX_TABLES: usize = 13;

impl<'a> Tx<'a> {
    /// The transaction over `views`, in this order: meta, workflow ids,
    /// runs, inbox, ready, activity tasks, activity ready, activity
    /// deadlines, history, timers, human tasks, run human tasks, updates.
    /// One place for the order, shared by the store's transactions and the
    /// layer's tests.
    pub(in crate::store) fn over(
        views: &'a [TxTree<'a>; TX_TABLES],
        run_ids: &'a dyn RunNumbers,
    ) -> Tx<'a> {
        let [meta, ids, runs, inbox, ready, tasks, task_ready, deadlines, history, timers, human_tasks, run_human_tasks, updates] =
            views;
        Tx {
            task: TaskTx {
                runs,
                inbox,
                ready,
                tasks,
                task_ready,
                deadlines,
            },
            meta,
            ids,
            history,
            timers,
            human_tasks,
            run_human_tasks,
            updates,
            run_ids,
        }
    }
}

/// A source of run numbers no other run has or will be given (the
/// store's is `tx::RunIds`, which makes that hold across crashes).
pub(in crate::store) trait RunNumbers {
    /// The next unused number.
    ///
    /// # Errors
    /// Whatever made the number impossible to hand out safely.
    fn reserve(&self) -> Result<RunId, StoreError>;
}

/// Aborts the surrounding transaction with `e`; nothing it staged is
/// written.
pub(in crate::store) fn abort(e: StoreError) -> TxError<StoreError> {
    TxError::Abort(e)
}

/// Decodes a stored value, naming the record on failure.
pub(in crate::store) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    run: Option<RunId>,
) -> Result<T, StoreError> {
    codec::decode(bytes).map_err(|source| StoreError::Corrupt { what, run, source })
}

/// Encodes a value for storage. Our own types always encode; the only
/// realistic failure is a value past the codec's hard limit, which is
/// reported like an oversized payload.
pub(in crate::store) fn encode<T: Serialize>(
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
pub(in crate::store) fn decode_u64(
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
pub(in crate::store) fn missing(what: &'static str, run: Option<RunId>) -> StoreError {
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
pub(in crate::store) fn check_payload(size: usize, limit: usize) -> Result<(), StoreError> {
    let limit = limit.min(MAX_VALUE_BYTES);
    if size > limit {
        return Err(StoreError::PayloadTooLarge { size, limit });
    }
    Ok(())
}

/// Checks every payload an event carries (see `Event::payload_sizes`).
pub(in crate::store) fn check_event_payloads(
    event: &Event,
    limit: usize,
) -> Result<(), StoreError> {
    event
        .payload_sizes()
        .iter()
        .try_for_each(|&(_, size)| check_payload(size, limit))
}

/// `meta` key of the next run number (the highest given, plus one).
pub(in crate::store) const META_NEXT_RUN: &str = "next_run";

/// Takes the next run number.
pub(in crate::store) fn allocate_run(meta: &TxTree<'_>, ids: &dyn RunNumbers) -> TxResult<RunId> {
    let run = ids.reserve().map_err(abort)?;
    record_run_number(meta, run)?;
    Ok(run)
}

/// Raises the high-water mark in `meta` past `run` (numbers reserved
/// ahead may commit out of order), so the next open continues after it.
pub(in crate::store) fn record_run_number(meta: &TxTree<'_>, run: RunId) -> TxResult<()> {
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
pub(in crate::store) fn get_run(runs: &TxTree<'_>, run: RunId) -> TxResult<Option<RunRecord>> {
    match runs.get(keys::run_key(run))? {
        None => Ok(None),
        Some(bytes) => decode(&bytes, "run", Some(run)).map(Some).map_err(abort),
    }
}

/// Writes a run record and keeps the `ready` tree equal to
/// `RunRecord::is_ready` for it. Every record write goes through here so the
/// mirror cannot drift.
pub(in crate::store) fn put_run(
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
pub(in crate::store) fn push_inbox(
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

/// The latest run of `workflow_id`, which must be open.
pub(in crate::store) fn open_run_of(
    ids: &TxTree<'_>,
    runs: &TxTree<'_>,
    workflow_id: &WorkflowId,
) -> TxResult<(RunId, RunRecord)> {
    let Some(latest) = ids.get(workflow_id.as_str().as_bytes())? else {
        return Err(abort(StoreError::WorkflowNotFound {
            workflow_id: workflow_id.clone(),
        }));
    };
    let run = RunId(decode_u64(&latest, "workflow id", None).map_err(abort)?);
    let Some(record) = get_run(runs, run)? else {
        return Err(abort(missing("run", Some(run))));
    };
    if !record.status.is_open() {
        return Err(abort(StoreError::WorkflowClosed {
            workflow_id: workflow_id.clone(),
            run,
            status: record.status,
        }));
    }
    Ok((run, record))
}
