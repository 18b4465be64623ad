//! Updates, the shell: recording a request and reading its state. What
//! a request and its answers do to the tables, and the states a request
//! moves through, are `transitions::updates`; waiting for an answer is
//! `Store::wait_update`.

use super::transitions::updates;
pub use super::transitions::updates::{UpdateRecord, UpdateState};
use super::tx::{check_payload, decode, finish};
use super::Inner;
use crate::error::StoreError;
use crate::event::{Event, Payload};
use crate::ids::{RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::store::records::RunRecord;

/// What a caller waiting for an update learns.
#[derive(Clone, Debug)]
pub enum UpdateWait {
    /// The update was answered (completed, failed or rejected).
    Answered(UpdateRecord),
    /// The run closed first. `update.state` says how far the request got:
    /// `Requested` means the workflow never saw it, so sending it to the
    /// next run (after continue-as-new) cannot apply it twice.
    RunClosed {
        /// The request as the run left it.
        update: UpdateRecord,
        /// The closed run.
        record: Box<RunRecord>,
    },
}

impl Inner {
    /// Records update `update_id` for the open latest run of
    /// `workflow_id` and puts its request in the run's inbox. A request
    /// with an id the run already has is the same request: nothing is
    /// written and the run is returned.
    pub(super) fn request_update(
        &self,
        workflow_id: &WorkflowId,
        update_id: &str,
        name: &str,
        input: Payload,
        now: Timestamp,
    ) -> Result<RunId, StoreError> {
        let limit = self.config.max_payload_bytes;
        check_payload(input.len(), limit)?;
        check_payload(update_id.len() + name.len(), limit)?;
        let record = UpdateRecord {
            name: name.to_owned(),
            requested_at: now,
            state: UpdateState::Requested,
        };
        let request = Event::UpdateRequested {
            update_id: update_id.to_owned(),
            name: name.to_owned(),
            input,
        };
        let t = &self.trees;
        let (run, written) = finish(t.engine.transaction(
            [&t.workflow_ids, &t.runs, &t.inbox, &t.ready, &t.updates],
            |[ids, runs, inbox, ready, updates]| {
                updates::request(
                    (ids, runs, inbox, ready, updates),
                    workflow_id,
                    update_id,
                    &record,
                    &request,
                )
            },
        ))?;
        if written {
            self.ready_queue.push(run);
        }
        Ok(run)
    }

    /// The stored state of update `update_id` of `run`, if requested.
    pub(super) fn update_record(
        &self,
        run: RunId,
        update_id: &str,
    ) -> Result<Option<UpdateRecord>, StoreError> {
        match self.trees.updates.get(keys::update_key(run, update_id))? {
            None => Ok(None),
            Some(bytes) => decode(&bytes, "update", Some(run)).map(Some),
        }
    }
}
