//! A command whose payload is over the store's limit (a workflow result,
//! a continue-as-new input, an activity input) can never be recorded, so
//! retrying the activation cannot help: the run fails with a failure
//! that names the command, the size and the limit. That failure is
//! recorded, and the history replays whatever the limit is later.

use refrain::history_file::HistoryExport;
use refrain::{
    ClientError, Event, Query, RunStatus, Store, StoreConfig, Workflow, WorkflowContext,
    WorkflowError, PAYLOAD_TOO_LARGE_KIND,
};
use refrain_tests::activities::Reserve;
use refrain_tests::env::{init_tracing, result_of, store_path, within, TestEnv};
use refrain_tests::history::{assert_well_formed, kinds, strings};
use refrain_tests::ledger::Ledger;
use refrain_worker::{Replayer, Worker};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// The payload limit of the stores in this module: small, so that an
/// oversized payload costs little.
const LIMIT: usize = 16 * 1024;
/// A string whose encoding is well over [`LIMIT`].
const BIG: usize = 2 * LIMIT;

/// How many `reserve` steps a run has taken.
struct Steps;
impl Query for Steps {
    const NAME: &'static str = "steps";
    type Args = ();
    type Result = u32;
}

/// Takes `steps` reserve steps, then returns more than the store admits.
struct Inflate;
impl Workflow for Inflate {
    const NAME: &'static str = "inflate";
    type Input = u32;
    type Output = String;
    async fn run(ctx: WorkflowContext, steps: u32) -> Result<String, WorkflowError> {
        let done = Rc::new(Cell::new(0));
        let seen = done.clone();
        ctx.on_query::<Steps>(move |()| seen.get());
        for i in 0..steps {
            ctx.activity::<Reserve>(format!("item-{i}")).await?;
            done.set(i + 1);
        }
        Ok("x".repeat(BIG))
    }
}

/// Takes one reserve step, then continues as new with more than the store
/// admits. The next run would return the length of its input.
struct Relay;
impl Workflow for Relay {
    const NAME: &'static str = "relay";
    type Input = String;
    type Output = usize;
    async fn run(ctx: WorkflowContext, input: String) -> Result<usize, WorkflowError> {
        if !input.is_empty() {
            return Ok(input.len());
        }
        ctx.activity::<Reserve>("relay".into()).await?;
        ctx.continue_as_new::<Relay>("z".repeat(BIG)).await;
        unreachable!("continue_as_new never returns")
    }
}

/// Calls an activity with more input than the store admits.
struct Overfeed;
impl Workflow for Overfeed {
    const NAME: &'static str = "overfeed";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let first = ctx.activity::<Reserve>("small".into()).await?;
        let second = ctx.activity::<Reserve>("y".repeat(BIG)).await?;
        Ok(format!("{first} {second}"))
    }
}

/// Records a patch marker whose id is over the payload limit: an id, not
/// a payload, but the limit bounds it all the same.
struct LongPatch;
impl Workflow for LongPatch {
    const NAME: &'static str = "long-patch";
    type Input = ();
    type Output = bool;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<bool, WorkflowError> {
        Ok(ctx.patched(&"p".repeat(BIG)))
    }
}

fn config(limit: usize) -> StoreConfig {
    StoreConfig {
        max_payload_bytes: limit,
        ..StoreConfig::default()
    }
}

/// A fresh store whose payload limit is [`LIMIT`].
fn small_env() -> TestEnv {
    init_tracing();
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let store = Store::open(store_path(dir.path()), config(LIMIT)).expect("open store");
    let client = refrain::Client::new(store.clone());
    TestEnv { dir, store, client }
}

fn start_worker(store: &Store, ledger: &Ledger) -> Worker {
    Worker::builder(store.clone())
        .workflow::<Inflate>()
        .workflow::<Relay>()
        .workflow::<Overfeed>()
        .workflow::<LongPatch>()
        .activity(Reserve::new(ledger))
        .start()
}

/// The failure the run ended with, which must be the named payload one.
fn payload_failure(outcome: Result<impl std::fmt::Debug, ClientError>) -> refrain::Failure {
    match outcome {
        Err(ClientError::WorkflowFailed { failure, .. }) => {
            assert_eq!(failure.kind, PAYLOAD_TOO_LARGE_KIND, "{failure:?}");
            assert!(failure.non_retryable, "{failure:?}");
            failure
        }
        other => panic!("expected the run to fail as payload-too-large, got {other:?}"),
    }
}

