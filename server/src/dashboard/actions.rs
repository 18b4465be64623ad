//! The run page's writes: signal, cancel, terminate. Each needs the
//! session's CSRF token and the operator role, checked before anything is
//! read or written, and records the session's identity as the actor.

use super::respond::{checked, see_other, CsrfForm, PageError, PageResult};
use crate::auth::{Role, WebCaller};
use crate::error::{codes, ApiError};
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Form;
use refrain::ClientError;
use refrain_history::{Payload, WorkflowId};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SignalForm {
    csrf: String,
    run: Option<u64>,
    name: String,
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ReasonForm {
    csrf: String,
    run: Option<u64>,
    reason: String,
}

impl CsrfForm for SignalForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CsrfForm for ReasonForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /runs/{id}/signal`: name + JSON value; the sender recorded is the
/// caller.
pub(super) async fn signal(
    State(state): State<AppState>,
    caller: WebCaller,
    Path(id): Path<String>,
    form: Result<Form<SignalForm>, FormRejection>,
) -> PageResult {
    let f = checked(&caller, form, Role::Operator)?;
    let bad = |m: String| PageError::new(ApiError::bad_request(m), &caller);
    let name = f.name.trim();
    if name.is_empty() {
        return Err(bad("a signal needs a name".into()));
    }
    let value = match f.value.trim() {
        "" => serde_json::Value::Null,
        text => serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| bad(format!("the signal's value is not JSON: {e}")))?,
    };
    let id = WorkflowId::new(id);
    same_run(&state, &caller, &id, f.run).await?;
    let payload = Payload::from_bytes(value.to_string().into_bytes());
    state
        .store()
        .signal(&id, name, payload, Some(&caller.identity.name))
        .await
        .map_err(|e| PageError::new(ClientError::from(e).into(), &caller))?;
    Ok(see_other(&run_path(&id)))
}

/// `POST /runs/{id}/cancel`: asks the run to cancel, recording the caller
/// as the requester.
pub(super) async fn cancel(
    State(state): State<AppState>,
    caller: WebCaller,
    Path(id): Path<String>,
    form: Result<Form<ReasonForm>, FormRejection>,
) -> PageResult {
    let f = checked(&caller, form, Role::Operator)?;
    let id = WorkflowId::new(id);
    let reason = reason(&caller, &f)?;
    same_run(&state, &caller, &id, f.run).await?;
    state
        .client()
        .cancel(id.clone(), reason, Some(&caller.identity.name))
        .await
        .map_err(|e| PageError::new(e.into(), &caller))?;
    Ok(see_other(&run_path(&id)))
}

/// `POST /runs/{id}/terminate`: ends the run without running its code.
pub(super) async fn terminate(
    State(state): State<AppState>,
    caller: WebCaller,
    Path(id): Path<String>,
    form: Result<Form<ReasonForm>, FormRejection>,
) -> PageResult {
    let f = checked(&caller, form, Role::Operator)?;
    let id = WorkflowId::new(id);
    let reason = reason(&caller, &f)?;
    same_run(&state, &caller, &id, f.run).await?;
    state
        .client()
        .terminate(id.clone(), reason, Some(&caller.identity.name))
        .await
        .map_err(|e| PageError::new(e.into(), &caller))?;
    Ok(see_other(&run_path(&id)))
}

fn reason<'a>(caller: &WebCaller, f: &'a ReasonForm) -> Result<&'a str, PageError> {
    match f.reason.trim() {
        "" => Err(PageError::new(
            ApiError::bad_request("give a reason: the history keeps it"),
            caller,
        )),
        r => Ok(r),
    }
}

/// Refuses (409) when the page the form came from showed another run than
/// the latest: the operator decided about a run that has since been
/// replaced.
async fn same_run(
    state: &AppState,
    caller: &WebCaller,
    id: &WorkflowId,
    run: Option<u64>,
) -> Result<(), PageError> {
    let Some(run) = run else { return Ok(()) };
    let latest = state
        .store()
        .latest_run(id)
        .await
        .map_err(|e| PageError::new(ClientError::from(e).into(), caller))?;
    match latest {
        Some((latest, _)) if latest.0 != run => Err(PageError::new(
            ApiError::new(
                StatusCode::CONFLICT,
                codes::CLOSED,
                format!(
                    "the page showed run {run}, but the latest run of {id} is {}; reload it",
                    latest.0
                ),
            ),
            caller,
        )),
        _ => Ok(()),
    }
}

fn run_path(id: &WorkflowId) -> String {
    format!("/runs/{}", super::respond::enc(id.as_str()))
}
