//! `/schedules`: every schedule with its state, next fire and last run,
//! and (for operators) pause, resume and trigger now.

use super::fmt::{human, utc};
use super::layout::page;
use super::respond::{checked, csrf_field, enc, see_other, CsrfForm, PageError, PageResult};
use crate::auth::{Role, WebCaller};
use crate::error::{codes, ApiError};
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Form;
use maud::html;
use refrain_history::{ScheduleError, Trigger, TriggerOutcome};
use serde::Deserialize;

fn schedule_error(e: ScheduleError, caller: &WebCaller) -> PageError {
    let (status, code) = match &e {
        ScheduleError::NotFound { .. } => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
        ScheduleError::AlreadyExists { .. } => (StatusCode::CONFLICT, codes::ALREADY_RUNNING),
        ScheduleError::BadCronExpression { .. } | ScheduleError::Invalid { .. } => {
            (StatusCode::BAD_REQUEST, codes::BAD_REQUEST)
        }
        ScheduleError::PayloadTooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE)
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE),
    };
    PageError::new(ApiError::new(status, code, e.to_string()), caller)
}

/// `GET /schedules`.
pub(super) async fn list(State(state): State<AppState>, caller: WebCaller) -> PageResult {
    let schedules = state
        .store()
        .list_schedules()
        .await
        .map_err(|e| schedule_error(e, &caller))?;
    let operator = caller.identity.has(Role::Operator);
    let body = html! {
        h1 { "Schedules" }
        @if schedules.is_empty() {
            p.muted { "No schedule." }
        } @else {
            table.schedules {
                thead { tr {
                    th { "Schedule" } th { "Workflow type" } th { "Trigger" } th { "State" }
                    th { "Next fire (UTC)" } th { "Last run" } th { "Started / skipped / missed" }
                    @if operator { th { "" } }
                } }
                tbody {
                    @for s in &schedules {
                        tr {
                            td { (s.spec.id) }
                            td { (s.spec.workflow_type) }
                            td { (trigger_text(&s.spec.trigger)) }
                            td { @if s.paused { span.status.paused { "paused" } } @else { span.status.running { "active" } } }
                            td { @if let Some(n) = s.next_fire { (utc(n)) } @else { "—" } }
                            td {
                                @if let Some(r) = &s.last_run {
                                    a href={ "/runs/" (enc(r.workflow_id.as_str())) "?run=" (r.run.0) } { (r.workflow_id.as_str()) }
                                    " fired " (utc(r.fire_time))
                                } @else { "never" }
                            }
                            td { (s.runs_started) " / " (s.skipped) " / " (s.missed) }
                            @if operator {
                                td {
                                    @let action = if s.paused { "resume" } else { "pause" };
                                    form.inline method="post" action={ "/schedules/" (enc(&s.spec.id)) "/" (action) } {
                                        (csrf_field(&caller))
                                        button type="submit" { @if s.paused { "Resume" } @else { "Pause" } }
                                    }
                                    " "
                                    form.inline method="post" action={ "/schedules/" (enc(&s.spec.id)) "/trigger" } {
                                        (csrf_field(&caller))
                                        button type="submit" title="Fire now, as its own fire would under its overlap policy" { "Trigger now" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Schedules", Some(&caller), body).into_response())
}

fn trigger_text(t: &Trigger) -> String {
    match t {
        Trigger::Every(d) => format!("every {}", human(*d)),
        Trigger::Cron(c) => format!("cron {c} (UTC)"),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ScheduleForm {
    csrf: String,
}

impl CsrfForm for ScheduleForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /schedules/{id}/pause`.
pub(super) async fn pause(
    State(state): State<AppState>,
    caller: WebCaller,
    Path(id): Path<String>,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> PageResult {
    checked(&caller, form, Role::Operator)?;
    state
        .store()
        .pause_schedule(&id)
        .await
        .map_err(|e| schedule_error(e, &caller))?;
    Ok(see_other("/schedules"))
}

/// `POST /schedules/{id}/resume`.
pub(super) async fn resume(
    State(state): State<AppState>,
    caller: WebCaller,
    Path(id): Path<String>,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> PageResult {
    checked(&caller, form, Role::Operator)?;
    state
        .store()
        .resume_schedule(&id)
        .await
        .map_err(|e| schedule_error(e, &caller))?;
    Ok(see_other("/schedules"))
}

/// `POST /schedules/{id}/trigger`: fires the schedule now (paused or
/// not), under its overlap policy; shows the run it started, or says why
/// none started.
pub(super) async fn trigger(
    State(state): State<AppState>,
    caller: WebCaller,
    Path(id): Path<String>,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> PageResult {
    checked(&caller, form, Role::Operator)?;
    let outcome = state
        .client()
        .trigger_schedule(&id)
        .await
        .map_err(|e| schedule_error(e, &caller))?;
    let open = match outcome {
        TriggerOutcome::Started(run) => {
            return Ok(see_other(&format!(
                "/runs/{}?run={}",
                enc(run.workflow_id.as_str()),
                run.run.0
            )))
        }
        TriggerOutcome::Buffered { open, .. } => {
            (open, "buffered: it starts when the open run closes")
        }
        TriggerOutcome::Skipped { open, .. } => {
            (open, "skipped: its overlap policy allows no second run")
        }
    };
    let (run, what) = open;
    let body = html! {
        h1 { "Schedule " (id) }
        p {
            "The fire was " (what) "; "
            a href={ "/runs/" (enc(run.workflow_id.as_str())) "?run=" (run.run.0) } { (run.workflow_id.as_str()) }
            " is still open."
        }
        p { a href="/schedules" { "Back to the schedules" } }
    };
    Ok(page("Schedule triggered", Some(&caller), body).into_response())
}
