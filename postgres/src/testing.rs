//! A PostgreSQL for tests (feature `test-support`): a fresh, empty schema
//! per test, on the server `REFRAIN_POSTGRES_URL` names or else on a
//! throwaway cluster started once per test process in a temporary
//! directory (with PostgreSQL's own `initdb` and `pg_ctl`, found on `PATH`
//! or under `/usr/lib/postgresql/*/bin`).
//!
//! Without either, [`fresh`] says so on stderr (`SKIPPED: <test>: ...`)
//! and returns `None`, so the test passes without running; with
//! `REFRAIN_REQUIRE_POSTGRES=1` (CI) it panics instead.
//!
//! The cluster is for tests only: it trusts every local connection and
//! does not fsync (each test's data lives as long as the process). Its
//! server is stopped, and its directory removed, by a small watcher
//! process once the test process exits, however it exits.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// A fresh schema on a test server.
#[derive(Clone, Debug)]
pub struct TestDb {
    /// The connection string of the server.
    pub url: String,
    /// The schema, empty until a store is opened in it.
    pub schema: String,
}

impl TestDb {
    /// [`crate::Options`] for this schema.
    pub fn options(&self) -> crate::Options {
        crate::Options {
            schema: self.schema.clone(),
            ..crate::Options::default()
        }
    }
}

/// The server's connection string, or why there is none.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("REFRAIN_POSTGRES_URL") {
            return Ok(url);
        }
        let Some(bin) = find_bin() else {
            return Err("no PostgreSQL (set REFRAIN_POSTGRES_URL or install postgresql)".into());
        };
        start_cluster(&bin, false).map(|c| c.url)
    })
}

/// A fresh schema for `test` (its name goes into the schema's and into
/// the skip message), or `None` when there is no PostgreSQL to run on.
///
/// # Panics
/// When there is none and `REFRAIN_REQUIRE_POSTGRES=1`.
pub fn fresh(test: &str) -> Option<TestDb> {
    match server() {
        Ok(url) => Some(TestDb {
            url: url.clone(),
            schema: unique_schema(test),
        }),
        Err(why) => {
            if std::env::var("REFRAIN_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("{test}: {why}, and REFRAIN_REQUIRE_POSTGRES=1 forbids skipping");
            }
            // Past the test harness's capture, so a passing run shows it.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
            None
        }
    }
}

/// A schema name no other test of any process uses.
fn unique_schema(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tag = format!("_{}_{n}_{nanos}", std::process::id());
    let clean: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(63 - 2 - tag.len())
        .collect();
    format!("t_{clean}{tag}")
}

/// The directory holding `initdb` and `pg_ctl`.
pub fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    // The newest version first.
    debian.sort();
    debian.reverse();
    on_path
        .into_iter()
        .chain(debian)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// A running throwaway cluster.
pub struct Cluster {
    /// Its connection string (user `postgres`, database `postgres`).
    pub url: String,
    /// Its data directory.
    pub dir: PathBuf,
}

/// Starts a cluster with the binaries in `bin` in a new temporary
/// directory, on a free local port, stopped once this process exits.
/// `durable`: fsync on (for measurements), else off (tests).
///
/// # Errors
/// What failed, with the server's log when it would not start.
pub fn start_cluster(bin: &Path, durable: bool) -> Result<Cluster, String> {
    let dir = tempfile::Builder::new()
        .prefix("refrain-pg-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?
        .keep();
    let data = dir.join("data");
    // initdb refuses to run as root: the cluster then belongs to the
    // `postgres` user.
    let as_root = is_root();
    if as_root {
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !chown.success() {
            return Err(format!("chown postgres {} failed", dir.display()));
        }
    }
    let run = |program: &str| {
        let mut cmd = if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin.join(program));
            c
        } else {
            Command::new(bin.join(program))
        };
        cmd.stdin(Stdio::null());
        cmd
    };
    let init = run("initdb")
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
        .arg(&data)
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !init.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        ));
    }
    let port = free_port()?;
    let fsync = if durable { "on" } else { "off" };
    let log = dir.join("log");
    let started = run("pg_ctl")
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", "60", "-o"])
        .arg(format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync={fsync} -c max_connections=400",
            dir.display()
        ))
        .arg("start")
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("pg_ctl: {e}"))?;
    if !started.status.success() {
        return Err(format!(
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ));
    }
    stop_when_gone(bin, &data, &dir, as_root);
    Ok(Cluster {
        url: format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        dir,
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// Leaves behind a watcher that stops the cluster and removes `dir` once
/// this process is gone (a test process ends without running
/// destructors of statics, and may be killed).
fn stop_when_gone(bin: &Path, data: &Path, dir: &Path, as_root: bool) {
    let pg_ctl = bin.join("pg_ctl");
    let stop = if as_root {
        format!(
            "runuser -u postgres -- '{}' -D '{}' stop -m immediate",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "'{}' -D '{}' stop -m immediate",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
