//! Claiming a group's human task: a member takes it (API and dashboard
//! form, CSRF-checked), it leaves the group's inbox for the member's, the
//! history says who claimed it; nobody outside the group may claim, admin
//! included; a claimed task cannot be claimed again.

use crate::api_support::{assert_error, get, post, OwnServer};
use crate::dashboard_support::{login_with_form, page, submit};
use crate::harness::{ADMIN, MANAGER, OPERATOR, UNDERWRITER};
use axum::http::StatusCode;
use refrain::{Workflow, WorkflowContext, WorkflowError};
use refrain_tests::env::eventually;
use serde_json::{json, Value};
use std::time::Duration;

/// Asks group `underwriters` to sign off within an hour, then
/// `credit-manager`; returns who decided.
struct GroupSignOff;
impl Workflow for GroupSignOff {
    const NAME: &'static str = "group-sign-off";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let d = ctx
            .human_task::<bool>("sign-off")
            .assignee("underwriters")
            .deadline(Duration::from_secs(3600))
            .escalate_to(["credit-manager"])
            .await?;
        Ok(d.decided_by)
    }
}

async fn start(server: &OwnServer, id: &str) -> Value {
    let router = &server.router;
    let started = post(
        router,
        "/api/v1/workflows",
        OPERATOR,
        json!({"workflow_type": "group-sign-off", "workflow_id": id}),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    eventually("the task reaches the group", async || {
        let r = get(router, "/api/v1/tasks?assignee=underwriters", UNDERWRITER).await;
        r.body["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["workflow_id"] == id)
            .cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_claims_a_group_task_and_nobody_else_can() {
    let server = OwnServer::new(|b| b.workflow::<GroupSignOff>());
    let router = &server.router;
    let task = start(&server, "claim-1").await;
    assert_eq!(task["escalates_to"], "credit-manager", "{task}");
    assert_eq!(task["claimed_from"], Value::Null, "{task}");
    let id = task["id"].as_str().expect("id");
    let claim = format!("/api/v1/tasks/{id}/claim");

    // Not a member: refused whatever the role, and nothing moves.
    for token in [MANAGER, ADMIN, OPERATOR] {
        let r = post(router, &claim, token, json!({})).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    }
    let missing = post(
        router,
        "/api/v1/tasks/999999/1/claim",
        UNDERWRITER,
        json!({}),
    )
    .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");

    let r = post(router, &claim, UNDERWRITER, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["claimed_by"], "underwriter-1");
    assert_eq!(r.body["claimed_from"], "underwriters");

    // Claimed once: a second claim is a conflict.
    let again = post(router, &claim, UNDERWRITER, json!({})).await;
    assert_error(&again, StatusCode::CONFLICT, "claimed");

    // The group's list no longer has it; the member's does, noting the
    // group, with the same chain.
    let group = get(router, "/api/v1/tasks?assignee=underwriters", UNDERWRITER).await;
    assert_eq!(group.body, json!({"tasks": []}));
    let mine = get(router, "/api/v1/tasks?assignee=underwriter-1", UNDERWRITER).await;
    let mine = &mine.body["tasks"][0];
    assert_eq!(mine["id"], id, "{mine}");
    assert_eq!(mine["assignee"], "underwriter-1");
    assert_eq!(mine["claimed_from"], "underwriters");
    assert_eq!(mine["escalates_to"], "credit-manager");

    // The history records who claimed it.
    let claimed = eventually("the claim in the history", async || {
        let h = get(router, "/api/v1/workflows/claim-1/history", UNDERWRITER).await;
        h.body["events"]
            .as_array()?
            .iter()
            .find(|e| e["type"] == "HumanTaskClaimed")
            .cloned()
    })
    .await;
    assert_eq!(claimed["from"], "underwriters", "{claimed}");
    assert_eq!(claimed["claimed_by"], "underwriter-1", "{claimed}");

    // The claimer decides in their own name.
    let decide = format!("/api/v1/tasks/{id}/decide");
    let r = post(router, &decide, UNDERWRITER, json!({"decision": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let result = eventually("the run completes", async || {
        let d = get(router, "/api/v1/workflows/claim-1", UNDERWRITER).await;
        (d.body["status"] == "completed").then(|| d.body["result"].clone())
    })
    .await;
    assert_eq!(result, json!("underwriter-1"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inbox_claims_with_a_csrf_checked_form() {
    let server = OwnServer::new(|b| b.workflow::<GroupSignOff>());
    let router = &server.router;
    let task = start(&server, "claim-2").await;
    let task_path = format!("/inbox/{}", task["id"].as_str().expect("id"));
    let claim_path = format!("{task_path}/claim");
    let underwriter = login_with_form(router, UNDERWRITER).await;
    let manager = login_with_form(router, MANAGER).await;

    let (_, html) = page(router, &underwriter, &task_path).await;
    assert!(html.contains("Claim for underwriter-1"), "{html}");
    assert!(html.contains("Escalates to"), "{html}");
    let (_, html) = page(router, &manager, &task_path).await;
    assert!(!html.contains("Claim for"), "{html}");

    // Without the session's CSRF token, or not a member: refused.
    let (status, _, html) = submit(router, &underwriter, &claim_path, &[("csrf", "forged")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    let (status, _, html) = submit(router, &manager, &claim_path, &[("csrf", &manager.csrf)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    let group = get(router, "/api/v1/tasks?assignee=underwriters", UNDERWRITER).await;
    assert_eq!(group.body["tasks"].as_array().map(Vec::len), Some(1));

    let (status, to, html) = submit(
        router,
        &underwriter,
        &claim_path,
        &[("csrf", &underwriter.csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(to, task_path);
    let (_, html) = page(router, &underwriter, &task_path).await;
    assert!(html.contains("claimed from group underwriters"), "{html}");
    assert!(!html.contains("Claim for"), "{html}");
    let (status, _, html) = submit(
        router,
        &underwriter,
        &claim_path,
        &[("csrf", &underwriter.csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    server.stop().await;
}
