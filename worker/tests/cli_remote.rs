//! `refrain serve` as a real process on a store: it prints its address and
//! a one-time login link, answers `/healthz` and the command line through
//! `--server`, stops with exit code 0 on SIGTERM, and what it was asked to
//! write is in the store afterwards (read back with `--db`). Also `refrain
//! token`, whose digest line an identities file accepts.
//!
//! The command line through a server beside a worker running workflows is
//! tested in the tests crate (`tests/server/cli.rs`).

#![cfg(unix)]

use refrain_history::{Store, StoreConfig};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_refrain");
const TOKEN: &str = "ops-token-for-the-serve-test";

/// A store directory holding a store.
fn new_store(dir: &Path) {
    let store = Store::open(dir, StoreConfig::default()).expect("store");
    store.durable_blocking().expect("durable");
}

/// `refrain ARGS…` with the token in the environment (this process's own
/// environment is left alone).
fn refrain(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("REFRAIN_TOKEN", TOKEN)
        .env_remove("REFRAIN_DB")
        .env_remove("REFRAIN_SERVER")
        .output()
        .expect("refrain runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Kills the server if a check fails before it is stopped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /healthz` by hand: status line and body.
fn healthz(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    answer
}

#[test]
fn serve_answers_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("store");
    new_store(&db);
    let identities = dir.path().join("identities.toml");
    std::fs::write(
        &identities,
        format!("[[identity]]\nname = \"ops\"\nrole = \"operator\"\ntoken = \"{TOKEN}\"\n"),
    )
    .expect("identities file");
    let db_arg = db.to_str().expect("utf-8 path");
    let child = Command::new(BIN)
        .args([
            "--db",
            db_arg,
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--identities",
        ])
        .arg(&identities)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut serving = Serving(child);
    let mut stderr = BufReader::new(serving.0.stderr.take().expect("stderr"));

    // "  open http://127.0.0.1:PORT/?token=… to log in"
    let mut url = None;
    let mut seen = String::new();
    for _ in 0..10 {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("stderr line") == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some(link) = line.trim().strip_prefix("open ") {
            let (base, token) = link.split_once("/?token=").expect("a login link");
            assert!(!token.trim_end_matches(" to log in").is_empty(), "{line}");
            url = Some(base.to_owned());
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("no login link printed: {seen}"));
    let addr = url.strip_prefix("http://").expect("http URL");

    let health = healthz(addr);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok"), "{health}");

    // The command line through it: a start (no workflow code here: it
    // waits for the application's workers), then the list.
    let started = refrain(&[
        "--server",
        &url,
        "start",
        "nightly-report",
        "report-1",
        "{}",
    ]);
    assert!(started.status.success(), "{started:?}");
    assert_eq!(stdout(&started).trim(), "started report-1 (run 1)");
    let list = refrain(&["--server", &url, "--json", "list"]);
    assert!(list.status.success(), "{list:?}");
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("JSON");
    assert_eq!(list["runs"][0]["workflow_id"], "report-1");
    assert_eq!(list["runs"][0]["status"], "running");

    // While it serves, the store is its own.
    let locked = refrain(&["--db", db_arg, "list"]);
    assert_eq!(locked.status.code(), Some(2), "{locked:?}");

    let pid = serving.0.id().to_string();
    let term = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let status = serving.0.wait().expect("serve exits");
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert_eq!(
        status.code(),
        Some(0),
        "serve stopped with {status}: {rest}"
    );
    assert!(rest.contains("stopped"), "{rest}");

    // What it wrote is in the store, which it let go of.
    let after = refrain(&["--db", db_arg, "list"]);
    assert!(after.status.success(), "{after:?}");
    assert!(
        stdout(&after)
            .lines()
            .any(|l| l.starts_with("report-1 ") && l.contains("running")),
        "{}",
        stdout(&after)
    );
}

#[test]
fn serve_refuses_a_bad_identities_file_before_opening_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("store");
    new_store(&db);
    let identities = dir.path().join("identities.toml");
    std::fs::write(&identities, "[[identity]]\nname = \"x\"\n").expect("file");
    let out = Command::new(BIN)
        .args(["--db", db.to_str().expect("utf-8"), "serve", "--identities"])
        .arg(&identities)
        .output()
        .expect("refrain runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("identities file"), "{err}");
}

#[test]
fn token_prints_a_token_and_the_line_for_an_identities_file() {
    let out = refrain(&["token"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let mut lines = text.lines();
    let token = lines.next().expect("a token");
    let line = lines.next().expect("a digest line");
    assert_eq!(token.len(), 64, "{text}");
    let file = format!("[[identity]]\nname = \"ci\"\nrole = \"viewer\"\n{line}\n");
    let ids = refrain_server::Identities::from_toml(&file).expect("the line is accepted");
    let who = ids.by_token(token).expect("the token is the identity's");
    assert_eq!(who.name, "ci");
    // A second token is another.
    assert_ne!(stdout(&refrain(&["token"])).lines().next(), Some(token));
}

#[test]
fn a_server_and_a_store_are_not_given_together() {
    let out = refrain(&[
        "--db",
        "/nonexistent",
        "--server",
        "http://127.0.0.1:1",
        "list",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be used together"), "{err}");
}

#[test]
fn an_exported_server_does_not_stop_a_command_on_a_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    new_store(dir.path());
    let out = Command::new(BIN)
        .args(["--db", dir.path().to_str().expect("utf-8"), "list"])
        .env("REFRAIN_SERVER", "http://127.0.0.1:1")
        .output()
        .expect("refrain runs");
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("(no runs match)"));
}

#[test]
fn https_is_refused_by_name() {
    let out = refrain(&["--server", "https://example.com", "list"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https is not supported"), "{err}");
}
