//! [`Saga`]: undo steps registered as a process advances, run newest first
//! when it has to back out.

use crate::activity::Activity;
use crate::commands::ActivityCall;
use crate::context::WorkflowContext;
use crate::error::WorkflowError;
use crate::payload;
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use refrain_history::{ActivityOptions, Callsite, Failure, RetryPolicy};
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::time::Duration;

/// An undo step, given the workflow's context and the options set on the
/// step (used by activity steps, ignored by closures).
type Undo = Box<
    dyn FnOnce(WorkflowContext, ActivityOptions) -> LocalBoxFuture<'static, Result<(), Failure>>,
>;

/// One registered undo step.
struct Step {
    name: String,
    undo: Undo,
    options: ActivityOptions,
}

/// Compensations of the steps completed so far.
///
/// After each step that changed something outside, register how to undo
/// it; when a later step fails (or the workflow is cancelled), run them
/// all with [`compensate`](Self::compensate): newest first, each its own
/// activity call with its own retry policy, continuing past any that fail.
///
/// Most undo steps are one activity call:
/// [`add_activity`](Self::add_activity) registers it with its input, and
/// the call is made only when compensating.
///
/// ```
/// use refrain::{Activity, ActivityContext, ActivityError, RetryPolicy, Saga,
///               Workflow, WorkflowContext, WorkflowError};
/// # macro_rules! activity {
/// #     ($name:ident, $key:literal, $in:ty => $out:ty) => {
/// #         struct $name;
/// #         #[refrain::activity]
/// #         impl Activity for $name {
/// #             const NAME: &'static str = $key;
/// #             type Input = $in;
/// #             type Output = $out;
/// #             async fn run(&self, _: ActivityContext, _: $in) -> Result<$out, ActivityError> {
/// #                 unimplemented!()
/// #             }
/// #         }
/// #     };
/// # }
/// # activity!(OpenAccount, "open-account", String => String);
/// # activity!(CloseAccount, "close-account", String => ());
/// # activity!(IssueCard, "issue-card", String => String);
///
/// struct Provision;
/// impl Workflow for Provision {
///     const NAME: &'static str = "provision";
///     type Input = String;
///     type Output = String;
///     async fn run(ctx: WorkflowContext, applicant: String) -> Result<String, WorkflowError> {
///         let mut saga = Saga::new();
///         let account = ctx.activity::<OpenAccount>(applicant).await?;
///         saga.add_activity::<CloseAccount>(account.clone())
///             .retry(RetryPolicy::exponential().max_attempts(10));
///         match ctx.activity::<IssueCard>(account).await {
///             Ok(card) => Ok(card),
///             Err(e) => {
///                 let report = saga.compensate(&ctx).await; // CloseAccount runs here
///                 Err(WorkflowError::new("provisioning", format!("{e}; {report}")))
///             }
///         }
///     }
/// }
/// ```
///
/// The history records a compensation as the ordinary activity call it is;
/// the report [`compensate`](Self::compensate) returns says which steps
/// were compensations.
///
/// Compensation after cancellation: a workflow that watches for it
/// (`ctx.or_cancelled`, `ctx.cancelled`) keeps running after the request,
/// and the activities it starts then run to completion, so
/// `saga.compensate(&ctx)` works there too. (A workflow that never looks
/// at cancellation is stopped where it waits, and compensates nothing.)
#[derive(Default)]
pub struct Saga {
    steps: Vec<Step>,
}

/// One compensation that failed for good.
#[derive(Clone, Debug, PartialEq)]
pub struct CompensationFailure {
    /// The step's name.
    pub step: String,
    /// Why it failed.
    pub failure: Failure,
}

/// What [`Saga::compensate`] did, in the order it did it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompensationReport {
    /// Steps undone, newest first.
    pub compensated: Vec<String>,
    /// Steps whose compensation failed (after its retries).
    pub failed: Vec<CompensationFailure>,
}

impl CompensationReport {
    /// Whether every compensation succeeded.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

impl fmt::Display for CompensationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.compensated.is_empty() {
            write!(f, "nothing compensated")?;
        } else {
            write!(f, "compensated: {}", self.compensated.join(", then "))?;
        }
        for failed in &self.failed {
            write!(
                f,
                "; compensation {} FAILED: {}",
                failed.step, failed.failure
            )?;
        }
        Ok(())
    }
}

impl Saga {
    /// A saga with nothing to undo yet.
    pub fn new() -> Self {
        Saga::default()
    }

    /// Registers an undo step, named `compensation <n>`; see
    /// [`add_named`](Self::add_named).
    pub fn add<F, Fut, E>(&mut self, undo: F)
    where
        F: FnOnce(WorkflowContext) -> Fut + 'static,
        Fut: Future<Output = Result<(), E>> + 'static,
        E: Into<WorkflowError>,
    {
        let name = format!("compensation {}", self.steps.len() + 1);
        self.add_named(name, undo);
    }

