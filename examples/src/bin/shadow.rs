//! Shadow replay before a deploy: the open runs of a store (or of a
//! directory of exported histories) replayed against this build's code of
//! every example's workflows. Exit code 1 lists the runs that would fail.
//!
//! ```text
//! cargo run -p refrain-examples --bin shadow -- --db DIR
//! cargo run -p refrain-examples --bin shadow -- --exports DIR
//! ```
//!
//! A project adds the same few lines as a bin next to its application,
//! with its own `Replayer`.

use refrain_worker::shadow::{self, ShadowSource};
use std::process::ExitCode;

const USAGE: &str = "usage: shadow (--db STORE_DIR | --exports HISTORY_DIR)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let source = match args.as_slice() {
        [flag, dir] if flag == "--db" => ShadowSource::StoreDir(dir.into()),
        [flag, dir] if flag == "--exports" => ShadowSource::ExportDir(dir.into()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match shadow::replay_open_runs(&refrain_examples::replayer(), &source) {
        Ok(report) => {
            print!("{report}");
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("shadow: {e}");
            ExitCode::from(2)
        }
    }
}
