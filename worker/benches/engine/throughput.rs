//! `seq`, `c20`, `c200`: the peers README workload. N workflows of 3
//! sequential no-op activities; 20 warm-up workflows, a fresh store per
//! repetition, medians over the repetitions.

use crate::common::*;
use refrain_worker::Worker;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WARMUP: u64 = 20;

/// One repetition's figures.
struct Rep {
    wf_per_s: f64,
    wf_ms: Vec<f64>,
    /// `client.start` alone: the start transaction and its durable ack.
    start_ms: Vec<f64>,
    step_ms: Vec<f64>,
}

/// `concurrency` 1 is `seq` (each started and awaited before the next).
pub async fn run(opts: &Opts, name: &str, concurrency: usize) -> Outcome {
    let n: u64 = if opts.smoke {
        60 * concurrency.min(4) as u64
    } else {
        1000
    };
    let reps = if opts.smoke { 1 } else { opts.reps };
    let mut results = Vec::new();
    for rep in 0..reps {
        let r = one_rep(opts, name, n, concurrency).await;
        eprintln!(
            "  {name} rep {rep}: {:.0} wf/s, p50 {:.3} ms, p99 {:.3} ms, step p50 {:.3} ms",
            r.wf_per_s,
            pct(&r.wf_ms, 0.5),
            pct(&r.wf_ms, 0.99),
            pct(&r.step_ms, 0.5)
        );
        results.push(r);
    }
    summarize(opts, name, n, concurrency, &results)
}

async fn one_rep(opts: &Opts, name: &str, n: u64, concurrency: usize) -> Rep {
    let dir = opts.fresh_dir(name);
    let store = opts.open(dir.path());
    let worker = Worker::builder(store.clone())
        .workflow::<Three>()
        .activity(Echo)
        // The default 100 slots would cap c200 below its concurrency.
        .max_concurrent_activities(concurrency.max(100))
        .eager_start(opts.eager_start)
        .start();
    // The worker's client: its starts carry their first activation unless
    // `--no-eager-start` turned that off.
    let client = worker.client();
    for i in 0..WARMUP {
        let h = client
            .start::<Three>(format!("warm-{i}"), 1_000_000 + i)
            .await
            .unwrap();
        h.result().await.unwrap();
    }
    take_steps();
    let t0 = Instant::now();
    let mut wf_ms = Vec::with_capacity(n as usize);
    let mut start_ms = Vec::with_capacity(n as usize);
    if concurrency <= 1 {
        for i in 0..n {
            let s = Instant::now();
            let h = client.start::<Three>(format!("wf-{i}"), i).await.unwrap();
            start_ms.push(ms(s.elapsed()));
            assert_eq!(h.result().await.unwrap(), 3 * i + 6);
            wf_ms.push(ms(s.elapsed()));
        }
    } else {
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut tasks = Vec::with_capacity(n as usize);
        for i in 0..n {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let s = Instant::now();
                let h = client.start::<Three>(format!("wf-{i}"), i).await.unwrap();
                let started = ms(s.elapsed());
                assert_eq!(h.result().await.unwrap(), 3 * i + 6);
                drop(permit);
                (ms(s.elapsed()), started)
            }));
        }
        for t in tasks {
            let (wf, start) = t.await.unwrap();
            wf_ms.push(wf);
            start_ms.push(start);
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let step_ms = take_steps();
    worker.shutdown(Duration::from_secs(1)).await;
    drop(client);
    drop(store);
    Rep {
        wf_per_s: n as f64 / elapsed,
        wf_ms,
        start_ms,
        step_ms,
    }
}

fn summarize(opts: &Opts, name: &str, n: u64, concurrency: usize, reps: &[Rep]) -> Outcome {
    let mode = opts.mode_name();
    let med = |f: &dyn Fn(&Rep) -> f64| median(&reps.iter().map(f).collect::<Vec<_>>());
    let wf_per_s = med(&|r| r.wf_per_s);
    let p50 = med(&|r| pct(&r.wf_ms, 0.5));
    let p99 = med(&|r| pct(&r.wf_ms, 0.99));
    let step50 = med(&|r| pct(&r.step_ms, 0.5));
    let step99 = med(&|r| pct(&r.step_ms, 0.99));
    let start50 = med(&|r| pct(&r.start_ms, 0.5));
    let third50 = p50 / 3.0;
    let mut out = Outcome::new();
    let nreps = reps.len();
    out.row(
        name,
        &format!("workflows/s (median of {nreps})"),
        fmt_rate(wf_per_s),
        mode,
    );
    out.row(name, "workflow p50 (start → result)", fmt_ms(p50), mode);
    out.row(name, "workflow p99 (start → result)", fmt_ms(p99), mode);
    out.row(
        name,
        "start() ack p50 (tx + durable)",
        fmt_ms(start50),
        mode,
    );
    out.row(
        name,
        "step p50 (around activity await)",
        fmt_ms(step50),
        mode,
    );
    out.row(
        name,
        "step p99 (around activity await)",
        fmt_ms(step99),
        mode,
    );
    if concurrency <= 1 {
        out.row(name, "workflow p50 / 3", fmt_ms(third50), mode);
    }
    let raw: Vec<Value> = reps
        .iter()
        .map(|r| {
            json!({
                "wf_per_s": r4(r.wf_per_s),
                "wf_p50_ms": r4(pct(&r.wf_ms, 0.5)),
                "wf_p99_ms": r4(pct(&r.wf_ms, 0.99)),
                "step_p50_ms": r4(pct(&r.step_ms, 0.5)),
                "step_p99_ms": r4(pct(&r.step_ms, 0.99)),
                "start_p50_ms": r4(pct(&r.start_ms, 0.5)),
                "wf_latency_ms": r4s(&r.wf_ms),
                "start_latency_ms": r4s(&r.start_ms),
                "step_latency_ms": r4s(&r.step_ms),
            })
        })
        .collect();
    out.json = json!({
        "durability": mode,
        "workflows": n,
        "max_in_flight": concurrency,
        "warmup_workflows": WARMUP,
        "activities_per_workflow": 3,
        "step_definition": "std::time::Instant around each ctx.activity(..).await inside the workflow body (as DBOS times dbos::step); samples that began or ended in replay dropped",
        "median": {
            "wf_per_s": r4(wf_per_s),
            "wf_p50_ms": r4(p50),
            "wf_p99_ms": r4(p99),
            "step_p50_ms": r4(step50),
            "step_p99_ms": r4(step99),
            "wf_p50_div3_ms": r4(third50),
            "start_p50_ms": r4(start50),
        },
        "reps": raw,
    });
    out
}
