//! What the `api_*` tests share: loan applications as the API takes
//! them, and waits on what the API reports.

use crate::harness::{Harness, Reply, OPERATOR, VIEWER};
use axum::http::StatusCode;
use refrain_tests::env::eventually;
use serde_json::{json, Value};

/// An hour, in milliseconds: a wait no test reaches.
pub const HOUR_MS: u64 = 3_600_000;

/// bo's application (the model is unsure: a person decides) under `id`,
/// as JSON, with the underwriter's and the manager's deadlines.
pub fn loan(id: &str, underwriter_ms: u64, manager_ms: u64) -> Value {
    json!({
        "application_id": id,
        "applicant": "bo",
        "email": "bo@mail.example",
        "amount_eur": 8000,
        "pace": {
            "underwriter_deadline_ms": underwriter_ms,
            "manager_deadline_ms": manager_ms,
            "remind_every_ms": HOUR_MS,
        },
    })
}

/// Starts bo's loan under `id` through the API; nobody's time runs out.
pub async fn start_loan(h: &Harness, id: &str) -> Reply {
    let r = h
        .post(
            "/api/v1/workflows",
            OPERATOR,
            json!({"workflow_type": "loan-approval", "workflow_id": id, "input": loan(id, HOUR_MS, HOUR_MS)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r
}

/// The open human task of workflow `id` once one is assigned to
/// `assignee`.
pub async fn task_of(h: &Harness, id: &str, assignee: &str) -> Value {
    let path = format!("/api/v1/workflows/{id}/tasks");
    eventually(
        &format!("a task of {id} assigned to {assignee}"),
        async || {
            let r = h.get(&path, VIEWER).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["tasks"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["assignee"] == assignee).cloned())
        },
    )
    .await
}

/// The status of the latest run of `id` once it is not `running`.
pub async fn closed_status(h: &Harness, id: &str) -> String {
    let path = format!("/api/v1/workflows/{id}");
    eventually(&format!("{id} closes"), async || {
        let r = h.get(&path, VIEWER).await;
        let status = r.body["status"].as_str()?.to_owned();
        (status != "running").then_some(status)
    })
    .await
}

/// The events of `id`'s latest run, in the history's JSON form, once one
/// satisfies `probe`.
pub async fn history_with(
    h: &Harness,
    id: &str,
    what: &str,
    probe: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let path = format!("/api/v1/workflows/{id}/history");
    eventually(what, async || {
        let r = h.get(&path, VIEWER).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let events = r.body["events"].as_array()?.clone();
        events.iter().any(&probe).then_some(events)
    })
    .await
}

/// Asserts `r` is the API's error answer `status` with `code`.
#[track_caller]
pub fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{}", r.body);
    assert!(r.body["error"]["message"].is_string(), "{}", r.body);
}
