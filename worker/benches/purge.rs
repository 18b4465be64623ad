//! Purge benchmark: what a purge of many closed runs costs, and what it
//! does to the store's size on disk.
//!
//! ```text
//! cargo bench -p refrain-worker --bench purge -- [--smoke] [--runs N]
//!     [--in-flight N] [--durability fsync|flush|none] [--dir DIR]
//! ```
//!
//! 1. Runs `--runs` workflows (default 100,000; `--smoke`: 2,000, which CI
//!    runs) of 3 sequential no-op activities (the engine benchmark's
//!    `chain`, 12 events each) through a worker to completion, `--in-flight`
//!    at a time (default 200).
//! 2. Purges every closed run (retention zero) through
//!    `HistoryStore::purge_closed`, batch after batch, timed.
//! 3. Runs as many workflows again (under new ids), to see whether the
//!    space the purge freed is reused.
//!
//! It prints the store directory's size (apparent and allocated) after
//! each step and after reopening the store, the purge's time and rate,
//! and exits non-zero if a workflow fails, a run is left, or a purged run
//! can still be read. No timing assertion.

use refrain::{Client, DurabilityMode, RetentionPolicy, RunFilter, Store};
use refrain_history::{HistoryStore, PurgeRequest, Timestamp};
use refrain_worker::Worker;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "engine/common.rs"]
#[allow(dead_code)]
mod common;

use common::{dir_size, parse_mode, store_config, Chain, Echo};

/// Activities per workflow, as in the engine benchmark's workloads.
const STEPS: u64 = 3;

struct Opts {
    runs: u64,
    in_flight: usize,
    durability: DurabilityMode,
    dir: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: purge [--smoke] [--runs N] [--in-flight N] [--durability fsync|flush|none] \
         [--dir DIR]"
    );
    std::process::exit(2)
}

fn parse() -> Opts {
    let mut o = Opts {
        runs: 100_000,
        in_flight: 200,
        durability: DurabilityMode::Fsync,
        dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--smoke" => o.runs = 2_000,
            "--runs" => o.runs = value().parse().unwrap_or_else(|_| usage()),
            "--in-flight" => o.in_flight = value().parse().unwrap_or_else(|_| usage()),
            "--durability" => o.durability = parse_mode(&value()).unwrap_or_else(|| usage()),
            "--dir" => o.dir = Some(PathBuf::from(value())),
            // cargo bench passes --bench to every harness-less bench.
            "--bench" => {}
            _ => usage(),
        }
    }
    o.in_flight = o.in_flight.max(1);
    o
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn show(step: &str, dir: &Path) -> (u64, u64) {
    let (apparent, allocated) = dir_size(dir);
    println!(
        "{step:<44} apparent {:>11}  allocated {:>11}",
        mib(apparent),
        mib(allocated)
    );
    (apparent, allocated)
}

/// Runs `n` chains under ids `{tag}-{i}` to completion, `in_flight` at a
/// time.
async fn run_workflows(client: &Client, tag: &str, n: u64, in_flight: usize) {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (client, next, tag) = (client.clone(), next.clone(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let handle = client
                    .start::<Chain>(format!("{tag}-{i}"), STEPS)
                    .await
                    .expect("start");
                let total = handle.result().await.expect("workflow result");
                assert_eq!(total, STEPS * (STEPS - 1) / 2);
            }
        }));
    }
    for t in tasks {
        t.await.expect("a workload task panicked");
    }
    println!(
        "ran {n} workflows ({tag}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Purges every closed run; returns how many went and how long it took.
async fn purge_all(store: &dyn HistoryStore) -> (usize, usize, Duration) {
    let started = Instant::now();
    let mut req = PurgeRequest::new(RetentionPolicy::keep_for(Duration::ZERO), Timestamp::now());
    let (mut purged, mut batches) = (0, 0);
    loop {
        let batch = store.purge_closed(req.clone()).await.expect("purge");
        purged += batch.runs.len();
        batches += 1;
        match batch.next {
            Some(next) => req.after = Some(next),
            None => return (purged, batches, started.elapsed()),
        }
    }
}

fn open(dir: &Path, durability: DurabilityMode) -> Store {
    Store::open(dir, store_config(durability)).expect("opening the store")
}

fn main() {
    let opts = parse();
    let scratch = tempfile::tempdir().expect("scratch directory");
    let dir = opts
        .dir
        .clone()
        .unwrap_or_else(|| scratch.path().join("store"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = open(&dir, opts.durability);
        let worker = Worker::builder(store.clone())
            .workflow::<Chain>()
            .activity(Echo)
            .start();
        let client = worker.client();
        println!(
            "purge benchmark: {} runs of {STEPS} activities, durability {:?}",
            opts.runs, opts.durability
        );
        store.durable().await.expect("durable");
        let fresh = show("a new store", &dir);
        run_workflows(&client, "first", opts.runs, opts.in_flight).await;
        let before = show("before the purge", &dir);

        let (purged, batches, took) = purge_all(&store).await;
        assert_eq!(purged as u64, opts.runs, "not every closed run was purged");
        println!(
            "purged {purged} runs in {batches} batches in {:.2} s ({:.0} runs/s)",
            took.as_secs_f64(),
            purged as f64 / took.as_secs_f64().max(1e-9)
        );
        let left = client.list(&RunFilter::default()).await.expect("list");
        assert!(left.is_empty(), "{} runs left after the purge", left.len());
        assert!(
            client.describe("first-0").await.is_err(),
            "a purged run can still be read"
        );
        let after = show("after the purge", &dir);

        run_workflows(&client, "second", opts.runs, opts.in_flight).await;
        let again = show("after as many new runs again", &dir);
        worker.shutdown(Duration::from_secs(10)).await;
        drop(client);
        drop(store);

        let reopened = open(&dir, opts.durability);
        let runs = reopened.list_runs(&RunFilter::default()).expect("list");
        assert_eq!(runs.len() as u64, opts.runs);
        drop(reopened);
        show("reopened", &dir);
        println!(
            "the first {n} runs grew the store by {}; the purge gave back {}; \
             {n} new runs after it grew the store by {}",
            mib(before.0.saturating_sub(fresh.0)),
            mib(before.0.saturating_sub(after.0)),
            mib(again.0.saturating_sub(after.0)),
            n = opts.runs,
        );
    });
}
