//! `Saga` through a real worker: compensations run newest first, each its
//! own activity with its own retry policy, past failures, and after a
//! cancellation too; an undo step can be just an activity call and its
//! input. Checked against the history and against a ledger the activities
//! write.

use refrain::history_file::HistoryExport;
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, ClientError, Event,
    FailureCause, RetryPolicy, RunStatus, Saga, Store, StoreConfig, Workflow, WorkflowContext,
    WorkflowError,
};
use refrain_worker::{Replayer, Worker};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What every activity of these tests writes: `name#attempt`, in the order
/// the attempts ran. Some steps fail on their first attempt, some always.
#[derive(Clone, Default)]
struct Ledger {
    entries: Arc<Mutex<Vec<String>>>,
    fail_once: Vec<&'static str>,
    fail_always: Vec<&'static str>,
}

impl Ledger {
    fn record(&self, name: &'static str, attempt: u32) -> Result<(), ActivityError> {
        self.entries
            .lock()
            .unwrap()
            .push(format!("{name}#{attempt}"));
        if self.fail_always.contains(&name) {
            return Err(ActivityError::non_retryable(format!("{name} is broken")));
        }
        if self.fail_once.contains(&name) && attempt == 1 {
            return Err(ActivityError::retryable(format!("{name}: try again")));
        }
        Ok(())
    }

    fn entries(&self) -> Vec<String> {
        self.entries.lock().unwrap().clone()
    }
}

macro_rules! step {
    ($ty:ident, $name:literal) => {
        struct $ty(Ledger);

        #[async_trait]
        impl Activity for $ty {
            const NAME: &'static str = $name;
            type Input = ();
            type Output = ();
            async fn run(&self, ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
                self.0.record($name, ctx.attempt())
            }
        }
    };
}

step!(ReserveCredit, "reserve-credit");
step!(ReleaseCredit, "release-credit");
step!(OpenAccount, "open-account");
step!(CloseAccount, "close-account");
step!(OrderCardStock, "order-card-stock");
step!(ReturnCardStock, "return-card-stock");
step!(IssueCard, "issue-card");

/// Refunds a payment: its input is the payment to refund.
struct Refund(Ledger);

#[async_trait]
impl Activity for Refund {
    const NAME: &'static str = "refund";
    type Input = String;
    type Output = ();
    async fn run(&self, ctx: ActivityContext, payment: String) -> Result<(), ActivityError> {
        self.0
            .entries
            .lock()
            .unwrap()
            .push(format!("refund {payment}#{}", ctx.attempt()));
        Ok(())
    }
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy::exponential()
        .initial_interval(Duration::from_millis(20))
        .max_attempts(5)
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Report {
    compensated: Vec<String>,
    failed: Vec<String>,
}

/// Provisions an account; card issuance fails, so everything is undone.
struct Provision;
impl Workflow for Provision {
    const NAME: &'static str = "provision";
    type Input = ();
    type Output = Report;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Report, WorkflowError> {
        let mut saga = Saga::new();
        ctx.activity::<ReserveCredit>(()).await?;
        saga.add_named("release-credit", |ctx| async move {
            ctx.activity::<ReleaseCredit>(())
                .retry(quick_retry())
                .await
                .map(drop)
        });
        ctx.activity::<OpenAccount>(()).await?;
        saga.add_named("close-account", |ctx| async move {
            ctx.activity::<CloseAccount>(())
                .retry(quick_retry())
                .await
                .map(drop)
        });
        ctx.activity::<OrderCardStock>(()).await?;
        saga.add(|ctx| async move {
            ctx.activity::<ReturnCardStock>(())
                .retry(quick_retry())
                .await
                .map(drop)
        });
        assert_eq!(saga.len(), 3);
        if ctx
            .activity::<IssueCard>(())
            .retry(RetryPolicy::exponential().max_attempts(1))
            .await
            .is_ok()
        {
            return Ok(Report {
                compensated: Vec::new(),
                failed: Vec::new(),
            });
        }
        let report = saga.compensate(&ctx).await;
        assert!(saga.is_empty());
        assert!(!report.is_complete());
        Ok(Report {
            compensated: report.compensated,
            failed: report.failed.into_iter().map(|f| f.step).collect(),
        })
    }
}

/// Does two steps, then waits; a cancellation undoes both.
struct ProvisionThenWait;
impl Workflow for ProvisionThenWait {
    const NAME: &'static str = "provision-then-wait";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        let mut saga = Saga::new();
        let work = async {
            ctx.activity::<ReserveCredit>(()).await?;
            saga.add_named("release-credit", |ctx| async move {
                ctx.activity::<ReleaseCredit>(()).await.map(drop)
            });
            ctx.activity::<OpenAccount>(()).await?;
            saga.add_named("close-account", |ctx| async move {
                ctx.activity::<CloseAccount>(())
                    .retry(quick_retry())
                    .await
                    .map(drop)
            });
            ctx.sleep(Duration::from_secs(3600)).await;
            Ok::<(), WorkflowError>(())
        };
        match ctx.or_cancelled(work).await {
            Ok(done) => done,
            Err(cancelled) => {
                let report = saga.compensate(&ctx).await;
                if !report.is_complete() {
                    return Err(WorkflowError::new("compensation", report.to_string()));
                }
                Err(cancelled)
            }
        }
    }
}

