//! `loan_approval --serve` as a real process: built by cargo, started with
//! an identities file, its output read line by line.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The built `loan_approval` example, as up to date as the test: cargo
/// builds it (a no-op when `cargo test --workspace` already did) into the
/// target directory and profile this test binary was built into.
pub fn loan_approval_binary() -> PathBuf {
    // This binary is TARGET/PROFILE/deps/browser-HASH.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lies in TARGET/PROFILE/deps");
    let target_dir = profile_dir.parent().expect("TARGET/PROFILE");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a profile directory name");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args([
            "build",
            "--quiet",
            "--workspace",
            "--example",
            "loan_approval",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cargo.arg("--release");
        }
        other => {
            cargo.args(["--profile", other]);
        }
    }
    let status = cargo.status().expect("running cargo build");
    assert!(status.success(), "cargo build of the example: {status}");
    let bin = profile_dir
        .join("examples")
        .join(format!("loan_approval{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The example running; killed when dropped (a failing test leaves no
/// process behind).
pub struct Example {
    child: Child,
    lines: Receiver<(Stream, String)>,
    /// Every line read so far, for failure messages.
    seen: Vec<String>,
}

impl Example {
    /// Starts `bin` with `args`.
    pub fn start(bin: &Path, args: &[&str]) -> Example {
        let mut child = Command::new(bin)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the example");
        let (tx, lines) = channel();
        forward(
            child.stdout.take().expect("piped"),
            Stream::Stdout,
            tx.clone(),
        );
        forward(child.stderr.take().expect("piped"), Stream::Stderr, tx);
        Example {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line of `stream` from now on for which `pick` returns
    /// something, and that something. Panics, showing the output so far,
    /// if the process ends first or after `give_up` (a hang guard, not a
    /// speed requirement).
    pub fn wait_for<T>(
        &mut self,
        stream: Stream,
        give_up: Duration,
        what: &str,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + give_up;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((s, line)) => {
                    self.seen.push(line.clone());
                    if s == stream {
                        if let Some(found) = pick(&line) {
                            return found;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} after {give_up:?}; output:\n{}", self.output())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the example ended before {what}; output:\n{}",
                        self.output()
                    )
                }
            }
        }
    }

    /// Everything it printed so far.
    pub fn output(&mut self) -> String {
        while let Ok((_, line)) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    /// Stops it as an operator would (SIGTERM, which it handles like
    /// Ctrl-C) and returns how it exited.
    pub fn stop(mut self) -> ExitStatus {
        // Through the `kill` command: the workspace denies unsafe code, and
        // so `libc::kill`.
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -TERM: {sent}");
        self.child.wait().expect("waiting for the example")
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(
    stream: impl Read + Send + 'static,
    which: Stream,
    tx: std::sync::mpsc::Sender<(Stream, String)>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send((which, line)).is_err() {
                break;
            }
        }
    });
}
