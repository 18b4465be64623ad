//! Shared pieces of the engine benchmark: options, the workflows and
//! activities every workload uses, statistics, and process/disk probes.

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, DurabilityMode, Store, StoreConfig,
    Workflow, WorkflowContext, WorkflowError,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Command-line settings shared by all workloads.
#[derive(Clone, Debug)]
pub struct Opts {
    pub durability: DurabilityMode,
    pub smoke: bool,
    pub reps: usize,
    /// Parent directory of the fresh stores (default: the system temp dir).
    pub base_dir: PathBuf,
    /// start-to-close of the held activities in `recover`.
    pub recover_timeout: Duration,
    /// sled's page cache, when not the store's default.
    pub cache_mib: Option<u64>,
    /// Whether workers start runs eagerly (their default); off to measure
    /// the ordinary start path.
    pub eager_start: bool,
}

impl Opts {
    pub fn mode_name(&self) -> &'static str {
        mode_name(self.durability)
    }

    /// A fresh, empty directory for one store.
    pub fn fresh_dir(&self, tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("refrain-bench-{tag}-"))
            .tempdir_in(&self.base_dir)
            .expect("creating a scratch directory for a store")
    }

    pub fn open(&self, dir: &Path) -> Store {
        let mut config = store_config(self.durability);
        if let Some(mib) = self.cache_mib {
            config.cache_capacity_bytes = mib << 20;
        }
        Store::open(dir, config).expect("opening the store")
    }
}

pub fn store_config(durability: DurabilityMode) -> StoreConfig {
    StoreConfig {
        durability,
        ..StoreConfig::default()
    }
}

pub fn mode_name(m: DurabilityMode) -> &'static str {
    match m {
        DurabilityMode::Fsync => "fsync",
        DurabilityMode::Flush => "flush",
        DurabilityMode::None => "none",
    }
}

pub fn parse_mode(s: &str) -> Option<DurabilityMode> {
    match s {
        "fsync" => Some(DurabilityMode::Fsync),
        "flush" => Some(DurabilityMode::Flush),
        "none" => Some(DurabilityMode::None),
        _ => None,
    }
}

// ----- the workload of the peers README: 3 sequential no-op activities -----

/// Returns its input: the no-op activity of every workload.
pub struct Echo;
#[async_trait]
impl Activity for Echo {
    const NAME: &'static str = "echo";
    type Input = u64;
    type Output = u64;
    async fn run(&self, _: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n)
    }
}

/// Step latencies (ms) measured inside [`Three`]: `std::time::Instant`
/// around each `ctx.activity(..).await`, the same place DBOS's benchmark
/// times `dbos::step(..).await`. Samples that began or ended during replay
/// are dropped (they would time the replay, not the step).
pub static STEP_MS: Mutex<Vec<f64>> = Mutex::new(Vec::new());

pub fn take_steps() -> Vec<f64> {
    std::mem::take(&mut *STEP_MS.lock().unwrap())
}

/// 3 sequential `Echo` activities; returns 3n + 3.
pub struct Three;
impl Workflow for Three {
    const NAME: &'static str = "three";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
        let mut total = 0;
        for k in 0..3u64 {
            // A real clock is fine here: it only measures, it decides nothing.
            let live_before = !ctx.is_replaying();
            let t = Instant::now();
            total += ctx.activity::<Echo>(n + k + 1).await?;
            if live_before && !ctx.is_replaying() {
                STEP_MS.lock().unwrap().push(ms(t.elapsed()));
            }
        }
        Ok(total)
    }
}

/// `n` sequential `Echo` activities, uninstrumented: builds the histories
/// of `replay` (3 + 3n events).
pub struct Chain;
impl Workflow for Chain {
    const NAME: &'static str = "chain";
    type Input = u64;
    type Output = u64;
    async fn run(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
        let mut total = 0;
        for k in 0..n {
            total += ctx.activity::<Echo>(k).await?;
        }
        Ok(total)
    }
}

// ----- statistics -----

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile (`p` in 0..=1) of unsorted samples, as the peer
/// benchmarks compute it.
pub fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((s.len() as f64 - 1.0) * p).round() as usize]
}

pub fn median(v: &[f64]) -> f64 {
    pct(v, 0.5)
}

/// Rounds to 4 decimals, so the JSON stays readable.
pub fn r4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

pub fn r4s(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| r4(x)).collect()
}

// ----- probes -----

/// Resident set size of this process (VmRSS), in bytes.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// (apparent bytes, allocated bytes) of every file under `dir`.
pub fn dir_size(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut apparent = 0;
    let mut allocated = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else {
                apparent += md.len();
                allocated += md.blocks() * 512;
            }
        }
    }
    (apparent, allocated)
}

// ----- results -----

/// One line of the printed table.
pub struct Row {
    pub workload: String,
    pub metric: String,
    pub value: String,
    pub durability: String,
}

/// What a workload hands back: table lines and its JSON section.
pub struct Outcome {
    pub rows: Vec<Row>,
    pub json: Value,
}

impl Outcome {
    pub fn new() -> Self {
        Outcome {
            rows: Vec::new(),
            json: json!({}),
        }
    }

    pub fn row(&mut self, workload: &str, metric: &str, value: String, durability: &str) {
        self.rows.push(Row {
            workload: workload.into(),
            metric: metric.into(),
            value,
            durability: durability.into(),
        });
    }
}

pub fn fmt_rate(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

pub fn fmt_ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0} ms")
    } else if x >= 1.0 {
        format!("{x:.2} ms")
    } else {
        format!("{:.0} µs", x * 1e3)
    }
}

pub fn fmt_bytes(x: f64) -> String {
    if x.abs() >= 10.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", x / 1024.0 / 1024.0)
    } else if x.abs() >= 10.0 * 1024.0 {
        format!("{:.1} KiB", x / 1024.0)
    } else {
        format!("{x:.0} B")
    }
}
