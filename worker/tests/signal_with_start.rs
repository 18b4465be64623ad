//! Signal-with-start and a schedule fired by hand, through the typed
//! `Client` calls and a real worker: what a webhook or an operator's
//! button relies on.

use refrain::{
    schedule_for, Client, Signal, StartOptions, Store, StoreConfig, Trigger, TriggerOutcome,
    Workflow, WorkflowContext, WorkflowError,
};
use refrain_history::DurabilityMode;
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct Approve(String);
impl Signal for Approve {
    const NAME: &'static str = "approve";
}

/// Returns the approval that was waiting at its first step, if any,
/// without waiting for one.
struct FirstLook;
impl Workflow for FirstLook {
    const NAME: &'static str = "first-look";
    type Input = ();
    type Output = Option<String>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Option<String>, WorkflowError> {
        Ok(ctx.try_signal::<Approve>()?.map(|a| a.0))
    }
}

/// Waits for an approval and returns it.
struct Approval;
impl Workflow for Approval {
    const NAME: &'static str = "approval";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        Ok(ctx.wait_signal::<Approve>().await?.0)
    }
}

fn open_store(dir: &std::path::Path) -> Store {
    let config = StoreConfig {
        durability: DurabilityMode::Flush,
        ..StoreConfig::default()
    };
    Store::open(dir, config).unwrap()
}

fn start_worker(store: &Store) -> Worker {
    Worker::builder(store.clone())
        .workflow::<FirstLook>()
        .workflow::<Approval>()
        .start()
}

/// A run started by signal-with-start has the signal at its first step;
/// an open run takes the signal and nothing starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_with_start_starts_with_the_signal_or_signals_the_open_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let worker = start_worker(&store);
    let client = worker.client();

    let fresh = client
        .signal_with_start::<FirstLook, _>(
            "look-1",
            (),
            &Approve("yes".into()),
            StartOptions::default(),
            Some("webhook"),
        )
        .await
        .unwrap();
    assert!(fresh.was_started());
    assert_eq!(fresh.result().await.unwrap().as_deref(), Some("yes"));

    let open = client.start::<Approval>("loan-1", ()).await.unwrap();
    let signalled = client
        .signal_with_start::<Approval, _>(
            "loan-1",
            (),
            &Approve("underwriter-1".into()),
            StartOptions::default(),
            Some("underwriter-1"),
        )
        .await
        .unwrap();
    assert!(!signalled.was_started());
    assert_eq!(signalled.run_id(), open.run_id());
    assert_eq!(open.result().await.unwrap(), "underwriter-1");
    worker.shutdown(Duration::from_secs(5)).await;
}

/// A schedule due in an hour, fired by hand, starts a run that completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_schedule_starts_a_run_now() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let worker = start_worker(&store);
    let client = Client::new(store.clone());
    let spec = schedule_for::<FirstLook>("hourly", Trigger::Every(Duration::from_secs(3600)), &())
        .unwrap();
    client.create_schedule(spec).await.unwrap();
    let fired = match client.trigger_schedule("hourly").await.unwrap() {
        TriggerOutcome::Started(run) => run,
        other => panic!("expected a start, got {other:?}"),
    };
    let result = client
        .handle::<FirstLook>(fired.workflow_id.clone())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(result, None);
    worker.shutdown(Duration::from_secs(5)).await;
}
