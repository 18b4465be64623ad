//! Shadow replay: before a deploy, replay the histories of the runs that
//! are still open against the new binary's workflow code and list those
//! that would fail once the new workers pick them up.
//!
//! Only open runs matter: a closed run is never replayed by a worker
//! again, so a change that would break it breaks nothing. A run whose
//! workflow type this binary does not register is counted as skipped, not
//! failed, so that a binary holding a subset of the types can be checked
//! on its own.
//!
//! ```no_run
//! # use refrain_worker::{Replayer, shadow::{self, ShadowSource}};
//! # fn check(replayer: Replayer) {
//! let report = shadow::replay_open_runs(&replayer, &ShadowSource::StoreDir("/var/lib/app/db".into()))
//!     .expect("the store can be read");
//! assert!(report.is_clean(), "{report}");
//! # }
//! ```

use crate::replayer::{history_files, indent, ReplayError, Replayer};
use refrain::history_file::{HistoryExport, HistoryFileError};
use refrain_history::{RunFilter, RunId, RunStatus, Store, StoreConfig, StoreError, WorkflowId};
use std::fmt;
use std::path::PathBuf;

/// Where the histories to check come from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ShadowSource {
    /// A store directory (a copy is opened, so a running application's
    /// store can be checked without stopping it).
    StoreDir(PathBuf),
    /// A directory of exported histories (`.json` or `.bin`), as written
    /// by `refrain export`; closed runs in it are ignored.
    ExportDir(PathBuf),
}

/// One open run that the new code would not replay.
#[derive(Debug)]
pub struct ShadowFailure {
    /// The run's workflow id.
    pub workflow_id: WorkflowId,
    /// The run.
    pub run: RunId,
    /// Its workflow type.
    pub workflow_type: String,
    /// Why it does not replay (for nondeterminism, the report naming the
    /// recorded and the produced source lines).
    pub error: ReplayError,
}

/// The outcome of a shadow replay.
#[derive(Debug, Default)]
pub struct ShadowReport {
    /// Open runs found in the source.
    pub checked: u64,
    /// Open runs that replayed cleanly.
    pub passed: u64,
    /// Open runs whose workflow type is not registered in the replayer:
    /// `(workflow id, run, workflow type)`.
    pub skipped: Vec<(WorkflowId, RunId, String)>,
    /// Open runs that would fail on the new code.
    pub failed: Vec<ShadowFailure>,
}

impl ShadowReport {
    /// Whether no open run would fail.
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty()
    }
}

impl fmt::Display for ShadowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} open runs checked: {} passed, {} failed, {} skipped (workflow type not registered)",
            self.checked,
            self.passed,
            self.failed.len(),
            self.skipped.len()
        )?;
        for failure in &self.failed {
            writeln!(
                f,
                "\nFAILED {} ({}, {}):\n{}",
                failure.workflow_id,
                failure.workflow_type,
                failure.run,
                indent(&failure.error.to_string())
            )?;
        }
        for (id, run, workflow_type) in &self.skipped {
            writeln!(f, "skipped {id} ({workflow_type}, {run})")?;
        }
        Ok(())
    }
}

/// Why the source could not be read at all.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShadowError {
    /// The store could not be opened or listed.
    Store {
        /// The store directory.
        path: PathBuf,
        /// The failure.
        source: StoreError,
    },
    /// A history could not be read from the store, or a file from the
    /// export directory.
    History {
        /// The store directory or the file.
        path: PathBuf,
        /// The failure.
        source: HistoryFileError,
    },
    /// The export directory could not be listed.
    Io {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

impl fmt::Display for ShadowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShadowError::Store { path, source } => {
                write!(f, "cannot read the store at {}: {source}", path.display())
            }
            ShadowError::History { path, source } => {
                write!(f, "cannot read a history from {}: {source}", path.display())
            }
            ShadowError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ShadowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShadowError::Store { source, .. } => Some(source),
            ShadowError::History { source, .. } => Some(source),
            ShadowError::Io { source, .. } => Some(source),
        }
    }
}

/// Replays every open run of `source` through `replayer` and reports which
/// would fail. Blocking; safe to call from inside an async runtime (the
/// store is read on a thread of its own).
///
/// # Errors
/// [`ShadowError`] if the source cannot be read; a run that does not
/// replay is a failure in the report, not an error.
pub fn replay_open_runs(
    replayer: &Replayer,
    source: &ShadowSource,
) -> Result<ShadowReport, ShadowError> {
    let histories = match source {
        ShadowSource::StoreDir(dir) => open_runs_of_store_dir(dir)?,
        ShadowSource::ExportDir(dir) => open_runs_of_export_dir(dir)?,
    };
    Ok(check(replayer, histories))
}

/// Replays the given histories' open runs (closed ones are ignored).
pub fn check(
    replayer: &Replayer,
    histories: impl IntoIterator<Item = HistoryExport>,
) -> ShadowReport {
    let mut report = ShadowReport::default();
    for history in histories.into_iter().filter(is_open) {
        report.checked += 1;
        match replayer.replay(&history) {
            Ok(_) => report.passed += 1,
            Err(ReplayError::UnknownWorkflowType { .. }) => {
                report
                    .skipped
                    .push((history.workflow_id, history.run, history.workflow_type))
            }
            Err(error) => report.failed.push(ShadowFailure {
                workflow_id: history.workflow_id,
                run: history.run,
                workflow_type: history.workflow_type,
                error,
            }),
        }
    }
    report
}

fn is_open(history: &HistoryExport) -> bool {
    !history.events.last().is_some_and(|e| e.is_terminal())
}

fn open_runs_of_store_dir(dir: &std::path::Path) -> Result<Vec<HistoryExport>, ShadowError> {
    let store_error = |source| ShadowError::Store {
        path: dir.to_path_buf(),
        source,
    };
    let store = Store::open_read_only(dir, StoreConfig::default()).map_err(store_error)?;
    let filter = RunFilter {
        status: Some(RunStatus::Running),
        ..RunFilter::default()
    };
    let runs = store.list_runs(&filter).map_err(store_error)?;
    // The history seam is async; a runtime of our own on a thread of our
    // own, because the caller may already be inside one (a tokio test).
    let read = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<Vec<HistoryExport>, HistoryFileError> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| HistoryFileError::Io {
                        path: dir.to_path_buf(),
                        source: e,
                    })?;
                runtime.block_on(async {
                    let mut histories = Vec::with_capacity(runs.len());
                    for summary in &runs {
                        histories.push(HistoryExport::from_run(&store, summary.run).await?);
                    }
                    Ok(histories)
                })
            })
            .join()
    });
    match read {
        Ok(result) => result.map_err(|source| ShadowError::History {
            path: dir.to_path_buf(),
            source,
        }),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn open_runs_of_export_dir(dir: &std::path::Path) -> Result<Vec<HistoryExport>, ShadowError> {
    let files = history_files(dir).map_err(|source| ShadowError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    files
        .into_iter()
        .map(|path| {
            HistoryExport::read_file(&path).map_err(|source| ShadowError::History { path, source })
        })
        .collect()
}
