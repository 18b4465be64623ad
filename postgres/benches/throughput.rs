//! Workflows per second on the PostgreSQL store: the workload of
//! `worker/benches/peers.sh` (1,000 workflows of 3 sequential no-op
//! activities, 20 warm-up workflows first), one at a time (`seq`) and 20
//! in flight (`c20`), a fresh schema for each.
//!
//! Runs on the server `REFRAIN_POSTGRES_URL` names, or else on a
//! throwaway cluster it starts with fsync on (and `synchronous_commit`
//! on, as every connection of the store sets it), so the figure includes
//! a durable commit per transaction.
//!
//! Usage: `cargo bench -p refrain-postgres --bench throughput [-- --smoke]
//! [--n N]`. `--smoke`: 30 workflows each, to check that it runs.

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, StoreConfig, Workflow, WorkflowContext,
    WorkflowError,
};
use refrain_worker::Worker;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WARMUP: u64 = 20;

/// Returns its input.
struct Echo;

#[async_trait]
impl Activity for Echo {
    const NAME: &'static str = "echo";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n)
    }
}

/// 3 sequential `Echo` activities; returns 3n + 6.
struct Three;

impl Workflow for Three {
    const NAME: &'static str = "three";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
        let mut total = 0;
        for k in 0..3u64 {
            total += ctx.activity::<Echo>(n + k + 1).await?;
        }
        Ok(total)
    }
}

fn server() -> String {
    if let Ok(url) = std::env::var("REFRAIN_POSTGRES_URL") {
        return url;
    }
    let Some(bin) = refrain_postgres::testing::find_bin() else {
        eprintln!("no PostgreSQL: set REFRAIN_POSTGRES_URL or install postgresql");
        std::process::exit(1);
    };
    match refrain_postgres::testing::start_cluster(&bin, true) {
        Ok(cluster) => cluster.url,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

/// Workflows per second of `n` workflows, `concurrency` in flight.
async fn run(url: &str, schema: &str, n: u64, concurrency: usize) -> f64 {
    let options = refrain_postgres::Options {
        schema: schema.to_owned(),
        ..refrain_postgres::Options::default()
    };
    let (url_owned, opts) = (url.to_owned(), options.clone());
    let store = tokio::task::spawn_blocking(move || {
        refrain_postgres::open_with(&url_owned, &opts, StoreConfig::default())
    })
    .await
    .expect("join")
    .unwrap_or_else(|e| panic!("open: {e}"));
    let worker = Worker::builder(store.clone())
        .workflow::<Three>()
        .activity(Echo)
        .max_concurrent_activities(concurrency.max(100))
        .start();
    let client = worker.client();
    for i in 0..WARMUP {
        let h = client
            .start::<Three>(format!("warm-{i}"), 1_000_000 + i)
            .await
            .expect("start");
        h.result().await.expect("result");
    }
    let t0 = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let h = client
                .start::<Three>(format!("wf-{i}"), i)
                .await
                .expect("start");
            assert_eq!(h.result().await.expect("result"), 3 * i + 6);
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.expect("workflow task");
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    worker.shutdown(Duration::from_secs(1)).await;
    rate
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let n = args
        .iter()
        .position(|a| a == "--n")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("--n takes a number"))
        .unwrap_or(if smoke { 30 } else { 1000 });
    // A hang fails the run rather than holding it up forever.
    let limit = Duration::from_secs(if smoke { 300 } else { 3600 });
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("still running after {limit:?}: giving up");
        std::process::exit(1);
    });
    let url = server();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stamp = std::process::id();
    for (name, concurrency) in [("seq", 1), ("c20", 20)] {
        let schema = format!("bench_{name}_{stamp}");
        let rate = runtime.block_on(run(&url, &schema, n, concurrency));
        println!(
            "{name}: {n} workflows x 3 activities, {concurrency} in flight: {rate:.0} workflows/s"
        );
    }
}
