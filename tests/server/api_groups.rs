//! A human task assigned to a group: in each member's inbox, decided by
//! any member under the member's own name, by nobody else.

use crate::api_support::{assert_error, get, post, OwnServer};
use crate::harness::{ADMIN, MANAGER, OPERATOR, UNDERWRITER};
use axum::http::StatusCode;
use refrain::{Workflow, WorkflowContext, WorkflowError};
use refrain_tests::env::eventually;
use serde_json::json;

/// Asks group `underwriters` to sign off; returns who did and what.
struct SignOff;
impl Workflow for SignOff {
    const NAME: &'static str = "sign-off";
    type Input = ();
    type Output = (String, bool);
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(String, bool), WorkflowError> {
        let d = ctx
            .human_task::<bool>("sign-off")
            .assignee("underwriters")
            .await?;
        Ok((d.decided_by, d.value))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_task_is_each_members_and_no_one_elses() {
    let server = OwnServer::new(|b| b.workflow::<SignOff>());
    let router = &server.router;
    let started = post(
        router,
        "/api/v1/workflows",
        OPERATOR,
        json!({"workflow_type": "sign-off", "workflow_id": "group-1"}),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);

    // underwriter-1's inbox has it through its group.
    let task = eventually("the task reaches underwriter-1's inbox", async || {
        let r = get(router, "/api/v1/tasks", UNDERWRITER).await;
        r.body["tasks"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(task["assignee"], "underwriters");
    let by_group = get(router, "/api/v1/tasks?assignee=underwriters", UNDERWRITER).await;
    assert_eq!(
        by_group.body["tasks"][0]["id"], task["id"],
        "{}",
        by_group.body
    );
    let outsider = get(router, "/api/v1/tasks?assignee=underwriters", MANAGER).await;
    assert_error(&outsider, StatusCode::FORBIDDEN, "forbidden");
    let manager_inbox = get(router, "/api/v1/tasks", MANAGER).await;
    assert_eq!(manager_inbox.body, json!({"tasks": []}));

    let decide = format!("/api/v1/tasks/{}/decide", task["id"].as_str().expect("id"));
    for token in [MANAGER, ADMIN] {
        let r = post(router, &decide, token, json!({"decision": true})).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    }
    let r = post(router, &decide, UNDERWRITER, json!({"decision": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["decided_by"], "underwriter-1");

    let result = eventually("the run completes", async || {
        let d = get(router, "/api/v1/workflows/group-1", UNDERWRITER).await;
        (d.body["status"] == "completed").then(|| d.body["result"].clone())
    })
    .await;
    assert_eq!(result, json!(["underwriter-1", true]));
    server.stop().await;
}
