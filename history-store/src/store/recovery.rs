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
//! If workers in other processes are ever added (they would reach the
//! store through the owning process), their attempts would survive a
//! restart of the owner, and this rule must then apply only to attempts
//! claimed by the owner's own in-process workers of an earlier epoch (for
//! instance by recording the claiming epoch in the attempt), with remote
//! attempts left to their deadlines and heartbeats.
//!
//! Attempts without any deadline (no timeout configured at all) are
//! indexed at the end of time, which the timer service never reaches, so
//! they are found here too. (Stores written before that index existed may
//! hold such attempts unindexed; they end only with a completion.)

use super::engine::Bytes;
use super::transitions::recovery::{orphan, Orphan};
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
    /// stopped (see the module docs). Returns how many were failed.
    pub(super) fn expire_orphaned_attempts(&self, now: Timestamp) -> Result<usize, StoreError> {
        let keys: Vec<Bytes> = self
            .trees
            .activity_deadlines
            .iter()
            .keys()
            .collect::<Result<_, _>>()?;
        let mut failed = 0;
        for chunk in keys.chunks(CHUNK) {
            let chunk_in = chunk.to_vec();
            let outcomes = self.batcher.apply(&self.trees, move |tx| {
                chunk_in
                    .iter()
                    .map(|key| orphan(&tx.task, key, now))
                    .collect::<TxResult<Vec<Orphan>>>()
            });
            let outcomes = match outcomes {
                Ok(outcomes) => outcomes,
                Err(StoreError::Storage(e)) => return Err(StoreError::Storage(e)),
                // One entry took the chunk's transaction with it: handle
                // them one by one and set the culprit aside.
                Err(_) => {
                    let mut one_by_one = Vec::with_capacity(chunk.len());
                    for key in chunk {
                        let key_in = key.clone();
                        let outcome = self
                            .batcher
                            .apply(&self.trees, move |tx| orphan(&tx.task, &key_in, now));
                        one_by_one.push(outcome.unwrap_or_else(Orphan::Corrupt));
                    }
                    one_by_one
                }
            };
            for (key, outcome) in chunk.iter().zip(outcomes) {
                match outcome {
                    Orphan::Failed(run, resolution) => {
                        failed += 1;
                        self.after_resolution(run, resolution);
                    }
                    Orphan::Stale => {}
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
                "activity attempts lost with the previous process failed; retries are due now"
            );
        }
        Ok(failed)
    }
}
