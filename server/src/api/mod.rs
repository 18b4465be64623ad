//! The JSON API under `/api/v1`: one file per idea (workflows; acting on
//! a run; human tasks; schedules), the JSON shapes in `json`, the
//! extractors that answer bad input in the API's error shape in
//! `extract`, and the OpenAPI document in `openapi`.
//!
//! Every route is in [`table`], which both registers it and is checked
//! against the OpenAPI document, so a route cannot be served undocumented.

mod extract;
pub mod json;
pub(crate) mod openapi;
mod retention;
mod schedules;
mod signals;
mod tasks;
mod workflows;

use crate::error::{codes, ApiError};
use crate::state::AppState;
use axum::http::{Method, StatusCode, Uri};
use axum::routing::{any, get, post, MethodRouter};
use axum::Router;

/// One route: its method, its path (axum's and OpenAPI's `{param}` form
/// alike), its handler.
pub(crate) struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Every route of the API.
pub(crate) fn table() -> Vec<Route> {
    vec![
        route(Method::GET, "/api/v1/openapi.json", get(openapi::serve)),
        route(Method::POST, "/api/v1/workflows", post(workflows::start)),
        route(Method::GET, "/api/v1/workflows", get(workflows::list)),
        route(
            Method::GET,
            "/api/v1/workflows/{id}",
            get(workflows::describe),
        ),
        route(
            Method::GET,
            "/api/v1/workflows/{id}/history",
            get(workflows::history),
        ),
        route(
            Method::POST,
            "/api/v1/workflows/{id}/signals/{name}",
            post(signals::signal),
        ),
        route(
            Method::POST,
            "/api/v1/workflows/{id}/signal-with-start",
            post(signals::signal_with_start),
        ),
        route(
            Method::POST,
            "/api/v1/workflows/{id}/queries/{name}",
            post(signals::query),
        ),
        route(
            Method::POST,
            "/api/v1/workflows/{id}/updates/{name}",
            post(signals::update),
        ),
        route(
            Method::POST,
            "/api/v1/workflows/{id}/cancel",
            post(signals::cancel),
        ),
        route(
            Method::POST,
            "/api/v1/workflows/{id}/terminate",
            post(signals::terminate),
        ),
        route(
            Method::GET,
            "/api/v1/workflows/{id}/tasks",
            get(tasks::of_workflow),
        ),
        route(Method::GET, "/api/v1/tasks", get(tasks::inbox)),
        route(Method::GET, "/api/v1/tasks/{run}/{cmd}", get(tasks::one)),
        route(
            Method::POST,
            "/api/v1/tasks/{run}/{cmd}/decide",
            post(tasks::decide),
        ),
        route(
            Method::POST,
            "/api/v1/tasks/{run}/{cmd}/claim",
            post(tasks::claim),
        ),
        route(Method::GET, "/api/v1/schedules", get(schedules::list)),
        route(
            Method::GET,
            "/api/v1/schedules/{id}",
            get(schedules::describe),
        ),
        route(
            Method::POST,
            "/api/v1/schedules/{id}/pause",
            post(schedules::pause),
        ),
        route(
            Method::POST,
            "/api/v1/schedules/{id}/resume",
            post(schedules::resume),
        ),
        route(
            Method::POST,
            "/api/v1/schedules/{id}/trigger",
            post(schedules::trigger),
        ),
        route(Method::POST, "/api/v1/purge", post(retention::purge)),
    ]
}

pub(crate) fn routes() -> Router<AppState> {
    // One method router per path, so that a method the path does not
    // take is answered (405) in the API's error shape too.
    let mut paths: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for route in table() {
        match paths.iter_mut().find(|(p, _)| *p == route.path) {
            Some((_, methods)) => {
                *methods = std::mem::take(methods).merge(route.handler);
            }
            None => paths.push((route.path, route.handler)),
        }
    }
    paths
        .into_iter()
        .fold(Router::new(), |r, (path, methods)| {
            r.route(path, methods.fallback(wrong_method))
        })
        // Any other path under the API answers in the API's error shape.
        .route("/api/v1/{*rest}", any(no_route))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        format!(
            "{} does not take {method}; GET /api/v1/openapi.json lists its methods",
            uri.path()
        ),
    )
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no API route {}; GET /api/v1/openapi.json lists them",
        uri.path()
    ))
}
