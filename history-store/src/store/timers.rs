//! The timer service's side of time: finding what is due (minus
//! quarantined keys), handling each due entry in its own transaction
//! (`transitions::timers`), and the wake-ups that follow.

use super::activities::task_transaction;
use super::engine::{Bytes, Table};
use super::transitions::timers::{expire_attempt, fire_timer};
use super::tx::finish;
use super::Inner;
use crate::error::StoreError;
use crate::ids::Timestamp;
use crate::keys;

/// Tree names used for quarantined keys.
const TIMERS: &str = "timers";
const DEADLINES: &str = "activity_deadlines";

impl Inner {
    /// Keys of `tree` due at `now`, minus quarantined ones.
    fn due_keys(
        &self,
        tree: &Table,
        name: &'static str,
        now: Timestamp,
    ) -> Result<Vec<Bytes>, StoreError> {
        let mut due = Vec::new();
        for key in tree.range(..keys::time_upper_bound(now)).keys() {
            let key = key?;
            if !self.quarantine.contains(name, &key) {
                due.push(key);
            }
        }
        Ok(due)
    }

    /// The earliest time in a time-keyed tree, skipping quarantined keys.
    fn first_time(
        &self,
        tree: &Table,
        name: &'static str,
    ) -> Result<Option<Timestamp>, StoreError> {
        for key in tree.iter().keys() {
            let key = key?;
            if self.quarantine.contains(name, &key) {
                continue;
            }
            if let Ok((at, _, _)) = keys::parse_time_key(&key) {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    pub(super) fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        let timer = self.first_time(&self.trees.timers, TIMERS)?;
        let attempt = self.first_time(&self.trees.activity_deadlines, DEADLINES)?;
        Ok(timer.into_iter().chain(attempt).min())
    }

    pub(super) fn fire_due(&self, now: Timestamp) -> Result<usize, StoreError> {
        let mut handled = 0;
        for key in self.due_keys(&self.trees.timers, TIMERS, now)? {
            let t = &self.trees;
            let fired = finish(t.engine.transaction(
                [&t.runs, &t.inbox, &t.ready, &t.timers],
                |[runs, inbox, ready, timers]| fire_timer(runs, inbox, ready, timers, &key),
            ));
            match fired {
                Ok(Some(run)) => {
                    handled += 1;
                    self.ready_queue.push(run);
                }
                Ok(None) => {}
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::warn!(error = %e, "skipping a timer that cannot be fired");
                    self.quarantine.add(TIMERS, &key);
                }
                Err(e) => return Err(e),
            }
        }
        for key in self.due_keys(&self.trees.activity_deadlines, DEADLINES, now)? {
            match task_transaction(self, |tx| expire_attempt(tx, &key, now)) {
                Ok(Some((run, resolution))) => {
                    handled += 1;
                    self.after_resolution(run, resolution);
                }
                Ok(None) => {}
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::warn!(error = %e, "skipping an activity deadline that cannot be handled");
                    self.quarantine.add(DEADLINES, &key);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(handled)
    }
}
