//! What the crash tests run in the `crash-child` process, and the files and
//! stdout lines through which parent and child talk.
//!
//! Layout of a crash test's directory:
//!
//! | path | written by | content |
//! |---|---|---|
//! | `db/` | child | the sled store |
//! | `ledger.txt` | child (activities) | one fsync'd line per attempt start and end |
//! | `signal-requests/<id>` | `crash-child signal` | the value to send as [`Proceed`] |
//! | `signal-acks/<id>` | child | `ok` once the signal is durable, or the error |
//! | `hold-<id>` | parent | while present, that workflow cannot get past step 1 |
//! | `child-<n>.log` | child (stderr) | logs of the n-th child process |
//!
//! Lines the child prints on stdout:
//!
//! ```text
//! READY                                   every workflow is started (or attached to)
//! STATE <id> seq=<n> inbox=<n> failing=<0|1> kinds=<k>,<k>,...
//!                                         the run changed; printed only after a flush,
//!                                         so the parent sees durable state only
//! RESULT <id> <json>                      the run completed with this result
//! ALL-DONE                                every run completed
//! ```

use crate::ledger::{Ledger, Phase};
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, RetryPolicy, Signal, Store, Workflow,
    WorkflowContext, WorkflowError,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Start-to-close timeout of crash-test activities unless a plan says
/// otherwise. An attempt that was running in a killed process does not
/// wait for it: it is retried as soon as the next process opens the store.
pub const START_TO_CLOSE: Duration = Duration::from_secs(1);

/// Start-to-close timeout of the `mid-activity` scenario: far longer than
/// any wait of the tests, so the killed attempt can only have been retried
/// because the store was reopened, never because its deadline passed.
pub const LONG_START_TO_CLOSE: Duration = Duration::from_secs(3_600);

/// Marker printed once every workflow is started.
pub const READY: &str = "READY";
/// Marker printed once every workflow completed.
pub const ALL_DONE: &str = "ALL-DONE";

/// The sled store of a crash test.
pub fn db_dir(dir: &Path) -> PathBuf {
    dir.join("db")
}

/// The ledger file of a crash test.
pub fn ledger_file(dir: &Path) -> PathBuf {
    dir.join("ledger.txt")
}

/// Where `crash-child signal` leaves signal requests.
pub fn requests_dir(dir: &Path) -> PathBuf {
    dir.join("signal-requests")
}

/// Where the running child acknowledges them.
pub fn acks_dir(dir: &Path) -> PathBuf {
    dir.join("signal-acks")
}

/// The file that holds workflow `id` after its first step.
pub fn hold_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("hold-{id}"))
}

/// One workflow of a crash scenario: which states it passes through, so
/// that a kill can land in each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrashPlan {
    /// Fixed workflow id, so that a restarted child attaches to the run.
    pub id: String,
    /// How long the first attempt of step 1 sleeps (later attempts do not).
    pub slow_first_attempt_ms: u64,
    /// Start-to-close timeout of both steps, in milliseconds.
    pub start_to_close_ms: u64,
    /// How long the first attempt of step 2 sleeps.
    pub slow_second_step_ms: u64,
    /// A durable timer between the two steps.
    pub timer_ms: Option<u64>,
    /// Whether the workflow waits for a [`Proceed`] signal before step 2.
    pub wait_signal: bool,
    /// While this file exists, the activation that receives step 1's result
    /// panics, so that the result stays in the inbox, recorded but not yet
    /// applied.
    pub hold_file: Option<String>,
}

impl CrashPlan {
    /// A plan that runs its two steps and nothing else.
    pub fn plain(id: &str) -> Self {
        CrashPlan {
            id: id.to_owned(),
            slow_first_attempt_ms: 0,
            start_to_close_ms: START_TO_CLOSE.as_millis() as u64,
            slow_second_step_ms: 0,
            timer_ms: None,
            wait_signal: false,
            hold_file: None,
        }
    }

    /// The result the workflow must return, given the signal it received.
    pub fn expected_result(&self, signal: Option<&str>) -> String {
        format!(
            "{id}:step-1|{}|{id}:step-2",
            signal.unwrap_or("-"),
            id = self.id
        )
    }
}

