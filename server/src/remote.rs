//! A client of the HTTP API, for programs that act on a running
//! application from outside it (the `refrain --server URL` command line).
//!
//! ```no_run
//! # async fn demo() -> Result<(), refrain_server::remote::RemoteError> {
//! use refrain_server::remote::{ListQuery, RemoteClient};
//! let token = std::env::var("REFRAIN_TOKEN").unwrap_or_default();
//! let api = RemoteClient::new("http://127.0.0.1:8233", token)?;
//! for run in api.list(&ListQuery::default()).await?.runs {
//!     println!("{} {} {}", run.workflow_id, run.run, run.status);
//! }
//! # Ok(()) }
//! ```
//!
//! One method per route of the API, each returning the route's answer as
//! a typed value (see [`types`](self#structs)) or a [`RemoteError`]
//! carrying the API's error `code` and message.
//!
//! Plain HTTP only: `https://` URLs are refused with
//! [`RemoteError::TlsUnsupported`]. The server itself speaks plain HTTP
//! and binds to loopback by default; to reach one across a network, put a
//! TLS-terminating proxy in front of it and tunnel to it (e.g. `ssh -L`),
//! so that the token never crosses a network in clear.

mod error;
mod types;

pub use error::RemoteError;
pub use types::*;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use refrain::history_file::HistoryExport;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::fmt;
use std::time::Duration;

/// A connection attempt gives up after this long (an address that drops
/// packets instead of refusing).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers larger than this are refused rather than buffered (a history
/// export is the largest answer; the store caps histories well below).
const MAX_ANSWER: usize = 256 << 20;

/// A client of one server, acting as the identity of one access token.
/// Cheap to clone; connections are kept and reused.
#[derive(Clone)]
pub struct RemoteClient {
    base: String,
    token: String,
    http: HttpClient<HttpConnector, Full<Bytes>>,
}

