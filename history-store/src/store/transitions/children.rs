//! Child workflows inside the commit transaction: starting them and
//! passing a cancellation on. What happens to the children when their
//! parent closes, and to the parent when a child closes, is closing a run
//! (`close.rs`).
//!
//! All of it happens in the transaction of the commit (or termination)
//! that causes it, so a parent and its children never disagree about who
//! is waiting for whom.

use super::effects::Effects;
use super::tables::{abort, allocate_run, encode, open_run_of, push_inbox, put_run, Tx, TxResult};
use crate::error::StoreError;
use crate::event::{Event, Failure, ParentClosePolicy, ParentRef, Payload};
use crate::ids::{CommandSeq, RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::store::engine::TxError;
use crate::store::records::{PendingChild, RunRecord};

/// What a `ChildWorkflowStarted` command asks for.
pub(in crate::store) struct ChildStart<'a> {
    pub(in crate::store) cmd: CommandSeq,
    pub(in crate::store) workflow_type: &'a str,
    pub(in crate::store) workflow_id: &'a WorkflowId,
    pub(in crate::store) input: &'a Payload,
    pub(in crate::store) seed: u64,
    pub(in crate::store) parent_close: ParentClosePolicy,
    pub(in crate::store) now: Timestamp,
}

/// Starts a child of `run` (whose in-memory `record` the caller writes
/// afterwards). If a run of the child's id is open, the parent learns at
/// once, through its inbox, that the child could not start.
pub(in crate::store) fn start_child(
    ctx: &Tx<'_>,
    run: RunId,
    record: &mut RunRecord,
    child: ChildStart<'_>,
    fx: &mut Effects,
) -> TxResult<()> {
    if let Some(open) = open_child(ctx, child.workflow_id)?.map(|(open, _)| open) {
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
pub(in crate::store) fn cancel_child(
    ctx: &Tx<'_>,
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

/// Asks the open run of `child_id` to cancel, on behalf of its parent.
pub(in crate::store) fn request_cancel(
    ctx: &Tx<'_>,
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
pub(in crate::store) fn open_child(
    ctx: &Tx<'_>,
    child_id: &WorkflowId,
) -> TxResult<Option<(RunId, RunRecord)>> {
    match open_run_of(ctx.ids, ctx.task.runs, child_id) {
        Ok(found) => Ok(Some(found)),
        Err(TxError::Abort(
            StoreError::WorkflowNotFound { .. } | StoreError::WorkflowClosed { .. },
        )) => Ok(None),
        Err(e) => Err(e),
    }
}
