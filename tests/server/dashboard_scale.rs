//! The runs list over many runs: its pages follow the store's cursor
//! (a test), and over 100,000 runs (a measurement, not a test of speed:
//! it asserts only the counts), run by hand:
//!
//! ```text
//! cargo test -p refrain-tests --release --test server dashboard_scale -- --ignored --nocapture
//! ```
//!
//! It prints the time of the first render (which counts the runs), of
//! renders while the counts are fresh (p50 and max), and of renders once
//! they are stale (a scan runs in the background).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use refrain::{Client, HistoryStore, IdConflictPolicy, Payload, Store, StoreConfig};
use refrain_history::{DurabilityMode, StartRequest, Timestamp, WorkflowId};
use refrain_server::{Identity, Role, Server};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const RUNS: usize = 100_000;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
async fn runs_list_over_100k_runs() {
    let filled = Instant::now();
    let (_dir, backend) = store_with_runs(RUNS).await;
    println!("{RUNS} runs started in {:?}", filled.elapsed());

    let (router, session) = router_on(backend);
    let render = |path: &'static str| {
        let router = router.clone();
        let cookie = format!("refrain_session={session}");
        async move {
            let req = Request::builder()
                .uri(path)
                .header("cookie", cookie)
                .body(Body::empty())
                .expect("request");
            let started = Instant::now();
            let res = router.oneshot(req).await.expect("infallible");
            assert_eq!(res.status(), StatusCode::OK);
            let body = axum::body::to_bytes(res.into_body(), 16 << 20)
                .await
                .expect("body");
            (
                started.elapsed(),
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
    };
    let (first, html) = render("/runs").await;
    assert!(
        html.contains(&format!("all <strong>{RUNS}</strong>")),
        "every run counted"
    );
    println!("first /runs render (counts the runs): {first:?}");
    let mut fresh: Vec<Duration> = Vec::new();
    for _ in 0..21 {
        fresh.push(render("/runs").await.0);
    }
    fresh.sort();
    println!(
        "/runs with fresh counts: p50 {:?}, max {:?} (21 renders)",
        fresh[fresh.len() / 2],
        fresh[fresh.len() - 1]
    );
    // Counts older than the server keeps them: the render answers with
    // them and a scan starts in the background.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (stale, _) = render("/runs").await;
    println!("/runs with stale counts (starts a scan in the background): {stale:?}");
    let (during, _) = render("/runs").await;
    println!("/runs during that scan: {during:?}");
    let (next, _) = render("/runs?status=running&id=run-05").await;
    println!("/runs filtered by status and id prefix: {next:?}");
    let (oldest, _) = render("/runs?order=oldest").await;
    println!("/runs oldest first (the default is newest first): {oldest:?}");
    let (kpis, html) = render("/kpis").await;
    assert!(html.contains("order-to-cash"));
    println!("/kpis: {kpis:?}");
}

/// A store (in its directory) with `n` open runs `run-000000`, … of
/// three types.
pub(crate) async fn store_with_runs(n: usize) -> (tempfile::TempDir, Arc<dyn HistoryStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = StoreConfig {
        durability: DurabilityMode::None,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path().join("db"), config).expect("store");
    let backend: Arc<dyn HistoryStore> = Arc::new(store);
    let types = ["order-to-cash", "loan-approval", "onboarding"];
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut starts = tokio::task::JoinSet::new();
        for &i in chunk {
            let backend = backend.clone();
            starts.spawn(async move {
                backend
                    .start(StartRequest {
                        workflow_id: WorkflowId::new(format!("run-{i:06}")),
                        workflow_type: types[i % types.len()].to_owned(),
                        input: Payload::from_bytes(b"{}".to_vec()),
                        on_conflict: IdConflictPolicy::default(),
                        seed: i as u64,
                        now: Timestamp::now(),
                    })
                    .await
                    .expect("start")
            });
        }
        starts.join_all().await;
    }
    (dir, backend)
}

/// A server's router on `backend` (no worker) and a viewer's session.
fn router_on(backend: Arc<dyn HistoryStore>) -> (Router, String) {
    let (router, state) = Server::new(Client::new(backend)).quiet().into_router();
    let session = state
        .auth()
        .sessions
        .create(Arc::new(Identity::new("viewer", Role::Viewer)));
    (router, session)
}

async fn get(router: &Router, session: &str, path: &str) -> String {
    let req = Request::builder()
        .uri(path)
        .header("cookie", format!("refrain_session={session}"))
        .body(Body::empty())
        .expect("request");
    let res = router.clone().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let body = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .expect("body");
    String::from_utf8_lossy(&body).into_owned()
}

/// The workflow ids a runs page lists, and its Next link.
fn rows_and_next(html: &str) -> (Vec<String>, Option<String>) {
    let rows = html
        .split("<a href=\"/runs/")
        .skip(1)
        .filter_map(|r| r.split('?').next().map(str::to_owned))
        .collect();
    let next = html
        .split("<a class=\"next\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(|href| href.replace("&amp;", "&"));
    (rows, next)
}

/// Follows "Next" from `path` to the last page: the ids listed, and how
/// many pages.
async fn all_pages(router: &Router, session: &str, path: &str) -> (Vec<String>, usize) {
    let (mut seen, mut pages, mut path) = (Vec::new(), 0, path.to_owned());
    loop {
        let (rows, next) = rows_and_next(&get(router, session, &path).await);
        seen.extend(rows);
        pages += 1;
        match next {
            Some(next) => path = next,
            None => return (seen, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runs_list_pages_by_store_cursor_without_gaps_or_repeats() {
    let (_dir, backend) = store_with_runs(310).await;
    let (router, session) = router_on(backend);
    let ids = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..310)
            .filter(|&i| keep(i))
            .map(|i| format!("run-{i:06}"))
            .collect()
    };
    // Started concurrently, so run numbers (the list's order) do not
    // follow the ids: compare sorted, the count catching repeats.
    let (mut seen, pages) = all_pages(&router, &session, "/runs").await;
    assert_eq!((seen.len(), pages), (310, 7), "50 to a page");
    seen.sort();
    assert_eq!(seen, ids(&|_| true), "every run once");
    // Filters travel with the cursor.
    let (mut seen, pages) = all_pages(&router, &session, "/runs?type=loan-approval").await;
    assert_eq!((seen.len(), pages), (103, 3));
    seen.sort();
    assert_eq!(seen, ids(&|i| i % 3 == 1));
    let (mut seen, _) = all_pages(&router, &session, "/runs?type=loan-approval&id=run-0001").await;
    seen.sort();
    assert_eq!(seen, ids(&|i| i % 3 == 1 && (100..200).contains(&i)));
}
