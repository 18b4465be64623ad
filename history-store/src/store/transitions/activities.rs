//! Activity tasks: scheduling them, claiming attempts, recording their
//! outcomes and heartbeats, cancelling them, and the one place that
//! decides what a failed attempt leads to (`fail_attempt`), shared by
//! explicit failures, expired deadlines, orphaned attempts and
//! schedule-to-close expiry at claim time.
//!
//! A task is in exactly one index at a time: `activity_ready` while
//! `Scheduled`, `activity_deadlines` while `Running` (unless it has no
//! timeout at all). Index entries found without a matching task are stale
//! and removed when met.

use super::tables::{
    abort, decode, decode_u64, encode, get_run, push_inbox, put_run, TaskTx, TxResult,
};
use crate::codec::CodecError;
use crate::error::StoreError;
use crate::event::{Event, Failure, Payload, TimeoutKind};
use crate::ids::{CommandSeq, LeaseToken, RunId, Timestamp};
use crate::keys;
use crate::options::ActivityOptions;
use crate::store::api::{ActivationCommit, ActivityResolution};
use crate::store::engine::Bytes;
use crate::store::records::{ActivityState, ActivityTask, ActivityTaskRecord, RunRecord};
use crate::store::FlushTicket;

/// Deadline of an attempt started at `started`, given the latest moment
/// the last heartbeat allows (`heartbeat_until`).
fn attempt_deadline(
    options: &ActivityOptions,
    first_scheduled_at: Timestamp,
    started: Timestamp,
    heartbeat_until: Option<Timestamp>,
) -> Option<Timestamp> {
    [
        options.start_to_close.map(|d| started.saturating_add(d)),
        heartbeat_until,
        options
            .schedule_to_close
            .map(|d| first_scheduled_at.saturating_add(d)),
    ]
    .into_iter()
    .flatten()
    .min()
}

/// Which timeout a passed `deadline` was: the one that produced it.
/// Schedule-to-close wins ties because no retry can follow it.
pub(in crate::store) fn binding_timeout(
    task: &ActivityTaskRecord,
    started: Timestamp,
    deadline: Timestamp,
) -> TimeoutKind {
    let o = &task.options;
    if o.schedule_to_close
        .is_some_and(|d| task.first_scheduled_at.saturating_add(d) == deadline)
    {
        TimeoutKind::ScheduleToClose
    } else if o
        .start_to_close
        .is_some_and(|d| started.saturating_add(d) == deadline)
        || o.heartbeat_timeout.is_none()
    {
        TimeoutKind::StartToClose
    } else {
        TimeoutKind::Heartbeat
    }
}

/// Removes a task and whichever index entry its state implies. A record
/// that cannot be decoded is removed too (its run is closing); its stale
/// index entry is cleaned up when next met.
pub(in crate::store) fn delete_task(tx: &TaskTx<'_>, run: RunId, cmd: CommandSeq) -> TxResult<()> {
    let key = keys::task_key(run, cmd);
    let Some(bytes) = tx.tasks.remove(&key[..])? else {
        return Ok(());
    };
    match decode::<ActivityTaskRecord>(&bytes, "activity task", Some(run)).map(|t| t.state) {
        Ok(ActivityState::Scheduled { visible_at }) => {
            tx.task_ready
                .delete(&keys::time_key(visible_at, run, cmd)[..])?;
        }
        Ok(ActivityState::Running { deadline, .. }) => {
            tx.deadlines
                .delete(&keys::time_key(deadline, run, cmd)[..])?;
        }
        Err(_) => {}
    }
    Ok(())
}

/// Removes a finished task and delivers `event` to its run's inbox.
fn resolve(tx: &TaskTx<'_>, run: RunId, cmd: CommandSeq, event: &Event) -> TxResult<()> {
    tx.tasks.delete(&keys::task_key(run, cmd)[..])?;
    // A closed run deletes its tasks, so a missing or closed run here means
    // there is nobody left to tell.
    if let Some(mut record) = get_run(tx.runs, run)?.filter(|r| r.status.is_open()) {
        push_inbox(tx.inbox, run, &mut record, event)?;
        record.pending_activities.retain(|c| *c != cmd);
        put_run(tx.runs, tx.ready, run, &record)?;
    }
    Ok(())
}

