//! The worker's retention service: once the clock passes a closed run's
//! retention, the run is purged without anyone asking; an open run, and a
//! closed run of a type kept longer, stay.

use refrain::{
    Client, ClientError, RetentionPolicy, Store, StoreConfig, Workflow, WorkflowContext,
    WorkflowError,
};
use refrain_history::Timestamp;
use refrain_worker::Worker;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

struct Quick;
impl Workflow for Quick {
    const NAME: &'static str = "quick";
    type Input = u32;
    type Output = u32;
    async fn run(_: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        Ok(n)
    }
}

struct Ledger;
impl Workflow for Ledger {
    const NAME: &'static str = "ledger";
    type Input = u32;
    type Output = u32;
    async fn run(_: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        Ok(n)
    }
}

struct Waits;
impl Workflow for Waits {
    const NAME: &'static str = "waits";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
        ctx.sleep(100 * DAY).await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_runs_past_their_retention_are_purged_by_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    // Days the clock has been moved on by.
    let skew = Arc::new(AtomicU64::new(0));
    let clock = {
        let skew = skew.clone();
        move || Timestamp::now().saturating_add(DAY * skew.load(Ordering::SeqCst) as u32)
    };
    let policy = RetentionPolicy::keep_for(30 * DAY).with_type("ledger", 3650 * DAY);
    let worker = Worker::builder(store.clone())
        .workflow::<Quick>()
        .workflow::<Ledger>()
        .workflow::<Waits>()
        .schedule_clock(clock)
        .retention(policy, Duration::from_millis(20))
        .start();
    let client = Client::new(store);
    let ledger = client.start::<Ledger>("ledger-1", 1).await.unwrap();
    let quick = client.start::<Quick>("quick-1", 2).await.unwrap();
    client.start::<Waits>("waits-1", ()).await.unwrap();
    assert_eq!(ledger.result().await.unwrap(), 1);
    assert_eq!(quick.result().await.unwrap(), 2);

    skew.store(31, Ordering::SeqCst);
    let gone = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match client.describe("quick-1").await {
                Err(ClientError::NotFound { .. }) => return,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("describe: {e}"),
            }
        }
    })
    .await;
    assert!(gone.is_ok(), "quick-1 was never purged");
    // The service's pass reached quick-1 after the older ledger-1.
    assert!(
        client.describe("ledger-1").await.is_ok(),
        "a ledger run was purged"
    );
    assert!(
        client.describe("waits-1").await.is_ok(),
        "an open run was purged"
    );
    worker.shutdown(Duration::from_secs(5)).await;
}
