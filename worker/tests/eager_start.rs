//! Eager starts: a start made through the client of a worker that runs the
//! workflow type commits the run's first activation with it. What users
//! rely on: the first activation is in the store as soon as `start`
//! returns, conflicting starts behave exactly as ordinary ones (nothing
//! runs twice), a first activation that fails is retried as an ordinary
//! run's would be, and run numbers stay unique across restarts.

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, ClientError, DurabilityMode, Event,
    StartOptions, Store, StoreConfig, Workflow, WorkflowContext, WorkflowError,
};
use refrain_history::ActivityState;
use refrain_worker::Worker;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Counts its calls; each call waits for one release.
#[derive(Clone)]
struct Gate {
    calls: Arc<AtomicU32>,
    open: Arc<Semaphore>,
}

impl Gate {
    fn new() -> Self {
        Gate {
            calls: Arc::default(),
            open: Arc::new(Semaphore::new(0)),
        }
    }

    fn release(&self, n: usize) {
        self.open.add_permits(n);
    }
}

#[async_trait]
impl Activity for Gate {
    const NAME: &'static str = "gate";
    type Input = u32;
    type Output = u32;
    async fn run(&self, _: ActivityContext, n: u32) -> Result<u32, ActivityError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.open.acquire().await.expect("never closed").forget();
        Ok(n * 2)
    }
}

/// One gated activity.
struct Doubled;
impl Workflow for Doubled {
    const NAME: &'static str = "doubled";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        Ok(ctx.activity::<Gate>(n).await?)
    }
}

fn worker(store: &Store, gate: &Gate, eager: bool) -> Worker {
    Worker::builder(store.clone())
        .workflow::<Doubled>()
        .workflow::<Shy>()
        .activity(gate.clone())
        .eager_start(eager)
        .start()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("finished in time")
}

fn kinds(history: &[Event]) -> Vec<&'static str> {
    history.iter().map(Event::kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_activation_is_stored_when_start_returns() {
    let dir = tempfile::tempdir().unwrap();
    // No flush to wait for, so an ordinary start would return before the
    // worker even noticed the run.
    let config = StoreConfig {
        durability: DurabilityMode::None,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let gate = Gate::new();
    let w = worker(&store, &gate, true);
    let client = w.client();
    let h = client.start::<Doubled>("d", 21).await.unwrap();
    // Committed with the start: no waiting for the worker to notice it.
    let history = client.history("d").await.unwrap();
    assert_eq!(
        kinds(&history),
        ["WorkflowStarted", "ActivationStarted", "ActivityScheduled"]
    );
    // And its activity was claimed for this worker in that transaction.
    let Event::ActivityScheduled { cmd, .. } = &history[2] else {
        unreachable!()
    };
    let task = store
        .activity_task(h.run_id(), *cmd)
        .unwrap()
        .expect("task");
    assert!(
        matches!(task.state, ActivityState::Running { .. }),
        "{:?}",
        task.state
    );
    gate.release(1);
    assert_eq!(within(h.result()).await.unwrap(), 42);
    assert_eq!(gate.calls.load(Ordering::SeqCst), 1);
    w.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_and_ordinary_starts_write_the_same_history() {
    let mut histories = Vec::new();
    for eager in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let gate = Gate::new();
        let w = worker(&store, &gate, eager);
        let client = w.client();
        let h = client.start::<Doubled>("d", 5).await.unwrap();
        gate.release(1);
        assert_eq!(within(h.result()).await.unwrap(), 10);
        histories.push(kinds(&client.history("d").await.unwrap()));
        w.shutdown(Duration::from_secs(1)).await;
    }
    assert_eq!(histories[0], histories[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_id_is_taken_runs_nothing_and_numbers_stay_unique() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let gate = Gate::new();
    let w = worker(&store, &gate, true);
    let client = w.client();
    let first = client.start::<Doubled>("taken", 1).await.unwrap();
    // Each of these runs a first activation of its own, which must be
    // discarded: the id stands for `first`.
    let attached = client
        .start_with::<Doubled>("taken", 2, StartOptions::attach_to_open())
        .await
        .unwrap();
    assert_eq!(attached.run_id(), first.run_id());
    assert!(!attached.was_started());
    match client.start::<Doubled>("taken", 3).await {
        Err(ClientError::AlreadyRunning { run, .. }) => assert_eq!(run, first.run_id()),
        Err(e) => panic!("expected AlreadyRunning, got {e:?}"),
        Ok(h) => panic!("started {} under a taken id", h.run_id()),
    }
    let other = client.start::<Doubled>("other", 4).await.unwrap();
    // The discarded activations left nothing: one activity scheduled and
    // called, one start in the history.
    let history = client.history("taken").await.unwrap();
    assert_eq!(
        kinds(&history),
        ["WorkflowStarted", "ActivationStarted", "ActivityScheduled"]
    );
    within(async {
        while gate.calls.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    gate.release(2);
    assert_eq!(within(first.result()).await.unwrap(), 2);
    assert_eq!(within(other.result()).await.unwrap(), 8);
    assert_eq!(gate.calls.load(Ordering::SeqCst), 2);
    w.shutdown(Duration::from_secs(1)).await;
    drop((client, first, attached, other));
    let numbers: Vec<u64> = store
        .list_runs(&Default::default())
        .unwrap()
        .iter()
        .map(|r| r.run.0)
        .collect();
    drop(store);

    // After a restart, new runs are numbered past every run before it,
    // whether or not numbers were reserved and left unused.
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let w = worker(&store, &gate, true);
    let client = w.client();
    let after = client.start::<Doubled>("after", 5).await.unwrap();
    assert!(
        numbers.iter().all(|n| *n < after.run_id().0),
        "{numbers:?} then {}",
        after.run_id()
    );
    gate.release(1);
    assert_eq!(within(after.result()).await.unwrap(), 10);
    w.shutdown(Duration::from_secs(1)).await;
}

/// Set while `Shy` must panic in its first activation.
static SHY_PANICS: AtomicBool = AtomicBool::new(true);

/// Panics while `SHY_PANICS` is set, then returns its input.
struct Shy;
impl Workflow for Shy {
    const NAME: &'static str = "shy";
    type Input = u32;
    type Output = u32;
    async fn run(_ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        if SHY_PANICS.load(Ordering::SeqCst) {
            panic!("not yet");
        }
        Ok(n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_first_activation_is_a_task_failure_of_an_ordinary_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let gate = Gate::new();
    let w = worker(&store, &gate, true);
    let client = w.client();
    // The start still succeeds: the run is stored the ordinary way.
    let h = client.start::<Shy>("shy", 7).await.unwrap();
    // Its failed task is recorded on the run, as for any run.
    let failure = within(async {
        loop {
            let record = store.run_record(h.run_id()).unwrap().expect("the run");
            if let Some(f) = record.last_task_failure {
                break f;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(failure.contains("not yet"), "{failure}");
    SHY_PANICS.store(false, Ordering::SeqCst);
    // Retried after its backoff, like any failed task.
    assert_eq!(within(h.result()).await.unwrap(), 7);
    assert_eq!(
        kinds(&client.history("shy").await.unwrap())[0],
        "WorkflowStarted"
    );
    w.shutdown(Duration::from_secs(1)).await;
}
