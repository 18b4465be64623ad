//! The dashboard as a person uses it: a loan waiting for its underwriter
//! on every page, the inbox that is the assignee's only, a decision made
//! through the form that completes the run and shows in the timeline with
//! who decided and why; forms without the session's CSRF token, a viewer's
//! operator action and another person's task are refused with 403 and
//! write nothing; an escalated task in the next assignee's inbox and in
//! the KPIs; schedules paused and triggered by operators only.

use crate::dashboard_support::{login, page, submit};
use crate::harness::{Harness, MANAGER, OPERATOR, UNDERWRITER, VIEWER};
use axum::http::StatusCode;
use refrain::WorkflowHandle;
use refrain::{schedule_for, Trigger};
use refrain_examples::loan_approval::{
    applications, review_waiting, Application, LoanApproval, Pace, BO,
};
use refrain_history::{Event, EventSeq, RunId};
use refrain_tests::env::{eventually, result_of};
use std::time::Duration;

/// bo's application, whose reviewers are never reminded nor escalated
/// during a test.
fn slow_bo() -> Application {
    let pace = Pace {
        underwriter_deadline_ms: 3_600_000,
        manager_deadline_ms: 3_600_000,
        remind_every_ms: 3_600_000,
    };
    applications(pace)
        .into_iter()
        .find(|a| a.application_id == BO)
        .expect("loan-bo")
}

/// Starts loan-bo (the application the model is unsure about) with waits
/// long enough that nobody is reminded or escalated during a test, and
/// returns once its review is in underwriter-1's inbox: its run and the
/// review's path in the inbox.
async fn waiting_loan(h: &Harness) -> (WorkflowHandle<LoanApproval>, RunId, String) {
    let handle = h
        .client
        .start::<LoanApproval>(BO, slow_bo())
        .await
        .expect("start");
    let task = review_waiting(&h.client, BO)
        .await
        .expect("store")
        .expect("the review waits for underwriter-1");
    let path = format!("/inbox/{}/{}", task.run.0, task.cmd.0);
    (handle, task.run, path)
}

async fn history(h: &Harness, run: RunId) -> Vec<Event> {
    h.state
        .store()
        .read_history(run, EventSeq(1))
        .await
        .expect("history")
}

