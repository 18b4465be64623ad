//! Committing one activation: the single transaction that appends a batch
//! of events and applies everything they imply.
//!
//! The commit's clock is the `time` of its `ActivationStarted`: the moment
//! the workflow observed as `ctx.now()`. Activity tasks become visible, and
//! the run closes, at that time. Using the recorded time rather than the
//! wall clock at commit keeps the store's state a function of the history.

use super::activities::{delete_task, TaskTx};
use super::tx::{abort, check_event_payloads, encode, finish, get_run, put_run, TxResult};
use super::Inner;
use crate::error::StoreError;
use crate::event::{Event, Failure, Payload};
use crate::ids::{RunId, Timestamp};
use crate::keys;
use crate::store::api::ActivationCommit;
use crate::store::records::{
    ActivityState, ActivityTaskRecord, PendingTimer, RunLease, RunRecord, RunStatus,
};
use sled::transaction::TransactionalTree;
use sled::Transactional;

/// What the committed transaction changed, for the wake-ups that follow it.
#[derive(Default)]
struct Effects {
    ready: bool,
    activity_scheduled: bool,
    timer_started: bool,
    closed: bool,
}

/// Checks the shape of the batch: `ActivationStarted`, then inbound
/// events, then commands, a terminal command only last. Returns the
/// activation time.
fn validate(commit: &ActivationCommit, limit: usize) -> Result<Timestamp, StoreError> {
    let invalid = |reason: String| StoreError::InvalidCommit {
        run: commit.run,
        reason,
    };
    let time = match commit.events.first() {
        None => return Err(invalid("no events".into())),
        Some(Event::ActivationStarted { time }) => *time,
        Some(e) => {
            return Err(invalid(format!(
                "first event must be ActivationStarted, found {}",
                e.kind()
            )))
        }
    };
    let last = commit.events.len() - 1;
    let mut in_commands = false;
    for (i, e) in commit.events.iter().enumerate().skip(1) {
        check_event_payloads(e, limit)?;
        if e.is_inbound() {
            if in_commands {
                return Err(invalid(format!(
                    "inbound {} at position {i} follows a command",
                    e.kind()
                )));
            }
        } else if e.is_command() {
            in_commands = true;
            if e.is_terminal() && i != last {
                return Err(invalid(format!("{} at position {i} is not last", e.kind())));
            }
        } else {
            return Err(invalid(format!(
                "{} at position {i} cannot be committed by an activation",
                e.kind()
            )));
        }
    }
    commit
        .expected_last_seq
        .checked_add(commit.events.len() as u64)
        .ok_or_else(|| invalid("sequence numbers overflow".into()))?;
    Ok(time)
}

impl Inner {
    pub(super) fn commit_activation(&self, commit: ActivationCommit) -> Result<(), StoreError> {
        let now = validate(&commit, self.config.max_payload_bytes)?;
        let run = commit.run;
        let encoded = commit
            .events
            .iter()
            .map(|e| encode(e, "history", Some(run)))
            .collect::<Result<Vec<_>, _>>()?;
        let lease = RunLease {
            token: commit.token,
            epoch: self.epoch,
        };
        let t = &self.trees;
        let fx = finish(
            (
                &t.runs,
                &t.inbox,
                &t.ready,
                &t.activity_tasks,
                &t.activity_ready,
                &t.activity_deadlines,
                &t.history,
                &t.timers,
            )
                .transaction(
                    |(runs, inbox, ready, tasks, task_ready, deadlines, history, timers)| {
                        let view = TaskTx {
                            runs,
                            inbox,
                            ready,
                            tasks,
                            task_ready,
                            deadlines,
                        };
                        apply(&view, history, timers, &commit, &encoded, lease, now)
                    },
                ),
        )?;
        if fx.ready {
            self.ready_queue.push(run);
        }
        if fx.activity_scheduled {
            self.activity_notify.notify_one();
        }
        if fx.timer_started {
            self.timer_notify.notify_one();
        }
        if fx.closed {
            self.closed.wake(run);
        }
        Ok(())
    }
}

