//! Retention: how long closed runs are kept ([`RetentionPolicy`]), and
//! purging the runs whose time is up, one bounded batch at a time
//! ([`Store::purge_closed`], `HistoryStore::purge_closed`). What may be
//! purged and what goes with a run is written once, in
//! `transitions::purge`.
//!
//! # Batches, crashes, resuming
//!
//! A batch deletes at most [`MAX_PURGE_BATCH`] runs, in one transaction,
//! so a purge of 100,000 runs never holds one giant transaction (other
//! writers wait for one batch at most) and a crash in the middle leaves
//! every run either wholly there or wholly gone. A purge resumes by
//! being run again: runs already gone are not met again, and nothing is
//! remembered between batches but the caller's cursor.
//!
//! # Disk space
//!
//! sled does not give a deleted value's space back to the file system:
//! the data file keeps its size and the space is reused by later writes.
//! A purge therefore bounds the store's size (runs written after it take
//! the place of the runs it deleted) rather than shrinking its directory.
//! `cargo bench -p refrain-worker --bench purge` measures both.

use super::batch::block_on;
use super::engine::{Bytes, Table};
use super::transitions::purge::{expired, purge_runs, PurgeItem};
use super::tx::decode;
use super::Inner;
use crate::codec::CodecError;
use crate::error::StoreError;
use crate::ids::{RunId, Timestamp};
use crate::keys;
use crate::store::api::RunSummary;
use crate::store::records::RunRecord;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most runs one purge batch deletes (in one transaction).
pub const MAX_PURGE_BATCH: usize = 500;

/// Most runs one batch reads while looking for runs to purge, so that a
/// batch over a store of mostly open or young runs still answers soon;
/// its cursor continues the walk.
const MAX_EXAMINED: usize = 10 * MAX_PURGE_BATCH;

/// How long closed runs are kept, from the time they closed: a period for
/// every workflow type, and periods of their own for some types. A type
/// with neither is kept forever.
///
/// ```
/// use refrain_history::store::retention::RetentionPolicy;
/// use std::time::Duration;
///
/// const DAY: Duration = Duration::from_secs(86_400);
/// let policy = RetentionPolicy::keep_for(30 * DAY).with_type("payroll", 7 * 365 * DAY);
/// assert_eq!(policy.retention_of("order-to-cash"), Some(30 * DAY));
/// assert_eq!(policy.retention_of("payroll"), Some(7 * 365 * DAY));
/// assert_eq!(RetentionPolicy::default().retention_of("payroll"), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// How long runs of a type not in `per_type` are kept; `None`: forever.
    pub default: Option<Duration>,
    /// How long runs of these types are kept (over `default`).
    pub per_type: BTreeMap<String, Duration>,
}

impl RetentionPolicy {
    /// Every closed run kept for `period`.
    pub fn keep_for(period: Duration) -> Self {
        RetentionPolicy {
            default: Some(period),
            per_type: BTreeMap::new(),
        }
    }

    /// Runs of `workflow_type` kept for `period`, other types as before.
    #[must_use]
    pub fn with_type(mut self, workflow_type: impl Into<String>, period: Duration) -> Self {
        self.per_type.insert(workflow_type.into(), period);
        self
    }

    /// Only runs of `workflow_type`, kept for `period`; other types forever.
    pub fn only_type(workflow_type: impl Into<String>, period: Duration) -> Self {
        RetentionPolicy::default().with_type(workflow_type, period)
    }

    /// How long a closed run of `workflow_type` is kept; `None`: forever.
    pub fn retention_of(&self, workflow_type: &str) -> Option<Duration> {
        self.per_type.get(workflow_type).copied().or(self.default)
    }

    /// Whether the policy purges anything at all.
    pub fn purges_anything(&self) -> bool {
        self.default.is_some() || !self.per_type.is_empty()
    }
}

/// One batch of a purge: see `HistoryStore::purge_closed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeRequest {
    /// Which closed runs have had their time.
    pub policy: RetentionPolicy,
    /// The time retention periods are measured to.
    pub now: Timestamp,
    /// Where the walk resumes: the `next` of the batch before (`None`: from
    /// the first run). Ignored with `runs`.
    pub after: Option<RunId>,
    /// Most runs in the batch (at most [`MAX_PURGE_BATCH`] are used; at
    /// least 1).
    pub limit: usize,
    /// Only say which runs would go; delete nothing.
    pub dry_run: bool,
    /// Only these runs (each still checked against the policy), instead
    /// of a walk: a caller that exported a dry run's runs deletes exactly
    /// those.
    pub runs: Option<Vec<RunId>>,
}

impl PurgeRequest {
    /// The first batch of a purge under `policy` at `now`, of the largest
    /// size.
    pub fn new(policy: RetentionPolicy, now: Timestamp) -> Self {
        PurgeRequest {
            policy,
            now,
            after: None,
            limit: MAX_PURGE_BATCH,
            dry_run: false,
            runs: None,
        }
    }
}

/// What one purge batch did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PurgeBatch {
    /// The runs deleted (with `dry_run`: that would be), in run order.
    pub runs: Vec<RunSummary>,
    /// How many runs the batch looked at.
    pub examined: u64,
    /// Where the next batch resumes (its `after`); `None` once the walk
    /// reached the last run (or the batch was of given `runs`).
    pub next: Option<RunId>,
}

