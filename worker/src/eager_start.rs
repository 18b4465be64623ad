//! Starts with the first activation: a start made through a worker's
//! client ([`crate::Worker::client`]) for a workflow type this worker runs
//! reaches a workflow thread directly, which runs the run's first
//! activation and hands it to the store with the start
//! ([`HistoryStore::start_with_activation`]), in one durable step. The run
//! skips the ordinary path's second transaction and the hop through the
//! store's queue and the dispatcher, and its first activities are claimed
//! for this worker in that same step.
//!
//! The client calls down into the worker ([`InProcessStarts`]); the store
//! calls nobody. Whatever cannot go this way (the worker stopped, the
//! store reserves no run numbers, the first activation failed) makes the
//! ordinary start, with the same outcome.

use crate::dispatcher::thread_of;
use crate::executor::Job;
use crate::registry::Registry;
use refrain::InProcessStarts;
use refrain_history::{HistoryStore, ReservedStart, StartError, StartOutcome, StartRequest};
use std::sync::Arc;
use tokio::sync::mpsc::WeakUnboundedSender;
use tokio::sync::oneshot;

/// A start for a workflow thread: run the first activation of `reserved`
/// and make the start with it; `reply` gets the start's outcome. Dropping
/// the job before the start is handed to the store leaves the reservation
/// unused, and the caller makes the ordinary start.
pub(crate) struct StartJob {
    pub reserved: ReservedStart,
    pub reply: oneshot::Sender<Result<StartOutcome, StartError>>,
}

/// The worker's side of starts with the first activation: the thread a
/// run is pinned to takes its start.
pub(crate) struct WorkerStarts {
    pub registry: Arc<Registry>,
    /// Weak: clients outlive the worker, and a stopped worker's threads
    /// must still end. A start that finds them gone is ordinary.
    pub threads: Vec<WeakUnboundedSender<Job>>,
}

#[async_trait::async_trait]
impl InProcessStarts for WorkerStarts {
    fn runs(&self, workflow_type: &str) -> bool {
        self.registry.workflows.contains_key(workflow_type)
    }

    async fn start(
        &self,
        store: &Arc<dyn HistoryStore>,
        req: StartRequest,
    ) -> Result<StartOutcome, StartError> {
        let Some(reserved) = store.reserve_start(req.clone()).await? else {
            return store.start(req).await;
        };
        let thread = &self.threads[thread_of(reserved.run, self.threads.len())];
        let (reply, answer) = oneshot::channel();
        if let Some(thread) = thread.upgrade() {
            let _ = thread.send(Job::Start(Box::new(StartJob { reserved, reply })));
        }
        match answer.await {
            Ok(outcome) => outcome,
            // Never handed to the store: nothing was written.
            Err(_) => store.start(req).await,
        }
    }
}
