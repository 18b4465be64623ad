//! Updates: requests a client sends to a running workflow, which its code
//! validates and answers. Only accepted updates enter the history
//! (`UpdateAccepted`, then `UpdateCompleted` or `UpdateFailed`); the
//! store keeps every request's state so that the caller can be answered,
//! a rejection included, without the history holding a trace of it.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `updates` | run ++ update id | [`UpdateRecord`] |
//!
//! A request is written together with its `UpdateRequested` inbox entry
//! (one transaction); its state changes only in the commit of the
//! activation that accepted, rejected or finished it. A request whose run
//! closes before the workflow looked at it stays `Requested`: the caller
//! sees the run closed and may send it again to the next run.

use super::tables::{abort, decode, encode, open_run_of, push_inbox, put_run, TxResult};
use crate::error::StoreError;
use crate::event::{Event, Failure, Payload};
use crate::ids::{RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::store::api::UpdateRejection;
use crate::store::engine::TxTree;
use serde::{Deserialize, Serialize};

/// One update request of a run, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// Update name (`Update::NAME`).
    pub name: String,
    /// When the request was made.
    pub requested_at: Timestamp,
    /// Where it stands.
    pub state: UpdateState,
}

/// Where an update request stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UpdateState {
    /// In the run's inbox; the workflow has not looked at it yet.
    Requested,
    /// The validator accepted it; the handler is running.
    Accepted,
    /// The handler returned this result.
    Completed(Payload),
    /// The handler returned this error.
    Failed(Failure),
    /// The validator (or the absence of a handler) refused it, for this
    /// reason. The history holds no trace of it.
    Rejected(String),
}

impl UpdateState {
    /// Whether the caller has its answer.
    pub fn is_answered(&self) -> bool {
        matches!(
            self,
            UpdateState::Completed(_) | UpdateState::Failed(_) | UpdateState::Rejected(_)
        )
    }
}

/// Records update `update_id` for the open latest run of `workflow_id`
/// and puts its request (`UpdateRequested`) in the run's inbox. A request
/// with an id the run already has is the same request: nothing is written.
/// Returns the run, and whether anything was written.
pub(in crate::store) fn request(
    (ids, runs, inbox, ready, updates): (
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
    ),
    workflow_id: &WorkflowId,
    update_id: &str,
    record: &UpdateRecord,
    request: &Event,
) -> TxResult<(RunId, bool)> {
    let (run, mut run_record) = open_run_of(ids, runs, workflow_id)?;
    let key = keys::update_key(run, update_id);
    if updates.get(&key)?.is_some() {
        return Ok((run, false));
    }
    let bytes = encode(record, "update", Some(run)).map_err(abort)?;
    updates.insert(key, bytes)?;
    push_inbox(inbox, run, &mut run_record, request)?;
    put_run(runs, ready, run, &run_record)?;
    Ok((run, true))
}

/// Applies an activation's update outcomes inside its commit: the
/// `UpdateAccepted`, `UpdateCompleted` and `UpdateFailed` commands among
/// `events`, and the requests its validators `rejected`. Returns whether
/// any caller now has an answer.
pub(in crate::store) fn apply_commit(
    updates: &TxTree<'_>,
    run: RunId,
    events: &[Event],
    rejected: &[UpdateRejection],
) -> TxResult<bool> {
    let mut answered = false;
    for event in events {
        let (update_id, state) = match event {
            Event::UpdateAccepted { update_id, .. } => (update_id, UpdateState::Accepted),
            Event::UpdateCompleted { update_id, result } => {
                (update_id, UpdateState::Completed(result.clone()))
            }
            Event::UpdateFailed { update_id, failure } => {
                (update_id, UpdateState::Failed(failure.clone()))
            }
            _ => continue,
        };
        answered |= state.is_answered();
        transition(updates, run, update_id, state)?;
    }
    for r in rejected {
        transition(
            updates,
            run,
            &r.update_id,
            UpdateState::Rejected(r.reason.clone()),
        )?;
        answered = true;
    }
    Ok(answered)
}

/// Moves one request to `to`, refusing moves that skip or repeat a step
/// (an update accepted twice, answered before being accepted, ...): they
/// would mean the commit does not belong to this store's requests.
fn transition(updates: &TxTree<'_>, run: RunId, update_id: &str, to: UpdateState) -> TxResult<()> {
    let key = keys::update_key(run, update_id);
    let Some(bytes) = updates.get(&key)? else {
        return Err(abort(StoreError::InvalidCommit {
            run,
            reason: format!("update {update_id:?} was never requested of this run"),
        }));
    };
    let mut record: UpdateRecord = decode(&bytes, "update", Some(run)).map_err(abort)?;
    let allowed = matches!(
        (&record.state, &to),
        (
            UpdateState::Requested,
            UpdateState::Accepted | UpdateState::Rejected(_)
        ) | (
            UpdateState::Accepted,
            UpdateState::Completed(_) | UpdateState::Failed(_)
        )
    );
    if !allowed {
        return Err(abort(StoreError::InvalidCommit {
            run,
            reason: format!(
                "update {update_id:?} cannot go from {} to {}",
                state_name(&record.state),
                state_name(&to)
            ),
        }));
    }
    record.state = to;
    let bytes = encode(&record, "update", Some(run)).map_err(abort)?;
    updates.insert(key, bytes)?;
    Ok(())
}

fn state_name(state: &UpdateState) -> &'static str {
    match state {
        UpdateState::Requested => "requested",
        UpdateState::Accepted => "accepted",
        UpdateState::Completed(_) => "completed",
        UpdateState::Failed(_) => "failed",
        UpdateState::Rejected(_) => "rejected",
    }
}
