//! The API's errors: an HTTP status and a stable, documented code.
//!
//! Every error body is
//! `{"error": {"code": "not_found", "message": "no workflow has id loan-x"}}`.
//! Clients branch on `code`, which never changes meaning; `message` is for
//! people and may be reworded. A request answered with an error wrote
//! nothing, unless its code says otherwise.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use refrain::ClientError;
use serde::Serialize;
use std::fmt;

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code (see [`codes`]).
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
}

/// The stable error codes.
pub mod codes {
    /// The request is malformed: a missing field, a bad value, a body
    /// that is not the JSON expected. 400.
    pub const BAD_REQUEST: &str = "bad_request";
    /// A list cursor the server did not give out. 400.
    pub const BAD_CURSOR: &str = "bad_cursor";
    /// No credential, or one the server does not know. 401.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The identity's role does not allow this, or the human task is
    /// another person's. 403.
    pub const FORBIDDEN: &str = "forbidden";
    /// A dashboard form without its session's CSRF token. 403.
    pub const CSRF: &str = "csrf";
    /// No such workflow, run, human task or schedule. 404.
    pub const NOT_FOUND: &str = "not_found";
    /// The path exists but does not take this method. 405.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// A run of the id is open. 409.
    pub const ALREADY_RUNNING: &str = "already_running";
    /// The workflow (or human task) is closed. 409.
    pub const CLOSED: &str = "closed";
    /// The human task was reassigned (it escalated) after the caller's
    /// right to decide it was checked; the decision was not recorded. 409.
    pub const REASSIGNED: &str = "reassigned";
    /// The group's human task was already claimed by a member (or the
    /// claim lost to another member's, or to an escalation). 409.
    pub const CLAIMED: &str = "claimed";
    /// Several open human tasks match; name one exactly. 409.
    pub const AMBIGUOUS: &str = "ambiguous";
    /// A payload exceeds the store's limit. 413.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The workflow refused an update (its validator said why). 422.
    pub const UPDATE_REJECTED: &str = "update_rejected";
    /// An update's handler failed; the failure is in the history. 422.
    pub const UPDATE_FAILED: &str = "update_failed";
    /// The workflow failed (waiting for a result). 422.
    pub const WORKFLOW_FAILED: &str = "workflow_failed";
    /// A query was not answered (no worker runs the type, it refused, it
    /// timed out). 503 or 422, as the message says.
    pub const QUERY_FAILED: &str = "query_failed";
    /// Stored data is damaged. 500.
    pub const DAMAGED: &str = "damaged";
    /// The store failed. 503.
    pub const UNAVAILABLE: &str = "unavailable";
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHORIZED,
            "a valid access token is required (Authorization: Bearer TOKEN)",
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, message)
    }

    /// 409 `claimed`: a task of `group` is `holder`'s now, so a claim of it
    /// was not recorded.
    pub fn claimed(group: &str, holder: &str) -> Self {
        ApiError::new(
            StatusCode::CONFLICT,
            codes::CLAIMED,
            format!("this task of group {group} is {holder}'s now; nothing was recorded"),
        )
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        use codes::*;
        let message = e.to_string();
        let (status, code) = match &e {
            ClientError::AlreadyRunning { .. } => (StatusCode::CONFLICT, ALREADY_RUNNING),
            ClientError::NotFound { .. }
            | ClientError::RunNotFound { .. }
            | ClientError::HumanTaskNotFound { .. } => (StatusCode::NOT_FOUND, NOT_FOUND),
            ClientError::Closed { .. } | ClientError::HumanTaskClosed { .. } => {
                (StatusCode::CONFLICT, CLOSED)
            }
            ClientError::HumanTaskReassigned { .. } => (StatusCode::CONFLICT, REASSIGNED),
            ClientError::HumanTaskAmbiguous { .. } => (StatusCode::CONFLICT, AMBIGUOUS),
            ClientError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, PAYLOAD_TOO_LARGE)
            }
            ClientError::WorkflowFailed { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, WORKFLOW_FAILED)
            }
            ClientError::Query(_) => (StatusCode::SERVICE_UNAVAILABLE, QUERY_FAILED),
            ClientError::UpdateRejected { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, UPDATE_REJECTED)
            }
            ClientError::UpdateFailed { .. } | ClientError::UpdateNotAnswered { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, UPDATE_FAILED)
            }
            ClientError::Payload(_) => (StatusCode::BAD_REQUEST, BAD_REQUEST),
            ClientError::BadCursor { .. } => (StatusCode::BAD_REQUEST, BAD_CURSOR),
            ClientError::Damaged { .. } => (StatusCode::INTERNAL_SERVER_ERROR, DAMAGED),
            _ => (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
        };
        ApiError::new(status, code, message)
    }
}
