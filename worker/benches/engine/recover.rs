//! `recover`: crash recovery. A child process (this binary re-executed with
//! the hidden subcommand `__recover-child`) starts N workflows whose one
//! activity never returns in that process; once every attempt is running
//! and that state is durable, the parent SIGKILLs it (`Child::kill`) and
//! starts a second child on the same directory, in which the activity
//! returns at once.
//!
//! Definitions (all times from the moment the parent spawns the second
//! child, wall clock shared by both processes):
//! - resumed: the first attempt of the workflow's held activity starts in
//!   the new process (timestamp taken inside the activity). `Store::open`
//!   fails every attempt still running from the dead process and makes its
//!   retry due at once, so this does not wait for the attempts' deadlines
//!   (start-to-close, `--recover-timeout-ms`); "lag" = resumed − max(old
//!   deadline still recorded at open, if any, worker start), the part the
//!   engine controls.
//! - completed: the workflow's result is durable (`handle.result()`
//!   returned in the new process).

use crate::common::*;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, RetryPolicy, Workflow,
    WorkflowContext, WorkflowError, WorkflowId,
};
use refrain_history::ActivityState;
use refrain_worker::Worker;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SUBCOMMAND: &str = "__recover-child";
const T0_ENV: &str = "REFRAIN_BENCH_RECOVER_T0_NS";

/// Attempts started in the load phase (first attempts only).
static HOLDING: AtomicU64 = AtomicU64::new(0);
/// Per workflow, unix ns of the first attempt started in the resume phase.
static RESUMED: OnceLock<Vec<AtomicU64>> = OnceLock::new();

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
}

struct Hold {
    load: bool,
}
#[async_trait]
impl Activity for Hold {
    const NAME: &'static str = "hold";
    type Input = u64;
    type Output = u64;
    async fn run(&self, ctx: ActivityContext, i: u64) -> Result<u64, ActivityError> {
        if self.load {
            if ctx.attempt() == 1 {
                HOLDING.fetch_add(1, Ordering::Relaxed);
            }
            // Held until the process dies, or until the attempt times out
            // (a short --recover-timeout-ms): then it gives its slot back.
            ctx.cancelled().await;
            return Err(ActivityError::retryable("attempt timed out"));
        }
        if let Some(slot) = RESUMED.get().and_then(|v| v.get(i as usize)) {
            let _ = slot.compare_exchange(
                0,
                unix_ns(SystemTime::now()),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        Ok(i)
    }
}

struct Held;
impl Workflow for Held {
    const NAME: &'static str = "held";
    /// (index, start-to-close in ms)
    type Input = (u64, u64);
    type Output = u64;
    async fn run(ctx: WorkflowContext, (i, t): (u64, u64)) -> Result<u64, WorkflowError> {
        let v = ctx
            .activity::<Hold>(i)
            .start_to_close(Duration::from_millis(t))
            .retry(RetryPolicy::exponential().initial_interval(Duration::from_millis(100)))
            .await?;
        Ok(v)
    }
}

// ----- parent -----

fn spawn_child(phase: &str, dir: &Path, n: u64, opts: &Opts, t0: Option<u64>) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.arg(SUBCOMMAND)
        .arg(phase)
        .arg(dir)
        .arg(n.to_string())
        .arg(opts.recover_timeout.as_millis().to_string())
        .arg(opts.mode_name())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(t0) = t0 {
        cmd.env(T0_ENV, t0.to_string());
    }
    cmd.spawn().expect("spawning the recover child")
}

/// Reads the child's stdout until a line starting with `tag`; its JSON.
fn read_tagged(child: &mut Child, tag: &str) -> Value {
    let out = child.stdout.as_mut().expect("piped stdout");
    let mut lines = BufReader::new(out).lines();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("recover child exited before printing {tag}"))
            .expect("reading the child's stdout");
        if let Some(rest) = line.strip_prefix(tag) {
            return serde_json::from_str(rest.trim()).expect("child JSON");
        }
    }
}

