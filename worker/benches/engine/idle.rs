//! `idle`: many workflows parked on a signal with a durable timeout
//! (`ctx.wait_signal_for(1 h)`: one pending timer each). Measures the start
//! rate, resident memory and bytes on disk per waiting workflow once they
//! are out of the sticky cache (cache_size 64), both as the marginal cost
//! (from n/2 to n parked) and as total / n, then the time for all of them
//! to be signalled and finish.

use crate::common::*;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use refrain::{Client, RunId, Signal, Workflow, WorkflowContext, WorkflowError};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// First activations run (live, not replayed): the workflow reached its wait.
static PARKED: AtomicU64 = AtomicU64::new(0);

const CACHE: usize = 64;
const IN_FLIGHT: usize = 200;

#[derive(Serialize, Deserialize)]
struct Go;
impl Signal for Go {
    const NAME: &'static str = "go";
}

struct Park;
impl Workflow for Park {
    const NAME: &'static str = "park";
    type Input = u64;
    type Output = bool;
    async fn run(ctx: WorkflowContext, _: u64) -> Result<bool, WorkflowError> {
        if !ctx.is_replaying() {
            PARKED.fetch_add(1, Ordering::Relaxed);
        }
        let got = ctx.wait_signal_for::<Go>(Duration::from_secs(3600)).await?;
        Ok(got.is_some())
    }
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "idle: timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(opts: &Opts) -> Outcome {
    let n: u64 = if opts.smoke { 1000 } else { 100_000 };
    let mode = opts.mode_name();
    let dir = opts.fresh_dir("idle");
    let store = opts.open(dir.path());
    let worker = Worker::builder(store.clone())
        .workflow::<Park>()
        .cache_size(CACHE)
        .start();
    let client = Client::new(store.clone());
    PARKED.store(0, Ordering::Relaxed);
    store.durable().await.unwrap();
    let rss0 = rss_bytes();
    let disk0 = dir_size(dir.path());

    // Start them in two halves, IN_FLIGHT starts at a time (each
    // acknowledged durable), and measure after each half once every run is
    // parked and committed. Only the run ids are kept (8 bytes each), so
    // the RSS delta is the engine's, not the benchmark's handles.
    //
    // Per waiting workflow, the marginal cost (second half minus first,
    // over n/2) is what grows with the number of workflows; total / n also
    // carries costs bounded independently of n: sled's page cache (up to
    // about 1.5 × cache_capacity resident) and memory the allocator keeps
    // after the start burst.
    let half = n / 2;
    let mut runs: Vec<RunId> = Vec::with_capacity(n as usize);
    let mut started_s = 0.0;
    let mut parked_s = 0.0;
    let mut samples = Vec::new();
    for (from, to) in [(0, half), (half, n)] {
        let t0 = Instant::now();
        let more: Vec<RunId> = futures::stream::iter(from..to)
            .map(|i| {
                let client = client.clone();
                async move {
                    let h = client.start::<Park>(format!("park-{i}"), i).await.unwrap();
                    h.run_id()
                }
            })
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        started_s += t0.elapsed().as_secs_f64();
        wait_until("first activations", Duration::from_secs(1800), || {
            PARKED.load(Ordering::Relaxed) >= to
        })
        .await;
        // Committed, not just run: every run holds its TimerStarted and has
        // no work left.
        wait_until("commits", Duration::from_secs(600), || {
            more.iter().all(|&run| {
                store
                    .run_record(run)
                    .unwrap()
                    .is_some_and(|r| r.last_seq.0 >= 3 && !r.is_ready() && r.lease.is_none())
            })
        })
        .await;
        parked_s += t0.elapsed().as_secs_f64();
        runs.extend(more);
        store.durable().await.unwrap();
        // Let sled's background flusher settle so the files hold what it
        // wrote.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        samples.push((rss_bytes(), dir_size(dir.path())));
    }
    let (rss_half, disk_half) = samples[0];
    let (rss1, disk1) = samples[1];
    let rest = (n - half) as f64;
    let rss_per = (rss1 as f64 - rss_half as f64) / rest;
    let disk_per = (disk1.0 as f64 - disk_half.0 as f64) / rest;
    let alloc_per = (disk1.1 as f64 - disk_half.1 as f64) / rest;
    let rss_total_per = (rss1 as f64 - rss0 as f64) / n as f64;
    let disk_total_per = (disk1.0 as f64 - disk0.0 as f64) / n as f64;
    eprintln!(
        "  idle: {n} started in {started_s:.1} s, parked after {parked_s:.1} s; per wf: RSS +{} marginal (+{} total/n), disk +{} marginal (+{} total/n)",
        fmt_bytes(rss_per),
        fmt_bytes(rss_total_per),
        fmt_bytes(disk_per),
        fmt_bytes(disk_total_per),
    );

