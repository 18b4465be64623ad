//! User code that panics and bytes that rot: a panicking workflow commits
//! nothing and is retried until fixed, a panicking activity is one failed
//! attempt, and a corrupt history stops only the run it belongs to.

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, ClientError, FailureCause, RetryPolicy,
    RunStatus, Signal, StoreError, Workflow, WorkflowContext, WorkflowError,
};
use refrain_history::keys;
use refrain_tests::activities::{Gate, Reserve};
use refrain_tests::env::{eventually, result_of, task_failure, TestEnv};
use refrain_tests::history::{assert_well_formed, completions, kinds, strings};
use refrain_tests::ledger::{attempts, Ledger, Phase};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// Whether the "bug" in [`Fragile`] has been fixed yet.
static FRAGILE_FIXED: AtomicBool = AtomicBool::new(false);
/// How often [`Fragile`] panicked.
static FRAGILE_PANICS: AtomicU32 = AtomicU32::new(0);

/// Panics after its activity until the test "deploys a fix".
struct Fragile;

impl Workflow for Fragile {
    const NAME: &'static str = "fragile";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let reserved = ctx.activity::<Reserve>("stock".into()).await?;
        if !FRAGILE_FIXED.load(Ordering::SeqCst) {
            FRAGILE_PANICS.fetch_add(1, Ordering::SeqCst);
            panic!("fragile workflow bug");
        }
        Ok(reserved)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_workflow_commits_nothing_and_retries_until_fixed() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Fragile>()
        .activity(Reserve::new(&ledger))
        .start();
    let handle = env.client.start::<Fragile>("fragile-1", ()).await.unwrap();

    let failure = eventually("the activation to panic twice", async || {
        let d = env.client.describe("fragile-1").await.ok()?;
        (FRAGILE_PANICS.load(Ordering::SeqCst) >= 2)
            .then_some(d.record.last_task_failure)
            .flatten()
    })
    .await;
    assert!(failure.contains("fragile workflow bug"), "{failure}");
    assert_eq!(
        kinds(&env.client.history("fragile-1").await.unwrap()),
        strings(&[
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled(reserve)",
        ]),
        "a panicking activation must not be committed"
    );
    assert_eq!(
        env.client.describe("fragile-1").await.unwrap().status(),
        RunStatus::Running
    );

