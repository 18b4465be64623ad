//! The [`Client`] calls an operator's tools make beside the everyday ones:
//! signal-with-start (a webhook or a form that does not know whether the
//! process it feeds is running yet) and firing a schedule by hand.

use crate::client::{Client, ClientError, StartOptions, WorkflowHandle};
use crate::payload;
use crate::workflow::{Signal, Workflow};
use refrain_history::{ScheduleError, TriggerOutcome, WorkflowId};
use std::marker::PhantomData;

impl Client {
    /// Sends signal `value` to the open run of `id`, or, if no run of `id`
    /// is open (never started, or its latest run closed), starts workflow
    /// `W` with `input` and the signal waiting for its first step: the
    /// workflow sees the signal as if it had come just after the start.
    /// One atomic, durable step (see
    /// [`HistoryStore::signal_with_start`](refrain_history::HistoryStore::signal_with_start)):
    /// concurrent calls start at most one run, and the signal is never
    /// lost to a run closing meanwhile. `sender` (a person or system) is
    /// recorded with the signal. `options.on_conflict` is not consulted:
    /// an open run always takes the signal.
    ///
    /// The handle names the run that has the signal; its
    /// [`was_started`](WorkflowHandle::was_started) says whether this call
    /// started it.
    ///
    /// # Errors
    /// `PayloadTooLarge` (the input or the signal; nothing is written),
    /// `Payload` if either cannot be encoded, or a storage error.
    pub async fn signal_with_start<W: Workflow, S: Signal>(
        &self,
        id: impl Into<WorkflowId>,
        input: W::Input,
        value: &S,
        options: StartOptions,
        sender: Option<&str>,
    ) -> Result<WorkflowHandle<W>, ClientError> {
        // An open run always takes the signal: the conflict policy has
        // nothing to decide.
        let _ = options;
        let input = payload::encode("workflow input", &input)?;
        let signal = payload::encode(&format!("signal {}", S::NAME), value)?;
        let run = self
            .signal_with_start_payload(W::NAME, id, input, S::NAME, signal, sender)
            .await?;
        Ok(WorkflowHandle {
            client: self.clone(),
            workflow_id: run.workflow_id,
            run: run.run,
            started: run.started,
            _marker: PhantomData,
        })
    }

    /// Fires schedule `id` now, whatever its next fire time (a paused
    /// schedule too; it stays paused), as its own fire would under its
    /// overlap policy: the outcome says whether a run started, or the
    /// fire was buffered or skipped behind the previous run. Durable when
    /// it returns.
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn trigger_schedule(&self, id: &str) -> Result<TriggerOutcome, ScheduleError> {
        self.history_store()
            .trigger_schedule(id, self.history_store().now())
            .await
    }
}
