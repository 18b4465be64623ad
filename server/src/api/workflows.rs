//! Workflows: start one, list runs, describe the latest run of an id, read
//! a run's history.

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::json;
use crate::auth::{ApiCaller, Role};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use refrain::history_file::{HistoryExport, HistoryFileError};
use refrain::{ClientError, StartOptions};
use refrain_history::{
    IdConflictPolicy, ListOrder, PageRequest, RunCursor, RunFilter, RunId, RunRecord, WorkflowId,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::SystemTime;

/// The page size of a list when the request names none.
pub(crate) const DEFAULT_LIMIT: usize = 50;
/// The largest page a list returns.
pub(crate) const MAX_LIMIT: usize = 1000;

/// What to do when a run of the id is open (or, for `use_existing`, ever
/// was).
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnConflict {
    #[default]
    Fail,
    AttachToOpen,
    UseExisting,
}

impl From<OnConflict> for StartOptions {
    fn from(c: OnConflict) -> Self {
        match c {
            OnConflict::Fail => StartOptions {
                on_conflict: IdConflictPolicy::Reject,
            },
            OnConflict::AttachToOpen => StartOptions::attach_to_open(),
            OnConflict::UseExisting => StartOptions::use_existing(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartBody {
    workflow_type: String,
    workflow_id: String,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    on_conflict: OnConflict,
}

/// A non-empty name given in a request.
pub(crate) fn non_empty(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        Err(ApiError::bad_request(format!("{field} must not be empty")))
    } else {
        Ok(())
    }
}

/// The answer to a start: 201 when it started a run, 200 when the
/// conflict policy returned an existing one.
pub(crate) fn started(workflow_id: &WorkflowId, run: RunId, started: bool) -> Response {
    let status = if started {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({ "workflow_id": workflow_id.as_str(), "run": run.0, "started": started });
    (status, Json(body)).into_response()
}

/// `POST /api/v1/workflows`
pub(crate) async fn start(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    caller.require(Role::Operator)?;
    non_empty("workflow_type", &body.workflow_type)?;
    non_empty("workflow_id", &body.workflow_id)?;
    let run = state
        .client()
        .start_payload(
            &body.workflow_type,
            body.workflow_id,
            json::to_payload(&body.input),
            body.on_conflict.into(),
        )
        .await?;
    Ok(started(&run.workflow_id, run.run, run.started))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    status: Option<String>,
    #[serde(rename = "type")]
    workflow_type: Option<String>,
    id_prefix: Option<String>,
    started_after: Option<String>,
    started_before: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    order: Option<String>,
}

/// The list's order from `order=`: `oldest` (the default, the order
/// existing clients and the CLI read) or `newest`.
fn parse_order(text: Option<&str>) -> Result<ListOrder, ApiError> {
    match text {
        None | Some("" | "oldest") => Ok(ListOrder::OldestFirst),
        Some("newest") => Ok(ListOrder::NewestFirst),
        Some(other) => Err(ApiError::bad_request(format!(
            "order must be \"newest\" or \"oldest\", got {other:?}"
        ))),
    }
}

/// `GET /api/v1/workflows`
pub(crate) async fn list(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}, got {text:?}"
                ))
            })?,
    };
    let filter = filter(&params)?;
    let order = parse_order(params.order.as_deref())?;
    let page = PageRequest {
        after: params.cursor.filter(|c| !c.is_empty()).map(RunCursor::new),
        ..PageRequest::first(limit).in_order(order)
    };
    let page = state.client().list_runs_page(&filter, page).await?;
    let runs: Vec<Value> = page.runs.iter().map(json::run_summary).collect();
    Ok(Json(json!({
        "runs": runs,
        "next_cursor": page.next_cursor.map(|c| c.as_str().to_owned()),
    })))
}

