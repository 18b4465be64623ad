//! Soak benchmark: one long-lived process, many start-and-await loops,
//! watched for stalls.
//!
//! ```text
//! cargo bench -p refrain-worker --bench soak -- [--smoke] [--minutes M]
//!     [--seconds S] [--loops N] [--slots N] [--stall-s S]
//!     [--durability fsync|flush|none] [--dir DIR] [--linger-s S]
//! ```
//!
//! Each of `--loops` tasks (default 200) starts a workflow of 3
//! sequential no-op activities (the engine benchmark's), awaits its result, and starts the next,
//! for `--minutes` (default 10; `--seconds` for shorter runs, `--smoke`
//! for a few seconds, which CI runs). It prints the workflows completed in
//! each minute and the totals.
//!
//! A stall detector watches progress: if no workflow completes for
//! `--stall-s` seconds (default 30), it prints what the store shows (open
//! runs, their pending activities and the state of each attempt) and what
//! the worker's stall watchdog reports stuck (it runs with half the
//! detector's threshold, reporting only), and exits with status 2 (with
//! `--linger-s`, it first looks again that much later). `--slots` lowers
//! the worker's activity slots (default 100) to put more pressure on
//! them.

use refrain::{Client, DurabilityMode, RunFilter, RunStatus, Store, StoreConfig};
use refrain_history::ActivityState;
use refrain_worker::{StallAction, Worker};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The engine benchmark's workload pieces: `Echo` and `Chain` (n
// sequential `Echo`s, uninstrumented), and its durability names.
#[path = "engine/common.rs"]
#[allow(dead_code)]
mod common;

use common::{parse_mode, Chain, Echo};

/// Activities per workflow, as in the engine benchmark's workloads.
const STEPS: u64 = 3;

struct Opts {
    run_for: Duration,
    loops: usize,
    slots: usize,
    stall_after: Duration,
    durability: DurabilityMode,
    dir: Option<PathBuf>,
    /// After a stall, look again this much later (does a deadline rescue
    /// it?).
    linger: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: soak [--smoke] [--minutes M] [--seconds S] [--loops N] [--slots N] \
         [--stall-s S] [--durability fsync|flush|none] [--dir DIR] [--linger-s S]"
    );
    std::process::exit(64)
}

fn parse_args() -> Opts {
    let mut opts = Opts {
        run_for: Duration::from_secs(600),
        loops: 200,
        slots: 100,
        stall_after: Duration::from_secs(30),
        durability: DurabilityMode::Fsync,
        dir: None,
        linger: Duration::ZERO,
    };
    let mut args = std::env::args().skip(1);
    let num =
        |v: Option<String>| -> u64 { v.and_then(|s| s.parse().ok()).unwrap_or_else(|| usage()) };
    while let Some(a) = args.next() {
        match a.as_str() {
            // cargo bench passes this to every bench binary.
            "--bench" => {}
            "--smoke" => {
                opts.run_for = Duration::from_secs(5);
                opts.loops = 20;
                opts.stall_after = Duration::from_secs(20);
            }
            "--minutes" => opts.run_for = Duration::from_secs(60 * num(args.next())),
            "--seconds" => opts.run_for = Duration::from_secs(num(args.next())),
            "--loops" => opts.loops = num(args.next()).max(1) as usize,
            "--slots" => opts.slots = num(args.next()).max(1) as usize,
            "--stall-s" => opts.stall_after = Duration::from_secs(num(args.next()).max(1)),
            "--durability" => {
                opts.durability = args
                    .next()
                    .as_deref()
                    .and_then(parse_mode)
                    .unwrap_or_else(|| usage())
            }
            "--linger-s" => opts.linger = Duration::from_secs(num(args.next())),
            "--dir" => opts.dir = Some(args.next().unwrap_or_else(|| usage()).into()),
            _ => usage(),
        }
    }
    opts
}

fn main() {
    let opts = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the runtime");
    let code = rt.block_on(soak(&opts));
    // Do not wait for a stalled engine to wind down.
    std::process::exit(code);
}

