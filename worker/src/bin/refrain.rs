//! The stock `refrain` command line: on a store (`--db DIR`) or through a
//! running server (`--server URL`, token in `REFRAIN_TOKEN`), list,
//! describe, history, export, start, signal, cancel, terminate, tasks,
//! decide and schedules; `verify`, `serve` and `token`. `replay` needs
//! workflow code, which this binary does not have; embed the same command
//! line in a binary of your own with
//! `refrain_worker::cli::run(Replayer::new().workflow::<W>())`.

fn main() -> std::process::ExitCode {
    refrain_worker::cli::run(refrain_worker::Replayer::new())
}
