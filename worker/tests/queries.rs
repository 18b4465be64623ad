//! Queries through a real worker: answered from the workflow's state
//! while it is blocked, after it closed, and never written to history.
//! The state is a `QueryState` and the signal and queries are derived, as
//! the README shows them.

use refrain::{
    Client, ClientError, Query, QueryState, Signal, Store, StoreConfig, Workflow, WorkflowContext,
    WorkflowError,
};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize, Signal)]
struct Approve(String);

/// Which approvals a document has.
#[derive(Query)]
#[query(result = Vec<String>)]
struct Approvals;

/// A misbehaving query that tries to start a timer.
#[derive(Query)]
#[query(result = ())]
struct Sneaky;

/// Collects two approvals.
struct Review;
impl Workflow for Review {
    const NAME: &'static str = "review";
    type Input = ();
    type Output = Vec<String>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
        let approvals = QueryState::new(Vec::new());
        approvals.answer::<Approvals>(&ctx, |list, ()| list.clone());
        let sneaky_ctx = ctx.clone();
        ctx.on_query::<Sneaky>(move |()| drop(sneaky_ctx.sleep(Duration::from_secs(1))));
        for _ in 0..2 {
            let Approve(who) = ctx.wait_signal::<Approve>().await?;
            approvals.update(|list| list.push(who));
        }
        Ok(approvals.get())
    }
}

async fn with_worker(cache_size: usize, test: impl AsyncFnOnce(&Client)) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let worker = Worker::builder(store.clone())
        .workflow::<Review>()
        .cache_size(cache_size)
        .start();
    let client = Client::new(store);
    tokio::time::timeout(Duration::from_secs(30), test(&client))
        .await
        .expect("test finished");
    worker.shutdown(Duration::from_secs(1)).await;
}

/// Waits until `id`'s history satisfies `done` (an activation committed).
async fn until_history(client: &Client, id: &str, done: impl Fn(&[refrain::Event]) -> bool) {
    while !done(&client.history(id).await.unwrap()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn signalled(h: &[refrain::Event]) -> bool {
    h.iter()
        .any(|e| matches!(e, refrain::Event::SignalReceived { .. }))
}

fn activated(h: &[refrain::Event]) -> bool {
    h.len() >= 2
}

async fn answered_while_blocked_and_after_close(client: &Client) {
    let h = client.start::<Review>("doc-1", ()).await.unwrap();
    client
        .signal("doc-1", &Approve("ana".into()))
        .await
        .unwrap();
    // The signal was applied (in the first activation or a later one).
    until_history(client, "doc-1", signalled).await;
    let before = client.history("doc-1").await.unwrap();
    let seen = client.query::<Approvals>("doc-1", &()).await.unwrap();
    assert_eq!(seen, ["ana"]);
    assert_eq!(
        client.history("doc-1").await.unwrap(),
        before,
        "a query writes nothing"
    );

    client.signal("doc-1", &Approve("bo".into())).await.unwrap();
    assert_eq!(h.result().await.unwrap(), ["ana", "bo"]);
    let closed = client.query::<Approvals>("doc-1", &()).await.unwrap();
    assert_eq!(
        closed,
        ["ana", "bo"],
        "a closed run answers from its final state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_read_state_from_the_cached_instance() {
    with_worker(100, answered_while_blocked_and_after_close).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_rebuild_the_instance_when_nothing_is_cached() {
    with_worker(0, answered_while_blocked_and_after_close).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_queries_and_handlers_that_issue_commands_are_refused() {
    with_worker(100, async |client: &Client| {
        client.start::<Review>("doc-2", ()).await.unwrap();
        until_history(client, "doc-2", activated).await;
        let before = client.history("doc-2").await.unwrap();

        #[derive(Query)]
        #[query(result = ())]
        struct Missing;
        let err = client.query::<Missing>("doc-2", &()).await.unwrap_err();
        let ClientError::Query(m) = err else {
            panic!("{err}")
        };
        assert!(
            m.contains("\"missing\"") && m.contains("approvals, sneaky"),
            "{m}"
        );

        let err = client.query::<Sneaky>("doc-2", &()).await.unwrap_err();
        assert!(err.to_string().contains("must not issue commands"), "{err}");
        assert_eq!(client.history("doc-2").await.unwrap(), before);
        // The refused command left no trace in the instance either: the
        // workflow goes on exactly as before.
        client.signal("doc-2", &Approve("cy".into())).await.unwrap();
        client.signal("doc-2", &Approve("di".into())).await.unwrap();
        let h = client.handle::<Review>("doc-2").await.unwrap();
        assert_eq!(h.result().await.unwrap(), ["cy", "di"]);

        let err = client.query::<Approvals>("nobody", &()).await.unwrap_err();
        assert!(matches!(err, ClientError::NotFound { .. }), "{err}");
    })
    .await;
}
