//! Eager starts: a start made in a process whose worker runs the workflow
//! type carries the run's first activation in its own transaction.
//!
//! An ordinary start is one transaction (the run and its `WorkflowStarted`),
//! then the worker notices the run, runs its first activation and commits
//! that in a second transaction. Here the caller (a worker's client) has
//! the store reserve the run's number first ([`Store::reserve_eager_start`],
//! see `RunIds`), runs the first activation with that number and gives
//! both back in one operation ([`Store::start_eager_then`]): the start's checks (id conflict
//! policy) and writes, then the activation's, exactly as the two would
//! have been applied one after the other. The activities the activation
//! schedules may be claimed in the same transaction for the worker to run
//! (as with [`Store::commit_activation_direct`]).
//!
//! Nothing is promised that an ordinary start does not keep: the caller
//! gets the same outcome, the history is the same, and whenever the eager
//! path cannot finish (the worker stopped, the workflow's first activation
//! failed, the commit was refused) the caller makes the ordinary start
//! instead ([`EagerStartAnswer::outcome`] says `None`). A start whose id is taken discards the activation and answers
//! as an ordinary start would; its reserved number is left unused.
//!
//! [`Store::commit_activation_direct`]: super::Store::commit_activation_direct

use super::direct::DirectActivities;
use super::transitions::start::{prepare_start, start_in_tx, PreparedStart, RunNumber};
use super::transitions::tables::Tx;
use super::{Inner, Store};
use crate::error::StoreError;
use crate::event::Event;
use crate::ids::{RunId, WorkflowId};
use crate::store::api::{ActivationCommit, IdConflictPolicy, StartOutcome, StartRequest};
use crate::store::records::{ActivityTask, RunRecord};
use std::sync::Arc;
use tokio::sync::oneshot;

/// A start whose run number is reserved, for its first activation to run
/// before it is made ([`Store::reserve_eager_start`]).
pub struct EagerStart {
    run: RunId,
    started: Event,
    /// `started`, encoded once (it does not depend on the run number).
    event: Vec<u8>,
    record: RunRecord,
    workflow_id: WorkflowId,
    on_conflict: IdConflictPolicy,
    reply: oneshot::Sender<Reply>,
}

/// What the waiting start hears back.
pub(super) enum Reply {
    /// The outcome of the start.
    Done(Result<StartOutcome, StoreError>),
    /// Nothing was written: make the ordinary start.
    Declined,
}

impl EagerStart {
    /// The run's number, if the start takes place.
    pub fn run(&self) -> RunId {
        self.run
    }

    /// The run's first event, `WorkflowStarted`.
    pub fn started(&self) -> &Event {
        &self.started
    }

    /// The run's record as the start writes it: what the first
    /// activation's commit is checked against (`last_seq` 1, an empty
    /// inbox, the history's size so far).
    pub fn record(&self) -> &RunRecord {
        &self.record
    }
}

impl std::fmt::Debug for EagerStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EagerStart")
            .field("run", &self.run)
            .field("workflow_id", &self.workflow_id)
            .field("workflow_type", &self.record.workflow_type)
            .finish_non_exhaustive()
    }
}

/// Where the outcome of a reserved start arrives once it is handed to
/// [`Store::start_eager_then`].
pub struct EagerStartAnswer(oneshot::Receiver<Reply>);

impl EagerStartAnswer {
    /// The start's outcome; `None` if nothing was written (the start was
    /// never handed in, or its operation was refused): then make the
    /// ordinary start.
    pub async fn outcome(self) -> Option<Result<StartOutcome, StoreError>> {
        match self.0.await {
            Ok(Reply::Done(outcome)) => Some(outcome),
            Ok(Reply::Declined) | Err(_) => None,
        }
    }
}

impl Store {
    /// Reserves a run number for `req`, whose first activation the caller
    /// runs (with [`EagerStart::run`] and [`EagerStart::started`]) and
    /// hands in with the start ([`Store::start_eager_then`]). A number
    /// reserved and never used is left unused. Writes nothing.
    ///
    /// # Errors
    /// `PayloadTooLarge`; `Storage` if no number can be reserved.
    pub fn reserve_eager_start(
        &self,
        req: &StartRequest,
    ) -> Result<(EagerStart, EagerStartAnswer), StoreError> {
        let inner = &self.inner;
        let PreparedStart {
            started,
            event,
            record,
        } = prepare_start(req, inner.config.max_payload_bytes)?;
        let run = inner.trees.run_ids.reserve()?;
        let (reply, answer) = oneshot::channel();
        let start = EagerStart {
            run,
            started,
            event,
            record,
            workflow_id: req.workflow_id.clone(),
            on_conflict: req.on_conflict,
            reply,
        };
        Ok((start, EagerStartAnswer(answer)))
    }
}

/// Applies an eager start and its first activation in one operation,
/// without waiting (as `commit_activation_detached`). `done` gets the
/// activities claimed for the caller, or `None` if the id stands for
/// another run (the activation was discarded), or the error that refused
/// the operation (then the waiting start makes an ordinary start).
pub(super) fn start_eager_detached(
    inner: &Arc<Inner>,
    start: EagerStart,
    commit: ActivationCommit,
    direct: DirectActivities,
    done: impl FnOnce(Result<Option<Vec<ActivityTask>>, StoreError>) + Send + 'static,
) {
    let EagerStart {
        run,
        event,
        record,
        workflow_id,
        on_conflict,
        reply,
        ..
    } = start;
    if commit.run != run || commit.expected_last_seq != record.last_seq {
        let _ = reply.send(Reply::Declined);
        return done(Err(StoreError::InvalidCommit {
            run: commit.run,
            reason: format!("not the first activation of eagerly started {run}"),
        }));
    }
    let activation = match inner.direct_op(commit, direct) {
        Ok(op) => op,
        Err(e) => {
            let _ = reply.send(Reply::Declined);
            return done(Err(e));
        }
    };
    let op = move |tx: &Tx<'_>| {
        let outcome = start_in_tx(
            (tx.meta, tx.ids, tx.task.runs, tx.history, tx.task.ready),
            RunNumber::Reserved(run),
            &workflow_id,
            on_conflict,
            &event,
            &record,
        )?;
        if !outcome.started {
            return Ok((outcome, None));
        }
        let applied = activation(tx)?;
        Ok((outcome, Some(applied)))
    };
    // Not a strong handle: a queued operation must not keep the store
    // alive.
    let store = Arc::downgrade(inner);
    inner
        .batcher
        .apply_detached(&inner.trees, op, move |outcome| {
            let (answer, claimed) = match outcome {
                Ok((outcome, Some((fx, mut claimed)))) => {
                    if let Some(inner) = store.upgrade() {
                        super::direct::durable_after(&mut claimed, inner.flusher.ticket());
                        fx.wake(&inner, run);
                    } else {
                        claimed.clear();
                    }
                    (Reply::Done(Ok(outcome)), Ok(Some(claimed)))
                }
                Ok((outcome, None)) => (Reply::Done(Ok(outcome)), Ok(None)),
                // The start's own refusal: an ordinary start would say the same.
                Err(e @ StoreError::AlreadyRunning { .. }) => (Reply::Done(Err(e)), Ok(None)),
                Err(e) => (Reply::Declined, Err(e)),
            };
            // The starter may have stopped waiting; that is its right.
            let _ = reply.send(answer);
            done(claimed);
        });
}
