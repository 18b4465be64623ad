//! Workflow threads hand their commits to the store and go on with other
//! runs: many runs share one thread, a refused commit is still handled
//! (here: the history limit closes the run with a failure that says why,
//! and the closed run can still be replayed and queried).

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, ClientError, Event, Query,
    Store, StoreConfig, Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::Worker;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

struct AddOne;
#[async_trait]
impl Activity for AddOne {
    const NAME: &'static str = "add-one";
    type Input = u32;
    type Output = u32;
    async fn run(&self, _: ActivityContext, n: u32) -> Result<u32, ActivityError> {
        Ok(n + 1)
    }
}

/// How many steps a run has taken.
struct Steps;
impl Query for Steps {
    const NAME: &'static str = "steps";
    type Args = ();
    type Result = u32;
}

/// Adds one, `steps` times, one activity after another.
struct Count;
impl Workflow for Count {
    const NAME: &'static str = "count";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, steps: u32) -> Result<u32, WorkflowError> {
        let done = Rc::new(Cell::new(0));
        let seen = done.clone();
        ctx.on_query::<Steps>(move |()| seen.get());
        let mut n = 0;
        for _ in 0..steps {
            n = ctx.activity::<AddOne>(n).await?;
            done.set(n);
        }
        Ok(n)
    }
}

fn worker(store: &Store, threads: usize) -> Worker {
    Worker::builder(store.clone())
        .workflow::<Count>()
        .activity(AddOne)
        .max_concurrent_activations(threads)
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_workflow_thread_carries_many_runs_to_their_results() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let worker = worker(&store, 1);
    let client = Client::new(store);
    let handles = futures::future::try_join_all(
        (0..100).map(|i| client.start::<Count>(format!("count-{i}"), 3 + i % 3)),
    )
    .await
    .unwrap();
    for (i, h) in handles.iter().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(30), h.result())
            .await
            .expect("finished")
            .unwrap();
        assert_eq!(got, 3 + i as u32 % 3);
    }
    // Each history is one activation per step plus the closing one, with
    // the events in order: nothing of another run leaked in.
    let history = client.history("count-5").await.unwrap();
    let scheduled = history
        .iter()
        .filter(|e| matches!(e, Event::ActivityScheduled { .. }))
        .count();
    let completed = history
        .iter()
        .filter(|e| matches!(e, Event::ActivityCompleted { .. }))
        .count();
    assert_eq!((scheduled, completed), (5, 5));
    assert!(matches!(
        history.last(),
        Some(Event::WorkflowCompleted { .. })
    ));
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_refused_for_the_history_limit_closes_the_run_with_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_history_events: 30,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let worker = worker(&store, 1);
    let client = Client::new(store);
    // Three events per step: 100 steps need far more than 30.
    let long = client.start::<Count>("long", 100).await.unwrap();
    // A short run on the same thread is not held up by the refused one.
    let short = client.start::<Count>("short", 2).await.unwrap();
    let failed = tokio::time::timeout(Duration::from_secs(30), long.result())
        .await
        .expect("closed");
    match failed {
        Err(ClientError::WorkflowFailed { failure, .. }) => {
            assert_eq!(failure.kind, "history-limit");
            assert!(failure.message.contains("continue as new"), "{failure:?}");
        }
        other => panic!("expected the history-limit failure, got {other:?}"),
    }
    let history = client.history("long").await.unwrap();
    // The refused step is not there; the closing failure (two events) is
    // admitted past the limit.
    assert!(history.len() <= 32, "{} events", history.len());
    assert_eq!(short.result().await.unwrap(), 2);
    // What the store holds ends with the failure, right after the last
    // step it admitted: the instance that ran ahead of the refused commit
    // left nothing behind.
    let tail: Vec<_> = history[history.len() - 2..].iter().collect();
    assert!(matches!(tail[0], Event::ActivationStarted { .. }));
    assert!(matches!(tail[1], Event::WorkflowFailed { .. }));
    // That closing activation is the worker's, not the code's: replaying
    // the history (as a query does) takes it as the end of the run.
    let recorded = history
        .iter()
        .filter(|e| matches!(e, Event::ActivityCompleted { .. }))
        .count() as u32;
    assert!(recorded > 0);
    let steps = client.query::<Steps>("long", &()).await.unwrap();
    assert_eq!(steps, recorded);
    worker.shutdown(Duration::from_secs(1)).await;
}