fn filter(params: &ListParams) -> Result<RunFilter, ApiError> {
    let mut filter = RunFilter::default();
    if let Some(s) = params.status.as_deref() {
        filter.status = Some(json::parse_status(s)?);
    }
    filter.workflow_type = params.workflow_type.clone().filter(|t| !t.is_empty());
    filter.id_prefix = params.id_prefix.clone().filter(|p| !p.is_empty());
    if let Some(t) = params.started_after.as_deref() {
        filter.started_after = Some(json::parse_time("started_after", t)?);
    }
    if let Some(t) = params.started_before.as_deref() {
        filter.started_before = Some(json::parse_time("started_before", t)?);
    }
    Ok(filter)
}

/// `GET /api/v1/workflows/{id}`
pub(crate) async fn describe(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let client = state.client();
    let d = client.describe(id.as_str()).await?;
    let tasks = state
        .store()
        .human_tasks_of_run(d.run)
        .await
        .map_err(ClientError::from)?;
    let waiting_on: Vec<Value> = refrain::waiting::waits(&d, &tasks)
        .iter()
        .map(|w| json::waiting(d.run.0, w))
        .collect();
    let now = SystemTime::now();
    let tasks: Vec<Value> = tasks
        .into_iter()
        .map(|t| json::human_task(&t.into(), now))
        .collect();
    let r = &d.record;
    let (result, failure) = match &r.outcome {
        Some(Ok(p)) => (json::payload(p), Value::Null),
        Some(Err(f)) => (Value::Null, json::failure(f)),
        None => (Value::Null, Value::Null),
    };
    Ok(Json(json!({
        "workflow_id": d.workflow_id.as_str(),
        "run": d.run.0,
        "workflow_type": r.workflow_type,
        "status": r.status.as_str(),
        "started_at": json::time(r.started_at),
        "closed_at": json::opt_time(r.closed_at),
        "result": result,
        "failure": failure,
        "history_events": r.last_seq.0,
        "waiting_on": waiting_on,
        "pending_activities": d.pending_activities.iter().map(json::pending_activity).collect::<Vec<_>>(),
        "pending_timers": d.pending_timers.iter().map(json::pending_timer).collect::<Vec<_>>(),
        "human_tasks": tasks,
        "last_task_failure": r.last_task_failure,
        "parent": r.parent.as_ref().map(|p| json!({
            "workflow_id": p.workflow_id.as_str(),
            "run": p.run.0,
            "cmd": p.cmd.0,
        })),
        "continued_from": r.continued_from.map(|run| run.0),
        "continued_to": r.continued_to.map(|run| run.0),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryParams {
    run: Option<u64>,
}

/// The run of `id` a request names: run `run` if it belongs to `id`, else
/// the latest.
pub(crate) async fn run_of(
    state: &AppState,
    id: &str,
    run: Option<u64>,
) -> Result<(RunId, RunRecord), ApiError> {
    let workflow_id = WorkflowId::new(id);
    let store = state.store();
    let found = match run {
        Some(n) => store
            .run_record(RunId(n))
            .await
            .map_err(ClientError::from)?
            .filter(|r| r.workflow_id == workflow_id)
            .map(|r| (RunId(n), r)),
        None => store
            .latest_run(&workflow_id)
            .await
            .map_err(ClientError::from)?,
    };
    found.ok_or_else(|| match run {
        Some(n) => ApiError::not_found(format!("workflow {id} has no run {n}")),
        None => ApiError::from(ClientError::NotFound { workflow_id }),
    })
}

/// `GET /api/v1/workflows/{id}/history`
pub(crate) async fn history(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Response, ApiError> {
    let (run, _) = run_of(&state, &id, params.run).await?;
    let export = HistoryExport::from_run(state.store().as_ref(), run)
        .await
        .map_err(|e| match e {
            HistoryFileError::Read(e) => ApiError::from(ClientError::from(e)),
            other => ApiError::from(ClientError::Damaged {
                run: Some(run),
                source: Box::new(other),
            }),
        })?;
    Ok(([(CONTENT_TYPE, "application/json")], export.to_json()).into_response())
}
