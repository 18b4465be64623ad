//! What a run waits for, as `Client::waiting_on` (and so `describe`, the
//! API and the dashboard) says it, through a real worker: the signals a
//! workflow is blocked on, by name, as of its last activation, whether
//! the worker kept the run in its cache or replayed it.

use refrain::{
    select, Client, Either, Signal, Store, StoreConfig, Waiting, Workflow, WorkflowContext,
    WorkflowError,
};
use refrain_history::DurabilityMode;
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct StockResolved(String);
impl Signal for StockResolved {
    const NAME: &'static str = "stock-resolved";
}

#[derive(Serialize, Deserialize)]
struct OrderCancelled;
impl Signal for OrderCancelled {
    const NAME: &'static str = "order-cancelled";
}

#[derive(Serialize, Deserialize)]
struct Shipped;
impl Signal for Shipped {
    const NAME: &'static str = "shipped";
}

/// Waits (for at most a day) for stock to be resolved or the order
/// cancelled, then for the shipment.
struct Restock;
impl Workflow for Restock {
    const NAME: &'static str = "restock";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let day = ctx.sleep(Duration::from_secs(86_400));
        let either = select(
            ctx.wait_signal::<StockResolved>(),
            ctx.wait_signal::<OrderCancelled>(),
        );
        let fix = match select(either, day).await {
            Either::Left(Either::Left(fix)) => fix?.0,
            Either::Left(Either::Right(cancelled)) => {
                cancelled?;
                return Ok("cancelled".into());
            }
            Either::Right(()) => return Ok("gave up".into()),
        };
        ctx.wait_signal::<Shipped>().await?;
        Ok(fix)
    }
}

/// The signal names `id` waits for once `waiting_on` lists `expected`.
async fn signals_named(client: &Client, id: &str, expected: &[&str]) -> Vec<Waiting> {
    for _ in 0..2_000 {
        let (_, _, waits) = client.waiting_on(id).await.unwrap();
        let names = waits.iter().find_map(|w| match w {
            Waiting::Signal { names } => Some(names.clone()),
            _ => None,
        });
        if names.as_deref() == Some(&expected.iter().map(|s| s.to_string()).collect::<Vec<_>>()) {
            return waits;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, _, waits) = client.waiting_on(id).await.unwrap();
    panic!("{id} never waited for {expected:?}; it waits on {waits:?}");
}

async fn a_run_names_the_signals_it_waits_for(cache_size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        durability: DurabilityMode::Flush,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let worker = Worker::builder(store)
        .workflow::<Restock>()
        .cache_size(cache_size)
        .start();
    let client = worker.client();
    let h = client.start::<Restock>("order-7", ()).await.unwrap();

    let waits = signals_named(&client, "order-7", &["order-cancelled", "stock-resolved"]).await;
    let texts: Vec<String> = waits.iter().map(ToString::to_string).collect();
    assert!(
        texts
            .iter()
            .any(|t| t == "signal order-cancelled or stock-resolved"),
        "{texts:?}"
    );
    // The day-long timer it also waits on is its own line.
    assert!(waits.iter().any(|w| w.kind() == "timer"), "{texts:?}");

    // A signal it does not wait for changes nothing it waits for.
    client.signal("order-7", &Shipped).await.expect("signal");
    client
        .signal("order-7", &StockResolved("substitute".into()))
        .await
        .expect("signal");
    // The shipment signal arrived before the workflow asked for it: it is
    // taken from the buffer, so the run waits for nothing and completes.
    assert_eq!(h.result().await.unwrap(), "substitute");
    let (_, record, waits) = client.waiting_on("order-7").await.unwrap();
    assert!(record.awaited_signals.is_empty(), "{record:?}");
    assert!(waits.is_empty(), "{waits:?}");

    // Resolved first, the run then waits for the shipment alone.
    let h = client.start::<Restock>("order-8", ()).await.unwrap();
    signals_named(&client, "order-8", &["order-cancelled", "stock-resolved"]).await;
    client
        .signal("order-8", &StockResolved("restocked".into()))
        .await
        .expect("signal");
    let waits = signals_named(&client, "order-8", &["shipped"]).await;
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!(waits[0].to_string(), "signal shipped");
    client.signal("order-8", &Shipped).await.expect("signal");
    assert_eq!(h.result().await.unwrap(), "restocked");
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_run_names_the_signals_it_waits_for() {
    a_run_names_the_signals_it_waits_for(64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_run_names_the_signals_it_waits_for() {
    a_run_names_the_signals_it_waits_for(0).await;
}
