//! HTTP benchmark of the server (`refrain-server`) beside a worker.
//!
//! ```text
//! cargo bench -p refrain-worker --bench http -- [--smoke] [--clients N] [--seconds S]
//!     [--runs N] [--renders N] [--json FILE]
//! ```
//!
//! 1. **Load**: `--clients` (default 200) concurrent HTTP clients, each on
//!    its own connection, for `--seconds` (default 30): start a workflow
//!    (`POST /api/v1/workflows`), then signal it (`POST
//!    /api/v1/workflows/{id}/signals/approve`), which completes it. Prints
//!    requests per second, p50 and p99 latency per request kind, errors
//!    (any answer but 201/202), and workflows completed.
//! 2. **Runs list**: a store with `--runs` (default 100,000) closed runs;
//!    the dashboard's runs page (`GET /runs`) and the API's list (`GET
//!    /api/v1/workflows?limit=50`) rendered `--renders` times (default
//!    50): p50 and p99.
//!
//! `--smoke` (CI): 4 clients for 2 s and 500 runs. The store fsyncs every
//! acknowledged write, as in production. No figure is asserted; the
//! process exits non-zero if a request fails.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use refrain::{Client, Signal, Store, StoreConfig, Workflow, WorkflowContext, WorkflowError};
use refrain_server::{Identities, Identity, Role, Server};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-operator-token";

/// Waits for one `approve` signal, then completes.
struct Approval;

#[derive(Serialize, Deserialize)]
struct Approve {
    by: String,
}

impl Signal for Approve {
    const NAME: &'static str = "approve";
}

impl Workflow for Approval {
    const NAME: &'static str = "bench-approval";
    type Input = u64;
    type Output = String;
    async fn run(ctx: WorkflowContext, _n: u64) -> Result<String, WorkflowError> {
        let a = ctx.wait_signal::<Approve>().await?;
        Ok(a.by)
    }
}

/// Completes at once (fills the store of the runs-list part).
struct Noop;

impl Workflow for Noop {
    const NAME: &'static str = "bench-noop";
    type Input = u64;
    type Output = u64;
    async fn run(_ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
        Ok(n)
    }
}

struct Opts {
    clients: usize,
    seconds: u64,
    runs: u64,
    renders: usize,
    json: Option<std::path::PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: http [--smoke] [--clients N] [--seconds S] [--runs N] [--renders N] [--json FILE]"
    );
    std::process::exit(64)
}

fn parse_args() -> Opts {
    let mut o = Opts {
        clients: 200,
        seconds: 30,
        runs: 100_000,
        renders: 50,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    let num =
        |v: Option<String>| -> u64 { v.and_then(|s| s.parse().ok()).unwrap_or_else(|| usage()) };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {}
            "--smoke" => {
                o.clients = 4;
                o.seconds = 2;
                o.runs = 500;
                o.renders = 5;
            }
            "--clients" => o.clients = num(args.next()) as usize,
            "--seconds" => o.seconds = num(args.next()),
            "--runs" => o.runs = num(args.next()),
            "--renders" => o.renders = num(args.next()) as usize,
            "--json" => o.json = Some(args.next().unwrap_or_else(|| usage()).into()),
            _ => usage(),
        }
    }
    o
}

type Http = HttpClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn send(
    http: &Http,
    method: Method,
    url: &str,
    auth: (&str, &str),
    body: Option<serde_json::Value>,
) -> (StatusCode, Bytes) {
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header(auth.0, auth.1);
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Full::new(Bytes::from(b.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let res = http
        .request(req.body(body).expect("request"))
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (status, bytes)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn identities() -> Identities {
    Identities::new()
        .with(Identity::new("bench-operator", Role::Operator), TOKEN)
        .expect("identity")
}

async fn load(o: &Opts) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), StoreConfig::default()).expect("store");
    let worker = Worker::builder(store).workflow::<Approval>().start();
    let server = Server::new(worker.client())
        .identities(identities())
        .bind("127.0.0.1:0".parse().expect("addr"))
        .quiet()
        .start()
        .await
        .expect("server");
    let base = server.url().to_owned();
    let errors = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(o.seconds);
    let mut tasks = Vec::new();
    for c in 0..o.clients {
        let base = base.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            // One connection per client, as independent callers would.
            let http: Http = HttpClient::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build_http();
            let bearer = format!("Bearer {TOKEN}");
            let (mut starts, mut signals) = (Vec::new(), Vec::new());
            let mut n = 0u64;
            while Instant::now() < stop_at {
                let id = format!("bench-{c}-{n}");
                let t = Instant::now();
                let (s, body) = send(
                    &http,
                    Method::POST,
                    &format!("{base}/api/v1/workflows"),
                    ("authorization", &bearer),
                    Some(json!({"workflow_type": Approval::NAME, "workflow_id": id, "input": n})),
                )
                .await;
                starts.push(t.elapsed().as_micros() as u64);
                if s != StatusCode::CREATED {
                    errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("start {id}: {s} {}", String::from_utf8_lossy(&body));
                    continue;
                }
                let t = Instant::now();
                let (s, body) = send(
                    &http,
                    Method::POST,
                    &format!("{base}/api/v1/workflows/{id}/signals/approve"),
                    ("authorization", &bearer),
                    Some(json!({"input": {"by": "bench"}})),
                )
                .await;
                signals.push(t.elapsed().as_micros() as u64);
                if s != StatusCode::ACCEPTED {
                    errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("signal {id}: {s} {}", String::from_utf8_lossy(&body));
                }
                n += 1;
            }
            (starts, signals)
        }));
    }
    let began = Instant::now();
    let (mut starts, mut signals) = (Vec::new(), Vec::new());
    for t in tasks {
        let (s, g) = t.await.expect("client task");
        starts.extend(s);
        signals.extend(g);
    }
    let elapsed = began.elapsed().as_secs_f64();
    starts.sort_unstable();
    signals.sort_unstable();
    let requests = starts.len() + signals.len();
    let client = Client::new(worker.client().history_store().clone());
    let completed = client
        .list(&refrain::RunFilter {
            status: Some(refrain::RunStatus::Completed),
            ..Default::default()
        })
        .await
        .map(|r| r.len())
        .unwrap_or(0);
    server.shutdown().await;
    worker.shutdown(Duration::from_secs(5)).await;
    let out = json!({
        "clients": o.clients,
        "seconds": o.seconds,
        "requests": requests,
        "requests_per_s": (requests as f64 / elapsed).round(),
        "start_p50_ms": percentile(&starts, 0.5),
        "start_p99_ms": percentile(&starts, 0.99),
        "signal_p50_ms": percentile(&signals, 0.5),
        "signal_p99_ms": percentile(&signals, 0.99),
        "errors": errors.load(Ordering::Relaxed),
        "workflows_completed": completed,
    });
    println!("load: {out}");
    out
}

