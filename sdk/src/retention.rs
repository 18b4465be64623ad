//! Purging closed runs from the [`Client`]: batch after batch of
//! [`HistoryStore::purge_closed`] until the store has no run left whose
//! retention passed, each batch optionally exported first.
//!
//! What may be purged: closed runs whose retention ([`RetentionPolicy`],
//! by workflow type) passed since they closed, except the closed children
//! of an open parent, which are kept until the parent closes. Open runs
//! are never touched. A purged run is gone: reads of it say
//! `RunNotFound`, and its workflow id counts as never used once its
//! latest run is purged.
//!
//! # Exporting first
//!
//! With [`PurgeOptions::export_to`], each run's history is written in the
//! documented JSON form ([`history_file`](crate::history_file)) to
//! `DIR/{workflow id}.{run}.json` (characters other than letters, digits,
//! `-`, `_` and `.` in the id become `_`, and it is cut at 100), and the file is synced to disk,
//! before the batch that deletes the run is made: a crash between the
//! two leaves the run and its export both, never neither. Each batch is a
//! dry run first, exported, then the purge of exactly those runs.
//!
//! [`HistoryStore::purge_closed`]: refrain_history::HistoryStore::purge_closed

use crate::client::Client;
use crate::history_file::HistoryExport;
use refrain_history::{
    PurgeBatch, PurgeRequest, ReadError, RetentionPolicy, RunId, RunSummary, Timestamp,
    MAX_PURGE_BATCH,
};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What [`Client::purge`] does.
#[derive(Clone, Debug)]
pub struct PurgeOptions {
    /// Which closed runs have had their time.
    pub policy: RetentionPolicy,
    /// Only say which runs would go.
    pub dry_run: bool,
    /// Write each run's history here before it is deleted.
    pub export_to: Option<PathBuf>,
    /// Runs per batch (at most [`MAX_PURGE_BATCH`]).
    pub batch: usize,
}

impl PurgeOptions {
    /// A purge under `policy`, in batches of the largest size, without
    /// export.
    pub fn new(policy: RetentionPolicy) -> Self {
        PurgeOptions {
            policy,
            dry_run: false,
            export_to: None,
            batch: MAX_PURGE_BATCH,
        }
    }
}

/// What a purge did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PurgeReport {
    /// The runs deleted (dry: that would be), in run order.
    pub runs: Vec<RunSummary>,
    /// How many runs were looked at.
    pub examined: u64,
    /// The export files written, one per run.
    pub exported: Vec<PathBuf>,
}

/// Why a purge stopped. The batches before it were made (and durable).
#[derive(Debug)]
pub enum PurgeError {
    /// The store refused or failed.
    Store(ReadError),
    /// A history could not be exported (the runs of its batch were kept).
    Export {
        /// The run.
        run: RunId,
        /// Where it was to go.
        path: PathBuf,
        /// Why it could not.
        reason: String,
    },
}

impl fmt::Display for PurgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PurgeError::Store(e) => write!(f, "purge stopped: {e}"),
            PurgeError::Export { run, path, reason } => write!(
                f,
                "purge stopped: cannot export {run} to {}: {reason} (its batch was kept)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PurgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PurgeError::Store(e) => Some(e),
            PurgeError::Export { .. } => None,
        }
    }
}

impl From<ReadError> for PurgeError {
    fn from(e: ReadError) -> Self {
        PurgeError::Store(e)
    }
}

