//! Committing one activation: the single transaction that appends a batch
//! of events and applies everything they imply, continue-as-new included
//! (the next run starts in the same transaction that closes this one).
//!
//! The commit's clock is the `time` of its `ActivationStarted`: the moment
//! the workflow observed as `ctx.now()`. Activity tasks become visible, and
//! the run closes, at that time. Using the recorded time rather than the
//! wall clock at commit keeps the store's state a function of the history.

use super::activities::{delete_task, TaskTx};
use super::children::{
    append_terminated, apply_parent_close, cancel_child, notify_parent, start_child, ChildStart,
};
use super::engine::TxTree;
use super::tx::{
    abort, allocate_run, check_event_payloads, decode, encode, finish, get_run, missing,
    push_inbox, put_run, RunIds, TxResult,
};
use super::Inner;
use crate::error::StoreError;
use crate::event::{Event, Failure, Payload, SignalRecord};
use crate::ids::{LeaseToken, RunId, Timestamp};
use crate::keys;
use crate::store::api::ActivationCommit;
use crate::store::records::{
    ActivityState, ActivityTaskRecord, PendingTimer, RunRecord, RunStatus,
};

/// What the committed transaction changed, for the wake-ups that follow it.
#[derive(Default)]
pub(super) struct Effects {
    ready: bool,
    pub(super) activity_scheduled: bool,
    pub(super) timer_started: bool,
    /// Some update request of the committing run was answered.
    pub(super) updates_answered: bool,
    /// Runs closed (the committing one, or children closed with it).
    pub(super) closed: Vec<RunId>,
    /// Other runs given work: a started child, a parent told of its
    /// child, the run started by `WorkflowContinuedAsNew`.
    pub(super) also_ready: Vec<RunId>,
}

impl Effects {
    /// The wake-ups after the transaction committed.
    pub(super) fn wake(&self, inner: &Inner, run: RunId) {
        if self.ready {
            inner.ready_queue.push(run);
        }
        for r in &self.also_ready {
            inner.ready_queue.push(*r);
        }
        if self.activity_scheduled {
            inner.activity_notify.notify_one();
        }
        if self.timer_started {
            inner.timer_notify.notify_one();
        }
        if self.updates_answered {
            inner.update_waiters.wake(run, || inner.flusher.ticket());
        }
        for r in &self.closed {
            inner.closed.wake(*r, || inner.flusher.ticket());
            // A caller waiting for an update of a closed run learns that
            // the run closed first.
            inner.update_waiters.wake(*r, || inner.flusher.ticket());
        }
    }
}

/// The trees of the commit transaction.
pub(super) struct CommitTx<'a> {
    pub(super) task: TaskTx<'a>,
    pub(super) meta: &'a TxTree<'a>,
    pub(super) ids: &'a TxTree<'a>,
    pub(super) history: &'a TxTree<'a>,
    pub(super) timers: &'a TxTree<'a>,
    pub(super) human_tasks: &'a TxTree<'a>,
    pub(super) run_human_tasks: &'a TxTree<'a>,
    pub(super) updates: &'a TxTree<'a>,
    /// Where new run numbers come from.
    pub(super) run_ids: &'a RunIds,
}

/// The history limits a commit is checked against.
#[derive(Clone, Copy)]
struct Limits {
    max_events: u64,
    max_bytes: u64,
    /// The commit's only command is `WorkflowFailed`: accepted past the
    /// limits, so an over-long run can always be closed.
    exempt: bool,
}

/// Whether the command part of `events` is exactly one `WorkflowFailed`.
fn only_fails(events: &[Event]) -> bool {
    let mut commands = events.iter().filter(|e| e.is_command());
    matches!(
        (commands.next(), commands.next()),
        (Some(Event::WorkflowFailed { .. }), None)
    )
}

/// Checks the shape of the batch: `ActivationStarted`, then inbound
/// events, then commands, a terminal command only last; or no events at
/// all when the activation only refused update requests. Returns the
/// activation time.
fn validate(commit: &ActivationCommit, limit: usize) -> Result<Timestamp, StoreError> {
    let invalid = |reason: String| StoreError::InvalidCommit {
        run: commit.run,
        reason,
    };
    let time = match commit.events.first() {
        // An activation that only refused update requests appends nothing;
        // no state derives from its time.
        None if !commit.rejected_updates.is_empty() => return Ok(Timestamp::now()),
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
        let run = commit.run;
        let prepared = prepare(self, &commit)?;
        let fx = self
            .batcher
            .apply(&self.trees, move |tx| apply(tx, &commit, &prepared))?;
        fx.wake(self, run);
        Ok(())
    }
}

