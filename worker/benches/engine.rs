//! Refrain's engine benchmark, on the embedded store.
//!
//! ```text
//! cargo bench -p refrain-worker --bench engine [-- [WORKLOAD...] [--smoke]
//!     [--durability fsync|flush|none] [--json FILE] [--reps N] [--dir DIR]
//!     [--recover-timeout-ms MS] [--timeout-s S] [--cache-mib N]
//!     [--no-eager-start]]
//! ```
//!
//! Workloads (all by default): `seq`, `c20`, `c200` (the workload of
//! `shared/bench/peers/README.md`: workflows of 3 sequential no-op
//! activities), `replay`, `history-growth`, `recover`, `idle`. `--smoke`
//! runs a tiny configuration of each in seconds (CI). Prints a table and
//! writes every raw figure as JSON (default
//! `target/refrain-bench/engine-MODE.json`). Every figure states its
//! durability mode (default fsync: power-loss safe, group commit).
//! `--cache-mib` sets sled's page cache; `--no-eager-start` makes `seq`,
//! `c20` and `c200` start runs the ordinary way (one transaction for the
//! start, another for the first activation) to measure what eager starts
//! save.
//!
//! Each workload runs in a child process (this binary re-executed with the
//! hidden `__workload` subcommand) in its own scratch directory: a hung
//! workload is killed after `--timeout-s` and reported as failed, and the
//! others still run; the exit status is 1 if any failed.

#[path = "engine/common.rs"]
mod common;
#[path = "engine/growth.rs"]
mod growth;
#[path = "engine/idle.rs"]
mod idle;
#[path = "engine/recover.rs"]
mod recover;
#[path = "engine/replay.rs"]
mod replay;
#[path = "engine/throughput.rs"]
mod throughput;

use common::{mode_name, parse_mode, Opts, Outcome, Row};
use refrain::DurabilityMode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WORKLOADS: [&str; 7] = [
    "seq",
    "c20",
    "c200",
    "replay",
    "history-growth",
    "recover",
    "idle",
];

fn usage() -> ! {
    eprintln!(
        "usage: engine [WORKLOAD...] [--smoke] [--durability fsync|flush|none] [--json FILE] \
         [--reps N] [--dir DIR] [--recover-timeout-ms MS] [--timeout-s S] [--cache-mib N] [--no-eager-start]\nworkloads: {}",
        WORKLOADS.join(" ")
    );
    std::process::exit(2)
}

/// Hidden subcommand: run one workload in this process and print its
/// outcome as one `OUTCOME {json}` line.
const WORKLOAD_CHILD: &str = "__workload";

struct Cli {
    opts: Opts,
    json_path: Option<PathBuf>,
    selected: Vec<String>,
    timeout: Option<Duration>,
}

fn parse(args: &[String]) -> Cli {
    let mut opts = Opts {
        durability: DurabilityMode::Fsync,
        smoke: false,
        reps: 3,
        base_dir: std::env::temp_dir(),
        recover_timeout: Duration::from_millis(5000),
        cache_mib: None,
        eager_start: true,
    };
    let mut json_path = None;
    let mut selected: Vec<String> = Vec::new();
    let mut timeout = None;
    let mut timeout_set = false;
    let mut it = args.iter().cloned();
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            // `cargo bench` appends it to every harness-less bench.
            "--bench" => {}
            "--smoke" => opts.smoke = true,
            "--durability" => opts.durability = parse_mode(&value()).unwrap_or_else(|| usage()),
            "--json" => json_path = Some(value().into()),
            "--reps" => opts.reps = value().parse().unwrap_or_else(|_| usage()),
            "--dir" => opts.base_dir = value().into(),
            "--cache-mib" => opts.cache_mib = Some(value().parse().unwrap_or_else(|_| usage())),
            "--no-eager-start" => opts.eager_start = false,
            "--timeout-s" => {
                timeout = Some(Duration::from_secs(
                    value().parse().unwrap_or_else(|_| usage()),
                ))
            }
            "--recover-timeout-ms" => {
                let ms = value().parse().unwrap_or_else(|_| usage());
                opts.recover_timeout = Duration::from_millis(ms);
                timeout_set = true;
            }
            "-h" | "--help" => usage(),
            w if WORKLOADS.contains(&w) => selected.push(w.to_owned()),
            _ => usage(),
        }
    }
    if opts.smoke && !timeout_set {
        opts.recover_timeout = Duration::from_millis(1000);
    }
    if selected.is_empty() {
        selected = WORKLOADS.iter().map(|w| w.to_string()).collect();
    }
    Cli {
        opts,
        json_path,
        selected,
        timeout,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if recover::is_child(&args) {
        recover::child(&args[1..]);
        return;
    }
    if args.first().is_some_and(|a| a == WORKLOAD_CHILD) {
        let cli = parse(&args[2..]);
        let out = run_here(&cli.opts, &args[1]);
        let rows: Vec<Value> = out
            .rows
            .iter()
            .map(|r| json!([r.workload, r.metric, r.value, r.durability]))
            .collect();
        println!("OUTCOME {}", json!({"rows": rows, "json": out.json}));
        return;
    }
    let cli = parse(&args);
    let opts = &cli.opts;
    let json_path = cli
        .json_path
        .clone()
        .unwrap_or_else(|| default_json_path(opts));
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut sections = serde_json::Map::new();
    let mut failed = Vec::new();
    for w in &cli.selected {
        eprintln!("== {w} ({})", opts.mode_name());
        let t = Instant::now();
        let limit = cli
            .timeout
            .unwrap_or_else(|| default_timeout(w, opts.smoke));
        let (out, error) = match run_isolated(opts, w, limit) {
            Ok(out) => (out, None),
            Err(e) => {
                eprintln!("   {w}: {e}");
                let mut out = Outcome::new();
                out.row(w, "FAILED", e.clone(), opts.mode_name());
                out.json = json!({"error": e});
                (out, Some(e))
            }
        };
        eprintln!("   {w} took {:.1} s", t.elapsed().as_secs_f64());
        let mut j = out.json;
        j["wall_seconds"] = json!(common::r4(t.elapsed().as_secs_f64()));
        sections.insert(w.clone(), j);
        rows.extend(out.rows);
        if error.is_some() {
            failed.push(w.clone());
        }
    }

    print_table(&rows);
    let doc = json!({
        "bench": "refrain engine (embedded sled store)",
        "durability": mode_name(opts.durability),
        "eager_start": opts.eager_start,
        "smoke": opts.smoke,
        "reps": opts.reps,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "store_dir_base": opts.base_dir,
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "total_seconds": common::r4(started.elapsed().as_secs_f64()),
        "isolation": "each workload runs in its own process (this binary re-executed), with its own scratch directory",
        "failed": failed,
        "table": rows.iter().map(|r| json!([r.workload, r.metric, r.value, r.durability])).collect::<Vec<Value>>(),
        "workloads": sections,
    });
    if let Some(parent) = json_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc).unwrap())
        .unwrap_or_else(|e| panic!("writing {}: {e}", json_path.display()));
    println!("JSON: {}", json_path.display());
    if !failed.is_empty() {
        eprintln!("failed or hung: {}", failed.join(", "));
        std::process::exit(1);
    }
}