    FRAGILE_FIXED.store(true, Ordering::SeqCst);
    assert_eq!(result_of(&handle).await.unwrap(), "reserve(stock)");
    let history = env.client.history("fragile-1").await.unwrap();
    assert_well_formed(&history);
    assert_eq!(
        kinds(&history),
        strings(&[
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled(reserve)",
            "ActivationStarted",
            "ActivityCompleted(reserve)",
            "WorkflowCompleted",
        ])
    );
    assert!(env
        .client
        .describe("fragile-1")
        .await
        .unwrap()
        .record
        .last_task_failure
        .is_none());
    assert_eq!(
        attempts(&ledger.of("fragile-1", "reserve"), Phase::Start),
        [1],
        "workflow retries must not re-run activities"
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

/// Panics on its first attempt; later attempts wait for a gate.
struct PanicsFirst {
    ledger: Ledger,
    gate: Gate,
}

#[async_trait]
impl Activity for PanicsFirst {
    const NAME: &'static str = "panics-first";
    type Input = ();
    type Output = String;

    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<String, ActivityError> {
        self.ledger.record(&ctx, Phase::Start);
        if ctx.attempt() == 1 {
            panic!("activity bug");
        }
        self.gate.wait().await;
        self.ledger.record(&ctx, Phase::End);
        Ok(format!("attempt {}", ctx.attempt()))
    }
}

struct PanicsFirstFlow;

impl Workflow for PanicsFirstFlow {
    const NAME: &'static str = "panics-first-flow";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        Ok(ctx
            .activity::<PanicsFirst>(())
            .retry(RetryPolicy::exponential().initial_interval(Duration::from_millis(20)))
            .await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_activity_is_a_failed_attempt() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let gate = Gate::new();
    let worker = Worker::builder(env.store.clone())
        .workflow::<PanicsFirstFlow>()
        .activity(PanicsFirst {
            ledger: ledger.clone(),
            gate: gate.clone(),
        })
        .start();
    let handle = env
        .client
        .start::<PanicsFirstFlow>("panics-1", ())
        .await
        .unwrap();

    let retrying = eventually("attempt 2 to be running", async || {
        let d = env.client.describe("panics-1").await.ok()?;
        let a = d.pending_activities.first()?.clone();
        (a.attempt == 2 && a.running).then_some(a)
    })
    .await;
    let failure = retrying.last_failure.expect("attempt 1's failure");
    assert_eq!(failure.cause, FailureCause::Panicked);
    assert!(failure.message.contains("activity bug"), "{failure:?}");
    assert!(!failure.non_retryable);

    gate.open();
    assert_eq!(result_of(&handle).await.unwrap(), "attempt 2");
    let history = env.client.history("panics-1").await.unwrap();
    assert_eq!(completions(&history), BTreeMap::from([(1, vec![2])]));
    let entries = ledger.of("panics-1", "panics-first");
    assert_eq!(attempts(&entries, Phase::Start), [1, 2]);
    assert_eq!(
        attempts(&entries, Phase::End),
        [2],
        "attempt 1 never finished"
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[derive(Serialize, Deserialize)]
struct Resume(u32);

impl Signal for Resume {
    const NAME: &'static str = "resume";
}

struct Parked;

impl Workflow for Parked {
    const NAME: &'static str = "parked";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
        let reserved = ctx.activity::<Reserve>(name).await?;
        let n = ctx.wait_signal::<Resume>().await?.0;
        Ok(format!("{reserved} resumed with {n}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_history_stops_only_its_own_run() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Parked>()
        .activity(Reserve::new(&ledger))
        .start();
    let a = env
        .client
        .start::<Parked>("parked-a", "a".into())
        .await
        .unwrap();
    let b = env
        .client
        .start::<Parked>("parked-b", "b".into())
        .await
        .unwrap();
    for id in ["parked-a", "parked-b"] {
        eventually(&format!("{id} to wait for its signal"), async || {
            let h = env.client.history(id).await.ok()?;
            kinds(&h)
                .contains(&"ActivityCompleted(reserve)".to_owned())
                .then_some(())
        })
        .await;
    }
    let (run_a, run_b) = (a.run_id(), b.run_id());
    let last_of_a = env
        .client
        .describe("parked-a")
        .await
        .unwrap()
        .record
        .last_seq
        .0;
    worker.shutdown(Duration::from_secs(1)).await;
    drop((a, b));
    let dir = env.close();

    // Flip the last byte (inside the checksummed payload) of A's last event.
    refrain_tests::env::edit_history(dir.path(), |history| {
        let key = keys::run_seq_key(run_a, last_of_a);
        let mut bytes = history.get(key).unwrap().expect("A's last event").to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        history.insert(key, bytes).unwrap();
    });

    let env = TestEnv::open(dir);
    let worker = Worker::builder(env.store.clone())
        .workflow::<Parked>()
        .activity(Reserve::new(&ledger))
        .start();
    env.client.signal("parked-a", &Resume(1)).await.unwrap();
    env.client.signal("parked-b", &Resume(2)).await.unwrap();

    let b = env.client.handle::<Parked>("parked-b").await.unwrap();
    assert_eq!(b.run_id(), run_b);
    assert_eq!(result_of(&b).await.unwrap(), "reserve(b) resumed with 2");

    let failure = task_failure(&env.client, "parked-a", "A's task to fail on its history").await;
    assert!(failure.contains("corrupt history"), "{failure}");
    assert!(failure.contains("checksum"), "{failure}");
    assert_eq!(
        env.client.describe("parked-a").await.unwrap().status(),
        RunStatus::Running
    );
    match env.client.history("parked-a").await {
        Err(ClientError::Damaged { run, source }) => {
            assert_eq!(run, Some(run_a));
            let Some(StoreError::Corrupt { what, .. }) = source.downcast_ref::<StoreError>() else {
                panic!("expected the store's Corrupt report, got {source:?}");
            };
            assert_eq!(*what, "history");
        }
        other => panic!("expected a Corrupt error, got {other:?}"),
    }
    assert_eq!(
        attempts(&ledger.of("parked-b", "reserve"), Phase::Start),
        [1],
        "B's replay after the reopen must not re-run its activity"
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

const TOO_LARGE: usize = 5 * 1024 * 1024;

/// A `resume` signal whose payload can be made too large.
#[derive(Serialize, Deserialize)]
struct OversizedResume(String);

impl Signal for OversizedResume {
    const NAME: &'static str = "resume";
}

/// Returns more than the store accepts as a payload.
struct Bloat;

#[async_trait]
impl Activity for Bloat {
    const NAME: &'static str = "bloat";
    type Input = ();
    type Output = String;

    async fn run(&self, _ctx: ActivityContext, _: ()) -> Result<String, ActivityError> {
        Ok("x".repeat(TOO_LARGE))
    }
}

struct BloatFlow;

impl Workflow for BloatFlow {
    const NAME: &'static str = "bloat-flow";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let policy = RetryPolicy::exponential()
            .initial_interval(Duration::from_millis(10))
            .max_attempts(3);
        Ok(match ctx.activity::<Bloat>(()).retry(policy).await {
            Ok(v) => format!("accepted {} bytes", v.len()),
            Err(f) => format!(
                "attempts={} kind={} non_retryable={}",
                f.attempts, f.failure.kind, f.failure.non_retryable
            ),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_payloads_are_refused_without_writing_anything() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Parked>()
        .workflow::<BloatFlow>()
        .activity(Reserve::new(&ledger))
        .activity(Bloat)
        .start();
    let huge = "y".repeat(TOO_LARGE);

    match env.client.start::<Parked>("parked-big", huge.clone()).await {
        Err(ClientError::PayloadTooLarge { size, limit }) => assert!(size > limit),
        other => panic!(
            "expected PayloadTooLarge, got {:?}",
            other.map(|h| h.run_id())
        ),
    }
    assert!(env
        .client
        .list(&Default::default())
        .await
        .unwrap()
        .is_empty());

    let parked = env
        .client
        .start::<Parked>("parked-small", "small".into())
        .await
        .unwrap();
    eventually("parked-small to wait for its signal", async || {
        let h = env.client.history("parked-small").await.ok()?;
        kinds(&h)
            .contains(&"ActivityCompleted(reserve)".to_owned())
            .then_some(())
    })
    .await;
    let before = env.client.describe("parked-small").await.unwrap().record;
    assert!(matches!(
        env.client
            .signal("parked-small", &OversizedResume(huge))
            .await,
        Err(ClientError::PayloadTooLarge { .. })
    ));
    assert_eq!(
        env.client.describe("parked-small").await.unwrap().record,
        before
    );
    env.client.signal("parked-small", &Resume(7)).await.unwrap();
    assert_eq!(
        result_of(&parked).await.unwrap(),
        "reserve(small) resumed with 7"
    );

    // An oversized result is a failure the workflow sees, not a retry loop.
    let bloat = env.client.start::<BloatFlow>("bloat-1", ()).await.unwrap();
    assert_eq!(
        result_of(&bloat).await.unwrap(),
        "attempts=1 kind=payload-too-large non_retryable=true"
    );
    assert_well_formed(&env.client.history("bloat-1").await.unwrap());
    worker.shutdown(Duration::from_secs(1)).await;
}
