//! Child workflows: a workflow starting another, with its own id and
//! history, and waiting for its result.

use crate::payload::{self, PayloadError};
use crate::replay::state::{Resolution, SharedState};
use crate::workflow::Workflow;
use rand::RngCore;
use refrain_history::{Callsite, CommandSeq, Event, Failure, ParentClosePolicy, WorkflowId};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A child workflow call. Recorded at the call, like an activity; the
/// parent-close policy chained before `.await` amends it.
#[must_use = "a child workflow call does nothing useful until awaited"]
pub struct ChildCall<W: Workflow> {
    state: SharedState,
    scheduled: Result<CommandSeq, ChildWorkflowFailed>,
    policy: ParentClosePolicy,
    _marker: PhantomData<fn() -> W>,
}

/// The default: a child still running when its parent closes is asked to
/// cancel, so that it can clean up (refund, release) rather than die
/// midway.
const DEFAULT_PARENT_CLOSE: ParentClosePolicy = ParentClosePolicy::RequestCancel;

impl<W: Workflow> ChildCall<W> {
    pub(crate) fn start(
        state: SharedState,
        workflow_id: WorkflowId,
        input: Result<refrain_history::Payload, PayloadError>,
        callsite: Callsite,
    ) -> Self {
        let scheduled = {
            let mut st = state.borrow_mut();
            let cmd = st.next_cmd();
            match input {
                Ok(input) => {
                    let seed = st.rng.next_u64();
                    st.slots.entry(cmd.0).or_default();
                    st.emit(
                        Event::ChildWorkflowStarted {
                            cmd,
                            workflow_type: W::NAME.to_owned(),
                            workflow_id: workflow_id.clone(),
                            input,
                            seed,
                            parent_close: DEFAULT_PARENT_CLOSE,
                            callsite: callsite.clone(),
                        },
                        Some(callsite),
                    );
                    Ok(cmd)
                }
                Err(e) => {
                    let mut failure = Failure::application("payload", e.to_string());
                    failure.non_retryable = true;
                    Err(ChildWorkflowFailed {
                        workflow_type: W::NAME.to_owned(),
                        workflow_id,
                        cmd,
                        failure,
                    })
                }
            }
        };
        ChildCall {
            state,
            scheduled,
            policy: DEFAULT_PARENT_CLOSE,
            _marker: PhantomData,
        }
    }

    /// What happens to the child if this workflow closes first: asked to
    /// cancel (the default), terminated, or abandoned to run on by itself.
    /// An abandoned child is also not cancelled when its future is dropped.
    pub fn parent_close(mut self, policy: ParentClosePolicy) -> Self {
        self.policy = policy;
        if let Ok(cmd) = self.scheduled {
            let mut st = self.state.borrow_mut();
            let found = st
                .produced
                .iter_mut()
                .rev()
                .find_map(|p| match &mut p.event {
                    Event::ChildWorkflowStarted {
                        cmd: c,
                        parent_close,
                        ..
                    } if *c == cmd => Some(parent_close),
                    _ => None,
                });
            match found {
                Some(p) => *p = policy,
                None => st.record_misuse(
                    format!("the parent-close policy of child {cmd} was changed after the activation that started it"),
                    None,
                ),
            }
        }
        self
    }
}

impl<W: Workflow> IntoFuture for ChildCall<W> {
    type Output = Result<W::Output, ChildWorkflowFailed>;
    type IntoFuture = ChildFuture<W>;

    fn into_future(self) -> ChildFuture<W> {
        ChildFuture {
            state: self.state,
            scheduled: Some(self.scheduled),
            policy: self.policy,
            _marker: PhantomData,
        }
    }
}

/// A started child workflow's result.
#[must_use = "futures do nothing unless awaited"]
pub struct ChildFuture<W: Workflow> {
    state: SharedState,
    /// `None` once the result has been returned.
    scheduled: Option<Result<CommandSeq, ChildWorkflowFailed>>,
    policy: ParentClosePolicy,
    _marker: PhantomData<fn() -> W>,
}

impl<W: Workflow> Unpin for ChildFuture<W> {}

impl<W: Workflow> Future for ChildFuture<W> {
    type Output = Result<W::Output, ChildWorkflowFailed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let cmd = match self.scheduled.as_ref() {
            Some(Ok(cmd)) => *cmd,
            Some(Err(_)) => {
                let Some(Err(failed)) = self.scheduled.take() else {
                    unreachable!()
                };
                return Poll::Ready(Err(failed));
            }
            None => panic!("child workflow future polled after completion"),
        };
        let mut st = self.state.borrow_mut();
        let workflow_id = st.workflow_id.clone();
        let slot = st.slots.entry(cmd.0).or_default();
        let resolution = match slot.resolution.clone() {
            None => {
                slot.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Some(r) => r,
        };
        slot.waker = None;
        drop(st);
        self.scheduled = None;
        let failed = |failure: Failure| ChildWorkflowFailed {
            workflow_type: W::NAME.to_owned(),
            workflow_id: workflow_id.clone(),
            cmd,
            failure,
        };
        Poll::Ready(match resolution {
            Resolution::ChildCompleted { result } => {
                payload::decode(&format!("{} result", W::NAME), &result).map_err(|e| {
                    let mut f = Failure::application("payload", e.to_string());
                    f.non_retryable = true;
                    failed(f)
                })
            }
            Resolution::ChildFailed { failure } => Err(failed(failure)),
            _ => Err(failed(Failure::application(
                "nondeterminism",
                format!("{cmd} was resolved as something other than a child workflow"),
            ))),
        })
    }
}

impl<W: Workflow> Drop for ChildFuture<W> {
    /// A child whose result nobody will read any more is asked to cancel
    /// (it may clean up first), unless it was abandoned on purpose.
    fn drop(&mut self) {
        let Some(Ok(cmd)) = self.scheduled else {
            return;
        };
        if self.policy == ParentClosePolicy::Abandon {
            return;
        }
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return;
        };
        let unresolved = st
            .slots
            .get_mut(&cmd.0)
            .map(|slot| {
                slot.waker = None;
                slot.resolution.is_none()
            })
            .unwrap_or(true);
        if unresolved && !st.tearing_down {
            st.emit(Event::ChildWorkflowCancelRequested { cmd }, None);
        }
    }
}

/// A child workflow failed, was cancelled or terminated, or could not
/// start (its id was taken).
#[derive(Clone, Debug, PartialEq)]
pub struct ChildWorkflowFailed {
    /// The child's workflow type.
    pub workflow_type: String,
    /// The parent's workflow id (the child's id is in the history).
    pub workflow_id: WorkflowId,
    /// The parent's command that started it.
    pub cmd: CommandSeq,
    /// Why.
    pub failure: Failure,
}

impl fmt::Display for ChildWorkflowFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "child workflow {} ({} of {}) failed: {}",
            self.workflow_type, self.cmd, self.workflow_id, self.failure
        )
    }
}

impl std::error::Error for ChildWorkflowFailed {}
