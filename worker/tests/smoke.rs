//! One workflow through a real worker and store: the shortest path that
//! exercises every loop (dispatcher, workflow thread, activity poller,
//! timer service) and the client.

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, Store, StoreConfig, Workflow,
    WorkflowContext, WorkflowError,
};
use refrain_worker::Worker;
use std::time::Duration;

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
        ctx.sleep(Duration::from_millis(50)).await;
        Ok(ctx.activity::<Double>(a).await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_through_a_worker_to_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let worker = Worker::builder(store.clone())
        .workflow::<Twice>()
        .activity(Double)
        .start();
    let client = Client::new(store);
    let handles: Vec<_> =
        futures::future::join_all((0..20).map(|i| client.start::<Twice>(format!("twice-{i}"), i)))
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
    for (i, h) in handles.iter().enumerate() {
        let r = tokio::time::timeout(Duration::from_secs(20), h.result())
            .await
            .expect("workflow finished")
            .unwrap();
        assert_eq!(r, i as u32 * 4);
    }
    let kinds: Vec<_> = client
        .history("twice-3")
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled",
            "ActivationStarted",
            "ActivityCompleted",
            "TimerStarted",
            "ActivationStarted",
            "TimerFired",
            "ActivityScheduled",
            "ActivationStarted",
            "ActivityCompleted",
            "WorkflowCompleted",
        ]
    );
    worker.shutdown(Duration::from_secs(1)).await;
}
