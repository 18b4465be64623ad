//! The engine's metrics through a real recorder: a workflow with an
//! activity that fails once runs through a worker, and the Prometheus
//! text shows its type's counters. In a test binary of its own because it
//! installs the process's global recorder.

use metrics_exporter_prometheus::PrometheusBuilder;
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, RetryPolicy, Store, StoreConfig,
    Workflow, WorkflowContext, WorkflowError,
};
use refrain_history::telemetry;
use refrain_worker::Worker;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Fails its first attempt, then doubles.
struct FlakyDouble(AtomicU32);
#[async_trait]
impl Activity for FlakyDouble {
    const NAME: &'static str = "flaky-double";
    type Input = u32;
    type Output = u32;
    async fn run(&self, _: ActivityContext, n: u32) -> Result<u32, ActivityError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(ActivityError::retryable("first try"));
        }
        Ok(n * 2)
    }
}

struct Metered;
impl Workflow for Metered {
    const NAME: &'static str = "metered";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        let retry = RetryPolicy::exponential().initial_interval(Duration::from_millis(1));
        Ok(ctx.activity::<FlakyDouble>(n).retry(retry).await?)
    }
}

/// The value of the sample `line_start` (name and labels) in `text`.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_and_its_activity_move_their_counters() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");
    telemetry::describe();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let worker = Worker::builder(store.clone())
        .workflow::<Metered>()
        .activity(FlakyDouble(AtomicU32::new(0)))
        .start();
    let client = Client::new(store);
    let run = client.start::<Metered>("metered-1", 21).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(30), run.result())
        .await
        .expect("the workflow finished")
        .unwrap();
    assert_eq!(result, 42);
    worker.shutdown(Duration::from_secs(5)).await;

    let text = handle.render();
    let wf = "{workflow_type=\"metered\"}";
    let act = "{activity_type=\"flaky-double\"}";
    assert_eq!(
        sample(&text, &format!("refrain_workflow_starts_total{wf}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("refrain_workflow_completions_total{wf}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("refrain_workflow_failures_total{wf}")),
        None,
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("refrain_activity_attempts_total{act}")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("refrain_activity_failures_total{act}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("refrain_activity_attempt_duration_seconds_count{act}")
        ),
        Some(2.0),
        "{text}"
    );
    // At least two activations: one schedules the activity, one takes
    // its result and completes the run (the retry is the store's).
    let tasks = sample(
        &text,
        &format!("refrain_workflow_task_duration_seconds_count{wf}"),
    );
    assert!(tasks.is_some_and(|n| n >= 2.0), "{text}");
    for store_metric in [
        "refrain_store_commit_duration_seconds_count",
        "refrain_store_flush_duration_seconds_count",
    ] {
        assert!(
            sample(&text, store_metric).is_some_and(|n| n >= 1.0),
            "{store_metric} missing: {text}"
        );
    }
    for gauge in [
        "refrain_ready_queue_depth",
        "refrain_pending_timers",
        "refrain_human_tasks_open",
        "refrain_human_tasks_overdue",
    ] {
        assert!(sample(&text, gauge).is_some(), "{gauge} missing: {text}");
    }
}
