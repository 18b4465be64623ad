//! The order of the runs list: the dashboard lists newest first by
//! default and oldest first on request, the API oldest first by default
//! and newest first with `order=newest`; over a few hundred runs, with a
//! filter and with runs starting between pages, every run is listed
//! exactly once in the order asked for.

use crate::api_support::{assert_error, get as api_get};
use crate::dashboard_scale::store_with_runs;
use crate::harness::{identities, VIEWER};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use refrain::{Client, HistoryStore, IdConflictPolicy, Payload, RunFilter};
use refrain_history::{PageRequest, StartRequest, Timestamp, WorkflowId};
use refrain_server::{Identity, Role, Server};
use std::sync::Arc;
use tower::ServiceExt;

const RUNS: usize = 260;

/// A server's router on `backend` (no worker), with the test tokens, and
/// a viewer's dashboard session.
fn router_on(backend: Arc<dyn HistoryStore>) -> (Router, String) {
    let (router, state) = Server::new(Client::new(backend))
        .identities(identities())
        .quiet()
        .into_router();
    let session = state
        .auth()
        .sessions
        .create(Arc::new(Identity::new("viewer", Role::Viewer)));
    (router, session)
}

/// Starts one more `loan-approval` run, `late-{n}`.
async fn start_late(backend: &dyn HistoryStore, n: usize) -> u64 {
    let outcome = backend
        .start(StartRequest {
            workflow_id: WorkflowId::new(format!("late-{n}")),
            workflow_type: "loan-approval".to_owned(),
            input: Payload::from_bytes(b"{}".to_vec()),
            on_conflict: IdConflictPolicy::default(),
            seed: 1,
            now: Timestamp::now(),
        })
        .await
        .expect("start");
    outcome.run.0
}

/// The runs `filter` admits, as the store lists them oldest first.
async fn oldest_first(backend: &dyn HistoryStore, filter: &RunFilter) -> Vec<u64> {
    let page = backend
        .list_runs(filter, PageRequest::first(10_000))
        .await
        .expect("list");
    assert!(page.next_cursor.is_none());
    page.runs.iter().map(|r| r.run.0).collect()
}

