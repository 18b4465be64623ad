//! Acting on a running workflow: signal, signal-with-start, query,
//! update, cancel, terminate. The actor every write records (a signal's
//! sender, who asked to cancel or terminated) is the caller's identity.

use super::extract::{ApiJson, ApiPath};
use super::json;
use super::workflows::{non_empty, started};
use crate::auth::{ApiCaller, Role};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use refrain_history::RunId;
use serde::Deserialize;
use serde_json::{json, Value};

/// `{"workflow_id","run"}` with `status`.
fn acted(status: StatusCode, workflow_id: &str, run: RunId) -> Response {
    (
        status,
        Json(json!({ "workflow_id": workflow_id, "run": run.0 })),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputBody {
    #[serde(default)]
    input: Value,
}

/// `POST /api/v1/workflows/{id}/signals/{name}`
pub(crate) async fn signal(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath((id, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<InputBody>,
) -> Result<Response, ApiError> {
    let who = caller.require(Role::Operator)?;
    let run = state
        .client()
        .signal_payload(
            id.as_str(),
            &name,
            json::to_payload(&body.input),
            Some(&who.name),
        )
        .await?;
    Ok(acted(StatusCode::ACCEPTED, &id, run))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignalWithStartBody {
    signal: String,
    #[serde(default)]
    signal_input: Value,
    workflow_type: String,
    #[serde(default)]
    input: Value,
}

/// `POST /api/v1/workflows/{id}/signal-with-start`
pub(crate) async fn signal_with_start(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SignalWithStartBody>,
) -> Result<Response, ApiError> {
    let who = caller.require(Role::Operator)?;
    non_empty("signal", &body.signal)?;
    non_empty("workflow_type", &body.workflow_type)?;
    let run = state
        .client()
        .signal_with_start_payload(
            &body.workflow_type,
            id.as_str(),
            json::to_payload(&body.input),
            &body.signal,
            json::to_payload(&body.signal_input),
            Some(&who.name),
        )
        .await?;
    Ok(started(&run.workflow_id, run.run, run.started))
}

/// `POST /api/v1/workflows/{id}/queries/{name}`
pub(crate) async fn query(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiPath((id, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<InputBody>,
) -> Result<Json<Value>, ApiError> {
    let answer = state
        .client()
        .query_payload(id.as_str(), &name, json::to_payload(&body.input))
        .await?;
    Ok(Json(json!({ "result": json::payload(&answer) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBody {
    #[serde(default)]
    input: Value,
    update_id: Option<String>,
}

/// `POST /api/v1/workflows/{id}/updates/{name}`
pub(crate) async fn update(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath((id, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Operator)?;
    let update_id = match body.update_id {
        Some(u) => {
            non_empty("update_id", &u)?;
            u
        }
        None => format!("{:032x}", rand::random::<u128>()),
    };
    let answer = state
        .client()
        .update_payload(
            id.as_str(),
            &name,
            &update_id,
            json::to_payload(&body.input),
        )
        .await?;
    Ok(Json(json!({ "result": json::payload(&answer) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/workflows/{id}/cancel`
pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Response, ApiError> {
    let who = caller.require(Role::Operator)?;
    let reason = body.reason.unwrap_or_default();
    let run = state
        .client()
        .cancel(id.as_str(), &reason, Some(&who.name))
        .await?;
    Ok(acted(StatusCode::ACCEPTED, &id, run))
}

/// `POST /api/v1/workflows/{id}/terminate`
pub(crate) async fn terminate(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Response, ApiError> {
    let who = caller.require(Role::Operator)?;
    let reason = body.reason.unwrap_or_default();
    let run = state
        .client()
        .terminate(id.as_str(), &reason, Some(&who.name))
        .await?;
    Ok(acted(StatusCode::OK, &id, run))
}
