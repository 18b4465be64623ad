//! Workflows through the API: start, list, describe, history; every
//! route's 401; bad input answered 400 in the API's error shape and
//! writing nothing; the OpenAPI document routes what it describes.

use crate::api_support::{assert_error, loan, start_loan, HOUR_MS};
use crate::harness::{Harness, ADMIN, OPERATOR, VIEWER};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};

fn start_body(id: &str) -> Value {
    json!({"workflow_type": "loan-approval", "workflow_id": id, "input": loan(id, HOUR_MS, HOUR_MS)})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_answers_by_its_conflict_policy() {
    let h = Harness::new().await;
    let first = start_loan(&h, "loan-s1").await;
    assert_eq!(first.body["workflow_id"], "loan-s1");
    assert_eq!(first.body["started"], true);
    let run = first.body["run"].as_u64().expect("run number");

    let again = h
        .post("/api/v1/workflows", OPERATOR, start_body("loan-s1"))
        .await;
    assert_error(&again, StatusCode::CONFLICT, "already_running");

    let mut attach = start_body("loan-s1");
    attach["on_conflict"] = json!("attach_to_open");
    let attached = h.post("/api/v1/workflows", OPERATOR, attach).await;
    assert_eq!(attached.status, StatusCode::OK, "{}", attached.body);
    assert_eq!(
        attached.body,
        json!({"workflow_id": "loan-s1", "run": run, "started": false})
    );

    let mut unknown = start_body("loan-s2");
    unknown["on_conflict"] = json!("replace");
    let r = h.post("/api/v1/workflows", OPERATOR, unknown).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_request");

    let viewer = h
        .post("/api/v1/workflows", VIEWER, start_body("loan-s3"))
        .await;
    assert_error(&viewer, StatusCode::FORBIDDEN, "forbidden");
    let missing = h.get("/api/v1/workflows/loan-s3", VIEWER).await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_filters_pages_and_refuses_bad_parameters() {
    let h = Harness::new().await;
    for id in ["loan-l1", "loan-l2", "loan-l3"] {
        start_loan(&h, id).await;
    }
    let all = h
        .get(
            "/api/v1/workflows?status=running&type=loan-approval",
            VIEWER,
        )
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let runs = all.body["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "{}", all.body);
    let row = &runs[0];
    for field in [
        "workflow_id",
        "run",
        "workflow_type",
        "status",
        "started_at",
        "closed_at",
    ] {
        assert!(row.get(field).is_some(), "{field} missing from {row}");
    }
    assert_eq!(row["status"], "running");
    assert!(
        row["started_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{row}"
    );
    assert_eq!(all.body["next_cursor"], Value::Null);

    let none = h.get("/api/v1/workflows?status=completed", VIEWER).await;
    assert_eq!(none.body["runs"], json!([]));
    let other_type = h.get("/api/v1/workflows?type=order-to-cash", VIEWER).await;
    assert_eq!(other_type.body["runs"], json!([]));

    // Page by page: every run once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/workflows?limit=2".to_owned();
    loop {
        let page = h.get(&path, VIEWER).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for r in page.body["runs"].as_array().expect("runs") {
            seen.push(r["workflow_id"].as_str().expect("id").to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/workflows?limit=2&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["loan-l1", "loan-l2", "loan-l3"]);

    for (query, code) in [
        ("status=done", "bad_request"),
        ("status=Running", "bad_request"),
        ("limit=0", "bad_request"),
        ("limit=1001", "bad_request"),
        ("limit=ten", "bad_request"),
        ("started_after=yesterday", "bad_request"),
        ("statuss=running", "bad_request"),
        ("cursor=not-a-cursor", "bad_cursor"),
    ] {
        let r = h.get(&format!("/api/v1/workflows?{query}"), VIEWER).await;
        assert_error(&r, StatusCode::BAD_REQUEST, code);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_filters_by_id_prefix_and_start_time() {
    let h = Harness::new().await;
    start_loan(&h, "loan-p1").await;
    start_loan(&h, "other-p2").await;
    let r = h.get("/api/v1/workflows?id_prefix=loan-", VIEWER).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ids: Vec<&str> = r.body["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["workflow_id"].as_str())
        .collect();
    assert_eq!(ids, ["loan-p1"]);
    let later = h
        .get(
            "/api/v1/workflows?started_after=2999-01-01T00:00:00Z",
            VIEWER,
        )
        .await;
    assert_eq!(later.body["runs"], json!([]), "{}", later.body);
    let earlier = h
        .get(
            "/api/v1/workflows?started_before=2000-01-01T00:00:00Z",
            VIEWER,
        )
        .await;
    assert_eq!(earlier.body["runs"], json!([]), "{}", earlier.body);
    let between = h
        .get(
            "/api/v1/workflows?started_after=2000-01-01T00:00:00Z&started_before=2999-01-01T00:00:00%2B01:00",
            VIEWER,
        )
        .await;
    assert_eq!(
        between.body["runs"].as_array().map(Vec::len),
        Some(2),
        "{}",
        between.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_and_history_show_the_latest_run_or_the_one_named() {
    let h = Harness::new().await;
    let started = start_loan(&h, "loan-d1").await;
    let run = started.body["run"].as_u64().expect("run");
    let d = h.get("/api/v1/workflows/loan-d1", VIEWER).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["workflow_type"], "loan-approval");
    assert_eq!(d.body["run"], run);
    assert_eq!(d.body["status"], "running");
    assert_eq!(d.body["result"], Value::Null);
    assert!(
        d.body["history_events"].as_u64().is_some_and(|n| n >= 1),
        "{}",
        d.body
    );
    for list in [
        "waiting_on",
        "pending_activities",
        "pending_timers",
        "human_tasks",
    ] {
        assert!(d.body[list].is_array(), "{list}: {}", d.body);
    }

    let history = h.get("/api/v1/workflows/loan-d1/history", VIEWER).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    assert_eq!(history.headers["content-type"], "application/json");
    assert_eq!(history.body["format"], "refrain-history");
    assert_eq!(history.body["workflow_id"], "loan-d1");
    assert_eq!(history.body["events"][0]["type"], "WorkflowStarted");
    let named = h
        .get(
            &format!("/api/v1/workflows/loan-d1/history?run={run}"),
            VIEWER,
        )
        .await;
    assert_eq!(named.status, StatusCode::OK, "{}", named.body);
    assert_eq!(named.body["run"], history.body["run"]);

    // A run of another workflow is not this workflow's.
    let other = start_loan(&h, "loan-d2").await;
    let other_run = other.body["run"].as_u64().expect("run");
    let wrong = h
        .get(
            &format!("/api/v1/workflows/loan-d1/history?run={other_run}"),
            VIEWER,
        )
        .await;
    assert_error(&wrong, StatusCode::NOT_FOUND, "not_found");
    let bad = h
        .get("/api/v1/workflows/loan-d1/history?run=last", VIEWER)
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");
    let unknown = h.get("/api/v1/workflows/nobody/history", VIEWER).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
}

/// Every documented operation under `/api/v1`, from the served document.
async fn documented(h: &Harness) -> Vec<(Method, String)> {
    let doc = h.get("/api/v1/openapi.json", VIEWER).await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.body);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let mut ops = Vec::new();
    for (path, item) in doc.body["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
            let concrete = path
                .replace("{id}", "loan-x")
                .replace("{name}", "n")
                .replace("{run}", "1")
                .replace("{cmd}", "1");
            ops.push((m, concrete));
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_wants_a_token_and_every_documented_route_is_served() {
    let h = Harness::new().await;
    let ops = documented(&h).await;
    assert!(ops.len() >= 20, "{ops:?}");
    for (method, path) in &ops {
        let anonymous = h.call(method.clone(), path, None, None).await;
        if path == "/healthz" {
            assert_eq!(anonymous.status, StatusCode::OK);
            continue;
        }
        assert_error(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
        let wrong = h
            .call(method.clone(), path, Some("not-a-token"), None)
            .await;
        assert_error(&wrong, StatusCode::UNAUTHORIZED, "unauthorized");
        // Served: whatever the answer, not the catch-all's.
        let served = h.call(method.clone(), path, Some(ADMIN), None).await;
        let message = served.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            !message.starts_with("no API route") && served.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not served: {}",
            served.body
        );
    }
    let nowhere = h.get("/api/v1/nowhere", VIEWER).await;
    assert_error(&nowhere, StatusCode::NOT_FOUND, "not_found");
    let wrong_method = h
        .call(
            Method::DELETE,
            "/api/v1/workflows/loan-x",
            Some(ADMIN),
            None,
        )
        .await;
    assert_error(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

/// How many runs the store lists.
async fn run_count(h: &Harness) -> usize {
    let r = h.get("/api/v1/workflows?limit=1000", VIEWER).await;
    r.body["runs"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_answered_400_in_the_api_shape_and_writes_nothing() {
    let h = Harness::new().await;
    start_loan(&h, "loan-b0").await;
    let before = run_count(&h).await;
    let raw = |body: &'static str, content_type: &'static str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/workflows")
            .header("authorization", format!("Bearer {OPERATOR}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("request")
    };
    for (body, content_type) in [
        (
            "{\"workflow_type\": \"loan-approval\", \"workflow_id\": \"loan-b1\"",
            "application/json",
        ),
        ("not json", "application/json"),
        (
            "{\"workflow_type\": \"loan-approval\", \"workflow_id\": \"loan-b1\"}",
            "text/plain",
        ),
        ("[1, 2]", "application/json"),
    ] {
        let r = h.send(raw(body, content_type)).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_request");
    }
    let mut unknown = start_body("loan-b1");
    unknown["priority"] = json!("high");
    let r = h.post("/api/v1/workflows", OPERATOR, unknown).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("priority")),
        "{}",
        r.body
    );
    let missing = h
        .post(
            "/api/v1/workflows",
            OPERATOR,
            json!({"workflow_type": "loan-approval"}),
        )
        .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "bad_request");
    let empty = h
        .post(
            "/api/v1/workflows",
            OPERATOR,
            json!({"workflow_type": "loan-approval", "workflow_id": " "}),
        )
        .await;
    assert_error(&empty, StatusCode::BAD_REQUEST, "bad_request");

    // An input over the store's payload limit (4 MiB by default).
    let mut large = start_body("loan-b2");
    large["input"]["applicant"] = json!("x".repeat(5 << 20));
    let r = h.post("/api/v1/workflows", OPERATOR, large).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    assert_eq!(run_count(&h).await, before);
    for id in ["loan-b1", "loan-b2"] {
        let r = h.get(&format!("/api/v1/workflows/{id}"), VIEWER).await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
}
