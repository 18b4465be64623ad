//! `Client::waiting_on`: where a run waits, in words, as the API's
//! `describe` and the dashboard's run page show it.

use crate::harness::Harness;
use refrain::Waiting;
use refrain_examples::loan_approval::{Application, LoanApproval, Pace};
use refrain_tests::env::eventually;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_loan_in_review_waits_on_its_underwriter_by_name() {
    let h = Harness::new().await;
    let hour = Duration::from_secs(3600).as_millis() as u64;
    let app = Application {
        application_id: "loan-wait".into(),
        applicant: "bo".into(),
        email: "bo@mail.example".into(),
        amount_eur: 8_000,
        pace: Pace {
            underwriter_deadline_ms: hour,
            manager_deadline_ms: hour,
            remind_every_ms: hour / 4,
        },
    };
    h.client
        .start::<LoanApproval>("loan-wait", app)
        .await
        .expect("start");
    // `waiting_on` is several reads (the run's record, its pending
    // activities, its open tasks), not one snapshot: the open task can be
    // read after the commit that assigns it while the record was read
    // before it (the risk score still running, no reminder timer yet).
    // Wait for a list read wholly after that commit.
    let waits = eventually("the review is assigned", async || {
        let (_, _, waits) = h.client.waiting_on("loan-wait").await.expect("waiting_on");
        let assigned = waits.iter().any(|w| matches!(w, Waiting::HumanTask { .. }));
        let reminder = waits.iter().any(|w| w.kind() == "timer");
        (assigned && reminder).then_some(waits)
    })
    .await;
    let task = waits
        .iter()
        .find(|w| w.kind() == "human_task")
        .expect("a human task");
    let Waiting::HumanTask { deadline, .. } = task else {
        unreachable!()
    };
    let text = task.to_string();
    assert!(
        text.starts_with("human task underwriting-review assigned to underwriter-1, due 20"),
        "{text}"
    );
    // Who is next, from the chain recorded with the assignment.
    assert!(text.ends_with(", escalates to credit-manager"), "{text}");
    // The deadline's timer is the task's, not a second thing to wait on;
    // the reminder's timer is its own line.
    assert!(
        !waits
            .iter()
            .any(|w| matches!(w, Waiting::Timer { fire_at, .. } if Some(*fire_at) == *deadline)),
        "{waits:?}"
    );
    assert!(waits.iter().any(|w| w.kind() == "timer"), "{waits:?}");

    let missing = h.client.waiting_on("no-such-loan").await;
    assert!(matches!(
        missing,
        Err(refrain::ClientError::NotFound { .. })
    ));
}
