//! The histories the examples recorded, checked in under
//! `tests/histories/` at the repository root, still replay through the
//! current workflow code. A change to a workflow that runs recorded with
//! the old code could not follow fails here, with the report naming the
//! history position and both source lines.
//!
//! Regenerate the files (only after a change that is meant to break old
//! runs) as described in the `refrain_examples` crate docs:
//! `cargo run --example order_to_cash -- export-histories tests/histories/order_to_cash`
//! and the same for `employee_onboarding`, `incident_response`,
//! `loan_approval` and `nightly_reconciliation`.

use refrain::history_file::HistoryExport;
use refrain::human_task::FALLBACK_DECIDER;
use refrain::{Event, Workflow};
use refrain_examples::employee_onboarding::OnboardingOutcome;
use refrain_examples::history_file_stem;
use refrain_examples::incident_response::{self, IncidentReport};
use refrain_examples::loan_approval::{
    Application, LoanOutcome, LoanTerms, BO_AMENDED_EUR, CREDIT_MANAGER, UNDERWRITER,
};
use refrain_examples::nightly_reconciliation::{
    BatchResult, NightlyReconciliation, ReconcileBatch, Report, SCHEDULE,
};
use refrain_examples::order_to_cash::OrderOutcome;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `tests/histories/<sub>` at the repository root.
fn histories(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the examples package sits in the repository")
        .join("tests/histories")
        .join(sub)
}

#[test]
fn order_to_cash_histories_replay() {
    refrain_examples::replayer().assert_replays(histories("order_to_cash"));
}

#[test]
fn order_to_cash_substitute_histories_replay() {
    refrain_examples::replayer().assert_replays(histories("order_to_cash/ops-substitutes"));
}

#[test]
fn employee_onboarding_histories_replay() {
    refrain_examples::replayer().assert_replays(histories("employee_onboarding"));
}

#[test]
fn employee_onboarding_director_away_histories_replay() {
    refrain_examples::replayer().assert_replays(histories("employee_onboarding/director-away"));
}

#[test]
fn incident_response_histories_replay() {
    refrain_examples::replayer().assert_replays(histories("incident_response"));
}

#[test]
fn incident_response_nobody_acknowledges_histories_replay() {
    refrain_examples::replayer().assert_replays(histories("incident_response/nobody-acknowledges"));
}

#[test]
fn loan_approval_histories_replay() {
    refrain_examples::replayer().assert_replays(histories("loan_approval"));
}

#[test]
fn loan_approval_underwriter_rejects_histories_replay() {
    refrain_examples::replayer().assert_replays(histories("loan_approval/underwriter-rejects"));
}

#[test]
fn loan_approval_nobody_decides_histories_replay() {
    refrain_examples::replayer().assert_replays(histories("loan_approval/nobody-decides"));
}

#[test]
fn nightly_reconciliation_histories_replay() {
    refrain_examples::replayer().assert_replays(histories("nightly_reconciliation"));
}

/// The directories the tests above replay.
const REPLAYED: [&str; 10] = [
    "order_to_cash",
    "order_to_cash/ops-substitutes",
    "employee_onboarding",
    "employee_onboarding/director-away",
    "incident_response",
    "incident_response/nobody-acknowledges",
    "loan_approval",
    "loan_approval/underwriter-rejects",
    "loan_approval/nobody-decides",
    "nightly_reconciliation",
];

/// Every directory under `dir` (itself included) that holds a history
/// file, relative to `tests/histories`.
fn directories_with_histories(dir: &Path, found: &mut Vec<String>) {
    let mut has_files = false;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            directories_with_histories(&path, found);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("bin"))
        {
            has_files = true;
        }
    }
    if has_files {
        let rel = dir.strip_prefix(histories("")).unwrap();
        found.push(rel.to_string_lossy().replace('\\', "/"));
    }
}

/// A history checked in where no test replays it would protect nothing.
#[test]
fn every_directory_of_histories_is_replayed() {
    let mut found = Vec::new();
    directories_with_histories(&histories(""), &mut found);
    for dir in &found {
        assert!(
            REPLAYED.contains(&dir.as_str()),
            "tests/histories/{dir} holds histories that no test replays"
        );
    }
    for dir in REPLAYED {
        assert!(
            found.iter().any(|f| f == dir),
            "tests/histories/{dir} holds no history"
        );
    }
}

