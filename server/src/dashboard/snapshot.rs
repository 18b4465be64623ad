//! The runs counted: how many runs are in each state, and per workflow
//! type what the KPIs start from, kept a few seconds.
//!
//! The store keeps no counters, so counting means reading every run
//! record (one `list_runs` scan: about 0.3 s for 100,000 runs in a debug
//! build, see the report of `dashboard_scale`). Doing it on every render
//! would make each page view cost a full scan; instead one scan serves
//! every page rendered within [`FRESH_FOR`], and concurrent renders that
//! find it stale wait for the one scan in flight rather than each
//! starting their own. The page says how old the counts are.

use super::fmt::STATUSES;
use crate::state::AppState;
use refrain_history::{PageRequest, ReadError, RunFilter, RunId, RunStatus};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a snapshot serves pages.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(5);

/// Runs read per `list_runs` call while counting.
const SCAN_PAGE: usize = 100_000;

/// The closed runs per type whose cycle times and ids a snapshot keeps
/// (the most recent ones).
pub(crate) const RECENT_CLOSED: usize = 1_000;

/// What one scan of the run records found.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Runs per status, in the order of [`STATUSES`].
    pub by_status: [u64; 6],
    /// Per workflow type.
    pub types: BTreeMap<String, TypeStats>,
    /// How many runs it read.
    pub total: u64,
    /// How long the scan took.
    pub took: Duration,
}

/// One workflow type's runs.
#[derive(Debug, Default)]
pub(crate) struct TypeStats {
    /// Runs per status, in the order of [`STATUSES`].
    pub by_status: [u64; 6],
    /// The most recent closed runs (completed, failed, cancelled,
    /// terminated; newest last) and their cycle times in milliseconds.
    pub recent_closed: Vec<(RunId, u64)>,
    /// Every closed run's cycle time in milliseconds.
    pub cycle_ms: Vec<u64>,
    /// The most recent open runs (newest last), where open human tasks are
    /// looked for.
    pub recent_open: Vec<RunId>,
}

impl TypeStats {
    /// Runs of the type in `status`.
    pub(crate) fn count(&self, status: RunStatus) -> u64 {
        self.by_status[index(status)]
    }

    /// Runs that ended (continued-as-new is a hand-over, not an end).
    pub(crate) fn closed(&self) -> u64 {
        [
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Cancelled,
            RunStatus::Terminated,
        ]
        .into_iter()
        .map(|s| self.count(s))
        .sum()
    }
}

impl Snapshot {
    /// Runs in `status`.
    pub(crate) fn count(&self, status: RunStatus) -> u64 {
        self.by_status[index(status)]
    }
}

pub(crate) fn index(status: RunStatus) -> usize {
    STATUSES.iter().position(|s| *s == status).unwrap_or(0)
}

/// Whether a run in `status` ended (see [`TypeStats::closed`]).
fn ended(status: RunStatus) -> bool {
    !status.is_open() && status != RunStatus::ContinuedAsNew
}

/// The last snapshot and when it was taken; shared by the dashboard's
/// handlers.
#[derive(Default)]
pub(crate) struct Counter {
    last: Mutex<Option<(Instant, Arc<Snapshot>)>>,
}

impl Counter {
    /// A snapshot at most [`FRESH_FOR`] old, and its age.
    ///
    /// # Errors
    /// A storage error of the scan.
    pub(crate) async fn get(
        &self,
        state: &AppState,
    ) -> Result<(Arc<Snapshot>, Duration), ReadError> {
        // Held across the scan: renders arriving meanwhile wait for it.
        let mut last = self.last.lock().await;
        if let Some((at, snap)) = last.as_ref() {
            if at.elapsed() < FRESH_FOR {
                return Ok((snap.clone(), at.elapsed()));
            }
        }
        let snap = Arc::new(scan(state).await?);
        *last = Some((Instant::now(), snap.clone()));
        Ok((snap, Duration::ZERO))
    }
}

async fn scan(state: &AppState) -> Result<Snapshot, ReadError> {
    let started = Instant::now();
    let mut snap = Snapshot::default();
    let filter = RunFilter::default();
    let mut page = PageRequest::first(SCAN_PAGE);
    loop {
        let got = state.store().list_runs(&filter, page).await?;
        for r in &got.runs {
            let i = index(r.status);
            snap.by_status[i] += 1;
            snap.total += 1;
            let t = snap.types.entry(r.workflow_type.clone()).or_default();
            t.by_status[i] += 1;
            if ended(r.status) {
                let cycle = r
                    .closed_at
                    .map(|c| c.saturating_since(r.started_at).as_millis())
                    .unwrap_or(0);
                let cycle = u64::try_from(cycle).unwrap_or(u64::MAX);
                t.cycle_ms.push(cycle);
                push_bounded(&mut t.recent_closed, (r.run, cycle));
            } else if r.status.is_open() {
                push_bounded(&mut t.recent_open, r.run);
            }
        }
        match got.next_cursor {
            Some(c) => page = PageRequest::after(c, SCAN_PAGE),
            None => break,
        }
    }
    snap.took = started.elapsed();
    Ok(snap)
}

/// Keeps the last [`RECENT_CLOSED`] items pushed (runs come in run
/// order, so these are the most recent).
fn push_bounded<T>(v: &mut Vec<T>, item: T) {
    if v.len() == RECENT_CLOSED * 2 {
        v.drain(..RECENT_CLOSED);
    }
    v.push(item);
}

/// The last `n` of `v` (after [`push_bounded`], at most
/// [`RECENT_CLOSED`] are meant).
pub(crate) fn last_n<T>(v: &[T], n: usize) -> &[T] {
    &v[v.len().saturating_sub(n)..]
}

/// The `p`-th percentile (0..=100) of `values`, nearest rank; sorts them.
pub(crate) fn percentile(values: &mut [u64], p: u64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len() as u64;
    // Nearest rank: the smallest value with at least p% at or below it.
    let rank = (p * n).div_ceil(100).max(1);
    let i = usize::try_from(rank - 1).unwrap_or(usize::MAX);
    values.get(i).or(values.last()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 50), Some(50));
        assert_eq!(percentile(&mut v, 95), Some(95));
        assert_eq!(percentile(&mut v, 100), Some(100));
        assert_eq!(percentile(&mut [7], 95), Some(7));
        assert_eq!(percentile(&mut [], 50), None);
    }

    #[test]
    fn only_the_most_recent_are_kept() {
        let mut v = Vec::new();
        for i in 0..(RECENT_CLOSED * 5 + 3) {
            push_bounded(&mut v, i);
        }
        let last = last_n(&v, RECENT_CLOSED);
        assert_eq!(last.len(), RECENT_CLOSED);
        assert_eq!(*last.last().unwrap(), RECENT_CLOSED * 5 + 2);
        assert_eq!(last[0], RECENT_CLOSED * 4 + 3);
    }
}
