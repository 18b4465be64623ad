//! Updates through a real worker and client: an accepted update runs its
//! handler (activities included) and returns its result, recorded in the
//! history; a rejected one returns the validator's reason and leaves the
//! history exactly as it was; a repeated update id is answered once; the
//! recorded updates replay after the instance is evicted or the process
//! restarts.

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, ClientError, Event, Signal,
    Store, StoreConfig, Update, Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Reprints a shipping label; counts its runs.
struct PrintLabel(Arc<AtomicUsize>);
#[async_trait]
impl Activity for PrintLabel {
    const NAME: &'static str = "print-label";
    type Input = String;
    type Output = String;
    async fn run(&self, _: ActivityContext, street: String) -> Result<String, ActivityError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(format!("label for {street}"))
    }
}

/// Changes an order's delivery address until it ships.
struct ChangeAddress;
impl Update for ChangeAddress {
    const NAME: &'static str = "change-address";
    type Args = String;
    type Result = String;
}

#[derive(Serialize, Deserialize)]
struct Ship;
impl Signal for Ship {
    const NAME: &'static str = "ship";
}

/// An order waiting to ship; its address may change until then, never to
/// an empty street, and not to a PO box (the handler refuses those after
/// accepting, to show a failed update).
struct Order;
impl Workflow for Order {
    const NAME: &'static str = "order";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, street: String) -> Result<String, WorkflowError> {
        let address = Rc::new(RefCell::new(street));
        let (set, c) = (address.clone(), ctx.clone());
        ctx.on_update::<ChangeAddress, _, _, _>(
            |street| {
                if street.trim().is_empty() {
                    Err("the street is empty".into())
                } else {
                    Ok(())
                }
            },
            move |street| {
                let (set, c) = (set.clone(), c.clone());
                async move {
                    if street.starts_with("PO Box") {
                        return Err(WorkflowError::new(
                            "po-box",
                            "we cannot deliver to a PO box",
                        ));
                    }
                    let label = c.activity::<PrintLabel>(street.clone()).await?;
                    *set.borrow_mut() = street;
                    Ok(label)
                }
            },
        );
        ctx.wait_signal::<Ship>().await?;
        let shipped_to = address.borrow().clone();
        Ok(shipped_to)
    }
}

struct Harness {
    client: Client,
    worker: Worker,
    labels: Arc<AtomicUsize>,
}

fn start_worker(dir: &Path, cache_size: usize, labels: &Arc<AtomicUsize>) -> Harness {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let worker = Worker::builder(store.clone())
        .workflow::<Order>()
        .activity(PrintLabel(labels.clone()))
        .cache_size(cache_size)
        .start();
    Harness {
        client: Client::new(store),
        worker,
        labels: labels.clone(),
    }
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("finished in time")
}

/// Waits until the first activation of `id` committed.
async fn until_started(client: &Client, id: &str) {
    while client.history(id).await.unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn update_events(history: &[Event]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match e {
            Event::UpdateRequested { .. } => Some("requested".to_owned()),
            Event::UpdateAccepted {
                update_id, name, ..
            } => Some(format!("accepted {name} {update_id}")),
            Event::UpdateCompleted { update_id, .. } => Some(format!("completed {update_id}")),
            Event::UpdateFailed { update_id, .. } => Some(format!("failed {update_id}")),
            _ => None,
        })
        .collect()
}

