//! A server on a temporary store with the examples' workflows, a worker
//! running them, and one identity per role.

// Shared by every file of this suite; each uses a part.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use refrain::{Client, Store, StoreConfig};
use refrain_server::{AppState, Identities, Identity, Role, Server};
use refrain_worker::Worker;
use serde_json::Value;
use std::time::Duration;
use tempfile::TempDir;
use tower::ServiceExt;

/// Access tokens of the test identities.
pub const VIEWER: &str = "viewer-token-0001";
pub const OPERATOR: &str = "operator-token-01";
pub const ADMIN: &str = "admin-token-000001";
/// `underwriter-1`, a viewer in group `underwriters`: the loan example's
/// first assignee.
pub const UNDERWRITER: &str = "underwriter-token-1";
/// `credit-manager`: the loan example's escalation.
pub const MANAGER: &str = "manager-token-00001";

/// The identities above.
pub fn identities() -> Identities {
    Identities::new()
        .with(Identity::new("viewer", Role::Viewer), VIEWER)
        .and_then(|i| i.with(Identity::new("operator", Role::Operator), OPERATOR))
        .and_then(|i| i.with(Identity::new("admin", Role::Admin), ADMIN))
        .and_then(|i| {
            i.with(
                Identity::new("underwriter-1", Role::Viewer).group("underwriters"),
                UNDERWRITER,
            )
        })
        .and_then(|i| i.with(Identity::new("credit-manager", Role::Viewer), MANAGER))
        .expect("test identities")
}

/// A store, a worker with every example's workflows, and the server's
/// router on the worker's client.
pub struct Harness {
    pub router: Router,
    pub state: AppState,
    pub client: Client,
    worker: Option<Worker>,
    _dir: TempDir,
}

/// A response: status, headers, body (JSON when it parses, else a string).
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Harness {
    pub async fn new() -> Self {
        refrain_tests::env::init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("db"), StoreConfig::default()).expect("store");
        let builder = Worker::builder(store);
        let builder = refrain_examples::loan_approval::register(builder);
        let builder = refrain_examples::order_to_cash::register(builder);
        let worker = builder.start();
        let client = worker.client();
        let (router, state) = Server::new(client.clone())
            .identities(identities())
            .into_router();
        Harness {
            router,
            state,
            client,
            worker: Some(worker),
            _dir: dir,
        }
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 64 << 20)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `GET path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `POST path` with `token` and a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            // The worker's shutdown is async; dropping it stops its tasks.
            drop(worker);
        }
    }
}

/// Shuts the worker down within a bound (call at the end of a test that
/// wants a clean stop).
pub async fn stop(mut h: Harness) {
    if let Some(w) = h.worker.take() {
        w.shutdown(Duration::from_secs(5)).await;
    }
}
