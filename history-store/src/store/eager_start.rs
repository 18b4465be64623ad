//! Eager starts: a start made in a process whose worker runs the workflow
//! type carries the run's first activation in its own transaction.
//!
//! An ordinary start is one transaction (the run and its `WorkflowStarted`),
//! then the worker notices the run, runs its first activation and commits
//! that in a second transaction. Here the store reserves the run's number
//! first (see `RunIds`), hands the start to the worker (an
//! [`EagerStarter`]), which runs the first activation with that number and
//! gives both back in one operation: the start's checks (id conflict
//! policy) and writes, then the activation's, exactly as the two would
//! have been applied one after the other. The activities the activation
//! schedules may be claimed in the same transaction for the worker to run
//! (as with [`Store::commit_activation_eager`]).
//!
//! Nothing is promised that an ordinary start does not keep: the caller
//! gets the same outcome, the history is the same, and whenever the eager
//! path cannot finish (the worker stopped, the workflow's first activation
//! failed, the commit was refused) the store makes the ordinary start
//! instead. A start whose id is taken discards the activation and answers
//! as an ordinary start would; its reserved number is left unused.
//!
//! [`Store::commit_activation_eager`]: super::Store::commit_activation_eager

use super::eager::EagerCommit;
use super::transitions::start::{start_in_tx, RunNumber};
use super::transitions::tables::Tx;
use super::Inner;
use crate::error::StoreError;
use crate::event::Event;
use crate::ids::{RunId, WorkflowId};
use crate::store::api::{ActivationCommit, IdConflictPolicy, StartOutcome};
use crate::store::records::{ActivityTask, RunRecord};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Runs first activations of starts made in this process. Set by a worker
/// ([`Store::set_eager_starter`]); the store only carries it, so that a
/// `Client` holding nothing but the store starts eagerly.
///
/// [`Store::set_eager_starter`]: super::Store::set_eager_starter
pub trait EagerStarter: Send + Sync {
    /// Whether this process can run the first activation of
    /// `workflow_type`.
    fn runs(&self, workflow_type: &str) -> bool;

    /// Takes a start: runs its first activation and hands both to
    /// [`Store::start_eager_then`]. Dropping `start` instead (the worker
    /// is stopping, the activation failed) makes it an ordinary start.
    ///
    /// [`Store::start_eager_then`]: super::Store::start_eager_then
    fn take(&self, start: EagerStart);
}

/// A start handed to an [`EagerStarter`], with its run number reserved.
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

impl Inner {
    fn eager_starter(&self) -> Option<Arc<dyn EagerStarter>> {
        self.eager_starter
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Offers a start to the eager starter. `None` if there is none for
    /// the type or it gave the start back (then nothing was written).
    pub(super) async fn try_start_eagerly(
        &self,
        started: &Event,
        event: &[u8],
        record: &RunRecord,
        on_conflict: IdConflictPolicy,
    ) -> Option<Result<StartOutcome, StoreError>> {
        let starter = self.eager_starter()?;
        if !starter.runs(&record.workflow_type) {
            return None;
        }
        let run = match self.trees.run_ids.reserve() {
            Ok(run) => run,
            Err(e) => return Some(Err(e)),
        };
        let (reply, answer) = oneshot::channel();
        starter.take(EagerStart {
            run,
            started: started.clone(),
            event: event.to_vec(),
            record: record.clone(),
            workflow_id: record.workflow_id.clone(),
            on_conflict,
            reply,
        });
        match answer.await {
            Ok(Reply::Done(outcome)) => Some(outcome),
            // Declined, or dropped by the starter before it was handed in.
            Ok(Reply::Declined) | Err(_) => None,
        }
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
    eager: EagerCommit,
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
    let activation = match inner.eager_op(commit, eager) {
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
                        super::eager::durable_after(&mut claimed, inner.flusher.ticket());
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
