//! Time: durable timers and running-attempt deadlines, both indexed by
//! time so that "what is due" is one range scan and a timer waiting for a
//! month costs one key. Each due entry is handled in its own transaction
//! that first re-checks the entry still exists, so it fires exactly once
//! however many callers race.

use super::activities::{binding_timeout, deadline_token, fail_attempt, task_transaction};
use super::engine::{Bytes, Table, TxTree};
use super::tx::{abort, decode, finish, get_run, push_inbox, put_run, TxResult};
use super::Inner;
use crate::codec::CodecError;
use crate::error::StoreError;
use crate::event::{Event, Failure};
use crate::ids::{RunId, Timestamp};
use crate::keys;
use crate::store::api::ActivityResolution;
use crate::store::records::{ActivityState, ActivityTaskRecord};

/// Tree names used for quarantined keys.
const TIMERS: &str = "timers";
const DEADLINES: &str = "activity_deadlines";

fn bad_key(what: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        what,
        run: None,
        source: CodecError::Decode(format!("{} byte key", key.len())),
    }
}

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

/// Fires the timer at `key` if it is still there. Returns the run whose
/// inbox received `TimerFired`.
fn fire_timer(
    runs: &TxTree<'_>,
    inbox: &TxTree<'_>,
    ready: &TxTree<'_>,
    timers: &TxTree<'_>,
    key: &Bytes,
) -> TxResult<Option<RunId>> {
    if timers.get(key)?.is_none() {
        return Ok(None);
    }
    let (fire_at, run, cmd) =
        keys::parse_time_key(key).map_err(|_| abort(bad_key("timer key", key)))?;
    let Some(mut record) = get_run(runs, run)? else {
        // No run, nobody to fire for: the entry is an orphan.
        timers.delete(key)?;
        return Ok(None);
    };
    timers.delete(key)?;
    let Some(i) = record
        .pending_timers
        .iter()
        .position(|t| t.cmd == cmd && t.fire_at == fire_at)
    else {
        // Cancelled or closed in a commit that missed this key; never fire.
        return Ok(None);
    };
    record.pending_timers.remove(i);
    push_inbox(inbox, run, &mut record, &Event::TimerFired { cmd })?;
    put_run(runs, ready, run, &record)?;
    Ok(Some(run))
}

/// Expires the running attempt behind an `activity_deadlines` key, if that
/// attempt is still the one running.
fn expire_attempt(
    tx: &super::activities::TaskTx<'_>,
    key: &Bytes,
    now: Timestamp,
) -> TxResult<Option<(RunId, ActivityResolution)>> {
    let Some(value) = tx.deadlines.get(key)? else {
        return Ok(None);
    };
    let (at, run, cmd) =
        keys::parse_time_key(key).map_err(|_| abort(bad_key("activity deadline key", key)))?;
    let token = deadline_token(&value, run).map_err(abort)?;
    let Some(bytes) = tx.tasks.get(keys::task_key(run, cmd))? else {
        tx.deadlines.delete(key)?;
        return Ok(None);
    };
    let task: ActivityTaskRecord = decode(&bytes, "activity task", Some(run)).map_err(abort)?;
    let started_at = match task.state {
        ActivityState::Running {
            token: t,
            started_at,
            deadline,
        } if t == token && deadline == at => started_at,
        _ => {
            tx.deadlines.delete(key)?;
            return Ok(None);
        }
    };
    tx.deadlines.delete(key)?;
    let failure = Failure::timeout(binding_timeout(&task, started_at, at));
    let attempt = task.attempt;
    let resolution = fail_attempt(tx, run, cmd, task, attempt, failure, now)?;
    Ok(Some((run, resolution)))
}
