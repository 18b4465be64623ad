//! The stories the examples tell off their default path, run end to end
//! on a real worker (on a sled store, or on the test kit's in-memory store
//! and virtual clock) and asserted from what the history records (never
//! from how long anything took):
//!
//! - nobody acknowledges the incident: the page escalates from tier 1 to
//!   tier 2, the task closes on the fallback, and the safe runbook runs;
//! - nobody decides the loan: the review escalates from underwriter-1 to
//!   the credit manager, the task closes on the fallback, and the
//!   application is declined without provisioning anything;
//! - the applicant amends the amount while the review waits: a negative
//!   amount is refused without a trace, the accepted amendment is
//!   recorded and is the amount the rest of the workflow uses;
//! - an amendment after the decision is refused without a trace.
//!
//! Where nobody answers, the incident's waits are the example's own,
//! skipped by the virtual clock of `refrain_testkit::TestEnv`, and the
//! loan's are short ([`loan_approval::Pace::FAST`]); where somebody
//! answers they are long, so that no outcome depends on the machine's
//! speed.

use refrain::history_file::HistoryExport;
use refrain::human_task::FALLBACK_DECIDER;
use refrain::{Activity, Client, ClientError, Event, HumanTaskNotice, NoticeKind, Store, Update};
use refrain_examples::incident_response::{
    self, IncidentReport, PageOnCall, PostStatusUpdate, StatusUpdate, NOBODY, SAFE_RUNBOOK, TIER1,
    TIER2,
};
use refrain_examples::loan_approval::{
    self, AmendAmount, Amendment, Application, CreditReservation, LoanApproval, LoanOutcome,
    LoanTerms, Message, NotifyApplicant, NotifyUnderwriter, ReserveCreditLine, UnderwritingForm,
    Verdict, BO, BO_AMENDED_EUR, CREDIT_MANAGER, UNDERWRITER,
};
use refrain_history::Timestamp;
use refrain_testkit::TestEnv;
use serde::de::DeserializeOwned;
use std::time::Duration;

const GRACE: Duration = Duration::from_secs(5);

fn decode<T: DeserializeOwned>(p: &refrain::Payload) -> T {
    serde_json::from_slice(p.as_bytes()).unwrap()
}

/// The history replays through the example's code to its closed state.
async fn assert_replays(store: &Store, id: &str) {
    let (run, _) = store.latest_run(&id.into()).unwrap().unwrap();
    let export = HistoryExport::from_run(store, run).await.unwrap();
    let report = refrain_examples::replayer().replay(&export).unwrap();
    assert!(report.closed, "{report}");
}

/// Each event with the time of the activation that recorded it (`None`
/// for `WorkflowStarted`, which comes before the first).
fn timeline(history: &[Event]) -> Vec<(Option<Timestamp>, &Event)> {
    let mut now = None;
    history
        .iter()
        .map(|e| {
            if let Event::ActivationStarted { time } = e {
                now = Some(*time);
            }
            (now, e)
        })
        .collect()
}

/// The inputs of every scheduling of activity `A`, in order.
fn inputs<A: refrain::Activity>(history: &[Event]) -> Vec<A::Input> {
    history
        .iter()
        .filter_map(|e| match e {
            Event::ActivityScheduled {
                activity_type,
                input,
                ..
            } if activity_type == A::NAME => Some(decode(input)),
            _ => None,
        })
        .collect()
}

/// Where in `history` the first event matching `pred` is.
fn position(history: &[Event], what: &str, pred: impl Fn(&Event) -> bool) -> usize {
    history
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} in the history"))
}

