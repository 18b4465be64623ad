//! Acting on a run through the API: signal, signal-with-start, query,
//! update, cancel, terminate; the actor recorded is the caller.

use crate::api_support::{assert_error, closed_status, history_with, loan, start_loan, HOUR_MS};
use crate::harness::{Harness, OPERATOR, VIEWER};
use axum::http::StatusCode;
use refrain_tests::env::eventually;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_is_recorded_from_the_caller_whatever_the_body_says() {
    let h = Harness::new().await;
    let started = start_loan(&h, "loan-g1").await;
    let path = "/api/v1/workflows/loan-g1/signals/nudge";
    let r = h
        .post(path, OPERATOR, json!({"input": {"note": "hurry"}}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"workflow_id": "loan-g1", "run": started.body["run"]})
    );
    let events = history_with(&h, "loan-g1", "the signal in the history", |e| {
        e["type"] == "SignalReceived"
    })
    .await;
    let signal = events
        .iter()
        .find(|e| e["type"] == "SignalReceived")
        .expect("signal");
    assert_eq!(signal["sender"], "operator", "{signal}");
    assert_eq!(signal["name"], "nudge", "{signal}");

    let forged = h
        .post(
            path,
            OPERATOR,
            json!({"input": 1, "sender": "someone-else"}),
        )
        .await;
    assert_error(&forged, StatusCode::BAD_REQUEST, "bad_request");
    let viewer = h.post(path, VIEWER, json!({"input": 1})).await;
    assert_error(&viewer, StatusCode::FORBIDDEN, "forbidden");
    let unknown = h
        .post(
            "/api/v1/workflows/nobody/signals/nudge",
            OPERATOR,
            json!({}),
        )
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn signal_with_start_starts_once_then_signals() {
    let h = Harness::new().await;
    let body = json!({
        "signal": "nudge",
        "signal_input": {"n": 1},
        "workflow_type": "loan-approval",
        "input": loan("loan-g2", HOUR_MS, HOUR_MS),
    });
    let path = "/api/v1/workflows/loan-g2/signal-with-start";
    let first = h.post(path, OPERATOR, body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["started"], true);
    let second = h.post(path, OPERATOR, body.clone()).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["started"], false);
    assert_eq!(second.body["run"], first.body["run"]);
    let events = eventually("both signals in the history", async || {
        let r = h.get("/api/v1/workflows/loan-g2/history", VIEWER).await;
        let events = r.body["events"].as_array()?.clone();
        let signals = events
            .iter()
            .filter(|e| e["type"] == "SignalReceived")
            .count();
        (signals == 2).then_some(events)
    })
    .await;
    assert!(
        events
            .iter()
            .filter(|e| e["type"] == "SignalReceived")
            .all(|e| e["sender"] == "operator"),
        "{events:?}"
    );

    let viewer = h.post(path, VIEWER, body).await;
    assert_error(&viewer, StatusCode::FORBIDDEN, "forbidden");
    let bad = h
        .post(
            path,
            OPERATOR,
            json!({"signal": "nudge", "workflow_type": "loan-approval", "extra": 1}),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_answers_with_the_workflows_result_or_refusal() {
    let h = Harness::new().await;
    start_loan(&h, "loan-u1").await;
    crate::api_support::task_of(&h, "loan-u1", "underwriter-1").await;
    let path = "/api/v1/workflows/loan-u1/updates/amend-amount";
    let r = h
        .post(
            path,
            OPERATOR,
            json!({"input": {"amount_eur": 6000}, "update_id": "u-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["result"]["amount_eur"], 6000, "{}", r.body);
    assert_eq!(r.body["result"]["term_months"], 48, "{}", r.body);
    // The same id is the same request: the same answer, applied once.
    let again = h
        .post(
            path,
            OPERATOR,
            json!({"input": {"amount_eur": 7000}, "update_id": "u-1"}),
        )
        .await;
    assert_eq!(again.body, r.body);

    let refused = h
        .post(path, OPERATOR, json!({"input": {"amount_eur": -5}}))
        .await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "update_rejected",
    );
    let viewer = h
        .post(path, VIEWER, json!({"input": {"amount_eur": 1}}))
        .await;
    assert_error(&viewer, StatusCode::FORBIDDEN, "forbidden");
    let unknown = h
        .post(
            "/api/v1/workflows/nobody/updates/amend-amount",
            OPERATOR,
            json!({"input": {}}),
        )
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_the_workflow_does_not_answer_says_so() {
    let h = Harness::new().await;
    start_loan(&h, "loan-q1").await;
    crate::api_support::task_of(&h, "loan-q1", "underwriter-1").await;
    let r = h
        .post(
            "/api/v1/workflows/loan-q1/queries/status",
            VIEWER,
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "query_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("status")),
        "{}",
        r.body
    );
    let unknown = h
        .post("/api/v1/workflows/nobody/queries/status", VIEWER, json!({}))
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_records_the_caller_and_terminate_closes_the_run() {
    let h = Harness::new().await;
    start_loan(&h, "loan-c1").await;
    let viewer = h
        .post(
            "/api/v1/workflows/loan-c1/cancel",
            VIEWER,
            json!({"reason": "no"}),
        )
        .await;
    assert_error(&viewer, StatusCode::FORBIDDEN, "forbidden");
    let r = h
        .post(
            "/api/v1/workflows/loan-c1/cancel",
            OPERATOR,
            json!({"reason": "applicant withdrew"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let events = history_with(&h, "loan-c1", "the cancel request in the history", |e| {
        e["type"] == "WorkflowCancelRequested"
    })
    .await;
    let cancel: &Value = events
        .iter()
        .find(|e| e["type"] == "WorkflowCancelRequested")
        .expect("cancel");
    assert_eq!(cancel["requested_by"], "operator", "{cancel}");
    assert_eq!(cancel["reason"], "applicant withdrew", "{cancel}");

    start_loan(&h, "loan-c2").await;
    let t = h
        .post(
            "/api/v1/workflows/loan-c2/terminate",
            OPERATOR,
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(closed_status(&h, "loan-c2").await, "terminated");
    // Who terminated is a field of its own, in the export and the timeline.
    let events = history_with(&h, "loan-c2", "the termination", |e| {
        e["type"] == "WorkflowTerminated"
    })
    .await;
    let terminated = events.last().expect("events");
    assert_eq!(terminated["type"], "WorkflowTerminated", "{terminated}");
    assert_eq!(terminated["reason"], "test", "{terminated}");
    assert_eq!(terminated["terminated_by"], "operator", "{terminated}");
    let browser = crate::dashboard_support::login(&h, OPERATOR);
    let (_, run_page) = crate::dashboard_support::page(&h.router, &browser, "/runs/loan-c2").await;
    assert!(
        run_page.contains(
            "<strong>TERMINATED</strong> by <strong class=\"who\">operator</strong>: test"
        ),
        "{run_page}"
    );
    let again = h
        .post(
            "/api/v1/workflows/loan-c2/terminate",
            OPERATOR,
            json!({"reason": "test"}),
        )
        .await;
    assert_error(&again, StatusCode::CONFLICT, "closed");
    let signal = h
        .post(
            "/api/v1/workflows/loan-c2/signals/nudge",
            OPERATOR,
            json!({}),
        )
        .await;
    assert_error(&signal, StatusCode::CONFLICT, "closed");
    let unknown = h
        .post("/api/v1/workflows/nobody/cancel", OPERATOR, json!({}))
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
}
