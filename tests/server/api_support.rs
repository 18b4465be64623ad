//! What the `api_*` tests share: loan applications as the API takes
//! them, and waits on what the API reports.

use crate::harness::{identities, Harness, Reply, OPERATOR, VIEWER};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use refrain::{Store, StoreConfig};
use refrain_server::Server;
use refrain_tests::env::eventually;
use refrain_worker::{Worker, WorkerBuilder};
use serde_json::{json, Value};
use std::time::Duration;
use tempfile::TempDir;
use tower::ServiceExt;

/// An hour, in milliseconds: a wait no test reaches.
pub const HOUR_MS: u64 = 3_600_000;

/// bo's application (the model is unsure: a person decides) under `id`,
/// as JSON, with the underwriter's and the manager's deadlines.
pub fn loan(id: &str, underwriter_ms: u64, manager_ms: u64) -> Value {
    json!({
        "application_id": id,
        "applicant": "bo",
        "email": "bo@mail.example",
        "amount_eur": 8000,
        "pace": {
            "underwriter_deadline_ms": underwriter_ms,
            "manager_deadline_ms": manager_ms,
            "remind_every_ms": HOUR_MS,
        },
    })
}

/// Starts bo's loan under `id` through the API; nobody's time runs out.
pub async fn start_loan(h: &Harness, id: &str) -> Reply {
    let r = h
        .post(
            "/api/v1/workflows",
            OPERATOR,
            json!({"workflow_type": "loan-approval", "workflow_id": id, "input": loan(id, HOUR_MS, HOUR_MS)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r
}

/// The open human task of workflow `id` once one is assigned to
/// `assignee`.
pub async fn task_of(h: &Harness, id: &str, assignee: &str) -> Value {
    let path = format!("/api/v1/workflows/{id}/tasks");
    eventually(
        &format!("a task of {id} assigned to {assignee}"),
        async || {
            let r = h.get(&path, VIEWER).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["tasks"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["assignee"] == assignee).cloned())
        },
    )
    .await
}

/// The status of the latest run of `id` once it is not `running`.
pub async fn closed_status(h: &Harness, id: &str) -> String {
    let path = format!("/api/v1/workflows/{id}");
    eventually(&format!("{id} closes"), async || {
        let r = h.get(&path, VIEWER).await;
        let status = r.body["status"].as_str()?.to_owned();
        (status != "running").then_some(status)
    })
    .await
}

/// The events of `id`'s latest run, in the history's JSON form, once one
/// satisfies `probe`.
pub async fn history_with(
    h: &Harness,
    id: &str,
    what: &str,
    probe: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let path = format!("/api/v1/workflows/{id}/history");
    eventually(what, async || {
        let r = h.get(&path, VIEWER).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let events = r.body["events"].as_array()?.clone();
        events.iter().any(&probe).then_some(events)
    })
    .await
}

/// Asserts `r` is the API's error answer `status` with `code`.
#[track_caller]
pub fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{}", r.body);
    assert!(r.body["error"]["message"].is_string(), "{}", r.body);
}

/// A server over a worker with a test's own workflows (the harness has
/// the examples'), with the harness's identities.
pub struct OwnServer {
    pub router: Router,
    worker: Worker,
    _dir: TempDir,
}

impl OwnServer {
    /// Registers what `register` adds on a fresh store and starts it.
    pub fn new(register: impl FnOnce(WorkerBuilder) -> WorkerBuilder) -> Self {
        refrain_tests::env::init_tracing();
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path().join("db"), StoreConfig::default()).expect("store");
        let worker = register(Worker::builder(store)).start();
        let (router, _) = Server::new(worker.client())
            .identities(identities())
            .into_router();
        OwnServer {
            router,
            worker,
            _dir: dir,
        }
    }

    /// Stops the worker.
    pub async fn stop(self) {
        self.worker.shutdown(Duration::from_secs(5)).await;
    }
}

/// Sends `method path` with `token` and a JSON body (none if `Null`).
pub async fn request(
    router: &Router,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let req = if body.is_null() {
        req.body(Body::empty())
    } else {
        req.header("content-type", "application/json")
            .body(Body::from(body.to_string()))
    }
    .expect("request");
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// `POST path` with `token` and a JSON body.
pub async fn post(router: &Router, path: &str, token: &str, body: Value) -> Reply {
    request(router, Method::POST, path, token, body).await
}

/// `GET path` with `token`.
pub async fn get(router: &Router, path: &str, token: &str) -> Reply {
    request(router, Method::GET, path, token, Value::Null).await
}
