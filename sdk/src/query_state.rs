//! [`QueryState`]: workflow state that query handlers read, without an
//! `Rc<RefCell<_>>` shared by hand.
//!
//! The workflow owns the state and changes it with [`QueryState::set`] and
//! [`QueryState::update`]; handlers registered with
//! [`QueryState::answer`] see it as `&T`, so a query can read
//! but not change it. That split is what keeps queries replay-safe: the
//! state is rebuilt by replaying the workflow, never by a query, so a run
//! replayed after a crash answers exactly as the run that was asked before.
//!
//! Queries are answered while the workflow is blocked between activations,
//! never while its code runs, so a handler never sees a half-made change.

use crate::context::WorkflowContext;
use crate::query::Query;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// State a workflow keeps and its queries read.
///
/// ```
/// use refrain::{Query, QueryState, Signal, Workflow, WorkflowContext, WorkflowError};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Signal)]
/// struct Approve(String);
///
/// /// Who has approved so far.
/// #[derive(Query)]
/// #[query(result = Vec<String>)]
/// struct Approvals;
///
/// struct Review;
/// impl Workflow for Review {
///     const NAME: &'static str = "review";
///     type Input = ();
///     type Output = Vec<String>;
///     async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
///         let approvals = QueryState::new(Vec::new());
///         approvals.answer::<Approvals>(&ctx, |list, ()| list.clone());
///         for _ in 0..2 {
///             let Approve(who) = ctx.wait_signal::<Approve>().await?;
///             approvals.update(|list| list.push(who));
///         }
///         Ok(approvals.get())
///     }
/// }
/// ```
pub struct QueryState<T> {
    value: Rc<RefCell<T>>,
}

impl<T> Clone for QueryState<T> {
    fn clone(&self) -> Self {
        QueryState {
            value: self.value.clone(),
        }
    }
}

impl<T: 'static> QueryState<T> {
    /// State starting at `value`.
    pub fn new(value: T) -> Self {
        QueryState {
            value: Rc::new(RefCell::new(value)),
        }
    }

    /// Replaces the state; queries asked from now on see `value`.
    ///
    /// # Panics
    /// Inside [`update`](Self::update) or [`read`](Self::read) of the same
    /// state.
    pub fn set(&self, value: T) {
        *self.value.borrow_mut() = value;
    }

    /// Changes the state in place and returns what `change` returns.
    ///
    /// # Panics
    /// If `change` reads or changes this same state.
    pub fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
        change(&mut self.value.borrow_mut())
    }

    /// What `look` computes from the state.
    ///
    /// # Panics
    /// Inside [`update`](Self::update) of the same state.
    pub fn read<R>(&self, look: impl FnOnce(&T) -> R) -> R {
        look(&self.value.borrow())
    }

    /// Answers query `Q` from this state from now on (a later registration
    /// of `Q` replaces it): `answer` gets the state as `&T` and the
    /// caller's arguments. It cannot change the state and, like every
    /// handler, must not call `ctx` (see
    /// [`WorkflowContext::on_query`]).
    pub fn answer<Q: Query>(
        &self,
        ctx: &WorkflowContext,
        answer: impl Fn(&T, Q::Args) -> Q::Result + 'static,
    ) {
        // The handler holds the value only, not `ctx`: the context owns
        // its handlers, and a handler owning the context would keep the
        // run's state alive after the run is evicted.
        let state = self.clone();
        ctx.on_query::<Q>(move |args| state.read(|value| answer(value, args)));
    }

    /// A copy of the state.
    ///
    /// # Panics
    /// Inside [`update`](Self::update) of the same state.
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.value.borrow().clone()
    }
}

impl<T: fmt::Debug> fmt::Debug for QueryState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value.try_borrow() {
            Ok(v) => f.debug_tuple("QueryState").field(&*v).finish(),
            Err(_) => f.write_str("QueryState(<being updated>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::QueryState;

    #[test]
    fn clones_share_one_state() {
        let state = QueryState::new(vec![1]);
        let seen = state.clone();
        state.update(|v| v.push(2));
        assert_eq!(seen.get(), vec![1, 2]);
        state.set(vec![3]);
        assert_eq!(seen.read(|v| v.len()), 1);
        assert_eq!(format!("{seen:?}"), "QueryState([3])");
    }
}
