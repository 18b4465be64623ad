//! Committing an activation and terminating a run, the shell: each runs
//! its transition (`transitions::activation`, `transitions::signals`) in
//! one transaction and then makes the wake-ups its [`Effects`] name.

use super::transitions::activation::{self, CommitLimits, Prepared};
use super::transitions::effects::Effects;
use super::transitions::signals;
use super::tx::{check_payload, finish};
use super::Inner;
use crate::error::StoreError;
use crate::ids::{RunId, Timestamp, WorkflowId};
use crate::store::api::ActivationCommit;

impl Effects {
    /// The wake-ups after the transaction committed.
    pub(super) fn wake(&self, inner: &Inner, run: RunId) {
        if self.ready {
            inner.ready_queue.push(run);
        }
        for r in &self.also_ready {
            inner.ready_queue.push(*r);
        }
        if self.activity_scheduled {
            inner.activity_notify.notify_one();
        }
        if self.timer_started {
            inner.timer_notify.notify_one();
        }
        if self.updates_answered {
            inner.update_waiters.wake(run, || inner.flusher.ticket());
        }
        for r in &self.closed {
            inner.closed.wake(*r, || inner.flusher.ticket());
            // A caller waiting for an update of a closed run learns that
            // the run closed first.
            inner.update_waiters.wake(*r, || inner.flusher.ticket());
        }
    }
}

impl Inner {
    pub(super) fn commit_activation(&self, commit: ActivationCommit) -> Result<(), StoreError> {
        let run = commit.run;
        let prepared = prepare(self, &commit)?;
        let fx = self.batcher.apply(&self.trees, move |tx| {
            activation::apply(tx, &commit, &prepared)
        })?;
        fx.wake(self, run);
        Ok(())
    }

    /// Ends the latest run of `workflow_id` at once, without running any
    /// workflow code: appends `WorkflowTerminated`, closes the run and
    /// deletes its timers and activity tasks. An activation in flight
    /// finds the history moved and its commit refused.
    pub(super) fn terminate(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        terminated_by: Option<&str>,
        now: Timestamp,
    ) -> Result<RunId, StoreError> {
        check_payload(
            reason.len() + terminated_by.map_or(0, str::len),
            self.config.max_payload_bytes,
        )?;
        // Rare and operator-driven: its own transaction (over the same
        // trees as a batch), not through the batcher.
        let (run, fx) = finish(super::batch::transaction(&self.trees, |ctx| {
            signals::terminate(ctx, workflow_id, reason, terminated_by, now)
        }))?;
        fx.wake(self, run);
        Ok(run)
    }
}

/// Checks `commit` against this store's limits and lease owner, outside
/// the transaction (see [`activation::prepare`]).
pub(super) fn prepare(inner: &Inner, commit: &ActivationCommit) -> Result<Prepared, StoreError> {
    let limits = CommitLimits {
        max_payload_bytes: inner.config.max_payload_bytes,
        max_history_events: inner.config.max_history_events,
        max_history_bytes: inner.config.max_history_bytes,
    };
    activation::prepare(commit, limits, inner.owner, inner.config.clock.now())
}
