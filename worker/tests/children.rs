//! Child workflows through a real worker and store.

use refrain::{
    join_all, Client, ClientError, Event, FailureCause, ParentClosePolicy, RunStatus, Store,
    StoreConfig, Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::Worker;
use std::time::Duration;

/// Doubles its input; fails on 13.
struct Batch;
impl Workflow for Batch {
    const NAME: &'static str = "batch";
    type Input = u32;
    type Output = u32;
    async fn run(_: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        if n == 13 {
            return Err(WorkflowError::new("unlucky", "batch 13 refused"));
        }
        Ok(n * 2)
    }
}

/// Sleeps for an hour.
struct Slow;
impl Workflow for Slow {
    const NAME: &'static str = "slow";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

/// Fans out one child per input and sums the results.
struct FanOut;
impl Workflow for FanOut {
    const NAME: &'static str = "fan-out";
    type Input = Vec<u32>;
    type Output = u32;
    async fn run(ctx: WorkflowContext, ns: Vec<u32>) -> Result<u32, WorkflowError> {
        let me = ctx.workflow_id();
        let calls: Vec<_> = ns
            .iter()
            .map(|n| ctx.child::<Batch>(format!("{me}/batch-{n}"), *n))
            .collect();
        let mut sum = 0;
        for r in join_all(calls).await {
            sum += r?;
        }
        Ok(sum)
    }
}

/// Starts a slow child and waits for it (ignoring cancellation itself).
struct Waits;
impl Workflow for Waits {
    const NAME: &'static str = "waits";
    type Input = String;
    type Output = ();
    async fn run(ctx: WorkflowContext, child_id: String) -> Result<(), WorkflowError> {
        ctx.child::<Slow>(child_id, ()).await?;
        Ok(())
    }
}

/// Starts a slow child with `policy` and returns without waiting.
struct LeavesEarly;
impl Workflow for LeavesEarly {
    const NAME: &'static str = "leaves-early";
    type Input = (String, bool);
    type Output = ();
    async fn run(
        ctx: WorkflowContext,
        (child_id, abandon): (String, bool),
    ) -> Result<(), WorkflowError> {
        let policy = if abandon {
            ParentClosePolicy::Abandon
        } else {
            ParentClosePolicy::Terminate
        };
        let child = ctx.child::<Slow>(child_id, ()).parent_close(policy);
        // Keep the call alive but do not wait for it: a timer decides.
        let _ = refrain::select(ctx.sleep(Duration::from_millis(50)), child).await;
        Ok(())
    }
}

async fn setup() -> (tempfile::TempDir, Worker, Client) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let worker = Worker::builder(store.clone())
        .workflow::<Batch>()
        .workflow::<Slow>()
        .workflow::<FanOut>()
        .workflow::<Waits>()
        .workflow::<LeavesEarly>()
        .start();
    (dir, worker, Client::new(store))
}

async fn status_becomes(client: &Client, id: &str, status: RunStatus) {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if client
                .describe(id)
                .await
                .map(|d| d.status() == status)
                .unwrap_or(false)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{id} never became {status:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_fans_out_to_children_and_collects_their_results() {
    let (_dir, worker, client) = setup().await;
    let h = client
        .start::<FanOut>("recon", vec![1, 2, 3])
        .await
        .unwrap();
    let sum = tokio::time::timeout(Duration::from_secs(20), h.result())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sum, 12);
    let parent = client.history("recon").await.unwrap();
    let started: Vec<_> = parent
        .iter()
        .filter_map(|e| match e {
            Event::ChildWorkflowStarted { workflow_id, .. } => Some(workflow_id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(started, ["recon/batch-1", "recon/batch-2", "recon/batch-3"]);
    assert_eq!(
        parent
            .iter()
            .filter(|e| matches!(e, Event::ChildWorkflowCompleted { .. }))
            .count(),
        3
    );
    let child = client.history("recon/batch-2").await.unwrap();
    let Event::WorkflowStarted {
        parent: Some(p), ..
    } = &child[0]
    else {
        panic!("{child:?}")
    };
    assert_eq!(p.workflow_id.as_str(), "recon");
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_child_fails_the_parent_with_its_reason() {
    let (_dir, worker, client) = setup().await;
    let h = client
        .start::<FanOut>("recon-13", vec![1, 13])
        .await
        .unwrap();
    let err = h.result().await.unwrap_err();
    let ClientError::WorkflowFailed { failure, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(failure.kind, "child-failed");
    assert!(
        failure.message.contains("batch 13 refused"),
        "{}",
        failure.message
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_whose_id_is_taken_fails_at_once() {
    let (_dir, worker, client) = setup().await;
    client.start::<Slow>("taken", ()).await.unwrap();
    let h = client
        .start::<Waits>("waits-1", "taken".into())
        .await
        .unwrap();
    let err = h.result().await.unwrap_err();
    let ClientError::WorkflowFailed { failure, .. } = err else {
        panic!("{err}")
    };
    assert!(
        failure.message.contains("already running"),
        "{}",
        failure.message
    );
    assert_eq!(
        client.describe("taken").await.unwrap().status(),
        RunStatus::Running
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_parent_during_a_child_workflow_cancels_the_child() {
    let (_dir, worker, client) = setup().await;
    let h = client
        .start::<Waits>("waits-2", "waits-2/slow".into())
        .await
        .unwrap();
    status_becomes(&client, "waits-2/slow", RunStatus::Running).await;
    client
        .cancel("waits-2", "order withdrawn", None)
        .await
        .unwrap();
    let err = h.result().await.unwrap_err();
    assert!(
        matches!(err, ClientError::WorkflowFailed { ref failure, .. }
        if failure.cause == FailureCause::Cancelled),
        "{err}"
    );
    status_becomes(&client, "waits-2/slow", RunStatus::Cancelled).await;
    let child = client.history("waits-2/slow").await.unwrap();
    assert!(child.iter().any(|e| matches!(e,
        Event::WorkflowCancelRequested { requested_by: Some(by), .. } if by.contains("waits-2"))));
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parent_close_policy_terminates_or_abandons_a_running_child() {
    let (_dir, worker, client) = setup().await;
    let t = client
        .start::<LeavesEarly>("leaves-1", ("leaves-1/slow".into(), false))
        .await
        .unwrap();
    t.result().await.unwrap();
    status_becomes(&client, "leaves-1/slow", RunStatus::Terminated).await;
    let a = client
        .start::<LeavesEarly>("leaves-2", ("leaves-2/slow".into(), true))
        .await
        .unwrap();
    a.result().await.unwrap();
    // Abandoned: still running after its parent completed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        client.describe("leaves-2/slow").await.unwrap().status(),
        RunStatus::Running
    );
    worker.shutdown(Duration::from_secs(1)).await;
}
