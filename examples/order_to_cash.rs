//! Order to cash, with retries, an operations hand-off with a deadline, and
//! compensation (a saga). The workflow, its activities and the scenario
//! live in the library, [`refrain_examples::order_to_cash`]; this is the
//! process that runs them.
//!
//! Two orders run one after the other: `order-1001` goes through,
//! `order-1002` asks for a product that is out of stock and, after the
//! warehouse's retries and an unanswered operations alert, is cancelled
//! with its payment refunded and its credit hold released. With
//! `--ops-substitutes`, operations answer the alert with a substitute in
//! time and it ships instead.
//!
//! ```text
//! cargo run --release --example order_to_cash
//! cargo run --release --example order_to_cash -- --db /tmp/o2c   # kill -9 it, rerun: it resumes
//! cargo run --release --example order_to_cash -- cli --db /tmp/o2c history order-1002
//! cargo run --release --example order_to_cash -- cli replay tests/histories/order_to_cash
//! cargo run --release --example order_to_cash -- export-histories tests/histories/order_to_cash
//! ```

use anyhow::Result;
use clap::Parser;
use refrain_examples::order_to_cash::{self, Scenario};
use refrain_examples::{
    export_histories, init_tracing, keep_serving, run_cli, temporary_store, Mode, ServeArgs,
    StoreArgs,
};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Order to cash: retries, an operations deadline, and compensation")]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    serve: ServeArgs,
    /// Have operations answer order-1002's stock alert with a substitute
    /// product in time, so that it ships instead of being cancelled.
    #[arg(long)]
    ops_substitutes: bool,
    #[command(subcommand)]
    mode: Option<Mode>,
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let scenario = Scenario {
        ops_substitutes: args.ops_substitutes,
    };
    match args.mode {
        Some(Mode::Cli { args }) => Ok(run_cli(
            order_to_cash::replayer(),
            "order_to_cash cli",
            args,
        )),
        Some(Mode::ExportHistories { dir }) => {
            init_tracing();
            let runtime = tokio::runtime::Runtime::new()?;
            // The default scenario into DIR, the substitute into a folder
            // of its own: both create a run named order-1002.
            runtime.block_on(export(Scenario::default(), &dir))?;
            let substitutes = Scenario {
                ops_substitutes: true,
            };
            runtime.block_on(export(substitutes, &dir.join("ops-substitutes")))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            init_tracing();
            let store = args.store.open_store("order_to_cash")?;
            tokio::runtime::Runtime::new()?.block_on(async {
                let worker = order_to_cash::start_worker(store.clone());
                let serving = args.serve.start(worker.client()).await?;
                order_to_cash::run(&worker.client(), scenario).await?;
                keep_serving(serving).await?;
                worker.shutdown(Duration::from_secs(5)).await;
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

/// Runs `scenario` on a fresh temporary store and exports its runs to `dir`.
async fn export(scenario: Scenario, dir: &Path) -> Result<()> {
    let (_dir, store) = temporary_store("refrain-order_to_cash-")?;
    let worker = order_to_cash::start_worker(store.clone());
    order_to_cash::run(&worker.client(), scenario).await?;
    worker.shutdown(Duration::from_secs(5)).await;
    println!();
    export_histories(&store, dir).await?;
    Ok(())
}
