//! Whether anything can happen without time moving: what a test's virtual
//! clock asks before it jumps to the next due time (`refrain-testkit`).
//!
//! Read from the durable tables, not from a worker's memory: a run with
//! work stays in `ready` until the commit that consumes it, and a claimed
//! attempt stays `Running` (indexed in `activity_deadlines`) until its
//! outcome is recorded, whether the worker still runs it or holds its
//! result for the run's next commit. Each changes in the same transaction
//! as what it leads to, so between two transactions the answer is exact;
//! an operation under way (a start, a signal) is the caller's to await.

use super::Store;
use crate::error::StoreError;
use crate::ids::Timestamp;

impl Store {
    /// Whether some run or attempt can make progress at `now` without
    /// time moving: a run with work (in the `ready` table), an attempt
    /// running, an attempt claimable (its backoff over), or a timer,
    /// deadline or schedule due. `false` means every run waits for time
    /// or for something from outside.
    ///
    /// # Errors
    /// `Storage`.
    pub fn has_work_at(&self, now: Timestamp) -> Result<bool, StoreError> {
        let trees = &self.inner.trees;
        if trees.ready.iter().next().transpose()?.is_some()
            || trees
                .activity_deadlines
                .iter()
                .next()
                .transpose()?
                .is_some()
        {
            return Ok(true);
        }
        let claimable = self.next_activity_visible()?.is_some_and(|t| t <= now);
        let due = self.next_deadline()?.is_some_and(|t| t <= now);
        Ok(claimable || due)
    }
}
