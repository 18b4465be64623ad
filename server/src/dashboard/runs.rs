//! `/runs`: the runs list, filtered by status, type and id prefix, with
//! the counts per status, what each open run waits on, and cursor
//! pagination.
//!
//! Newest first by default (an operator looks for what just happened;
//! with many runs the oldest are months old), oldest first on request.
//! Pages follow the store's order and its cursors: "Next" carries the
//! store's `next_cursor` and the order it was given out for; the store
//! applies every filter.

use super::fmt::{human, status_class, utc, STATUSES};
use super::layout::page;
use super::respond::{enc, PageError, PageResult};
use super::Dash;
use crate::auth::WebCaller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::Extension;
use maud::html;
use refrain::ClientError;
use refrain_history::{ListOrder, PageRequest, RunCursor, RunFilter, RunPage, RunSummary};
use serde::Deserialize;
use std::sync::Arc;

/// Rows per page.
const PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub(super) struct RunsQuery {
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    workflow_type: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    cursor: String,
    /// `newest` (also when empty) or `oldest`.
    #[serde(default)]
    order: String,
}

impl RunsQuery {
    /// The query string of these filters and the order (without the
    /// cursor, which only holds for the same filters and order).
    fn filters(&self, order: ListOrder) -> String {
        format!(
            "status={}&type={}&id={}&order={}",
            enc(&self.status),
            enc(&self.workflow_type),
            enc(&self.id),
            order_name(order)
        )
    }
}

/// The name of `order` in the page's query string.
fn order_name(order: ListOrder) -> &'static str {
    match order {
        ListOrder::NewestFirst => "newest",
        ListOrder::OldestFirst => "oldest",
    }
}

/// The order named in the query string; newest first when none is.
fn parse_order(name: &str) -> Option<ListOrder> {
    match name {
        "" | "newest" => Some(ListOrder::NewestFirst),
        "oldest" => Some(ListOrder::OldestFirst),
        _ => None,
    }
}

/// `GET /runs`.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(dash): Extension<Arc<Dash>>,
    caller: WebCaller,
    Query(q): Query<RunsQuery>,
) -> PageResult {
    let status = match q.status.as_str() {
        "" => None,
        name => Some(super::fmt::parse_status(name).ok_or_else(|| {
            PageError::new(
                ApiError::bad_request(format!("no run status is named {name:?}")),
                &caller,
            )
        })?),
    };
    let filter = RunFilter {
        status,
        workflow_type: Some(q.workflow_type.trim().to_owned()).filter(|t| !t.is_empty()),
        id_prefix: Some(q.id.trim().to_owned()).filter(|p| !p.is_empty()),
        ..RunFilter::default()
    };
    let order = parse_order(&q.order).ok_or_else(|| {
        PageError::new(
            ApiError::bad_request(format!(
                "the order is \"newest\" or \"oldest\", not {:?}",
                q.order
            )),
            &caller,
        )
    })?;
    let request = PageRequest {
        after: Some(q.cursor.as_str())
            .filter(|c| !c.is_empty())
            .map(RunCursor::new),
        ..PageRequest::first(PAGE).in_order(order)
    };
    let RunPage {
        runs,
        next_cursor: next,
    } = state
        .client()
        .list_runs_page(&filter, request)
        .await
        .map_err(|e| PageError::new(e.into(), &caller))?;
    let waiting = waiting_of(&state, &runs).await;
    let (snap, age) = dash
        .counter
        .get(&state)
        .await
        .map_err(|e| PageError::new(ClientError::from(e).into(), &caller))?;
    let body = html! {
        h1 { "Runs" }
        p.counts {
            a href="/runs" { "all " strong { (snap.total) } }
            @for s in STATUSES {
                " · "
                a href={ "/runs?status=" (s.as_str()) } {
                    span class=(status_class(s)) { (s.as_str()) } " " strong { (snap.count(s)) }
                }
            }
            " "
            span.muted { "(counted " (human(age)) " ago)" }
        }
        form.filters method="get" action="/runs" {
            label { "Status "
                select name="status" {
                    option value="" selected[status.is_none()] { "any" }
                    @for s in STATUSES {
                        option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) }
                    }
                }
            }
            " "
            label { "Type "
                input type="text" name="type" value=(q.workflow_type) list="types" placeholder="any";
                datalist #types { @for t in snap.types.keys() { option value=(t) {} } }
            }
            " "
            label { "Id starts with " input type="text" name="id" value=(q.id); }
            " "
            label { "Order "
                select name="order" {
                    option value="newest" selected[order == ListOrder::NewestFirst] { "Newest first" }
                    option value="oldest" selected[order == ListOrder::OldestFirst] { "Oldest first" }
                }
            }
            " "
            button type="submit" { "Filter" }
        }
        @if runs.is_empty() {
            p.muted { "No run on this page matches." }
        } @else {
            table.runs {
                thead { tr { th { "Workflow id" } th { "Run" } th { "Type" } th { "Status" } th { "Waiting on" } th { "Started (UTC)" } th { "Closed (UTC)" } } }
                tbody {
                    @for (r, waits) in runs.iter().zip(&waiting) {
                        tr {
                            td { a href={ "/runs/" (enc(r.workflow_id.as_str())) "?run=" (r.run.0) } { (r.workflow_id.as_str()) } }
                            td { (r.run.0) }
                            td { (r.workflow_type) }
                            td { span class=(status_class(r.status)) { (r.status.as_str()) } }
                            td.waiting-on { (waits) }
                            td { (utc(r.started_at)) }
                            td { @if let Some(c) = r.closed_at { (utc(c)) } @else { "—" } }
                        }
                    }
                }
            }
        }
        p.pager {
            @if !q.cursor.is_empty() { a href={ "/runs?" (q.filters(order)) } { "First page" } " " }
            @if let Some(next) = &next {
                a.next href={ "/runs?" (q.filters(order)) "&cursor=" (enc(next.as_str())) } { "Next" }
            }
        }
        p.hint {
            @match order {
                ListOrder::NewestFirst => "Newest first: runs started after the first page was read appear on the first page, not on later ones.",
                ListOrder::OldestFirst => "Oldest first, in the order the runs started.",
            }
        }
    };
    Ok(page("Runs", Some(&caller), body).into_response())
}

/// What each open run of `runs` waits on, in words (empty for closed
/// runs). A row whose reading fails says so rather than failing the page.
async fn waiting_of(state: &AppState, runs: &[RunSummary]) -> Vec<String> {
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        if !r.status.is_open() {
            out.push(String::new());
            continue;
        }
        let text = match state.client().waiting_on(r.workflow_id.clone()).await {
            // Only the latest run of an id can be open.
            Ok((run, _, waits)) if run == r.run => waits
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            Ok(_) => String::new(),
            Err(e) => format!("(unknown: {e})"),
        };
        out.push(text);
    }
    out
}