/// Takes a payment and opens an account, registering each undo step as
/// the activity call that undoes it; card issuance fails.
struct ProvisionByActivity;
impl Workflow for ProvisionByActivity {
    const NAME: &'static str = "provision-by-activity";
    type Input = String;
    type Output = Report;
    async fn run(ctx: WorkflowContext, payment: String) -> Result<Report, WorkflowError> {
        let mut saga = Saga::new();
        ctx.activity::<ReserveCredit>(()).await?;
        saga.add_activity::<Refund>(payment)
            .named("refund the payment");
        ctx.activity::<OpenAccount>(()).await?;
        saga.add_activity::<CloseAccount>(()).retry(quick_retry());
        let issued = ctx
            .activity::<IssueCard>(())
            .retry(RetryPolicy::exponential().max_attempts(1))
            .await;
        assert!(issued.is_err());
        let report = saga.compensate(&ctx).await;
        Ok(Report {
            compensated: report.compensated,
            failed: report.failed.into_iter().map(|f| f.step).collect(),
        })
    }
}

fn start_worker(store: &Store, ledger: &Ledger) -> Worker {
    Worker::builder(store.clone())
        .workflow::<Provision>()
        .workflow::<ProvisionThenWait>()
        .workflow::<ProvisionByActivity>()
        .activity(Refund(ledger.clone()))
        .activity(ReserveCredit(ledger.clone()))
        .activity(ReleaseCredit(ledger.clone()))
        .activity(OpenAccount(ledger.clone()))
        .activity(CloseAccount(ledger.clone()))
        .activity(OrderCardStock(ledger.clone()))
        .activity(ReturnCardStock(ledger.clone()))
        .activity(IssueCard(ledger.clone()))
        .start()
}