/// What a commit works out before its transaction: the checked shape, the
/// encoded events, the lease it presents and the limits it must respect.
pub(super) struct Prepared {
    /// The activation time: the commit's clock.
    pub(super) now: Timestamp,
    encoded: Vec<Vec<u8>>,
    lease: (LeaseToken, u64),
    limits: Limits,
}

pub(super) fn prepare(inner: &Inner, commit: &ActivationCommit) -> Result<Prepared, StoreError> {
    let now = validate(commit, inner.config.max_payload_bytes)?;
    let run = commit.run;
    let encoded = commit
        .events
        .iter()
        .map(|e| encode(e, "history", Some(run)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Prepared {
        now,
        encoded,
        lease: (commit.token, inner.epoch),
        limits: Limits {
            max_events: inner.config.max_history_events,
            max_bytes: inner.config.max_history_bytes,
            exempt: only_fails(&commit.events),
        },
    })
}

/// The body of the commit transaction.
pub(super) fn apply(
    ctx: &CommitTx<'_>,
    commit: &ActivationCommit,
    prepared: &Prepared,
) -> TxResult<Effects> {
    let Prepared {
        now,
        ref encoded,
        lease: (token, epoch),
        limits,
    } = *prepared;
    let tx = &ctx.task;
    let timers = ctx.timers;
    let run = commit.run;
    let Some(mut record) = get_run(tx.runs, run)? else {
        return Err(abort(StoreError::RunNotFound { run }));
    };
    if !record.admits_task(token, epoch) {
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
    // `validate` checked that the sequence numbers do not overflow.
    let events_after = commit.expected_last_seq + encoded.len() as u64;
    let added: u64 = encoded.iter().map(|b| b.len() as u64).sum();
    let bytes_after = record.history_bytes.saturating_add(added);
    if !limits.exempt && (events_after > limits.max_events || bytes_after > limits.max_bytes) {
        return Err(abort(StoreError::HistoryLimitExceeded {
            run,
            events: events_after,
            bytes: bytes_after,
            max_events: limits.max_events,
            max_bytes: limits.max_bytes,
        }));
    }
    for (seq, bytes) in (commit.expected_last_seq + 1..).zip(encoded) {
        ctx.history
            .insert(&keys::run_seq_key(run, seq)[..], bytes.clone())?;
    }
    record.last_seq = events_after;
    record.history_bytes = bytes_after;
    for n in record.inbox_head..commit.inbox_upto {
        tx.inbox.delete(&keys::run_seq_key(run, n)[..])?;
    }
    record.inbox_head = commit.inbox_upto;
    record.needs_first_activation = false;

    let mut fx = Effects {
        updates_answered: super::updates::apply_commit(
            ctx.updates,
            run,
            &commit.events,
            &commit.rejected_updates,
        )?,
        ..Effects::default()
    };
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
                    cancel_requested: false,
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
                if let Some(i) = record.pending_timers.iter().position(|t| t.cmd == *cmd) {
                    let timer = record.pending_timers.remove(i);
                    timers.delete(&keys::time_key(timer.fire_at, run, *cmd)[..])?;
                } else {
                    // It fired after the claim: its TimerFired waits in the
                    // inbox. A cancelled timer must never be delivered.
                    withdraw_fired_timer(tx.inbox, run, &mut record, *cmd)?;
                }
            }
            Event::WorkflowCompleted { result } => {
                let how = Closing::by_code(RunStatus::Completed, Some(Ok(result.clone())), now);
                close_run(ctx, run, &mut record, how, &mut fx)?;
            }
            Event::WorkflowFailed { failure } => {
                let how = Closing::by_code(RunStatus::Failed, Some(Err(failure.clone())), now);
                close_run(ctx, run, &mut record, how, &mut fx)?;
            }
            Event::WorkflowContinuedAsNew {
                input,
                seed,
                carried_signals,
            } => {
                let how = Closing::by_code(RunStatus::ContinuedAsNew, None, now);
                close_run(ctx, run, &mut record, how, &mut fx)?;
                let next = start_next_run(
                    ctx,
                    run,
                    &mut record,
                    NextRun {
                        input,
                        seed: *seed,
                        carried_signals,
                        now,
                    },
                )?;
                fx.also_ready.push(next);
            }
            Event::ActivityCancelRequested { cmd } => {
                cancel_activity(tx, run, &mut record, *cmd)?;
            }
            Event::WorkflowCancelled { reason } => {
                let outcome = Some(Err(Failure::cancelled(reason.clone())));
                let how = Closing::by_code(RunStatus::Cancelled, outcome, now);
                close_run(ctx, run, &mut record, how, &mut fx)?;
            }
            Event::ChildWorkflowStarted {
                cmd,
                workflow_type,
                workflow_id,
                input,
                seed,
                parent_close,
                ..
            } => {
                let child = ChildStart {
                    cmd: *cmd,
                    workflow_type,
                    workflow_id,
                    input,
                    seed: *seed,
                    parent_close: *parent_close,
                    now,
                };
                start_child(ctx, run, &mut record, child, &mut fx)?;
            }
            Event::ChildWorkflowCancelRequested { cmd } => {
                let reason = "the parent workflow no longer waits for it";
                cancel_child(ctx, &record, *cmd, reason, &mut fx)?;
            }
            Event::HumanTaskAssigned { .. }
            | Event::HumanTaskEscalated { .. }
            | Event::HumanTaskClosed { .. } => {
                super::human_tasks::apply_command(ctx, run, &record, event, now)?;
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

/// Removes the `TimerFired` of `cmd` from the part of the inbox that
/// arrived after the claim (`inbox_head..inbox_tail`, the head having been
/// moved past what this commit consumed), moving later items down so the
/// inbox stays contiguous.
fn withdraw_fired_timer(
    inbox: &TxTree<'_>,
    run: RunId,
    record: &mut RunRecord,
    cmd: crate::ids::CommandSeq,
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

/// The workflow no longer wants activity `cmd`. One that has not started
/// (waiting to be claimed, or in retry backoff) fails at once as cancelled,
/// through the inbox like any outcome; a running one is flagged, learns it
/// at its next heartbeat, and is not retried. One already resolved is left
/// alone: its outcome is in the inbox.
fn cancel_activity(
    tx: &TaskTx<'_>,
    run: RunId,
    record: &mut RunRecord,
    cmd: crate::ids::CommandSeq,
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

impl Inner {
    /// Ends the latest run of `workflow_id` at once, without running any
    /// workflow code: appends `WorkflowTerminated`, closes the run and
    /// deletes its timers and activity tasks. A workflow task in flight
    /// finds the history moved and its commit refused.
    pub(super) fn terminate(
        &self,
        workflow_id: &crate::ids::WorkflowId,
        reason: &str,
        now: Timestamp,
    ) -> Result<RunId, StoreError> {
        super::tx::check_payload(reason.len(), self.config.max_payload_bytes)?;
        // Rare and operator-driven: its own transaction (over the same
        // trees as a batch), not through the batcher.
        let run = finish(super::batch::transaction(&self.trees, |ctx| {
            let tx = &ctx.task;
            let (run, mut record) = super::runs::open_run_of(ctx.ids, tx.runs, workflow_id)?;
            append_terminated(ctx, run, &mut record, reason)?;
            let mut fx = Effects::default();
            let how = Closing::by_code(
                RunStatus::Terminated,
                Some(Err(Failure::terminated(reason))),
                now,
            );
            close_run(ctx, run, &mut record, how, &mut fx)?;
            record.lease = None;
            put_run(tx.runs, tx.ready, run, &record)?;
            Ok((run, fx))
        }))?;
        let (run, fx) = run;
        fx.wake(self, run);
        Ok(run)
    }
}

/// How a run closes.
pub(super) struct Closing {
    pub(super) status: RunStatus,
    pub(super) outcome: Option<Result<Payload, Failure>>,
    pub(super) now: Timestamp,
    /// Whether a parent waiting on this run is told (not when the parent
    /// itself is closing in the same transaction).
    pub(super) tell_parent: bool,
}

impl Closing {
    /// A close decided by the run's own code or a client.
    pub(super) fn by_code(
        status: RunStatus,
        outcome: Option<Result<Payload, Failure>>,
        now: Timestamp,
    ) -> Self {
        Closing {
            status,
            outcome,
            now,
            tell_parent: true,
        }
    }
}

/// Closes the run and deletes what it was waiting on, applies its
/// children's parent-close policies, and tells its parent. Inbox items
/// that arrived after the claim stay where they are, as a record of what
/// the run never handled (unless it continues as new: see
/// `start_next_run`). The caller writes `record`.
pub(super) fn close_run(
    ctx: &CommitTx<'_>,
    run: RunId,
    record: &mut RunRecord,
    how: Closing,
    fx: &mut Effects,
) -> TxResult<()> {
    record.status = how.status;
    record.outcome = how.outcome;
    record.closed_at = Some(how.now);
    for timer in std::mem::take(&mut record.pending_timers) {
        ctx.timers
            .delete(&keys::time_key(timer.fire_at, run, timer.cmd)[..])?;
    }
    for cmd in std::mem::take(&mut record.pending_activities) {
        delete_task(&ctx.task, run, cmd)?;
    }
    super::human_tasks::close_all(ctx, run)?;
    apply_parent_close(ctx, record, how.now, fx)?;
    if how.tell_parent {
        notify_parent(ctx, record, fx)?;
    }
    fx.closed.push(run);
    Ok(())
}

/// What `WorkflowContinuedAsNew` asks of the next run.
struct NextRun<'a> {
    input: &'a Payload,
    seed: u64,
    carried_signals: &'a [SignalRecord],
    now: Timestamp,
}

/// Starts the run that continues `run` (already closed in `record`, whose
/// consumed inbox items are already deleted): a new run number, its
/// `WorkflowStarted`, its record, and the workflow id pointing at it.
///
/// Its inbox receives first the carried signals, in order, then the
/// signals that reached `run` after the claim (`inbox_head..inbox_tail`),
/// moved in arrival order. The other late items of `run` (results of its
/// activities and timers) are deleted: their commands died with it. A
/// late item that cannot be decoded aborts the commit, since it might be a
/// signal.
fn start_next_run(
    ctx: &CommitTx<'_>,
    run: RunId,
    record: &mut RunRecord,
    next: NextRun<'_>,
) -> TxResult<RunId> {
    let inbox = ctx.task.inbox;
    let new_run = allocate_run(ctx.meta, ctx.run_ids)?;
    let started = Event::WorkflowStarted {
        workflow_type: record.workflow_type.clone(),
        workflow_id: record.workflow_id.clone(),
        input: next.input.clone(),
        seed: next.seed,
        start_time: next.now,
        continued_from: Some(run),
        parent: record.parent.clone(),
    };
    let started = encode(&started, "history", Some(new_run)).map_err(abort)?;
    let mut new_record = RunRecord::started(
        record.workflow_id.clone(),
        record.workflow_type.clone(),
        next.now,
        started.len() as u64,
        Some(run),
        record.parent.clone(),
    );
    ctx.history
        .insert(&keys::run_seq_key(new_run, 1)[..], started)?;
    for signal in next.carried_signals {
        let event = Event::SignalReceived {
            name: signal.name.clone(),
            payload: signal.payload.clone(),
            sender: signal.sender.clone(),
        };
        push_inbox(inbox, new_run, &mut new_record, &event)?;
    }
    for n in record.inbox_head..record.inbox_tail {
        let Some(bytes) = inbox.remove(&keys::run_seq_key(run, n)[..])? else {
            return Err(abort(missing("inbox", Some(run))));
        };
        let event: Event = decode(&bytes, "inbox", Some(run)).map_err(abort)?;
        if matches!(event, Event::SignalReceived { .. }) {
            // The stored value does not name its run: move it as it is.
            inbox.insert(
                &keys::run_seq_key(new_run, new_record.inbox_tail)[..],
                bytes,
            )?;
            new_record.inbox_tail += 1;
        }
    }
    record.inbox_head = record.inbox_tail;
    record.continued_to = Some(new_run);
    put_run(ctx.task.runs, ctx.task.ready, new_run, &new_record)?;
    ctx.ids.insert(
        record.workflow_id.as_str().as_bytes(),
        &keys::run_key(new_run)[..],
    )?;
    Ok(new_run)
}