/// The single decision on a failed attempt: schedule a retry after the
/// policy's backoff, or record `ActivityFailed` with `attempts_made`.
/// The caller has already removed the index entry of the task's current
/// state.
pub(in crate::store) fn fail_attempt(
    tx: &TaskTx<'_>,
    run: RunId,
    cmd: CommandSeq,
    task: ActivityTaskRecord,
    attempts_made: u32,
    failure: Failure,
    now: Timestamp,
) -> TxResult<ActivityResolution> {
    let at = now.saturating_add(task.options.retry.backoff_after(attempts_made));
    fail_attempt_at(tx, run, cmd, task, attempts_made, failure, at)
}

/// [`fail_attempt`] with the time the retry (if the policy allows one)
/// becomes claimable given: `at` instead of after the policy's backoff.
pub(in crate::store) fn fail_attempt_at(
    tx: &TaskTx<'_>,
    run: RunId,
    cmd: CommandSeq,
    mut task: ActivityTaskRecord,
    attempts_made: u32,
    mut failure: Failure,
    at: Timestamp,
) -> TxResult<ActivityResolution> {
    if task.cancel_requested {
        // The workflow stopped waiting: no further attempt, and the record
        // says why the last one ended.
        failure.cause = crate::event::FailureCause::Cancelled;
        failure.non_retryable = true;
    }
    let retry = &task.options.retry;
    let before_schedule_to_close = task
        .options
        .schedule_to_close
        .is_none_or(|d| at < task.first_scheduled_at.saturating_add(d));
    if !failure.non_retryable
        && retry.allows_retry(attempts_made, &failure.kind)
        && before_schedule_to_close
    {
        let attempt = attempts_made.saturating_add(1);
        task.attempt = attempt;
        task.state = ActivityState::Scheduled { visible_at: at };
        task.last_failure = Some(failure);
        let bytes = encode(&task, "activity task", Some(run)).map_err(abort)?;
        tx.tasks.insert(&keys::task_key(run, cmd)[..], bytes)?;
        tx.task_ready
            .insert(&keys::time_key(at, run, cmd)[..], &[][..])?;
        return Ok(ActivityResolution::RetryScheduled { attempt, at });
    }
    let event = Event::ActivityFailed {
        cmd,
        attempt: attempts_made,
        failure,
    };
    resolve(tx, run, cmd, &event)?;
    Ok(ActivityResolution::Recorded)
}

/// Reads the task at `key` and checks that `token` runs it.
pub(in crate::store) fn running_task(
    tx: &TaskTx<'_>,
    run: RunId,
    cmd: CommandSeq,
    token: LeaseToken,
) -> TxResult<(ActivityTaskRecord, Timestamp, Timestamp)> {
    let stale = || abort(StoreError::StaleActivity { run, cmd });
    let bytes = tx.tasks.get(keys::task_key(run, cmd))?.ok_or_else(stale)?;
    let task: ActivityTaskRecord = decode(&bytes, "activity task", Some(run)).map_err(abort)?;
    match task.state {
        ActivityState::Running {
            token: t,
            started_at,
            deadline,
        } if t == token => Ok((task, started_at, deadline)),
        _ => Err(stale()),
    }
}

/// What claiming one `activity_ready` entry came to.
pub(in crate::store) enum Claim {
    Claimed(ActivityTask),
    /// Schedule-to-close passed while the task waited; it was failed.
    Expired(RunId),
    /// The entry was gone or stale.
    Skipped,
    /// The key or the task record cannot be read (nothing was written for
    /// it, so the rest of the transaction stands), or claiming it alone
    /// failed. Set aside until the store is reopened.
    Corrupt(StoreError),
}

