//! Every run of every example workflow survives the trip out of the store
//! and back: run in-process on a fresh store (with short waits where the
//! example takes them as input, or on the test kit's virtual clock),
//! exported,
//! written as JSON and as binary, read back with the same events, and
//! replayed through the workflow code to the same closed state.

use refrain::history_file::{FileFormat, HistoryExport};
use refrain::{Client, RunFilter, Store, Workflow};
use refrain_examples::employee_onboarding::{self, Director, OnboardingOutcome};
use refrain_examples::history_file_stem;
use refrain_examples::incident_response::{self, IncidentReport};
use refrain_examples::loan_approval::{self, LoanOutcome, Verdict, UNDERWRITER};
use refrain_examples::nightly_reconciliation::{self, NightlyReconciliation, SCHEDULE};
use refrain_examples::order_to_cash::{self, Order, OrderOutcome, OrderToCash, Scenario};
use refrain_testkit::TestEnv;
use std::time::Duration;
use tempfile::TempDir;

const GRACE: Duration = Duration::from_secs(5);

/// Exports every run in `store`, writes each as JSON and as binary, reads
/// both back and replays them. Returns the workflow ids, in run order.
async fn round_trip_every_run(store: &Store) -> Vec<String> {
    let out = tempfile::tempdir().unwrap();
    let replayer = refrain_examples::replayer();
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert!(!runs.is_empty());
    let mut ids = Vec::new();
    for summary in &runs {
        let id = summary.workflow_id.to_string();
        let record = store.run_record(summary.run).unwrap().unwrap();
        let export = HistoryExport::from_run(store, summary.run).await.unwrap();
        assert_eq!(export.workflow_id, summary.workflow_id);
        assert_eq!(export.run, summary.run);
        assert_eq!(export.workflow_type, summary.workflow_type);
        assert_eq!(export.events, store.read_history(summary.run).unwrap());
        assert_eq!(export.events.len() as u64, record.last_seq.0);

        // Ids of schedule runs and child workflows hold `:` and `/`.
        let stem = history_file_stem(&id);
        let json = out.path().join(format!("{stem}.json"));
        let bin = out.path().join(format!("{stem}.bin"));
        export.write_file(&json).unwrap();
        export.write_file(&bin).unwrap();
        assert_eq!(
            FileFormat::sniff(&std::fs::read(&json).unwrap()),
            FileFormat::Json
        );
        assert_eq!(
            FileFormat::sniff(&std::fs::read(&bin).unwrap()),
            FileFormat::Binary
        );

        for file in [&json, &bin] {
            let back = HistoryExport::read_file(file).unwrap();
            assert_eq!(back.events, export.events, "{}", file.display());
            assert_eq!(back, export, "{}", file.display());
            let report = replayer
                .replay_file(file)
                .unwrap_or_else(|e| panic!("{} does not replay:\n{e}", file.display()));
            assert_eq!(report.workflow_id, summary.workflow_id);
            assert_eq!(report.run, summary.run);
            assert_eq!(report.workflow_type, summary.workflow_type);
            assert_eq!(report.events, export.events.len() as u64);
            assert_eq!(
                report.closed,
                !record.status.is_open(),
                "{report} ({})",
                record.status.as_str()
            );
            assert!(report.closed, "every example run finishes: {report}");
        }
        // The JSON text survives import and export unchanged.
        let text = std::fs::read_to_string(&json).unwrap();
        assert_eq!(
            format!("{}\n", HistoryExport::from_json(&text).unwrap().to_json()),
            text
        );
        ids.push(id);
    }
    // And the directory as a whole, as `refrain replay DIR` reads it.
    let results = replayer.replay_dir(out.path());
    assert_eq!(results.len(), 2 * runs.len());
    for (file, r) in results {
        assert!(r.is_ok(), "{}: {}", file.display(), r.unwrap_err());
    }
    ids
}