/// What a human task's history says happened, checked for the shape
/// every escalation to the fallback has: assigned to `first` (level 0,
/// deadline `first_within` after the assignment), escalated once to
/// `second` (level 1, deadline `second_within` after the escalation, and
/// not before `first`'s deadline), reminded at least once each and only
/// while they held it, closed on the fallback after `second`'s deadline,
/// and never decided. Returns the position of the closing event.
fn assert_escalated_to_the_fallback(
    history: &[Event],
    (first, first_within): (&str, Duration),
    (second, second_within): (&str, Duration),
) -> usize {
    let mut holder: Option<&str> = None;
    let mut reminded = Vec::new();
    let mut first_due = None;
    let mut second_due = None;
    let mut closed_at = None;
    for (i, (time, e)) in timeline(history).into_iter().enumerate() {
        match e {
            Event::HumanTaskAssigned {
                assignee,
                level,
                deadline,
                ..
            } => {
                assert_eq!((assignee.as_str(), *level), (first, 0));
                assert_eq!(*deadline, time.map(|t| t.saturating_add(first_within)));
                holder = Some(first);
                first_due = *deadline;
            }
            Event::HumanTaskReminded { assignee, .. } => {
                assert_eq!(Some(assignee.as_str()), holder, "reminds who holds it");
                reminded.push(assignee.clone());
            }
            Event::HumanTaskEscalated {
                from,
                to,
                level,
                deadline,
                ..
            } => {
                assert_eq!(holder, Some(first), "escalated once, from the first");
                assert_eq!((from.as_str(), to.as_str(), *level), (first, second, 1));
                assert!(time >= first_due, "escalated at its deadline, not before");
                assert_eq!(*deadline, time.map(|t| t.saturating_add(second_within)));
                holder = Some(second);
                second_due = *deadline;
            }
            Event::HumanTaskClosed { reason, .. } => {
                assert_eq!(holder, Some(second));
                assert_eq!(
                    reason,
                    &format!("nobody answered (asked {first}, {second}); fallback used")
                );
                assert!(
                    time >= second_due,
                    "closed at the last deadline, not before"
                );
                holder = None;
                closed_at = Some(i);
            }
            Event::HumanTaskDecided { .. } => panic!("nobody decided, yet: {e:?}"),
            _ => {}
        }
    }
    for who in [first, second] {
        assert!(
            reminded.iter().any(|r| r == who),
            "{who} was reminded (the interval is shorter than their deadline): {reminded:?}"
        );
    }
    closed_at.expect("the task closed")
}

// ----- incident response -----

