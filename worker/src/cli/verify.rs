//! `refrain verify`: every damaged run of a store, without writing to it.

use super::{cannot_open, cli_config, CliError, Out, EXIT_FAILED};
use refrain_history::{Store, StoreError};
use std::path::Path;

/// Opens a copy of the store in `dir` (see `Store::open_read_only`),
/// checks every run and prints what is damaged. Exit code 1 if anything
/// is.
pub(super) fn verify(dir: &Path, out: Out<'_>) -> Result<u8, CliError> {
    let store = match Store::open_read_only(dir, cli_config()) {
        Ok(store) => store,
        // sled cannot read even a copy: nothing can be listed run by run.
        Err(StoreError::Damaged { reason, .. }) => {
            writeln!(out, "store: {reason}")?;
            writeln!(out, "damaged: the store cannot be read at all")?;
            return Ok(EXIT_FAILED);
        }
        Err(e) => return Err(cannot_open(dir, e)),
    };
    let report = store.verify()?;
    for finding in &report.store {
        writeln!(out, "store: {finding}")?;
    }
    for damage in &report.runs {
        match &damage.workflow_id {
            Some(id) => writeln!(out, "{} ({id}): {}", damage.run, damage.reason)?,
            None => writeln!(out, "{}: {}", damage.run, damage.reason)?,
        }
    }
    if report.is_intact() {
        writeln!(out, "{} runs checked, no damage found", report.runs_checked)?;
        return Ok(0);
    }
    writeln!(
        out,
        "damaged: {} runs ({} checked), {} store-wide findings",
        report.runs.len(),
        report.runs_checked,
        report.store.len()
    )?;
    Ok(EXIT_FAILED)
}
