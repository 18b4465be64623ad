//! After the loan example's three applications run beside the server,
//! `/metrics` shows their counters, by workflow and activity type.

use crate::harness::{Harness, VIEWER};
use refrain_examples::loan_approval::{self, Scenario};

/// The value of the sample `name{labels}` in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_loan_example_runs_the_metrics_endpoint_shows_its_counters() {
    let h = Harness::new().await;
    let ended = loan_approval::run(&h.client, Scenario::default())
        .await
        .expect("the loan scenario");
    assert_eq!(ended.len(), 3);

    let reply = h.get("/metrics", VIEWER).await;
    assert_eq!(reply.status, axum::http::StatusCode::OK);
    let text = reply.body.as_str().expect("Prometheus text").to_owned();
    let wf = r#"{workflow_type="loan-approval"}"#;
    // Other tests of this binary run loans too: at least these three.
    let at_least = |series: &str, n: f64| {
        let v = sample(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        assert!(v >= n, "{series} = {v}, expected at least {n}");
    };
    at_least(&format!("refrain_workflow_starts_total{wf}"), 3.0);
    let failed = ended.iter().filter(|(_, outcome)| outcome.is_err()).count() as f64;
    at_least(
        &format!("refrain_workflow_completions_total{wf}"),
        3.0 - failed,
    );
    if failed > 0.0 {
        at_least(&format!("refrain_workflow_failures_total{wf}"), failed);
    }
    at_least(
        &format!("refrain_workflow_task_duration_seconds_count{wf}"),
        3.0,
    );
    at_least(
        r#"refrain_activity_attempts_total{activity_type="credit-check"}"#,
        3.0,
    );
    // cy's card is refused: the saga's failure is an activity failure.
    at_least(
        r#"refrain_activity_failures_total{activity_type="issue-card"}"#,
        1.0,
    );
    at_least("refrain_store_commit_duration_seconds_count", 1.0);
    assert!(
        text.contains("# HELP refrain_workflow_starts_total"),
        "help texts are described"
    );
    assert!(
        text.contains(r#"refrain_activity_attempt_duration_seconds_bucket{activity_type="credit-check",le="0.001"}"#),
        "durations are histograms with buckets:\n{text}"
    );
}