/// The result a history closed with, decoded.
fn result<T: DeserializeOwned>(history: &HistoryExport) -> T {
    match history.events.last() {
        Some(Event::WorkflowCompleted { result }) => serde_json::from_slice(result.as_bytes())
            .unwrap_or_else(|e| panic!("{}: result does not decode: {e}", history.workflow_id)),
        other => panic!("{}: ends with {other:?}", history.workflow_id),
    }
}

/// Reads `tests/histories/<file>`, checks that it is exactly what the
/// exporter writes (so hand edits and format drift are noticed) and that
/// it is named after its workflow id, and that it closes its run.
fn read(file: &str) -> HistoryExport {
    read_path(&histories(file))
}

fn read_path(path: &Path) -> HistoryExport {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (regenerate the histories?)", path.display()));
    let history = HistoryExport::from_json(&text).unwrap();
    assert_eq!(
        format!("{}\n", history.to_json()),
        text,
        "{} is not in the exporter's exact form",
        path.display()
    );
    assert_eq!(
        path.file_stem().and_then(|s| s.to_str()),
        Some(history_file_stem(history.workflow_id.as_str()).as_str())
    );
    let report = refrain_examples::replayer().replay(&history).unwrap();
    assert!(report.closed, "{report}");
    history
}

#[test]
fn the_checked_in_histories_cover_every_outcome() {
    let fulfilled = read("order_to_cash/order-1001.json");
    assert!(matches!(
        result(&fulfilled),
        OrderOutcome::Fulfilled { invoice, .. } if invoice == "INV-1001"
    ));

    let cancelled = read("order_to_cash/order-1002.json");
    let OrderOutcome::Cancelled { undone, .. } = result(&cancelled) else {
        panic!("order-1002 was not cancelled")
    };
    assert_eq!(
        undone,
        [
            "refunded 13800.00 EUR (pay-order-1002)",
            "released credit hold hold-order-1002"
        ]
    );
    let signals = |h: &HistoryExport| {
        h.events
            .iter()
            .filter(|e| matches!(e, Event::SignalReceived { .. }))
            .count()
    };
    assert_eq!(signals(&cancelled), 0);

    let substituted = read("order_to_cash/ops-substitutes/order-1002.json");
    assert!(matches!(
        result(&substituted),
        OrderOutcome::Fulfilled { invoice, .. } if invoice == "INV-1002"
    ));
    assert_eq!(signals(&substituted), 1, "operations' stock-resolved");

    let approved = read("employee_onboarding/onboarding-emp-4711.json");
    assert!(matches!(
        result(&approved),
        OnboardingOutcome::Ready { approved_by, .. } if approved_by == "Sam Okafor"
    ));

    let away = read("employee_onboarding/director-away/onboarding-emp-4711.json");
    assert!(matches!(
        result(&away),
        OnboardingOutcome::SentToHr { reason } if reason.contains("nobody")
    ));
}

/// How many events of `history` match `pred`.
fn count(history: &HistoryExport, pred: impl Fn(&Event) -> bool) -> usize {
    history.events.iter().filter(|e| pred(e)).count()
}

/// The attempt on which the activity of type `activity_type` completed,
/// for each time it was scheduled and completed.
fn completed_attempts(history: &HistoryExport, activity_type: &str) -> Vec<u32> {
    let mut cmds = Vec::new();
    let mut attempts = Vec::new();
    for e in &history.events {
        match e {
            Event::ActivityScheduled {
                cmd,
                activity_type: t,
                ..
            } if t == activity_type => cmds.push(*cmd),
            Event::ActivityCompleted { cmd, attempt, .. } if cmds.contains(cmd) => {
                attempts.push(*attempt)
            }
            _ => {}
        }
    }
    attempts
}

