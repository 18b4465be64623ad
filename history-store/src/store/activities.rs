//! Activity tasks: claiming attempts, recording their outcomes and
//! heartbeats, and the one place that decides what a failed attempt leads
//! to (`fail_attempt`), shared by explicit failures, expired deadlines and
//! schedule-to-close expiry at claim time.
//!
//! A task is in exactly one index at a time: `activity_ready` while
//! `Scheduled`, `activity_deadlines` while `Running` (unless it has no
//! timeout at all). Index entries found without a matching task are stale
//! and removed when met.

use super::batch::block_on;
use super::commit::CommitTx;
use super::engine::{Bytes, TxTree};
use super::tx::{
    abort, check_payload, decode, decode_u64, encode, finish, get_run, push_inbox, put_run,
    TxResult,
};
use super::Inner;
use crate::codec::CodecError;
use crate::error::StoreError;
use crate::event::{Event, Failure, Payload, TimeoutKind};
use crate::ids::{CommandSeq, LeaseToken, RunId, Timestamp};
use crate::keys;
use crate::options::ActivityOptions;
use crate::store::api::{ActivityResolution, HeartbeatAck};
use crate::store::durability::FlushTicket;
use crate::store::records::{ActivityState, ActivityTask, ActivityTaskRecord};
use std::ops::Bound;

/// Tree name used for quarantined `activity_ready` keys.
pub(super) const READY_INDEX: &str = "activity_ready";

/// The trees an activity transition touches.
pub(super) struct TaskTx<'a> {
    pub(super) runs: &'a TxTree<'a>,
    pub(super) inbox: &'a TxTree<'a>,
    pub(super) ready: &'a TxTree<'a>,
    pub(super) tasks: &'a TxTree<'a>,
    pub(super) task_ready: &'a TxTree<'a>,
    pub(super) deadlines: &'a TxTree<'a>,
}