    /// Registers an undo step under `name` (used in the report). `undo`
    /// runs only if [`compensate`](Self::compensate) is called, with the
    /// workflow's context; it typically awaits one activity with its own
    /// retry policy (`.await.map(drop)` to discard the result).
    pub fn add_named<F, Fut, E>(&mut self, name: impl Into<String>, undo: F)
    where
        F: FnOnce(WorkflowContext) -> Fut + 'static,
        Fut: Future<Output = Result<(), E>> + 'static,
        E: Into<WorkflowError>,
    {
        let undo: Undo = Box::new(move |ctx, _| {
            let fut = undo(ctx);
            async move { fut.await.map_err(|e| e.into().into_failure()) }.boxed_local()
        });
        self.steps.push(Step {
            name: name.into(),
            undo,
            options: ActivityOptions::default(),
        });
    }

    /// Registers an undo step that calls activity `A` with `input`, named
    /// after the activity (`A::NAME`). Nothing is scheduled now: when
    /// [`compensate`](Self::compensate) runs, it calls
    /// `ctx.activity::<A>(input)` with the step's options (by default
    /// [`ActivityOptions::default`]), set on the returned step:
    ///
    /// `saga.add_activity::<CloseAccount>(account).retry(policy);`
    ///
    /// The activity's output is discarded; a failure after its retries is
    /// reported in the [`CompensationReport`].
    #[track_caller]
    pub fn add_activity<A: Activity>(&mut self, input: A::Input) -> CompensationStep<'_> {
        // Recorded as the call's source location: where the step was
        // registered says more than this file would.
        let callsite = Callsite::from_location(Location::caller());
        let undo: Undo = Box::new(move |ctx, options| {
            let input = payload::encode(&format!("{} input", A::NAME), &input);
            let call =
                ActivityCall::<A>::schedule(ctx.state().clone(), input, callsite).options(options);
            async move { call.await.map(drop).map_err(|e| e.failure) }.boxed_local()
        });
        self.steps.push(Step {
            name: A::NAME.to_owned(),
            undo,
            options: ActivityOptions::default(),
        });
        let last = self.steps.len() - 1;
        CompensationStep {
            step: &mut self.steps[last],
        }
    }

    /// How many steps would be undone.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there is nothing to undo.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Forgets every registered step: past a point of no return (the goods
    /// have shipped) nothing before it is undone any more.
    pub fn clear(&mut self) {
        self.steps.clear();
    }

    /// Runs the registered compensations, newest first, one after the
    /// other, continuing past failures, and returns what happened. The
    /// saga is empty afterwards.
    pub async fn compensate(&mut self, ctx: &WorkflowContext) -> CompensationReport {
        let mut report = CompensationReport::default();
        while let Some(Step {
            name: step,
            undo,
            options,
        }) = self.steps.pop()
        {
            match undo(ctx.clone(), options).await {
                Ok(()) => report.compensated.push(step),
                Err(failure) => {
                    ctx.log_warn(format!("compensation {step} failed: {failure}"));
                    report.failed.push(CompensationFailure { step, failure });
                }
            }
        }
        report
    }
}

impl fmt::Debug for Saga {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Saga")
            .field(
                "steps",
                &self
                    .steps
                    .iter()
                    .map(|step| step.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// An undo step registered by [`Saga::add_activity`], whose options can
/// still be set. They take effect when the saga compensates.
pub struct CompensationStep<'a> {
    step: &'a mut Step,
}

impl CompensationStep<'_> {
    /// Names the step in the [`CompensationReport`] (default: the
    /// activity's name).
    pub fn named(self, name: impl Into<String>) -> Self {
        self.step.name = name.into();
        self
    }

    /// Longest single attempt of the compensating activity.
    pub fn start_to_close(self, d: Duration) -> Self {
        self.step.options.start_to_close = Some(d);
        self
    }

    /// Longest time for all its attempts together.
    pub fn schedule_to_close(self, d: Duration) -> Self {
        self.step.options.schedule_to_close = Some(d);
        self
    }

    /// How its failed attempts are retried.
    pub fn retry(self, policy: RetryPolicy) -> Self {
        self.step.options.retry = policy;
        self
    }

    /// Replaces all its options at once.
    pub fn options(self, options: ActivityOptions) -> Self {
        self.step.options = options;
        self
    }
}

impl fmt::Debug for CompensationStep<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompensationStep")
            .field("name", &self.step.name)
            .field("options", &self.step.options)
            .finish()
    }
}