/// The body of the commit transaction.
fn apply(
    tx: &TaskTx<'_>,
    history: &TransactionalTree,
    timers: &TransactionalTree,
    commit: &ActivationCommit,
    encoded: &[Vec<u8>],
    lease: RunLease,
    now: Timestamp,
) -> TxResult<Effects> {
    let run = commit.run;
    let Some(mut record) = get_run(tx.runs, run)? else {
        return Err(abort(StoreError::RunNotFound { run }));
    };
    if record.lease != Some(lease) {
        return Err(abort(StoreError::LeaseLost { run }));
    }
    if record.last_seq != commit.expected_last_seq {
        return Err(abort(StoreError::Conflict {
            run,
            expected: commit.expected_last_seq,
            found: record.last_seq,
        }));
    }
    if commit.inbox_upto < record.inbox_head || commit.inbox_upto > record.inbox_tail {
        return Err(abort(StoreError::InvalidCommit {
            run,
            reason: format!(
                "inbox_upto {} outside the inbox {}..{}",
                commit.inbox_upto, record.inbox_head, record.inbox_tail
            ),
        }));
    }
    for (seq, bytes) in (commit.expected_last_seq + 1..).zip(encoded) {
        history.insert(&keys::run_seq_key(run, seq)[..], bytes.clone())?;
    }
    record.last_seq = commit.expected_last_seq + encoded.len() as u64;
    for n in record.inbox_head..commit.inbox_upto {
        tx.inbox.remove(&keys::run_seq_key(run, n)[..])?;
    }
    record.inbox_head = commit.inbox_upto;
    record.needs_first_activation = false;

    let mut fx = Effects::default();
    for event in &commit.events {
        match event {
            Event::ActivityScheduled {
                cmd,
                activity_type,
                input,
                options,
                ..
            } => {
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
                };
                let bytes = encode(&task, "activity task", Some(run)).map_err(abort)?;
                tx.tasks.insert(&key[..], bytes)?;
                tx.task_ready
                    .insert(&keys::time_key(now, run, *cmd)[..], &[][..])?;
                record.pending_activities.push(*cmd);
                fx.activity_scheduled = true;
            }
            Event::TimerStarted { cmd, fire_at, .. } => {
                if record.pending_timers.iter().any(|t| t.cmd == *cmd) {
                    return Err(abort(StoreError::InvalidCommit {
                        run,
                        reason: format!("timer {cmd} is already started"),
                    }));
                }
                timers.insert(&keys::time_key(*fire_at, run, *cmd)[..], &[][..])?;
                record.pending_timers.push(PendingTimer {
                    cmd: *cmd,
                    fire_at: *fire_at,
                });
                fx.timer_started = true;
            }
            Event::TimerCancelled { cmd } => {
                // A timer that already fired (its TimerFired waiting in the
                // inbox) is no longer pending; cancelling it is a no-op.
                if let Some(i) = record.pending_timers.iter().position(|t| t.cmd == *cmd) {
                    let timer = record.pending_timers.remove(i);
                    timers.remove(&keys::time_key(timer.fire_at, run, *cmd)[..])?;
                }
            }
            Event::WorkflowCompleted { result } => {
                close(tx, timers, run, &mut record, Ok(result.clone()), now)?;
                fx.closed = true;
            }
            Event::WorkflowFailed { failure } => {
                close(tx, timers, run, &mut record, Err(failure.clone()), now)?;
                fx.closed = true;
            }
            // Inbound events were accounted for when they entered the inbox;
            // the rest imply nothing beyond the history itself.
            _ => {}
        }
    }
    record.lease = None;
    record.last_task_failure = None;
    put_run(tx.runs, tx.ready, run, &record)?;
    fx.ready = record.is_ready();
    Ok(fx)
}

/// Closes the run and deletes what it was waiting on. Inbox items that
/// arrived after the claim stay where they are, as a record of what the
/// run never handled.
fn close(
    tx: &TaskTx<'_>,
    timers: &TransactionalTree,
    run: RunId,
    record: &mut RunRecord,
    outcome: Result<Payload, Failure>,
    now: Timestamp,
) -> TxResult<()> {
    record.status = if outcome.is_ok() {
        RunStatus::Completed
    } else {
        RunStatus::Failed
    };
    record.outcome = Some(outcome);
    record.closed_at = Some(now);
    for timer in std::mem::take(&mut record.pending_timers) {
        timers.remove(&keys::time_key(timer.fire_at, run, timer.cmd)[..])?;
    }
    for cmd in std::mem::take(&mut record.pending_activities) {
        delete_task(tx, run, cmd)?;
    }
    Ok(())
}
