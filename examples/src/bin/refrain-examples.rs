//! The `refrain` command line with the workflows of all examples
//! registered, so that `replay` runs their code:
//!
//! ```text
//! cargo run -p refrain-examples --bin refrain-examples -- --db DIR history order-1002
//! cargo run -p refrain-examples --bin refrain-examples -- replay tests/histories/order_to_cash
//! ```
//!
//! This is the binary a project adds next to its application
//! (`src/bin/refrain.rs`), see `refrain_worker::cli`.

fn main() -> std::process::ExitCode {
    refrain_worker::cli::run(refrain_examples::replayer())
}