async fn accepted_rejected_and_failed(cache_size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let labels = Arc::new(AtomicUsize::new(0));
    let h = start_worker(dir.path(), cache_size, &labels);
    let client = &h.client;
    timed(async {
        let order = client
            .start::<Order>("order-1", "1 Main St".into())
            .await
            .unwrap();
        until_started(client, "order-1").await;

        // Rejected by the validator: an error with its reason, and not one
        // byte of history.
        let before = client.history("order-1").await.unwrap();
        let err = client
            .update::<ChangeAddress>("order-1", &"  ".into())
            .await
            .unwrap_err();
        match &err {
            ClientError::UpdateRejected { reason, .. } => {
                assert_eq!(reason, "the street is empty")
            }
            other => panic!("expected a rejection, got {other}"),
        }
        assert_eq!(client.history("order-1").await.unwrap(), before);

        // Accepted: the handler's activity ran and its result came back.
        let label = client
            .update::<ChangeAddress>("order-1", &"2 Oak Ave".into())
            .await
            .unwrap();
        assert_eq!(label, "label for 2 Oak Ave");

        // Accepted, then failed by the handler: recorded, reported.
        let err = client
            .update_with_id::<ChangeAddress>("order-1", "po", &"PO Box 9".into())
            .await
            .unwrap_err();
        match &err {
            ClientError::UpdateFailed { failure, .. } => {
                assert_eq!(failure.message, "we cannot deliver to a PO box")
            }
            other => panic!("expected a failed update, got {other}"),
        }

        client.signal("order-1", &Ship).await.unwrap();
        assert_eq!(order.result().await.unwrap(), "2 Oak Ave");
        let history = client.history("order-1").await.unwrap();
        let updates = update_events(&history);
        assert_eq!(updates.len(), 4, "{updates:?}");
        assert!(updates[0].starts_with("accepted change-address "));
        assert!(updates[1].starts_with("completed "));
        assert_eq!(updates[2..], ["accepted change-address po", "failed po"]);
        assert_eq!(labels.load(Ordering::SeqCst), 1);
    })
    .await;
    h.worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_validated_answered_and_recorded() {
    accepted_rejected_and_failed(100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_replay_when_nothing_is_cached() {
    // Every activation rebuilds the instance from history, so each one
    // replays the recorded updates (and their handlers' commands).
    accepted_rejected_and_failed(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_update_id_is_applied_once_and_answered_again() {
    let dir = tempfile::tempdir().unwrap();
    let labels = Arc::new(AtomicUsize::new(0));
    let h = start_worker(dir.path(), 100, &labels);
    let client = &h.client;
    timed(async {
        client
            .start::<Order>("order-2", "1 Main St".into())
            .await
            .unwrap();
        let first = client
            .update_with_id::<ChangeAddress>("order-2", "move-1", &"3 Elm Rd".into())
            .await
            .unwrap();
        let again = client
            .update_with_id::<ChangeAddress>("order-2", "move-1", &"3 Elm Rd".into())
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(labels.load(Ordering::SeqCst), 1, "the handler ran once");
        let history = client.history("order-2").await.unwrap();
        assert_eq!(
            update_events(&history),
            ["accepted change-address move-1", "completed move-1"]
        );

        // Unknown updates and workflows are named errors.
        struct Cancel;
        impl Update for Cancel {
            const NAME: &'static str = "cancel-order";
            type Args = ();
            type Result = ();
        }
        let err = client.update::<Cancel>("order-2", &()).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("does not accept update \"cancel-order\" (it accepts: change-address)"),
            "{err}"
        );
        let err = client
            .update::<ChangeAddress>("nobody", &"x".into())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::NotFound { .. }), "{err}");

        // After the run closed, the same id still gets its answer.
        client.signal("order-2", &Ship).await.unwrap();
        client
            .handle::<Order>("order-2")
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
        let late = client
            .update_with_id::<ChangeAddress>("order-2", "move-1", &"3 Elm Rd".into())
            .await
            .unwrap();
        assert_eq!(late, first);
        let err = client
            .update::<ChangeAddress>("order-2", &"4 Ash Ln".into())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Closed { .. }), "{err}");
    })
    .await;
    h.worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_accepted_before_a_restart_completes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let labels = Arc::new(AtomicUsize::new(0));
    {
        // A worker without the activity: the handler's activity waits.
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let worker = Worker::builder(store.clone()).workflow::<Order>().start();
        let client = Client::new(store);
        timed(async {
            client
                .start::<Order>("order-3", "1 Main St".into())
                .await
                .unwrap();
            let caller = {
                let client = client.clone();
                tokio::spawn(async move {
                    client
                        .update_with_id::<ChangeAddress>("order-3", "move", &"5 Pine Ct".into())
                        .await
                })
            };
            while !update_events(&client.history("order-3").await.unwrap())
                .contains(&"accepted change-address move".to_owned())
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            caller.abort();
        })
        .await;
        worker.shutdown(Duration::from_secs(1)).await;
    }
    let h = start_worker(dir.path(), 100, &labels);
    let client = &h.client;
    timed(async {
        // The caller retries with its id after the restart and gets the
        // answer of the update accepted before it.
        let label = client
            .update_with_id::<ChangeAddress>("order-3", "move", &"5 Pine Ct".into())
            .await
            .unwrap();
        assert_eq!(label, "label for 5 Pine Ct");
        client.signal("order-3", &Ship).await.unwrap();
        let shipped = client
            .handle::<Order>("order-3")
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
        assert_eq!(shipped, "5 Pine Ct");
        assert_eq!(h.labels.load(Ordering::SeqCst), 1);
    })
    .await;
    h.worker.shutdown(Duration::from_secs(1)).await;
}
