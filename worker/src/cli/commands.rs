//! The shorter commands: `list`, `export`, `replay`, `shadow` and `signal`
//! (`describe` and `history` have files of their own).

use super::args::StatusArg;
use super::{acknowledge, pick_run, CliError, Out, EXIT_FAILED};
use crate::replayer::{history_files, indent, ReplayError, Replayer};
use crate::shadow::{replay_open_runs, ShadowSource};
use refrain::history_file::{FileFormat, HistoryExport};
use refrain_history::{
    HistoryStore, ListOrder, PageRequest, Payload, RunCursor, RunFilter, RunId, Store, WorkflowId,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

// ----- list -----

/// Runs are read from the store in pages of this many.
const PAGE: usize = 500;

/// Which runs `list` shows.
pub(super) struct ListArgs {
    pub(super) status: Option<StatusArg>,
    pub(super) workflow_type: Option<String>,
    /// One page of at most this many runs, instead of all of them.
    pub(super) limit: Option<usize>,
    /// Where the page starts: the cursor the previous page printed.
    pub(super) after: Option<String>,
    /// Only workflow ids starting with this.
    pub(super) id_prefix: Option<String>,
    /// Latest started first instead of the order runs started in.
    pub(super) newest_first: bool,
}

pub(super) async fn list(
    store: &dyn HistoryStore,
    args: ListArgs,
    as_json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let filter = RunFilter {
        status: args.status.map(Into::into),
        workflow_type: args.workflow_type,
        id_prefix: args.id_prefix,
        ..Default::default()
    };
    let mut runs = Vec::new();
    let order = if args.newest_first {
        ListOrder::NewestFirst
    } else {
        ListOrder::OldestFirst
    };
    let mut page = PageRequest {
        after: args.after.map(RunCursor::new),
        ..PageRequest::first(args.limit.unwrap_or(PAGE)).in_order(order)
    };
    // With `--limit`, one page and where the next starts; without, every page.
    let more = loop {
        let got = store.list_runs(&filter, page).await?;
        runs.extend(got.runs);
        match got.next_cursor {
            Some(cursor) if args.limit.is_none() => {
                page = PageRequest::after(cursor, PAGE).in_order(order);
            }
            next => break next,
        }
    };
    let runs: Vec<_> = runs.iter().map(super::local::run_summary).collect();
    if as_json {
        return super::remote::print_json(
            out,
            &serde_json::json!({ "runs": runs, "next_cursor": more.map(|c| c.to_string()) }),
        );
    }
    super::local::runs_table(&runs, more.map(|c| c.to_string()).as_deref(), out)
}

pub(super) fn write_table<const N: usize>(
    out: Out<'_>,
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

// ----- export -----

pub(super) fn export(
    store: &Store,
    id: &WorkflowId,
    run: Option<RunId>,
    file: &Path,
    as_json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let (run, _) = super::on_runtime(pick_run(store, id, run))??;
    let history = super::on_runtime(HistoryExport::from_run(store, run))?
        .map_err(|e| CliError::Failed(format!("cannot read the history of {id}: {e}")))?;
    history
        .write_file(file)
        .map_err(|e| CliError::Failed(format!("cannot write the export: {e}")))?;
    let form = match FileFormat::for_path(file) {
        FileFormat::Json => "JSON",
        FileFormat::Binary => "binary",
    };
    if as_json {
        let v = serde_json::json!({
            "workflow_id": id.as_str(), "run": run.0, "events": history.events.len(),
            "file": file.display().to_string(), "format": form,
        });
        return super::remote::print_json(out, &v);
    }
    writeln!(
        out,
        "exported {} events of {id} run {} to {} ({form})",
        history.events.len(),
        run.0,
        file.display()
    )?;
    Ok(())
}

// ----- replay -----

pub(super) fn replay(replayer: &Replayer, paths: &[PathBuf], out: Out<'_>) -> Result<u8, CliError> {
    if replayer.is_empty() {
        return Err(CliError::Unusable(NO_WORKFLOWS.trim().to_owned()));
    }
    let mut results = Vec::new();
    for path in paths {
        if path.is_dir() {
            let files = history_files(path).map_err(|e| {
                CliError::Failed(format!("cannot read directory {}: {e}", path.display()))
            })?;
            if files.is_empty() {
                return Err(CliError::Failed(format!(
                    "no history files (*.json, *.bin) in {}",
                    path.display()
                )));
            }
            results.extend(files.into_iter().map(|f| {
                let r = replayer.replay_file(&f);
                (f, r)
            }));
        } else {
            results.push((path.clone(), replayer.replay_file(path)));
        }
    }
    let mut failed = 0;
    for (path, result) in &results {
        match result {
            Ok(report) => writeln!(out, "ok    {}: {report}", path.display())?,
            Err(e) => {
                failed += 1;
                writeln!(out, "FAIL  {}:", path.display())?;
                writeln!(out, "{}", indent(&e.to_string()))?;
                if let ReplayError::UnknownWorkflowType { .. } = e {
                    writeln!(
                        out,
                        "  (this binary registers: {})",
                        replayer.workflow_types().join(", ")
                    )?;
                }
            }
        }
    }
    writeln!(
        out,
        "{} of {} histories replayed",
        results.len() - failed,
        results.len()
    )?;
    Ok(if failed == 0 { 0 } else { EXIT_FAILED })
}

// ----- shadow -----

/// Replays the open runs of `source` through `replayer` (see
/// [`crate::shadow`]) and prints the report; 1 if a run would fail.
pub(super) fn shadow(
    replayer: &Replayer,
    source: &ShadowSource,
    out: Out<'_>,
) -> Result<u8, CliError> {
    if replayer.is_empty() {
        return Err(CliError::Unusable(NO_WORKFLOWS.trim().to_owned()));
    }
    let report = replay_open_runs(replayer, source).map_err(|e| CliError::Failed(e.to_string()))?;
    write!(out, "{report}")?;
    Ok(if report.is_clean() { 0 } else { EXIT_FAILED })
}

const NO_WORKFLOWS: &str = r#"
this `refrain` binary has no workflow types registered, so it cannot replay histories.
Replaying runs your workflow code. Give your project a binary with the same
command line and your workflows registered, e.g. src/bin/refrain.rs:

    fn main() -> std::process::ExitCode {
        refrain_worker::cli::run(
            refrain_worker::Replayer::new()
                .workflow::<OrderToCash>()
                .workflow::<EmployeeOnboarding>(),
        )
    }

and run `cargo run --bin refrain -- replay FILE_OR_DIR...`. In tests, use
`Replayer::new().workflow::<W>().assert_replays("tests/histories")`.
"#;

// ----- signal -----

pub(super) fn signal(
    store: &Store,
    id: &WorkflowId,
    name: &str,
    payload: Payload,
    sender: Option<&str>,
    as_json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let sent = match sender {
        Some(who) => store.signal_from(id, name, payload, who),
        None => store.signal(id, name, payload),
    };
    let run = sent.map_err(|e| CliError::Failed(format!("signal not sent: {e}")))?;
    acknowledge(store, "signal")?;
    if as_json {
        return super::remote::print_json(out, &run_ref(id, run));
    }
    writeln!(out, "signal {name} sent to {id} (run {})", run.0)?;
    Ok(())
}

/// The API's answer naming the run a command reached.
pub(super) fn run_ref(id: &WorkflowId, run: RunId) -> refrain_server::remote::RunRef {
    refrain_server::remote::RunRef {
        workflow_id: id.to_string(),
        run: run.0,
    }
}
