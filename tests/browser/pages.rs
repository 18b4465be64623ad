//! What a person does on the dashboard's pages, in WebDriver terms: read,
//! follow a link, fill a form, take a screenshot.

use fantoccini::{Client, Locator};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Hang guard for what the page shows once the server has caught up.
const GIVE_UP: Duration = Duration::from_secs(60);

/// The browser on the dashboard at `base` (`http://ADDR`).
pub struct Page<'a> {
    client: &'a Client,
    base: String,
}

impl<'a> Page<'a> {
    pub fn new(client: &'a Client, base: &str) -> Self {
        Page {
            client,
            base: base.to_owned(),
        }
    }

    /// The visible text of the page. Retried while a navigation replaces
    /// the document under the lookup (a stale element).
    pub async fn text(&self) -> String {
        let give_up = Instant::now() + GIVE_UP;
        loop {
            let read = async { self.client.find(Locator::Css("body")).await?.text().await };
            match read.await {
                Ok(text) => return text,
                Err(e) => assert!(Instant::now() < give_up, "no page text: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL")
            .path()
            .to_owned()
    }

    /// Waits until the browser shows `path`: a click that submits a form
    /// returns before the next page is there.
    pub async fn expect_path(&self, path: &str) {
        let give_up = Instant::now() + GIVE_UP;
        loop {
            if self.path().await == path {
                return;
            }
            if Instant::now() >= give_up {
                panic!(
                    "{} shown instead of {path}:\n{}",
                    self.path().await,
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the first element `css` selects, once there is one.
    pub async fn section(&self, css: &str) -> String {
        self.text_of(Locator::Css(css), css).await
    }

    /// The text of the table row with a link named `needle`.
    pub async fn row_of(&self, needle: &str) -> String {
        let xpath = format!("//tr[.//a[normalize-space()='{needle}']]");
        self.text_of(Locator::XPath(&xpath), &format!("row of {needle}"))
            .await
    }

    async fn text_of(&self, locator: Locator<'_>, what: &str) -> String {
        let give_up = Instant::now() + GIVE_UP;
        loop {
            let read = async { self.client.find(locator).await?.text().await };
            match read.await {
                Ok(text) => return text,
                Err(e) if Instant::now() >= give_up => panic!(
                    "no {what} ({e}) on {}:\n{}",
                    self.path().await,
                    self.text().await
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Follows the link whose text is `text`, to `path`.
    pub async fn open_link(&self, text: &str, path: &str) {
        let link = match self.client.find(Locator::LinkText(text)).await {
            Ok(link) => link,
            Err(e) => panic!(
                "no link {text:?} ({e}) on {}:\n{}",
                self.path().await,
                self.text().await
            ),
        };
        link.click().await.expect("following the link");
        self.expect_path(path).await;
    }

    /// Logs out with the button in the page's header.
    pub async fn log_out(&self) {
        self.client
            .find(Locator::Css("form.logout button"))
            .await
            .expect("a logout button")
            .click()
            .await
            .expect("logging out");
        self.expect_path("/login").await;
    }

    /// Logs in on the login page with an access token.
    pub async fn log_in(&self, token: &str) {
        let field = self
            .client
            .find(Locator::Css("#token"))
            .await
            .expect("the access token field");
        field.send_keys(token).await.expect("typing the token");
        self.client
            .find(Locator::Css("section.login button[type=submit]"))
            .await
            .expect("the login button")
            .click()
            .await
            .expect("logging in");
        self.expect_path("/runs").await;
    }

    /// Opens the inbox task of run `workflow_id`, from the inbox.
    pub async fn open_task(&self, workflow_id: &str) {
        let xpath = format!("//tr[contains(., '{workflow_id}')]//a[contains(@href, '/inbox/')]");
        match self.client.find(Locator::XPath(&xpath)).await {
            Ok(link) => link.click().await.expect("opening the task"),
            Err(e) => panic!(
                "no task link for {workflow_id} ({e}):\n{}",
                self.text().await
            ),
        }
    }

    /// On the page of a task of run `workflow_id`: types `decision` (JSON)
    /// and `comment`, and submits.
    pub async fn decide(&self, workflow_id: &str, decision: &str, comment: &str) {
        for (field, value) in [("#decision", decision), ("#comment", comment)] {
            match self.client.find(Locator::Css(field)).await {
                Ok(e) => e.send_keys(value).await.expect("typing"),
                Err(e) => panic!("no {field} ({e}):\n{}", self.text().await),
            }
        }
        self.client
            .find(Locator::Css("form.decide button[type=submit]"))
            .await
            .expect("the decide button")
            .click()
            .await
            .expect("deciding");
        // The decision shown, the dashboard returns to the run.
        self.expect_path(&format!("/runs/{workflow_id}")).await;
    }

    /// Reloads the page of run `workflow_id` until its heading shows
    /// `status`.
    pub async fn run_until(&self, workflow_id: &str, status: &str) {
        let give_up = Instant::now() + GIVE_UP;
        loop {
            self.client
                .goto(&format!("{}/runs/{workflow_id}", self.base))
                .await
                .expect("opening the run page");
            let shown = self.section("h1 .status").await;
            if shown == status {
                return;
            }
            assert!(
                Instant::now() < give_up,
                "{workflow_id} is still {shown}:\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves a screenshot of the page as `NAME.png`: into
    /// `docs/screenshots/` with `REFRAIN_SCREENSHOTS=1` (to regenerate the
    /// README's images), under the target directory otherwise.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "the screenshot is a PNG"
        );
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("creating the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing the screenshot");
        eprintln!("screenshot: {}", path.display());
    }
}

fn screenshot_dir() -> PathBuf {
    if std::env::var("REFRAIN_SCREENSHOTS").as_deref() == Ok("1") {
        return PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    }
    // This binary is TARGET/PROFILE/deps/browser-HASH.
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors().nth(3).expect("TARGET").join("screenshots")
}
