//! What happens when an activation commits: the single transaction that
//! checks the commit against the run (lease, expected last event, inbox,
//! history limits), appends its events, consumes the inbox items it
//! handled, and applies each command, continue-as-new included (the next
//! run starts in the same transaction that closes this one). A direct
//! commit (`apply_direct`) also resolves attempts that completed in the
//! committing process and claims the activities it schedules.
//!
//! The commit's clock is the `time` of its `ActivationStarted`: the moment
//! the workflow observed as `ctx.now()`. Activity tasks become visible, and
//! the run closes, at that time. Using the recorded time rather than the
//! wall clock at commit keeps the store's state a function of the history.

use super::activities::{self, claim_one, Claim};
use super::children::{self, ChildStart};
use super::close::{close_run, Closing};
use super::effects::Effects;
use super::human_tasks;
use super::leases::{admits, Owner};
use super::start::{start_next_run, NextRun};
use super::tables::{abort, check_event_payloads, encode, get_run, put_run, Tx, TxResult};
use super::timers;
use super::updates;
use crate::error::StoreError;
use crate::event::{Event, Failure, Payload};
use crate::ids::{CommandSeq, EventSeq, LeaseToken, RunId, Timestamp};
use crate::keys;
use crate::store::api::ActivationCommit;
use crate::store::engine::Bytes;
use crate::store::records::{ActivityTask, RunRecord, RunStatus};

/// An attempt that completed in the caller's process, whose
/// `ActivityCompleted { cmd, attempt, .. }` is among the inbound events of
/// the activation being committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalCompletion {
    /// The activity's command.
    pub cmd: CommandSeq,
    /// The attempt's token, as for `complete_activity`.
    pub token: LeaseToken,
}

/// What a direct commit does beyond [`Store::commit_activation`].
///
/// [`Store::commit_activation`]: crate::store::Store::commit_activation
#[derive(Clone, Debug, Default)]
pub struct DirectActivities {
    /// Attempts resolved by this commit (their results are in its events).
    pub completed: Vec<LocalCompletion>,
    /// Activities scheduled by this commit to claim for the caller now.
    /// Those that cannot be claimed are left to the pollers.
    pub claim: Vec<CommandSeq>,
}

/// The limits a commit is checked against, from the store's config.
#[derive(Clone, Copy)]
pub(in crate::store) struct CommitLimits {
    pub(in crate::store) max_payload_bytes: usize,
    pub(in crate::store) max_history_events: u64,
    pub(in crate::store) max_history_bytes: u64,
}

/// What a commit works out before its transaction: the checked shape, the
/// encoded events, the lease it presents and the limits it must respect.
pub(in crate::store) struct Prepared {
    /// The activation time: the commit's clock.
    pub(in crate::store) now: Timestamp,
    encoded: Vec<Vec<u8>>,
    lease: (LeaseToken, Owner),
    limits: Limits,
}

