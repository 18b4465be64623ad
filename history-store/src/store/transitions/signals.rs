//! What a client sends a running workflow from outside: a signal or a
//! cancellation request (an inbound event in the inbox of the open latest
//! run of the id), a signal that starts the run it is for when none is
//! open (signal-with-start), and a termination (the run closed at once,
//! without running any workflow code).

use super::close::{append_terminated, close_run, Closing};
use super::effects::Effects;
use super::start::{start_in_tx, RunNumber};
use super::tables::{abort, get_run, missing, open_run_of, push_inbox, put_run, Tx, TxResult};
use crate::event::{Event, Failure};
use crate::ids::{RunId, Timestamp, WorkflowId};
use crate::store::api::{IdConflictPolicy, StartOutcome};
use crate::store::records::{RunRecord, RunStatus};

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

/// Signal-with-start: appends `signal` to the inbox of the open latest run
/// of `workflow_id` (`started: false`) or, when no run of the id is open
/// (never used, or its latest run closed), starts one from the encoded
/// `WorkflowStarted` `event` and `record` (as `start_in_tx` writes them)
/// with `signal` already in its inbox, so that the run's first activation
/// applies it (`started: true`). Either way the run has work.
pub(in crate::store) fn signal_with_start(
    tx: &Tx<'_>,
    workflow_id: &WorkflowId,
    (event, record): (&[u8], &RunRecord),
    signal: &Event,
) -> TxResult<StartOutcome> {
    let t = &tx.task;
    // Attaching finds the open run; otherwise the run is started here.
    let outcome = start_in_tx(
        (tx.meta, tx.ids, t.runs, tx.history, t.ready),
        RunNumber::Draw(tx.run_ids),
        workflow_id,
        IdConflictPolicy::AttachToOpen,
        event,
        record,
    )?;
    let Some(mut record) = get_run(t.runs, outcome.run)? else {
        return Err(abort(missing("run", Some(outcome.run))));
    };
    push_inbox(t.inbox, outcome.run, &mut record, signal)?;
    put_run(t.runs, t.ready, outcome.run, &record)?;
    Ok(outcome)
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
    terminated_by: Option<&str>,
    now: Timestamp,
) -> TxResult<(RunId, Effects)> {
    let tx = &ctx.task;
    let (run, mut record) = open_run_of(ctx.ids, tx.runs, workflow_id)?;
    append_terminated(ctx, run, &mut record, reason, terminated_by)?;
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