#[test]
fn the_incident_history_escalates_to_tier_2() {
    let incident = read("incident_response/incident-4711.json");
    let report: IncidentReport = result(&incident);
    assert_eq!(report.ticket_id, "INC-4711");
    assert_eq!(report.acknowledged_by, incident_response::TIER2);
    assert_eq!(report.escalation_level, 1);
    assert_eq!(report.runbook, incident_response::SAFE_RUNBOOK);
    assert!(
        report.outcome.starts_with("resolved: "),
        "{}",
        report.outcome
    );
    assert_eq!(
        count(&incident, |e| matches!(e, Event::HumanTaskReminded { .. })),
        2,
        "tier 1 is reminded twice"
    );
    assert_eq!(
        count(&incident, |e| matches!(e, Event::HumanTaskEscalated { .. })),
        1
    );
    assert_eq!(
        count(&incident, |e| matches!(e, Event::HumanTaskDecided { .. })),
        1
    );
    assert_eq!(
        completed_attempts(&incident, "run-runbook"),
        [2],
        "the runbook's first attempt times out"
    );
}

/// Who held a human task, in order: its assignee, then each escalation's.
fn holders(history: &HistoryExport) -> Vec<String> {
    history
        .events
        .iter()
        .filter_map(|e| match e {
            Event::HumanTaskAssigned { assignee, .. } => Some(assignee.clone()),
            Event::HumanTaskEscalated { to, .. } => Some(to.clone()),
            _ => None,
        })
        .collect()
}

