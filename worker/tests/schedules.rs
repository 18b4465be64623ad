//! Schedules through a real worker: the schedule service fires them, the
//! runs execute, and a restart catches up on fires missed while the
//! process was down. Most tests give the service a clock they move by
//! hand, so "three hours of downtime" takes no time and no assertion
//! depends on timing; waits only poll for a state, with a generous limit
//! against hangs.

use refrain::{
    schedule_for, Client, OverlapPolicy, RunFilter, RunStatus, ScheduleError, ScheduleRecord,
    Signal, Store, StoreConfig, Trigger, Workflow, WorkflowContext, WorkflowError, WorkflowId,
};
use refrain_history::store::schedules::scheduled_workflow_id;
use refrain_history::{DurabilityMode, Timestamp};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Completes at once.
struct Tick;
impl Workflow for Tick {
    const NAME: &'static str = "tick";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, input: String) -> Result<String, WorkflowError> {
        Ok(format!("{input} from {}", ctx.workflow_id()))
    }
}

#[derive(Serialize, Deserialize)]
struct Open;
impl Signal for Open {
    const NAME: &'static str = "open";
}

/// Stays open until signalled.
struct Gate;
impl Workflow for Gate {
    const NAME: &'static str = "gate";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.wait_signal::<Open>().await?;
        Ok(())
    }
}

const HOUR: u64 = 3_600_000;
const MINUTE: u64 = 60_000;

/// A whole hour, so `Every(1 h)` fires at `h(1)`, `h(2)`, ...
const BASE: Timestamp = Timestamp(1_700_006_400_000);

fn h(n: u64) -> Timestamp {
    Timestamp(BASE.0 + n * HOUR)
}

fn plus(t: Timestamp, ms: u64) -> Timestamp {
    Timestamp(t.0 + ms)
}

fn open_store(dir: &Path) -> Store {
    Store::open(
        dir,
        StoreConfig {
            durability: DurabilityMode::Flush,
            lock_timeout: Duration::from_secs(20),
            ..StoreConfig::default()
        },
    )
    .unwrap()
}

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn at(t: Timestamp) -> Self {
        TestClock(Arc::new(AtomicU64::new(t.0)))
    }
    /// Moves the clock and tells the service to look now.
    fn set(&self, t: Timestamp, store: &Store) {
        self.0.store(t.0, Ordering::SeqCst);
        store.schedule_notify().notify_one();
    }
    fn reader(&self) -> impl Fn() -> Timestamp + Send + Sync + 'static {
        let c = self.0.clone();
        move || Timestamp(c.load(Ordering::SeqCst))
    }
}

fn start_worker(store: &Store, clock: Option<&TestClock>) -> Worker {
    let builder = Worker::builder(store.clone())
        .workflow::<Tick>()
        .workflow::<Gate>()
        .max_concurrent_activations(2);
    match clock {
        Some(c) => builder.schedule_clock(c.reader()),
        None => builder,
    }
    .start()
}

/// Polls `check` until it holds. The limit only stops a broken test from
/// hanging; nothing depends on how quickly it holds.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(
            std::time::Instant::now() < give_up,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn describe(client: &Client, id: &str) -> ScheduleRecord {
    client.describe_schedule(id).await.unwrap()
}