/// Longest a workload may run before it is judged hung and killed.
fn default_timeout(w: &str, smoke: bool) -> Duration {
    let s = match (w, smoke) {
        (_, true) => 120,
        ("idle", false) => 3600,
        ("seq" | "c20" | "c200", false) => 600,
        _ => 1200,
    };
    Duration::from_secs(s)
}

/// Runs workload `w` in a child process (this binary, `__workload W`) with
/// its own scratch directory, so a hang is killed and reported instead of
/// stalling the whole run, RSS starts from a fresh process, and nothing is
/// left on disk.
fn run_isolated(opts: &Opts, w: &str, limit: Duration) -> Result<Outcome, String> {
    let scratch = tempfile::Builder::new()
        .prefix(&format!("refrain-bench-{w}-"))
        .tempdir_in(&opts.base_dir)
        .map_err(|e| format!("scratch dir: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(WORKLOAD_CHILD)
        .arg(w)
        .args(["--durability", opts.mode_name()])
        .args(["--reps", &opts.reps.to_string()])
        .arg("--dir")
        .arg(scratch.path())
        .args([
            "--recover-timeout-ms",
            &opts.recover_timeout.as_millis().to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    if opts.smoke {
        cmd.arg("--smoke");
    }
    if let Some(mib) = opts.cache_mib {
        cmd.args(["--cache-mib", &mib.to_string()]);
    }
    if !opts.eager_start {
        cmd.arg("--no-eager-start");
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.strip_prefix("OUTCOME ") {
                let _ = tx.send(rest.to_owned());
            }
        }
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "HUNG: no result after {} s; killed",
                    limit.as_secs()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let line = rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| format!("exited ({status}) without a result"))?;
    let v: Value = serde_json::from_str(&line).map_err(|e| format!("bad outcome: {e}"))?;
    let mut out = Outcome::new();
    for r in v["rows"].as_array().into_iter().flatten() {
        let s = |i: usize| r[i].as_str().unwrap_or_default().to_owned();
        out.rows.push(Row {
            workload: s(0),
            metric: s(1),
            value: s(2),
            durability: s(3),
        });
    }
    out.json = v["json"].clone();
    Ok(out)
}

/// Runs workload `w` in this process.
fn run_here(opts: &Opts, w: &str) -> Outcome {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        match w {
            "seq" => throughput::run(opts, "seq", 1).await,
            "c20" => throughput::run(opts, "c20", 20).await,
            "c200" => throughput::run(opts, "c200", 200).await,
            "replay" => replay::run(opts).await,
            "history-growth" => growth::run(opts).await,
            "recover" => {
                let o = opts.clone();
                tokio::task::spawn_blocking(move || recover::run(&o))
                    .await
                    .expect("recover")
            }
            "idle" => idle::run(opts).await,
            _ => usage(),
        }
    })
}

/// `<target>/refrain-bench/engine-MODE[-smoke].json`, next to the build;
/// under the temporary directory for a binary copied out of it (never the
/// working directory, which may be a checkout).
fn default_json_path(opts: &Opts) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // <target>/<profile>/deps/engine-<hash>
    let target = exe
        .parent()
        .filter(|dir| dir.ends_with("deps"))
        .and_then(|deps| deps.parent()?.parent())
        .map_or_else(std::env::temp_dir, PathBuf::from);
    let smoke = if opts.smoke { "-smoke" } else { "" };
    target
        .join("refrain-bench")
        .join(format!("engine-{}{smoke}.json", opts.mode_name()))
}

fn print_table(rows: &[Row]) {
    let w0 = rows
        .iter()
        .map(|r| r.workload.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let w1 = rows
        .iter()
        .map(|r| r.metric.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let w2 = rows
        .iter()
        .map(|r| r.value.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<w0$}  {:<w1$}  {:>w2$}  durability",
        "workload", "metric", "value"
    );
    println!("{}", "-".repeat(w0 + w1 + w2 + 16));
    for r in rows {
        let pad1 = w1 - r.metric.chars().count();
        let pad2 = w2 - r.value.chars().count();
        println!(
            "{:<w0$}  {}{}  {}{}  {}",
            r.workload,
            r.metric,
            " ".repeat(pad1),
            " ".repeat(pad2),
            r.value,
            r.durability
        );
    }
}
