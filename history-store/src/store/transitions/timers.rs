//! Time: durable timers (started and cancelled by commits, fired when
//! due) and running-attempt deadlines coming due. Both are indexed by
//! time so that "what is due" is one range scan and a timer waiting for a
//! month costs one key. Each due entry is handled in its own transaction
//! that first re-checks the entry still exists, so it fires exactly once
//! however many callers race.

use super::activities::{binding_timeout, deadline_token, fail_attempt};
use super::tables::{abort, decode, get_run, missing, push_inbox, put_run, TaskTx, TxResult};
use crate::codec::CodecError;
use crate::error::StoreError;
use crate::event::{Event, Failure};
use crate::ids::{CommandSeq, RunId, Timestamp};
use crate::keys;
use crate::store::api::ActivityResolution;
use crate::store::engine::{Bytes, TxTree};
use crate::store::records::{ActivityState, ActivityTaskRecord, PendingTimer, RunRecord};

fn bad_key(what: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        what,
        run: None,
        source: CodecError::Decode(format!("{} byte key", key.len())),
    }
}

/// Starts timer `cmd` of `run` (whose in-memory `record` the caller
/// writes afterwards), due at `fire_at`.
pub(in crate::store) fn start(
    timers: &TxTree<'_>,
    run: RunId,
    record: &mut RunRecord,
    cmd: CommandSeq,
    fire_at: Timestamp,
) -> TxResult<()> {
    if record.pending_timers.iter().any(|t| t.cmd == cmd) {
        return Err(abort(StoreError::InvalidCommit {
            run,
            reason: format!("timer {cmd} is already started"),
        }));
    }
    timers.insert(&keys::time_key(fire_at, run, cmd)[..], &[][..])?;
    record.pending_timers.push(PendingTimer { cmd, fire_at });
    Ok(())
}

/// Cancels timer `cmd` of `run`: its index entry if it is still pending,
/// its `TimerFired` if it fired after the claim.
pub(in crate::store) fn cancel(
    timers: &TxTree<'_>,
    inbox: &TxTree<'_>,
    run: RunId,
    record: &mut RunRecord,
    cmd: CommandSeq,
) -> TxResult<()> {
    if let Some(i) = record.pending_timers.iter().position(|t| t.cmd == cmd) {
        let timer = record.pending_timers.remove(i);
        timers.delete(&keys::time_key(timer.fire_at, run, cmd)[..])?;
    } else {
        // It fired after the claim: its TimerFired waits in the
        // inbox. A cancelled timer must never be delivered.
        withdraw_fired_timer(inbox, run, record, cmd)?;
    }
    Ok(())
}

/// Removes the `TimerFired` of `cmd` from the part of the inbox that
/// arrived after the claim (`inbox_head..inbox_tail`, the head having been
/// moved past what this commit consumed), moving later items down so the
/// inbox stays contiguous.
fn withdraw_fired_timer(
    inbox: &TxTree<'_>,
    run: RunId,
    record: &mut RunRecord,
    cmd: CommandSeq,
) -> TxResult<()> {
    let mut found = None;
    for n in record.inbox_head..record.inbox_tail {
        let Some(bytes) = inbox.get(keys::run_seq_key(run, n))? else {
            return Err(abort(missing("inbox", Some(run))));
        };
        let event: Event = decode(&bytes, "inbox", Some(run)).map_err(abort)?;
        if matches!(event, Event::TimerFired { cmd: c } if c == cmd) {
            found = Some(n);
            break;
        }
    }
    let Some(gap) = found else {
        return Ok(());
    };
    for n in gap + 1..record.inbox_tail {
        let Some(bytes) = inbox.remove(&keys::run_seq_key(run, n)[..])? else {
            return Err(abort(missing("inbox", Some(run))));
        };
        inbox.insert(&keys::run_seq_key(run, n - 1)[..], bytes)?;
    }
    inbox.remove(&keys::run_seq_key(run, record.inbox_tail - 1)[..])?;
    record.inbox_tail -= 1;
    Ok(())
}

/// Fires the timer at `key` if it is still there. Returns the run whose
/// inbox received `TimerFired`.
pub(in crate::store) fn fire_timer(
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
pub(in crate::store) fn expire_attempt(
    tx: &TaskTx<'_>,
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
