//! Direct commits: activation commits that do more in their one
//! transaction, for a worker that runs activities in the same process
//! (direct dispatch; not to be confused with an eager start, which commits
//! a run's first activation with its start):
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

use super::commit::prepare;
use super::durability::FlushTicket;
use super::transitions::activation;
pub use super::transitions::activation::{DirectActivities, LocalCompletion};
use super::transitions::effects::Effects;
use super::transitions::tables::Tx;
use super::tx::TxResult;
use super::Inner;
use crate::error::StoreError;
use crate::ids::LeaseToken;
use crate::store::api::ActivationCommit;
use crate::store::records::ActivityTask;
use std::sync::Arc;

/// The transaction of a direct commit, built outside it (the encoded
/// events and drawn tokens are fixed before the transaction runs).
pub(super) type DirectOp = Box<dyn Fn(&Tx<'_>) -> TxResult<(Effects, Vec<ActivityTask>)> + Send>;

impl Inner {
    pub(super) fn commit_activation_direct(
        &self,
        commit: ActivationCommit,
        direct: DirectActivities,
    ) -> Result<Vec<ActivityTask>, StoreError> {
        let run = commit.run;
        let op = self.direct_op(commit, direct)?;
        let (fx, mut claimed) = self.batcher.apply(&self.trees, op)?;
        durable_after(&mut claimed, self.flusher.ticket());
        fx.wake(self, run);
        Ok(claimed)
    }

    pub(super) fn direct_op(
        &self,
        commit: ActivationCommit,
        direct: DirectActivities,
    ) -> Result<DirectOp, StoreError> {
        let prepared = prepare(self, &commit)?;
        // Tokens are drawn outside so the closure stays pure.
        let tokens = direct
            .claim
            .iter()
            .map(|_| self.trees.engine.generate_id().map(LeaseToken))
            .collect::<Result<Vec<_>, _>>()?;
        let claim_now = self.config.clock.now();
        Ok(Box::new(move |tx| {
            activation::apply_direct(tx, &commit, &prepared, &direct, &tokens, claim_now)
        }))
    }
}

/// [`Inner::commit_activation_direct`] without waiting: `done` gets the
/// outcome once the transaction is applied (see `Batcher::apply_detached`
/// for the thread it is called on, and why it must not wait for the
/// store). The wake-ups are made before `done` is called. A commit refused
/// before its transaction (bad shape, payload too large) is answered at
/// once.
pub(super) fn commit_activation_detached(
    inner: &Arc<Inner>,
    commit: ActivationCommit,
    direct: DirectActivities,
    done: impl FnOnce(Result<(Vec<ActivityTask>, FlushTicket), StoreError>) + Send + 'static,
) {
    let run = commit.run;
    let op = match inner.direct_op(commit, direct) {
        Ok(op) => op,
        Err(e) => return done(Err(e)),
    };
    // Not a strong handle: a queued operation must not keep the store
    // (whose batcher queues it) alive.
    let store = Arc::downgrade(inner);
    inner
        .batcher
        .apply_detached(&inner.trees, op, move |outcome| {
            done(outcome.and_then(|(fx, mut claimed)| {
                // Nothing can make the commit durable any more: its
                // attempts never run.
                let inner = store.upgrade().ok_or(StoreError::Closed)?;
                let ticket = inner.flusher.ticket();
                durable_after(&mut claimed, ticket);
                fx.wake(&inner, run);
                Ok((claimed, ticket))
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
