//! The runs counted: how many runs are in each state, and per workflow
//! type what the KPIs start from.
//!
//! The store keeps no counters, so counting means reading every run
//! record (one `list_runs` walk: 1 to 3 s for 100,000 runs in a debug
//! build on a busy two-core machine, see `tests/server/dashboard_scale.rs`). Doing it on every render would
//! make each page view cost that. Instead the last count serves every
//! render; once it is older than [`FRESH_FOR`], the next render starts one
//! scan in the background and still answers at once with the old count.
//! Only the first render after the server starts waits for a scan. The
//! page says how old the counts are.

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

/// A snapshot and when it was taken.
type Taken = Option<(Instant, Arc<Snapshot>)>;

/// The last snapshot and when it was taken; shared by the dashboard's
/// handlers.
#[derive(Default)]
pub(crate) struct Counter {
    last: Arc<std::sync::Mutex<Taken>>,
    /// Held by the scan in flight, so that there is at most one.
    scanning: Arc<Mutex<()>>,
}

impl Counter {
    fn current(&self) -> Taken {
        // A panic while holding this lock leaves the value whole.
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(last: &std::sync::Mutex<Taken>, snap: Arc<Snapshot>) {
        *last.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), snap));
    }

    /// The last snapshot and its age. A snapshot older than [`FRESH_FOR`]
    /// is still answered, and a scan starts in the background to replace
    /// it, so that no render waits for a scan but the very first.
    ///
    /// # Errors
    /// A storage error of the first scan.
    pub(crate) async fn get(
        &self,
        state: &AppState,
    ) -> Result<(Arc<Snapshot>, Duration), ReadError> {
        if let Some((at, snap)) = self.current() {
            if at.elapsed() >= FRESH_FOR {
                if let Ok(guard) = self.scanning.clone().try_lock_owned() {
                    let (state, last) = (state.clone(), self.last.clone());
                    tokio::spawn(async move {
                        match scan(&state).await {
                            Ok(snap) => Self::set(&last, Arc::new(snap)),
                            // The old counts stay, with their age shown.
                            Err(e) => tracing::warn!(error = %e, "counting runs failed"),
                        }
                        drop(guard);
                    });
                }
            }
            return Ok((snap, at.elapsed()));
        }
        let _scanning = self.scanning.lock().await;
        if let Some((at, snap)) = self.current() {
            return Ok((snap, at.elapsed()));
        }
        let snap = Arc::new(scan(state).await?);
        Self::set(&self.last, snap.clone());
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
