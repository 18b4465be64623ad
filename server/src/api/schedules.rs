//! Schedules: list, describe, pause, resume, and fire one now.

use super::extract::ApiPath;
use super::json;
use crate::auth::{ApiCaller, Role};
use crate::error::{codes, ApiError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use refrain::{ScheduleError, TriggerOutcome};
use serde_json::{json, Value};

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        let message = e.to_string();
        let (status, code) = match &e {
            ScheduleError::NotFound { .. } => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            ScheduleError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE)
            }
            ScheduleError::AlreadyExists { .. } => (StatusCode::CONFLICT, codes::ALREADY_RUNNING),
            ScheduleError::BadCronExpression { .. } | ScheduleError::Invalid { .. } => {
                (StatusCode::BAD_REQUEST, codes::BAD_REQUEST)
            }
            ScheduleError::Damaged { .. } => (StatusCode::INTERNAL_SERVER_ERROR, codes::DAMAGED),
            _ => (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE),
        };
        ApiError::new(status, code, message)
    }
}

/// `GET /api/v1/schedules`
pub(crate) async fn list(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> Result<Json<Value>, ApiError> {
    let schedules = state.client().list_schedules().await?;
    let schedules: Vec<Value> = schedules.iter().map(json::schedule).collect();
    Ok(Json(json!({ "schedules": schedules })))
}

/// `GET /api/v1/schedules/{id}`
pub(crate) async fn describe(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let s = state.client().describe_schedule(&id).await?;
    Ok(Json(json::schedule(&s)))
}

/// `POST /api/v1/schedules/{id}/pause`
pub(crate) async fn pause(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Operator)?;
    let s = state.client().pause_schedule(&id).await?;
    Ok(Json(json::schedule(&s)))
}

/// `POST /api/v1/schedules/{id}/resume`
pub(crate) async fn resume(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Operator)?;
    let s = state.client().resume_schedule(&id).await?;
    Ok(Json(json::schedule(&s)))
}

/// `POST /api/v1/schedules/{id}/trigger`
pub(crate) async fn trigger(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Operator)?;
    let (outcome, fire_time, run) = match state.client().trigger_schedule(&id).await? {
        TriggerOutcome::Started(run) => ("started", run.fire_time, run),
        TriggerOutcome::Buffered { fire_time, open } => ("buffered", fire_time, open),
        TriggerOutcome::Skipped { fire_time, open } => ("skipped", fire_time, open),
    };
    // `workflow_id` and `run`: the run started, or the open run that
    // held the fire back.
    Ok(Json(json!({
        "schedule": id,
        "outcome": outcome,
        "fire_time": json::time(fire_time),
        "workflow_id": run.workflow_id.as_str(),
        "run": run.run.0,
    })))
}
