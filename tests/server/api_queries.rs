//! What a workflow makes of the API's untyped calls: a signal sent as
//! JSON arrives as the workflow's own type, and a query is answered with
//! the handler's value as JSON. The examples answer no query, so this
//! file runs a small workflow of its own.

use crate::api_support::assert_error;
use crate::harness::{identities, OPERATOR, VIEWER};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use refrain::{Query, Signal, Store, StoreConfig, Workflow, WorkflowContext, WorkflowError};
use refrain_server::Server;
use refrain_tests::env::eventually;
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use tower::ServiceExt;

#[derive(Serialize, Deserialize)]
struct Approve {
    who: String,
}
impl Signal for Approve {
    const NAME: &'static str = "approve";
}

/// The approvals so far, those of people whose name starts with a prefix.
struct Approvals;
impl Query for Approvals {
    const NAME: &'static str = "approvals";
    type Args = String;
    type Result = Vec<String>;
}

/// Collects two approvals.
struct Review;
impl Workflow for Review {
    const NAME: &'static str = "review";
    type Input = ();
    type Output = Vec<String>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
        let approvals = Rc::new(RefCell::new(Vec::new()));
        let seen = approvals.clone();
        ctx.on_query::<Approvals>(move |prefix: String| {
            seen.borrow()
                .iter()
                .filter(|w: &&String| w.starts_with(&prefix))
                .cloned()
                .collect()
        });
        for _ in 0..2 {
            let Approve { who } = ctx.wait_signal::<Approve>().await?;
            approvals.borrow_mut().push(who);
        }
        let done = approvals.borrow().clone();
        Ok(done)
    }
}

async fn post(router: &Router, path: &str, token: &str, body: Value) -> crate::harness::Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    crate::harness::Reply {
        status,
        headers,
        body,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_and_queries_in_json_meet_the_workflows_own_types() {
    refrain_tests::env::init_tracing();
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path().join("db"), StoreConfig::default()).expect("store");
    let worker = Worker::builder(store).workflow::<Review>().start();
    let (router, _) = Server::new(worker.client())
        .identities(identities())
        .into_router();

    let started = post(
        &router,
        "/api/v1/workflows/review-1/signal-with-start",
        OPERATOR,
        json!({"signal": "approve", "signal_input": {"who": "ann"}, "workflow_type": "review"}),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let query = "/api/v1/workflows/review-1/queries/approvals";
    let answer = eventually("the first approval is seen", async || {
        let r = post(&router, query, VIEWER, json!({"input": ""})).await;
        (r.status == StatusCode::OK && r.body["result"] == json!(["ann"])).then_some(r)
    })
    .await;
    assert_eq!(answer.body, json!({"result": ["ann"]}));

    let signal = post(
        &router,
        "/api/v1/workflows/review-1/signals/approve",
        OPERATOR,
        json!({"input": {"who": "bob"}}),
    )
    .await;
    assert_eq!(signal.status, StatusCode::ACCEPTED, "{}", signal.body);
    let both = eventually("the second approval is seen", async || {
        let r = post(&router, query, VIEWER, json!({"input": "b"})).await;
        (r.body["result"] == json!(["bob"])).then_some(r)
    })
    .await;
    assert_eq!(both.status, StatusCode::OK);

    // Arguments that are not the query's type: the handler cannot read them.
    let wrong = post(&router, query, VIEWER, json!({"input": 42})).await;
    assert_error(&wrong, StatusCode::SERVICE_UNAVAILABLE, "query_failed");
    worker.shutdown(std::time::Duration::from_secs(5)).await;
}
