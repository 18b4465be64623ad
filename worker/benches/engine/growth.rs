//! `history-growth`: does a step get slower as the history grows? One
//! workflow loops `Stamp` activities; each records `Instant::now()` when
//! it starts. The latency of activity i is start(i) − start(i−1): one full
//! step cycle (activity i−1 reports its result, the run is dispatched, its
//! activation runs on the cached instance and commits, activity i is
//! claimed and started). `ctx.now()` cannot measure this: it is the
//! recorded activation time, and does not move within replay.
//!
//! Activity i starts when the history holds 3 + 3i events, so the figures
//! at ≈10, 100, 1,000 and 3,000 prior events are the medians of activities
//! i = 2, 32, 332, 999 (± 2 neighbours) over all runs.

use crate::common::*;
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, Workflow, WorkflowContext,
    WorkflowError,
};
use refrain_worker::Worker;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// (run tag, activity index, start instant).
static STAMPS: Mutex<Vec<(u64, u64, Instant)>> = Mutex::new(Vec::new());

struct Stamp;
#[async_trait]
impl Activity for Stamp {
    const NAME: &'static str = "stamp";
    type Input = (u64, u64);
    type Output = u64;
    async fn run(&self, _: ActivityContext, (tag, i): (u64, u64)) -> Result<u64, ActivityError> {
        STAMPS.lock().unwrap().push((tag, i, Instant::now()));
        Ok(i)
    }
}

struct Grow;
impl Workflow for Grow {
    const NAME: &'static str = "grow";
    /// (run tag, activities)
    type Input = (u64, u64);
    type Output = u64;
    async fn run(ctx: WorkflowContext, (tag, n): (u64, u64)) -> Result<u64, WorkflowError> {
        let mut total = 0;
        for i in 0..n {
            total += ctx.activity::<Stamp>((tag, i)).await?;
        }
        Ok(total)
    }
}

const POINTS: [u64; 4] = [10, 100, 1000, 3000];

pub async fn run(opts: &Opts) -> Outcome {
    let (runs, n) = if opts.smoke { (1, 340) } else { (5, 1000) };
    let mut out = Outcome::new();
    let mut sections = serde_json::Map::new();
    for (label, cache) in [
        ("sticky cache (default 1000)", None),
        ("cache_size 0 (replay every activation)", Some(0)),
    ] {
        // Replaying every activation is quadratic in the history: one run.
        let runs = if cache.is_some() { 1 } else { runs };
        let (lat, secs) = measure(opts, runs, n, cache).await;
        let mut points = Vec::new();
        for &k in POINTS.iter().filter(|&&k| 3 + 3 * (n - 1) >= k) {
            let c = ((k as f64 - 3.0) / 3.0).round() as u64;
            let samples: Vec<f64> = lat
                .iter()
                .flat_map(|run| {
                    (c.saturating_sub(2).max(1)..=(c + 2).min(n - 1)).map(|i| run[i as usize])
                })
                .collect();
            let p50 = pct(&samples, 0.5);
            let metric = format!("{label}: step @≈{k} events, p50");
            out.row("history-growth", &metric, fmt_ms(p50), opts.mode_name());
            points.push(json!({
                "prior_events": k, "activity_index_center": c, "samples": samples.len(),
                "p50_ms": r4(p50), "p90_ms": r4(pct(&samples, 0.9)), "max_ms": r4(pct(&samples, 1.0)),
            }));
        }
        let raw: Vec<Value> = lat.iter().map(|r| json!(r4s(r))).collect();
        sections.insert(
            if cache.is_none() { "sticky".into() } else { "cache0".into() },
            json!({"label": label, "runs": runs, "points": points, "seconds": r4(secs), "step_ms_by_run": raw}),
        );
    }
    out.json = json!({
        "durability": opts.mode_name(),
        "activities_per_run": n,
        "definition": "latency of activity i = start(i) - start(i-1), Instant taken at the start of each activity; activity i starts with 3+3i events in history; each point = median over i = c-2..=c+2 of all runs",
        "variants": sections,
    });
    out
}

/// Per run, the latency (ms) of each activity i ≥ 1 (index 0 unused).
async fn measure(opts: &Opts, runs: u64, n: u64, cache: Option<usize>) -> (Vec<Vec<f64>>, f64) {
    let dir = opts.fresh_dir("growth");
    let store = opts.open(dir.path());
    let mut b = Worker::builder(store.clone())
        .workflow::<Grow>()
        .activity(Stamp);
    if let Some(c) = cache {
        b = b.cache_size(c);
    }
    let worker = b.start();
    let client = Client::new(store.clone());
    STAMPS.lock().unwrap().clear();
    let t = Instant::now();
    for tag in 0..runs {
        let h = client
            .start::<Grow>(format!("grow-{tag}"), (tag, n))
            .await
            .unwrap();
        h.result().await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    worker.shutdown(Duration::from_secs(1)).await;
    let stamps = std::mem::take(&mut *STAMPS.lock().unwrap());
    let mut out = Vec::new();
    for tag in 0..runs {
        let mut starts: Vec<Option<Instant>> = vec![None; n as usize];
        for &(t, i, at) in &stamps {
            // The first attempt's start (no retries are expected).
            if t == tag && starts[i as usize].is_none() {
                starts[i as usize] = Some(at);
            }
        }
        let mut lat = vec![f64::NAN; n as usize];
        for i in 1..n as usize {
            if let (Some(a), Some(b)) = (starts[i - 1], starts[i]) {
                lat[i] = ms(b - a);
            }
        }
        out.push(lat);
    }
    (out, secs)
}