/// How many messages (signals, cancel requests, results) the run was ever
/// sent: a refused form must not add one.
async fn sent(h: &Harness, run: RunId) -> u64 {
    h.state
        .store()
        .run_record(run)
        .await
        .expect("record")
        .expect("the run")
        .inbox_tail
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_loan_shows_where_it_waits_on_every_page() {
    let h = Harness::new().await;
    let (_handle, run, task_path) = waiting_loan(&h).await;
    let viewer = login(&h, VIEWER);

    let (status, runs) = page(&h.router, &viewer, "/runs").await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    assert!(
        runs.contains(&format!("href=\"/runs/loan-bo?run={}\"", run.0)),
        "{runs}"
    );
    assert!(
        runs.contains(r#"<span class="status running">running</span> <strong>1</strong>"#),
        "the running count: {runs}"
    );
    let row = runs
        .split("<tr>")
        .find(|r| r.contains("/runs/loan-bo?"))
        .expect("loan-bo's row");
    assert!(
        row.contains("human task underwriting-review assigned to underwriter-1"),
        "the row says where it waits: {row}"
    );
    let (_, filtered) = page(&h.router, &viewer, "/runs?status=completed&id=loan-").await;
    assert!(!filtered.contains("/runs/loan-bo?"), "{filtered}");
    let (_, by_prefix) = page(&h.router, &viewer, "/runs?id=loan-b").await;
    assert!(by_prefix.contains("/runs/loan-bo?"), "{by_prefix}");
    let (status, _) = page(&h.router, &viewer, "/runs?status=sleeping").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, run_page) = page(&h.router, &viewer, "/runs/loan-bo").await;
    assert_eq!(status, StatusCode::OK, "{run_page}");
    assert!(run_page.contains("Waiting on"), "{run_page}");
    assert!(
        run_page.contains("human task underwriting-review assigned to underwriter-1"),
        "{run_page}"
    );
    // The timeline: the assignment, with the source line of the call.
    assert!(
        run_page.contains("<strong>ASSIGN</strong> human task underwriting-review"),
        "{run_page}"
    );
    assert!(
        run_page.contains("loan_approval/workflow.rs:"),
        "the callsite: {run_page}"
    );
    assert!(
        !run_page.contains("/runs/loan-bo/cancel"),
        "a viewer gets no operator form"
    );
    let operator = login(&h, OPERATOR);
    let (_, as_operator) = page(&h.router, &operator, "/runs/loan-bo").await;
    assert!(as_operator.contains("action=\"/runs/loan-bo/cancel\""));
    assert!(as_operator.contains(&format!("name=\"csrf\" value=\"{}\"", operator.csrf)));
    let (status, _) = page(&h.router, &viewer, "/runs/loan-nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, task) = page(&h.router, &viewer, &task_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        task.contains("&quot;applicant&quot;: &quot;bo&quot;"),
        "{task}"
    );

    let (status, kpis) = page(&h.router, &viewer, "/kpis").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kpis.contains("loan-approval"), "{kpis}");
    let (status, _) = page(&h.router, &viewer, "/schedules").await;
    assert_eq!(status, StatusCode::OK);
    crate::harness::stop(h).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inbox_shows_a_task_to_its_assignee_only() {
    let h = Harness::new().await;
    let (_handle, _run, task_path) = waiting_loan(&h).await;
    let underwriter = login(&h, UNDERWRITER);
    let (status, inbox) = page(&h.router, &underwriter, "/inbox").await;
    assert_eq!(status, StatusCode::OK);
    assert!(inbox.contains(&format!("href=\"{task_path}\"")), "{inbox}");
    assert!(inbox.contains("underwriting-review"));
    let (_, task) = page(&h.router, &underwriter, &task_path).await;
    assert!(task.contains(&format!("action=\"{task_path}\"")), "{task}");
    let (_, run_page) = page(&h.router, &underwriter, "/runs/loan-bo").await;
    assert!(
        run_page.contains(&format!("<a href=\"{task_path}\">decide</a>")),
        "the waiting panel leads the assignee to the task: {run_page}"
    );

    let manager = login(&h, MANAGER);
    let (_, theirs) = page(&h.router, &manager, "/inbox").await;
    assert!(!theirs.contains("underwriting-review"), "{theirs}");
    assert!(theirs.contains("Nothing waits for you."));
    let (_, run_page) = page(&h.router, &manager, "/runs/loan-bo").await;
    assert!(!run_page.contains(&format!("href=\"{task_path}\"")));
    let (_, task) = page(&h.router, &manager, &task_path).await;
    assert!(!task.contains("<form class=\"decide\""), "{task}");
    assert!(task.contains("Only underwriter-1 can decide"));
    crate::harness::stop(h).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deciding_in_the_inbox_completes_the_run_and_the_timeline_says_who_and_why() {
    let h = Harness::new().await;
    let (handle, run, task_path) = waiting_loan(&h).await;
    let underwriter = login(&h, UNDERWRITER);
    let (status, to, html) = submit(
        &h.router,
        &underwriter,
        &task_path,
        &[
            ("csrf", &underwriter.csrf),
            ("decision", "\"Approve\""),
            ("comment", "thin file, <b>steady</b> income"),
            // Not a field the server reads: the session decides.
            ("decided_by", "credit-manager"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(to, format!("/runs/loan-bo?run={}", run.0));
    result_of(&handle).await.expect("the loan completes");

    let events = history(&h, run).await;
    let decided = events.iter().find_map(|e| match e {
        Event::HumanTaskDecided {
            decided_by,
            comment,
            ..
        } => Some((decided_by.clone(), comment.clone())),
        _ => None,
    });
    assert_eq!(
        decided,
        Some((
            "underwriter-1".to_owned(),
            Some("thin file, <b>steady</b> income".to_owned())
        ))
    );
    let (_, run_page) = page(&h.router, &underwriter, &to).await;
    assert!(
        run_page.contains("<span class=\"status completed\">completed</span>"),
        "{run_page}"
    );
    assert!(
        run_page.contains(
            "<strong>DECIDED</strong> by <strong class=\"decided-by\">underwriter-1</strong>"
        ),
        "{run_page}"
    );
    assert!(run_page.contains("&quot;Approve&quot;"), "{run_page}");
    // The comment is escaped, not markup.
    assert!(
        run_page.contains("thin file, &lt;b&gt;steady&lt;/b&gt; income"),
        "{run_page}"
    );
    assert!(!run_page.contains("<b>steady</b>"));
    // Decided once: the task is gone.
    let (status, _) = page(&h.router, &underwriter, &task_path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // ada's loans are decided by the model alone: of the three closed
    // loans, two had no human decision.
    let ada = applications(Pace::EXAMPLE)
        .into_iter()
        .find(|a| a.application_id == "loan-ada")
        .expect("loan-ada");
    for id in ["loan-ada", "loan-ada-2"] {
        let run = h
            .client
            .start::<LoanApproval>(id, ada.clone())
            .await
            .unwrap();
        result_of(&run).await.expect("ada's loan completes");
    }
    let (_, kpis) = page(&h.router, &underwriter, "/kpis").await;
    let row = kpis
        .split("<tr>")
        .find(|r| r.contains("/runs?type=loan-approval"))
        .expect("a row for loan-approval");
    let cells: Vec<&str> = row
        .split("<td>")
        // Before the first cell, and the type's cell (a link).
        .skip(2)
        .map(|c| c.split('<').next().unwrap_or_default())
        .collect();
    // Started, running, completed, failed.
    assert_eq!(cells[..4], ["3", "0", "3", "0"], "{row}");
    assert!(row.contains("<td>0.0%</td>"), "no failure: {row}");
    assert!(
        row.contains("66.7%<span class=\"muted\"> of 3</span>"),
        "automation rate: {row}"
    );
    crate::harness::stop(h).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_without_the_sessions_csrf_token_are_refused_and_write_nothing() {
    let h = Harness::new().await;
    let (_handle, run, task_path) = waiting_loan(&h).await;
    let before = sent(&h, run).await;
    let underwriter = login(&h, UNDERWRITER);
    let operator = login(&h, OPERATOR);
    let decision = [("decision", "\"Approve\""), ("comment", "ok")];
    let (missing, _, html) = submit(&h.router, &underwriter, &task_path, &decision).await;
    assert_eq!(missing, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("csrf"), "{html}");
    // Another session's token is as wrong as none.
    let mut wrong = decision.to_vec();
    wrong.push(("csrf", &operator.csrf));
    let (status, _, _) = submit(&h.router, &underwriter, &task_path, &wrong).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = submit(
        &h.router,
        &operator,
        "/runs/loan-bo/cancel",
        &[("csrf", "not-the-token"), ("reason", "forged")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = submit(
        &h.router,
        &operator,
        "/runs/loan-bo/signal",
        &[("name", "amend"), ("value", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let tasks = h.client.list_human_tasks("underwriter-1").await.unwrap();
    assert_eq!(tasks.len(), 1, "the task is still open");
    assert_eq!(sent(&h, run).await, before, "no signal nor cancel request");
    assert!(!history(&h, run)
        .await
        .iter()
        .any(|e| matches!(e, Event::HumanTaskDecided { .. })));
    crate::harness::stop(h).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_may_not_cancel_nor_anyone_decide_another_persons_task_and_operators_act_in_their_name(
) {
    let h = Harness::new().await;
    let (_handle, run, task_path) = waiting_loan(&h).await;
    let before = sent(&h, run).await;
    let viewer = login(&h, VIEWER);
    let (status, _, html) = submit(
        &h.router,
        &viewer,
        "/runs/loan-bo/cancel",
        &[("csrf", &viewer.csrf), ("reason", "not mine to cancel")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("needs the operator role"), "{html}");

    let manager = login(&h, MANAGER);
    let (status, _, html) = submit(
        &h.router,
        &manager,
        &task_path,
        &[("csrf", &manager.csrf), ("decision", "\"Reject\"")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("assigned to underwriter-1"), "{html}");
    assert_eq!(sent(&h, run).await, before, "no cancel request");
    let tasks = h.client.list_human_tasks("underwriter-1").await.unwrap();
    assert_eq!(tasks.len(), 1, "the task is still open");

    // An operator's signal is recorded with its sender; a value that is
    // not JSON is refused and sends nothing.
    let operator = login(&h, OPERATOR);
    let (status, _, html) = submit(
        &h.router,
        &operator,
        "/runs/loan-bo/signal",
        &[
            ("csrf", &operator.csrf),
            ("name", "note"),
            ("value", "{oops"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert_eq!(sent(&h, run).await, before);
    let (status, _, html) = submit(
        &h.router,
        &operator,
        "/runs/loan-bo/signal",
        &[
            ("csrf", &operator.csrf),
            ("name", "note"),
            ("value", r#"{"text": "called the applicant"}"#),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let sender = eventually("the signal in the history", async || {
        history(&h, run).await.into_iter().find_map(|e| match e {
            Event::SignalReceived { name, sender, .. } if name == "note" => Some(sender),
            _ => None,
        })
    })
    .await;
    assert_eq!(sender.as_deref(), Some("operator"));
    let (_, run_page) = page(&h.router, &operator, "/runs/loan-bo").await;
    assert!(
        run_page.contains("signal <strong>note</strong> from <strong>operator</strong>"),
        "{run_page}"
    );

    // The same cancel by an operator goes through, in its name.
    let (status, to, html) = submit(
        &h.router,
        &operator,
        "/runs/loan-bo/cancel",
        &[
            ("csrf", &operator.csrf),
            ("run", &run.0.to_string()),
            ("reason", "applicant withdrew"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(to, "/runs/loan-bo");
    // The request waits in the run's inbox until its next activation
    // records it.
    let requested_by = eventually("the cancel request in the history", async || {
        history(&h, run).await.into_iter().find_map(|e| match e {
            Event::WorkflowCancelRequested { requested_by, .. } => Some(requested_by),
            _ => None,
        })
    })
    .await;
    assert_eq!(requested_by.as_deref(), Some("operator"));
    crate::harness::stop(h).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_pause_and_trigger_schedules_and_viewers_only_see_them() {
    let h = Harness::new().await;
    let spec = schedule_for::<LoanApproval>(
        "hourly-loans",
        Trigger::Every(Duration::from_secs(3600)),
        &slow_bo(),
    )
    .expect("spec");
    h.client.create_schedule(spec).await.expect("schedule");
    let paused = async || {
        h.client
            .describe_schedule("hourly-loans")
            .await
            .expect("schedule")
            .paused
    };

    let viewer = login(&h, VIEWER);
    let (status, list) = page(&h.router, &viewer, "/schedules").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.contains("hourly-loans") && list.contains("every 1h00m"),
        "{list}"
    );
    assert!(!list.contains("/schedules/hourly-loans/pause"), "{list}");
    let (status, _, _) = submit(
        &h.router,
        &viewer,
        "/schedules/hourly-loans/pause",
        &[("csrf", &viewer.csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let operator = login(&h, OPERATOR);
    let (status, _, _) = submit(&h.router, &operator, "/schedules/hourly-loans/pause", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!paused().await, "refused forms paused nothing");

    let (status, to, _) = submit(
        &h.router,
        &operator,
        "/schedules/hourly-loans/pause",
        &[("csrf", &operator.csrf)],
    )
    .await;
    assert_eq!((status, to.as_str()), (StatusCode::SEE_OTHER, "/schedules"));
    assert!(paused().await);
    let (_, list) = page(&h.router, &operator, "/schedules").await;
    assert!(
        list.contains("action=\"/schedules/hourly-loans/resume\""),
        "{list}"
    );

    let (status, to, html) = submit(
        &h.router,
        &operator,
        "/schedules/hourly-loans/trigger",
        &[("csrf", &operator.csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let record = h.client.describe_schedule("hourly-loans").await.unwrap();
    let started = record.last_run.expect("the trigger started a run");
    assert!(
        to.starts_with("/runs/hourly-loans%40") && to.ends_with(&format!("?run={}", started.run.0)),
        "{to}"
    );
    let (status, run_page) = page(&h.router, &operator, &to).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        run_page.contains(started.workflow_id.as_str()),
        "{run_page}"
    );
    let (status, _) = page(&h.router, &operator, "/schedules/nope/pause").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _, _) = submit(
        &h.router,
        &operator,
        "/schedules/nope/pause",
        &[("csrf", &operator.csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    crate::harness::stop(h).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_escalated_task_moves_to_the_next_inbox_and_counts_as_escalated() {
    let h = Harness::new().await;
    let mut app = slow_bo();
    app.pace.underwriter_deadline_ms = 50;
    h.client
        .start::<LoanApproval>(BO, app)
        .await
        .expect("start");
    let task = eventually("the escalation to credit-manager", async || {
        h.client
            .list_human_tasks("credit-manager")
            .await
            .ok()?
            .into_iter()
            .next()
    })
    .await;
    let task_path = format!("/inbox/{}/{}", task.run.0, task.cmd.0);

    let manager = login(&h, MANAGER);
    let (_, inbox) = page(&h.router, &manager, "/inbox").await;
    assert!(inbox.contains(&format!("href=\"{task_path}\"")), "{inbox}");
    let (_, task_page) = page(&h.router, &manager, &task_path).await;
    assert!(task_page.contains("1 (escalated)"), "{task_page}");
    assert!(task_page.contains(&format!("action=\"{task_path}\"")));
    let underwriter = login(&h, UNDERWRITER);
    let (_, theirs) = page(&h.router, &underwriter, "/inbox").await;
    assert!(!theirs.contains(&task_path), "no longer underwriter-1's");

    let (_, run_page) = page(&h.router, &manager, "/runs/loan-bo").await;
    assert!(
        run_page.contains(
            "from underwriter-1 to <strong class=\"who\">credit-manager</strong> (level 1)"
        ),
        "{run_page}"
    );
    let (_, kpis) = page(&h.router, &manager, "/kpis").await;
    let row = kpis
        .split("<tr>")
        .find(|r| r.contains("/runs?type=loan-approval"))
        .expect("a row for loan-approval");
    // The last cell: open tasks escalated.
    assert!(row.contains("<td>1</td></tr>"), "one escalated: {row}");
    crate::harness::stop(h).await;
}
