//! Who gets in: the health check for anyone, 401 without a credential,
//! the one-time link once.

use crate::harness::{Harness, VIEWER};
use axum::http::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread")]
async fn only_the_health_check_is_open() {
    let h = Harness::new().await;
    let health = h.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    let metrics = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::UNAUTHORIZED);
    assert_eq!(metrics.body["error"]["code"], "unauthorized");
    let wrong = h
        .call(Method::GET, "/metrics", Some("not-a-token"), None)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let ok = h.get("/metrics", VIEWER).await;
    assert_eq!(ok.status, StatusCode::OK);
    let page = h.call(Method::GET, "/", None, None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers["location"], "/login?next=%2F");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_one_time_link_logs_in_once() {
    let h = Harness::new().await;
    let token = h.state.auth().sessions.one_time_token().expect("unused");
    let first = h
        .call(Method::GET, &format!("/?token={token}"), None, None)
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let cookie = first.headers["set-cookie"].to_str().unwrap();
    // No other site frames the pages or reads the link through Referer.
    assert_eq!(first.headers["x-frame-options"], "DENY");
    assert_eq!(first.headers["referrer-policy"], "no-referrer");
    let csp = first.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let again = h
        .call(Method::GET, &format!("/?token={token}"), None, None)
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

/// Every dashboard page and form without a session goes to the login page
/// and does nothing; only the login page and its stylesheet answer anyone.
#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_route_needs_a_session() {
    let h = Harness::new().await;
    let gets = [
        "/runs",
        "/runs/loan-x",
        "/inbox",
        "/inbox/1/2",
        "/schedules",
        "/kpis",
    ];
    let posts = [
        "/logout",
        "/runs/loan-x/signal",
        "/runs/loan-x/cancel",
        "/runs/loan-x/terminate",
        "/inbox/1/2",
        "/schedules/nightly/pause",
        "/schedules/nightly/resume",
        "/schedules/nightly/trigger",
    ];
    let routes = gets
        .iter()
        .map(|p| (Method::GET, *p))
        .chain(posts.iter().map(|p| (Method::POST, *p)));
    for (method, path) in routes {
        // A bearer token is the API's credential, not the dashboard's.
        let reply = h.call(method.clone(), path, Some(VIEWER), None).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{method} {path}");
        let to = reply.headers["location"].to_str().unwrap();
        assert!(to.starts_with("/login?next="), "{method} {path} -> {to}");
    }
    let open = [
        ("/login", StatusCode::OK),
        ("/assets/style.css", StatusCode::OK),
    ];
    for (path, status) in open {
        assert_eq!(
            h.call(Method::GET, path, None, None).await.status,
            status,
            "{path}"
        );
    }
}
