//! Queries as workflow tasks: a query waits in memory until a worker's
//! workflow-task poll takes it ([`WorkflowTask::Query`]) and answers it with
//! [`HistoryStore::answer_query`]. Nothing of it is durable: a query is a
//! read, and a caller whose query is lost (a restart, no worker polling)
//! gets [`QueryError::TimedOut`] and may ask again.
//!
//! [`WorkflowTask::Query`]: super::WorkflowTask::Query
//! [`HistoryStore::answer_query`]: super::HistoryStore::answer_query

use super::QueryError;
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
