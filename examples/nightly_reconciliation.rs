//! Nightly reconciliation on a durable schedule, with a child workflow per
//! batch of accounts. The workflows, their activities and the scenario
//! live in the library, [`refrain_examples::nightly_reconciliation`]; this
//! is the process that runs them.
//!
//! "Nightly" is every second here: once three reconciliations have
//! completed, the example pauses the schedule, prints the reports and what
//! the schedule did, and deletes it. The schedule lives in the store: kill
//! the process and rerun it with the same `--db`, and it carries on.
//!
//! ```text
//! cargo run --release --example nightly_reconciliation
//! cargo run --release --example nightly_reconciliation -- --db /tmp/recon   # kill -9 it, rerun: it resumes
//! cargo run --release --example nightly_reconciliation -- cli --db /tmp/recon list
//! cargo run --release --example nightly_reconciliation -- cli replay tests/histories/nightly_reconciliation
//! cargo run --release --example nightly_reconciliation -- export-histories tests/histories/nightly_reconciliation
//! ```
//!
//! The runs are named after the schedule's fire times, which differ from
//! one export to the next, so `export-histories` first deletes the
//! histories of earlier exports (`nightly-reconciliation@*.json`) from
//! DIR.

use anyhow::{Context as _, Result};
use clap::Parser;
use refrain_examples::nightly_reconciliation::{self, Scenario, SCHEDULE};
use refrain_examples::{
    export_histories, init_tracing, keep_serving, run_cli, temporary_store, Mode, ServeArgs,
    StoreArgs,
};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    about = "Nightly reconciliation: a durable schedule starting a workflow with child batches"
)]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    mode: Option<Mode>,
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    match args.mode {
        Some(Mode::Cli { args }) => Ok(run_cli(
            nightly_reconciliation::replayer(),
            "nightly_reconciliation cli",
            args,
        )),
        Some(Mode::ExportHistories { dir }) => {
            init_tracing();
            tokio::runtime::Runtime::new()?.block_on(async {
                let (_tmp, store) = temporary_store("refrain-nightly_reconciliation-")?;
                let worker = nightly_reconciliation::start_worker(store.clone());
                nightly_reconciliation::run(&worker.client(), Scenario::EXAMPLE).await?;
                worker.shutdown(Duration::from_secs(5)).await;
                println!();
                remove_earlier_exports(&dir)?;
                export_histories(&store, &dir).await?;
                Ok(ExitCode::SUCCESS)
            })
        }
        None => {
            init_tracing();
            let store = args.store.open_store("nightly_reconciliation")?;
            tokio::runtime::Runtime::new()?.block_on(async {
                let worker = nightly_reconciliation::start_worker(store.clone());
                let serving = args.serve.start(worker.client()).await?;
                nightly_reconciliation::run(&worker.client(), Scenario::EXAMPLE).await?;
                keep_serving(serving).await?;
                worker.shutdown(Duration::from_secs(5)).await;
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

/// Deletes the histories of the schedule's runs (and their batches) that
/// an earlier export wrote to `dir`: this export's runs have other names.
fn remove_earlier_exports(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(&format!("{SCHEDULE}@")) && name.ends_with(".json") {
            std::fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
            println!("[export] deleted {} (an earlier export)", path.display());
        }
    }
    Ok(())
}
