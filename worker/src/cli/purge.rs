//! `refrain purge`: deletes closed runs past their retention, batch by
//! batch, on a store (through the `Client`, exporting first with
//! `--export`) or through a server (`POST /api/v1/purge`, one request
//! per batch), printing each run as its batch is made and a line of
//! progress after it.

use super::remote::print_json;
use super::{CliError, Out};
use refrain::retention::{parse_period, PurgeOptions};
use refrain::{Client, RetentionPolicy};
use refrain_history::Store;
use refrain_server::remote::{PurgeQuery, RemoteClient, RunSummary};
use serde::Serialize;
use std::path::PathBuf;

/// What `refrain purge` was asked.
pub(super) struct PurgeArgs {
    pub(super) older_than: String,
    pub(super) workflow_type: Option<String>,
    pub(super) export: Option<PathBuf>,
    pub(super) dry_run: bool,
}

/// The `--json` answer: every run of every batch.
#[derive(Serialize)]
struct Report<'a> {
    dry_run: bool,
    count: usize,
    runs: &'a [RunSummary],
    exported: Vec<String>,
}

/// Prints the runs of one batch and the progress so far (text only).
struct Progress {
    json: bool,
    dry_run: bool,
    batches: usize,
    runs: Vec<RunSummary>,
    examined: u64,
}

impl Progress {
    fn new(json: bool, dry_run: bool) -> Self {
        Progress {
            json,
            dry_run,
            batches: 0,
            runs: Vec::new(),
            examined: 0,
        }
    }

    fn batch(&mut self, runs: Vec<RunSummary>, examined: u64, out: Out<'_>) -> std::io::Result<()> {
        self.batches += 1;
        self.examined += examined;
        if !self.json {
            let verb = if self.dry_run {
                "would purge"
            } else {
                "purged"
            };
            for r in &runs {
                writeln!(
                    out,
                    "{verb} {} (run {}, {}, {}, closed {})",
                    r.workflow_id,
                    r.run,
                    r.workflow_type,
                    r.status,
                    r.closed_at.as_deref().unwrap_or("-")
                )?;
            }
            writeln!(
                out,
                "batch {}: {} runs, {} so far, {} runs examined",
                self.batches,
                runs.len(),
                self.runs.len() + runs.len(),
                self.examined
            )?;
        }
        self.runs.extend(runs);
        Ok(())
    }

    fn finish(&self, exported: Vec<String>, out: Out<'_>) -> Result<(), CliError> {
        if self.json {
            return print_json(
                out,
                &Report {
                    dry_run: self.dry_run,
                    count: self.runs.len(),
                    runs: &self.runs,
                    exported,
                },
            );
        }
        if !exported.is_empty() {
            writeln!(out, "{} histories exported", exported.len())?;
        }
        if self.dry_run {
            writeln!(
                out,
                "{} runs would be purged (dry run: nothing deleted)",
                self.runs.len()
            )?;
        } else {
            writeln!(out, "{} runs purged", self.runs.len())?;
        }
        Ok(())
    }
}

fn policy(args: &PurgeArgs) -> Result<RetentionPolicy, CliError> {
    let period = parse_period(&args.older_than).map_err(|e| CliError::Unusable(e.to_string()))?;
    Ok(match &args.workflow_type {
        Some(t) => RetentionPolicy::only_type(t.clone(), period),
        None => RetentionPolicy::keep_for(period),
    })
}

/// Purges a store through the `Client`.
pub(super) async fn local(
    store: &Store,
    args: PurgeArgs,
    json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let options = PurgeOptions {
        dry_run: args.dry_run,
        export_to: args.export.clone(),
        ..PurgeOptions::new(policy(&args)?)
    };
    let client = Client::new(store.clone());
    let mut progress = Progress::new(json, args.dry_run);
    let mut written = Ok(());
    let purged = client
        .purge(&options, |batch, _| {
            if written.is_ok() {
                let runs = batch.runs.iter().map(super::local::run_summary).collect();
                written = progress.batch(runs, batch.examined, &mut *out);
            }
        })
        .await;
    written?;
    let report = purged.map_err(|e| CliError::Failed(e.to_string()))?;
    let exported = report
        .exported
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    progress.finish(exported, out)
}

/// Purges through a server, one request per batch.
pub(super) async fn remote(
    api: &RemoteClient,
    args: PurgeArgs,
    json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    if args.export.is_some() {
        return Err(CliError::Unusable(
            "--export is for a store (--db): the server does not write files".into(),
        ));
    }
    let mut query = PurgeQuery {
        older_than: args.older_than,
        workflow_type: args.workflow_type,
        dry_run: args.dry_run,
        after: None,
    };
    let mut progress = Progress::new(json, args.dry_run);
    loop {
        let answer = api.purge(&query).await.map_err(super::remote::failed)?;
        progress.batch(answer.runs, answer.examined, out)?;
        match answer.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    progress.finish(Vec::new(), out)
}
