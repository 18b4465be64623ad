//! Logging in and out: the one-time link (`/?token=…`) and the login page
//! (an identity's access token).

use super::layout::page;
use crate::auth::{WebCaller, SESSION_COOKIE, SESSION_TTL};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct HomeQuery {
    token: Option<String>,
}

/// `/`: redeems a one-time token, then shows the runs list.
pub(super) async fn home(
    State(state): State<AppState>,
    Query(q): Query<HomeQuery>,
    caller: Result<WebCaller, Response>,
) -> Response {
    if let Some(token) = q.token {
        return match state.auth().sessions.redeem_one_time(&token) {
            Some(session) => logged_in(&session, "/runs"),
            None => login_page(
                StatusCode::UNAUTHORIZED,
                "This login link was already used or is not this server's. Log in with an access token.",
                "/runs",
            ),
        };
    }
    match caller {
        Ok(_) => Redirect::to("/runs").into_response(),
        Err(to_login) => to_login,
    }
}

fn session_cookie(session: &str) -> String {
    format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    )
}

fn logged_in(session: &str, next: &str) -> Response {
    (
        [(SET_COOKIE, session_cookie(session))],
        Redirect::to(safe_next(next)),
    )
        .into_response()
}

/// Only paths of this server: `next` must not send the browser elsewhere.
///
/// Browsers drop tabs and line breaks inside an address and read `\` as
/// `/`, so `/\t/evil.example` would become `//evil.example`: only visible
/// ASCII other than `\` passes, and a path must not start with `//`.
/// (Anything else could not be a `Location` header value either.)
fn safe_next(next: &str) -> &str {
    let visible = next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if visible && next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/runs"
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next("/runs/loan-bo?run=2"), "/runs/loan-bo?run=2");
        for away in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "https://evil.example",
            "evil.example",
            "/ /x",
        ] {
            assert_eq!(safe_next(away), "/runs", "{away:?}");
        }
    }
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// `GET /login`.
pub(super) async fn form(Query(q): Query<NextQuery>) -> Response {
    login_page(StatusCode::OK, "", q.next.as_deref().unwrap_or("/runs"))
}

fn login_page(status: StatusCode, message: &str, next: &str) -> Response {
    let body = html! {
        section.login {
            h1 { "Log in" }
            @if !message.is_empty() { p.error { (message) } }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(safe_next(next));
                label for="token" { "Access token" }
                input #token type="password" name="token" autocomplete="current-password" required;
                button type="submit" { "Log in" }
            }
            p.hint { "Your operator gives you an access token. The person who started the server can use the one-time link it printed." }
        }
    };
    (status, page("Log in", None, body)).into_response()
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    next: Option<String>,
}

/// `POST /login`: an access token for a session. (No CSRF token here: a
/// forged login can only log the browser in as the forger's own identity,
/// and the cookie is `SameSite=Strict`.)
pub(super) async fn submit(State(state): State<AppState>, Form(f): Form<LoginForm>) -> Response {
    let next = f.next.as_deref().unwrap_or("/runs");
    match state.auth().identities.by_token(f.token.trim()) {
        Some(identity) => {
            let session = state.auth().sessions.create(identity);
            logged_in(&session, next)
        }
        None => login_page(StatusCode::UNAUTHORIZED, "Unknown access token.", next),
    }
}

#[derive(Deserialize)]
pub(super) struct LogoutForm {
    csrf: String,
}

/// `POST /logout`.
pub(super) async fn logout(
    State(state): State<AppState>,
    caller: WebCaller,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let Err(e) = caller.check_csrf(&f.csrf) {
        return e.into_response();
    }
    state.auth().sessions.remove(&caller.session);
    (
        [(
            SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}
