//! What a workflow makes of the API's untyped calls: a signal sent as
//! JSON arrives as the workflow's own type, and a query is answered with
//! the handler's value as JSON. The examples answer no query, so this
//! file runs a small workflow of its own.

use crate::api_support::{assert_error, post, OwnServer};
use crate::harness::{OPERATOR, VIEWER};
use axum::http::StatusCode;
use refrain::{Query, Signal, Workflow, WorkflowContext, WorkflowError};
use refrain_tests::env::eventually;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;

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

#[tokio::test(flavor = "multi_thread")]
async fn signals_and_queries_in_json_meet_the_workflows_own_types() {
    let server = OwnServer::new(|b| b.workflow::<Review>());
    let router = &server.router;

    let started = post(
        router,
        "/api/v1/workflows/review-1/signal-with-start",
        OPERATOR,
        json!({"signal": "approve", "signal_input": {"who": "ann"}, "workflow_type": "review"}),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let query = "/api/v1/workflows/review-1/queries/approvals";
    let answer = eventually("the first approval is seen", async || {
        let r = post(router, query, VIEWER, json!({"input": ""})).await;
        (r.status == StatusCode::OK && r.body["result"] == json!(["ann"])).then_some(r)
    })
    .await;
    assert_eq!(answer.body, json!({"result": ["ann"]}));

    let signal = post(
        router,
        "/api/v1/workflows/review-1/signals/approve",
        OPERATOR,
        json!({"input": {"who": "bob"}}),
    )
    .await;
    assert_eq!(signal.status, StatusCode::ACCEPTED, "{}", signal.body);
    let both = eventually("the second approval is seen", async || {
        let r = post(router, query, VIEWER, json!({"input": "b"})).await;
        (r.body["result"] == json!(["bob"])).then_some(r)
    })
    .await;
    assert_eq!(both.status, StatusCode::OK);

    // Arguments that are not the query's type: the handler cannot read them.
    let wrong = post(router, query, VIEWER, json!({"input": 42})).await;
    assert_error(&wrong, StatusCode::SERVICE_UNAVAILABLE, "query_failed");
    server.stop().await;
}
