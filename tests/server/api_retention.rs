//! `POST /api/v1/purge`: admin only; bad input answered 400; a dry run
//! names the closed runs past their retention and deletes nothing; a
//! purge deletes them, and only them.

use crate::api_support::{assert_error, start_loan};
use crate::harness::{Harness, ADMIN, OPERATOR, VIEWER};
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn purge_is_for_admins_refuses_bad_input_and_deletes_only_closed_runs() {
    let h = Harness::new().await;
    start_loan(&h, "loan-done").await;
    start_loan(&h, "loan-open").await;
    h.client
        .terminate("loan-done", "withdrawn", Some("ops"))
        .await
        .expect("terminate");
    let body = json!({"older_than": "0s"});

    let anonymous = h
        .call(Method::POST, "/api/v1/purge", None, Some(body.clone()))
        .await;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
    for token in [VIEWER, OPERATOR] {
        let r = h.post("/api/v1/purge", token, body.clone()).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    }
    for bad in [
        json!({}),
        json!({"older_than": "30"}),
        json!({"older_than": "30 days"}),
        json!({"older_than": "1d", "limit": 0}),
        json!({"older_than": "1d", "limit": 501}),
        json!({"older_than": "1d", "workflow_type": " "}),
        json!({"older_than": "1d", "keep": true}),
    ] {
        let r = h.post("/api/v1/purge", ADMIN, bad.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_request");
    }
    // Nothing was touched by the refused requests.
    let r = h.get("/api/v1/workflows/loan-done", VIEWER).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let young = h
        .post("/api/v1/purge", ADMIN, json!({"older_than": "30d"}))
        .await;
    assert_eq!(young.status, StatusCode::OK, "{}", young.body);
    assert_eq!(young.body["runs"], json!([]));
    let other_type = json!({"older_than": "0s", "workflow_type": "order-to-cash"});
    let r = h.post("/api/v1/purge", ADMIN, other_type).await;
    assert_eq!(r.body["runs"], json!([]), "{}", r.body);

    let dry = h
        .post(
            "/api/v1/purge",
            ADMIN,
            json!({"older_than": "0s", "dry_run": true}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["dry_run"], true);
    let named: Vec<_> = dry.body["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["workflow_id"].clone())
        .collect();
    assert_eq!(named, [json!("loan-done")], "{}", dry.body);
    assert_eq!(dry.body["next"], json!(null));
    let r = h.get("/api/v1/workflows/loan-done", VIEWER).await;
    assert_eq!(r.status, StatusCode::OK, "a dry run deleted: {}", r.body);

    let purged = h
        .post(
            "/api/v1/purge",
            ADMIN,
            json!({"older_than": "0s", "workflow_type": "loan-approval"}),
        )
        .await;
    assert_eq!(purged.status, StatusCode::OK, "{}", purged.body);
    assert_eq!(purged.body["runs"][0]["workflow_id"], "loan-done");
    assert_eq!(purged.body["runs"][0]["status"], "terminated");
    assert_eq!(purged.body["runs"].as_array().map(Vec::len), Some(1));
    let gone = h.get("/api/v1/workflows/loan-done", VIEWER).await;
    assert_error(&gone, StatusCode::NOT_FOUND, "not_found");
    let open = h.get("/api/v1/workflows/loan-open", VIEWER).await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.body);
    assert_eq!(open.body["status"], "running");
}
