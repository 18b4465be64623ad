//! A browser for the dashboard's tests: a session cookie and its CSRF
//! token, pages fetched and forms posted through the router in-process.

use crate::harness::Harness;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

/// A logged-in browser: its session cookie and the CSRF token its forms
/// carry.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// A session of the identity whose access token is `token`, as the login
/// form makes.
pub fn login(h: &Harness, token: &str) -> Browser {
    let auth = h.state.auth();
    let identity = auth.identities.by_token(token).expect("a test identity");
    let session = auth.sessions.create(identity);
    let csrf = auth.sessions.get(&session).expect("live session").csrf;
    Browser {
        cookie: format!("refrain_session={session}"),
        csrf,
    }
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A page's status and HTML.
pub async fn page(router: &Router, b: &Browser, path: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("cookie", &b.cookie)
        .body(Body::empty())
        .expect("request");
    let reply = send(router, req).await;
    (reply.status, reply.html)
}

/// Posts a form; returns the status, the redirect target (if any) and the
/// HTML.
pub async fn submit(
    router: &Router,
    b: &Browser,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("cookie", &b.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form_encode(fields)))
        .expect("request");
    let reply = send(router, req).await;
    (reply.status, reply.location, reply.html)
}

/// Logs in with `token` on the login form, as a person does, and reads
/// the CSRF token from the first page.
pub async fn login_with_form(router: &Router, token: &str) -> Browser {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form_encode(&[
            ("token", token),
            ("next", "/inbox"),
        ])))
        .expect("request");
    let reply = send(router, req).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.html);
    let cookie = reply
        .set_cookie
        .split(';')
        .next()
        .expect("a session cookie")
        .to_owned();
    let mut browser = Browser {
        cookie,
        csrf: String::new(),
    };
    let (_, html) = page(router, &browser, "/inbox").await;
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker).expect("a form with the CSRF token") + marker.len();
    browser.csrf = html[at..].split('"').next().unwrap_or_default().to_owned();
    browser
}

struct Reply {
    status: StatusCode,
    location: String,
    set_cookie: String,
    html: String,
}

async fn send(router: &Router, req: Request<Body>) -> Reply {
    let res = router.clone().oneshot(req).await.expect("infallible");
    let header = |name| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, location, set_cookie) = (res.status(), header("location"), header("set-cookie"));
    let bytes = axum::body::to_bytes(res.into_body(), 64 << 20)
        .await
        .expect("body");
    Reply {
        status,
        location,
        set_cookie,
        html: String::from_utf8_lossy(&bytes).into_owned(),
    }
}
