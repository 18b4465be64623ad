//! Schedules through the API: list, describe, pause, resume, trigger.

use crate::api_support::{assert_error, loan, HOUR_MS};
use crate::harness::{Harness, OPERATOR, VIEWER};
use axum::http::StatusCode;
use refrain::{Payload, ScheduleSpec, Trigger};
use serde_json::json;

/// A schedule of loans that fires once a year (never during a test).
async fn yearly(h: &Harness, id: &str) {
    let input = serde_json::to_vec(&loan("scheduled", HOUR_MS, HOUR_MS)).expect("json");
    let spec = ScheduleSpec::new(
        id,
        "loan-approval",
        Payload::from_bytes(input),
        Trigger::Cron("0 0 1 1 *".into()),
    );
    h.client.create_schedule(spec).await.expect("create");
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_are_listed_paused_resumed_and_triggered() {
    let h = Harness::new().await;
    let empty = h.get("/api/v1/schedules", VIEWER).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert_eq!(empty.body, json!({"schedules": []}));
    yearly(&h, "yearly-loans").await;

    let list = h.get("/api/v1/schedules", VIEWER).await;
    let s = &list.body["schedules"][0];
    assert_eq!(s["id"], "yearly-loans");
    assert_eq!(s["workflow_type"], "loan-approval");
    assert_eq!(s["trigger"], json!({"cron": "0 0 1 1 *"}));
    assert_eq!(s["overlap"], "skip");
    assert_eq!(s["paused"], false);
    assert_eq!(s["input"]["applicant"], "bo");
    assert!(
        s["next_fire"]
            .as_str()
            .is_some_and(|t| t.contains("-01-01T00:00:00")),
        "{s}"
    );
    let one = h.get("/api/v1/schedules/yearly-loans", VIEWER).await;
    assert_eq!(&one.body, s);

    let viewer = h
        .post("/api/v1/schedules/yearly-loans/pause", VIEWER, json!({}))
        .await;
    assert_error(&viewer, StatusCode::FORBIDDEN, "forbidden");
    let paused = h
        .post("/api/v1/schedules/yearly-loans/pause", OPERATOR, json!({}))
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    assert_eq!(paused.body["paused"], true);
    let resumed = h
        .post("/api/v1/schedules/yearly-loans/resume", OPERATOR, json!({}))
        .await;
    assert_eq!(resumed.body["paused"], false, "{}", resumed.body);

    let viewer = h
        .post("/api/v1/schedules/yearly-loans/trigger", VIEWER, json!({}))
        .await;
    assert_error(&viewer, StatusCode::FORBIDDEN, "forbidden");
    let fired = h
        .post(
            "/api/v1/schedules/yearly-loans/trigger",
            OPERATOR,
            json!({}),
        )
        .await;
    assert_eq!(fired.status, StatusCode::OK, "{}", fired.body);
    assert_eq!(fired.body["schedule"], "yearly-loans");
    assert_eq!(fired.body["outcome"], "started");
    let workflow_id = fired.body["workflow_id"].as_str().expect("workflow id");
    assert!(workflow_id.starts_with("yearly-loans@"), "{}", fired.body);
    let run = h
        .get(&format!("/api/v1/workflows/{workflow_id}"), VIEWER)
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.body);
    assert_eq!(run.body["run"], fired.body["run"]);
    assert_eq!(run.body["workflow_type"], "loan-approval");

    // Under the skip policy a second fire while that run is open starts
    // nothing, and says which run held it back.
    let skipped = h
        .post(
            "/api/v1/schedules/yearly-loans/trigger",
            OPERATOR,
            json!({}),
        )
        .await;
    assert_eq!(skipped.status, StatusCode::OK, "{}", skipped.body);
    assert_eq!(skipped.body["workflow_id"], fired.body["workflow_id"]);
    // (`started` only for a trigger in the same millisecond, whose run is
    // the same one.)
    assert!(
        ["skipped", "started"].contains(&skipped.body["outcome"].as_str().unwrap_or("")),
        "{}",
        skipped.body
    );

    let r = h.get("/api/v1/schedules/nothing", VIEWER).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    for action in ["pause", "resume", "trigger"] {
        let r = h
            .post(
                &format!("/api/v1/schedules/nothing/{action}"),
                OPERATOR,
                json!({}),
            )
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    }
}