async fn soak(opts: &Opts) -> i32 {
    let dir = match &opts.dir {
        Some(d) => tempfile::Builder::new()
            .prefix("refrain-soak-")
            .tempdir_in(d),
        None => tempfile::Builder::new().prefix("refrain-soak-").tempdir(),
    }
    .expect("creating a scratch directory");
    let store = Store::open(
        dir.path(),
        StoreConfig {
            durability: opts.durability,
            ..StoreConfig::default()
        },
    )
    .expect("opening the store");
    let worker = Worker::builder(store.clone())
        .workflow::<Chain>()
        .activity(Echo)
        .max_concurrent_activities(opts.slots)
        // The soak's own detector decides; the watchdog reports what it
        // sees stuck.
        .stall_threshold(opts.stall_after / 2)
        .on_stall(StallAction::Report)
        .start();
    let client = Client::new(store.clone());
    eprintln!(
        "soak: {} loops, {} activity slots, {:?} durability, {} s, stall after {} s without progress",
        opts.loops,
        opts.slots,
        opts.durability,
        opts.run_for.as_secs(),
        opts.stall_after.as_secs()
    );

    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::with_capacity(opts.loops);
    for l in 0..opts.loops {
        let (client, done, failed, stop) =
            (client.clone(), done.clone(), failed.clone(), stop.clone());
        loops.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let n = i;
                i += 1;
                let outcome = match client.start::<Chain>(format!("soak-{l}-{n}"), STEPS).await {
                    Ok(h) => h.result().await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    // Chain adds the step numbers 0, 1, 2.
                    Ok(v) if v == STEPS * (STEPS - 1) / 2 => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(v) => {
                        eprintln!("soak: loop {l} (workflow {n}): wrong result {v}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("soak: loop {l}: workflow failed: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    let t0 = Instant::now();
    let mut last_count = 0;
    let mut last_progress = Instant::now();
    let mut minute_start = (Instant::now(), 0u64);
    let mut per_minute = Vec::new();
    let mut stalled = false;
    while t0.elapsed() < opts.run_for {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = done.load(Ordering::Relaxed);
        if now != last_count {
            last_count = now;
            last_progress = Instant::now();
        } else if last_progress.elapsed() >= opts.stall_after {
            stalled = true;
            break;
        }
        if minute_start.0.elapsed() >= Duration::from_secs(60) {
            let n = now - minute_start.1;
            per_minute.push(n);
            let health = worker.health();
            eprintln!(
                "soak: minute {}: {n} workflows ({:.0}/s), {now} in all; watchdog: {} stuck, {} \
                 stalls reported",
                per_minute.len(),
                n as f64 / minute_start.0.elapsed().as_secs_f64(),
                health.stuck.len(),
                health.stalls_reported
            );
            minute_start = (Instant::now(), now);
        }
    }
    let elapsed = t0.elapsed();
    let total = done.load(Ordering::Relaxed);
    if stalled {
        eprintln!(
            "soak: STALL: no workflow completed for {} s, after {total} workflows in {:.0} s",
            opts.stall_after.as_secs(),
            elapsed.as_secs_f64()
        );
        diagnose(&store, &worker);
        if !opts.linger.is_zero() {
            tokio::time::sleep(opts.linger).await;
            eprintln!(
                "soak: {} s later, {} workflows completed",
                opts.linger.as_secs(),
                done.load(Ordering::Relaxed)
            );
            diagnose(&store, &worker);
        }
        return 2;
    }
    stop.store(true, Ordering::Relaxed);
    let tail = done.load(Ordering::Relaxed) - minute_start.1;
    let tail_s = minute_start.0.elapsed().as_secs_f64();
    for l in loops {
        // Each loop finishes the workflow it is awaiting.
        if tokio::time::timeout(opts.stall_after, l).await.is_err() {
            eprintln!("soak: STALL: a loop did not finish its last workflow");
            diagnose(&store, &worker);
            return 2;
        }
    }
    let total = done.load(Ordering::Relaxed);
    let failures = failed.load(Ordering::Relaxed);
    println!("soak: per-minute workflows: {per_minute:?}");
    println!("soak: last partial minute: {tail} workflows in {tail_s:.1} s");
    println!(
        "soak: {total} workflows completed in {:.1} s ({:.0}/s), {failures} failed, no stall \
         (threshold {} s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        opts.stall_after.as_secs()
    );
    worker.shutdown(Duration::from_secs(1)).await;
    i32::from(failures > 0)
}

/// What the store and the worker show about a stalled engine.
fn diagnose(store: &Store, worker: &Worker) {
    let health = worker.health();
    eprintln!(
        "soak: watchdog: {} checks, {} stalls reported",
        health.checks, health.stalls_reported
    );
    for s in health.stuck.iter().take(10) {
        eprintln!("soak:   stuck: {s}");
    }
    if health.stuck.len() > 10 {
        eprintln!("soak:   ... and {} more", health.stuck.len() - 10);
    }
    let open = match store.list_runs(&RunFilter {
        status: Some(RunStatus::Running),
        ..RunFilter::default()
    }) {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("soak: cannot list open runs: {e}");
            return;
        }
    };
    let (mut scheduled, mut running, mut missing, mut none_pending) = (0, 0, 0, 0);
    let mut attempts = std::collections::BTreeMap::<u32, usize>::new();
    let mut inbox = 0;
    let mut samples = Vec::new();
    for r in &open {
        let Ok(Some(record)) = store.run_record(r.run) else {
            continue;
        };
        inbox += record.inbox_tail.saturating_sub(record.inbox_head);
        if record.pending_activities.is_empty() {
            none_pending += 1;
        }
        for cmd in &record.pending_activities {
            match store.activity_task(r.run, *cmd) {
                Ok(Some(task)) => {
                    *attempts.entry(task.attempt).or_default() += 1;
                    match task.state {
                        ActivityState::Scheduled { .. } => scheduled += 1,
                        ActivityState::Running { .. } => running += 1,
                    }
                    if samples.len() < 5 {
                        samples.push(format!(
                            "run {} cmd {} attempt {} {:?}",
                            r.run, cmd, task.attempt, task.state
                        ));
                    }
                }
                _ => missing += 1,
            }
        }
    }
    eprintln!(
        "soak: {} open runs; pending activities: {scheduled} scheduled, {running} claimed \
         (running), {missing} without a task record; attempts {attempts:?}; {none_pending} runs \
         with no pending activity; {inbox} unread inbox events",
        open.len()
    );
    for s in samples {
        eprintln!("soak:   {s}");
    }
}