/// Claims the task behind one `activity_ready` key, re-checking inside the
/// transaction that the key is still there.
/// The attempt runs under `token` for owner `.1` (the claiming store).
pub(in crate::store) fn claim_one(
    tx: &TaskTx<'_>,
    key: &Bytes,
    (token, owner): (LeaseToken, u64),
    now: Timestamp,
) -> TxResult<Claim> {
    if tx.task_ready.get(key)?.is_none() {
        return Ok(Claim::Skipped);
    }
    let Ok((visible_at, run, cmd)) = keys::parse_time_key(key) else {
        return Ok(Claim::Corrupt(StoreError::Corrupt {
            what: "activity_ready key",
            run: None,
            source: CodecError::Decode(format!("{} byte key", key.len())),
        }));
    };
    let Some(bytes) = tx.tasks.get(keys::task_key(run, cmd))? else {
        tx.task_ready.delete(key)?;
        return Ok(Claim::Skipped);
    };
    let task: ActivityTaskRecord = match decode(&bytes, "activity task", Some(run)) {
        Ok(task) => task,
        Err(e) => return Ok(Claim::Corrupt(e)),
    };
    if task.state != (ActivityState::Scheduled { visible_at }) {
        tx.task_ready.delete(key)?;
        return Ok(Claim::Skipped);
    }
    tx.task_ready.delete(key)?;
    if let Some(s2c) = task.options.schedule_to_close {
        if now >= task.first_scheduled_at.saturating_add(s2c) {
            let made = task.attempt.saturating_sub(1);
            let failure = Failure::timeout(TimeoutKind::ScheduleToClose);
            fail_attempt(tx, run, cmd, task, made, failure, now)?;
            return Ok(Claim::Expired(run));
        }
    }
    start_attempt(tx, run, cmd, task, (token, owner), now).map(Claim::Claimed)
}

/// Starts an attempt of a claimed task (its `activity_ready` entry
/// already removed) under `token` for `owner`: the task becomes `Running`
/// and its deadline is indexed with both (the owner tells, should the
/// store that claimed it stop, whose attempts to fail: `leases`).
fn start_attempt(
    tx: &TaskTx<'_>,
    run: RunId,
    cmd: CommandSeq,
    task: ActivityTaskRecord,
    (token, owner): (LeaseToken, u64),
    now: Timestamp,
) -> TxResult<ActivityTask> {
    let heartbeat_until = task
        .options
        .heartbeat_timeout
        .map(|d| now.saturating_add(d));
    // Without any timeout only its completion ends the attempt, but it is
    // indexed all the same (at the end of time, which no timer service
    // reaches), so that the next open finds it if its process dies.
    let deadline = attempt_deadline(&task.options, task.first_scheduled_at, now, heartbeat_until)
        .unwrap_or(Timestamp(u64::MAX));
    tx.deadlines.insert(
        &keys::time_key(deadline, run, cmd)[..],
        &deadline_value(token, owner)[..],
    )?;
    let mut task = task;
    task.state = ActivityState::Running {
        token,
        started_at: now,
        deadline,
    };
    let bytes = encode(&task, "activity task", Some(run)).map_err(abort)?;
    tx.tasks.insert(&keys::task_key(run, cmd)[..], bytes)?;
    Ok(ActivityTask {
        run,
        cmd,
        workflow_id: task.workflow_id,
        activity_type: task.activity_type,
        input: task.input,
        attempt: task.attempt,
        token,
        deadline,
        heartbeat_timeout: task.options.heartbeat_timeout,
        heartbeat_details: task.heartbeat_details,
        // Set by whoever applied the claim, once it is applied.
        durable_after: FlushTicket::DURABLE,
    })
}

/// The `activity_deadlines` value of an attempt run under `token` by
/// `owner`: the token, then the owner (u64 BE each).
pub(in crate::store) fn deadline_value(token: LeaseToken, owner: u64) -> [u8; 16] {
    let mut value = [0; 16];
    value[..8].copy_from_slice(&token.0.to_be_bytes());
    value[8..].copy_from_slice(&owner.to_be_bytes());
    value
}

