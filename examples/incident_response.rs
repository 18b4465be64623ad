//! Incident response: an acknowledgement deadline, reminders and
//! escalation to the next on-call tier. The workflow, its activities and
//! the scenario live in the library,
//! [`refrain_examples::incident_response`]; this is the process that runs
//! them.
//!
//! The tier-1 engineer (deadline 1.5 s) is paged, reminded twice and does
//! not acknowledge; the page escalates to tier 2, and this process,
//! playing tier 2, acknowledges once the page reaches them. The runbook's
//! first attempt times out on SSH and is retried; the ticket is resolved.
//! With `--nobody-acknowledges`, tier 2 is away too: once their deadline
//! (30 s) has passed, the safe default runbook runs by itself.
//!
//! ```text
//! cargo run --release --example incident_response
//! cargo run --release --example incident_response -- --nobody-acknowledges
//! cargo run --release --example incident_response -- --db /tmp/inc   # kill -9 it, rerun: it resumes
//! cargo run --release --example incident_response -- cli --db /tmp/inc history incident-4711
//! cargo run --release --example incident_response -- cli replay tests/histories/incident_response
//! cargo run --release --example incident_response -- export-histories tests/histories/incident_response
//! ```

use anyhow::Result;
use clap::Parser;
use refrain_examples::incident_response::{self, Scenario};
use refrain_examples::{
    export_histories, init_tracing, keep_serving, run_cli, temporary_store, Mode, ServeArgs,
    StoreArgs,
};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Incident response: acknowledgement deadline, reminders, escalation")]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    serve: ServeArgs,
    /// Have tier 2 not acknowledge either, so that the safe default
    /// runbook runs once every deadline has passed.
    #[arg(long)]
    nobody_acknowledges: bool,
    #[command(subcommand)]
    mode: Option<Mode>,
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let scenario = Scenario {
        tier2_acknowledges: !args.nobody_acknowledges,
    };
    match args.mode {
        Some(Mode::Cli { args }) => Ok(run_cli(
            incident_response::replayer(),
            "incident_response cli",
            args,
        )),
        Some(Mode::ExportHistories { dir }) => {
            init_tracing();
            let runtime = tokio::runtime::Runtime::new()?;
            // Both scenarios create a run named incident-4711: the second
            // goes into a folder of its own.
            runtime.block_on(export(Scenario::default(), &dir))?;
            let nobody = Scenario {
                tier2_acknowledges: false,
            };
            runtime.block_on(export(nobody, &dir.join("nobody-acknowledges")))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            init_tracing();
            let store = args.store.open_store("incident_response")?;
            tokio::runtime::Runtime::new()?.block_on(async {
                let worker = incident_response::start_worker(store.clone());
                let serving = args.serve.start(worker.client()).await?;
                // The outcome is printed; a failed workflow is an outcome too.
                let _ = incident_response::run(&worker.client(), scenario).await?;
                keep_serving(serving).await?;
                worker.shutdown(Duration::from_secs(5)).await;
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

/// Runs `scenario` on a fresh temporary store and exports its run to `dir`.
async fn export(scenario: Scenario, dir: &Path) -> Result<()> {
    let (_dir, store) = temporary_store("refrain-incident_response-")?;
    let worker = incident_response::start_worker(store.clone());
    let _ = incident_response::run(&worker.client(), scenario).await?;
    worker.shutdown(Duration::from_secs(5)).await;
    println!();
    export_histories(&store, dir).await?;
    Ok(())
}