impl Client {
    /// Purges the closed runs whose retention under `options.policy` has
    /// passed now, batch by batch (see the [module](crate::retention)
    /// documentation), calling `progress` after each batch with the batch
    /// and the report so far. Durable when it returns; a purge stopped by
    /// a crash resumes when run again.
    ///
    /// # Errors
    /// `Store` if the store failed; `Export` if a history could not be
    /// written (the runs of that batch are kept). Batches made before the
    /// error stay made.
    pub async fn purge(
        &self,
        options: &PurgeOptions,
        mut progress: impl FnMut(&PurgeBatch, &PurgeReport),
    ) -> Result<PurgeReport, PurgeError> {
        let store = self.history_store();
        let mut report = PurgeReport::default();
        let mut req = PurgeRequest {
            limit: options.batch.clamp(1, MAX_PURGE_BATCH),
            dry_run: options.dry_run || options.export_to.is_some(),
            ..PurgeRequest::new(options.policy.clone(), Timestamp::now())
        };
        if let Some(dir) = &options.export_to {
            std::fs::create_dir_all(dir).map_err(|e| PurgeError::Export {
                run: RunId(0),
                path: dir.clone(),
                reason: e.to_string(),
            })?;
        }
        loop {
            let mut batch = store.purge_closed(req.clone()).await?;
            report.examined += batch.examined;
            if let (Some(dir), false) = (&options.export_to, batch.runs.is_empty()) {
                for summary in &batch.runs {
                    report
                        .exported
                        .push(export(store.as_ref(), dir, summary).await?);
                }
                sync_dir(dir);
                if !options.dry_run {
                    let runs = batch.runs.iter().map(|r| r.run).collect();
                    let only = PurgeRequest {
                        dry_run: false,
                        runs: Some(runs),
                        ..req.clone()
                    };
                    batch.runs = store.purge_closed(only).await?.runs;
                }
            }
            report.runs.extend(batch.runs.iter().cloned());
            progress(&batch, &report);
            match batch.next {
                Some(next) => req.after = Some(next),
                None => return Ok(report),
            }
        }
    }
}

/// Writes `run`'s history to `dir` and syncs the file.
async fn export(
    store: &dyn refrain_history::HistoryStore,
    dir: &Path,
    summary: &RunSummary,
) -> Result<PathBuf, PurgeError> {
    let path = dir.join(export_name(summary));
    let failed = |reason: String| PurgeError::Export {
        run: summary.run,
        path: path.clone(),
        reason,
    };
    let history = HistoryExport::from_run(store, summary.run)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut text = history.to_json();
    text.push('\n');
    let written = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    written.map_err(|e| failed(e.to_string()))?;
    Ok(path)
}

/// Makes the new files' names durable, where the platform allows it (a
/// directory cannot be opened for syncing on every one).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// `{workflow id}.{run}.json`, the id made safe for a file name.
pub fn export_name(summary: &RunSummary) -> String {
    let id: String = summary
        .workflow_id
        .as_str()
        .chars()
        // File names have a length limit; the run number keeps it unique.
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{id}.{}.json", summary.run.0)
}

/// A retention period that could not be read: see [`parse_period`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPeriod {
    /// The text as given.
    pub text: String,
}

impl fmt::Display for BadPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a period: a whole number and a unit, one of s, m, h, d, w (e.g. 30d)",
            self.text
        )
    }
}

impl std::error::Error for BadPeriod {}

/// Reads a period as operators write it: a whole number and a unit, `s`,
/// `m`, `h`, `d` (days) or `w` (weeks): `90m`, `30d`. A bare number is
/// refused (seconds or days?), as is a period past what a timestamp holds.
///
/// ```
/// use refrain::retention::parse_period;
/// use std::time::Duration;
/// assert_eq!(parse_period("30d").unwrap(), Duration::from_secs(30 * 86_400));
/// assert!(parse_period("30").is_err());
/// ```
///
/// # Errors
/// [`BadPeriod`] naming the text.
pub fn parse_period(text: &str) -> Result<Duration, BadPeriod> {
    let bad = || BadPeriod {
        text: text.to_owned(),
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&i| i > 0)
        .ok_or_else(bad)?;
    let (number, unit) = trimmed.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    // Timestamps are milliseconds in a u64: keep the period well inside.
    n.checked_mul(unit_secs)
        .filter(|secs| *secs <= u64::MAX / 1_000_000)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}