async fn page(router: &Router, session: &str, path: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .uri(path)
        .header("cookie", format!("refrain_session={session}"))
        .body(Body::empty())
        .expect("request");
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The run numbers a runs page lists (from its `?run=N` links), and its
/// Next link.
fn runs_and_next(html: &str) -> (Vec<u64>, Option<String>) {
    let runs = html
        .split("<a href=\"/runs/")
        .skip(1)
        .filter_map(|r| r.split_once("?run=")?.1.split('"').next()?.parse().ok())
        .collect();
    let next = html
        .split("<a class=\"next\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(|href| href.replace("&amp;", "&"));
    (runs, next)
}

/// Follows "Next" from `path`, starting a run after each page read; the
/// run numbers listed, page by page.
async fn dashboard_pages(
    router: &Router,
    session: &str,
    backend: &dyn HistoryStore,
    path: &str,
    late: &mut Vec<u64>,
) -> Vec<Vec<u64>> {
    let (mut pages, mut path) = (Vec::new(), path.to_owned());
    loop {
        let (status, html) = page(router, session, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let (runs, next) = runs_and_next(&html);
        pages.push(runs);
        late.push(start_late(backend, late.len()).await);
        match next {
            Some(next) => path = next,
            None => return pages,
        }
    }
}

fn descending(runs: &[u64]) -> bool {
    runs.windows(2).all(|w| w[0] > w[1])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_lists_newest_first_and_oldest_first_on_request() {
    let (_dir, backend) = store_with_runs(RUNS).await;
    let (router, session) = router_on(backend.clone());
    let before = oldest_first(&*backend, &RunFilter::default()).await;
    assert_eq!(before.len(), RUNS);

    // The default: newest first, every run once, none started meanwhile.
    let mut late = Vec::new();
    let pages = dashboard_pages(&router, &session, &*backend, "/runs", &mut late).await;
    assert_eq!(pages.len(), RUNS.div_ceil(50), "50 to a page");
    let seen: Vec<u64> = pages.concat();
    assert!(descending(&seen), "not newest first: {seen:?}");
    let mut expected = before.clone();
    expected.reverse();
    assert_eq!(seen, expected, "every run once, newest first");
    assert!(late.iter().all(|r| !seen.contains(r)));

    // A filter travels with the order and the cursor.
    let loans = RunFilter {
        workflow_type: Some("loan-approval".into()),
        ..RunFilter::default()
    };
    let mut expected = oldest_first(&*backend, &loans).await;
    expected.reverse();
    let pages = dashboard_pages(
        &router,
        &session,
        &*backend,
        "/runs?type=loan-approval&order=newest",
        &mut late,
    )
    .await;
    let seen: Vec<u64> = pages.concat();
    assert_eq!(seen, expected, "every loan once, newest first");
    assert!(seen.len() > 50, "more than a page: {}", seen.len());

    // Oldest first on request, the order kept in the Next links.
    let pages = dashboard_pages(
        &router,
        &session,
        &*backend,
        "/runs?order=oldest",
        &mut late,
    )
    .await;
    let seen: Vec<u64> = pages.concat();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "not oldest first");
    assert!(before.iter().all(|r| seen.contains(r)));

    // The form offers both orders and shows the one in use.
    let (_, html) = page(&router, &session, "/runs?order=oldest").await;
    assert!(html.contains("<option value=\"oldest\" selected>Oldest first</option>"));
    assert!(html.contains("<option value=\"newest\">Newest first</option>"));
    let (_, html) = page(&router, &session, "/runs").await;
    assert!(html.contains("<option value=\"newest\" selected>Newest first</option>"));
    assert!(!html.contains("Oldest first, as the store lists runs."));
    let (status, _) = page(&router, &session, "/runs?order=sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_lists_newest_first_with_order_newest_and_refuses_other_orders() {
    let (_dir, backend) = store_with_runs(RUNS).await;
    let (router, _) = router_on(backend.clone());
    let loans = RunFilter {
        workflow_type: Some("loan-approval".into()),
        ..RunFilter::default()
    };
    let before = oldest_first(&*backend, &loans).await;

    // Page by page, runs starting between pages.
    let (mut seen, mut late, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut path = "/api/v1/workflows?type=loan-approval&order=newest&limit=20".to_owned();
    loop {
        let r = api_get(&router, &path, VIEWER).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for run in r.body["runs"].as_array().expect("runs") {
            assert_eq!(run["workflow_type"], "loan-approval");
            seen.push(run["run"].as_u64().expect("run"));
        }
        pages += 1;
        late.push(start_late(&*backend, late.len()).await);
        match r.body["next_cursor"].as_str() {
            Some(c) => {
                path =
                    format!("/api/v1/workflows?type=loan-approval&order=newest&limit=20&cursor={c}")
            }
            None => break,
        }
    }
    let mut expected = before.clone();
    expected.reverse();
    assert_eq!(seen, expected, "every loan once, newest first");
    assert!(pages >= 5, "{pages} pages");

    // The default stays oldest first, as existing clients read it.
    let r = api_get(
        &router,
        "/api/v1/workflows?type=loan-approval&limit=5",
        VIEWER,
    )
    .await;
    let first: Vec<u64> = r.body["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|run| run["run"].as_u64())
        .collect();
    assert_eq!(first, before[..5]);
    let oldest_cursor = r.body["next_cursor"].as_str().expect("more").to_owned();

    // A cursor of one order is refused by the other.
    let r = api_get(
        &router,
        &format!("/api/v1/workflows?order=newest&cursor={oldest_cursor}"),
        VIEWER,
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_cursor");

    for order in ["sideways", "NEWEST", "desc"] {
        let r = api_get(&router, &format!("/api/v1/workflows?order={order}"), VIEWER).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_request");
    }
}
