//! What a client sends a running workflow from outside: a signal or a
//! cancellation request (an inbound event in the inbox of the open latest
//! run of the id), and a termination (the run closed at once, without
//! running any workflow code).

use super::close::{append_terminated, close_run, Closing};
use super::effects::Effects;
use super::tables::{open_run_of, push_inbox, put_run, Tx, TxResult};
use crate::event::{Event, Failure};
use crate::ids::{RunId, Timestamp, WorkflowId};
use crate::store::records::RunStatus;

/// Appends an inbound event (`SignalReceived`, `WorkflowCancelRequested`)
/// to the inbox of the open latest run of `workflow_id`, which then has
/// work. Refused with `WorkflowNotFound` or `WorkflowClosed` otherwise.
pub(in crate::store) fn deliver(
    tx: &Tx<'_>,
    workflow_id: &WorkflowId,
    event: &Event,
) -> TxResult<RunId> {
    let t = &tx.task;
    let (run, mut record) = open_run_of(tx.ids, t.runs, workflow_id)?;
    push_inbox(t.inbox, run, &mut record, event)?;
    put_run(t.runs, t.ready, run, &record)?;
    Ok(run)
}

/// Ends the open latest run of `workflow_id`: appends
/// `WorkflowTerminated`, closes the run (its timers, activity tasks and
/// human tasks deleted, its children's parent-close policies applied, its
/// parent told) and voids its lease, so an activation in flight finds
/// the history moved and its commit refused.
pub(in crate::store) fn terminate(
    ctx: &Tx<'_>,
    workflow_id: &WorkflowId,
    reason: &str,
    now: Timestamp,
) -> TxResult<(RunId, Effects)> {
    let tx = &ctx.task;
    let (run, mut record) = open_run_of(ctx.ids, tx.runs, workflow_id)?;
    append_terminated(ctx, run, &mut record, reason)?;
    let mut fx = Effects::default();
    let how = Closing::by_code(
        RunStatus::Terminated,
        Some(Err(Failure::terminated(reason))),
        now,
    );
    close_run(ctx, run, &mut record, how, &mut fx)?;
    record.lease = None;
    put_run(tx.runs, tx.ready, run, &record)?;
    Ok((run, fx))
}
