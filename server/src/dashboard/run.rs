//! `/runs/{workflow_id}` (`?run=N` for an earlier run): the header, the
//! "waiting on" panel, the operator's actions, and the timeline.

use super::fmt::{failure, human, pretty, status_class, utc};
use super::layout::page;
use super::respond::{csrf_field, enc, PageError, PageResult};
use super::timeline;
use crate::auth::{Role, WebCaller};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use maud::{html, Markup};
use refrain::{ClientError, Waiting};
use refrain_history::{EventSeq, RunId, RunRecord, Timestamp, WorkflowId};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(super) struct RunQuery {
    run: Option<u64>,
}

/// The run `run` of `id`, or its latest.
pub(super) async fn load(
    state: &AppState,
    id: &WorkflowId,
    run: Option<u64>,
) -> Result<(RunId, RunRecord), ClientError> {
    let store = state.store();
    match run {
        None => store
            .latest_run(id)
            .await?
            .ok_or_else(|| ClientError::NotFound {
                workflow_id: id.clone(),
            }),
        Some(n) => match store.run_record(RunId(n)).await? {
            Some(r) if r.workflow_id == *id => Ok((RunId(n), r)),
            _ => Err(ClientError::RunNotFound { run: RunId(n) }),
        },
    }
}

/// `GET /runs/{workflow_id}`.
pub(super) async fn show(
    State(state): State<AppState>,
    caller: WebCaller,
    Path(id): Path<String>,
    Query(q): Query<RunQuery>,
) -> PageResult {
    let fail = |e: ClientError| PageError::new(e.into(), &caller);
    let id = WorkflowId::new(id);
    let (run, record) = load(&state, &id, q.run).await.map_err(fail)?;
    let store = state.store();
    let events = store
        .read_history(run, EventSeq(1))
        .await
        .map_err(|e| fail(e.into()))?;
    // Only the latest run can be open, and that is the run `waiting_on`
    // reads; a run closed meanwhile waits on nothing.
    let waiting = if record.status.is_open() {
        let (latest, _, waiting) = state.client().waiting_on(id.clone()).await.map_err(fail)?;
        if latest == run {
            waiting
        } else {
            Vec::new()
        }
    } else {
        Vec::new()
    };
    let now = Timestamp::now();
    let title = format!("{} · run {}", id.as_str(), run.0);
    let body = html! {
        h1 { (id.as_str()) " " span class=(status_class(record.status)) { (record.status.as_str()) } }
        (header(run, &record))
        @if record.status.is_open() {
            section.waiting {
                h2 { "Waiting on" }
                ul {
                    @for w in &waiting {
                        li class=(w.kind()) {
                            (w.to_string())
                            @if let Waiting::HumanTask { cmd, assignee, deadline, .. } = w {
                                @if deadline.is_some_and(|d| d < now) { " " strong.error { "overdue" } }
                                @if caller.identity.is_assignee(assignee) {
                                    " · " a href={ "/inbox/" (run.0) "/" (cmd.0) } { "decide" }
                                }
                            }
                        }
                    }
                }
            }
            @if caller.identity.has(Role::Operator) { (actions(&caller, &id, run)) }
        }
        h2 { "Timeline" }
        p.hint {
            (events.len()) " events. Times are UTC; events carry the time of the activation that recorded them. "
            "Retries happen inside the store: only an activity's final attempt is recorded."
        }
        (timeline::render(&events, &record))
    };
    Ok(page(&title, Some(&caller), body).into_response())
}

fn header(run: RunId, r: &RunRecord) -> Markup {
    let now = Timestamp::now();
    html! {
        table.facts {
            tr { th { "Type" } td { (r.workflow_type) } }
            tr { th { "Run" } td {
                (run.0)
                @if let Some(from) = r.continued_from { " · continues " a href={ "?run=" (from.0) } { "run " (from.0) } }
                @if let Some(to) = r.continued_to { " · continued as " a href={ "?run=" (to.0) } { "run " (to.0) } }
            } }
            @if let Some(p) = &r.parent {
                tr { th { "Parent" } td { a href={ "/runs/" (enc(p.workflow_id.as_str())) "?run=" (p.run.0) } { (p.workflow_id.as_str()) } } }
            }
            tr { th { "Started" } td { (utc(r.started_at)) } }
            tr { th { "Closed" } td {
                @if let Some(c) = r.closed_at {
                    (utc(c)) " (after " (human(c.saturating_since(r.started_at))) ")"
                } @else {
                    "open for " (human(now.saturating_since(r.started_at)))
                }
            } }
            @match &r.outcome {
                Some(Ok(result)) => tr { th { "Result" } td { pre { (pretty(result)) } } },
                Some(Err(f)) => tr { th { "Failure" } td.error { (failure(f)) } },
                None => {},
            }
            @if let Some(f) = &r.last_task_failure {
                tr { th { "Workflow task failing" } td { pre.error { (f) } } }
            }
        }
    }
}

/// The operator's forms: signal, cancel, terminate.
fn actions(caller: &WebCaller, id: &WorkflowId, run: RunId) -> Markup {
    let base = format!("/runs/{}", enc(id.as_str()));
    html! {
        section.actions {
            h2 { "Actions" }
            form method="post" action={ (base) "/signal" } {
                (csrf_field(caller))
                input type="hidden" name="run" value=(run.0);
                label { "Signal " input type="text" name="name" required placeholder="name"; }
                " "
                label { "value (JSON) " input type="text" name="value" placeholder="null"; }
                " "
                button type="submit" { "Send signal" }
            }
            form method="post" action={ (base) "/cancel" } {
                (csrf_field(caller))
                input type="hidden" name="run" value=(run.0);
                label { "Reason " input type="text" name="reason" required; }
                " "
                button type="submit" { "Cancel" }
            }
            form method="post" action={ (base) "/terminate" } {
                (csrf_field(caller))
                input type="hidden" name="run" value=(run.0);
                label { "Reason " input type="text" name="reason" required; }
                " "
                button.danger type="submit" { "Terminate (no cleanup)" }
            }
        }
    }
}
