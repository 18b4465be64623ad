//! The futures that workflow code awaits: activity calls, timers and
//! signals. Each resolves only from events applied by an activation, which
//! is what makes a run replayable.

use crate::activity::Activity;
use crate::error::{ActivityFailed, WorkflowError};
use crate::payload::{self, PayloadError};
use crate::replay::state::{Resolution, SharedState};
use crate::workflow::Signal;
use refrain_history::{
    ActivityOptions, Callsite, CommandSeq, Event, Failure, Payload, RetryPolicy, Timestamp,
};
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// An activity call. The command is recorded at the call, in program
/// order; options chained before `.await` amend it (nothing is committed
/// until the activation ends). Dropping it unawaited still runs the
/// activity, like starting it without waiting.
#[must_use = "an activity call does nothing useful until awaited"]
pub struct ActivityCall<A: Activity> {
    state: SharedState,
    /// The command, or why it could not be scheduled.
    scheduled: Result<CommandSeq, ActivityFailed>,
    _marker: PhantomData<fn() -> A>,
}

impl<A: Activity> ActivityCall<A> {
    pub(crate) fn schedule(
        state: SharedState,
        input: Result<Payload, PayloadError>,
        callsite: Callsite,
    ) -> Self {
        let scheduled = {
            let mut st = state.borrow_mut();
            let cmd = st.next_cmd();
            match input {
                Ok(input) => {
                    st.slots.entry(cmd.0).or_default().activity_type = Some(A::NAME.to_owned());
                    st.emit(
                        Event::ActivityScheduled {
                            cmd,
                            activity_type: A::NAME.to_owned(),
                            input,
                            options: ActivityOptions::default(),
                            callsite: callsite.clone(),
                        },
                        Some(callsite),
                    );
                    Ok(cmd)
                }
                // Nothing is scheduled; the failure is as deterministic as
                // the input that caused it.
                Err(e) => {
                    let mut failure = Failure::application("payload", e.to_string());
                    failure.non_retryable = true;
                    Err(ActivityFailed {
                        activity_type: A::NAME.to_owned(),
                        cmd,
                        attempts: 0,
                        failure,
                    })
                }
            }
        };
        ActivityCall {
            state,
            scheduled,
            _marker: PhantomData,
        }
    }

    fn amend(self, f: impl FnOnce(&mut ActivityOptions)) -> Self {
        if let Ok(cmd) = self.scheduled {
            let mut st = self.state.borrow_mut();
            let found = st
                .produced
                .iter_mut()
                .rev()
                .find_map(|p| match &mut p.event {
                    Event::ActivityScheduled {
                        cmd: c, options, ..
                    } if *c == cmd => Some(options),
                    _ => None,
                });
            match found {
                Some(options) => f(options),
                None => st.record_misuse(
                    format!("options of activity {cmd} were changed after the activation that scheduled it"),
                    None,
                ),
            }
        }
        self
    }

    /// Longest single attempt.
    pub fn start_to_close(self, d: Duration) -> Self {
        self.amend(|o| o.start_to_close = Some(d))
    }

    /// Longest time for all attempts together.
    pub fn schedule_to_close(self, d: Duration) -> Self {
        self.amend(|o| o.schedule_to_close = Some(d))
    }

    /// Longest silence between heartbeats.
    pub fn heartbeat_timeout(self, d: Duration) -> Self {
        self.amend(|o| o.heartbeat_timeout = Some(d))
    }

    /// How failed attempts are retried.
    pub fn retry(self, policy: RetryPolicy) -> Self {
        self.amend(|o| o.retry = policy)
    }

    /// Replaces all options at once.
    pub fn options(self, options: ActivityOptions) -> Self {
        self.amend(|o| *o = options)
    }
}

impl<A: Activity> IntoFuture for ActivityCall<A> {
    type Output = Result<A::Output, ActivityFailed>;
    type IntoFuture = ActivityFuture<A::Output>;

    fn into_future(self) -> Self::IntoFuture {
        let (cmd, early) = match self.scheduled {
            Ok(cmd) => (cmd, None),
            Err(failed) => (failed.cmd, Some(failed)),
        };
        ActivityFuture {
            state: self.state,
            cmd,
            activity_type: A::NAME,
            scheduled: early.is_none(),
            early,
            _marker: PhantomData,
        }
    }
}

/// A scheduled activity's result.
#[must_use = "futures do nothing unless awaited"]
pub struct ActivityFuture<O> {
    state: SharedState,
    cmd: CommandSeq,
    activity_type: &'static str,
    /// The failure of a call that was never scheduled (its input did not
    /// encode), answered by the first poll.
    early: Option<ActivityFailed>,
    /// Whether the call was scheduled at all: only then is there anything
    /// to cancel on drop (`early` is gone once polled, so it cannot say).
    scheduled: bool,
    _marker: PhantomData<fn() -> O>,
}

impl<O> Unpin for ActivityFuture<O> {}

impl<O: serde::de::DeserializeOwned> Future for ActivityFuture<O> {
    type Output = Result<O, ActivityFailed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(failed) = self.early.take() {
            return Poll::Ready(Err(failed));
        }
        let mut st = self.state.borrow_mut();
        let slot = st.slots.entry(self.cmd.0).or_default();
        match slot.resolution.clone() {
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Some(Resolution::ActivityCompleted { attempt, result }) => {
                slot.waker = None;
                Poll::Ready(
                    payload::decode(&format!("{} result", self.activity_type), &result).map_err(
                        |e| {
                            let mut failure = Failure::application("payload", e.to_string());
                            failure.non_retryable = true;
                            ActivityFailed {
                                activity_type: self.activity_type.to_owned(),
                                cmd: self.cmd,
                                attempts: attempt,
                                failure,
                            }
                        },
                    ),
                )
            }
            Some(Resolution::ActivityFailed { attempt, failure }) => {
                slot.waker = None;
                Poll::Ready(Err(ActivityFailed {
                    activity_type: self.activity_type.to_owned(),
                    cmd: self.cmd,
                    attempts: attempt,
                    failure,
                }))
            }
            Some(_) => {
                drop(st);
                self.state.borrow_mut().record_misuse(
                    format!(
                        "{} was resolved as something other than an activity",
                        self.cmd
                    ),
                    None,
                );
                Poll::Pending
            }
        }
    }
}

