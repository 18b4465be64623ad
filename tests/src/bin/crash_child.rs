//! The process the crash tests kill with SIGKILL.
//!
//! ```text
//! crash-child run DIR SCENARIO      open DIR/db, run a worker, start (or
//!                                   resume) the scenario's workflows, report
//!                                   on stdout until every one completed
//! crash-child keys DIR             run the idempotency-key workload (see
//!                                   `refrain_tests::keys`) on DIR/db until
//!                                   every chain completed
//! crash-child signal DIR ID VALUE   ask the running child to send signal
//!                                   `proceed` VALUE to ID; exits 0 once that
//!                                   child reports the signal durable
//! ```
//!
//! sled allows one process per database, so `signal` does not open the
//! store: it hands the request to the process that owns it, through files
//! (see `refrain_tests::crash` for the layout and the stdout protocol).

use anyhow::{bail, Context as _};
use refrain::{Client, StartOptions, Store, StoreConfig};
use refrain_tests::crash::{
    acks_dir, db_dir, ledger_file, requests_dir, scenario, CrashFlow, Proceed, StepOne, StepTwo,
    ALL_DONE, READY,
};
use refrain_tests::history::kinds;
use refrain_tests::keys::{key_ledger_file, ChainStep, KeyChain, KeyLeaf, Touch, KEY_CHAINS};
use refrain_tests::ledger::Ledger;
use refrain_worker::Worker;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["run", dir, name] => run(PathBuf::from(dir), name),
        ["keys", dir] => run_keys(PathBuf::from(dir)),
        ["signal", dir, id, value] => request_signal(Path::new(dir), id, value),
        _ => {
            eprintln!(
                "usage: crash-child run DIR SCENARIO | crash-child keys DIR | crash-child signal DIR ID VALUE"
            );
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash-child failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: PathBuf, name: &str) -> anyhow::Result<()> {
    runtime()?.block_on(run_scenario(dir, name))
}

