//! Crash-point exploration: a workflow run once per durable boundary,
//! killed right after it, and resumed.
//!
//! # How
//!
//! A first run, undisturbed, gives the expected outcome and the number of
//! transactions the store commits for it, `n` (the start, each
//! activation's commit, each completion folded or recorded, each timer
//! fired: whatever the worker and the clock make durable). Then, for each
//! `k` in `0..n`, a fresh environment whose storage refuses every write
//! after its `k`th commit (`MemoryStorage::crash_after_commits`): the
//! process is dead from then on, whatever it still holds in memory. Once
//! the refusal happens, the environment drops the worker and the store,
//! lets writes through again, and opens the store over what was committed,
//! as a restarted process would; a start the crash refused is made again,
//! as its caller would retry it. The run goes on to its end.
//!
//! Each variant must end as the first run did (the same result, or the
//! same failure), with every activity's outcome recorded at most once in
//! each run's history. The first variant that does not is reported with
//! its boundary `k` and what differed.
//!
//! Activities may run more than once across a crash (at least once is the
//! contract); the activities and mocks given to the exploration must give
//! the same result when repeated, as real ones given an idempotency key
//! do.
//!
//! Variants run several at once (each has its own storage, clock and
//! worker, and mostly waits on its activities); the lowest boundary that
//! diverged is reported.
//!
//! Commits are counted across the store, so a concurrent batch may fold
//! two operations into one transaction in one variant and not another;
//! a variant that commits less than the first run simply ends without a
//! crash. Every boundary of the first run is still one variant.

use crate::env::{TestEnv, TestError, TestHandle};
use futures::stream::{self, StreamExt};
use refrain::{ClientError, Event, RunFilter, Workflow};
use refrain_history::{CommandSeq, Timestamp};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Variants run at once: each mostly waits for its activities.
const AT_ONCE: usize = 16;

/// How a run ended, comparable across variants.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Completed(serde_json::Value),
    Failed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Completed(v) => write!(f, "completed with {v}"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// Why [`explore_crashes`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExploreError {
    /// The workflow's input cannot be encoded.
    Input(serde_json::Error),
    /// The undisturbed run did not end (blocked, its task failing) or its
    /// store failed.
    Baseline(TestError),
    /// A variant crashed after commit `boundary` did not end as the
    /// undisturbed run did, or recorded an activity outcome twice.
    Diverged {
        /// Commits made before the crash (`0`: the start itself was
        /// refused).
        boundary: u64,
        /// How many boundaries the undisturbed run crossed.
        of: u64,
        /// What happened in this variant.
        what: String,
    },
}

impl fmt::Display for ExploreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExploreError::Input(e) => write!(f, "cannot encode the workflow input: {e}"),
            ExploreError::Baseline(e) => write!(f, "the run without a crash did not end: {e}"),
            ExploreError::Diverged { boundary, of, what } => {
                write!(f, "crash after durable boundary {boundary} of {of}: {what}")
            }
        }
    }
}

impl std::error::Error for ExploreError {}

/// Runs workflow `W` with `input` once undisturbed and then once per
/// durable boundary of that run, crashing right after it and resuming
/// (see the module documentation above for how), and returns how many
/// boundaries it explored.
///
/// `setup` registers on each fresh environment what the workflow needs
/// (activities or mocks, child workflows); `W` itself is registered.
/// Every variant's clock starts at the same time.
///
/// # Errors
/// `Diverged`, naming the boundary and what differed, for the first
/// variant that ended otherwise than the undisturbed run or recorded an
/// activity outcome twice; `Baseline` if the undisturbed run did not end.
pub async fn explore_crashes<W, S>(input: W::Input, setup: S) -> Result<usize, ExploreError>
where
    W: Workflow,
    S: Fn(&TestEnv),
{
    let input = serde_json::to_value(&input).map_err(ExploreError::Input)?;
    let start = Timestamp::now();
    let id = format!("explored-{}", W::NAME);
    let fresh = || async {
        let env = TestEnv::starting_at(start).await;
        env.register_workflow::<W>();
        setup(&env);
        env
    };

    let env = fresh().await;
    let before = commits_so_far(&env).await.map_err(ExploreError::Baseline)?;
    let expected = run_to_end::<W>(&env, &id, &input)
        .await
        .map_err(ExploreError::Baseline)?;
    let of = env.storage().commits() - before;
    env.shutdown().await;

    let variant = |boundary: u64| {
        let (fresh, expected, id, input) = (&fresh, &expected, &id, &input);
        async move {
            let diverged = |what: String| ExploreError::Diverged { boundary, of, what };
            let env = fresh().await;
            commits_so_far(&env)
                .await
                .map_err(|e| diverged(e.to_string()))?;
            env.storage().crash_after_commits(boundary);
            let checked = match crash_and_resume::<W>(&env, id, input, boundary).await {
                Err(e) => Err(diverged(format!("the run did not end: {e}"))),
                Ok(got) if got != *expected => Err(diverged(format!(
                    "the run {got}, where the run without a crash {expected}"
                ))),
                Ok(_) => match recorded_twice(&env).await {
                    Some(twice) => Err(diverged(twice)),
                    None => Ok(()),
                },
            };
            env.shutdown().await;
            checked
        }
    };
    // Variants are independent (each its own storage and clock) and
    // mostly wait on activities, so several run at once; the lowest
    // boundary that diverged is the one reported.
    let mut first: Option<ExploreError> = None;
    let mut outcomes = stream::iter(0..of).map(variant).buffer_unordered(AT_ONCE);
    while let Some(outcome) = outcomes.next().await {
        if let Err(e) = outcome {
            first = match first {
                Some(f) if boundary_of(&f) <= boundary_of(&e) => Some(f),
                _ => Some(e),
            };
        }
    }
    if let Some(e) = first {
        return Err(e);
    }
    Ok(usize::try_from(of).unwrap_or(usize::MAX))
}

