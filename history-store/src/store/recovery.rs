//! Activity attempts orphaned by an earlier process, handled when the store
//! opens.
//!
//! sled admits one process per database (a file lock), and in embedded
//! mode that process runs every activity attempt. So when `Store::open`
//! succeeds, every attempt still marked `Running` belonged to a process
//! that no longer exists: nothing can ever complete it, and waiting for its
//! deadline (start-to-close, often a minute) only delays the workflow. Each
//! such attempt is failed at open, as its deadline would have failed it (a
//! start-to-close timeout, counted against the retry policy and
//! schedule-to-close, with a message that says the attempt was lost with
//! its process), except that the retry is claimable at once rather than
//! after the policy's backoff: the backoff
//! protects a struggling dependency from the activity, and a dead process
//! says nothing about the dependency. A cancelled activity is not retried,
//! as with any failed attempt.
//!
//! The token check is unchanged: the orphaned attempt's token is void, so
//! a result it could somehow still deliver would be rejected, and the
//! outcome is recorded once, by whichever attempt completes.
//!
//! Over a storage several stores share, an open proves nothing about the
//! others: each attempt records the store (owner) that claimed it, and an
//! open fails only the attempts of owners that are gone (their leases
//! expired, or their record was already removed by whoever found them
//! expired; see `transitions::leases`). The attempts of a store that stops
//! while the others run are failed the same way, by the first store whose
//! periodic renewal finds its leases expired (`owners`).
//!
//! Attempts without any deadline (no timeout configured at all) are
//! indexed at the end of time, which the timer service never reaches, so
//! they are found here too. (Stores written before that index existed may
//! hold such attempts unindexed; they end only with a completion.)

use super::engine::Bytes;
use super::transitions::activities::deadline_owner;
use super::transitions::recovery::{orphan, Orphan, Orphans};
use super::tx::TxResult;
use super::Inner;
use crate::error::StoreError;
use crate::ids::Timestamp;

/// Tree name used for quarantined keys (shared with the timer service).
const DEADLINES: &str = "activity_deadlines";

/// Orphans handled per transaction.
const CHUNK: usize = 256;

impl Inner {
    /// Fails every attempt that was running when the previous process
    /// stopped, or over a shared storage every attempt of an owner that
    /// is gone at `now` (see the module docs). Returns how many were
    /// failed.
    pub(super) fn expire_orphaned_attempts(&self, now: Timestamp) -> Result<usize, StoreError> {
        let mut keys: Vec<(Bytes, Orphans)> = Vec::new();
        if self.owner.shared {
            let live = self.live_owners(now)?;
            for item in self.trees.activity_deadlines.iter() {
                let (key, value) = item?;
                match deadline_owner(&value) {
                    Some(owner) if owner == self.owner.id || live.contains(&owner) => {}
                    Some(owner) => keys.push((key, Orphans::Of(owner))),
                    None => keys.push((key, Orphans::Of(u64::MAX))),
                }
            }
        } else {
            for key in self.trees.activity_deadlines.iter().keys() {
                keys.push((key?, Orphans::All));
            }
        }
        let mut failed = 0;
        for chunk in keys.chunks(CHUNK) {
            let chunk_in = chunk.to_vec();
            let outcomes = self.batcher.apply(&self.trees, move |tx| {
                chunk_in
                    .iter()
                    .map(|(key, which)| orphan(&tx.task, key, *which, now))
                    .collect::<TxResult<Vec<Orphan>>>()
            });
            let outcomes = match outcomes {
                Ok(outcomes) => outcomes,
                Err(StoreError::Storage(e)) => return Err(StoreError::Storage(e)),
                // One entry took the chunk's transaction with it: handle
                // them one by one and set the culprit aside.
                Err(_) => {
                    let mut one_by_one = Vec::with_capacity(chunk.len());
                    for (key, which) in chunk {
                        let (key_in, which) = (key.clone(), *which);
                        let outcome = self
                            .batcher
                            .apply(&self.trees, move |tx| orphan(&tx.task, &key_in, which, now));
                        one_by_one.push(outcome.unwrap_or_else(Orphan::Corrupt));
                    }
                    one_by_one
                }
            };
            for ((key, _), outcome) in chunk.iter().zip(outcomes) {
                match outcome {
                    Orphan::Failed(run, resolution) => {
                        failed += 1;
                        self.after_resolution(run, resolution);
                    }
                    Orphan::Stale | Orphan::Alive => {}
                    Orphan::Corrupt(e) => {
                        tracing::warn!(error = %e, "skipping an orphaned attempt that cannot be read");
                        self.quarantine.add(DEADLINES, key);
                    }
                }
            }
        }
        if failed > 0 {
            tracing::info!(
                attempts = failed,
                "activity attempts lost with the store that ran them failed; retries are due now"
            );
        }
        Ok(failed)
    }
}
