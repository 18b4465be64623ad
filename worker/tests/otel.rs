//! The worker's spans, through `refrain_worker::otel::layer`, reach an
//! OpenTelemetry exporter with their attributes: one workflow with two
//! activity calls, run by a real worker under a subscriber with the layer,
//! exported into the SDK's in-memory exporter.

use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, Store, StoreConfig, Workflow,
    WorkflowContext, WorkflowError,
};
use refrain_worker::otel::{self, opentelemetry};
use refrain_worker::Worker;
use std::time::Duration;
use tracing_subscriber::prelude::*;

struct Double;
#[async_trait]
impl Activity for Double {
    const NAME: &'static str = "double";
    type Input = u32;
    type Output = u32;
    async fn run(&self, _: ActivityContext, n: u32) -> Result<u32, ActivityError> {
        Ok(n * 2)
    }
}

struct Twice;
impl Workflow for Twice {
    const NAME: &'static str = "twice";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        let a = ctx.activity::<Double>(n).await?;
        Ok(ctx.activity::<Double>(a).await?)
    }
}

/// The value of attribute `key` of `span`, as text.
fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| match &kv.value {
            Value::String(s) => s.as_str().to_owned(),
            other => other.to_string(),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spans_of_activations_and_activities_are_exported_with_their_attributes() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    // Global: the worker runs workflows and activities on threads of its
    // own, which a thread-local default would not reach. This binary holds
    // this one test.
    tracing_subscriber::registry()
        .with(otel::layer(&provider))
        .init();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let worker = Worker::builder(store.clone())
        .workflow::<Twice>()
        .activity(Double)
        .start();
    let client = Client::new(store);
    let handle = client.start::<Twice>("twice-7", 7).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("the workflow finished")
        .unwrap();
    assert_eq!(result, 28);
    worker.shutdown(Duration::from_secs(5)).await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let of_run = |name: &str| -> Vec<&SpanData> {
        spans
            .iter()
            .filter(|s| s.name == name && attr(s, "workflow_id").as_deref() == Some("twice-7"))
            .collect()
    };

    // At least the activation that schedules the first call, the one that
    // schedules the second, and the one that completes the run.
    let tasks = of_run("workflow_task");
    assert!(tasks.len() >= 3, "workflow_task spans: {tasks:#?}");
    for t in &tasks {
        assert_eq!(attr(t, "workflow_type").as_deref(), Some("twice"));
        assert!(attr(t, "run").is_some(), "{t:#?}");
        assert_eq!(t.instrumentation_scope.name(), otel::SCOPE);
    }

    // One span per activity attempt: two calls, one attempt each, told
    // apart by their command numbers.
    let activities = of_run("activity");
    assert_eq!(activities.len(), 2, "activity spans: {activities:#?}");
    let mut cmds: Vec<String> = Vec::new();
    for a in &activities {
        assert_eq!(attr(a, "activity_type").as_deref(), Some("double"));
        assert_eq!(attr(a, "attempt").as_deref(), Some("1"));
        assert_eq!(attr(a, "run"), attr(tasks[0], "run"));
        cmds.push(attr(a, "cmd").expect("cmd attribute"));
    }
    cmds.sort();
    cmds.dedup();
    assert_eq!(cmds.len(), 2, "two distinct calls: {cmds:?}");
}
