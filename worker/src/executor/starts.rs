//! The starts of a workflow thread: first activations that a start made
//! through the worker's client carries (see `eager_start`), and how a
//! thread hands a store call to the runtime.

use super::{task_span, Executor, InFlight};
use crate::eager_start::StartJob;
use refrain::replay::WorkflowMachine;
use refrain_history::{ActivationCommit, LeaseToken, StartedWith};
use std::time::Instant;
use tokio::runtime::Handle;
use tracing::debug;

impl Executor {
    /// Runs the first activation of a run started through the worker's
    /// client and hands it to the store with the start, so both commit in
    /// one step. Whatever cannot go that way (the worker is stopping, the
    /// activation fails) drops `start`, and the client makes the ordinary
    /// start: the failure is then met, and recorded, as a task failure of
    /// that run.
    pub(super) fn start_eagerly(&mut self, start: StartJob) {
        let began = Instant::now();
        let StartJob { reserved, reply } = start;
        let run = reserved.run;
        let Some(own) = self.own.upgrade() else {
            return;
        };
        let record = reserved.record.clone();
        let Some(workflow) = self.registry.workflows.get(&record.workflow_type) else {
            return;
        };
        let span = task_span(run, &record);
        let _enter = span.enter();
        let mut machine = match WorkflowMachine::new(workflow.as_ref(), run, &reserved.started) {
            Ok(m) => m,
            Err(e) => {
                debug!(error = %e, "eager start declined");
                return;
            }
        };
        let events = match self.activate(&mut machine, &record, Vec::new()) {
            Ok(events) => events,
            Err(e) => {
                debug!(error = %e, "first activation failed; starting the ordinary way");
                return;
            }
        };
        let commit = ActivationCommit {
            run,
            token: LeaseToken::UNLEASED,
            expected_last_seq: record.last_seq,
            inbox_upto: record.inbox_tail,
            events,
            rejected_updates: machine.take_rejected_updates(),
            awaited_signals: machine.awaited_signals(),
        };
        let report = self.task_report(&record, &commit, began);
        let waiting = InFlight {
            token: LeaseToken::UNLEASED,
            record,
            delivered: Vec::new(),
            queries: Vec::new(),
            dispatched: false,
            next: None,
        };
        let (direct, slots) = self.hand_over(machine, &commit, Vec::new(), waiting);
        let settled = self.on_settled(run, own, slots, false);
        let store = self.store.clone();
        start_here(&self.rt, async move {
            match store.start_with_activation(reserved, commit, direct).await {
                Ok(StartedWith { outcome, claimed }) => {
                    // An activation the start did not use is reported
                    // when the ordinary path runs it.
                    if let (Some(report), true) = (report, claimed.is_some()) {
                        report.settled(true);
                    }
                    settled(Ok(claimed));
                    let _ = reply.send(Ok(outcome));
                }
                Err(e) => {
                    // Nothing of this activation was written.
                    settled(Ok(None));
                    let _ = reply.send(Err(e));
                }
            }
        });
    }
}

/// Runs `fut` on this thread until it first waits, then hands it to the
/// runtime. A commit's first step (for sled: applying it at once when no
/// transaction is in progress, or joining the batch) is then taken by the
/// workflow thread, as before there was a seam, rather than by a runtime
/// thread that activities and polls need; only the wait for durability
/// moves to the runtime.
pub(super) fn start_here<F>(rt: &Handle, fut: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut fut = Box::pin(fut);
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let pending = {
        let _in_runtime = rt.enter();
        fut.as_mut().poll(&mut cx).is_pending()
    };
    if pending {
        // Spawning polls it again at once, with a waker that works.
        rt.spawn(fut);
    }
}
