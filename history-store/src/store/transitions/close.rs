//! Closing a run, whoever decides it (its own code in a commit, a client
//! terminating it, its parent closing under `ParentClosePolicy::Terminate`):
//! the run's status and outcome, what it was waiting on deleted, its
//! children's parent-close policies applied, and its parent told.
//!
//! A run closed by its parent's close closes its own children in turn, so
//! `close_run` and `terminate_child` call each other; they live here
//! together so that no other file is part of that recursion.

use super::activities::delete_task;
use super::children::{open_child, request_cancel};
use super::effects::Effects;
use super::human_tasks;
use super::tables::{abort, encode, get_run, push_inbox, put_run, Tx, TxResult};
use crate::event::{Event, Failure, ParentClosePolicy, Payload};
use crate::ids::{EventSeq, RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::store::records::{RunRecord, RunStatus};

/// How a run closes.
pub(in crate::store) struct Closing {
    pub(in crate::store) status: RunStatus,
    pub(in crate::store) outcome: Option<Result<Payload, Failure>>,
    pub(in crate::store) now: Timestamp,
    /// Whether a parent waiting on this run is told (not when the parent
    /// itself is closing in the same transaction).
    pub(in crate::store) tell_parent: bool,
}

impl Closing {
    /// A close decided by the run's own code or a client.
    pub(in crate::store) fn by_code(
        status: RunStatus,
        outcome: Option<Result<Payload, Failure>>,
        now: Timestamp,
    ) -> Self {
        Closing {
            status,
            outcome,
            now,
            tell_parent: true,
        }
    }
}

/// Closes the run and deletes what it was waiting on, applies its
/// children's parent-close policies, and tells its parent. Inbox items
/// that arrived after the claim stay where they are, as a record of what
/// the run never handled (unless it continues as new: see
/// `start_next_run`). The caller writes `record`.
pub(in crate::store) fn close_run(
    ctx: &Tx<'_>,
    run: RunId,
    record: &mut RunRecord,
    how: Closing,
    fx: &mut Effects,
) -> TxResult<()> {
    record.status = how.status;
    record.outcome = how.outcome;
    record.closed_at = Some(how.now);
    for timer in std::mem::take(&mut record.pending_timers) {
        ctx.timers
            .delete(&keys::time_key(timer.fire_at, run, timer.cmd)[..])?;
    }
    for cmd in std::mem::take(&mut record.pending_activities) {
        delete_task(&ctx.task, run, cmd)?;
    }
    human_tasks::close_all(ctx, run)?;
    apply_parent_close(ctx, record, how.now, fx)?;
    if how.tell_parent {
        notify_parent(ctx, record, fx)?;
    }
    fx.closed.push(run);
    Ok(())
}

/// Tells the parent of a closing run how it ended (not for
/// continue-as-new: the next run carries the parent on).
pub(in crate::store) fn notify_parent(
    ctx: &Tx<'_>,
    record: &RunRecord,
    fx: &mut Effects,
) -> TxResult<()> {
    let Some(parent) = &record.parent else {
        return Ok(());
    };
    if record.status == RunStatus::ContinuedAsNew {
        return Ok(());
    }
    let Some(mut parent_record) =
        get_run(ctx.task.runs, parent.run)?.filter(|r| r.status.is_open())
    else {
        return Ok(());
    };
    let event = match &record.outcome {
        Some(Ok(result)) => Event::ChildWorkflowCompleted {
            cmd: parent.cmd,
            result: result.clone(),
        },
        Some(Err(failure)) => Event::ChildWorkflowFailed {
            cmd: parent.cmd,
            failure: failure.clone(),
        },
        None => Event::ChildWorkflowFailed {
            cmd: parent.cmd,
            failure: Failure::application("closed", "child closed without an outcome"),
        },
    };
    push_inbox(ctx.task.inbox, parent.run, &mut parent_record, &event)?;
    parent_record
        .pending_children
        .retain(|c| c.cmd != parent.cmd);
    put_run(ctx.task.runs, ctx.task.ready, parent.run, &parent_record)?;
    fx.also_ready.push(parent.run);
    Ok(())
}

/// Applies each pending child's parent-close policy as its parent closes.
pub(in crate::store) fn apply_parent_close(
    ctx: &Tx<'_>,
    record: &mut RunRecord,
    now: Timestamp,
    fx: &mut Effects,
) -> TxResult<()> {
    for child in std::mem::take(&mut record.pending_children) {
        match child.parent_close {
            ParentClosePolicy::Abandon => {}
            ParentClosePolicy::RequestCancel => request_cancel(
                ctx,
                &child.workflow_id,
                "the parent workflow closed",
                &record.workflow_id,
                fx,
            )?,
            ParentClosePolicy::Terminate => {
                let reason = format!("parent workflow {} closed", record.workflow_id);
                terminate_child(ctx, &child.workflow_id, &reason, now, fx)?;
            }
        }
    }
    Ok(())
}

/// Terminates the open run of `child_id` as part of its parent's close;
/// the parent, closing, is not told.
fn terminate_child(
    ctx: &Tx<'_>,
    child_id: &WorkflowId,
    reason: &str,
    now: Timestamp,
    fx: &mut Effects,
) -> TxResult<()> {
    let Some((child_run, mut child)) = open_child(ctx, child_id)? else {
        return Ok(());
    };
    append_terminated(ctx, child_run, &mut child, reason, None)?;
    let outcome = Some(Err(Failure::terminated(reason)));
    let how = Closing {
        status: RunStatus::Terminated,
        outcome,
        now,
        // The parent is closing in this same transaction: nobody to tell.
        tell_parent: false,
    };
    close_run(ctx, child_run, &mut child, how, fx)?;
    child.lease = None;
    put_run(ctx.task.runs, ctx.task.ready, child_run, &child)
}

/// Appends `WorkflowTerminated` after the last event of `run`.
pub(in crate::store) fn append_terminated(
    ctx: &Tx<'_>,
    run: RunId,
    record: &mut RunRecord,
    reason: &str,
    terminated_by: Option<&str>,
) -> TxResult<()> {
    let event = Event::WorkflowTerminated {
        reason: reason.to_owned(),
        terminated_by: terminated_by.map(str::to_owned),
    };
    let bytes = encode(&event, "history", Some(run)).map_err(abort)?;
    let seq = record.last_seq.0 + 1;
    record.history_bytes = record.history_bytes.saturating_add(bytes.len() as u64);
    ctx.history
        .insert(&keys::run_seq_key(run, seq)[..], bytes)?;
    record.last_seq = EventSeq(seq);
    Ok(())
}