/// Runs `f` in a transaction over the trees of `TaskTx` (a view of a tree
/// costs nothing until it is written, so this is the store's one
/// transaction over every tree).
pub(super) fn task_transaction<A>(
    inner: &Inner,
    f: impl Fn(&TaskTx<'_>) -> TxResult<A>,
) -> Result<A, StoreError> {
    finish(super::batch::transaction(&inner.trees, |ctx| f(&ctx.task)))
}

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
pub(super) fn binding_timeout(
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
pub(super) fn delete_task(tx: &TaskTx<'_>, run: RunId, cmd: CommandSeq) -> TxResult<()> {
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
pub(super) fn fail_attempt(
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
pub(super) fn fail_attempt_at(
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
pub(super) fn running_task(
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
pub(super) enum Claim {
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

impl Inner {
    pub(super) fn claim_activity_tasks(
        &self,
        now: Timestamp,
        max: usize,
    ) -> Result<Vec<ActivityTask>, StoreError> {
        block_on(self.claim_activity_tasks_async(now, max))
    }

    pub(super) async fn claim_activity_tasks_async(
        &self,
        now: Timestamp,
        max: usize,
    ) -> Result<Vec<ActivityTask>, StoreError> {
        const CHUNK: usize = 64;
        let mut claimed = Vec::new();
        let mut deadline_added = false;
        let upper = Bytes::from(&keys::time_upper_bound(now)[..]);
        let mut after: Option<Bytes> = None;
        while claimed.len() < max {
            let lower = after.clone().map_or(Bound::Unbounded, Bound::Excluded);
            let scanned: Vec<Bytes> = self
                .trees
                .activity_ready
                .range::<Bytes, _>((lower, Bound::Excluded(upper.clone())))
                .keys()
                .take(CHUNK)
                .collect::<Result<_, _>>()?;
            let Some(last) = scanned.last().cloned() else {
                break;
            };
            let mut due: Vec<Bytes> = scanned
                .iter()
                .filter(|key| !self.quarantine.contains(READY_INDEX, key))
                .cloned()
                .collect();
            due.truncate(max - claimed.len());
            after = Some(due.last().cloned().unwrap_or(last));
            let tokens = due
                .iter()
                .map(|_| self.trees.engine.generate_id().map(LeaseToken))
                .collect::<Result<Vec<_>, _>>()?;
            // Every due task of the chunk in one transaction.
            let keys_in = due.clone();
            let tokens_again = tokens.clone();
            let claims = self
                .batcher
                .apply_async(&self.trees, move |tx| {
                    keys_in
                        .iter()
                        .zip(&tokens)
                        .map(|(key, token)| claim_one(&tx.task, key, *token, now))
                        .collect::<TxResult<Vec<Claim>>>()
                })
                .await;
            let claims = match claims {
                Ok(claims) => claims,
                Err(StoreError::Storage(e)) => return Err(StoreError::Storage(e)),
                // One task refused its claim and took the chunk's
                // transaction with it: claim them one by one, so the others
                // still run and the culprit is set aside.
                Err(_) => {
                    let mut one_by_one = Vec::with_capacity(due.len());
                    for (key, token) in due.iter().zip(tokens_again) {
                        let key_in = key.clone();
                        let claim = self
                            .batcher
                            .apply_async(&self.trees, move |tx| {
                                claim_one(&tx.task, &key_in, token, now)
                            })
                            .await;
                        one_by_one.push(claim.unwrap_or_else(Claim::Corrupt));
                    }
                    one_by_one
                }
            };
            for (key, claim) in due.iter().zip(claims) {
                match claim {
                    Claim::Claimed(task) => {
                        deadline_added |= task.deadline != Timestamp(u64::MAX);
                        claimed.push(task);
                    }
                    Claim::Expired(run) => self.ready_queue.push(run),
                    Claim::Skipped => {}
                    Claim::Corrupt(e) => {
                        tracing::warn!(error = %e, "skipping an activity task that cannot be claimed");
                        self.quarantine.add(READY_INDEX, key);
                    }
                }
            }
            if scanned.len() < CHUNK {
                break;
            }
        }
        if deadline_added {
            self.timer_notify.notify_one();
        }
        if !claimed.is_empty() {
            // Not one attempt may start before its claim is durable: a
            // crash would undo the claim after the attempt's side effects
            // began, and the attempt would run again under the same number.
            // The caller waits for the ticket where it starts each attempt,
            // not here: a poller must not hold its free activity slots
            // through a flush.
            let ticket = self.flusher.ticket();
            for task in &mut claimed {
                task.durable_after = ticket;
            }
        }
        Ok(claimed)
    }

    pub(super) fn next_activity_visible(&self) -> Result<Option<Timestamp>, StoreError> {
        for key in self.trees.activity_ready.iter().keys() {
            let key = key?;
            if self.quarantine.contains(READY_INDEX, &key) {
                continue;
            }
            if let Ok((at, _, _)) = keys::parse_time_key(&key) {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    pub(super) fn complete_activity(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        outcome: Result<Payload, Failure>,
        now: Timestamp,
    ) -> Result<ActivityResolution, StoreError> {
        let op = self.completion(run, cmd, token, outcome, now)?;
        let resolution = self.batcher.apply(&self.trees, op)?;
        self.after_resolution(run, resolution);
        Ok(resolution)
    }

    pub(super) async fn complete_activity_async(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        outcome: Result<Payload, Failure>,
        now: Timestamp,
    ) -> Result<ActivityResolution, StoreError> {
        let op = self.completion(run, cmd, token, outcome, now)?;
        let (ready, activity) = (self.ready_queue.clone(), self.activity_notify.clone());
        let after = move |resolution: &ActivityResolution| match resolution {
            ActivityResolution::Recorded => ready.push(run),
            ActivityResolution::RetryScheduled { .. } => activity.notify_one(),
        };
        self.batcher.apply_async_then(&self.trees, op, after).await
    }

    /// Checks the outcome's size and returns the transaction that records
    /// it.
    fn completion(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        outcome: Result<Payload, Failure>,
        now: Timestamp,
    ) -> Result<impl Fn(&CommitTx<'_>) -> TxResult<ActivityResolution> + Send + 'static, StoreError>
    {
        let limit = self.config.max_payload_bytes;
        match &outcome {
            Ok(result) => check_payload(result.len(), limit)?,
            Err(failure) => {
                check_payload(failure.details.as_ref().map_or(0, |d| d.len()), limit)?;
                check_payload(failure.message.len(), limit)?;
            }
        }
        Ok(move |ctx: &CommitTx<'_>| {
            let tx = &ctx.task;
            let (task, _, deadline) = running_task(tx, run, cmd, token)?;
            tx.deadlines
                .delete(&keys::time_key(deadline, run, cmd)[..])?;
            match &outcome {
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
        })
    }

    /// Wake-ups after an attempt was resolved.
    pub(super) fn after_resolution(&self, run: RunId, resolution: ActivityResolution) {
        match resolution {
            ActivityResolution::Recorded => self.ready_queue.push(run),
            ActivityResolution::RetryScheduled { .. } => self.activity_notify.notify_one(),
        }
    }

    pub(super) fn heartbeat_activity(
        &self,
        run: RunId,
        cmd: CommandSeq,
        token: LeaseToken,
        details: Option<Payload>,
        now: Timestamp,
    ) -> Result<HeartbeatAck, StoreError> {
        if let Some(d) = &details {
            check_payload(d.len(), self.config.max_payload_bytes)?;
        }
        let moved_earlier = self.batcher.apply(&self.trees, move |ctx| {
            let tx = &ctx.task;
            let (mut task, started_at, deadline) = running_task(tx, run, cmd, token)?;
            if details.is_some() {
                task.heartbeat_details = details.clone();
            }
            let mut new_deadline = deadline;
            if let Some(hb) = task.options.heartbeat_timeout {
                let until = Some(now.saturating_add(hb));
                if let Some(d) =
                    attempt_deadline(&task.options, task.first_scheduled_at, started_at, until)
                {
                    new_deadline = d;
                }
            }
            if new_deadline != deadline {
                tx.deadlines
                    .delete(&keys::time_key(deadline, run, cmd)[..])?;
                tx.deadlines.insert(
                    &keys::time_key(new_deadline, run, cmd)[..],
                    &token.0.to_be_bytes()[..],
                )?;
                task.state = ActivityState::Running {
                    token,
                    started_at,
                    deadline: new_deadline,
                };
            }
            let bytes = encode(&task, "activity task", Some(run)).map_err(abort)?;
            tx.tasks.insert(&keys::task_key(run, cmd)[..], bytes)?;
            Ok((new_deadline < deadline, task.cancel_requested))
        })?;
        if moved_earlier.0 {
            self.timer_notify.notify_one();
        }
        Ok(HeartbeatAck {
            cancel_requested: moved_earlier.1,
        })
    }
}

/// Claims the task behind one `activity_ready` key, re-checking inside the
/// transaction that the key is still there.
pub(super) fn claim_one(
    tx: &TaskTx<'_>,
    key: &Bytes,
    token: LeaseToken,
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
        &token.0.to_be_bytes()[..],
    )?;
    let mut task = task;
    task.state = ActivityState::Running {
        token,
        started_at: now,
        deadline,
    };
    let bytes = encode(&task, "activity task", Some(run)).map_err(abort)?;
    tx.tasks.insert(&keys::task_key(run, cmd)[..], bytes)?;
    Ok(Claim::Claimed(ActivityTask {
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
    }))
}

/// Reads the token stored in an `activity_deadlines` value.
pub(super) fn deadline_token(bytes: &[u8], run: RunId) -> Result<LeaseToken, StoreError> {
    decode_u64(bytes, "activity deadline", Some(run)).map(LeaseToken)
}