/// The owner named in an `activity_deadlines` value; `None` for an entry
/// written before attempts had owners (its token alone).
pub(in crate::store) fn deadline_owner(value: &[u8]) -> Option<u64> {
    let owner = value.get(8..16)?;
    Some(u64::from_be_bytes(owner.try_into().ok()?))
}

/// Reads the token stored in an `activity_deadlines` value (its first
/// eight bytes; the owner follows, see [`deadline_value`]).
pub(in crate::store) fn deadline_token(bytes: &[u8], run: RunId) -> Result<LeaseToken, StoreError> {
    let token = if bytes.len() == 16 {
        &bytes[..8]
    } else {
        bytes
    };
    decode_u64(token, "activity deadline", Some(run)).map(LeaseToken)
}

/// Schedules activity `cmd` of `run` (whose in-memory `record` the caller
/// writes afterwards) as its `ActivityScheduled` asks: attempt 1,
/// claimable at `now`.
pub(in crate::store) fn schedule(
    tx: &TaskTx<'_>,
    run: RunId,
    record: &mut RunRecord,
    event: &Event,
    now: Timestamp,
) -> TxResult<()> {
    let Event::ActivityScheduled {
        cmd,
        activity_type,
        input,
        options,
        ..
    } = event
    else {
        return Ok(());
    };
    let key = keys::task_key(run, *cmd);
    if record.pending_activities.contains(cmd) || tx.tasks.get(key)?.is_some() {
        return Err(abort(StoreError::InvalidCommit {
            run,
            reason: format!("activity {cmd} is already scheduled"),
        }));
    }
    let task = ActivityTaskRecord {
        workflow_id: record.workflow_id.clone(),
        activity_type: activity_type.clone(),
        input: input.clone(),
        options: options.clone(),
        attempt: 1,
        first_scheduled_at: now,
        state: ActivityState::Scheduled { visible_at: now },
        heartbeat_details: None,
        last_failure: None,
        cancel_requested: false,
    };
    let bytes = encode(&task, "activity task", Some(run)).map_err(abort)?;
    tx.tasks.insert(&key[..], bytes)?;
    tx.task_ready
        .insert(&keys::time_key(now, run, *cmd)[..], &[][..])?;
    record.pending_activities.push(*cmd);
    Ok(())
}

/// Records the outcome of the attempt `token` runs: a result resolves the
/// activity, a failure goes to [`fail_attempt`]. A token that no longer
/// runs the task (its deadline passed, it was retried) is refused with
/// `StaleActivity` and nothing is written.
pub(in crate::store) fn complete(
    tx: &TaskTx<'_>,
    run: RunId,
    cmd: CommandSeq,
    token: LeaseToken,
    outcome: &Result<Payload, Failure>,
    now: Timestamp,
) -> TxResult<ActivityResolution> {
    let (task, _, deadline) = running_task(tx, run, cmd, token)?;
    tx.deadlines
        .delete(&keys::time_key(deadline, run, cmd)[..])?;
    match outcome {
        Ok(result) => {
            let event = Event::ActivityCompleted {
                cmd,
                attempt: task.attempt,
                result: result.clone(),
            };
            resolve(tx, run, cmd, &event)?;
            Ok(ActivityResolution::Recorded)
        }
        Err(failure) => {
            let attempt = task.attempt;
            fail_attempt(tx, run, cmd, task, attempt, failure.clone(), now)
        }
    }
}

