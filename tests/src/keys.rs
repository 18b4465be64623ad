//! The idempotency-key crash workload: calls that are the first command of
//! a brand-new run, which is where a crash used to make one call run under
//! several keys (the run that scheduled it was lost with the process, and
//! the call was scheduled again in a run with another number).
//!
//! Each [`KeyChain`] workflow is started eagerly (its first activation runs
//! in the start's transaction), continues as new [`KEY_GENERATIONS`] − 1
//! times, and then starts a [`KeyLeaf`] child; every run begins with one
//! [`Touch`] call, so every call is `cmd 1` of a run made by an eager
//! start, a continue-as-new or a child start. A call is named by its input
//! (`<workflow id>/<generation>`), which stays the same whichever run
//! schedules it.
//!
//! `Touch` appends `<call> <idempotency key> <attempt>` to the key ledger
//! as its first act, with one `write(2)` to an `O_APPEND` file: a line
//! written before a SIGKILL is in the file afterwards (the page cache
//! survives the process), so the ledger shows every attempt that began.

use refrain::{
    async_trait, Activity, ActivityCall, ActivityContext, ActivityError, RetryPolicy, Workflow,
    WorkflowContext, WorkflowError,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many runs each chain goes through before its child.
pub const KEY_GENERATIONS: u32 = 30;

/// How many chains the workload runs at once.
pub const KEY_CHAINS: usize = 24;

/// The key ledger of a crash test.
pub fn key_ledger_file(dir: &Path) -> std::path::PathBuf {
    dir.join("keys.txt")
}

/// Where a chain is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainStep {
    /// The chain's workflow id (continue-as-new keeps it).
    pub id: String,
    /// This run's generation, from 0.
    pub generation: u32,
}

/// The one call of every run of the workload: `Touch` for `call`, retried
/// quickly so that the test's rounds stay short.
fn touch(ctx: &WorkflowContext, call: String) -> ActivityCall<Touch> {
    ctx.activity::<Touch>(call)
        .start_to_close(Duration::from_secs(5))
        .retry(
            RetryPolicy::exponential()
                .initial_interval(Duration::from_millis(20))
                .max_interval(Duration::from_millis(100)),
        )
}

/// One call per run, then continue as new, then a child.
pub struct KeyChain;

impl Workflow for KeyChain {
    const NAME: &'static str = "key-chain";
    type Input = ChainStep;
    type Output = String;

    async fn run(ctx: WorkflowContext, step: ChainStep) -> Result<String, WorkflowError> {
        touch(&ctx, format!("{}/{}", step.id, step.generation)).await?;
        if step.generation + 1 < KEY_GENERATIONS {
            ctx.continue_as_new::<KeyChain>(ChainStep {
                generation: step.generation + 1,
                ..step
            })
            .await;
            unreachable!("continue_as_new never returns");
        }
        let leaf = ctx
            .child::<KeyLeaf>(format!("{}-leaf", step.id), step.id.clone())
            .await?;
        Ok(format!("{}:done:{leaf}", step.id))
    }
}

/// The child: one call, as the first command of the child's run.
pub struct KeyLeaf;

impl Workflow for KeyLeaf {
    const NAME: &'static str = "key-leaf";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, parent: String) -> Result<String, WorkflowError> {
        touch(&ctx, format!("{parent}-leaf/0")).await?;
        Ok("leaf".to_owned())
    }
}

/// Records that an attempt of a call began, under which key.
#[derive(Clone)]
pub struct Touch {
    file: Arc<Mutex<File>>,
}

impl Touch {
    /// A `Touch` that appends to `path`.
    ///
    /// # Errors
    /// If the file cannot be opened for appending.
    pub fn to_file(path: &Path) -> io::Result<Touch> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Touch {
            file: Arc::new(Mutex::new(file)),
        })
    }
}

#[async_trait]
impl Activity for Touch {
    const NAME: &'static str = "touch";
    type Input = String;
    type Output = ();

    async fn run(&self, ctx: ActivityContext, call: String) -> Result<(), ActivityError> {
        let line = format!("{call} {} {}\n", ctx.idempotency_key(), ctx.attempt());
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(line.as_bytes())
            .map_err(ActivityError::retryable)
    }
}

/// One line of the key ledger.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyEntry {
    /// The call (`<workflow id>/<generation>`).
    pub call: String,
    /// The idempotency key the attempt saw.
    pub key: String,
    /// The attempt number it saw.
    pub attempt: u32,
}

/// Reads the key ledger. A torn last line (the process was killed inside
/// the write) is ignored.
///
/// # Errors
/// If the file cannot be read.
pub fn read_key_ledger(path: &Path) -> io::Result<Vec<KeyEntry>> {
    let text = std::fs::read_to_string(path)?;
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    Ok(complete
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (call, key, attempt) = (parts.next()?, parts.next()?, parts.next()?);
            Some(KeyEntry {
                call: call.to_owned(),
                key: key.to_owned(),
                attempt: attempt.parse().ok()?,
            })
        })
        .collect())
}

/// The keys each call ran under, for calls that ran under more than one.
pub fn calls_with_several_keys(entries: &[KeyEntry]) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in entries {
        keys.entry(e.call.clone())
            .or_default()
            .insert(e.key.clone());
    }
    keys.retain(|_, k| k.len() > 1);
    keys
}

/// Attempts (key and number) that began more than once.
pub fn attempts_run_twice(entries: &[KeyEntry]) -> Vec<(String, u32)> {
    let mut seen = BTreeSet::new();
    let mut twice = Vec::new();
    for e in entries {
        if !seen.insert((e.key.clone(), e.attempt)) {
            twice.push((e.key.clone(), e.attempt));
        }
    }
    twice
}