/// A fresh store in a directory of its own.
fn fresh_store() -> (TempDir, Store) {
    refrain_examples::temporary_store("refrain-round-trip-").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn order_to_cash_fulfilled_and_cancelled() {
    let (_dir, store) = fresh_store();
    let worker = order_to_cash::start_worker(store.clone());
    // The example's own waits, in real time: the warehouse's retries and
    // the operations deadline nobody meets.
    let scenario = Scenario {
        ops_substitutes: false,
    };
    let ended = order_to_cash::run(&Client::new(store.clone()), scenario)
        .await
        .unwrap();
    worker.shutdown(GRACE).await;
    assert!(matches!(ended[0], (ref id, Ok(OrderOutcome::Fulfilled { .. })) if id == "order-1001"));
    assert!(matches!(ended[1], (ref id, Ok(OrderOutcome::Cancelled { .. })) if id == "order-1002"));
    assert_eq!(
        round_trip_every_run(&store).await,
        ["order-1001", "order-1002"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn order_to_cash_with_a_substitute() {
    // Virtual time: operations answer while the order waits for them,
    // however slow the machine, and the deadline passes only if they do
    // not.
    let env = TestEnv::new().await;
    env.register_with(order_to_cash::register);
    let order = order_to_cash::orders().remove(1);
    let handle = env.start::<OrderToCash>("order-1002", order).await.unwrap();
    // Past the warehouse's two retries (250 ms, then 500 ms), well within
    // the operations deadline that follows them.
    env.skip(order_to_cash::WAREHOUSE_RETRY * 4).await.unwrap();
    let client = env.client().await.unwrap();
    order_to_cash::operations_offer_substitute(&client, "order-1002")
        .await
        .unwrap();
    let outcome = env.result(&handle).await;
    assert!(
        matches!(outcome, Ok(OrderOutcome::Fulfilled { .. })),
        "{outcome:?}"
    );
    let store = env.store().await.unwrap();
    assert_eq!(round_trip_every_run(&store).await, ["order-1002"]);
    drop((client, store));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn order_to_cash_with_credit_declined() {
    let (_dir, store) = fresh_store();
    let worker = order_to_cash::start_worker(store.clone());
    let client = Client::new(store.clone());
    let order = Order {
        order_id: "order-1003".into(),
        customer: "Initech".into(),
        sku: "KB-ERGO-2".into(),
        quantity: 1,
        amount_cents: 14_900,
    };
    let outcome = client
        .start::<OrderToCash>("order-1003", order)
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    worker.shutdown(GRACE).await;
    let OrderOutcome::Cancelled { reason, undone } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.starts_with("credit check failed"), "{reason}");
    assert!(undone.is_empty(), "nothing to undo: {undone:?}");
    assert_eq!(round_trip_every_run(&store).await, ["order-1003"]);
}

async fn onboarding(director: Director) -> OnboardingOutcome {
    let (_dir, store) = fresh_store();
    let worker = employee_onboarding::start_worker(store.clone());
    let (id, outcome) = employee_onboarding::run(
        &Client::new(store.clone()),
        employee_onboarding::Scenario::fast(director),
    )
    .await
    .unwrap();
    worker.shutdown(GRACE).await;
    assert_eq!(round_trip_every_run(&store).await, [id]);
    outcome.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn employee_onboarding_approved_after_escalation() {
    let outcome = onboarding(Director::Approves).await;
    assert!(
        matches!(&outcome, OnboardingOutcome::Ready { approved_by, .. } if approved_by == "Sam Okafor"),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn employee_onboarding_declined() {
    let outcome = onboarding(Director::Declines).await;
    assert!(
        matches!(&outcome, OnboardingOutcome::SentToHr { reason } if reason.contains("declined")),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn employee_onboarding_nobody_answers() {
    let outcome = onboarding(Director::Away).await;
    assert!(
        matches!(&outcome, OnboardingOutcome::SentToHr { reason } if reason.contains("nobody")),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn incident_response_escalated_and_acknowledged() {
    let (_dir, store) = fresh_store();
    let worker = incident_response::start_worker(store.clone());
    // Tier 1 sleeps through their deadline (the example's, in real time:
    // this test is about the sled store's round trip); tier 2
    // acknowledges as soon as paged.
    let scenario = incident_response::Scenario {
        tier2_acknowledges: true,
    };
    let (id, outcome) = incident_response::run(&Client::new(store.clone()), scenario)
        .await
        .unwrap();
    worker.shutdown(GRACE).await;
    let report: IncidentReport = outcome.unwrap();
    assert_eq!(report.acknowledged_by, incident_response::TIER2);
    assert_eq!(report.escalation_level, 1);
    assert!(report.outcome.starts_with("resolved: "), "{report:?}");
    assert_eq!(round_trip_every_run(&store).await, [id]);
}

async fn loans(underwriter: Verdict) -> Vec<LoanOutcome> {
    let (_dir, store) = fresh_store();
    let worker = loan_approval::start_worker(store.clone());
    let scenario = loan_approval::Scenario {
        underwriter: loan_approval::Underwriter::Decides(underwriter),
        // underwriter-1 decides as soon as the applicant has amended; the
        // deadline is there only so that a slow machine does not escalate.
        pace: loan_approval::Pace {
            underwriter_deadline_ms: 30_000,
            ..loan_approval::Pace::EXAMPLE
        },
    };
    let ended = loan_approval::run(&Client::new(store.clone()), scenario)
        .await
        .unwrap();
    worker.shutdown(GRACE).await;
    assert_eq!(
        round_trip_every_run(&store).await,
        ["loan-ada", "loan-bo", "loan-cy"]
    );
    let outcomes: Vec<LoanOutcome> = ended.into_iter().map(|(_, o)| o.unwrap()).collect();
    assert!(
        matches!(&outcomes[0], LoanOutcome::Approved { decided_by, .. } if decided_by.ends_with("(automatic)")),
        "{:?}",
        outcomes[0]
    );
    assert!(
        matches!(&outcomes[2], LoanOutcome::ProvisioningFailed { undone, .. }
            if undone.contains("close the account, then release the credit reservation")),
        "{:?}",
        outcomes[2]
    );
    outcomes
}

#[tokio::test(flavor = "multi_thread")]
async fn loan_approval_underwriter_approves() {
    let outcomes = loans(Verdict::Approve).await;
    assert!(
        matches!(&outcomes[1], LoanOutcome::Approved { decided_by, .. } if decided_by == UNDERWRITER),
        "{:?}",
        outcomes[1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn loan_approval_underwriter_rejects() {
    let outcomes = loans(Verdict::Reject).await;
    assert!(
        matches!(&outcomes[1], LoanOutcome::Rejected { decided_by, .. } if decided_by == UNDERWRITER),
        "{:?}",
        outcomes[1]
    );
}

/// The schedule starts the nights, and each night its three batches:
/// every one of those runs makes the trip.
#[tokio::test(flavor = "multi_thread")]
async fn nightly_reconciliation_nights_and_their_batches() {
    let (_dir, store) = fresh_store();
    let worker = nightly_reconciliation::start_worker(store.clone());
    let client = Client::new(store.clone());
    let scenario = nightly_reconciliation::Scenario::FAST;
    let completed = nightly_reconciliation::run(&client, scenario)
        .await
        .unwrap();
    worker.shutdown(GRACE).await;
    assert!(completed.len() >= scenario.nights, "{completed:?}");
    assert!(
        client.list_schedules().await.unwrap().is_empty(),
        "the example deletes its schedule"
    );
    let nights = store
        .list_runs(&RunFilter {
            status: None,
            workflow_type: Some(NightlyReconciliation::NAME.into()),
            ..Default::default()
        })
        .unwrap();
    // A run the schedule started completes like the others (the example
    // waits for one started just before its pause).
    assert_eq!(nights.len(), completed.len());
    let mut expected = Vec::new();
    for (id, report) in &completed {
        assert!(id.starts_with(&format!("{SCHEDULE}@")), "{id}");
        assert_eq!((report.accounts, report.batches), (23, 3), "{id}");
        expected.push(id.clone());
        expected.extend((1..=3).map(|n| format!("{id}/batch-{n}")));
    }
    let mut ids = round_trip_every_run(&store).await;
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
}