/// Records a heartbeat of the attempt `token` runs: its details, and its
/// deadline moved by the heartbeat timeout. Returns whether the deadline
/// moved earlier (the timer service must look again) and whether the
/// workflow asked for the activity to be cancelled.
pub(in crate::store) fn heartbeat(
    tx: &TaskTx<'_>,
    run: RunId,
    cmd: CommandSeq,
    token: LeaseToken,
    details: &Option<Payload>,
    now: Timestamp,
) -> TxResult<(bool, bool)> {
    let (mut task, started_at, deadline) = running_task(tx, run, cmd, token)?;
    if details.is_some() {
        task.heartbeat_details = details.clone();
    }
    let mut new_deadline = deadline;
    if let Some(hb) = task.options.heartbeat_timeout {
        let until = Some(now.saturating_add(hb));
        if let Some(d) = attempt_deadline(&task.options, task.first_scheduled_at, started_at, until)
        {
            new_deadline = d;
        }
    }
    if new_deadline != deadline {
        // The entry moves with its value: the attempt keeps its owner.
        let old = tx
            .deadlines
            .remove(&keys::time_key(deadline, run, cmd)[..])?;
        let value = old.map_or_else(|| token.0.to_be_bytes().to_vec(), |v| v.to_vec());
        tx.deadlines
            .insert(&keys::time_key(new_deadline, run, cmd)[..], value)?;
        task.state = ActivityState::Running {
            token,
            started_at,
            deadline: new_deadline,
        };
    }
    let bytes = encode(&task, "activity task", Some(run)).map_err(abort)?;
    tx.tasks.insert(&keys::task_key(run, cmd)[..], bytes)?;
    Ok((new_deadline < deadline, task.cancel_requested))
}

/// The workflow no longer wants activity `cmd`. One that has not started
/// (waiting to be claimed, or in retry backoff) fails at once as cancelled,
/// through the inbox like any outcome; a running one is flagged, learns it
/// at its next heartbeat, and is not retried. One already resolved is left
/// alone: its outcome is in the inbox.
pub(in crate::store) fn cancel(
    tx: &TaskTx<'_>,
    run: RunId,
    record: &mut RunRecord,
    cmd: CommandSeq,
) -> TxResult<()> {
    if !record.pending_activities.contains(&cmd) {
        return Ok(());
    }
    let key = keys::task_key(run, cmd);
    let Some(bytes) = tx.tasks.get(key)? else {
        return Ok(());
    };
    let mut task: ActivityTaskRecord = decode(&bytes, "activity task", Some(run)).map_err(abort)?;
    match task.state {
        ActivityState::Scheduled { visible_at } => {
            tx.tasks.delete(&key[..])?;
            tx.task_ready
                .delete(&keys::time_key(visible_at, run, cmd)[..])?;
            let failed = Event::ActivityFailed {
                cmd,
                attempt: task.attempt.saturating_sub(1),
                failure: Failure::cancelled("activity cancelled before its attempt started"),
            };
            push_inbox(tx.inbox, run, record, &failed)?;
            record.pending_activities.retain(|c| *c != cmd);
        }
        ActivityState::Running { .. } => {
            task.cancel_requested = true;
            let bytes = encode(&task, "activity task", Some(run)).map_err(abort)?;
            tx.tasks.insert(&key[..], bytes)?;
        }
    }
    Ok(())
}

/// Resolves an attempt whose result the commit carries (an attempt that
/// completed in the committing process): the same token check as
/// [`complete`], the task and its deadline removed, the run no longer
/// waiting on it. Nothing enters the inbox: the result is among the
/// commit's inbound events, which the commit appends.
pub(in crate::store) fn resolve_in_commit(
    tx: &TaskTx<'_>,
    commit: &ActivationCommit,
    cmd: CommandSeq,
    token: LeaseToken,
) -> TxResult<()> {
    let run: RunId = commit.run;
    let (task, _, deadline) = running_task(tx, run, cmd, token)?;
    let carried = commit
        .events
        .iter()
        .filter(|e| {
            matches!(e, Event::ActivityCompleted { cmd: c, attempt, .. }
                if *c == cmd && *attempt == task.attempt)
        })
        .count();
    if carried != 1 {
        return Err(abort(StoreError::InvalidCommit {
            run,
            reason: format!(
                "resolves attempt {} of activity {} but carries {carried} matching results",
                task.attempt, cmd
            ),
        }));
    }
    tx.deadlines
        .delete(&keys::time_key(deadline, run, cmd)[..])?;
    tx.tasks.delete(&keys::task_key(run, cmd)[..])?;
    let Some(mut record) = get_run(tx.runs, run)? else {
        return Err(abort(StoreError::RunNotFound { run }));
    };
    record.pending_activities.retain(|c| *c != cmd);
    put_run(tx.runs, tx.ready, run, &record)
}
