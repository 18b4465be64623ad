//! The stock `refrain` command line: list, describe, history, export,
//! verify and signal work on any store. `replay` needs workflow code,
//! which this binary does not have; embed the same command line in a
//! binary of your own with `refrain_worker::cli::run(Replayer::new().workflow::<W>())`.

fn main() -> std::process::ExitCode {
    refrain_worker::cli::run(refrain_worker::Replayer::new())
}
