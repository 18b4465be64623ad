//! Purging closed runs: `POST /api/v1/purge`, one bounded batch per
//! request (the caller passes `next` back as `after` until it is null),
//! admin only. What may go is the store's rule (see
//! `refrain::retention`): closed runs whose retention passed, never an
//! open run, never the closed child of an open parent.

use super::extract::ApiJson;
use super::json;
use super::workflows::non_empty;
use crate::auth::{ApiCaller, Role};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use refrain::retention::parse_period;
use refrain::ClientError;
use refrain_history::{PurgeRequest, RetentionPolicy, RunId, Timestamp, MAX_PURGE_BATCH};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PurgeBody {
    /// How long closed runs are kept: `30d`, `12h`.
    older_than: String,
    /// Only runs of this workflow type.
    #[serde(default)]
    workflow_type: Option<String>,
    #[serde(default)]
    dry_run: bool,
    /// The `next` of the batch before.
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
}

/// `POST /api/v1/purge`
pub(crate) async fn purge(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<PurgeBody>,
) -> Result<Json<Value>, ApiError> {
    let who = caller.require(Role::Admin)?;
    let period = parse_period(&body.older_than)
        .map_err(|e| ApiError::bad_request(format!("older_than: {e}")))?;
    let policy = match body.workflow_type {
        Some(t) => {
            non_empty("workflow_type", &t)?;
            RetentionPolicy::only_type(t, period)
        }
        None => RetentionPolicy::keep_for(period),
    };
    let limit = body.limit.unwrap_or(MAX_PURGE_BATCH);
    if !(1..=MAX_PURGE_BATCH).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be from 1 to {MAX_PURGE_BATCH}"
        )));
    }
    let req = PurgeRequest {
        limit,
        dry_run: body.dry_run,
        after: body.after.map(RunId),
        ..PurgeRequest::new(policy, Timestamp::now())
    };
    let batch = state
        .store()
        .purge_closed(req)
        .await
        .map_err(|e| ApiError::from(ClientError::from(e)))?;
    if !body.dry_run && !batch.runs.is_empty() {
        // The runs' histories are gone with them: the log keeps who.
        tracing::info!(actor = %who.name, runs = batch.runs.len(), "purged closed runs");
    }
    Ok(Json(json!({
        "dry_run": body.dry_run,
        "runs": batch.runs.iter().map(json::run_summary).collect::<Vec<_>>(),
        "examined": batch.examined,
        "next": batch.next.map(|r| r.0),
    })))
}
