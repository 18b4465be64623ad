//! Extractors that authenticate a request: [`ApiCaller`] for the API,
//! [`WebCaller`] for dashboard pages.

use super::identity::{same_secret, Identity, Role};
use super::sessions::SESSION_COOKIE;
use crate::error::{codes, ApiError};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

/// The identity behind an API request's bearer token; 401 without one.
#[derive(Clone, Debug)]
pub struct ApiCaller(pub Arc<Identity>);

impl ApiCaller {
    /// `Ok` if the caller may do what `role` may, else 403 `forbidden`.
    ///
    /// # Errors
    /// 403 naming the role needed.
    pub fn require(&self, role: Role) -> Result<&Identity, ApiError> {
        require(&self.0, role)
    }
}

fn require(identity: &Identity, role: Role) -> Result<&Identity, ApiError> {
    if identity.has(role) {
        Ok(identity)
    } else {
        Err(ApiError::forbidden(format!(
            "{} is a {}; this needs the {} role",
            identity.name, identity.role, role
        )))
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        bearer(parts)
            .and_then(|token| state.auth().identities.by_token(token))
            .map(ApiCaller)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The identity of a dashboard request's session, with the CSRF token its
/// forms must carry. Without a session a page redirects to `/login`.
#[derive(Clone, Debug)]
pub struct WebCaller {
    /// Who.
    pub identity: Arc<Identity>,
    /// The session's CSRF token.
    pub csrf: String,
    /// The session's id (to log out).
    pub session: String,
}

impl WebCaller {
    /// `Ok` if the caller may do what `role` may.
    ///
    /// # Errors
    /// 403 naming the role needed.
    pub fn require(&self, role: Role) -> Result<&Identity, ApiError> {
        require(&self.identity, role)
    }

    /// `Ok` if `submitted` is the session's CSRF token.
    ///
    /// # Errors
    /// 403 `csrf`.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), ApiError> {
        if same_secret(submitted, &self.csrf) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::CSRF,
                "the form's CSRF token is missing or stale; reload the page",
            ))
        }
    }
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for WebCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = cookie(parts, SESSION_COOKIE)
            .and_then(|id| state.auth().sessions.get(id).map(|s| (id.to_owned(), s)));
        match session {
            Some((id, s)) => Ok(WebCaller {
                identity: s.identity,
                csrf: s.csrf,
                session: id,
            }),
            None => {
                let back = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let to = format!("/login?next={}", crate::util::url_encode(back));
                Err(Redirect::to(&to).into_response())
            }
        }
    }
}
