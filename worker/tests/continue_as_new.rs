//! Continue-as-new under load, through a real worker and store: signals
//! keep arriving while the workflow hands over from run to run.

use refrain::{
    Client, RunStatus, Signal, Store, StoreConfig, Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const SIGNALS: u32 = 1_000;
const EVENTS_PER_RUN: u64 = 100;

#[derive(Serialize, Deserialize)]
struct Num(u32);
impl Signal for Num {
    const NAME: &'static str = "num";
}

#[derive(Serialize, Deserialize, Default, Debug)]
struct Seen {
    values: Vec<u32>,
    runs: u32,
}

/// Takes `num` signals until it has all of them, continuing as new every
/// ~100 events.
struct Collector;
impl Workflow for Collector {
    const NAME: &'static str = "collector";
    type Input = Seen;
    type Output = Seen;
    async fn run(ctx: WorkflowContext, mut seen: Seen) -> Result<Seen, WorkflowError> {
        seen.runs += 1;
        while (seen.values.len() as u32) < SIGNALS {
            if ctx.history_length() >= EVENTS_PER_RUN {
                ctx.continue_as_new::<Collector>(seen).await;
                unreachable!("continue_as_new never returns");
            }
            seen.values.push(ctx.wait_signal::<Num>().await?.0);
        }
        Ok(seen)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_signals_across_continue_as_new_arrive_once_each_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let worker = Worker::builder(store.clone())
        .workflow::<Collector>()
        .start();
    let client = Client::new(store.clone());
    let handle = client
        .start::<Collector>("collector", Seen::default())
        .await
        .unwrap();
    let sender = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..SIGNALS {
                client.signal("collector", &Num(i)).await.unwrap();
            }
        })
    };
    let seen = tokio::time::timeout(Duration::from_secs(120), handle.result())
        .await
        .expect("collector finished")
        .unwrap();
    sender.await.unwrap();
    assert_eq!(
        seen.values,
        (0..SIGNALS).collect::<Vec<_>>(),
        "none lost, none duplicated, in order"
    );
    assert!(seen.runs > 5, "continued as new {} times", seen.runs - 1);
    let continued = client
        .list(&refrain::RunFilter {
            status: Some(RunStatus::ContinuedAsNew),
            workflow_type: None,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(continued.len() as u32, seen.runs - 1);
    worker.shutdown(Duration::from_secs(1)).await;
}
