//! The [`Client`] calls by name, with payloads instead of typed values:
//! for a caller that does not link the workflow's types (an HTTP server,
//! a command-line tool, a bridge from another language).
//!
//! They are the core of the typed calls of `client.rs`, which encode
//! their value and call these, so both behave the same: the same checks,
//! the same errors, the same durability. A payload is what a typed call
//! would have recorded: JSON bytes, which the workflow decodes as its own
//! type. Nothing here checks a payload against that type; a payload the
//! workflow cannot decode fails where the typed value would have (the
//! workflow's input fails the run's first activation; a signal fails the
//! activation that receives it).

use crate::client::{Client, ClientError, StartOptions};
use rand::RngCore;
use refrain_history::{
    Payload, RunId, RunStatus, StartRequest, Timestamp, UpdateRequest, WorkflowId,
};
use std::time::Duration;

/// How long [`Client::query_payload`] waits for a worker's answer.
const QUERY_WAIT: Duration = Duration::from_secs(10);

/// The run a start stands for: the new one, or the existing one the
/// conflict policy returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartedRun {
    /// The workflow id.
    pub workflow_id: WorkflowId,
    /// The run.
    pub run: RunId,
    /// False when the conflict policy returned an existing run.
    pub started: bool,
}

/// The store's request to start `workflow_type` under `workflow_id`.
fn start_request(
    workflow_type: &str,
    workflow_id: &WorkflowId,
    input: Payload,
    options: StartOptions,
    now: Timestamp,
) -> StartRequest {
    StartRequest {
        workflow_id: workflow_id.clone(),
        workflow_type: workflow_type.to_owned(),
        input,
        on_conflict: options.on_conflict,
        // The thread's generator is not `Send`: drawn and dropped here,
        // before any await of the caller.
        seed: rand::rng().next_u64(),
        now,
    }
}

impl Client {
    /// Starts a run of `workflow_type` under `id` with `input` (the JSON
    /// of the workflow's input type), as [`Client::start_with`] does.
    ///
    /// # Errors
    /// `AlreadyRunning` (under the default policy), `PayloadTooLarge`, or
    /// a storage error; nothing is written on error.
    pub async fn start_payload(
        &self,
        workflow_type: &str,
        id: impl Into<WorkflowId>,
        input: Payload,
        options: StartOptions,
    ) -> Result<StartedRun, ClientError> {
        let workflow_id = id.into();
        let now = self.history_store().now();
        let req = start_request(workflow_type, &workflow_id, input, options, now);
        let outcome = match self.in_process_starts() {
            Some(starts) if starts.runs(workflow_type) => {
                starts.start(self.history_store(), req).await?
            }
            _ => self.history_store().start(req).await?,
        };
        Ok(StartedRun {
            workflow_id,
            run: outcome.run,
            started: outcome.started,
        })
    }

    /// Sends signal `name` with `signal` to the open run of `id`, or, if
    /// no run of `id` is open, starts `workflow_type` with `input` and the
    /// signal waiting for its first step, as
    /// [`Client::signal_with_start`] does: one atomic, durable step.
    /// `sender` is recorded with the signal.
    ///
    /// # Errors
    /// `PayloadTooLarge` (the input or the signal; nothing is written), or
    /// a storage error.
    pub async fn signal_with_start_payload(
        &self,
        workflow_type: &str,
        id: impl Into<WorkflowId>,
        input: Payload,
        name: &str,
        signal: Payload,
        sender: Option<&str>,
    ) -> Result<StartedRun, ClientError> {
        let workflow_id = id.into();
        let now = self.history_store().now();
        let req = start_request(
            workflow_type,
            &workflow_id,
            input,
            StartOptions::default(),
            now,
        );
        let outcome = self
            .history_store()
            .signal_with_start(req, name, signal, sender)
            .await?;
        Ok(StartedRun {
            workflow_id,
            run: outcome.run,
            started: outcome.started,
        })
    }

    /// Sends signal `name` with `input` to the open run of `id`, recording
    /// `sender` when given; returns the run once the signal is durable.
    ///
    /// # Errors
    /// `NotFound` or `Closed` (nothing is written), `PayloadTooLarge`.
    pub async fn signal_payload(
        &self,
        id: impl Into<WorkflowId>,
        name: &str,
        input: Payload,
        sender: Option<&str>,
    ) -> Result<RunId, ClientError> {
        Ok(self
            .history_store()
            .signal(&id.into(), name, input, sender)
            .await?)
    }

    /// Asks the latest run of `id` query `name` with `args` and returns
    /// the handler's answer, as [`Client::query`] does.
    ///
    /// # Errors
    /// `NotFound`; `Query` if no worker answered within ten seconds, the
    /// workflow does not answer `name`, or its handler failed.
    pub async fn query_payload(
        &self,
        id: impl Into<WorkflowId>,
        name: &str,
        args: Payload,
    ) -> Result<Payload, ClientError> {
        let workflow_id = id.into();
        let (run, _) = self.latest(&workflow_id).await?;
        self.history_store()
            .query(run, name, args, QUERY_WAIT)
            .await
            .map_err(|e| ClientError::Query(e.to_string()))
    }

    /// Sends update `name` with `args` under the caller's `update_id` to
    /// the open run of `id` and waits for the answer, as
    /// [`Client::update_with_id`] does (the same id is the same request:
    /// never applied twice).
    ///
    /// # Errors
    /// `UpdateRejected`, `UpdateFailed`, `UpdateNotAnswered`, `NotFound`,
    /// `Closed`, `PayloadTooLarge`.
    pub async fn update_payload(
        &self,
        id: impl Into<WorkflowId>,
        name: &str,
        update_id: &str,
        args: Payload,
    ) -> Result<Payload, ClientError> {
        use refrain_history::{UpdateState, UpdateWait};
        let workflow_id = id.into();
        loop {
            // The store returns an answer the latest run already gave (it
            // may have closed since) rather than asking again.
            let request = UpdateRequest {
                workflow_id: workflow_id.clone(),
                update_id: update_id.to_owned(),
                name: name.to_owned(),
                input: args.clone(),
            };
            let update = match self.history_store().update(request).await? {
                UpdateWait::Answered(update) => update,
                UpdateWait::RunClosed { update, record } => {
                    if update.state == UpdateState::Requested
                        && record.status == RunStatus::ContinuedAsNew
                    {
                        // Never seen by that run: the next one takes it.
                        continue;
                    }
                    return Err(ClientError::UpdateNotAnswered {
                        workflow_id,
                        update_id: update_id.to_owned(),
                        status: record.status,
                        accepted: update.state == UpdateState::Accepted,
                    });
                }
            };
            let update_ref = || format!("{name} ({update_id}) of {workflow_id}");
            return match update.state {
                UpdateState::Completed(result) => Ok(result),
                UpdateState::Failed(failure) => Err(ClientError::UpdateFailed {
                    update: update_ref(),
                    failure,
                }),
                UpdateState::Rejected(reason) => Err(ClientError::UpdateRejected {
                    update: update_ref(),
                    reason,
                }),
                UpdateState::Requested | UpdateState::Accepted => {
                    unreachable!("wait_update answers only answered updates")
                }
            };
        }
    }
}