/// Checks that the run's history ends with the recorded failure, in an
/// activation of its own, and that it replays through `replayer`.
async fn assert_recorded_and_replays(env: &TestEnv, workflow_id: &str, replayer: Replayer) {
    let history = env.client.history(workflow_id).await.unwrap();
    assert_well_formed(&history);
    let tail = kinds(&history[history.len() - 2..]);
    assert_eq!(tail, strings(&["ActivationStarted", "WorkflowFailed"]));
    match history.last() {
        Some(Event::WorkflowFailed { failure }) => {
            assert_eq!(failure.kind, PAYLOAD_TOO_LARGE_KIND)
        }
        other => panic!("history ends with {other:?}"),
    }
    assert_eq!(
        env.client.describe(workflow_id).await.unwrap().status(),
        RunStatus::Failed
    );
    let export = HistoryExport::from_store(&env.store, &workflow_id.into())
        .await
        .unwrap();
    let report = replayer.replay(&export).expect("the history replays");
    assert!(report.closed);
    assert_eq!(report.events, history.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_result_fails_the_run_by_name_and_the_history_replays() {
    let env = small_env();
    let ledger = Ledger::in_memory();
    let worker = start_worker(&env.store, &ledger);
    // At once (the first activation, started eagerly in this process), and
    // after two steps.
    let early = env.client.start::<Inflate>("inflate-0", 0).await.unwrap();
    let late = env.client.start::<Inflate>("inflate-2", 2).await.unwrap();
    for handle in [&early, &late] {
        let failure = payload_failure(result_of(handle).await);
        for named in [
            "WorkflowCompleted",
            "result",
            &format!("{LIMIT} bytes"),
            &format!("{} bytes", BIG + 2),
        ] {
            assert!(failure.message.contains(named), "{named:?}: {failure:?}");
        }
    }
    // The activation that took the second step's result and returned is
    // the one that could not be recorded: the history holds the run as it
    // stood before it, then the worker's closing activation.
    assert_eq!(
        kinds(&env.client.history("inflate-2").await.unwrap()),
        strings(&[
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled(reserve)",
            "ActivationStarted",
            "ActivityCompleted(reserve)",
            "ActivityScheduled(reserve)",
            "ActivationStarted",
            "WorkflowFailed",
        ])
    );
    for id in ["inflate-0", "inflate-2"] {
        assert_recorded_and_replays(&env, id, Replayer::new().workflow::<Inflate>()).await;
    }
    worker.shutdown(Duration::from_secs(1)).await;
    drop((early, late));

    // The failure is decided by what is recorded, not by the limit in
    // force: with a limit the result would now fit under, the closed run
    // still replays to its recorded end on a worker (as a query does),
    // one step taken.
    let dir = env.close();
    let store = Store::open(store_path(dir.path()), config(4 * BIG)).unwrap();
    let worker = start_worker(&store, &ledger);
    let client = refrain::Client::new(store.clone());
    let steps = within("the query", client.query::<Steps>("inflate-2", &()))
        .await
        .unwrap();
    assert_eq!(steps, 1);
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_continue_as_new_input_fails_the_run_by_name() {
    let env = small_env();
    let ledger = Ledger::in_memory();
    let worker = start_worker(&env.store, &ledger);
    let handle = env
        .client
        .start::<Relay>("relay", String::new())
        .await
        .unwrap();
    let failure = payload_failure(result_of(&handle).await);
    for named in ["WorkflowContinuedAsNew", "input", &format!("{LIMIT} bytes")] {
        assert!(failure.message.contains(named), "{named:?}: {failure:?}");
    }
    // No next run was started: the run that failed is the latest one.
    assert_eq!(
        env.client.describe("relay").await.unwrap().run,
        handle.run_id()
    );
    assert_recorded_and_replays(&env, "relay", Replayer::new().workflow::<Relay>()).await;
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_activity_input_fails_the_run_naming_the_call() {
    let env = small_env();
    let ledger = Ledger::in_memory();
    let worker = start_worker(&env.store, &ledger);
    let handle = env.client.start::<Overfeed>("overfeed", ()).await.unwrap();
    let failure = payload_failure(result_of(&handle).await);
    for named in ["ActivityScheduled", "cmd 2", "reserve", "input"] {
        assert!(failure.message.contains(named), "{named:?}: {failure:?}");
    }
    // The oversized call was never scheduled, so never ran.
    assert_eq!(
        ledger.of("overfeed", "reserve").len(),
        2,
        "start and end of the first call only"
    );
    assert_recorded_and_replays(&env, "overfeed", Replayer::new().workflow::<Overfeed>()).await;
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_patch_id_also_fails_the_run_by_name() {
    let env = small_env();
    let ledger = Ledger::in_memory();
    let worker = start_worker(&env.store, &ledger);
    let handle = env.client.start::<LongPatch>("patch", ()).await.unwrap();
    let failure = payload_failure(result_of(&handle).await);
    assert!(
        failure.message.contains("the patch id of PatchMarker"),
        "{failure:?}"
    );
    for named in [&format!("{BIG} bytes"), &format!("{LIMIT} bytes")] {
        assert!(failure.message.contains(named), "{named:?}: {failure:?}");
    }
    assert_recorded_and_replays(&env, "patch", Replayer::new().workflow::<LongPatch>()).await;
    worker.shutdown(Duration::from_secs(1)).await;
}
