//! Cancelling and terminating workflows through a real worker and store.

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, ClientError, Event,
    FailureCause, RunStatus, Store, StoreConfig, Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::Worker;
use std::sync::Mutex;
use std::time::Duration;

/// Workflow ids whose job saw the cancellation, and whose cleanup ran
/// (per id, because the tests run in parallel in one process).
static SAW_CANCEL: Mutex<Vec<String>> = Mutex::new(Vec::new());
static CLEANUPS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count(log: &Mutex<Vec<String>>, id: &str) -> usize {
    log.lock().unwrap().iter().filter(|x| *x == id).count()
}

/// Works until told to stop, heartbeating.
struct LongJob;
#[async_trait]
impl Activity for LongJob {
    const NAME: &'static str = "long-job";
    type Input = ();
    type Output = ();
    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
        for step in 0..2_000u32 {
            // A rejected heartbeat (the run already closed) also means stop.
            let beat = ctx.heartbeat(&step).await;
            if ctx.is_cancelled() {
                SAW_CANCEL
                    .lock()
                    .unwrap()
                    .push(ctx.workflow_id().to_string());
                return Err(ActivityError::non_retryable("stopped on request"));
            }
            beat?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

struct Cleanup;
#[async_trait]
impl Activity for Cleanup {
    const NAME: &'static str = "cleanup";
    type Input = ();
    type Output = ();
    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
        CLEANUPS.lock().unwrap().push(ctx.workflow_id().to_string());
        Ok(())
    }
}

/// Handles cancellation: stops the job, cleans up, then ends cancelled.
struct Careful;
impl Workflow for Careful {
    const NAME: &'static str = "careful";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        let job = ctx
            .activity::<LongJob>(())
            .heartbeat_timeout(Duration::from_secs(5));
        match ctx.or_cancelled(job).await {
            Ok(done) => Ok(done?),
            Err(cancelled) => {
                ctx.activity::<Cleanup>(()).await?;
                Err(cancelled)
            }
        }
    }
}

/// Ignores cancellation entirely.
struct Sleeper;
impl Workflow for Sleeper {
    const NAME: &'static str = "sleeper";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

async fn setup() -> (tempfile::TempDir, Store, Worker, Client) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let worker = Worker::builder(store.clone())
        .workflow::<Careful>()
        .workflow::<Sleeper>()
        .activity(LongJob)
        .activity(Cleanup)
        .start();
    let client = Client::new(store.clone());
    (dir, store, worker, client)
}

