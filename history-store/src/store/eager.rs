//! Activation commits that do more in their one transaction, for a worker
//! that runs activities in the same process:
//!
//! - **Results delivered in process.** An attempt that completed in this
//!   process need not enter the inbox in a transaction of its own and wait
//!   there for the next activation: the worker applies its
//!   `ActivityCompleted` in the run's next activation directly, and the
//!   commit of that activation resolves the attempt. The attempt's token is
//!   checked exactly as [`Store::complete_activity`] checks it, in the same
//!   transaction that appends the event, so a stale attempt still cannot
//!   record anything and a result is recorded once.
//! - **Activities handed out at once.** Activities the commit schedules may
//!   be claimed in the same transaction, with the same rules as
//!   [`Store::claim_activity_tasks`], and returned to the caller to run,
//!   instead of waiting for a poller's claim transaction.
//!
//! [`Store::complete_activity`]: super::Store::complete_activity
//! [`Store::claim_activity_tasks`]: super::Store::claim_activity_tasks

use super::activities::{claim_one, running_task, Claim, TaskTx};
use super::commit::{apply, prepare, CommitTx, Effects};
use super::durability::FlushTicket;
use super::tx::{abort, get_run, put_run, TxResult};
use super::Inner;
use crate::error::StoreError;
use crate::event::Event;
use crate::ids::{CommandSeq, LeaseToken, RunId, Timestamp};
use crate::keys;
use crate::store::api::ActivationCommit;
use crate::store::records::ActivityTask;
use std::sync::Arc;

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

/// What an eager commit does beyond [`Store::commit_activation`].
///
/// [`Store::commit_activation`]: super::Store::commit_activation
#[derive(Clone, Debug, Default)]
pub struct EagerCommit {
    /// Attempts resolved by this commit (their results are in its events).
    pub completed: Vec<LocalCompletion>,
    /// Activities scheduled by this commit to claim for the caller now.
    /// Those that cannot be claimed are left to the pollers.
    pub claim: Vec<CommandSeq>,
}

/// The transaction of an eager commit, built outside it (the encoded
/// events and drawn tokens stay the same if sled re-runs it).
pub(super) type EagerOp =
    Box<dyn Fn(&CommitTx<'_>) -> TxResult<(Effects, Vec<ActivityTask>)> + Send>;

impl Inner {
    pub(super) fn commit_activation_eager(
        &self,
        commit: ActivationCommit,
        eager: EagerCommit,
    ) -> Result<Vec<ActivityTask>, StoreError> {
        let run = commit.run;
        let op = self.eager_op(commit, eager)?;
        let (fx, mut claimed) = self.batcher.apply(&self.trees, op)?;
        durable_after(&mut claimed, self.flusher.ticket());
        fx.wake(self, run);
        Ok(claimed)
    }

    pub(super) fn eager_op(
        &self,
        commit: ActivationCommit,
        eager: EagerCommit,
    ) -> Result<EagerOp, StoreError> {
        let run = commit.run;
        let prepared = prepare(self, &commit)?;
        // Tokens are drawn outside so the closure stays pure.
        let tokens = eager
            .claim
            .iter()
            .map(|_| self.trees.engine.generate_id().map(LeaseToken))
            .collect::<Result<Vec<_>, _>>()?;
        let claim_now = Timestamp::now();
        Ok(Box::new(move |tx| {
            for done in &eager.completed {
                resolve_in_commit(&tx.task, &commit, *done)?;
            }
            let mut fx = apply(tx, &commit, &prepared)?;
            let mut claimed = Vec::with_capacity(eager.claim.len());
            for (cmd, token) in eager.claim.iter().zip(&tokens) {
                if !is_scheduled_by(&commit, *cmd) {
                    continue;
                }
                let key = keys::time_key(prepared.now, run, *cmd);
                match claim_one(
                    &tx.task,
                    &super::engine::Bytes::from(&key[..]),
                    *token,
                    claim_now,
                )? {
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
        }))
    }
}

/// [`Inner::commit_activation_eager`] without waiting: `done` gets the
/// outcome once the transaction is applied (see `Batcher::apply_detached`
/// for the thread it is called on, and why it must not wait for the
/// store). The wake-ups are made before `done` is called. A commit refused
/// before its transaction (bad shape, payload too large) is answered at
/// once.
pub(super) fn commit_activation_detached(
    inner: &Arc<Inner>,
    commit: ActivationCommit,
    eager: EagerCommit,
    done: impl FnOnce(Result<Vec<ActivityTask>, StoreError>) + Send + 'static,
) {
    let run = commit.run;
    let op = match inner.eager_op(commit, eager) {
        Ok(op) => op,
        Err(e) => return done(Err(e)),
    };
    // Not a strong handle: a queued operation must not keep the store
    // (whose batcher queues it) alive.
    let store = Arc::downgrade(inner);
    inner
        .batcher
        .apply_detached(&inner.trees, op, move |outcome| {
            done(outcome.map(|(fx, mut claimed)| {
                if let Some(inner) = store.upgrade() {
                    durable_after(&mut claimed, inner.flusher.ticket());
                    fx.wake(&inner, run);
                } else {
                    // Nothing can make them durable any more: never run.
                    claimed.clear();
                }
                claimed
            }))
        });
}

/// Marks attempts claimed by a commit as startable once the flush that
/// `ticket` (taken after the commit was applied) names is done: that flush
/// covers the commit, and with it the history that schedules them.
pub(super) fn durable_after(claimed: &mut [ActivityTask], ticket: FlushTicket) {
    for task in claimed {
        task.durable_after = ticket;
    }
}

fn is_scheduled_by(commit: &ActivationCommit, cmd: CommandSeq) -> bool {
    commit
        .events
        .iter()
        .any(|e| matches!(e, Event::ActivityScheduled { cmd: c, .. } if *c == cmd))
}

/// Resolves an attempt whose result the commit carries: the same token
/// check as `complete_activity`, the task and its deadline removed, the
/// run no longer waiting on it. Nothing enters the inbox: the result is
/// among the commit's inbound events, which the commit appends.
fn resolve_in_commit(
    tx: &TaskTx<'_>,
    commit: &ActivationCommit,
    done: LocalCompletion,
) -> TxResult<()> {
    let run: RunId = commit.run;
    let (task, _, deadline) = running_task(tx, run, done.cmd, done.token)?;
    let carried = commit
        .events
        .iter()
        .filter(|e| {
            matches!(e, Event::ActivityCompleted { cmd, attempt, .. }
                if *cmd == done.cmd && *attempt == task.attempt)
        })
        .count();
    if carried != 1 {
        return Err(abort(StoreError::InvalidCommit {
            run,
            reason: format!(
                "resolves attempt {} of activity {} but carries {carried} matching results",
                task.attempt, done.cmd
            ),
        }));
    }
    tx.deadlines
        .delete(&keys::time_key(deadline, run, done.cmd)[..])?;
    tx.tasks.delete(&keys::task_key(run, done.cmd)[..])?;
    let Some(mut record) = get_run(tx.runs, run)? else {
        return Err(abort(StoreError::RunNotFound { run }));
    };
    record.pending_activities.retain(|c| *c != done.cmd);
    put_run(tx.runs, tx.ready, run, &record)
}
