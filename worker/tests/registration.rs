//! What a worker says about its registrations: a name registered twice
//! stops it from starting, and an activity type nobody registered is
//! reported at error level (once per type) and in `describe`, instead of
//! the workflow waiting silently.
//!
//! This file is its own test process: it installs the global `tracing`
//! subscriber that collects what the worker logs.

use refrain::{
    Activity, ActivityContext, ActivityError, Client, FailureCause, Store, StoreConfig, Workflow,
    WorkflowContext, WorkflowError,
};
use refrain_worker::{Registered, RegistrationConflict, Worker};
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

struct ChargeCard;
#[refrain::activity]
impl Activity for ChargeCard {
    const NAME: &'static str = "charge-card";
    type Input = u64;
    type Output = String;
    async fn run(&self, _: ActivityContext, cents: u64) -> Result<String, ActivityError> {
        Ok(format!("paid {cents}"))
    }
}

/// Another type under the name `charge-card`.
struct ChargeCardAgain;
#[refrain::activity]
impl Activity for ChargeCardAgain {
    const NAME: &'static str = "charge-card";
    type Input = u64;
    type Output = String;
    async fn run(&self, _: ActivityContext, _: u64) -> Result<String, ActivityError> {
        Ok(String::new())
    }
}

/// Registered on no worker of these tests.
struct ShipGoods;
#[refrain::activity]
impl Activity for ShipGoods {
    const NAME: &'static str = "ship-goods";
    type Input = String;
    type Output = ();
    async fn run(&self, _: ActivityContext, _: String) -> Result<(), ActivityError> {
        Ok(())
    }
}

/// Charges, then ships.
struct Order;
impl Workflow for Order {
    const NAME: &'static str = "order";
    type Input = String;
    type Output = ();
    async fn run(ctx: WorkflowContext, sku: String) -> Result<(), WorkflowError> {
        ctx.activity::<ChargeCard>(100).await?;
        ctx.activity::<ShipGoods>(sku).await?;
        Ok(())
    }
}

/// Another workflow type under the name `order`.
struct OrderAgain;
impl Workflow for OrderAgain {
    const NAME: &'static str = "order";
    type Input = String;
    type Output = ();
    async fn run(_: WorkflowContext, _: String) -> Result<(), WorkflowError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_registered_twice_stops_the_worker_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();

    let same_type = Worker::builder(store.clone())
        .workflow::<Order>()
        .activity(ChargeCard)
        .activity(ChargeCard)
        .try_start();
    let Err(conflict) = same_type else {
        panic!("a worker with `charge-card` registered twice started");
    };
    assert_eq!(conflict.kind, Registered::Activity);
    assert_eq!(conflict.name, "charge-card");
    assert_eq!(
        conflict.to_string(),
        "activity \"charge-card\" is registered twice (type registration::ChargeCard)"
    );

    let two_types = Worker::builder(store.clone())
        .activity(ChargeCard)
        .activity(ChargeCardAgain)
        .try_start();
    let Err(RegistrationConflict { first, second, .. }) = two_types else {
        panic!("a worker with two types named `charge-card` started");
    };
    assert_eq!(
        (first, second),
        ("registration::ChargeCard", "registration::ChargeCardAgain")
    );

    // The same workflow type twice is harmless (a workflow type holds no
    // state; an application's register function beside a test kit's own
    // registration does it), so the worker starts ...
    let same_workflow = Worker::builder(store.clone())
        .workflow::<Order>()
        .workflow::<Order>()
        .try_start();
    let Ok(worker) = same_workflow else {
        panic!("the same workflow type registered twice stopped the worker");
    };
    worker.shutdown(Duration::from_secs(1)).await;

    // ... but two workflow types under one name are a conflict.
    let workflow_twice = Worker::builder(store.clone())
        .workflow::<Order>()
        .workflow::<OrderAgain>()
        .try_start();
    let Err(conflict) = workflow_twice else {
        panic!("a worker with two workflow types named `order` started");
    };
    assert_eq!(
        (conflict.kind, conflict.name.as_str()),
        (Registered::Workflow, "order")
    );

    // `start` refuses too, naming the conflict.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Worker::builder(store.clone())
            .activity(ChargeCard)
            .activity(ChargeCard)
            .start()
    }));
    let message = panicked.err().expect("`start` refused the conflict");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("\"charge-card\" is registered twice"),
        "{message}"
    );

    // Without a conflict the worker starts.
    let worker = Worker::builder(store)
        .workflow::<Order>()
        .activity(ChargeCard)
        .try_start()
        .expect("distinct names start");
    worker.shutdown(Duration::from_secs(5)).await;
}

/// Everything the worker logged, formatted.
fn logged() -> &'static Mutex<Vec<u8>> {
    static LOGGED: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGGED.get_or_init(Mutex::default)
}

struct Collect;
impl Write for Collect {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        logged().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_activity_is_reported_once_per_type_and_shown_in_describe() {
    tracing_subscriber::fmt()
        .with_writer(|| Collect)
        .with_ansi(false)
        .with_max_level(tracing::Level::ERROR)
        .init();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let worker = Worker::builder(store.clone())
        .workflow::<Order>()
        .activity(ChargeCard)
        .start();
    let client = Client::new(store.clone());
    let ids = ["order-1", "order-2"];
    for id in ids {
        client.start::<Order>(id, "sku-1".to_owned()).await.unwrap();
    }

    // Each run waits on `ship-goods`, and `describe` says why.
    for id in ids {
        let failure = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let described = client.describe(id).await.unwrap();
                let failure = described
                    .pending_activities
                    .iter()
                    .find(|a| a.activity_type == "ship-goods")
                    .and_then(|a| a.last_failure.clone());
                if let Some(failure) = failure {
                    return failure;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("an attempt of ship-goods failed and describe shows it");
        assert_eq!(failure.cause, FailureCause::NotRegistered);
        assert!(!failure.non_retryable, "another worker may run it");
        assert_eq!(
            failure.message,
            "no activity \"ship-goods\" is registered on this worker (it runs: charge-card)"
        );
    }

    // One error line for the type, however many runs call it.
    let logged = String::from_utf8(logged().lock().unwrap().clone()).unwrap();
    let reports: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("\"ship-goods\" is not registered"))
        .collect();
    assert_eq!(reports.len(), 1, "{logged}");
    assert!(
        reports[0].contains("registered=charge-card"),
        "{}",
        reports[0]
    );
    worker.shutdown(Duration::from_secs(5)).await;
}