async fn wait_until(mut ok: impl AsyncFnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !ok().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition reached in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_during_an_activity_reaches_it_and_lets_the_workflow_clean_up() {
    let (_dir, _store, worker, client) = setup().await;
    let handle = client.start::<Careful>("careful-1", ()).await.unwrap();
    wait_until(async || {
        client
            .describe("careful-1")
            .await
            .map(|d| d.pending_activities.iter().any(|a| a.running))
            .unwrap_or(false)
    })
    .await;
    client
        .cancel("careful-1", "customer withdrew", Some("support"))
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), handle.result())
        .await
        .unwrap()
        .unwrap_err();
    let ClientError::WorkflowFailed { failure, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(failure.cause, FailureCause::Cancelled);
    assert_eq!(failure.message, "customer withdrew");
    assert_eq!(
        count(&CLEANUPS, "careful-1"),
        1,
        "cleanup ran once, to completion"
    );
    // The workflow does not wait for the job to stop; the job learns it at
    // its next heartbeat.
    wait_until(async || count(&SAW_CANCEL, "careful-1") == 1).await;
    let d = client.describe("careful-1").await.unwrap();
    assert_eq!(d.status(), RunStatus::Cancelled);
    let history = client.history("careful-1").await.unwrap();
    let k = kinds(&history);
    let at = |kind: &str| k.iter().position(|x| *x == kind).unwrap();
    assert!(at("WorkflowCancelRequested") < at("ActivityCancelRequested"));
    assert!(
        at("ActivityCancelRequested") < k.iter().rposition(|x| *x == "ActivityScheduled").unwrap()
    );
    assert_eq!(k.last(), Some(&"WorkflowCancelled"));
    assert!(history.iter().any(|e| matches!(e,
        Event::WorkflowCancelRequested { requested_by: Some(by), .. } if by == "support")));
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_that_ignores_cancellation_is_cancelled_for_it_during_a_timer() {
    let (_dir, store, worker, client) = setup().await;
    let handle = client.start::<Sleeper>("sleeper-1", ()).await.unwrap();
    wait_until(async || {
        client
            .describe("sleeper-1")
            .await
            .map(|d| !d.pending_timers.is_empty())
            .unwrap_or(false)
    })
    .await;
    client
        .cancel("sleeper-1", "not needed", None)
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), handle.result())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, ClientError::WorkflowFailed { ref failure, .. }
        if failure.cause == FailureCause::Cancelled),
        "{err}"
    );
    let d = client.describe("sleeper-1").await.unwrap();
    assert_eq!(d.status(), RunStatus::Cancelled);
    assert!(d.pending_timers.is_empty(), "the timer was cancelled");
    assert_eq!(store.next_deadline().unwrap(), None, "nothing left to fire");
    let k = kinds(&client.history("sleeper-1").await.unwrap());
    assert_eq!(
        k[k.len() - 4..],
        [
            "ActivationStarted",
            "WorkflowCancelRequested",
            "TimerCancelled",
            "WorkflowCancelled"
        ]
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_ends_a_run_at_once_without_running_its_code() {
    let (_dir, _store, worker, client) = setup().await;
    let handle = client.start::<Careful>("careful-2", ()).await.unwrap();
    wait_until(async || {
        client
            .describe("careful-2")
            .await
            .map(|d| d.pending_activities.iter().any(|a| a.running))
            .unwrap_or(false)
    })
    .await;
    client
        .terminate("careful-2", "duplicate order", None)
        .await
        .unwrap();
    let err = handle.result().await.unwrap_err();
    assert!(
        matches!(err, ClientError::WorkflowFailed { ref failure, .. }
        if failure.cause == FailureCause::Terminated),
        "{err}"
    );
    let d = client.describe("careful-2").await.unwrap();
    assert_eq!(d.status(), RunStatus::Terminated);
    assert!(d.pending_activities.is_empty());
    let history = client.history("careful-2").await.unwrap();
    assert_eq!(history.last().map(Event::kind), Some("WorkflowTerminated"));
    // Nothing runs after termination: the worker's next task finds the
    // run closed, and no cleanup was scheduled.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(client.history("careful-2").await.unwrap(), history);
    assert_eq!(count(&CLEANUPS, "careful-2"), 0);
    assert!(matches!(
        client.signal_from("careful-2", &Nothing, "ops").await,
        Err(ClientError::Closed {
            status: RunStatus::Terminated,
            ..
        })
    ));
    worker.shutdown(Duration::from_secs(1)).await;
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Nothing;
impl refrain::Signal for Nothing {
    const NAME: &'static str = "nothing";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_missing_or_closed_workflow_is_a_named_error() {
    let (_dir, _store, worker, client) = setup().await;
    assert!(matches!(
        client.cancel("nobody", "x", None).await,
        Err(ClientError::NotFound { .. })
    ));
    assert!(matches!(
        client.terminate("nobody", "x", None).await,
        Err(ClientError::NotFound { .. })
    ));
    let h = client.start::<Sleeper>("sleeper-2", ()).await.unwrap();
    let run = client
        .terminate("sleeper-2", "done", Some("ops"))
        .await
        .unwrap();
    assert_eq!(run, h.run_id(), "terminate names the run it ended");
    h.result().await.unwrap_err();
    // Who terminated is in the audit trail, a field of its own.
    let history = client.history("sleeper-2").await.unwrap();
    assert!(
        history.iter().any(|e| matches!(e,
            Event::WorkflowTerminated { reason, terminated_by: Some(who) }
                if reason == "done" && who == "ops")),
        "{history:?}"
    );
    assert!(matches!(
        client.cancel("sleeper-2", "again", None).await,
        Err(ClientError::Closed { .. })
    ));
    worker.shutdown(Duration::from_secs(1)).await;
}
