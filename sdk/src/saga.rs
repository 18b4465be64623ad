//! [`Saga`]: undo steps registered as a process advances, run newest first
//! when it has to back out.

use crate::context::WorkflowContext;
use crate::error::WorkflowError;
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use refrain_history::Failure;
use std::fmt;
use std::future::Future;

type Undo = Box<dyn FnOnce(WorkflowContext) -> LocalBoxFuture<'static, Result<(), Failure>>>;

/// Compensations of the steps completed so far.
///
/// After each step that changed something outside, register how to undo
/// it; when a later step fails (or the workflow is cancelled), run them
/// all with [`compensate`](Self::compensate): newest first, each its own
/// activity call with its own retry policy, continuing past any that fail.
///
/// ```ignore
/// let mut saga = Saga::new();
/// let account = ctx.activity::<OpenAccount>(app.clone()).await?;
/// saga.add_named("close account", move |ctx| async move {
///     ctx.activity::<CloseAccount>(account).retry(RetryPolicy::exponential()).await.map(drop)
/// });
/// if let Err(e) = ctx.activity::<IssueCard>(app).await {
///     let report = saga.compensate(&ctx).await;   // CloseAccount runs here
///     return Err(WorkflowError::new("provisioning", format!("{e}; {report}")));
/// }
/// ```
///
/// Compensation after cancellation: a workflow that watches for it
/// (`ctx.or_cancelled`, `ctx.cancelled`) keeps running after the request,
/// and the activities it starts then run to completion, so
/// `saga.compensate(&ctx)` works there too. (A workflow that never looks
/// at cancellation is stopped where it waits, and compensates nothing.)
#[derive(Default)]
pub struct Saga {
    steps: Vec<(String, Undo)>,
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
        let undo: Undo = Box::new(move |ctx| {
            let fut = undo(ctx);
            async move { fut.await.map_err(|e| e.into().into_failure()) }.boxed_local()
        });
        self.steps.push((name.into(), undo));
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
        while let Some((step, undo)) = self.steps.pop() {
            match undo(ctx.clone()).await {
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
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
