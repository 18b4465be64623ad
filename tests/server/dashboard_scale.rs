//! The runs list over 100,000 runs: a measurement, not a test of speed
//! (it asserts only the counts), run by hand:
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
    let dir = tempfile::tempdir().expect("temp dir");
    let config = StoreConfig {
        durability: DurabilityMode::None,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path().join("db"), config).expect("store");
    let backend: Arc<dyn HistoryStore> = Arc::new(store);
    let filled = Instant::now();
    let types = ["order-to-cash", "loan-approval", "onboarding"];
    for chunk in (0..RUNS).collect::<Vec<_>>().chunks(1000) {
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
    println!("{RUNS} runs started in {:?}", filled.elapsed());

    let (router, state) = Server::new(Client::new(backend)).quiet().into_router();
    let session = state
        .auth()
        .sessions
        .create(Arc::new(Identity::new("viewer", Role::Viewer)));
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
    let (kpis, html) = render("/kpis").await;
    assert!(html.contains("order-to-cash"));
    println!("/kpis: {kpis:?}");
}