async fn runs_list(o: &Opts) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), StoreConfig::default()).expect("store");
    let worker = Worker::builder(store).workflow::<Noop>().start();
    let client = worker.client();
    let t = Instant::now();
    // Fill with closed runs, 256 starts in flight (group commit).
    let next = Arc::new(AtomicU64::new(0));
    let mut fills = Vec::new();
    for _ in 0..256 {
        let (client, next, total) = (client.clone(), next.clone(), o.runs);
        fills.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let h = client
                    .start::<Noop>(format!("order-{n:07}"), n)
                    .await
                    .expect("start");
                h.result().await.expect("result");
            }
        }));
    }
    for f in fills {
        f.await.expect("fill");
    }
    let fill_s = t.elapsed().as_secs_f64();
    let (router, state) = Server::new(client.clone())
        .identities(identities())
        .into_router();
    let operator = identities().by_token(TOKEN).expect("identity");
    let session = state.auth().sessions.create(operator);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = tokio::spawn(async move { axum_serve(listener, router).await });
    let http: Http = HttpClient::builder(TokioExecutor::new()).build_http();
    let cookie = format!("refrain_session={session}");
    let bearer = format!("Bearer {TOKEN}");
    let mut page = Vec::new();
    let mut api = Vec::new();
    for _ in 0..o.renders {
        let t = Instant::now();
        let (s, body) = send(
            &http,
            Method::GET,
            &format!("http://{addr}/runs"),
            ("cookie", &cookie),
            None,
        )
        .await;
        page.push(t.elapsed().as_micros() as u64);
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        // A page of runs, not an empty list or an error page.
        let rows = String::from_utf8_lossy(&body)
            .matches("href=\"/runs/order-")
            .count();
        assert!(
            rows >= 50.min(o.runs as usize),
            "the runs page lists {rows} runs"
        );
        let t = Instant::now();
        let (s, body) = send(
            &http,
            Method::GET,
            &format!("http://{addr}/api/v1/workflows?limit=50"),
            ("authorization", &bearer),
            None,
        )
        .await;
        api.push(t.elapsed().as_micros() as u64);
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let listed: serde_json::Value = serde_json::from_slice(&body).expect("JSON list");
        assert_eq!(
            listed["runs"].as_array().map(Vec::len),
            Some(50.min(o.runs as usize))
        );
    }
    page.sort_unstable();
    api.sort_unstable();
    serving.abort();
    worker.shutdown(Duration::from_secs(5)).await;
    let out = json!({
        "runs": o.runs,
        "fill_seconds": (fill_s * 10.0).round() / 10.0,
        "runs_page_p50_ms": percentile(&page, 0.5),
        "runs_page_p99_ms": percentile(&page, 0.99),
        "api_list_p50_ms": percentile(&api, 0.5),
        "api_list_p99_ms": percentile(&api, 0.99),
    });
    println!("runs list: {out}");
    out
}

async fn axum_serve(listener: tokio::net::TcpListener, router: axum::Router) {
    let _ = axum::serve(listener, router).await;
}

fn main() {
    let o = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (load, list) = rt.block_on(async { (load(&o).await, runs_list(&o).await) });
    let failed = load["errors"].as_u64().unwrap_or(0) > 0;
    let doc = json!({"load": load, "runs_list": list});
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    }
    if failed {
        eprintln!("http bench: requests failed");
        std::process::exit(1);
    }
}
