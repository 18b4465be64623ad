//! The Prometheus endpoint, `GET /metrics` (any role; scrapers send a
//! bearer token as `authorization.credentials` in their config).
//!
//! The engine reports through the `metrics` facade; this module installs
//! the process's recorder (once: a second server in the same process
//! shares it) and renders it in the Prometheus text format.

use crate::auth::{ApiCaller, Role};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` if
/// the application installed another recorder first (its metrics go
/// there, and `/metrics` says so).
pub(crate) fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // Buckets make the durations histograms (aggregatable across
            // workers) rather than per-process summaries: from 1 ms (a
            // commit) to 5 min (a slow activity attempt).
            let handle = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            refrain_history::telemetry::describe();
            Some(handle)
        })
        .clone()
}

/// Upper bounds of the duration histograms' buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

pub(crate) async fn render(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let handle = state.metrics().ok_or_else(|| {
        ApiError::not_found("this process records metrics with a recorder of its own")
    })?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    ))
}