/// Blocking: spawns, kills and re-spawns child processes.
pub fn run(opts: &Opts) -> Outcome {
    let n: u64 = if opts.smoke { 200 } else { 10_000 };
    let mode = opts.mode_name();
    let dir = opts.fresh_dir("recover");

    let mut first = spawn_child("load", dir.path(), n, opts, None);
    let load = read_tagged(&mut first, "INFLIGHT");
    first.kill().expect("SIGKILL the first child");
    let _ = first.wait();
    eprintln!("  recover: killed the first child with {n} activities in flight: {load}");

    let t0 = unix_ns(SystemTime::now());
    let mut second = spawn_child("resume", dir.path(), n, opts, Some(t0));
    let res = read_tagged(&mut second, "RESULT");
    let status = second.wait().expect("waiting for the second child");
    assert!(status.success(), "second recover child failed: {status}");
    eprintln!("  recover: {res}");

    let f = |k: &str| res[k].as_f64().unwrap_or(f64::NAN);
    let mut out = Outcome::new();
    let t = opts.recover_timeout.as_millis();
    out.row(
        "recover",
        &format!("load: {n} started, all in flight"),
        format!(
            "{:.2} s, {:.2} s",
            load["started_s"].as_f64().unwrap_or(f64::NAN),
            load["inflight_s"].as_f64().unwrap_or(f64::NAN)
        ),
        mode,
    );
    out.row(
        "recover",
        "restart → store open",
        fmt_ms(f("open_ms")),
        mode,
    );
    out.row(
        "recover",
        &format!("dead attempts still running after open (s-t-c {t} ms)"),
        format!("{}", res["attempts_running_at_open"]),
        mode,
    );
    out.row(
        "recover",
        "restart → all resumed (p50 / all)",
        format!(
            "{} / {}",
            fmt_ms(f("resumed_p50_ms")),
            fmt_ms(f("resumed_all_ms"))
        ),
        mode,
    );
    out.row(
        "recover",
        "resume lag after worker start (p50 / max)",
        format!("{} / {}", fmt_ms(f("lag_p50_ms")), fmt_ms(f("lag_max_ms"))),
        mode,
    );
    out.row(
        "recover",
        "restart → all completed (p50 / all)",
        format!(
            "{} / {}",
            fmt_ms(f("completed_p50_ms")),
            fmt_ms(f("completed_all_ms"))
        ),
        mode,
    );
    out.json = json!({
        "durability": mode,
        "workflows": n,
        "start_to_close_ms": t,
        "retry_initial_interval_ms": 100,
        "definitions": {
            "t0": "parent spawns the second process (after SIGKILL of the first)",
            "resumed": "first attempt of the workflow's held activity starts in the new process (timestamp inside the activity)",
            "lag": "resumed - max(dead attempt's deadline if still recorded after open, worker started)",
            "completed": "handle.result() returned (result durable) in the new process",
        },
        "load_phase": load,
        "resume_phase": res,
    });
    out
}

// ----- children -----

/// Entry point of `engine __recover-child PHASE DIR N TIMEOUT_MS MODE`.
pub fn child(args: &[String]) {
    let [phase, dir, n, t, mode] = args else {
        panic!("usage: {SUBCOMMAND} load|resume DIR N TIMEOUT_MS MODE");
    };
    let n: u64 = n.parse().expect("N");
    let t: u64 = t.parse().expect("TIMEOUT_MS");
    let mode = parse_mode(mode).expect("MODE");
    let dir = PathBuf::from(dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match phase.as_str() {
        "load" => rt.block_on(load(&dir, n, t, mode)),
        "resume" => rt.block_on(resume(&dir, n, mode)),
        other => panic!("unknown phase {other}"),
    }
}

fn say(tag: &str, v: Value) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{tag} {v}").unwrap();
    out.flush().unwrap();
}

