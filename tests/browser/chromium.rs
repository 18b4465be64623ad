//! Headless Chromium driven through chromedriver (Debian's `chromium` and
//! `chromium-driver`), on a machine whose network is closed: every
//! background service of the browser that would call out is off.

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The browser and its driver, or why the test cannot run: `None` on a
/// developer machine without them (the test says it is skipped), a panic
/// when `REFRAIN_REQUIRE_BROWSER=1` (CI installs them, so their absence
/// there is a failure, not a skip).
pub fn installed() -> Option<(PathBuf, PathBuf)> {
    let browser = std::env::var_os("CHROMIUM").map_or_else(|| CHROMIUM.into(), PathBuf::from);
    let driver =
        std::env::var_os("CHROMEDRIVER").map_or_else(|| CHROMEDRIVER.into(), PathBuf::from);
    let missing: Vec<String> = [&browser, &driver]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some((browser, driver));
    }
    let why = format!(
        "{} not found (install Debian's chromium and chromium-driver, or set CHROMIUM and CHROMEDRIVER)",
        missing.join(" and ")
    );
    if std::env::var("REFRAIN_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!("REFRAIN_REQUIRE_BROWSER=1 and {why}");
    }
    eprintln!("SKIPPED: the browser test needs headless Chromium: {why}");
    None
}

/// chromedriver listening on a free loopback port; stopped when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts `driver` and waits until it accepts connections.
    pub fn start(driver: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting chromedriver");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let give_up = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < give_up,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// A session in a fresh headless browser whose profile lives in
    /// `profile` (a new directory: no state from an earlier run).
    pub async fn session(&self, browser: &Path, profile: &Path) -> Client {
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            // Containers give /dev/shm little room.
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({ "binary": browser, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a chromedriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
