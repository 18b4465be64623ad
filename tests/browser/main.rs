//! The dashboard in a real browser: `loan_approval --serve` as its own
//! process, headless Chromium driven through WebDriver, a person doing
//! what the story asks.
//!
//! 1. The person who started the example opens the login link it printed,
//!    and sees loan-bo waiting on underwriter-1 in the runs list and on the
//!    run page.
//! 2. They log out; underwriter-1 logs in with their access token, opens
//!    their inbox, opens the review and approves it with a comment.
//! 3. The run completes, and its timeline shows the decision, its comment
//!    and `decided_by` underwriter-1 (the identity that logged in, not a
//!    form field); the example's own output agrees.
//!
//! Screenshots of the runs list, the run page and the inbox go under the
//! target directory, or into `docs/screenshots/` (shown in the README)
//! with `REFRAIN_SCREENSHOTS=1`.
//!
//! Without Chromium (`/usr/bin/chromium`, `/usr/bin/chromedriver`) the test
//! says it is skipped, unless `REFRAIN_REQUIRE_BROWSER=1` (CI), where it
//! fails.

mod chromium;
mod example;
mod pages;

use example::{Example, Stream};
use std::time::Duration;

/// Hang guards, not speed requirements.
const GIVE_UP: Duration = Duration::from_secs(120);

const UNDERWRITER: &str = "underwriter-1";
const COMMENT: &str = "Six years with the same employer; the lower amount is fine.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_underwriter_decides_loan_bo_in_the_dashboard_inbox() {
    let Some((browser, driver)) = chromium::installed() else {
        return;
    };
    let bin = example::loan_approval_binary();
    let dir = tempfile::tempdir().unwrap();
    let token = refrain_server::auth::new_token();
    let identities = dir.path().join("identities.toml");
    std::fs::write(
        &identities,
        format!(
            "[[identity]]\nname = \"{UNDERWRITER}\"\nrole = \"viewer\"\ntoken_sha256 = \"{}\"\n",
            refrain_server::auth::token_digest(&token)
        ),
    )
    .unwrap();
    let db = dir.path().join("db");
    let mut app = Example::start(
        &bin,
        &[
            "--db",
            db.to_str().unwrap(),
            "--serve",
            "127.0.0.1:0",
            "--identities",
            identities.to_str().unwrap(),
        ],
    );
    let login_link = app.wait_for(Stream::Stderr, GIVE_UP, "login link", |line| {
        let rest = line.trim().strip_prefix("open ")?;
        let link = rest.strip_suffix(" to log in")?;
        link.contains("/?token=").then(|| link.to_owned())
    });
    let base = login_link
        .split("/?token=")
        .next()
        .expect("http://ADDR")
        .to_owned();
    // loan-ada has gone through by then, and loan-bo's review is in
    // underwriter-1's inbox.
    app.wait_for(Stream::Stdout, GIVE_UP, "loan-bo waiting", |line| {
        line.contains("loan-bo: waiting for underwriter-1")
            .then_some(())
    });

    let driver = chromium::Driver::start(&driver);
    let profile = dir.path().join("chromium-profile");
    let client = driver.session(&browser, &profile).await;
    let page = pages::Page::new(&client, &base);

    // 1. The person who started it: the one-time link logs in.
    client.goto(&login_link).await.unwrap();
    page.expect_path("/runs").await;
    let row = page.row_of("loan-bo").await;
    assert!(row.contains("running"), "loan-bo is open: {row:?}");
    assert!(
        row.contains(&format!("underwriting-review assigned to {UNDERWRITER}")),
        "the runs list says loan-bo waits on {UNDERWRITER}: {row:?}"
    );
    page.screenshot("runs").await;

    page.open_link("loan-bo", "/runs/loan-bo").await;
    let waiting = page.section("section.waiting").await;
    assert!(
        waiting.contains("underwriting-review") && waiting.contains(UNDERWRITER),
        "the run page says loan-bo waits on {UNDERWRITER}'s review: {waiting:?}"
    );
    page.screenshot("run").await;

    // 2. underwriter-1 logs in with their access token and decides.
    page.log_out().await;
    page.log_in(&token).await;
    let who = page.section("form.logout .who").await;
    assert!(who.contains(UNDERWRITER), "logged in as {who:?}");
    page.open_link("Inbox", "/inbox").await;
    let row = page.row_of("loan-bo").await;
    assert!(
        row.contains("underwriting-review") && row.contains(UNDERWRITER),
        "inbox row: {row:?}"
    );
    page.screenshot("inbox").await;
    page.open_task("loan-bo").await;
    // The decision is the workflow's `Verdict`, as JSON.
    page.decide("loan-bo", "\"Approve\"", COMMENT).await;

    // 3. The run completes; the timeline shows who decided what and why.
    app.wait_for(Stream::Stdout, GIVE_UP, "loan-bo approved", |line| {
        line.contains("loan-bo: APPROVED by underwriter-1")
            .then_some(())
    });
    page.run_until("loan-bo", "completed").await;
    let decided = page.section("td.event:has(strong.decided-by)").await;
    assert!(
        decided.contains(&format!("DECIDED by {UNDERWRITER}")),
        "decided_by in the timeline: {decided:?}"
    );
    assert!(
        decided.contains("Approve") && decided.contains(COMMENT),
        "the decision and its comment in the timeline: {decided:?}"
    );

    // The story over (loan-cy too), it keeps serving until stopped.
    app.wait_for(Stream::Stderr, GIVE_UP, "the story's end", |line| {
        line.contains("still serving on").then_some(())
    });
    client.goto(&format!("{base}/runs")).await.unwrap();
    page.expect_path("/runs").await;
    let row = page.row_of("loan-cy").await;
    assert!(row.contains("completed"), "loan-cy: {row:?}");

    client.close().await.unwrap();
    drop(driver);
    let status = app.stop();
    assert!(status.success(), "the example exited with {status}");
}