/// Workflow ids of the runs of `workflow_type`, sorted.
fn runs_of(store: &Store, workflow_type: &str) -> Vec<(WorkflowId, RunStatus)> {
    let mut runs: Vec<_> = store
        .list_runs(&RunFilter {
            workflow_type: Some(workflow_type.into()),
            ..RunFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|r| (r.workflow_id, r.status))
        .collect();
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    runs
}

fn all_completed(store: &Store, workflow_type: &str, n: usize) -> bool {
    let runs = runs_of(store, workflow_type);
    runs.len() == n && runs.iter().all(|(_, s)| *s == RunStatus::Completed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_repeatedly_and_its_runs_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let worker = start_worker(&store, None);
    let client = Client::new(store.clone());
    let spec = schedule_for::<Tick>(
        "ticker",
        Trigger::Every(Duration::from_millis(100)),
        &"hello".to_string(),
    )
    .unwrap()
    .overlap(OverlapPolicy::AllowAll);
    client.create_schedule(spec).await.unwrap();

    until("three runs of the schedule completed", async || {
        runs_of(&store, Tick::NAME)
            .iter()
            .filter(|(_, s)| *s == RunStatus::Completed)
            .count()
            >= 3
    })
    .await;
    client.delete_schedule("ticker").await.unwrap();
    let d = client.list_schedules().await.unwrap();
    assert!(d.is_empty());

    let runs = runs_of(&store, Tick::NAME);
    for (id, _) in &runs {
        assert!(id.as_str().starts_with("ticker@"), "{id}");
        let result: String = client
            .handle::<Tick>(id.clone())
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
        assert_eq!(result, format!("hello from {id}"));
    }
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_calls_report_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let client = Client::new(store);
    let spec =
        schedule_for::<Tick>("s", Trigger::Cron("0 2 * * *".into()), &String::new()).unwrap();
    client.create_schedule(spec.clone()).await.unwrap();
    assert!(matches!(
        client.create_schedule(spec).await,
        Err(ScheduleError::AlreadyExists { id }) if id == "s"
    ));
    let bad =
        schedule_for::<Tick>("t", Trigger::Cron("0 25 * * *".into()), &String::new()).unwrap();
    assert!(matches!(
        client.create_schedule(bad).await,
        Err(ScheduleError::BadCronExpression { expression, .. }) if expression == "0 25 * * *"
    ));
    assert!(matches!(
        client.pause_schedule("nope").await,
        Err(ScheduleError::NotFound { id }) if id == "nope"
    ));
    assert!(matches!(
        client.describe_schedule("nope").await,
        Err(ScheduleError::NotFound { .. })
    ));
    assert!(matches!(
        client.delete_schedule("nope").await,
        Err(ScheduleError::NotFound { .. })
    ));
}

/// Creates an hourly `Tick` schedule at `BASE` (first fire `h(1)`) with a
/// two-hour window, runs a worker, stops worker and store, and reopens
/// them three and a half hours later: `h(1)` is older than the window,
/// `h(2)` and `h(3)` are within it.
async fn down_for_three_and_a_half_hours(
    dir: &Path,
    policy: OverlapPolicy,
) -> (Store, Client, Worker) {
    let clock = TestClock::at(BASE);
    {
        let store = open_store(dir);
        let spec = schedule_for::<Tick>(
            "catch-up",
            Trigger::Every(Duration::from_secs(3600)),
            &"catching up".to_string(),
        )
        .unwrap()
        .overlap(policy)
        .catchup_window(Duration::from_secs(2 * 3600));
        store.create_schedule(spec, BASE).unwrap();
        store.durable().await.unwrap();
        let worker = start_worker(&store, Some(&clock));
        clock.set(plus(BASE, 10 * MINUTE), &store);
        worker.shutdown(Duration::from_secs(5)).await;
        assert!(runs_of(&store, Tick::NAME).is_empty(), "nothing was due");
    }
    // Down (store and worker dropped) while h(1), h(2) and h(3) pass.
    clock.0.store(plus(h(3), 30 * MINUTE).0, Ordering::SeqCst);
    let store = open_store(dir);
    let worker = start_worker(&store, Some(&clock));
    let client = Client::new(store.clone());
    until("the service caught up", async || {
        describe(&client, "catch-up").await.next_fire == Some(h(4))
    })
    .await;
    (store, client, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_catches_up_with_exactly_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (store, client, worker) =
        down_for_three_and_a_half_hours(dir.path(), OverlapPolicy::Skip).await;
    until("the catch-up run completed", async || {
        all_completed(&store, Tick::NAME, 1)
    })
    .await;
    assert_eq!(
        runs_of(&store, Tick::NAME),
        vec![(
            scheduled_workflow_id("catch-up", h(3)),
            RunStatus::Completed
        )]
    );
    let d = describe(&client, "catch-up").await;
    assert_eq!((d.runs_started, d.skipped, d.missed), (1, 1, 1));
    assert_eq!(d.last_fire, Some(h(3)));
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_one_catches_up_with_exactly_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (store, client, worker) =
        down_for_three_and_a_half_hours(dir.path(), OverlapPolicy::BufferOne).await;
    until("the catch-up run completed", async || {
        all_completed(&store, Tick::NAME, 1)
    })
    .await;
    assert_eq!(
        runs_of(&store, Tick::NAME),
        vec![(
            scheduled_workflow_id("catch-up", h(3)),
            RunStatus::Completed
        )]
    );
    let d = describe(&client, "catch-up").await;
    assert_eq!((d.runs_started, d.skipped, d.missed), (1, 1, 1));
    assert_eq!(d.buffered_fire, None);
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_all_catches_up_with_one_run_per_fire_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let (store, client, worker) =
        down_for_three_and_a_half_hours(dir.path(), OverlapPolicy::AllowAll).await;
    until("the catch-up runs completed", async || {
        all_completed(&store, Tick::NAME, 2)
    })
    .await;
    assert_eq!(
        runs_of(&store, Tick::NAME),
        vec![
            (
                scheduled_workflow_id("catch-up", h(2)),
                RunStatus::Completed
            ),
            (
                scheduled_workflow_id("catch-up", h(3)),
                RunStatus::Completed
            ),
        ]
    );
    let d = describe(&client, "catch-up").await;
    assert_eq!((d.runs_started, d.skipped, d.missed), (2, 0, 1));
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_one_starts_the_buffered_run_when_the_previous_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let clock = TestClock::at(BASE);
    let worker = start_worker(&store, Some(&clock));
    let client = Client::new(store.clone());
    let spec = schedule_for::<Gate>("gated", Trigger::Every(Duration::from_secs(3600)), &())
        .unwrap()
        .overlap(OverlapPolicy::BufferOne);
    store.create_schedule(spec, BASE).unwrap();
    let first = scheduled_workflow_id("gated", h(1));
    let buffered = scheduled_workflow_id("gated", h(2));

    clock.set(h(1), &store);
    until("the first run started", async || {
        describe(&client, "gated").await.runs_started == 1
    })
    .await;
    clock.set(h(2), &store);
    until("the h(2) fire is buffered", async || {
        describe(&client, "gated").await.buffered_fire == Some(h(2))
    })
    .await;
    clock.set(h(3), &store);
    until("the h(3) fire is dropped", async || {
        describe(&client, "gated").await.last_fire == Some(h(3))
    })
    .await;
    let d = describe(&client, "gated").await;
    assert_eq!((d.runs_started, d.skipped), (1, 1));
    assert_eq!(
        d.buffered_fire,
        Some(h(2)),
        "the first buffered fire is kept"
    );
    assert!(store.latest_run(&buffered).unwrap().is_none());

    // The clock stays put: only the first run closing starts the next.
    client.signal(first.clone(), &Open).await.unwrap();
    until("the buffered run started", async || {
        describe(&client, "gated").await.runs_started == 2
    })
    .await;
    let d = describe(&client, "gated").await;
    assert_eq!(d.buffered_fire, None);
    assert_eq!(d.last_run.unwrap().workflow_id, buffered);
    assert_eq!(
        store.latest_run(&first).unwrap().unwrap().1.status,
        RunStatus::Completed
    );
    client.signal(buffered.clone(), &Open).await.unwrap();
    client
        .handle::<Gate>(buffered)
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(runs_of(&store, Gate::NAME).len(), 2);
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_fires_and_resume_restarts_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let clock = TestClock::at(BASE);
    let worker = start_worker(&store, Some(&clock));
    let client = Client::new(store.clone());
    for id in ["paused", "control"] {
        let spec = schedule_for::<Tick>(id, Trigger::Every(Duration::from_secs(3600)), &id.into())
            .unwrap()
            // AllowAll: whether a fire starts a run must not depend on
            // whether the worker has finished the previous one yet.
            .overlap(OverlapPolicy::AllowAll)
            .catchup_window(Duration::from_secs(90 * 60));
        store.create_schedule(spec, BASE).unwrap();
    }
    assert!(client.pause_schedule("paused").await.unwrap().paused);

    // The control schedule firing shows the service handled h(1).
    clock.set(h(1), &store);
    until("control fired at h(1)", async || {
        describe(&client, "control").await.runs_started == 1
    })
    .await;
    let d = describe(&client, "paused").await;
    assert_eq!((d.runs_started, d.last_fire), (0, None));
    assert!(store
        .latest_run(&scheduled_workflow_id("paused", h(1)))
        .unwrap()
        .is_none());
    clock.set(plus(h(2), 40 * MINUTE), &store);
    until("control fired at h(2)", async || {
        describe(&client, "control").await.runs_started == 2
    })
    .await;
    assert_eq!(describe(&client, "paused").await.runs_started, 0);

    // Resumed at h(2)+40 min with a 90-minute window: h(1) is not
    // back-fired, h(2) is.
    assert!(!client.resume_schedule("paused").await.unwrap().paused);
    until("the resumed schedule caught up", async || {
        describe(&client, "paused").await.runs_started == 1
    })
    .await;
    let d = describe(&client, "paused").await;
    assert_eq!((d.missed, d.last_fire), (1, Some(h(2))));
    assert_eq!(
        d.last_run.unwrap().workflow_id,
        scheduled_workflow_id("paused", h(2))
    );
    clock.set(h(3), &store);
    until("both fired at h(3)", async || {
        describe(&client, "paused").await.runs_started == 2
            && describe(&client, "control").await.runs_started == 3
    })
    .await;
    until("every run completed", async || {
        all_completed(&store, Tick::NAME, 5)
    })
    .await;
    worker.shutdown(Duration::from_secs(5)).await;
}