fn run_keys(dir: PathBuf) -> anyhow::Result<()> {
    runtime()?.block_on(key_workload(dir))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Starts (or, after a kill, finds) every chain of the key workload and
/// waits for each to complete.
async fn key_workload(dir: PathBuf) -> anyhow::Result<()> {
    let store = Store::open(db_dir(&dir), StoreConfig::default()).context("opening the store")?;
    let worker = Worker::builder(store.clone())
        .workflow::<KeyChain>()
        .workflow::<KeyLeaf>()
        .activity(Touch::to_file(&key_ledger_file(&dir))?)
        .start();
    let client = worker.client();
    let mut handles = Vec::new();
    for i in 0..KEY_CHAINS {
        let id = format!("chain-{i}");
        let handle = if store.latest_run(&id.as_str().into())?.is_some() {
            client.handle::<KeyChain>(id.as_str()).await?
        } else {
            let first = ChainStep {
                id: id.clone(),
                generation: 0,
            };
            client
                .start_with::<KeyChain>(id.as_str(), first, StartOptions::attach_to_open())
                .await?
        };
        handles.push(handle);
    }
    println!("{READY}");
    print_results(&handles).await?;
    println!("{ALL_DONE}");
    worker.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

async fn run_scenario(dir: PathBuf, name: &str) -> anyhow::Result<()> {
    let plans = scenario(name, &dir);
    std::fs::create_dir_all(requests_dir(&dir))?;
    std::fs::create_dir_all(acks_dir(&dir))?;
    let store = Store::open(db_dir(&dir), StoreConfig::default()).context("opening the store")?;
    let ledger = Ledger::to_file(ledger_file(&dir))?;
    let worker = Worker::builder(store.clone())
        .workflow::<CrashFlow>()
        .activity(StepOne {
            ledger: ledger.clone(),
            store: store.clone(),
        })
        .activity(StepTwo {
            ledger,
            store: store.clone(),
        })
        .start();
    let client = worker.client();
    let mut handles = Vec::new();
    for plan in &plans {
        let id = plan.id.as_str();
        // A run that completed before the kill must be waited for, not
        // started again (attaching only covers open runs).
        let handle = if store.latest_run(&id.into())?.is_some() {
            client.handle::<CrashFlow>(id).await?
        } else {
            client
                .start_with::<CrashFlow>(id, plan.clone(), StartOptions::attach_to_open())
                .await?
        };
        handles.push(handle);
    }
    println!("{READY}");
    let ids = plans.iter().map(|p| p.id.clone()).collect();
    let monitor = tokio::spawn(report_states(store.clone(), client.clone(), ids));
    let signals = tokio::spawn(serve_signal_requests(client.clone(), dir.clone()));
    print_results(&handles).await?;
    monitor.abort();
    signals.abort();
    println!("{ALL_DONE}");
    worker.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

/// Waits for each workflow in turn and prints its `RESULT` line.
async fn print_results<W>(handles: &[refrain::WorkflowHandle<W>]) -> anyhow::Result<()>
where
    W: refrain::Workflow,
    W::Output: serde::Serialize,
{
    for handle in handles {
        let result = handle.result().await?;
        println!(
            "RESULT {} {}",
            handle.workflow_id(),
            serde_json::to_string(&result)?
        );
    }
    Ok(())
}

/// Prints a `STATE` line whenever a run changes, after a flush, so that
/// whatever the parent reacts to is already durable when it kills us.
async fn report_states(store: Store, client: Client, ids: Vec<String>) {
    let mut last: HashMap<String, String> = HashMap::new();
    loop {
        let mut changed = Vec::new();
        for id in &ids {
            let (Ok(d), Ok(history)) = (
                client.describe(id.as_str()).await,
                client.history(id.as_str()).await,
            ) else {
                continue;
            };
            let r = &d.record;
            let line = format!(
                "STATE {id} seq={} inbox={} failing={} kinds={}",
                r.last_seq,
                r.inbox_tail.saturating_sub(r.inbox_head),
                u8::from(r.last_task_failure.is_some()),
                kinds(&history).join(",")
            );
            if last.get(id) != Some(&line) {
                changed.push((id.clone(), line));
            }
        }
        if !changed.is_empty() {
            if let Err(e) = store.durable().await {
                eprintln!("flush failed: {e}");
                return;
            }
            for (id, line) in changed {
                println!("{line}");
                last.insert(id, line);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends the signals `crash-child signal` asks for, and acknowledges each
/// once `Client::signal` returned (that is, once it is durable).
async fn serve_signal_requests(client: Client, dir: PathBuf) {
    loop {
        let requests: Vec<PathBuf> = std::fs::read_dir(requests_dir(&dir))
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        for path in requests {
            let Some(id) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            if id.ends_with(".tmp") {
                continue;
            }
            let Ok(value) = std::fs::read_to_string(&path) else {
                continue;
            };
            // Removed before sending: a kill in between loses the request
            // (and the requester times out) but can never send it twice.
            if std::fs::remove_file(&path).is_err() {
                continue;
            }
            let answer = match client.signal(id.as_str(), &Proceed(value)).await {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("error: {e}"),
            };
            if let Err(e) = write_atomically(&acks_dir(&dir).join(&id), &answer) {
                eprintln!("cannot acknowledge the signal to {id}: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn write_atomically(path: &Path, content: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(tmp, path)
}

fn request_signal(dir: &Path, id: &str, value: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(requests_dir(dir))?;
    write_atomically(&requests_dir(dir).join(id), value)?;
    let ack = acks_dir(dir).join(id);
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(answer) = std::fs::read_to_string(&ack) {
            std::fs::remove_file(&ack)?;
            println!("{answer}");
            if answer == "ok" {
                return Ok(());
            }
            bail!("the running child could not send the signal: {answer}");
        }
        if Instant::now() > give_up {
            bail!("no running child acknowledged the signal to {id}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