/// The workflows of a named scenario run in test directory `dir`.
///
/// # Panics
/// For an unknown name.
pub fn scenario(name: &str, dir: &Path) -> Vec<CrashPlan> {
    match name {
        "mid-activity" => vec![CrashPlan {
            slow_first_attempt_ms: 2 * LONG_START_TO_CLOSE.as_millis() as u64,
            start_to_close_ms: LONG_START_TO_CLOSE.as_millis() as u64,
            ..CrashPlan::plain("wf-a")
        }],
        "result-held" => vec![CrashPlan {
            hold_file: Some(hold_file(dir, "wf-b").display().to_string()),
            ..CrashPlan::plain("wf-b")
        }],
        "timer" => vec![CrashPlan {
            timer_ms: Some(500),
            ..CrashPlan::plain("wf-c")
        }],
        "signal" => vec![CrashPlan {
            wait_signal: true,
            ..CrashPlan::plain("wf-d")
        }],
        // Staggered so that any kill finds some runs mid-activity, some on
        // a timer, some waiting for a signal and some between activations.
        "loop" => (1..=8u64)
            .map(|i| CrashPlan {
                slow_first_attempt_ms: [0, 150, 300, 450, 600, 1_500][i as usize % 6],
                slow_second_step_ms: 100 * (i % 3),
                timer_ms: [None, Some(100), Some(250), Some(400), Some(700)][i as usize % 5],
                wait_signal: i % 4 == 0,
                ..CrashPlan::plain(&format!("loop-{i}"))
            })
            .collect(),
        other => panic!("unknown crash scenario {other:?}"),
    }
}

/// The signal crash workflows wait for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proceed(pub String);

impl Signal for Proceed {
    const NAME: &'static str = "proceed";
}

fn step_retry() -> RetryPolicy {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(50))
        .max_interval(Duration::from_millis(200))
}

/// The workflow of every crash test: step 1, an optional timer, an optional
/// signal, step 2.
pub struct CrashFlow;

impl Workflow for CrashFlow {
    const NAME: &'static str = "crash-flow";
    type Input = CrashPlan;
    type Output = String;

    async fn run(ctx: WorkflowContext, plan: CrashPlan) -> Result<String, WorkflowError> {
        let one = ctx
            .activity::<StepOne>(plan.slow_first_attempt_ms)
            .start_to_close(Duration::from_millis(plan.start_to_close_ms))
            .retry(step_retry())
            .await?;
        if let Some(hold) = &plan.hold_file {
            // Deliberately not replay-safe: a panic commits nothing, which
            // is the point. The file is gone before any replay that counts.
            if Path::new(hold).exists() {
                panic!("held by {hold}");
            }
        }
        if let Some(ms) = plan.timer_ms {
            ctx.sleep(Duration::from_millis(ms)).await;
        }
        let signal = if plan.wait_signal {
            ctx.wait_signal::<Proceed>().await?.0
        } else {
            "-".to_owned()
        };
        let two = ctx
            .activity::<StepTwo>(plan.slow_second_step_ms)
            .start_to_close(Duration::from_millis(plan.start_to_close_ms))
            .retry(step_retry())
            .await?;
        Ok(format!("{one}|{signal}|{two}"))
    }
}

/// Runs one attempt of a crash-test step: makes the claim durable, writes
/// the start line, sleeps on a slow first attempt, writes the end line.
async fn run_step(
    ledger: &Ledger,
    store: &Store,
    ctx: &ActivityContext,
    name: &str,
    slow_first_attempt_ms: u64,
) -> Result<String, ActivityError> {
    // A claim is not flushed by itself. Flushing before the start line makes
    // "the ledger shows the attempt" imply "the store knows it is running",
    // so a kill after the line leaves an attempt that must time out.
    store.durable().await.map_err(ActivityError::retryable)?;
    ledger.record(ctx, Phase::Start);
    if ctx.attempt() == 1 && slow_first_attempt_ms > 0 {
        tokio::time::sleep(Duration::from_millis(slow_first_attempt_ms)).await;
    }
    ledger.record(ctx, Phase::End);
    Ok(format!("{}:{name}", ctx.workflow_id()))
}

/// Step 1 of [`CrashFlow`]; input: how long the first attempt sleeps (ms).
pub struct StepOne {
    /// Where attempts are recorded.
    pub ledger: Ledger,
    /// The store, to flush the claim before the attempt shows.
    pub store: Store,
}

#[async_trait]
impl Activity for StepOne {
    const NAME: &'static str = "step-1";
    type Input = u64;
    type Output = String;

    async fn run(&self, ctx: ActivityContext, slow_ms: u64) -> Result<String, ActivityError> {
        run_step(&self.ledger, &self.store, &ctx, Self::NAME, slow_ms).await
    }
}

/// Step 2 of [`CrashFlow`]; input: how long the first attempt sleeps (ms).
pub struct StepTwo {
    /// Where attempts are recorded.
    pub ledger: Ledger,
    /// The store, to flush the claim before the attempt shows.
    pub store: Store,
}

#[async_trait]
impl Activity for StepTwo {
    const NAME: &'static str = "step-2";
    type Input = u64;
    type Output = String;

    async fn run(&self, ctx: ActivityContext, slow_ms: u64) -> Result<String, ActivityError> {
        run_step(&self.ledger, &self.store, &ctx, Self::NAME, slow_ms).await
    }
}