impl Inner {
    pub(super) async fn purge_closed(&self, req: PurgeRequest) -> Result<PurgeBatch, StoreError> {
        let limit = req.limit.clamp(1, MAX_PURGE_BATCH);
        let (candidates, examined, next) = match &req.runs {
            Some(runs) => (self.given_candidates(runs, &req)?, runs.len() as u64, None),
            None => self.walk_candidates(&req, limit)?,
        };
        if req.dry_run || candidates.is_empty() {
            let runs = candidates.into_iter().map(|(_, summary)| summary).collect();
            return Ok(PurgeBatch {
                runs,
                examined,
                next,
            });
        }
        let items = candidates
            .iter()
            .map(|(run, _)| self.purge_item(*run))
            .collect::<Result<Vec<_>, _>>()?;
        let (policy, now) = (req.policy, req.now);
        let runs = self
            .batcher
            .apply_async(&self.trees, move |tx| purge_runs(tx, &items, &policy, now))
            .await?;
        Ok(PurgeBatch {
            runs,
            examined,
            next,
        })
    }

    /// The runs from `req.after` on that may go, up to `limit` of them:
    /// plain reads, checked again in the transaction.
    #[allow(clippy::type_complexity)]
    fn walk_candidates(
        &self,
        req: &PurgeRequest,
        limit: usize,
    ) -> Result<(Vec<(RunId, RunSummary)>, u64, Option<RunId>), StoreError> {
        let walk = match req.after {
            None => self.trees.runs.iter(),
            Some(RunId(u64::MAX)) => return Ok((Vec::new(), 0, None)),
            Some(run) => self.trees.runs.range(keys::run_key(RunId(run.0 + 1))..),
        };
        let mut out = Vec::new();
        let mut examined = 0u64;
        for item in walk {
            let (key, bytes) = item?;
            let run = keys::parse_run_key(&key).map_err(|bad| StoreError::Corrupt {
                what: "run key",
                run: None,
                source: CodecError::Decode(format!("{bad:?}")),
            })?;
            examined += 1;
            // A damaged record is left for `verify` to report, not purged.
            if let Ok(record) = decode::<RunRecord>(&bytes, "run", Some(run)) {
                if self.may_go(&record, req)? {
                    out.push((run, summary(run, record)));
                }
            }
            if out.len() >= limit || examined as usize >= MAX_EXAMINED {
                return Ok((out, examined, Some(run)));
            }
        }
        Ok((out, examined, None))
    }

    fn given_candidates(
        &self,
        runs: &[RunId],
        req: &PurgeRequest,
    ) -> Result<Vec<(RunId, RunSummary)>, StoreError> {
        let mut runs = runs.to_vec();
        runs.sort_unstable();
        runs.dedup();
        runs.truncate(MAX_PURGE_BATCH);
        let mut out = Vec::new();
        for run in runs {
            if let Some(record) = self.run_record(run)? {
                if self.may_go(&record, req)? {
                    out.push((run, summary(run, record)));
                }
            }
        }
        Ok(out)
    }

    /// Whether the run may be purged now (as `transitions::purge` decides
    /// it again in the transaction).
    fn may_go(&self, record: &RunRecord, req: &PurgeRequest) -> Result<bool, StoreError> {
        if !expired(record, &req.policy, req.now) {
            return Ok(false);
        }
        let Some(parent) = &record.parent else {
            return Ok(true);
        };
        // An undecodable parent record counts as open: keep the child.
        Ok(match self.run_record(parent.run) {
            Ok(parent) => !parent.is_some_and(|p| p.status.is_open()),
            Err(StoreError::Corrupt { .. }) => false,
            Err(e) => return Err(e),
        })
    }

    /// The keys `run` holds under its prefix.
    fn purge_item(&self, run: RunId) -> Result<PurgeItem, StoreError> {
        let prefix = keys::run_key(run);
        let keys_of = |table: &Table| -> Result<Vec<Bytes>, StoreError> {
            table
                .scan_prefix(prefix)
                .keys()
                .map(|k| k.map_err(StoreError::from))
                .collect()
        };
        Ok(PurgeItem {
            run,
            history: keys_of(&self.trees.history)?,
            inbox: keys_of(&self.trees.inbox)?,
            updates: keys_of(&self.trees.updates)?,
            activity_tasks: keys_of(&self.trees.activity_tasks)?,
        })
    }
}

fn summary(run: RunId, record: RunRecord) -> RunSummary {
    RunSummary {
        run,
        workflow_id: record.workflow_id,
        workflow_type: record.workflow_type,
        status: record.status,
        started_at: record.started_at,
        closed_at: record.closed_at,
    }
}

impl super::Store {
    /// Runs one batch of a purge of closed runs (see [`PurgeRequest`] and
    /// the module documentation): up to [`MAX_PURGE_BATCH`] runs whose
    /// retention passed, deleted completely in one transaction. Never an
    /// open run, nor a closed run whose parent is open (kept until the
    /// parent closes). Call again with `after: batch.next` until `next` is
    /// `None`.
    ///
    /// Not durable until [`Store::durable`](super::Store::durable)
    /// returns.
    ///
    /// # Errors
    /// `Corrupt` for an undecodable run key; `Storage`. A damaged run
    /// record is skipped (left for `verify`), not an error. Nothing is
    /// written on error.
    pub async fn purge_closed(&self, req: PurgeRequest) -> Result<PurgeBatch, StoreError> {
        self.inner.purge_closed(req).await
    }

    /// Blocking form of [`Store::purge_closed`], for threads outside an
    /// async runtime.
    ///
    /// # Errors
    /// As [`Store::purge_closed`].
    pub fn purge_closed_blocking(&self, req: PurgeRequest) -> Result<PurgeBatch, StoreError> {
        block_on(self.inner.purge_closed(req))
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
