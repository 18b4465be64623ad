//! Queries as workflow tasks: a query waits in memory until a worker's
//! workflow-task poll takes it ([`WorkflowTask::Query`]) and answers it with
//! [`HistoryStore::answer_query`]. Nothing of it is durable: a query is a
//! read, and a caller whose query is lost (a restart, no worker polling)
//! gets [`QueryError::TimedOut`] and may ask again.
//!
//! [`WorkflowTask::Query`]: crate::WorkflowTask::Query
//! [`HistoryStore::answer_query`]: crate::HistoryStore::answer_query
//! [`QueryError::TimedOut`]: QueryError::TimedOut
//!
//! The queue lives with the store (each store has one) and names nothing
//! of the seam above it; the seam re-exports its public types.

use crate::event::Payload;
use crate::ids::RunId;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use tokio::sync::{oneshot, Notify};

/// Names one query while it waits for its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

impl fmt::Display for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query {}", self.0)
    }
}

/// A query for a worker to answer from the run's workflow instance.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryTask {
    /// What the answer names.
    pub id: QueryId,
    /// The run asked.
    pub run: RunId,
    /// The query's name (`Query::NAME`).
    pub name: String,
    /// Its encoded arguments.
    pub args: Payload,
}

/// Why [`HistoryStore::query`](crate::HistoryStore::query) got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryError {
    /// No worker answered within the wait the caller gave: none polls for
    /// workflow tasks, or the one that took the query did not answer in
    /// time. Nothing was written; asking again is safe.
    TimedOut {
        /// The run asked.
        run: RunId,
        /// How long the caller waited.
        waited: std::time::Duration,
    },
    /// The backend shut down before the query was answered.
    WorkerStopped,
    /// An answer named a query nobody waits for any more (it timed out, or
    /// never was asked).
    UnknownQuery {
        /// The query's id.
        id: QueryId,
    },
    /// The worker could not answer: the run is unknown to it, the workflow
    /// registers no handler of that name, or the handler failed.
    Refused {
        /// The worker's explanation.
        reason: String,
    },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::TimedOut { run, waited } => write!(
                f,
                "no worker answered the query of {run} within {:.1} s",
                waited.as_secs_f64()
            ),
            QueryError::WorkerStopped => f.write_str("the worker stopped before answering"),
            QueryError::UnknownQuery { id } => write!(f, "nobody waits for {id} any more"),
            QueryError::Refused { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for QueryError {}

type Answer = oneshot::Sender<Result<Payload, QueryError>>;

#[derive(Default)]
struct State {
    next: u64,
    /// Asked and not yet taken by a poll.
    queued: VecDeque<QueryTask>,
    /// Asked and not yet answered (taken or not), by id.
    waiting: HashMap<QueryId, Answer>,
}

/// The queries of one backend (in memory).
#[derive(Default)]
pub struct QueryQueue {
    state: Mutex<State>,
    notify: Notify,
}

impl QueryQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a query; the receiver gets its answer.
    pub(crate) fn ask(
        &self,
        run: RunId,
        name: &str,
        args: Payload,
    ) -> (QueryId, oneshot::Receiver<Result<Payload, QueryError>>) {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut s = self.lock();
            s.next += 1;
            let id = QueryId(s.next);
            s.queued.push_back(QueryTask {
                id,
                run,
                name: name.to_owned(),
                args,
            });
            s.waiting.insert(id, tx);
            id
        };
        // Stores a permit when no poll waits, so the next one looks.
        self.notify.notify_one();
        (id, rx)
    }

    /// Forgets a query whose caller stopped waiting.
    pub(crate) fn forget(&self, id: QueryId) {
        let mut s = self.lock();
        s.queued.retain(|q| q.id != id);
        s.waiting.remove(&id);
    }

    /// Takes up to `max` queued queries, oldest first.
    pub(crate) fn take(&self, max: usize) -> Vec<QueryTask> {
        let mut s = self.lock();
        let n = max.min(s.queued.len());
        s.queued.drain(..n).collect()
    }

    /// Notified when a query is queued.
    pub(crate) fn notify(&self) -> &Notify {
        &self.notify
    }

    /// Hands `answer` to the caller of query `id`.
    ///
    /// # Errors
    /// `UnknownQuery` if nobody waits for it any more (it timed out).
    pub(crate) fn answer(
        &self,
        id: QueryId,
        answer: Result<Payload, QueryError>,
    ) -> Result<(), QueryError> {
        let waiting = self.lock().waiting.remove(&id);
        match waiting {
            Some(tx) => tx.send(answer).map_err(|_| QueryError::UnknownQuery { id }),
            None => Err(QueryError::UnknownQuery { id }),
        }
    }
}
