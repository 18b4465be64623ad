//! `/inbox`: the logged-in person's open human tasks (assigned to their
//! name or one of their groups), a task's page with its form data, and
//! the decision. `decided_by` is the session's identity, never a field of
//! the form; only the task's assignee (or a member of the assignee group)
//! may decide. The decision is made as the assignee checked, so a task
//! that escalated meanwhile refuses it and the page says where it went.
//! A member of the group a task is assigned to can claim it (a form with
//! its CSRF token), which takes it out of the other members' inboxes; see
//! `api::tasks` for the rules.

use super::fmt::{human, pretty, utc};
use super::layout::page;
use super::respond::{checked, csrf_field, enc, see_other, CsrfForm, PageError, PageResult};
use crate::auth::{Role, WebCaller};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Form;
use maud::html;
use refrain::human_task::HumanTaskRef;
use refrain::ClientError;
use refrain_history::{CommandSeq, HumanTaskRecord, RunId, Timestamp};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `GET /inbox`.
pub(super) async fn list(State(state): State<AppState>, caller: WebCaller) -> PageResult {
    let mut tasks = BTreeMap::new();
    for name in caller.identity.inbox_names() {
        let open = state
            .store()
            .list_human_tasks(name)
            .await
            .map_err(|e| PageError::new(ClientError::from(e).into(), &caller))?;
        for t in open {
            tasks.insert((t.run, t.cmd), t);
        }
    }
    let now = Timestamp::now();
    let body = html! {
        h1 { "Inbox" }
        p.hint {
            "Open human tasks assigned to " strong { (caller.identity.name) }
            @for g in &caller.identity.groups { " or to group " strong { (g) } }
            "."
        }
        @if tasks.is_empty() {
            p.muted { "Nothing waits for you." }
        } @else {
            table.inbox {
                thead { tr { th { "Task" } th { "Workflow" } th { "Assigned to" } th { "Assigned (UTC)" } th { "Due (UTC)" } th { "Level" } th { "Escalates to" } } }
                tbody {
                    @for t in tasks.values() {
                        tr class=[overdue(t, now).then_some("overdue")] {
                            td { a href={ "/inbox/" (t.run.0) "/" (t.cmd.0) } { (t.task) } }
                            td { a href={ "/runs/" (enc(t.workflow_id.as_str())) } { (t.workflow_id.as_str()) } }
                            td { (t.assignee) }
                            td { (utc(t.assigned_at)) }
                            td { (due(t, now)) }
                            td { (t.level) }
                            td { (next_assignee(t).unwrap_or_else(|| "-".into())) }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Inbox", Some(&caller), body).into_response())
}

/// Who gets `t` when its deadline passes (none without a deadline).
fn next_assignee(t: &HumanTaskRecord) -> Option<String> {
    refrain::HumanTask::from(t.clone()).escalates_to
}

fn overdue(t: &HumanTaskRecord, now: Timestamp) -> bool {
    t.deadline.is_some_and(|d| d < now)
}

fn due(t: &HumanTaskRecord, now: Timestamp) -> String {
    match t.deadline {
        None => "no deadline".into(),
        Some(d) if d < now => format!("{} (overdue by {})", utc(d), human(now.saturating_since(d))),
        Some(d) => format!("{} (in {})", utc(d), human(d.saturating_since(now))),
    }
}

/// The open task `cmd` of run `run`.
async fn open_task(state: &AppState, run: u64, cmd: u32) -> Result<HumanTaskRecord, ClientError> {
    state
        .store()
        .human_tasks_of_run(RunId(run))
        .await?
        .into_iter()
        .find(|t| t.cmd == CommandSeq(cmd))
        .ok_or_else(|| ClientError::HumanTaskNotFound {
            task: format!("open human task {cmd} of run {run}"),
        })
}

/// `GET /inbox/{run}/{cmd}`.
pub(super) async fn show(
    State(state): State<AppState>,
    caller: WebCaller,
    Path((run, cmd)): Path<(u64, u32)>,
) -> PageResult {
    let t = open_task(&state, run, cmd)
        .await
        .map_err(|e| PageError::new(e.into(), &caller))?;
    let now = Timestamp::now();
    let mine = caller.identity.is_assignee(&t.assignee);
    let claimable = t.claimed_from.is_none() && caller.identity.groups.contains(&t.assignee);
    let body = html! {
        h1 { (t.task) }
        table.facts {
            tr { th { "Workflow" } td { a href={ "/runs/" (enc(t.workflow_id.as_str())) "?run=" (t.run.0) } { (t.workflow_id.as_str()) } " (run " (t.run.0) ")" } }
            tr { th { "Assigned to" } td {
                (t.assignee)
                @if let Some(group) = &t.claimed_from { " (claimed from group " (group) ")" }
                " since " (utc(t.assigned_at))
            } }
            tr class=[overdue(&t, now).then_some("overdue")] { th { "Deadline" } td { (due(&t, now)) } }
            tr { th { "Escalation level" } td { (t.level) @if t.level > 0 { " (escalated)" } } }
            @if let Some(next) = next_assignee(&t) {
                tr { th { "Escalates to" } td { (next) " when the deadline passes" } }
            }
        }
        h2 { "Form" }
        @match &t.form {
            Some(f) => pre.form { (pretty(f)) },
            None => p.muted { "This task has no form data." },
        }
        @if claimable {
            form.claim method="post" action={ "/inbox/" (run) "/" (cmd) "/claim" } {
                (csrf_field(&caller))
                button type="submit" { "Claim for " (caller.identity.name) }
                " " span.muted { "(takes it out of the other members' inboxes of " (t.assignee) ")" }
            }
        }
        @if mine {
            h2 { "Decide" }
            form.decide method="post" action={ "/inbox/" (run) "/" (cmd) } {
                (csrf_field(&caller))
                label for="decision" { "Decision (JSON)" }
                textarea #decision name="decision" rows="3" required placeholder="\"Approve\"" {}
                label for="comment" { "Comment (why; the history keeps it)" }
                textarea #comment name="comment" rows="3" {}
                button type="submit" { "Decide as " (caller.identity.name) }
            }
        } @else {
            p.muted { "Only " (t.assignee) " can decide this task." }
        }
    };
    Ok(page(&t.task, Some(&caller), body).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct DecideForm {
    csrf: String,
    decision: String,
    comment: String,
}

impl CsrfForm for DecideForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /inbox/{run}/{cmd}`: records the decision as the caller's, then
/// shows the run.
pub(super) async fn decide(
    State(state): State<AppState>,
    caller: WebCaller,
    Path((run, cmd)): Path<(u64, u32)>,
    form: Result<Form<DecideForm>, FormRejection>,
) -> PageResult {
    // Every role may decide its own tasks; the assignee check follows.
    let f = checked(&caller, form, Role::Viewer)?;
    let fail = |e: ClientError| PageError::new(e.into(), &caller);
    let t = open_task(&state, run, cmd).await.map_err(fail)?;
    if !caller.identity.is_assignee(&t.assignee) {
        return Err(PageError::new(
            ApiError::forbidden(format!(
                "this task is assigned to {}; {} may not decide it",
                t.assignee, caller.identity.name
            )),
            &caller,
        ));
    }
    let decision: serde_json::Value = serde_json::from_str(f.decision.trim()).map_err(|e| {
        PageError::new(
            ApiError::bad_request(format!(
                "the decision is not JSON ({e}); a text is written in quotes, e.g. \"Approve\""
            )),
            &caller,
        )
    })?;
    let comment = Some(f.comment.trim()).filter(|c| !c.is_empty());
    let reference = HumanTaskRef::Exact {
        workflow_id: t.workflow_id.clone(),
        run: t.run,
        cmd: t.cmd,
    };
    let decided = state
        .client()
        .decide_human_task_as_assignee(
            &reference,
            &t.assignee,
            &decision,
            &caller.identity.name,
            comment,
        )
        .await;
    match decided {
        Ok(()) => {}
        Err(ClientError::HumanTaskReassigned { assignee, .. }) => {
            return Ok(moved(&caller, &t, &assignee));
        }
        Err(e) => return Err(fail(e)),
    }
    Ok(see_other(&format!(
        "/runs/{}?run={}",
        enc(t.workflow_id.as_str()),
        t.run.0
    )))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ClaimForm {
    csrf: String,
}

impl CsrfForm for ClaimForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /inbox/{run}/{cmd}/claim`: the caller, a member of the task's
/// group, takes it; then shows the task.
pub(super) async fn claim(
    State(state): State<AppState>,
    caller: WebCaller,
    Path((run, cmd)): Path<(u64, u32)>,
    form: Result<Form<ClaimForm>, FormRejection>,
) -> PageResult {
    checked(&caller, form, Role::Viewer)?;
    let fail = |e: ClientError| PageError::new(e.into(), &caller);
    let t = open_task(&state, run, cmd).await.map_err(fail)?;
    let group = t.claimed_from.as_deref().unwrap_or(&t.assignee);
    if !caller.identity.groups.iter().any(|g| g == group) {
        return Err(PageError::new(
            ApiError::forbidden(format!(
                "this task is assigned to {group}; only a member of group {group} may claim it"
            )),
            &caller,
        ));
    }
    if t.claimed_from.is_some() {
        return Err(PageError::new(
            ApiError::claimed(group, &t.assignee),
            &caller,
        ));
    }
    let reference = HumanTaskRef::Exact {
        workflow_id: t.workflow_id.clone(),
        run: t.run,
        cmd: t.cmd,
    };
    match state
        .client()
        .claim_human_task(&reference, group, &caller.identity.name)
        .await
    {
        Ok(()) => Ok(see_other(&format!("/inbox/{run}/{cmd}"))),
        Err(ClientError::HumanTaskReassigned { assignee, .. }) => {
            Err(PageError::new(ApiError::claimed(group, &assignee), &caller))
        }
        Err(e) => Err(fail(e)),
    }
}

/// The answer to a decision refused because task `t` escalated to
/// `assignee` while the caller had it open: 409 (a `reassigned` conflict),
/// saying where the task went and that nothing was recorded.
fn moved(caller: &WebCaller, t: &HumanTaskRecord, assignee: &str) -> axum::response::Response {
    let body = html! {
        h1 { "This task moved" }
        p.error {
            (t.task) " was reassigned to " strong { (assignee) }
            " while you had it open (its deadline passed and it escalated). "
            "Your decision was not recorded."
        }
        p {
            a href={ "/runs/" (enc(t.workflow_id.as_str())) "?run=" (t.run.0) } { "See the workflow" }
            " · " a href="/inbox" { "Back to your inbox" }
        }
        p.muted { "HTTP 409 · " code { (crate::error::codes::REASSIGNED) } }
    };
    (
        StatusCode::CONFLICT,
        page("This task moved", Some(caller), body),
    )
        .into_response()
}
