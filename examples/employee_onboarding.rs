//! Employee onboarding: work in parallel, a manager's approval with a
//! deadline, and escalation when the deadline passes. The workflow, its
//! activities and the scenario live in the library,
//! [`refrain_examples::employee_onboarding`]; this is the process that
//! runs them.
//!
//! The manager (deadline 2 s) never answers; the workflow escalates to the
//! director (deadline 10 s), and this process, playing the director,
//! approves once it sees the escalation. With `--director-away` the
//! director does not answer either and the case goes to HR.
//!
//! ```text
//! cargo run --release --example employee_onboarding
//! cargo run --release --example employee_onboarding -- --db /tmp/onb   # kill -9 it, rerun: it resumes
//! cargo run --release --example employee_onboarding -- cli --db /tmp/onb history onboarding-emp-4711
//! cargo run --release --example employee_onboarding -- export-histories tests/histories/employee_onboarding
//! ```

use anyhow::Result;
use clap::Parser;
use refrain_examples::employee_onboarding::{self, Director, Scenario};
use refrain_examples::{
    export_histories, init_tracing, keep_serving, run_cli, temporary_store, Mode, ServeArgs,
    StoreArgs,
};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Employee onboarding: parallel provisioning, approval deadline, escalation")]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    serve: ServeArgs,
    /// The director does not answer the escalation either: once both
    /// deadlines have passed, the case goes to HR.
    #[arg(long)]
    director_away: bool,
    #[command(subcommand)]
    mode: Option<Mode>,
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let scenario = Scenario::example(if args.director_away {
        Director::Away
    } else {
        Director::Approves
    });
    match args.mode {
        Some(Mode::Cli { args }) => Ok(run_cli(
            employee_onboarding::replayer(),
            "employee_onboarding cli",
            args,
        )),
        Some(Mode::ExportHistories { dir }) => {
            init_tracing();
            let runtime = tokio::runtime::Runtime::new()?;
            // Both scenarios create a run named onboarding-emp-4711: the
            // second goes into a folder of its own.
            runtime.block_on(export(Scenario::example(Director::Approves), &dir))?;
            runtime.block_on(export(
                Scenario::example(Director::Away),
                &dir.join("director-away"),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            init_tracing();
            let store = args.store.open_store("employee_onboarding")?;
            tokio::runtime::Runtime::new()?.block_on(async {
                let worker = employee_onboarding::start_worker(store.clone());
                let serving = args.serve.start(worker.client()).await?;
                // The outcome is printed; a failed workflow is an outcome too.
                let _ = employee_onboarding::run(&worker.client(), scenario).await?;
                keep_serving(serving).await?;
                worker.shutdown(Duration::from_secs(5)).await;
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

/// Runs `scenario` on a fresh temporary store and exports its runs to `dir`.
async fn export(scenario: Scenario, dir: &Path) -> Result<()> {
    let (_dir, store) = temporary_store("refrain-employee_onboarding-")?;
    let worker = employee_onboarding::start_worker(store.clone());
    let _ = employee_onboarding::run(&worker.client(), scenario).await?;
    worker.shutdown(Duration::from_secs(5)).await;
    println!();
    export_histories(&store, dir).await?;
    Ok(())
}
