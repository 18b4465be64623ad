//! Request extractors that answer bad input in the API's error shape.
//!
//! axum's own `Json`, `Path` and `Query` reject with plain-text bodies and
//! statuses of their own (415, 422); a client of this API branches on
//! `{"error":{"code":...}}` alone, so every malformed request comes back
//! as 400 `bad_request` with the parser's message. Nothing has been read
//! from or written to the store when these reject.

use crate::error::{codes, ApiError};
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// Slack above twice the store's payload limit for the rest of a request
/// body: the fields around the payload and the formatting of its JSON.
const BODY_SLACK: usize = 64 * 1024;

/// A JSON request body. An empty body reads as `{}`, so a body whose
/// fields are all optional may be left out.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        // The store decides what is too large; this bound only keeps a
        // request from filling memory before it gets there.
        let limit = state
            .store()
            .limits()
            .max_payload_bytes
            .saturating_mul(2)
            .saturating_add(BODY_SLACK);
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    codes::PAYLOAD_TOO_LARGE,
                    format!("the request body could not be read within {limit} bytes: {e}"),
                )
            })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else if is_json == Some(true) {
            &bytes
        } else {
            return Err(ApiError::bad_request(
                "send the body as JSON, with Content-Type: application/json",
            ));
        };
        serde_json::from_slice(text)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(format!("bad request body: {e}")))
    }
}

/// Path parameters.
pub(crate) struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Query-string parameters.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}