fn boundary_of(e: &ExploreError) -> u64 {
    match e {
        ExploreError::Diverged { boundary, .. } => *boundary,
        _ => 0,
    }
}

/// Opens the environment's store (which commits nothing by itself) and
/// says how many commits its storage has seen.
async fn commits_so_far(env: &TestEnv) -> Result<u64, TestError> {
    env.store().await?;
    Ok(env.storage().commits())
}

/// Starts the run (unless a run of `id` exists) and waits for its end.
async fn run_to_end<W: Workflow>(
    env: &TestEnv,
    id: &str,
    input: &serde_json::Value,
) -> Result<Outcome, TestError> {
    let client = env.client().await?;
    let exists = client.describe(id).await.is_ok();
    drop(client);
    let handle = if exists {
        env.handle::<W>(id)
    } else {
        let input: W::Input =
            serde_json::from_value(input.clone()).map_err(|e| TestError::Backend(Box::new(e)))?;
        env.start::<W>(id, input).await?
    };
    outcome_of(env.result(&handle).await)
}

/// Runs until the storage refuses a write (or the run ends first), then
/// restarts and runs to the end.
async fn crash_and_resume<W: Workflow>(
    env: &TestEnv,
    id: &str,
    input: &serde_json::Value,
    boundary: u64,
) -> Result<Outcome, TestError> {
    let storage = env.storage().clone();
    let crashed = async {
        while !storage.crashed() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let ended = tokio::select! {
        biased;
        _ = crashed => None,
        // Errors here are the crash's: the dead process's start or
        // commits refused.
        outcome = run_to_end::<W>(env, id, input) => outcome.ok(),
    };
    if let Some(outcome) = ended {
        if !storage.crashed() {
            // This variant committed less than the undisturbed run: it
            // ended before its boundary.
            tracing::debug!(boundary, "the run ended before the crash point");
            return Ok(outcome);
        }
    }
    env.stop().await?;
    storage.disarm();
    run_to_end::<W>(env, id, input).await
}

fn outcome_of<T: serde::Serialize>(result: Result<T, TestError>) -> Result<Outcome, TestError> {
    match result {
        Ok(out) => Ok(Outcome::Completed(
            serde_json::to_value(&out).unwrap_or_else(|e| serde_json::Value::String(e.to_string())),
        )),
        Err(TestError::Client(ClientError::WorkflowFailed { failure, .. })) => Ok(Outcome::Failed(
            format!("{}: {}", failure.kind, failure.message),
        )),
        Err(e) => Err(e),
    }
}

/// The first activity whose outcome one run's history records twice.
async fn recorded_twice(env: &TestEnv) -> Option<String> {
    let store = env.store().await.ok()?;
    let runs = store.list_runs(&RunFilter::default()).ok()?;
    for run in runs {
        let Ok(history) = store.read_history(run.run) else {
            return Some(format!("the history of run {} cannot be read", run.run));
        };
        let mut outcomes: HashMap<CommandSeq, u32> = HashMap::new();
        for event in &history {
            if let Event::ActivityCompleted { cmd, .. } | Event::ActivityFailed { cmd, .. } = event
            {
                let n = outcomes.entry(*cmd).or_default();
                *n += 1;
                if *n > 1 {
                    return Some(format!(
                        "run {} of {} records the outcome of activity {cmd:?} {n} times",
                        run.run, run.workflow_id
                    ));
                }
            }
        }
    }
    None
}

impl TestEnv {
    /// A handle to the latest run of `id`, started before (a restart's
    /// caller).
    pub(crate) fn handle<W: Workflow>(&self, id: &str) -> TestHandle<W> {
        TestHandle::of(id.into())
    }
}