#[tokio::test(flavor = "multi_thread")]
async fn nobody_acknowledges_the_incident_so_the_safe_runbook_runs() {
    let env = TestEnv::new().await;
    env.register_with(incident_response::register);
    let handle = env
        .start::<incident_response::IncidentResponse>(
            incident_response::INCIDENT,
            incident_response::alert(),
        )
        .await
        .unwrap();
    let outcome = env.result(&handle).await;
    let id = handle.workflow_id().to_string();
    let client = env.client().await.unwrap();
    let store = env.store().await.unwrap();

    // The result: nobody acknowledged, the page had reached tier 2, the
    // safe runbook ran (its first attempt timed out) and fixed it.
    let report: IncidentReport = outcome.unwrap();
    assert_eq!(report.ticket_id, "INC-4711");
    assert_eq!(report.acknowledged_by, NOBODY);
    assert_eq!(report.escalation_level, 1);
    assert_eq!(report.runbook, SAFE_RUNBOOK);
    assert!(report.outcome.starts_with("resolved: "), "{report:?}");

    // The audit trail: who had the page, when, and how it ended.
    let history = client.history(id.as_str()).await.unwrap();
    let closed = assert_escalated_to_the_fallback(
        &history,
        (TIER1, incident_response::TIER1_DEADLINE),
        (TIER2, incident_response::TIER2_DEADLINE),
    );
    let runbook = position(&history, "runbook", |e| {
        matches!(e, Event::ActivityScheduled { activity_type, .. }
            if activity_type == incident_response::RunRunbook::NAME)
    });
    assert!(closed < runbook, "the runbook runs once the task is closed");

    // The pages: tier 1 paged and re-paged, then tier 2 paged as an
    // escalation and re-paged.
    let pages = inputs::<PageOnCall>(&history);
    assert!(
        matches!(&pages[0], HumanTaskNotice { kind: NoticeKind::Assigned, assignee, .. } if assignee == TIER1)
    );
    let escalated = pages
        .iter()
        .position(|n| matches!(&n.kind, NoticeKind::Escalated { from } if from == TIER1))
        .expect("tier 2 is paged as an escalation");
    assert!(pages[1..escalated]
        .iter()
        .all(|n| matches!(n.kind, NoticeKind::Reminder { .. }) && n.assignee == TIER1));
    assert!(pages[escalated..].iter().all(|n| n.assignee == TIER2));
    assert!(escalated > 1 && pages.len() > escalated + 1, "{pages:?}");

    // The reporter hears that nobody acknowledged, then that it is fixed.
    let updates: Vec<StatusUpdate> = inputs::<PostStatusUpdate>(&history);
    let texts: Vec<&str> = updates.iter().map(|u| u.text.as_str()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(
        texts[0],
        format!("acknowledged by {NOBODY}; running {SAFE_RUNBOOK}")
    );
    assert!(texts[1].starts_with("resolved: "), "{texts:?}");
    assert!(updates.iter().all(|u| u.to == "status-page@shop.example"));
    assert_replays(&store, &id).await;
    drop((client, store));
    env.shutdown().await;
}

/// Inputs recorded before the pace was part of them decode with the
/// example's pace, and the example's pace is recorded as before (left
/// out), so the checked-in histories and the runs they stand for keep
/// replaying; any other pace is kept. Alerts recorded with a pace, from
/// before the incident's waits became the example's own, still decode.
#[test]
fn inputs_without_a_pace_take_the_example_pace() {
    let alert: incident_response::Alert = serde_json::from_str(
        r#"{"alert_id":"alert-4711","service":"checkout","summary":"down","severity":"SEV-2","reporter":"ops","pace":{"tier1_deadline_ms":250,"tier2_deadline_ms":250,"remind_every_ms":100}}"#,
    )
    .unwrap();
    assert_eq!(alert.alert_id, "alert-4711");
    let app: Application = serde_json::from_str(
        r#"{"application_id":"loan-bo","applicant":"bo","email":"bo@mail.example","amount_eur":8000}"#,
    )
    .unwrap();
    assert_eq!(app.pace, loan_approval::Pace::EXAMPLE);

    let example =
        serde_json::to_value(&loan_approval::applications(loan_approval::Pace::EXAMPLE)[1])
            .unwrap();
    assert!(example.get("pace").is_none(), "{example}");

    let fast: Application = serde_json::from_value(
        serde_json::to_value(&loan_approval::applications(loan_approval::Pace::FAST)[1]).unwrap(),
    )
    .unwrap();
    assert_eq!(fast.pace, loan_approval::Pace::FAST);
}

// ----- loan approval -----

#[tokio::test(flavor = "multi_thread")]
async fn nobody_decides_the_loan_so_it_is_declined() {
    let (_dir, store) = refrain_examples::temporary_store("refrain-stories-").unwrap();
    let worker = loan_approval::start_worker(store.clone());
    let client = Client::new(store.clone());
    let pace = loan_approval::Pace::FAST;
    let scenario = loan_approval::Scenario {
        underwriter: loan_approval::Underwriter::Away,
        pace,
    };
    let ended = loan_approval::run(&client, scenario).await.unwrap();
    worker.shutdown(GRACE).await;

    // The result: declined by the fallback, for the reason the applicant
    // is given.
    let (id, outcome) = &ended[1];
    assert_eq!(id, BO);
    let Ok(LoanOutcome::Rejected { decided_by, reason }) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(decided_by, FALLBACK_DECIDER);
    assert_eq!(reason, "nobody reviewed it in time");

    // The audit trail: who had the review, when, and how it ended.
    let history = client.history(BO).await.unwrap();
    let closed = assert_escalated_to_the_fallback(
        &history,
        (UNDERWRITER, pace.underwriter_deadline()),
        (CREDIT_MANAGER, pace.manager_deadline()),
    );

    // Who was emailed: underwriter-1, then the credit manager as an
    // escalation.
    let emails = inputs::<NotifyUnderwriter>(&history);
    assert!(
        matches!(&emails[0], HumanTaskNotice { kind: NoticeKind::Assigned, assignee, .. } if assignee == UNDERWRITER)
    );
    assert!(emails.iter().any(|n| n.assignee == CREDIT_MANAGER
        && matches!(&n.kind, NoticeKind::Escalated { from } if from == UNDERWRITER)));

    // Nothing was provisioned; the applicant was told, after the close.
    assert!(inputs::<ReserveCreditLine>(&history).is_empty());
    let told = position(&history, "applicant told", |e| {
        matches!(e, Event::ActivityScheduled { activity_type, .. }
            if activity_type == NotifyApplicant::NAME)
    });
    assert!(closed < told);
    let letters: Vec<Message> = inputs::<NotifyApplicant>(&history);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].to, "bo@mail.example");
    assert!(
        letters[0].text.contains("nobody reviewed it in time"),
        "{letters:?}"
    );
    assert!(
        !history
            .iter()
            .any(|e| matches!(e, Event::UpdateAccepted { .. })),
        "bo did not amend"
    );
    assert_replays(&store, BO).await;

    // The others do not wait for a person, and end as in the example.
    assert!(matches!(&ended[0].1, Ok(LoanOutcome::Approved { .. })));
    assert!(matches!(
        &ended[2].1,
        Ok(LoanOutcome::ProvisioningFailed { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_applicant_amends_the_amount_while_the_review_waits() {
    let (_dir, store) = refrain_examples::temporary_store("refrain-stories-").unwrap();
    let worker = loan_approval::start_worker(store.clone());
    let client = Client::new(store.clone());
    let scenario = loan_approval::Scenario {
        underwriter: loan_approval::Underwriter::Decides(Verdict::Approve),
        // underwriter-1 decides as soon as bo has amended; the deadline
        // only keeps a slow machine from escalating.
        pace: loan_approval::Pace {
            underwriter_deadline_ms: 30_000,
            ..loan_approval::Pace::EXAMPLE
        },
    };
    let ended = loan_approval::run(&client, scenario).await.unwrap();
    let (id, outcome) = &ended[1];
    assert_eq!(id, BO);
    assert!(
        matches!(outcome, Ok(LoanOutcome::Approved { decided_by, .. }) if decided_by == UNDERWRITER),
        "{outcome:?}"
    );
    let history = client.history(BO).await.unwrap();

    // The refused request left nothing; the accepted one is recorded
    // with its answer, the terms of the new amount, before the decision.
    let typo = format!("{BO}/amend-1");
    let accepted_id = format!("{BO}/amend-2");
    let updates: Vec<&Event> = history
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::UpdateRequested { .. }
                    | Event::UpdateAccepted { .. }
                    | Event::UpdateCompleted { .. }
                    | Event::UpdateFailed { .. }
            )
        })
        .collect();
    assert_eq!(updates.len(), 2, "{updates:?}");
    let Event::UpdateAccepted {
        update_id,
        name,
        input,
    } = updates[0]
    else {
        panic!("{updates:?}")
    };
    assert_eq!(
        (update_id, name.as_str()),
        (&accepted_id, AmendAmount::NAME)
    );
    let amendment: Amendment = decode(input);
    assert_eq!(amendment.amount_eur, BO_AMENDED_EUR as i64);
    let Event::UpdateCompleted { update_id, result } = updates[1] else {
        panic!("{updates:?}")
    };
    assert_eq!(update_id, &accepted_id);
    let terms: LoanTerms = decode(result);
    assert_eq!(terms, LoanTerms::for_amount(BO_AMENDED_EUR));
    assert_eq!(terms.amount_eur, BO_AMENDED_EUR);
    let accepted = position(&history, "accepted amendment", |e| {
        matches!(e, Event::UpdateAccepted { .. })
    });
    let decided = position(&history, "decision", |e| {
        matches!(e, Event::HumanTaskDecided { .. })
    });
    assert!(accepted < decided);

    // The review's form shows the amount first asked for; everything
    // after the decision uses the amended one.
    let form: UnderwritingForm = history
        .iter()
        .find_map(|e| match e {
            Event::HumanTaskAssigned {
                form: Some(form), ..
            } => Some(decode(form)),
            _ => None,
        })
        .expect("the review has a form");
    assert_eq!(form.amount_eur, 8_000);
    let reserved: Vec<Application> = inputs::<ReserveCreditLine>(&history);
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0].amount_eur, BO_AMENDED_EUR);
    let reservation: CreditReservation = history
        .iter()
        .find_map(|e| match e {
            Event::ActivityCompleted { cmd, result, .. }
                if history.iter().any(|s| {
                    matches!(s, Event::ActivityScheduled { cmd: c, activity_type, .. }
                    if c == cmd && activity_type == ReserveCreditLine::NAME)
                }) =>
            {
                Some(decode(result))
            }
            _ => None,
        })
        .expect("the credit line was reserved");
    assert_eq!(reservation.amount_eur, BO_AMENDED_EUR);
    let letters: Vec<Message> = inputs::<NotifyApplicant>(&history);
    assert!(
        letters[0]
            .text
            .starts_with(&format!("approved: {BO_AMENDED_EUR} EUR;")),
        "{letters:?}"
    );

    // Asked again under their ids once the run has closed, each request
    // gets its first answer; a new one finds the run closed.
    match client
        .update_with_id::<AmendAmount>(BO, &typo, &Amendment { amount_eur: -6_000 })
        .await
    {
        Err(ClientError::UpdateRejected { reason, .. }) => {
            assert_eq!(reason, "the amount must be positive, got -6000 EUR")
        }
        other => panic!("{other:?}"),
    }
    let again = client
        .update_with_id::<AmendAmount>(
            BO,
            &accepted_id,
            &Amendment {
                amount_eur: BO_AMENDED_EUR as i64,
            },
        )
        .await
        .unwrap();
    assert_eq!(again, terms);
    let late = client
        .update::<AmendAmount>(BO, &Amendment { amount_eur: 7_000 })
        .await
        .unwrap_err();
    assert!(matches!(late, ClientError::Closed { .. }), "{late}");
    assert_eq!(
        client.history(BO).await.unwrap(),
        history,
        "nothing more recorded"
    );
    worker.shutdown(GRACE).await;
    assert_replays(&store, BO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_amendment_after_the_decision_is_refused_without_a_trace() {
    let (_dir, store) = refrain_examples::temporary_store("refrain-stories-").unwrap();
    let client = Client::new(store.clone());
    // A worker without the credit line: once the model has approved
    // loan-ada, the workflow waits at the reservation, decided and open.
    let bureau = loan_approval::bureau();
    let worker = refrain_worker::Worker::builder(store.clone())
        .workflow::<LoanApproval>()
        .activity(loan_approval::CollectDocuments(bureau.clone()))
        .activity(loan_approval::CreditCheck(bureau.clone()))
        .activity(loan_approval::AiRiskScore(bureau))
        .start();
    let ada = loan_approval::applications(loan_approval::Pace::EXAMPLE).remove(0);
    let id = ada.application_id.clone();
    let handle = client
        .start::<LoanApproval>(id.as_str(), ada)
        .await
        .unwrap();
    while inputs::<ReserveCreditLine>(&client.history(id.as_str()).await.unwrap()).is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let before = client.history(id.as_str()).await.unwrap();
    let err = client
        .update::<AmendAmount>(id.as_str(), &Amendment { amount_eur: 20_000 })
        .await
        .unwrap_err();
    match &err {
        ClientError::UpdateRejected { reason, .. } => assert_eq!(
            reason,
            "the application was already decided; the amount can no longer change"
        ),
        other => panic!("expected a refusal, got {other}"),
    }
    assert_eq!(
        client.history(id.as_str()).await.unwrap(),
        before,
        "not one event"
    );
    worker.shutdown(GRACE).await;

    // With the whole example registered, it finishes with the amount
    // first asked for.
    let worker = loan_approval::start_worker(store.clone());
    let outcome = handle.result().await.unwrap();
    worker.shutdown(GRACE).await;
    assert!(
        matches!(outcome, LoanOutcome::Approved { .. }),
        "{outcome:?}"
    );
    let reserved: Vec<Application> =
        inputs::<ReserveCreditLine>(&client.history(id.as_str()).await.unwrap());
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0].amount_eur, 12_000);
    assert_replays(&store, &id).await;
}
