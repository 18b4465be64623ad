//! `replay`: cold replay speed of the pure replay core. Histories are made
//! by running `Chain` workflows for real through a worker, read back from
//! the store, then replayed on fresh `WorkflowMachine`s (`new` + `replay`,
//! no store, no activity) — what a worker does on a sticky-cache miss,
//! minus the history read.

use crate::common::*;
use futures::StreamExt;
use refrain::replay::{WorkflowMachine, WorkflowType};
use refrain::{Client, Event, RunId};
use refrain_worker::Worker;
use serde_json::json;
use std::time::{Duration, Instant};

/// Activities per workflow so a history holds ≈ 100 events (3 + 3n).
const SMALL_ACTIVITIES: u64 = 33;
/// Activities of the long history (3 + 3n ≈ 10,000 events).
const LONG_ACTIVITIES: u64 = 3332;

pub async fn run(opts: &Opts) -> Outcome {
    let (many, long_acts) = if opts.smoke {
        (20, 333)
    } else {
        (1000, LONG_ACTIVITIES)
    };
    let reps = if opts.smoke { 1 } else { opts.reps.max(1) };
    let t = Instant::now();
    let (small, long) = build(opts, many, long_acts).await;
    let build_s = t.elapsed().as_secs_f64();
    let small_events: usize = small.iter().map(|(_, h)| h.len()).sum();
    eprintln!(
        "  replay: built {} histories ({} events) + one of {} events in {build_s:.1} s",
        small.len(),
        small_events,
        long[0].1.len()
    );
    let wt = WorkflowType::<Chain>::new();
    let mut small_rates = Vec::new();
    let mut small_per_hist = Vec::new();
    let mut long_rates = Vec::new();
    let mut long_ms = Vec::new();
    for _ in 0..reps {
        let (secs, per) = time_replays(&wt, &small);
        small_rates.push(small_events as f64 / secs);
        small_per_hist.push(per);
        let (secs, _) = time_replays(&wt, &long);
        long_rates.push(long[0].1.len() as f64 / secs);
        long_ms.push(secs * 1e3);
    }
    let mut out = Outcome::new();
    let note = "n/a (CPU only)";
    let avg_len = small_events as f64 / small.len() as f64;
    out.row(
        "replay",
        &format!("events/s, {} × {avg_len:.0}-event histories", small.len()),
        fmt_rate(median(&small_rates)),
        note,
    );
    let per_hist: Vec<f64> = small_per_hist.iter().map(|v| pct(v, 0.5)).collect();
    out.row(
        "replay",
        &format!("per {avg_len:.0}-event history p50"),
        fmt_ms(median(&per_hist)),
        note,
    );
    out.row(
        "replay",
        &format!("events/s, one {}-event history", long[0].1.len()),
        fmt_rate(median(&long_rates)),
        note,
    );
    out.json = json!({
        "durability": format!("n/a (pure CPU; histories built in mode {})", opts.mode_name()),
        "what": "WorkflowMachine::new + replay on fresh machines over histories read from the store beforehand (read time excluded)",
        "histories": small.len(),
        "events_total": small_events,
        "events_per_history_avg": r4(avg_len),
        "long_history_events": long[0].1.len(),
        "build_seconds": r4(build_s),
        "median": {
            "events_per_s_small": r4(median(&small_rates)),
            "per_history_p50_ms": r4(median(&per_hist)),
            "events_per_s_long": r4(median(&long_rates)),
            "long_history_ms": r4(median(&long_ms)),
        },
        "reps": {
            "events_per_s_small": r4s(&small_rates),
            "events_per_s_long": r4s(&long_rates),
            "long_history_ms": r4s(&long_ms),
            "per_history_p50_ms": r4s(&per_hist),
        },
    });
    out
}

/// Replays every history on a fresh machine; total seconds and per-history
/// milliseconds.
fn time_replays(wt: &WorkflowType<Chain>, hs: &[(RunId, Vec<Event>)]) -> (f64, Vec<f64>) {
    let mut per = Vec::with_capacity(hs.len());
    let t0 = Instant::now();
    for (run, h) in hs {
        let t = Instant::now();
        let mut m = WorkflowMachine::new(wt, *run, &h[0]).expect("machine");
        m.replay(&h[1..]).expect("replay");
        assert!(m.is_closed());
        per.push(ms(t.elapsed()));
    }
    (t0.elapsed().as_secs_f64(), per)
}

type Histories = Vec<(RunId, Vec<Event>)>;

async fn build(opts: &Opts, many: usize, long_acts: u64) -> (Histories, Histories) {
    let dir = opts.fresh_dir("replay");
    let store = opts.open(dir.path());
    let worker = Worker::builder(store.clone())
        .workflow::<Chain>()
        .activity(Echo)
        .max_concurrent_activities(200)
        .start();
    let client = Client::new(store.clone());
    let long = client.start::<Chain>("long", long_acts).await.unwrap();
    let runs: Vec<RunId> = futures::stream::iter(0..many)
        .map(|i| {
            let client = client.clone();
            async move {
                let h = client
                    .start::<Chain>(format!("h-{i}"), SMALL_ACTIVITIES)
                    .await
                    .unwrap();
                h.result().await.unwrap();
                h.run_id()
            }
        })
        .buffered(200)
        .collect()
        .await;
    long.result().await.unwrap();
    let small = runs
        .into_iter()
        .map(|r| (r, store.read_history(r).unwrap()))
        .collect();
    let long = vec![(long.run_id(), store.read_history(long.run_id()).unwrap())];
    worker.shutdown(Duration::from_secs(1)).await;
    (small, long)
}
