//! Starting a run: a client's start (and a schedule's fire) under the
//! workflow id's conflict policy, and the run that continues a run closed
//! by `WorkflowContinuedAsNew`, started in the commit that closes it.

use super::tables::{
    abort, allocate_run, check_payload, decode, decode_u64, encode, get_run, missing, push_inbox,
    put_run, record_run_number, RunNumbers, Tx, TxResult,
};
use crate::error::StoreError;
use crate::event::{Event, Payload, SignalRecord};
use crate::ids::{RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::store::api::{IdConflictPolicy, StartOutcome, StartRequest};
use crate::store::engine::TxTree;
use crate::store::records::RunRecord;

/// What a client's start writes, checked and encoded before its
/// transaction: the `WorkflowStarted` event, its bytes and the new run's
/// record. Neither depends on the run number, so both are built once,
/// outside the (possibly re-run) transaction, for an ordinary start and an
/// eager one alike.
pub(in crate::store) struct PreparedStart {
    pub(in crate::store) started: Event,
    pub(in crate::store) event: Vec<u8>,
    pub(in crate::store) record: RunRecord,
}

/// Checks `req`'s payloads against `limit` and builds what its start
/// writes.
pub(in crate::store) fn prepare_start(
    req: &StartRequest,
    limit: usize,
) -> Result<PreparedStart, StoreError> {
    check_payload(req.input.len(), limit)?;
    check_payload(req.workflow_type.len(), limit)?;
    check_payload(req.workflow_id.as_str().len(), limit)?;
    let started = Event::WorkflowStarted {
        workflow_type: req.workflow_type.clone(),
        workflow_id: req.workflow_id.clone(),
        input: req.input.clone(),
        seed: req.seed,
        start_time: req.now,
        continued_from: None,
        parent: None,
    };
    let event = encode(&started, "history", None)?;
    let record = RunRecord::started(
        req.workflow_id.clone(),
        req.workflow_type.clone(),
        req.now,
        event.len() as u64,
        None,
        None,
    );
    Ok(PreparedStart {
        started,
        event,
        record,
    })
}

/// The transactional part of a start (shared with schedule fires): maps
/// `workflow_id` to a new run whose first event is the encoded `event` and
/// whose record is `record`, unless `on_conflict` says otherwise about an
/// open run of the id. The caller queues the run after the commit.
pub(in crate::store) fn start_in_tx(
    (meta, ids, runs, history, ready): (
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
    ),
    number: RunNumber<'_>,
    workflow_id: &WorkflowId,
    on_conflict: IdConflictPolicy,
    event: &[u8],
    record: &RunRecord,
) -> TxResult<StartOutcome> {
    let id_key = workflow_id.as_str().as_bytes();
    if let Some(latest) = ids.get(id_key)? {
        let run = RunId(decode_u64(&latest, "workflow id", None).map_err(abort)?);
        if on_conflict == IdConflictPolicy::UseExisting {
            return Ok(StartOutcome {
                run,
                started: false,
            });
        }
        if let Some(open) = get_run(runs, run)?.filter(|r| r.status.is_open()) {
            return match on_conflict {
                IdConflictPolicy::Reject => Err(abort(StoreError::AlreadyRunning {
                    workflow_id: open.workflow_id,
                    run,
                })),
                IdConflictPolicy::AttachToOpen | IdConflictPolicy::UseExisting => {
                    Ok(StartOutcome {
                        run,
                        started: false,
                    })
                }
            };
        }
    }
    let run = match number {
        RunNumber::Draw(ids) => allocate_run(meta, ids)?,
        RunNumber::Reserved(run) => {
            record_run_number(meta, run)?;
            run
        }
    };
    history.insert(&keys::run_seq_key(run, 1)[..], event)?;
    put_run(runs, ready, run, record)?;
    ids.insert(id_key, &keys::run_key(run)[..])?;
    Ok(StartOutcome { run, started: true })
}

/// Where a started run's number comes from.
pub(in crate::store) enum RunNumber<'a> {
    /// The next number, drawn in the transaction.
    Draw(&'a dyn RunNumbers),
    /// A number reserved before the transaction (see `tx::RunIds`).
    Reserved(RunId),
}

/// What `WorkflowContinuedAsNew` asks of the next run.
pub(in crate::store) struct NextRun<'a> {
    pub(in crate::store) input: &'a Payload,
    pub(in crate::store) seed: u64,
    pub(in crate::store) carried_signals: &'a [SignalRecord],
    pub(in crate::store) now: Timestamp,
}

/// Starts the run that continues `run` (already closed in `record`, whose
/// consumed inbox items are already deleted): a new run number, its
/// `WorkflowStarted`, its record, and the workflow id pointing at it.
///
/// Its inbox receives first the carried signals, in order, then the
/// signals that reached `run` after the claim (`inbox_head..inbox_tail`),
/// moved in arrival order. The other late items of `run` (results of its
/// activities and timers) are deleted: their commands died with it. A
/// late item that cannot be decoded aborts the commit, since it might be a
/// signal.
pub(in crate::store) fn start_next_run(
    ctx: &Tx<'_>,
    run: RunId,
    record: &mut RunRecord,
    next: NextRun<'_>,
) -> TxResult<RunId> {
    let inbox = ctx.task.inbox;
    let new_run = allocate_run(ctx.meta, ctx.run_ids)?;
    let started = Event::WorkflowStarted {
        workflow_type: record.workflow_type.clone(),
        workflow_id: record.workflow_id.clone(),
        input: next.input.clone(),
        seed: next.seed,
        start_time: next.now,
        continued_from: Some(run),
        parent: record.parent.clone(),
    };
    let started = encode(&started, "history", Some(new_run)).map_err(abort)?;
    let mut new_record = RunRecord::started(
        record.workflow_id.clone(),
        record.workflow_type.clone(),
        next.now,
        started.len() as u64,
        Some(run),
        record.parent.clone(),
    );
    ctx.history
        .insert(&keys::run_seq_key(new_run, 1)[..], started)?;
    for signal in next.carried_signals {
        let event = Event::SignalReceived {
            name: signal.name.clone(),
            payload: signal.payload.clone(),
            sender: signal.sender.clone(),
        };
        push_inbox(inbox, new_run, &mut new_record, &event)?;
    }
    move_late_signals(inbox, run, record, new_run, &mut new_record)?;
    record.inbox_head = record.inbox_tail;
    record.continued_to = Some(new_run);
    put_run(ctx.task.runs, ctx.task.ready, new_run, &new_record)?;
    ctx.ids.insert(
        record.workflow_id.as_str().as_bytes(),
        &keys::run_key(new_run)[..],
    )?;
    Ok(new_run)
}

/// Moves the signals among `run`'s late inbox items to the end of
/// `new_run`'s inbox and deletes the other late items.
fn move_late_signals(
    inbox: &TxTree<'_>,
    run: RunId,
    record: &RunRecord,
    new_run: RunId,
    new_record: &mut RunRecord,
) -> TxResult<()> {
    for n in record.inbox_head..record.inbox_tail {
        let Some(bytes) = inbox.remove(&keys::run_seq_key(run, n)[..])? else {
            return Err(abort(missing("inbox", Some(run))));
        };
        let event: Event = decode(&bytes, "inbox", Some(run)).map_err(abort)?;
        if matches!(event, Event::SignalReceived { .. }) {
            // The stored value does not name its run: move it as it is.
            inbox.insert(
                &keys::run_seq_key(new_run, new_record.inbox_tail)[..],
                bytes,
            )?;
            new_record.inbox_tail += 1;
        }
    }
    Ok(())
}