async fn load(dir: &Path, n: u64, t: u64, mode: refrain::DurabilityMode) {
    let store = refrain::Store::open(dir, store_config(mode)).unwrap();
    let _worker = Worker::builder(store.clone())
        .workflow::<Held>()
        .activity(Hold { load: true })
        .max_concurrent_activities(n as usize + 100)
        .start();
    let client = Client::new(store.clone());
    let t0 = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move {
                client
                    .start::<Held>(format!("held-{i}"), (i, t))
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(200)
        .collect::<Vec<()>>()
        .await;
    let started_s = t0.elapsed().as_secs_f64();
    while HOLDING.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let inflight_s = t0.elapsed().as_secs_f64();
    // Every claim (Running + deadline) is on disk before the kill.
    store.durable().await.unwrap();
    say(
        "INFLIGHT",
        json!({"started_s": r4(started_s), "inflight_s": r4(inflight_s), "holding": HOLDING.load(Ordering::Relaxed)}),
    );
    std::future::pending::<()>().await;
}

async fn resume(dir: &Path, n: u64, mode: refrain::DurabilityMode) {
    let t0: u64 = std::env::var(T0_ENV).expect("T0").parse().expect("T0 ns");
    let rel_ms = |ns: u64| (ns as f64 - t0 as f64) / 1e6;
    let exec_ms = rel_ms(unix_ns(SystemTime::now()));
    RESUMED.get_or_init(|| (0..n).map(|_| AtomicU64::new(0)).collect());
    let store = refrain::Store::open(dir, store_config(mode)).unwrap();
    let open_ms = rel_ms(unix_ns(SystemTime::now()));
    let worker = Worker::builder(store.clone())
        .workflow::<Held>()
        .activity(Hold { load: false })
        .max_concurrent_activities(n as usize + 100)
        .start();
    let worker_ms = rel_ms(unix_ns(SystemTime::now()));
    let client = Client::new(store.clone());
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        handles.push((i, client.handle::<Held>(format!("held-{i}")).await.unwrap()));
    }
    let completed: FuturesUnordered<_> = handles
        .into_iter()
        .map(|(i, h)| async move {
            assert_eq!(h.result().await.unwrap(), i);
            unix_ns(SystemTime::now())
        })
        .collect();
    let waiter = tokio::spawn(completed.collect::<Vec<u64>>());
    // Dead attempts still running after open (open fails them, so none are
    // expected) and their deadlines, read while the worker already runs.
    let mut deadlines = vec![f64::NAN; n as usize];
    let mut held_running = 0;
    for (i, d) in deadlines.iter_mut().enumerate() {
        let (run, rec) = store
            .latest_run(&WorkflowId::new(format!("held-{i}")))
            .unwrap()
            .unwrap();
        for &cmd in &rec.pending_activities {
            if let Some(task) = store.activity_task(run, cmd).unwrap() {
                // Only attempts of the killed process (started before this
                // one), not those the new worker is running already.
                if let ActivityState::Running {
                    deadline,
                    started_at,
                    ..
                } = task.state
                {
                    if unix_ns(started_at.to_system_time()) < t0 {
                        *d = rel_ms(unix_ns(deadline.to_system_time()));
                        held_running += 1;
                    }
                }
            }
        }
    }
    let done = waiter.await.unwrap();
    let resumed: Vec<f64> = RESUMED
        .get()
        .unwrap()
        .iter()
        .map(|a| rel_ms(a.load(Ordering::Relaxed)))
        .collect();
    let completed: Vec<f64> = done.iter().map(|&ns| rel_ms(ns)).collect();
    let lag: Vec<f64> = resumed
        .iter()
        .zip(&deadlines)
        .map(|(&r, &d)| {
            r - if d.is_nan() {
                worker_ms
            } else {
                d.max(worker_ms)
            }
        })
        .collect();
    let known: Vec<f64> = deadlines.iter().copied().filter(|d| !d.is_nan()).collect();
    say(
        "RESULT",
        json!({
            "exec_ms": r4(exec_ms),
            "open_ms": r4(open_ms),
            "worker_started_ms": r4(worker_ms),
            "attempts_running_at_open": held_running,
            "deadline_earliest_ms": r4(pct(&known, 0.0)),
            "deadline_latest_ms": r4(pct(&known, 1.0)),
            "resumed_p50_ms": r4(pct(&resumed, 0.5)),
            "resumed_all_ms": r4(pct(&resumed, 1.0)),
            "lag_p50_ms": r4(pct(&lag, 0.5)),
            "lag_p99_ms": r4(pct(&lag, 0.99)),
            "lag_max_ms": r4(pct(&lag, 1.0)),
            "completed_p50_ms": r4(pct(&completed, 0.5)),
            "completed_all_ms": r4(pct(&completed, 1.0)),
        }),
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

pub fn is_child(args: &[String]) -> bool {
    args.first().is_some_and(|a| a == SUBCOMMAND)
}
