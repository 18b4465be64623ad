//! Loan approval: an AI risk score, human underwriting with a deadline and
//! escalation, and provisioning as a saga. The workflow, its activities
//! and the scenario live in the library,
//! [`refrain_examples::loan_approval`]; this is the process that runs
//! them.
//!
//! Three applications run one after the other: `loan-ada` is approved
//! automatically; `loan-bo` goes to underwriter-1, and while it waits bo,
//! played by this process, changes the amount with an update (a negative
//! amount first, refused, then a lower one, accepted with the new terms);
//! then underwriter-1, played by this process too, approves it (with
//! `--underwriter-rejects`, rejects it; with `--nobody-decides`, neither
//! underwriter-1 nor the credit manager decides, and once both deadlines
//! have passed, about 22 s, the application is declined; with `--serve`,
//! a person decides, as underwriter-1 in the dashboard's inbox, within an
//! hour); `loan-cy` is
//! approved automatically but the card processor refuses the card, and
//! the saga closes the account and releases the credit reservation.
//!
//! ```text
//! cargo run --release --example loan_approval
//! cargo run --release --example loan_approval -- --nobody-decides
//! cargo run --release --example loan_approval -- --serve 127.0.0.1:8233 --identities identities.toml
//! cargo run --release --example loan_approval -- --db /tmp/loans   # kill -9 it, rerun: it resumes
//! cargo run --release --example loan_approval -- cli --db /tmp/loans history loan-cy
//! cargo run --release --example loan_approval -- cli replay tests/histories/loan_approval
//! cargo run --release --example loan_approval -- export-histories tests/histories/loan_approval
//! ```

use anyhow::Result;
use clap::Parser;
use refrain_examples::loan_approval::{self, Pace, Scenario, Underwriter, Verdict};
use refrain_examples::{
    export_histories, init_tracing, keep_serving, run_cli, temporary_store, Mode, ServeArgs,
    StoreArgs,
};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Loan approval: AI score, human underwriting with escalation, saga")]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// With `--serve`, and neither of the two options below, loan-bo waits
    /// (up to an hour) for a person to decide it as underwriter-1 in the
    /// dashboard's inbox.
    #[command(flatten)]
    serve: ServeArgs,
    /// Have the underwriter reject loan-bo instead of approving it.
    #[arg(long, conflicts_with = "nobody_decides")]
    underwriter_rejects: bool,
    /// Have nobody decide loan-bo, so that it is declined once every
    /// deadline has passed.
    #[arg(long)]
    nobody_decides: bool,
    #[command(subcommand)]
    mode: Option<Mode>,
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let underwriter = if args.nobody_decides {
        Underwriter::Away
    } else if args.underwriter_rejects {
        Underwriter::Decides(Verdict::Reject)
    } else if args.serve.enabled() {
        Underwriter::Person
    } else {
        Underwriter::Decides(Verdict::Approve)
    };
    let scenario = Scenario {
        underwriter,
        pace: if underwriter == Underwriter::Person {
            Pace::PERSON
        } else {
            Pace::EXAMPLE
        },
    };
    match args.mode {
        Some(Mode::Cli { args }) => Ok(run_cli(
            loan_approval::replayer(),
            "loan_approval cli",
            args,
        )),
        Some(Mode::ExportHistories { dir }) => {
            init_tracing();
            let runtime = tokio::runtime::Runtime::new()?;
            // Every scenario creates runs named loan-ada, loan-bo and
            // loan-cy: each but the first goes into a folder of its own.
            runtime.block_on(export(Scenario::default(), &dir))?;
            let rejects = Scenario {
                underwriter: Underwriter::Decides(Verdict::Reject),
                ..Scenario::default()
            };
            runtime.block_on(export(rejects, &dir.join("underwriter-rejects")))?;
            let nobody = Scenario {
                underwriter: Underwriter::Away,
                ..Scenario::default()
            };
            runtime.block_on(export(nobody, &dir.join("nobody-decides")))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            init_tracing();
            let store = args.store.open_store("loan_approval")?;
            tokio::runtime::Runtime::new()?.block_on(async {
                let worker = loan_approval::start_worker(store.clone());
                let serving = args.serve.start(worker.client()).await?;
                // The outcomes are printed; a failed workflow is an outcome too.
                let _ = loan_approval::run(&worker.client(), scenario).await?;
                keep_serving(serving).await?;
                worker.shutdown(Duration::from_secs(5)).await;
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

/// Runs `scenario` on a fresh temporary store and exports its runs to `dir`.
async fn export(scenario: Scenario, dir: &Path) -> Result<()> {
    let (_dir, store) = temporary_store("refrain-loan_approval-")?;
    let worker = loan_approval::start_worker(store.clone());
    let _ = loan_approval::run(&worker.client(), scenario).await?;
    worker.shutdown(Duration::from_secs(5)).await;
    println!();
    export_histories(&store, dir).await?;
    Ok(())
}
