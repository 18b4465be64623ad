//! A human task assigned to a group, through the dashboard: each member
//! logs in on the login form, finds it in their inbox and may decide it
//! under their own name; nobody else may.

use crate::api_support::post;
use crate::api_support::OwnServer;
use crate::dashboard_support::{login_with_form, page, submit};
use crate::harness::{ADMIN, MANAGER, OPERATOR, UNDERWRITER};
use axum::http::StatusCode;
use refrain::{Workflow, WorkflowContext, WorkflowError};
use refrain_tests::env::eventually;

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
            .form(&"the quarter's figures")
            .await?;
        Ok((d.decided_by, d.value))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_task_is_in_each_members_inbox_and_decided_in_the_members_name() {
    let server = OwnServer::new(|b| b.workflow::<SignOff>());
    let router = &server.router;
    let underwriter = login_with_form(router, UNDERWRITER).await;
    let admin = login_with_form(router, ADMIN).await;
    // Starting from the API: the dashboard has no start form.
    let started = post(
        router,
        "/api/v1/workflows",
        OPERATOR,
        serde_json::json!({"workflow_type": "sign-off", "workflow_id": "group-1"}),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);

    let task_path = eventually("the task in underwriter-1's inbox", async || {
        let (_, inbox) = page(router, &underwriter, "/inbox").await;
        let at = inbox.find("href=\"/inbox/")? + "href=\"".len();
        Some(inbox[at..].split('"').next()?.to_owned())
    })
    .await;
    let (_, task) = page(router, &underwriter, &task_path).await;
    assert!(task.contains("underwriters"), "{task}");
    assert!(task.contains("&quot;the quarter's figures&quot;"), "{task}");

    let manager = login_with_form(router, MANAGER).await;
    let (_, theirs) = page(router, &manager, "/inbox").await;
    assert!(!theirs.contains(&task_path), "{theirs}");
    // Every role decides only its own tasks, admin included.
    for outsider in [&manager, &admin] {
        let (status, _, html) = submit(
            router,
            outsider,
            &task_path,
            &[("csrf", &outsider.csrf), ("decision", "false")],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    }
    let (status, to, html) = submit(
        router,
        &underwriter,
        &task_path,
        &[
            ("csrf", &underwriter.csrf),
            ("decision", "true"),
            ("comment", "figures checked"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let run_page = eventually("the run completes", async || {
        let (_, html) = page(router, &underwriter, &to).await;
        html.contains("status completed").then_some(html)
    })
    .await;
    assert!(
        run_page.contains("&quot;underwriter-1&quot;") && run_page.contains("true"),
        "the workflow's result names the member: {run_page}"
    );
    assert!(run_page.contains("figures checked"));
    server.stop().await;
}
