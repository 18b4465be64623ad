//! Crash-point exploration of every example: each workflow run once per
//! durable boundary, the process killed right after it and resumed
//! (`refrain_testkit::explore_crashes`), must end as the undisturbed run
//! did with every activity outcome recorded once. Nobody answers the
//! human tasks and signals, so each run goes down its longest path of
//! deadlines, escalations and fallbacks, in virtual time.
//!
//! Each test writes how many boundaries it explored to stderr directly
//! (past the test harness's capture, so CI logs show it for passing tests
//! too) and names the figure in its assertion.
//!
//! - `order_to_cash_in_stock` and `order_to_cash_out_of_stock`
//! - `employee_onboarding`
//! - `incident_response`
//! - `loan_approval` (every application of the example)
//! - `nightly_reconciliation` (the night and its child batches)

use refrain::Workflow;
use refrain_examples::{
    employee_onboarding, incident_response, loan_approval, nightly_reconciliation, order_to_cash,
};
use refrain_testkit::explore_crashes;
use refrain_worker::WorkerBuilder;
use std::io::Write;

/// Explores `W` with `input` on a worker set up by `register`, reports
/// the count, and returns it.
async fn explore<W: Workflow>(
    example: &str,
    input: W::Input,
    register: fn(WorkerBuilder) -> WorkerBuilder,
) -> usize {
    let explored = explore_crashes::<W, _>(input, |env| env.register_with(register))
        .await
        .unwrap_or_else(|e| panic!("{example}: {e}"));
    let _ = writeln!(
        std::io::stderr(),
        "crash points: {example} explored {explored} durable boundaries, each resumed to the same outcome"
    );
    assert!(
        explored > 0,
        "{example}: {explored} durable boundaries explored"
    );
    explored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_to_cash_in_stock() {
    let order = order_to_cash::orders().remove(0);
    explore::<order_to_cash::OrderToCash>(
        "order_to_cash (in stock)",
        order,
        order_to_cash::register,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_to_cash_out_of_stock() {
    let order = order_to_cash::orders().remove(1);
    explore::<order_to_cash::OrderToCash>(
        "order_to_cash (out of stock)",
        order,
        order_to_cash::register,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn employee_onboarding() {
    let hire = employee_onboarding::new_hire(&employee_onboarding::Scenario::default());
    explore::<employee_onboarding::EmployeeOnboarding>(
        "employee_onboarding",
        hire,
        employee_onboarding::register,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_response() {
    let alert = incident_response::alert();
    explore::<incident_response::IncidentResponse>(
        "incident_response",
        alert,
        incident_response::register,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loan_approval() {
    for app in loan_approval::applications(loan_approval::Pace::EXAMPLE) {
        let name = format!("loan_approval ({})", app.applicant);
        explore::<loan_approval::LoanApproval>(&name, app, loan_approval::register).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightly_reconciliation() {
    explore::<nightly_reconciliation::NightlyReconciliation>(
        "nightly_reconciliation",
        nightly_reconciliation::ledger(),
        nightly_reconciliation::register,
    )
    .await;
}
