//! What a page answers when it cannot show what was asked: the API's
//! errors (status and message) as an HTML page, and the checks every form
//! handler makes before it writes anything.

use super::layout::page;
use crate::auth::{Role, WebCaller};
use crate::error::ApiError;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};

/// A page's answer: the page, or an error page.
pub(crate) type PageResult = Result<Response, PageError>;

/// An error shown as a page with the API error's status.
#[derive(Debug)]
pub(crate) struct PageError {
    error: ApiError,
    caller: WebCaller,
}

impl PageError {
    /// `error`, framed for `caller`.
    pub(crate) fn new(error: ApiError, caller: &WebCaller) -> Self {
        PageError {
            error,
            caller: caller.clone(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.error.status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::CONFLICT => "Conflict",
            _ => "Error",
        };
        let body = html! {
            h1 { (title) }
            p.error { (self.error.message) }
            p.muted { "HTTP " (self.error.status.as_u16()) " · " code { (self.error.code) } }
        };
        (self.error.status, page(title, Some(&self.caller), body)).into_response()
    }
}

/// The form of a POST, checked: its CSRF token is the session's (403
/// `csrf` otherwise), and the caller has `role`. Every dashboard write
/// starts with this, before it reads or writes anything else.
pub(crate) fn checked<T: CsrfForm>(
    caller: &WebCaller,
    form: Result<Form<T>, FormRejection>,
    role: Role,
) -> Result<T, PageError> {
    let Form(form) =
        form.map_err(|e| PageError::new(ApiError::bad_request(e.body_text()), caller))?;
    caller
        .check_csrf(form.csrf())
        .map_err(|e| PageError::new(e, caller))?;
    caller
        .require(role)
        .map_err(|e| PageError::new(e, caller))?;
    Ok(form)
}

/// A form that carries the session's CSRF token in field `csrf`.
pub(crate) trait CsrfForm {
    /// The submitted token (empty when the field was missing).
    fn csrf(&self) -> &str;
}

/// 303 to `to`, so that reloading the page does not post again.
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The hidden field every form carries.
pub(crate) fn csrf_field(caller: &WebCaller) -> Markup {
    html! { input type="hidden" name="csrf" value=(caller.csrf); }
}

/// A path segment or query value, percent-encoded.
pub(crate) fn enc(s: &str) -> String {
    crate::util::url_encode(s)
}
