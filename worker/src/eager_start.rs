//! Eager starts: a start made in this process for a workflow type this
//! worker runs reaches a workflow thread directly, which runs the run's
//! first activation and commits it with the start in one transaction
//! (see `refrain_history::EagerStarter`). The run skips the ordinary
//! path's second transaction and the hop through the ready queue and the
//! dispatcher, and its first activities are claimed for this worker in
//! that same transaction.

use crate::dispatcher::thread_of;
use crate::executor::Job;
use crate::registry::Registry;
use refrain_history::{EagerStart, EagerStarter};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// The worker's side of eager starts: the thread a run is pinned to
/// takes its start.
pub(crate) struct WorkerStarts {
    pub registry: Arc<Registry>,
    pub threads: Vec<UnboundedSender<Job>>,
}

impl EagerStarter for WorkerStarts {
    fn runs(&self, workflow_type: &str) -> bool {
        self.registry.workflows.contains_key(workflow_type)
    }

    fn take(&self, start: EagerStart) {
        let thread = &self.threads[thread_of(start.run(), self.threads.len())];
        // A stopped thread drops the start: the store then makes it the
        // ordinary way.
        let _ = thread.send(Job::Start(Box::new(start)));
    }
}