/// Checks the shape of `commit` and encodes its events, outside the
/// transaction (which may then be re-run without redoing either). `owner`
/// is the committing store (see `leases::admits`). `clock` is the
/// wall clock, the time of a commit that appends nothing.
pub(in crate::store) fn prepare(
    commit: &ActivationCommit,
    limits: CommitLimits,
    owner: Owner,
    clock: Timestamp,
) -> Result<Prepared, StoreError> {
    let now = validate(commit, limits.max_payload_bytes, clock)?;
    let run = commit.run;
    let encoded = commit
        .events
        .iter()
        .map(|e| encode(e, "history", Some(run)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Prepared {
        now,
        encoded,
        lease: (commit.token, owner),
        limits: Limits {
            max_events: limits.max_history_events,
            max_bytes: limits.max_history_bytes,
            exempt: only_fails(&commit.events),
        },
    })
}

/// The body of the commit transaction.
pub(in crate::store) fn apply(
    ctx: &Tx<'_>,
    commit: &ActivationCommit,
    prepared: &Prepared,
) -> TxResult<Effects> {
    let tx = &ctx.task;
    let run = commit.run;
    let mut record = admit(ctx, commit, prepared)?;
    append(ctx, commit, prepared, &mut record)?;
    let mut fx = Effects {
        updates_answered: updates::apply_commit(
            ctx.updates,
            run,
            &commit.events,
            &commit.rejected_updates,
        )?,
        ..Effects::default()
    };
    for event in &commit.events {
        apply_command(ctx, run, &mut record, event, prepared.now, &mut fx)?;
    }
    record.lease = None;
    record.last_task_failure = None;
    if record.status.is_open() {
        record.awaited_signals.clone_from(&commit.awaited_signals);
    } else {
        record.awaited_signals.clear();
    }
    put_run(tx.runs, tx.ready, run, &record)?;
    fx.ready = record.is_ready();
    Ok(fx)
}

/// The run's record, if the commit may apply to it: the run exists, the
/// commit's lease holds it, nothing was appended since the activation
/// began (`expected_last_seq`), the inbox items it consumed are the run's,
/// and the history stays within its limits.
fn admit(ctx: &Tx<'_>, commit: &ActivationCommit, prepared: &Prepared) -> TxResult<RunRecord> {
    let (token, owner) = prepared.lease;
    let run = commit.run;
    let Some(record) = get_run(ctx.task.runs, run)? else {
        return Err(abort(StoreError::RunNotFound { run }));
    };
    if !admits(&record, token, owner) {
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
    let (events_after, bytes_after) = sizes_after(commit, prepared, &record);
    let limits = prepared.limits;
    if !limits.exempt && (events_after > limits.max_events || bytes_after > limits.max_bytes) {
        return Err(abort(StoreError::HistoryLimitExceeded {
            run,
            events: events_after,
            bytes: bytes_after,
            max_events: limits.max_events,
            max_bytes: limits.max_bytes,
        }));
    }
    Ok(record)
}

/// The history's length and size once the commit's events are appended.
fn sizes_after(commit: &ActivationCommit, prepared: &Prepared, record: &RunRecord) -> (u64, u64) {
    // `validate` checked that the sequence numbers do not overflow.
    let events_after = commit.expected_last_seq.0 + prepared.encoded.len() as u64;
    let added: u64 = prepared.encoded.iter().map(|b| b.len() as u64).sum();
    (events_after, record.history_bytes.saturating_add(added))
}

/// Appends the commit's events after `expected_last_seq` and deletes the
/// inbox items it consumed.
fn append(
    ctx: &Tx<'_>,
    commit: &ActivationCommit,
    prepared: &Prepared,
    record: &mut RunRecord,
) -> TxResult<()> {
    let run = commit.run;
    let (events_after, bytes_after) = sizes_after(commit, prepared, record);
    for (seq, bytes) in (commit.expected_last_seq.0 + 1..).zip(&prepared.encoded) {
        ctx.history
            .insert(&keys::run_seq_key(run, seq)[..], bytes.clone())?;
    }
    record.last_seq = EventSeq(events_after);
    record.history_bytes = bytes_after;
    for n in record.inbox_head..commit.inbox_upto {
        ctx.task.inbox.delete(&keys::run_seq_key(run, n)[..])?;
    }
    record.inbox_head = commit.inbox_upto;
    record.needs_first_activation = false;
    Ok(())
}

/// Applies one event of the commit: what each command implies beyond the
/// history itself. Inbound events were accounted for when they entered
/// the inbox; update commands were applied before (`updates`).
fn apply_command(
    ctx: &Tx<'_>,
    run: RunId,
    record: &mut RunRecord,
    event: &Event,
    now: Timestamp,
    fx: &mut Effects,
) -> TxResult<()> {
    match event {
        Event::ActivityScheduled { .. } => {
            activities::schedule(&ctx.task, run, record, event, now)?;
            fx.activity_scheduled = true;
        }
        Event::TimerStarted { cmd, fire_at, .. } => {
            timers::start(ctx.timers, run, record, *cmd, *fire_at)?;
            fx.timer_started = true;
        }
        Event::TimerCancelled { cmd } => {
            timers::cancel(ctx.timers, ctx.task.inbox, run, record, *cmd)?;
        }
        Event::WorkflowCompleted { result } => {
            let outcome = Some(Ok(result.clone()));
            close(ctx, run, record, RunStatus::Completed, outcome, now, fx)?;
        }
        Event::WorkflowFailed { failure } => {
            let outcome = Some(Err(failure.clone()));
            close(ctx, run, record, RunStatus::Failed, outcome, now, fx)?;
        }
        Event::WorkflowContinuedAsNew { .. } => continue_as_new(ctx, run, record, event, now, fx)?,
        Event::ActivityCancelRequested { cmd } => {
            activities::cancel(&ctx.task, run, record, *cmd)?;
        }
        Event::WorkflowCancelled { reason } => {
            let outcome = Some(Err(Failure::cancelled(reason.clone())));
            close(ctx, run, record, RunStatus::Cancelled, outcome, now, fx)?;
        }
        Event::ChildWorkflowStarted { .. } => start_child(ctx, run, record, event, now, fx)?,
        Event::ChildWorkflowCancelRequested { cmd } => {
            let reason = "the parent workflow no longer waits for it";
            children::cancel_child(ctx, record, *cmd, reason, fx)?;
        }
        Event::HumanTaskAssigned { .. }
        | Event::HumanTaskEscalated { .. }
        | Event::HumanTaskClosed { .. } => {
            human_tasks::apply_command(ctx, run, record, event, now)?;
        }
        _ => {}
    }
    Ok(())
}

/// Closes the committing run as its own code decided.
fn close(
    ctx: &Tx<'_>,
    run: RunId,
    record: &mut RunRecord,
    status: RunStatus,
    outcome: Option<Result<Payload, Failure>>,
    now: Timestamp,
    fx: &mut Effects,
) -> TxResult<()> {
    let how = Closing::by_code(status, outcome, now);
    close_run(ctx, run, record, how, fx)
}

/// `WorkflowContinuedAsNew`: closes the run and starts the next one.
fn continue_as_new(
    ctx: &Tx<'_>,
    run: RunId,
    record: &mut RunRecord,
    event: &Event,
    now: Timestamp,
    fx: &mut Effects,
) -> TxResult<()> {
    let Event::WorkflowContinuedAsNew {
        input,
        seed,
        carried_signals,
    } = event
    else {
        return Ok(());
    };
    close(ctx, run, record, RunStatus::ContinuedAsNew, None, now, fx)?;
    let next = NextRun {
        input,
        seed: *seed,
        carried_signals,
        now,
    };
    let next = start_next_run(ctx, run, record, next)?;
    fx.also_ready.push(next);
    Ok(())
}

/// `ChildWorkflowStarted`: starts the child.
fn start_child(
    ctx: &Tx<'_>,
    run: RunId,
    record: &mut RunRecord,
    event: &Event,
    now: Timestamp,
    fx: &mut Effects,
) -> TxResult<()> {
    let Event::ChildWorkflowStarted {
        cmd,
        workflow_type,
        workflow_id,
        input,
        seed,
        parent_close,
        ..
    } = event
    else {
        return Ok(());
    };
    let child = ChildStart {
        cmd: *cmd,
        workflow_type,
        workflow_id,
        input,
        seed: *seed,
        parent_close: *parent_close,
        now,
    };
    children::start_child(ctx, run, record, child, fx)
}

/// The body of a direct commit's transaction: the attempts `direct`
/// resolves (before the commit, whose events carry their results), the
/// commit itself, then claims of the activities it asks for (at
/// `claim_now`, under `tokens`, one per `direct.claim`), and the wake-ups
/// that are left once those are claimed.
pub(in crate::store) fn apply_direct(
    tx: &Tx<'_>,
    commit: &ActivationCommit,
    prepared: &Prepared,
    direct: &DirectActivities,
    tokens: &[LeaseToken],
    claim_now: Timestamp,
) -> TxResult<(Effects, Vec<ActivityTask>)> {
    let run = commit.run;
    for done in &direct.completed {
        activities::resolve_in_commit(&tx.task, commit, done.cmd, done.token)?;
    }
    let mut fx = apply(tx, commit, prepared)?;
    let mut claimed = Vec::with_capacity(direct.claim.len());
    for (cmd, token) in direct.claim.iter().zip(tokens) {
        if !is_scheduled_by(commit, *cmd) {
            continue;
        }
        let key = keys::time_key(prepared.now, run, *cmd);
        let owner = prepared.lease.1.id;
        match claim_one(&tx.task, &Bytes::from(&key[..]), (*token, owner), claim_now)? {
            Claim::Claimed(task) => claimed.push(task),
            Claim::Expired(r) => fx.also_ready.push(r),
            Claim::Skipped | Claim::Corrupt(_) => {}
        }
    }
    let scheduled = commit
        .events
        .iter()
        .filter(|e| matches!(e, Event::ActivityScheduled { .. }))
        .count();
    if claimed.len() == scheduled {
        // Nothing left for a poller to find.
        fx.activity_scheduled = false;
    }
    if claimed.iter().any(|t| t.deadline != Timestamp(u64::MAX)) {
        fx.timer_started = true;
    }
    Ok((fx, claimed))
}

fn is_scheduled_by(commit: &ActivationCommit, cmd: CommandSeq) -> bool {
    commit
        .events
        .iter()
        .any(|e| matches!(e, Event::ActivityScheduled { cmd: c, .. } if *c == cmd))
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
/// activation time (`clock` when there are no events).
fn validate(
    commit: &ActivationCommit,
    limit: usize,
    clock: Timestamp,
) -> Result<Timestamp, StoreError> {
    let invalid = |reason: String| StoreError::InvalidCommit {
        run: commit.run,
        reason,
    };
    let time = match commit.events.first() {
        // An activation that only refused update requests appends nothing;
        // no state derives from its time.
        None if !commit.rejected_updates.is_empty() => return Ok(clock),
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
        .0
        .checked_add(commit.events.len() as u64)
        .ok_or_else(|| invalid("sequence numbers overflow".into()))?;
    Ok(time)
}