    // Wake: signal every one of them (IN_FLIGHT at a time) while waiting for
    // every result.
    let t1 = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        handles.push(client.handle::<Park>(format!("park-{i}")).await.unwrap());
    }
    let results: FuturesUnordered<_> = handles
        .into_iter()
        .map(|h| async move { h.result().await.unwrap() })
        .collect();
    let waiter = tokio::spawn(async move {
        let woken = results.filter(|ok| std::future::ready(*ok)).count().await;
        (woken, Instant::now())
    });
    futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move { client.signal(format!("park-{i}"), &Go).await.unwrap() }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    let signalled_s = t1.elapsed().as_secs_f64();
    let (woken, done_at) = waiter.await.unwrap();
    assert_eq!(woken as u64, n, "every workflow saw its signal");
    let wake_s = (done_at - t1).as_secs_f64();
    worker.shutdown(Duration::from_secs(1)).await;

    let sled_mib = store.config().cache_capacity_bytes >> 20;
    let mut out = Outcome::new();
    out.row(
        "idle",
        &format!("start rate ({n} wf, {IN_FLIGHT} in flight)"),
        format!("{} wf/s", fmt_rate(n as f64 / started_s)),
        mode,
    );
    out.row(
        "idle",
        "time until all parked (timer committed)",
        format!("{parked_s:.1} s"),
        mode,
    );
    out.row(
        "idle",
        &format!("RSS per waiting wf, marginal {half}→{n} (sled cache {sled_mib} MiB)"),
        fmt_bytes(rss_per),
        mode,
    );
    out.row(
        "idle",
        &format!("RSS per waiting wf, total / n (incl. sled cache {sled_mib} MiB)"),
        fmt_bytes(rss_total_per),
        mode,
    );
    out.row(
        "idle",
        &format!("disk per waiting wf, marginal {half}→{n} (apparent)"),
        fmt_bytes(disk_per),
        mode,
    );
    out.row(
        "idle",
        "disk per waiting wf, marginal (allocated)",
        fmt_bytes(alloc_per),
        mode,
    );
    out.row(
        "idle",
        "disk per waiting wf, total / n (apparent)",
        fmt_bytes(disk_total_per),
        mode,
    );
    out.row(
        "idle",
        "signal all + all finished",
        format!("{wake_s:.1} s ({} wf/s)", fmt_rate(n as f64 / wake_s)),
        mode,
    );
    out.json = json!({
        "durability": mode,
        "workflows": n,
        "wait": "ctx.wait_signal_for::<Go>(1 h): one pending durable timer + a signal wait",
        "cache_size": CACHE,
        "start_in_flight": IN_FLIGHT,
        "start_seconds": r4(started_s),
        "start_wf_per_s": r4(n as f64 / started_s),
        "parked_seconds": r4(parked_s),
        "rss_before_bytes": rss0,
        "rss_half_parked_bytes": rss_half,
        "rss_parked_bytes": rss1,
        "rss_per_wf_bytes": r4(rss_per),
        "rss_total_per_wf_bytes": r4(rss_total_per),
        "disk_before_bytes": disk0.0,
        "disk_half_parked_bytes": disk_half.0,
        "disk_parked_bytes": disk1.0,
        "disk_allocated_before_bytes": disk0.1,
        "disk_allocated_parked_bytes": disk1.1,
        "disk_per_wf_bytes": r4(disk_per),
        "disk_allocated_per_wf_bytes": r4(alloc_per),
        "disk_total_per_wf_bytes": r4(disk_total_per),
        "per_wf_method": "marginal: (value with n parked - value with n/2 parked) / (n/2); total: (value with n parked - value before the first start) / n",
        "signal_all_seconds": r4(signalled_s),
        "wake_all_finished_seconds": r4(wake_s),
        "wake_wf_per_s": r4(n as f64 / wake_s),
        "sled_cache_capacity_bytes": store.config().cache_capacity_bytes,
        "sled_cache_capacity_per_wf_bytes": r4(store.config().cache_capacity_bytes as f64 / n as f64),
        "rss_note": "VmRSS of a fresh process; the benchmark keeps only 8 bytes per workflow (its run id); total/n includes sled's page cache (bounded by cache_capacity_bytes) and allocator retention, the marginal figure only what grows with n",
    });
    out
}