/// How the human task of `history` closed without a decision, if it did.
fn closed_without_a_decision(history: &HistoryExport) -> Option<String> {
    assert_eq!(
        count(history, |e| matches!(e, Event::HumanTaskDecided { .. })),
        0,
        "{}",
        history.workflow_id
    );
    history.events.iter().find_map(|e| match e {
        Event::HumanTaskClosed { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn the_incident_history_nobody_acknowledged_runs_the_safe_runbook() {
    let incident = read("incident_response/nobody-acknowledges/incident-4711.json");
    let report: IncidentReport = result(&incident);
    assert_eq!(report.acknowledged_by, incident_response::NOBODY);
    assert_eq!(report.escalation_level, 1);
    assert_eq!(report.runbook, incident_response::SAFE_RUNBOOK);
    assert!(report.outcome.starts_with("resolved: "), "{report:?}");
    assert_eq!(
        holders(&incident),
        [incident_response::TIER1, incident_response::TIER2]
    );
    assert_eq!(
        closed_without_a_decision(&incident).as_deref(),
        Some("nobody answered (asked ana@oncall-tier1, ben@oncall-tier2); fallback used")
    );
    assert_eq!(completed_attempts(&incident, "run-runbook"), [2]);
}

#[test]
fn the_loan_histories_cover_every_outcome() {
    for dir in [
        "loan_approval",
        "loan_approval/underwriter-rejects",
        "loan_approval/nobody-decides",
    ] {
        let ada = read(&format!("{dir}/loan-ada.json"));
        assert!(
            matches!(
                result(&ada),
                LoanOutcome::Approved { decided_by, .. } if decided_by == "risk-model-v7 (automatic)"
            ),
            "{dir}"
        );
        let cy = read(&format!("{dir}/loan-cy.json"));
        let LoanOutcome::ProvisioningFailed { error, undone, .. } = result(&cy) else {
            panic!("{dir}: loan-cy was not undone")
        };
        assert!(error.contains("address verification failed"), "{error}");
        assert!(
            undone.contains("close the account, then release the credit reservation"),
            "newest first: {undone}"
        );
        assert_eq!(
            completed_attempts(&cy, "close-account"),
            [2],
            "core banking times out once"
        );
        for h in [&ada, &cy] {
            assert_eq!(
                count(h, |e| matches!(e, Event::HumanTaskAssigned { .. })),
                0,
                "{}: the model decides",
                h.workflow_id
            );
        }
    }

    let approved = read("loan_approval/loan-bo.json");
    assert!(matches!(
        result(&approved),
        LoanOutcome::Approved { decided_by, .. } if decided_by == UNDERWRITER
    ));
    let rejected = read("loan_approval/underwriter-rejects/loan-bo.json");
    assert!(matches!(
        result(&rejected),
        LoanOutcome::Rejected { decided_by, reason }
            if decided_by == UNDERWRITER && reason.contains("instalments")
    ));
    for h in [&approved, &rejected] {
        assert_eq!(
            count(h, |e| matches!(e, Event::HumanTaskDecided { .. })),
            1,
            "{}: underwriter-1 decides",
            h.workflow_id
        );
        assert_eq!(
            count(h, |e| matches!(e, Event::HumanTaskEscalated { .. })),
            0
        );
        // bo's amendment, accepted before the decision; the refused one
        // left nothing.
        let updates: Vec<(&str, Option<LoanTerms>)> = h
            .events
            .iter()
            .filter_map(|e| match e {
                Event::UpdateAccepted { update_id, .. } => Some((update_id.as_str(), None)),
                Event::UpdateCompleted { update_id, result } => Some((
                    update_id.as_str(),
                    Some(serde_json::from_slice(result.as_bytes()).unwrap()),
                )),
                Event::UpdateRequested { .. } | Event::UpdateFailed { .. } => {
                    panic!("{}: {e:?}", h.workflow_id)
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            updates,
            [
                ("loan-bo/amend-2", None),
                (
                    "loan-bo/amend-2",
                    Some(LoanTerms::for_amount(BO_AMENDED_EUR))
                )
            ]
        );
    }
    // The approved loan reserved the amended amount.
    let reserved: Vec<Application> = approved
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ActivityScheduled {
                activity_type,
                input,
                ..
            } if activity_type == "reserve-credit-line" => {
                Some(serde_json::from_slice(input.as_bytes()).unwrap())
            }
            _ => None,
        })
        .collect();
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0].amount_eur, BO_AMENDED_EUR);

    let declined = read("loan_approval/nobody-decides/loan-bo.json");
    assert!(matches!(
        result(&declined),
        LoanOutcome::Rejected { decided_by, reason }
            if decided_by == FALLBACK_DECIDER && reason == "nobody reviewed it in time"
    ));
    assert_eq!(holders(&declined), [UNDERWRITER, CREDIT_MANAGER]);
    assert_eq!(
        closed_without_a_decision(&declined).as_deref(),
        Some("nobody answered (asked underwriter-1, credit-manager); fallback used")
    );
    assert_eq!(
        count(&declined, |e| matches!(e, Event::UpdateAccepted { .. })),
        0
    );
}

/// Every night the schedule started is there with its three batches, and
/// nothing else: a night's batches are the children it started, and its
/// report is what they found.
#[test]
fn the_nightly_histories_hold_every_night_with_its_batches() {
    let dir = histories("nightly_reconciliation");
    let mut by_id = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let history = read_path(&path);
        by_id.insert(history.workflow_id.to_string(), history);
    }
    let nights: Vec<&HistoryExport> = by_id
        .values()
        .filter(|h| h.workflow_type == NightlyReconciliation::NAME)
        .collect();
    assert!(nights.len() >= 3, "{} nights", nights.len());
    let mut batches_seen = 0;
    for night in &nights {
        let id = night.workflow_id.to_string();
        let fire_time = id
            .strip_prefix(&format!("{SCHEDULE}@"))
            .unwrap_or_else(|| panic!("{id} is not named by the schedule"));
        let report: Report = result(night);
        assert_eq!(report.night, fire_time);
        assert_eq!((report.accounts, report.batches), (23, 3), "{id}");

        let children: Vec<String> = night
            .events
            .iter()
            .filter_map(|e| match e {
                Event::ChildWorkflowStarted {
                    workflow_type,
                    workflow_id,
                    ..
                } => {
                    assert_eq!(workflow_type, ReconcileBatch::NAME);
                    Some(workflow_id.to_string())
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            children,
            (1..=3)
                .map(|n| format!("{id}/batch-{n}"))
                .collect::<Vec<_>>()
        );
        let mut checked = 0;
        let mut mismatches = Vec::new();
        for child in &children {
            let batch = by_id
                .get(child)
                .unwrap_or_else(|| panic!("{child}, started by {id}, was not exported"));
            assert_eq!(batch.workflow_type, ReconcileBatch::NAME);
            let found: BatchResult = result(batch);
            checked += found.checked;
            mismatches.extend(found.mismatches.into_iter().map(|m| m.account));
            batches_seen += 1;
        }
        assert_eq!(checked, report.accounts, "{id}");
        assert_eq!(
            mismatches,
            report
                .mismatches
                .iter()
                .map(|m| m.account.clone())
                .collect::<Vec<_>>(),
            "{id}"
        );
    }
    assert_eq!(
        nights.len() + batches_seen,
        by_id.len(),
        "every history is a night or one of its batches (files of an earlier export left behind?)"
    );
}
