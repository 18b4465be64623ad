//! Child workflows inside the commit transaction: starting them, passing
//! a cancellation on, telling the parent when a child closes, and applying
//! the parent-close policy when the parent closes first.
//!
//! All of it happens in the transaction of the commit (or termination)
//! that causes it, so a parent and its children never disagree about who
//! is waiting for whom.

use super::commit::{close_run, Closing, CommitTx, Effects};
use super::runs::open_run_of;
use super::tx::{abort, allocate_run, encode, get_run, push_inbox, put_run, TxResult};
use crate::error::StoreError;
use crate::event::{Event, Failure, ParentClosePolicy, ParentRef, Payload};
use crate::ids::{CommandSeq, RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::store::records::{PendingChild, RunRecord, RunStatus};

/// What a `ChildWorkflowStarted` command asks for.
pub(super) struct ChildStart<'a> {
    pub cmd: CommandSeq,
    pub workflow_type: &'a str,
    pub workflow_id: &'a WorkflowId,
    pub input: &'a Payload,
    pub seed: u64,
    pub parent_close: ParentClosePolicy,
    pub now: Timestamp,
}

/// Starts a child of `run` (whose in-memory `record` the caller writes
/// afterwards). If a run of the child's id is open, the parent learns at
/// once, through its inbox, that the child could not start.
pub(super) fn start_child(
    ctx: &CommitTx<'_>,
    run: RunId,
    record: &mut RunRecord,
    child: ChildStart<'_>,
    fx: &mut Effects,
) -> TxResult<()> {
    match open_run_of(ctx.ids, ctx.task.runs, child.workflow_id) {
        Ok((open, _)) => {
            let mut failure = Failure::application(
                "already-running",
                format!(
                    "workflow {} is already running as {open}",
                    child.workflow_id
                ),
            );
            failure.non_retryable = true;
            let event = Event::ChildWorkflowFailed {
                cmd: child.cmd,
                failure,
            };
            return push_inbox(ctx.task.inbox, run, record, &event);
        }
        Err(super::engine::TxError::Abort(
            StoreError::WorkflowNotFound { .. } | StoreError::WorkflowClosed { .. },
        )) => {}
        Err(e) => return Err(e),
    }
    let child_run = allocate_run(ctx.meta, ctx.run_ids)?;
    let parent = ParentRef {
        workflow_id: record.workflow_id.clone(),
        run,
        cmd: child.cmd,
    };
    let started = Event::WorkflowStarted {
        workflow_type: child.workflow_type.to_owned(),
        workflow_id: child.workflow_id.clone(),
        input: child.input.clone(),
        seed: child.seed,
        start_time: child.now,
        continued_from: None,
        parent: Some(parent.clone()),
    };
    let bytes = encode(&started, "history", Some(child_run)).map_err(abort)?;
    let child_record = RunRecord::started(
        child.workflow_id.clone(),
        child.workflow_type.to_owned(),
        child.now,
        bytes.len() as u64,
        None,
        Some(parent),
    );
    ctx.history
        .insert(&keys::run_seq_key(child_run, 1)[..], bytes)?;
    put_run(ctx.task.runs, ctx.task.ready, child_run, &child_record)?;
    ctx.ids.insert(
        child.workflow_id.as_str().as_bytes(),
        &keys::run_key(child_run)[..],
    )?;
    record.pending_children.push(PendingChild {
        cmd: child.cmd,
        workflow_id: child.workflow_id.clone(),
        parent_close: child.parent_close,
    });
    fx.also_ready.push(child_run);
    Ok(())
}

/// Passes a cancellation request to the child started by `cmd`, if it is
/// still running.
pub(super) fn cancel_child(
    ctx: &CommitTx<'_>,
    record: &RunRecord,
    cmd: CommandSeq,
    reason: &str,
    fx: &mut Effects,
) -> TxResult<()> {
    let Some(child) = record.pending_children.iter().find(|c| c.cmd == cmd) else {
        return Ok(());
    };
    request_cancel(ctx, &child.workflow_id, reason, &record.workflow_id, fx)
}

fn request_cancel(
    ctx: &CommitTx<'_>,
    child_id: &WorkflowId,
    reason: &str,
    parent_id: &WorkflowId,
    fx: &mut Effects,
) -> TxResult<()> {
    let Some((child_run, mut child)) = open_child(ctx, child_id)? else {
        return Ok(());
    };
    let event = Event::WorkflowCancelRequested {
        reason: reason.to_owned(),
        requested_by: Some(format!("parent workflow {parent_id}")),
    };
    push_inbox(ctx.task.inbox, child_run, &mut child, &event)?;
    put_run(ctx.task.runs, ctx.task.ready, child_run, &child)?;
    fx.also_ready.push(child_run);
    Ok(())
}

/// The open latest run of `child_id`, if any.
fn open_child(ctx: &CommitTx<'_>, child_id: &WorkflowId) -> TxResult<Option<(RunId, RunRecord)>> {
    match open_run_of(ctx.ids, ctx.task.runs, child_id) {
        Ok(found) => Ok(Some(found)),
        Err(super::engine::TxError::Abort(
            StoreError::WorkflowNotFound { .. } | StoreError::WorkflowClosed { .. },
        )) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Tells the parent of a closing run how it ended (not for
/// continue-as-new: the next run carries the parent on).
pub(super) fn notify_parent(
    ctx: &CommitTx<'_>,
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
pub(super) fn apply_parent_close(
    ctx: &CommitTx<'_>,
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
    ctx: &CommitTx<'_>,
    child_id: &WorkflowId,
    reason: &str,
    now: Timestamp,
    fx: &mut Effects,
) -> TxResult<()> {
    let Some((child_run, mut child)) = open_child(ctx, child_id)? else {
        return Ok(());
    };
    append_terminated(ctx, child_run, &mut child, reason)?;
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
pub(super) fn append_terminated(
    ctx: &CommitTx<'_>,
    run: RunId,
    record: &mut RunRecord,
    reason: &str,
) -> TxResult<()> {
    let event = Event::WorkflowTerminated {
        reason: reason.to_owned(),
    };
    let bytes = encode(&event, "history", Some(run)).map_err(abort)?;
    let seq = record.last_seq + 1;
    record.history_bytes = record.history_bytes.saturating_add(bytes.len() as u64);
    ctx.history
        .insert(&keys::run_seq_key(run, seq)[..], bytes)?;
    record.last_seq = seq;
    Ok(())
}
