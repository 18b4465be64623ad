//! Queries: reading a running (or closed) workflow's state through a
//! handler the workflow registers, without touching its history.

use crate::context::WorkflowContext;
use crate::payload::{self, PayloadError};
use refrain_history::Payload;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::rc::Rc;

/// A typed query a workflow answers, e.g. "status" of an approval.
///
/// Derive it: `result` is what the handler returns, `args` what callers
/// pass (default `()`), `name` its name (default: the type's in kebab
/// case).
///
/// ```
/// use refrain::Query;
///
/// #[derive(Query)]
/// #[query(result = String)]
/// struct Status;
///
/// assert_eq!(Status::NAME, "status");
/// ```
pub trait Query: 'static {
    /// Name the query is registered and asked under.
    const NAME: &'static str;
    /// What the caller passes.
    type Args: Serialize + DeserializeOwned + 'static;
    /// What the handler returns.
    type Result: Serialize + DeserializeOwned + 'static;
}

/// A registered handler with payloads in and out.
pub(crate) type QueryHandler = Rc<dyn Fn(&Payload) -> Result<Payload, QueryError>>;

impl WorkflowContext {
    /// Answers query `Q` with `handler` from now on (a later registration
    /// of the same query replaces it). Handlers read workflow state, most
    /// simply kept in a [`QueryState`](crate::QueryState) and answered with
    /// [`QueryState::answer`](crate::QueryState::answer); they must not
    /// call activities, timers or any other `ctx` command: a query never
    /// changes the history.
    pub fn on_query<Q: Query>(&self, handler: impl Fn(Q::Args) -> Q::Result + 'static) {
        let erased: QueryHandler = Rc::new(move |args: &Payload| {
            let args: Q::Args = payload::decode(&format!("query {} arguments", Q::NAME), args)
                .map_err(QueryError::Payload)?;
            payload::encode(&format!("query {} result", Q::NAME), &handler(args))
                .map_err(QueryError::Payload)
        });
        self.state()
            .borrow_mut()
            .queries
            .insert(Q::NAME.to_owned(), erased);
    }
}

/// Why a query was not answered.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueryError {
    /// The workflow has not registered a handler for this query (yet).
    UnknownQuery {
        /// The query asked.
        name: String,
        /// The queries it does answer.
        known: Vec<String>,
    },
    /// Arguments or result could not be converted.
    Payload(PayloadError),
    /// The handler panicked or issued a command.
    HandlerFailed(String),
    /// The workflow could not be loaded to answer (no worker registered
    /// for its type in this process, corrupt history, ...).
    Unavailable(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::UnknownQuery { name, known } => {
                write!(f, "the workflow does not answer query {name:?}")?;
                if known.is_empty() {
                    write!(f, " (it registers no queries)")
                } else {
                    write!(f, " (it answers: {})", known.join(", "))
                }
            }
            QueryError::Payload(e) => fmt::Display::fmt(e, f),
            QueryError::HandlerFailed(m) => write!(f, "query handler failed: {m}"),
            QueryError::Unavailable(m) => write!(f, "query not answered: {m}"),
        }
    }
}

impl std::error::Error for QueryError {}

/// Decodes a query result for a caller of `Q`.
pub(crate) fn decode_result<Q: Query>(p: &Payload) -> Result<Q::Result, PayloadError> {
    payload::decode(&format!("query {} result", Q::NAME), p)
}
