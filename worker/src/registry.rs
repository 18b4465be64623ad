//! What a worker can run: workflow and activity types by name.

use async_trait::async_trait;
use metrics::Label;
use refrain::payload;
use refrain::replay::{ErasedWorkflow, WorkflowType};
use refrain::{Activity, ActivityContext, Workflow};
use refrain_history::{telemetry, Failure, FailureCause, Payload};
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use tracing::error;

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
    /// The Rust type registered under each name, to name both sides of a
    /// conflict.
    rust_types: HashMap<(Registered, String), &'static str>,
    /// Names registered more than once, in registration order; the worker
    /// refuses to start with any (see [`Registry::check`]).
    conflicts: Vec<RegistrationConflict>,
    /// Activity types scheduled here that no registration covers, each
    /// reported once at error level (see [`Registry::unknown_activity`]).
    reported_unknown: Arc<Mutex<BTreeSet<String>>>,
}

impl Registry {
    pub fn add_workflow<W: Workflow>(&mut self) {
        self.note(Registered::Workflow, W::NAME, std::any::type_name::<W>());
        self.workflows
            .insert(W::NAME.to_owned(), Arc::new(WorkflowType::<W>::new()));
        self.workflow_labels.insert(
            W::NAME.to_owned(),
            telemetry::type_labels(telemetry::WORKFLOW_TYPE, W::NAME),
        );
    }

    pub fn add_activity<A: Activity>(&mut self, activity: A) {
        self.note(Registered::Activity, A::NAME, std::any::type_name::<A>());
        let labels = telemetry::type_labels(telemetry::ACTIVITY_TYPE, A::NAME);
        self.activities.insert(
            A::NAME.to_owned(),
            Arc::new(ActivityAdapter(activity, labels)),
        );
    }

    fn note(&mut self, kind: Registered, name: &str, rust_type: &'static str) {
        match self.rust_types.entry((kind, name.to_owned())) {
            Entry::Vacant(v) => {
                v.insert(rust_type);
            }
            // A workflow type holds no state of its own, so registering the
            // same type again (an application's register function beside a
            // test kit's own registration) changes nothing. An activity is a
            // value with its own configuration and clients: the second one
            // would silently replace the first, so it is a conflict even
            // when the Rust type is the same.
            Entry::Occupied(first) if kind == Registered::Workflow && *first.get() == rust_type => {
            }
            Entry::Occupied(first) => self.conflicts.push(RegistrationConflict {
                kind,
                name: name.to_owned(),
                first: first.get(),
                second: rust_type,
            }),
        }
    }

    /// The first name registered twice, if any.
    pub fn check(&self) -> Result<(), RegistrationConflict> {
        match self.conflicts.first() {
            Some(conflict) => Err(conflict.clone()),
            None => Ok(()),
        }
    }

    /// The registered activity types, sorted, for messages.
    fn activity_names(&self) -> String {
        let mut names: Vec<&str> = self.activities.keys().map(String::as_str).collect();
        if names.is_empty() {
            return "none".to_owned();
        }
        names.sort_unstable();
        names.join(", ")
    }

    /// Reports that `scheduled_by` (a run, a workflow id) scheduled
    /// `activity_type`, which no registration of this worker covers: at
    /// error level, once per type and worker, naming what is registered.
    ///
    /// It is not an error of the run: with a shared store another worker
    /// may run the type, so its attempts fail as `not-registered` and are
    /// retried by their policy (see [`Registry::not_registered`]), and
    /// `describe` shows that failure under the pending activity. With one
    /// worker per store, as with sled, nothing else will ever run it: the
    /// log line is the alarm.
    pub fn unknown_activity(&self, activity_type: &str, scheduled_by: &dyn fmt::Display) {
        let first = self
            .reported_unknown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(activity_type.to_owned());
        if first {
            error!(
                activity_type,
                scheduled_by = %scheduled_by,
                registered = %self.activity_names(),
                "activity type {activity_type:?} is not registered on this worker: its calls \
                 wait until a worker that registers it runs them (register it with \
                 `WorkerBuilder::activity`)"
            );
        }
    }

    /// The failure recorded when an attempt of `activity_type` reaches a
    /// worker that has no registration for it. Retryable: a worker that
    /// has it may be running, or deployed later.
    pub fn not_registered(&self, activity_type: &str) -> Failure {
        Failure {
            kind: "not-registered".into(),
            message: format!(
                "no activity {activity_type:?} is registered on this worker (it runs: {})",
                self.activity_names()
            ),
            non_retryable: false,
            cause: FailureCause::NotRegistered,
            details: None,
        }
    }
}

/// What a name was registered as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Registered {
    /// A workflow type (`WorkerBuilder::workflow`).
    Workflow,
    /// An activity type (`WorkerBuilder::activity`).
    Activity,
}

impl fmt::Display for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Registered::Workflow => "workflow",
            Registered::Activity => "activity",
        })
    }
}

/// One name registered twice on a worker: the worker would run one of the
/// two and silently ignore the other, so it does not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationConflict {
    /// Whether two workflows or two activities share the name.
    pub kind: Registered,
    /// The name (`Workflow::NAME` or `Activity::NAME`).
    pub name: String,
    /// The Rust type registered first.
    pub first: &'static str,
    /// The Rust type registered again under the same name.
    pub second: &'static str,
}

impl std::error::Error for RegistrationConflict {}

impl fmt::Display for RegistrationConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let RegistrationConflict {
            kind,
            name,
            first,
            second,
        } = self;
        if first == second {
            write!(f, "{kind} {name:?} is registered twice (type {first})")
        } else {
            write!(
                f,
                "{kind} name {name:?} is registered by two types, {first} and {second}; \
                 each {kind} needs its own name"
            )
        }
    }
}