impl<O> Drop for ActivityFuture<O> {
    /// An activity whose result nobody will read any more (the other branch
    /// of a `select` won, the workflow is cancelling) is cancelled: it does
    /// not start if it has not, and a running attempt learns it at its
    /// next heartbeat.
    fn drop(&mut self) {
        if !self.scheduled {
            return;
        }
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return;
        };
        let unresolved = match st.slots.get_mut(&self.cmd.0) {
            Some(slot) => {
                slot.waker = None;
                slot.resolution.is_none()
            }
            None => true,
        };
        if unresolved && !st.tearing_down {
            st.emit(Event::ActivityCancelRequested { cmd: self.cmd }, None);
        }
    }
}

/// A durable timer. Dropping it before it fires cancels it (recorded as
/// `TimerCancelled`), so an abandoned deadline never wakes the workflow.
#[must_use = "futures do nothing unless awaited"]
pub struct TimerFuture {
    pub(crate) state: SharedState,
    pub(crate) cmd: CommandSeq,
    pub(crate) fired: bool,
}

impl TimerFuture {
    pub(crate) fn start(state: SharedState, duration: Duration, callsite: Callsite) -> Self {
        let cmd = {
            let mut st = state.borrow_mut();
            let cmd = st.next_cmd();
            let fire_at: Timestamp = st.now.saturating_add(duration);
            st.slots.entry(cmd.0).or_default();
            st.emit(
                Event::TimerStarted {
                    cmd,
                    fire_at,
                    callsite: callsite.clone(),
                },
                Some(callsite),
            );
            cmd
        };
        TimerFuture {
            state,
            cmd,
            fired: false,
        }
    }
}

impl Future for TimerFuture {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.borrow_mut();
        let slot = st.slots.entry(self.cmd.0).or_default();
        match slot.resolution {
            Some(Resolution::TimerFired) => {
                slot.waker = None;
                drop(st);
                self.fired = true;
                Poll::Ready(())
            }
            Some(_) => {
                drop(st);
                let cmd = self.cmd;
                self.state
                    .borrow_mut()
                    .record_misuse(format!("{cmd} was resolved as an activity"), None);
                Poll::Pending
            }
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for TimerFuture {
    fn drop(&mut self) {
        if self.fired {
            return;
        }
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return;
        };
        if st.tearing_down {
            return;
        }
        let fired_unseen = matches!(
            st.slots
                .get(&self.cmd.0)
                .and_then(|s| s.resolution.as_ref()),
            Some(Resolution::TimerFired)
        );
        if let Some(slot) = st.slots.get_mut(&self.cmd.0) {
            slot.waker = None;
        }
        if !fired_unseen {
            st.emit(Event::TimerCancelled { cmd: self.cmd }, None);
        }
    }
}

/// Waits for the next signal of type `S`.
#[must_use = "futures do nothing unless awaited"]
pub struct SignalFuture<S: Signal> {
    pub(crate) state: SharedState,
    /// Whether this future is counted in `RunState::awaited_signals`: from
    /// its first pending poll until it resolves or is dropped.
    pub(crate) waiting: bool,
    pub(crate) _marker: PhantomData<fn() -> S>,
}

impl<S: Signal> Unpin for SignalFuture<S> {}

impl<S: Signal> Future for SignalFuture<S> {
    type Output = Result<S, WorkflowError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let state = self.state.clone();
        let mut st = state.borrow_mut();
        match st.take_signal(S::NAME) {
            Some(p) => {
                if std::mem::take(&mut self.waiting) {
                    st.await_signal(S::NAME, false);
                }
                Poll::Ready(
                    payload::decode(&format!("signal {}", S::NAME), &p)
                        .map_err(WorkflowError::from),
                )
            }
            None => {
                if !st.signal_wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    st.signal_wakers.push(cx.waker().clone());
                }
                if !std::mem::replace(&mut self.waiting, true) {
                    st.await_signal(S::NAME, true);
                }
                Poll::Pending
            }
        }
    }
}

impl<S: Signal> Drop for SignalFuture<S> {
    fn drop(&mut self) {
        if self.waiting {
            if let Ok(mut st) = self.state.try_borrow_mut() {
                st.await_signal(S::NAME, false);
            }
        }
    }
}

/// Returned by [`WorkflowContext::continue_as_new`](crate::WorkflowContext::continue_as_new):
/// never resolves; the run ends at this point and a new one starts.
#[must_use = "continue-as-new happens when this is awaited"]
pub struct ContinueAsNew {
    pub(crate) _private: (),
}

impl Future for ContinueAsNew {
    type Output = std::convert::Infallible;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Pending
    }
}

/// Resolves with the reason once cancellation of the workflow is requested.
#[must_use = "futures do nothing unless awaited"]
pub struct Cancelled {
    pub(crate) state: SharedState,
}

impl Future for Cancelled {
    type Output = String;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<String> {
        let mut st = self.state.borrow_mut();
        if let Some(reason) = &st.cancel_requested {
            return Poll::Ready(reason.clone());
        }
        if !st.cancel_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            st.cancel_wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
