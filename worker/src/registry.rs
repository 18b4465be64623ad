//! What a worker can run: workflow and activity types by name.

use async_trait::async_trait;
use metrics::Label;
use refrain::payload;
use refrain::replay::{ErasedWorkflow, WorkflowType};
use refrain::{Activity, ActivityContext, Workflow};
use refrain_history::{telemetry, Failure, FailureCause, Payload};
use std::collections::HashMap;
use std::sync::Arc;

/// An activity with input and output erased to payloads.
#[async_trait]
pub(crate) trait ErasedActivity: Send + Sync + 'static {
    async fn run(&self, ctx: ActivityContext, input: Payload) -> Result<Payload, Failure>;

    /// The type's metric labels (`refrain_history::telemetry`).
    fn labels(&self) -> &'static [Label];
}

struct ActivityAdapter<A>(A, &'static [Label]);

#[async_trait]
impl<A: Activity> ErasedActivity for ActivityAdapter<A> {
    async fn run(&self, ctx: ActivityContext, input: Payload) -> Result<Payload, Failure> {
        let input: A::Input =
            payload::decode(&format!("{} input", A::NAME), &input).map_err(|e| {
                let mut f = Failure::application("payload", e.to_string());
                f.non_retryable = true;
                f
            })?;
        let output = self.0.run(ctx, input).await.map_err(|e| e.into_failure())?;
        payload::encode(&format!("{} result", A::NAME), &output).map_err(|e| {
            let mut f = Failure::application("payload", e.to_string());
            f.non_retryable = true;
            f
        })
    }

    fn labels(&self) -> &'static [Label] {
        self.1
    }
}

/// Registered workflow and activity types.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    pub workflows: HashMap<String, Arc<dyn ErasedWorkflow>>,
    pub activities: HashMap<String, Arc<dyn ErasedActivity>>,
    /// Each workflow type's metric labels (`refrain_history::telemetry`).
    pub workflow_labels: HashMap<String, &'static [Label]>,
}

impl Registry {
    pub fn add_workflow<W: Workflow>(&mut self) {
        self.workflows
            .insert(W::NAME.to_owned(), Arc::new(WorkflowType::<W>::new()));
        self.workflow_labels.insert(
            W::NAME.to_owned(),
            telemetry::type_labels(telemetry::WORKFLOW_TYPE, W::NAME),
        );
    }

    pub fn add_activity<A: Activity>(&mut self, activity: A) {
        let labels = telemetry::type_labels(telemetry::ACTIVITY_TYPE, A::NAME);
        self.activities.insert(
            A::NAME.to_owned(),
            Arc::new(ActivityAdapter(activity, labels)),
        );
    }
}

/// The failure recorded when no activity of the requested type is
/// registered. Retryable: a worker that has it may be deployed later.
pub(crate) fn not_registered(activity_type: &str) -> Failure {
    Failure {
        kind: "not-registered".into(),
        message: format!("no activity {activity_type:?} is registered on this worker"),
        non_retryable: false,
        cause: FailureCause::NotRegistered,
        details: None,
    }
}