/// Activity types scheduled, in history order, with how each ended.
fn activity_trail(history: &[Event]) -> Vec<String> {
    let mut names = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for e in history {
        match e {
            Event::ActivityScheduled {
                cmd, activity_type, ..
            } => {
                names.insert(*cmd, activity_type.clone());
            }
            Event::ActivityCompleted { cmd, attempt, .. } => {
                out.push(format!("{} ok after {attempt}", names[cmd]))
            }
            Event::ActivityFailed { cmd, attempt, .. } => {
                out.push(format!("{} FAILED after {attempt}", names[cmd]))
            }
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compensations_run_newest_first_retrying_and_past_failures() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let ledger = Ledger {
        fail_once: vec!["close-account"],
        fail_always: vec!["issue-card", "return-card-stock"],
        ..Ledger::default()
    };
    let worker = start_worker(&store, &ledger);
    let client = Client::new(store.clone());
    let handle = client.start::<Provision>("acct-1", ()).await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        report,
        Report {
            compensated: vec!["close-account".into(), "release-credit".into()],
            failed: vec!["compensation 3".into()],
        }
    );
    assert_eq!(
        ledger.entries(),
        [
            "reserve-credit#1",
            "open-account#1",
            "order-card-stock#1",
            "issue-card#1",
            "return-card-stock#1",
            "close-account#1",
            "close-account#2",
            "release-credit#1",
        ]
    );
    let history = client.history("acct-1").await.unwrap();
    assert_eq!(
        activity_trail(&history),
        [
            "reserve-credit ok after 1",
            "open-account ok after 1",
            "order-card-stock ok after 1",
            "issue-card FAILED after 1",
            "return-card-stock FAILED after 1",
            "close-account ok after 2",
            "release-credit ok after 1",
        ]
    );
    // Each compensation was scheduled with its own policy.
    let close_policy = history.iter().find_map(|e| match e {
        Event::ActivityScheduled {
            activity_type,
            options,
            ..
        } if activity_type == "close-account" => Some(options.retry.clone()),
        _ => None,
    });
    assert_eq!(close_policy, Some(quick_retry()));
    Replayer::new()
        .workflow::<Provision>()
        .replay(
            &HistoryExport::from_store(&store, &"acct-1".into())
                .await
                .unwrap(),
        )
        .unwrap();
    worker.shutdown(Duration::from_secs(5)).await;
}

/// `saga.add_activity::<A>(input)`: the undo step is the activity call
/// itself, scheduled only when compensating, with the input given at
/// registration, the options set on the step, and the source line of the
/// registration as its callsite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_undo_step_is_called_with_its_input_and_options_only_when_compensating() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let ledger = Ledger {
        fail_once: vec!["close-account"],
        fail_always: vec!["issue-card"],
        ..Ledger::default()
    };
    let worker = start_worker(&store, &ledger);
    let client = Client::new(store.clone());
    let handle = client
        .start::<ProvisionByActivity>("acct-3", "pay-7".to_owned())
        .await
        .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        report,
        Report {
            compensated: vec!["close-account".into(), "refund the payment".into()],
            failed: Vec::new(),
        }
    );
    assert_eq!(
        ledger.entries(),
        [
            "reserve-credit#1",
            "open-account#1",
            "issue-card#1",
            "close-account#1",
            "close-account#2",
            "refund pay-7#1",
        ]
    );
    let history = client.history("acct-3").await.unwrap();
    assert_eq!(
        activity_trail(&history),
        [
            "reserve-credit ok after 1",
            "open-account ok after 1",
            "issue-card FAILED after 1",
            "close-account ok after 2",
            "refund ok after 1",
        ]
    );
    let scheduled = |name: &str| {
        history.iter().find_map(|e| match e {
            Event::ActivityScheduled {
                activity_type,
                options,
                callsite,
                ..
            } if activity_type == name => Some((options.clone(), callsite.clone())),
            _ => None,
        })
    };
    let (close, close_site) = scheduled("close-account").unwrap();
    assert_eq!(close.retry, quick_retry());
    let (_, refund_site) = scheduled("refund").unwrap();
    for site in [close_site, refund_site] {
        assert!(
            site.file.ends_with("saga.rs") && site.file.contains("tests"),
            "the callsite is the registration in the workflow, not the saga: {site:?}"
        );
    }
    Replayer::new()
        .workflow::<ProvisionByActivity>()
        .replay(
            &HistoryExport::from_store(&store, &"acct-3".into())
                .await
                .unwrap(),
        )
        .unwrap();
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_workflow_compensates_before_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let ledger = Ledger {
        fail_once: vec!["close-account"],
        ..Ledger::default()
    };
    let worker = start_worker(&store, &ledger);
    let client = Client::new(store.clone());
    let handle = client
        .start::<ProvisionThenWait>("acct-2", ())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !client
            .history("acct-2")
            .await
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::TimerStarted { .. }))
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the workflow reached its wait");
    client
        .cancel("acct-2", "applicant withdrew", Some("support"))
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .unwrap();
    match ended {
        Err(ClientError::WorkflowFailed { failure, .. }) => {
            assert_eq!(failure.cause, FailureCause::Cancelled);
            assert_eq!(failure.message, "applicant withdrew");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client.describe("acct-2").await.unwrap().status(),
        RunStatus::Cancelled
    );
    assert_eq!(
        ledger.entries(),
        [
            "reserve-credit#1",
            "open-account#1",
            "close-account#1",
            "close-account#2",
            "release-credit#1",
        ]
    );
    let history = client.history("acct-2").await.unwrap();
    let requested = history
        .iter()
        .position(|e| matches!(e, Event::WorkflowCancelRequested { .. }))
        .unwrap();
    let undo_scheduled: Vec<_> = history[requested..]
        .iter()
        .filter_map(|e| match e {
            Event::ActivityScheduled { activity_type, .. } => Some(activity_type.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(undo_scheduled, ["close-account", "release-credit"]);
    assert!(matches!(
        history.last(),
        Some(Event::WorkflowCancelled { .. })
    ));
    worker.shutdown(Duration::from_secs(5)).await;
}
