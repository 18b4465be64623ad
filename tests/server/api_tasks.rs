//! Human tasks through the API: the inbox, one task, deciding it; only
//! the assignee (or its group) decides, and `decided_by` is the caller.

use crate::api_support::{
    assert_error, closed_status, history_with, loan, start_loan, task_of, HOUR_MS,
};
use crate::harness::{Harness, ADMIN, MANAGER, OPERATOR, UNDERWRITER, VIEWER};
use axum::http::StatusCode;
use serde_json::{json, Value};

fn ids(reply_body: &Value) -> Vec<String> {
    reply_body["tasks"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loan_goes_through_the_api_from_start_to_the_underwriters_decision() {
    let h = Harness::new().await;
    start_loan(&h, "loan-t1").await;
    let task = task_of(&h, "loan-t1", "underwriter-1").await;
    let id = task["id"].as_str().expect("task id").to_owned();
    assert_eq!(task["task"], "underwriting-review");
    assert_eq!(task["workflow_id"], "loan-t1");
    assert_eq!(task["level"], 0);
    assert_eq!(task["overdue"], false);
    assert_eq!(task["form"]["applicant"], "bo", "{task}");
    assert_eq!(id, format!("{}/{}", task["run"], task["cmd"]));

    // describe says in words who the run waits on.
    let d = h.get("/api/v1/workflows/loan-t1", VIEWER).await;
    let waits = d.body["waiting_on"].as_array().expect("waiting_on");
    let review = waits
        .iter()
        .find(|w| w["kind"] == "human_task")
        .unwrap_or_else(|| panic!("no human task in {}", d.body));
    assert!(
        review["text"]
            .as_str()
            .is_some_and(|t| t.contains("underwriting-review assigned to underwriter-1")),
        "{review}"
    );
    assert_eq!(review["id"], id.as_str());
    assert_eq!(d.body["human_tasks"][0]["id"], id.as_str());

    // The inbox: the underwriter's own; not the credit manager's.
    let inbox = h.get("/api/v1/tasks", UNDERWRITER).await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    assert_eq!(ids(&inbox.body), [id.as_str()]);
    let other = h.get("/api/v1/tasks", MANAGER).await;
    assert_eq!(ids(&other.body), Vec::<String>::new());
    let own = h
        .get("/api/v1/tasks?assignee=underwriter-1", UNDERWRITER)
        .await;
    assert_eq!(ids(&own.body), [id.as_str()]);
    let nosy = h.get("/api/v1/tasks?assignee=underwriter-1", VIEWER).await;
    assert_error(&nosy, StatusCode::FORBIDDEN, "forbidden");
    let operator = h
        .get("/api/v1/tasks?assignee=underwriter-1", OPERATOR)
        .await;
    assert_eq!(ids(&operator.body), [id.as_str()]);
    let one = h.get(&format!("/api/v1/tasks/{id}"), VIEWER).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body, task);

    // Only underwriter-1 decides, and only under its own name.
    let decide = format!("/api/v1/tasks/{id}/decide");
    let verdict = json!({"decision": "Approve", "comment": "thin file, steady income"});
    for token in [MANAGER, ADMIN, OPERATOR, VIEWER] {
        let r = h.post(&decide, token, verdict.clone()).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    }
    let forged = h
        .post(
            &decide,
            UNDERWRITER,
            json!({"decision": "Approve", "decided_by": "credit-manager"}),
        )
        .await;
    assert_error(&forged, StatusCode::BAD_REQUEST, "bad_request");
    let r = h.post(&decide, UNDERWRITER, verdict.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"workflow_id": "loan-t1", "run": task["run"], "task": "underwriting-review",
               "decided_by": "underwriter-1"})
    );
    let twice = h.post(&decide, UNDERWRITER, verdict).await;
    assert_error(&twice, StatusCode::CONFLICT, "closed");
    let gone = h.get(&format!("/api/v1/tasks/{id}"), VIEWER).await;
    assert_error(&gone, StatusCode::CONFLICT, "closed");

    assert_eq!(closed_status(&h, "loan-t1").await, "completed");
    let events = history_with(&h, "loan-t1", "the decision", |e| {
        e["type"] == "HumanTaskDecided"
    })
    .await;
    let decided = events
        .iter()
        .find(|e| e["type"] == "HumanTaskDecided")
        .expect("decided");
    assert_eq!(decided["decided_by"], "underwriter-1", "{decided}");
    assert_eq!(decided["comment"], "thin file, steady income", "{decided}");
    let done = h.get("/api/v1/workflows/loan-t1", VIEWER).await;
    assert_eq!(done.body["waiting_on"], json!([]));
    assert!(!done.body["result"].is_null(), "{}", done.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_escalated_task_is_the_credit_managers_alone() {
    let h = Harness::new().await;
    let r = h
        .post(
            "/api/v1/workflows",
            OPERATOR,
            json!({"workflow_type": "loan-approval", "workflow_id": "loan-t2",
                   "input": loan("loan-t2", 1, HOUR_MS)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let task = task_of(&h, "loan-t2", "credit-manager").await;
    assert_eq!(task["level"], 1);
    let id = task["id"].as_str().expect("id");
    let inbox = h.get("/api/v1/tasks", MANAGER).await;
    assert_eq!(ids(&inbox.body), [id.to_owned()]);
    let decide = format!("/api/v1/tasks/{id}/decide");
    let underwriter = h
        .post(&decide, UNDERWRITER, json!({"decision": "Approve"}))
        .await;
    assert_error(&underwriter, StatusCode::FORBIDDEN, "forbidden");
    let manager = h
        .post(&decide, MANAGER, json!({"decision": "Reject"}))
        .await;
    assert_eq!(manager.status, StatusCode::OK, "{}", manager.body);
    assert_eq!(manager.body["decided_by"], "credit-manager");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_does_not_exist_is_404_and_a_bad_reference_400() {
    let h = Harness::new().await;
    start_loan(&h, "loan-t3").await;
    let task = task_of(&h, "loan-t3", "underwriter-1").await;
    let run = task["run"].as_u64().expect("run");
    for path in [
        "/api/v1/tasks/999999/1".to_owned(),
        format!("/api/v1/tasks/{run}/999"),
    ] {
        let r = h.get(&path, VIEWER).await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        let d = h
            .post(
                &format!("{path}/decide"),
                UNDERWRITER,
                json!({"decision": "Approve"}),
            )
            .await;
        assert_error(&d, StatusCode::NOT_FOUND, "not_found");
    }
    let bad = h.get("/api/v1/tasks/run-1/1", VIEWER).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");
    let no_decision = h
        .post(
            &format!("/api/v1/tasks/{}/decide", task["id"].as_str().expect("id")),
            UNDERWRITER,
            json!({}),
        )
        .await;
    assert_error(&no_decision, StatusCode::BAD_REQUEST, "bad_request");
    let unknown = h.get("/api/v1/workflows/nobody/tasks", VIEWER).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    let unknown_param = h.get("/api/v1/tasks?who=me", VIEWER).await;
    assert_error(&unknown_param, StatusCode::BAD_REQUEST, "bad_request");
}