impl fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        f.debug_struct("RemoteClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl RemoteClient {
    /// A client of the server at `base_url` (`http://HOST:PORT`, a path
    /// prefix allowed) sending `token` as its bearer credential. Nothing
    /// is sent until a method is called.
    ///
    /// # Errors
    /// [`RemoteError::TlsUnsupported`] for an `https://` URL,
    /// [`RemoteError::BadUrl`] for anything but an `http://` URL.
    pub fn new(base_url: &str, token: impl Into<String>) -> Result<Self, RemoteError> {
        let base = base_url.trim().trim_end_matches('/');
        let lower = base.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(RemoteError::TlsUnsupported {
                url: base.to_owned(),
            });
        }
        let Some(rest) = lower.strip_prefix("http://") else {
            return Err(RemoteError::BadUrl {
                url: base.to_owned(),
                reason: "it must start with http:// (e.g. http://127.0.0.1:8233)".into(),
            });
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(RemoteError::BadUrl {
                url: base.to_owned(),
                reason: "it needs a host (and no user name): http://HOST:PORT".into(),
            });
        }
        // Checked once here so that every request's URI parses.
        base.parse::<hyper::Uri>()
            .map_err(|e| RemoteError::BadUrl {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new()).build(connector);
        Ok(RemoteClient {
            base: base.to_owned(),
            token: token.into(),
            http,
        })
    }

    /// The server's URL, as given (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /healthz`: `Ok` if a Refrain server answers there. Needs no
    /// token.
    pub async fn health(&self) -> Result<(), RemoteError> {
        let (status, body) = self.send(Method::GET, "/healthz", None, false).await?;
        if status == StatusCode::OK && body.as_ref() == b"ok" {
            Ok(())
        } else {
            Err(self.not_refrain(status, &body))
        }
    }

    /// `POST /api/v1/workflows`: starts a run of a workflow type.
    pub async fn start(&self, body: &StartBody) -> Result<Started, RemoteError> {
        self.call(Method::POST, "/api/v1/workflows", Some(to_json(body)))
            .await
    }

    /// `GET /api/v1/workflows`: one page of runs.
    pub async fn list(&self, query: &ListQuery) -> Result<RunList, RemoteError> {
        let path = format!("/api/v1/workflows{}", query.to_query_string());
        self.call(Method::GET, &path, None).await
    }

    /// `GET /api/v1/workflows/{id}`: the latest run of a workflow.
    pub async fn describe(&self, workflow_id: &str) -> Result<Description, RemoteError> {
        let path = format!("/api/v1/workflows/{}", encode(workflow_id));
        self.call(Method::GET, &path, None).await
    }

    /// `GET /api/v1/workflows/{id}/history`: a run's history (the latest
    /// run without `run`), as `refrain export` writes it.
    pub async fn history(
        &self,
        workflow_id: &str,
        run: Option<u64>,
    ) -> Result<HistoryExport, RemoteError> {
        let mut path = format!("/api/v1/workflows/{}/history", encode(workflow_id));
        if let Some(run) = run {
            path.push_str(&format!("?run={run}"));
        }
        let body = self.call_raw(Method::GET, &path, None).await?;
        HistoryExport::from_json_slice(&body).map_err(|e| RemoteError::BadAnswer {
            path,
            reason: e.to_string(),
        })
    }

    /// `POST /api/v1/workflows/{id}/signals/{name}`: the server records
    /// the token's identity as the sender.
    pub async fn signal(
        &self,
        workflow_id: &str,
        name: &str,
        input: Value,
    ) -> Result<RunRef, RemoteError> {
        let path = format!(
            "/api/v1/workflows/{}/signals/{}",
            encode(workflow_id),
            encode(name)
        );
        self.call(Method::POST, &path, Some(json!({ "input": input })))
            .await
    }

    /// `POST /api/v1/workflows/{id}/signal-with-start`.
    pub async fn signal_with_start(
        &self,
        workflow_id: &str,
        body: &SignalWithStartBody,
    ) -> Result<Started, RemoteError> {
        let path = format!(
            "/api/v1/workflows/{}/signal-with-start",
            encode(workflow_id)
        );
        self.call(Method::POST, &path, Some(to_json(body))).await
    }

    /// `POST /api/v1/workflows/{id}/queries/{name}`: the handler's answer.
    /// Needs a running worker of the workflow's type.
    pub async fn query(
        &self,
        workflow_id: &str,
        name: &str,
        input: Option<Value>,
    ) -> Result<Answer, RemoteError> {
        let path = format!(
            "/api/v1/workflows/{}/queries/{}",
            encode(workflow_id),
            encode(name)
        );
        let body = input.map(|input| json!({ "input": input }));
        let body = body.unwrap_or_else(|| json!({}));
        self.call(Method::POST, &path, Some(body)).await
    }

    /// `POST /api/v1/workflows/{id}/updates/{name}`: waits for the
    /// workflow's answer. The same `update_id` is never applied twice.
    pub async fn update(
        &self,
        workflow_id: &str,
        name: &str,
        input: Value,
        update_id: Option<&str>,
    ) -> Result<Answer, RemoteError> {
        let path = format!(
            "/api/v1/workflows/{}/updates/{}",
            encode(workflow_id),
            encode(name)
        );
        let body = match update_id {
            Some(u) => json!({ "input": input, "update_id": u }),
            None => json!({ "input": input }),
        };
        self.call(Method::POST, &path, Some(body)).await
    }

    /// `POST /api/v1/workflows/{id}/cancel`: the server records the
    /// token's identity as the requester.
    pub async fn cancel(&self, workflow_id: &str, reason: &str) -> Result<RunRef, RemoteError> {
        let path = format!("/api/v1/workflows/{}/cancel", encode(workflow_id));
        self.call(Method::POST, &path, Some(json!({ "reason": reason })))
            .await
    }

    /// `POST /api/v1/workflows/{id}/terminate`.
    pub async fn terminate(&self, workflow_id: &str, reason: &str) -> Result<RunRef, RemoteError> {
        let path = format!("/api/v1/workflows/{}/terminate", encode(workflow_id));
        self.call(Method::POST, &path, Some(json!({ "reason": reason })))
            .await
    }

    /// `POST /api/v1/purge`: one batch of a purge (admin only).
    pub async fn purge(&self, query: &PurgeQuery) -> Result<PurgeAnswer, RemoteError> {
        let mut body = json!({ "older_than": query.older_than, "dry_run": query.dry_run });
        if let Some(t) = &query.workflow_type {
            body["workflow_type"] = json!(t);
        }
        if let Some(after) = query.after {
            body["after"] = json!(after);
        }
        self.call(Method::POST, "/api/v1/purge", Some(body)).await
    }

    /// `GET /api/v1/tasks[?assignee=NAME]`: the token's inbox, or
    /// `assignee`'s (a viewer may only name itself or its groups).
    pub async fn tasks(&self, assignee: Option<&str>) -> Result<TaskList, RemoteError> {
        let path = match assignee {
            Some(a) => format!("/api/v1/tasks?assignee={}", encode(a)),
            None => "/api/v1/tasks".to_owned(),
        };
        self.call(Method::GET, &path, None).await
    }

    /// `GET /api/v1/workflows/{id}/tasks`: the open human tasks of a
    /// workflow's latest run.
    pub async fn workflow_tasks(&self, workflow_id: &str) -> Result<TaskList, RemoteError> {
        let path = format!("/api/v1/workflows/{}/tasks", encode(workflow_id));
        self.call(Method::GET, &path, None).await
    }

    /// `GET /api/v1/tasks/{run}/{cmd}`: one open human task.
    pub async fn task(&self, run: u64, cmd: u64) -> Result<HumanTask, RemoteError> {
        self.call(Method::GET, &format!("/api/v1/tasks/{run}/{cmd}"), None)
            .await
    }

    /// `POST /api/v1/tasks/{run}/{cmd}/decide`: the server records the
    /// token's identity as the decider.
    pub async fn decide(
        &self,
        run: u64,
        cmd: u64,
        decision: Value,
        comment: Option<&str>,
    ) -> Result<Decided, RemoteError> {
        let path = format!("/api/v1/tasks/{run}/{cmd}/decide");
        let body = match comment {
            Some(c) => json!({ "decision": decision, "comment": c }),
            None => json!({ "decision": decision }),
        };
        self.call(Method::POST, &path, Some(body)).await
    }

    /// `POST /api/v1/tasks/{run}/{cmd}/claim`: the token's identity claims
    /// a task of one of its groups.
    pub async fn claim(&self, run: u64, cmd: u64) -> Result<Claimed, RemoteError> {
        let path = format!("/api/v1/tasks/{run}/{cmd}/claim");
        self.call(Method::POST, &path, Some(json!({}))).await
    }

    /// `GET /api/v1/schedules`.
    pub async fn schedules(&self) -> Result<ScheduleList, RemoteError> {
        self.call(Method::GET, "/api/v1/schedules", None).await
    }

    /// `GET /api/v1/schedules/{id}`.
    pub async fn schedule(&self, id: &str) -> Result<Schedule, RemoteError> {
        let path = format!("/api/v1/schedules/{}", encode(id));
        self.call(Method::GET, &path, None).await
    }

    /// `POST /api/v1/schedules/{id}/pause`.
    pub async fn pause_schedule(&self, id: &str) -> Result<Schedule, RemoteError> {
        let path = format!("/api/v1/schedules/{}/pause", encode(id));
        self.call(Method::POST, &path, Some(json!({}))).await
    }

    /// `POST /api/v1/schedules/{id}/resume`.
    pub async fn resume_schedule(&self, id: &str) -> Result<Schedule, RemoteError> {
        let path = format!("/api/v1/schedules/{}/resume", encode(id));
        self.call(Method::POST, &path, Some(json!({}))).await
    }

    /// `POST /api/v1/schedules/{id}/trigger`: fires the schedule now.
    pub async fn trigger_schedule(&self, id: &str) -> Result<Triggered, RemoteError> {
        let path = format!("/api/v1/schedules/{}/trigger", encode(id));
        self.call(Method::POST, &path, Some(json!({}))).await
    }

    // ----- transport -----

    /// Sends an authenticated request and reads a JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, RemoteError> {
        let bytes = self.call_raw(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| RemoteError::BadAnswer {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Sends an authenticated request; a 2xx answer's body, or the API's
    /// error.
    async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Bytes, RemoteError> {
        let (status, bytes) = self.send(method, path, body, true).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            error: ErrorInner,
        }
        #[derive(Deserialize)]
        struct ErrorInner {
            code: String,
            message: String,
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => Err(RemoteError::Api {
                status: status.as_u16(),
                code: e.error.code,
                message: e.error.message,
            }),
            // An error without the API's shape: something else answers
            // there (another service, a proxy's error page).
            Err(_) => Err(self.not_refrain(status, &bytes)),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> Result<(StatusCode, Bytes), RemoteError> {
        let uri = format!("{}{path}", self.base);
        let mut req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("accept", "application/json");
        if auth {
            req = req.header("authorization", format!("Bearer {}", self.token));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Full::new(Bytes::from(b.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).map_err(|e| RemoteError::BadUrl {
            url: uri.clone(),
            reason: e.to_string(),
        })?;
        let res = self
            .http
            .request(req)
            .await
            .map_err(|e| self.transport(&e))?;
        let status = res.status();
        let limited = http_body_util::Limited::new(res.into_body(), MAX_ANSWER);
        let bytes = limited
            .collect()
            .await
            .map_err(|e| RemoteError::Transport {
                url: self.base.clone(),
                reason: format!("reading the answer failed: {e}"),
            })?
            .to_bytes();
        Ok((status, bytes))
    }

    fn transport(&self, e: &hyper_util::client::legacy::Error) -> RemoteError {
        if e.is_connect() {
            RemoteError::Connect {
                url: self.base.clone(),
                reason: chain(e),
            }
        } else {
            RemoteError::Transport {
                url: self.base.clone(),
                reason: chain(e),
            }
        }
    }

    fn not_refrain(&self, status: StatusCode, body: &[u8]) -> RemoteError {
        let text = String::from_utf8_lossy(body);
        let first = text.lines().next().unwrap_or_default();
        RemoteError::NotRefrain {
            url: self.base.clone(),
            status: status.as_u16(),
            detail: first.chars().take(120).collect(),
        }
    }
}

/// An error and its causes, on one line (hyper's own message is only
/// "client error (Connect)"; the cause says "Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn to_json<T: serde::Serialize>(body: &T) -> Value {
    // Our own request types serialize infallibly (strings and JSON values).
    serde_json::to_value(body).unwrap_or(Value::Null)
}

/// Percent-encodes a path segment or query value: everything but RFC
/// 3986's unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_other_than_plain_http_are_refused_by_name() {
        assert!(matches!(
            RemoteClient::new("https://example.com", "t"),
            Err(RemoteError::TlsUnsupported { .. })
        ));
        assert!(matches!(
            RemoteClient::new("example.com:8233", "t"),
            Err(RemoteError::BadUrl { .. })
        ));
        assert!(matches!(
            RemoteClient::new("http://", "t"),
            Err(RemoteError::BadUrl { .. })
        ));
        let ok = RemoteClient::new("http://127.0.0.1:8233/", "secret").expect("plain http");
        assert_eq!(ok.base_url(), "http://127.0.0.1:8233");
        assert!(!format!("{ok:?}").contains("secret"));
    }

    #[test]
    fn path_segments_and_query_values_are_encoded() {
        assert_eq!(encode("loan-9_a.b~"), "loan-9_a.b~");
        assert_eq!(encode("a/b c?"), "a%2Fb%20c%3F");
        let q = ListQuery {
            status: Some("running".into()),
            id_prefix: Some("a&b".into()),
            limit: Some(5),
            order: Some("newest".into()),
            ..ListQuery::default()
        };
        assert_eq!(
            q.to_query_string(),
            "?status=running&id_prefix=a%26b&limit=5&order=newest"
        );
        assert_eq!(ListQuery::default().to_query_string(), "");
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let api = RemoteClient::new(&format!("http://127.0.0.1:{port}"), "t").expect("url");
        let err = api.health().await.expect_err("nothing listens");
        assert!(matches!(err, RemoteError::Connect { .. }), "{err}");
    }
}
