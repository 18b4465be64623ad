//! The traits workflow authors implement.

use crate::context::WorkflowContext;
use crate::error::WorkflowError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;

/// A durable workflow: deterministic orchestration code that is replayed
/// from its history after a crash, a deploy or a month-long wait.
///
/// `run` is an ordinary `async fn`. It may be re-executed many times, so it
/// must reach every decision only through `ctx` (see [`WorkflowContext`] for
/// the rules and their replay-safe replacements). Its future need not be
/// `Send`: a run is always polled on one thread.
///
/// ```
/// use refrain::{Workflow, WorkflowContext, WorkflowError};
/// use std::time::Duration;
///
/// struct Reminder;
/// impl Workflow for Reminder {
///     const NAME: &'static str = "reminder";
///     type Input = String;
///     type Output = String;
///     async fn run(ctx: WorkflowContext, who: String) -> Result<String, WorkflowError> {
///         ctx.sleep(Duration::from_secs(24 * 3600)).await; // durable: survives restarts
///         Ok(format!("reminded {who}"))
///     }
/// }
/// ```
pub trait Workflow: 'static {
    /// Name under which the workflow is registered and recorded. Changing
    /// it orphans running workflows.
    const NAME: &'static str;
    /// Input, recorded in `WorkflowStarted`.
    type Input: Serialize + DeserializeOwned + 'static;
    /// Result, recorded in `WorkflowCompleted`.
    type Output: Serialize + DeserializeOwned + 'static;

    /// The workflow body.
    fn run(
        ctx: WorkflowContext,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, WorkflowError>> + 'static;
}

/// A typed signal: a named message that people or systems send to a
/// running workflow (`approve`, `payment-received`).
///
/// Derive it: the name is the type's in kebab case, or
/// `#[signal(name = "..")]`.
///
/// ```
/// use refrain::Signal;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Signal)]
/// struct Approval { approver: String, approved: bool }
///
/// assert_eq!(Approval::NAME, "approval");
/// ```
pub trait Signal: Serialize + DeserializeOwned + 'static {
    /// Name the signal is sent and recorded under.
    const NAME: &'static str;
}
