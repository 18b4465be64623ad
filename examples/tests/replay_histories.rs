//! The histories the examples recorded, checked in under
//! `tests/histories/` at the repository root, still replay through the
//! current workflow code. A change to a workflow that runs recorded with
//! the old code could not follow fails here, with the report naming the
//! history position and both source lines.
//!
//! Regenerate the files (only after a change that is meant to break old
//! runs) as described in the `refrain_examples` crate docs:
//! `cargo run --example order_to_cash -- export-histories tests/histories/order_to_cash`
//! and the same for `employee_onboarding`.

use refrain::history_file::HistoryExport;
use refrain::Event;
use refrain_examples::employee_onboarding::OnboardingOutcome;
use refrain_examples::order_to_cash::OrderOutcome;
use serde::de::DeserializeOwned;
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
    let path = histories(file);
    let text = std::fs::read_to_string(&path)
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
        Some(history.workflow_id.to_string().as_str())
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
