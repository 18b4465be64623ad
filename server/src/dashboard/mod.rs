//! The web dashboard: server-rendered pages (maud templates compiled into
//! the binary, a stylesheet served from the binary, no script).
//!
//! Pages call the client and the store directly, with the same rules as
//! the JSON API: reads for every role, writes for operators, decisions for
//! the task's assignee. Every form posts the session's CSRF token in field
//! `csrf`, and every POST handler checks it first (403 otherwise).

mod actions;
mod fmt;
mod inbox;
mod kpis;
mod layout;
mod login;
mod respond;
mod run;
mod runs;
mod schedules;
mod snapshot;
mod timeline;

use crate::state::AppState;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use std::sync::Arc;

/// What the dashboard's pages share besides the server state: the counts
/// and KPIs they keep a few seconds.
#[derive(Default)]
pub(crate) struct Dash {
    counter: snapshot::Counter,
    kpis: kpis::KpiCache,
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(login::home))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(run::show))
        .route("/runs/{id}/signal", post(actions::signal))
        .route("/runs/{id}/cancel", post(actions::cancel))
        .route("/runs/{id}/terminate", post(actions::terminate))
        .route("/inbox", get(inbox::list))
        .route("/inbox/{run}/{cmd}", get(inbox::show).post(inbox::decide))
        .route("/inbox/{run}/{cmd}/claim", post(inbox::claim))
        .route("/schedules", get(schedules::list))
        .route("/schedules/{id}/pause", post(schedules::pause))
        .route("/schedules/{id}/resume", post(schedules::resume))
        .route("/schedules/{id}/trigger", post(schedules::trigger))
        .route("/kpis", get(kpis::show))
        .route("/assets/style.css", get(style))
        .layer(Extension(Arc::new(Dash::default())))
}

async fn style() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../assets/style.css"),
    )
}
