//! The pure replay core: history in, commands out. No I/O, no wall clock,
//! no threads; the worker feeds it events and commits what it returns.
//!
//! A [`WorkflowMachine`] owns one run's workflow future. [`WorkflowMachine::replay`]
//! re-executes recorded activations and checks that the code produces
//! exactly the recorded commands; [`WorkflowMachine::activate`] runs one new
//! activation and returns the events to append. Both apply an
//! activation's whole inbound batch before polling, and poll until nothing
//! is woken, so `select` over two results that both arrived picks the same
//! winner on every replay.
//!
//! ```text
//! seq 1  WorkflowStarted{type, input, seed, start_time}
//!        ActivationStarted{time}            <- activation 1
//!        ActivityScheduled{cmd 1, ...}         (commands it produced)
//!        ActivationStarted{time}            <- activation 2
//!        ActivityCompleted{cmd 1, ...}         (inbound batch)
//!        WorkflowCompleted{result}             (commands it produced)
//! ```

mod nondeterminism;
pub(crate) mod state;
mod wake;

pub use nondeterminism::{CommandSummary, DivergenceKind, NondeterminismError};

use crate::context::WorkflowContext;
use crate::error::WorkflowError;
use crate::payload;
use crate::workflow::Workflow;
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use refrain_history::{
    Event, EventSeq, Failure, FailureCause, Payload, RunId, Timestamp, UpdateRejection, WorkflowId,
    HISTORY_LIMIT_KIND,
};
use state::{RunState, SharedState};
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use wake::WakeFlag;

/// Polls allowed in one activation before the workflow is judged to be
/// spinning (waking itself forever).
const MAX_POLLS_PER_ACTIVATION: usize = 100_000;

/// A workflow type with its input and output erased to payloads, so a
/// worker can hold many in one registry.
pub trait ErasedWorkflow: Send + Sync + 'static {
    /// The registered type name.
    fn name(&self) -> &'static str;
    /// Creates the run's future. Nothing runs until it is polled.
    fn instantiate(
        &self,
        ctx: WorkflowContext,
        input: Payload,
    ) -> LocalBoxFuture<'static, Result<Payload, Failure>>;
}

/// The [`ErasedWorkflow`] of a [`Workflow`] type.
pub struct WorkflowType<W>(PhantomData<fn() -> W>);

impl<W> WorkflowType<W> {
    /// The erased form of `W`.
    pub fn new() -> Self {
        WorkflowType(PhantomData)
    }
}

impl<W> Default for WorkflowType<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W: Workflow> ErasedWorkflow for WorkflowType<W> {
    fn name(&self) -> &'static str {
        W::NAME
    }

    fn instantiate(
        &self,
        ctx: WorkflowContext,
        input: Payload,
    ) -> LocalBoxFuture<'static, Result<Payload, Failure>> {
        async move {
            let input: W::Input = payload::decode("workflow input", &input)
                .map_err(|e| WorkflowError::from(e).into_failure())?;
            let output = W::run(ctx, input)
                .await
                .map_err(WorkflowError::into_failure)?;
            payload::encode("workflow result", &output)
                .map_err(|e| WorkflowError::from(e).into_failure())
        }
        .boxed_local()
    }
}

/// Why an activation produced nothing to commit.
#[derive(Debug)]
pub enum ActivationError {
    /// The code diverged from its history.
    Nondeterminism(Box<NondeterminismError>),
    /// Workflow code panicked. Nothing is committed; the task is retried.
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The history itself is malformed (not a Refrain history, or
    /// truncated in the middle of an activation).
    InvalidHistory {
        /// Event position.
        position: u64,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivationError::Nondeterminism(e) => fmt::Display::fmt(e, f),
            ActivationError::Panicked { message } => write!(f, "workflow panicked: {message}"),
            ActivationError::InvalidHistory { position, reason } => {
                write!(f, "invalid history at position {position}: {reason}")
            }
        }
    }
}

impl std::error::Error for ActivationError {}

/// An accepted update whose handler has not returned yet.
struct RunningUpdate {
    update_id: String,
    future: LocalBoxFuture<'static, Result<Payload, Failure>>,
}

/// The update requests an activation deals with after applying its
/// inbound batch.
enum UpdatePhase {
    /// Live: requests from the inbox, each validated now.
    Live(Vec<Event>),
    /// Replay: the updates history says were accepted, in order.
    Replay(Vec<(String, String, Payload)>),
}

/// How a read-only callback (query handler, update validator) broke the
/// rule.
enum ReadOnlyBroken {
    Panicked(String),
    IssuedCommand,
}

/// One run's workflow instance and the state its futures share.
pub struct WorkflowMachine {
    state: SharedState,
    future: Option<LocalBoxFuture<'static, Result<Payload, Failure>>>,
    /// Handlers of accepted updates still running, in acceptance order
    /// (which is also the order they are polled in).
    updates: Vec<RunningUpdate>,
    /// Requests the last live activation refused.
    rejected_updates: Vec<UpdateRejection>,
    wake: Arc<WakeFlag>,
    last_seq: u64,
    activations: u64,
    /// History position of the `ActivationStarted` of the activation being
    /// run, for reports.
    activation_seq: u64,
}

impl WorkflowMachine {
    /// Creates the instance of a run from its first event.
    ///
    /// # Errors
    /// `InvalidHistory` if `started` is not `WorkflowStarted`, or names a
    /// different workflow type than `workflow`.
    pub fn new(
        workflow: &dyn ErasedWorkflow,
        run: RunId,
        started: &Event,
    ) -> Result<Self, ActivationError> {
        let Event::WorkflowStarted {
            workflow_type,
            workflow_id,
            input,
            seed,
            start_time,
            ..
        } = started
        else {
            return Err(ActivationError::InvalidHistory {
                position: 1,
                reason: format!("first event is {}, not WorkflowStarted", started.kind()),
            });
        };
        if workflow_type != workflow.name() {
            return Err(ActivationError::InvalidHistory {
                position: 1,
                reason: format!(
                    "history is of workflow type {workflow_type:?}, code is {:?}",
                    workflow.name()
                ),
            });
        }
        let state = Rc::new(RefCell::new(RunState::new(
            workflow_id.clone(),
            workflow_type.clone(),
            run,
            *seed,
            *start_time,
        )));
        state.borrow_mut().history_bytes = stored_size(started);
        let ctx = WorkflowContext::new(state.clone());
        let future = catch_unwind(AssertUnwindSafe(|| {
            workflow.instantiate(ctx, input.clone())
        }))
        .map_err(|p| panic_error(p.as_ref()))?;
        Ok(WorkflowMachine {
            state,
            future: Some(future),
            updates: Vec::new(),
            rejected_updates: Vec::new(),
            wake: Arc::new(WakeFlag::default()),
            last_seq: 1,
            activations: 0,
            activation_seq: 2,
        })
    }

    /// Sequence number of the last event this instance has applied.
    pub fn last_seq(&self) -> EventSeq {
        EventSeq(self.last_seq)
    }

    /// Whether the workflow has returned.
    pub fn is_closed(&self) -> bool {
        self.future.is_none()
    }

    /// The run's workflow id.
    pub fn workflow_id(&self) -> WorkflowId {
        self.state.borrow().workflow_id.clone()
    }

    /// Re-executes recorded events that follow `last_seq` (usually the whole
    /// history after `WorkflowStarted`), checking every command against the
    /// record. Runs no activity and writes nothing.
    ///
    /// # Errors
    /// `Nondeterminism` at the first divergence; `Panicked`;
    /// `InvalidHistory` for events outside any activation.
    pub fn replay(&mut self, all: &[Event]) -> Result<(), ActivationError> {
        // A termination is written by the store after whatever activation
        // came last, and a close over the history or payload limit by the
        // worker as an activation of its own, not by the code: nothing to
        // check, the run simply ends there.
        let closed_by_engine = match all {
            [.., Event::WorkflowTerminated { .. }] => 1,
            [.., Event::ActivationStarted { .. }, Event::WorkflowFailed { failure }]
                if failure.kind == HISTORY_LIMIT_KIND
                    || failure.kind == crate::error::PAYLOAD_TOO_LARGE_KIND =>
            {
                2
            }
            _ => 0,
        };
        let terminated = closed_by_engine > 0;
        let events = &all[..all.len() - closed_by_engine];
        let mut i = 0;
        while i < events.len() {
            let first_seq = self.last_seq + 1 + i as u64;
            let Event::ActivationStarted { time } = &events[i] else {
                return Err(ActivationError::InvalidHistory {
                    position: first_seq,
                    reason: format!("expected ActivationStarted, found {}", events[i].kind()),
                });
            };
            let end = events[i + 1..]
                .iter()
                .position(|e| matches!(e, Event::ActivationStarted { .. }))
                .map_or(events.len(), |p| i + 1 + p);
            let group = &events[i + 1..end];
            self.replay_activation(*time, first_seq, group)?;
            self.count_applied(&events[i..end]);
            i = end;
        }
        if terminated {
            self.count_applied(&all[all.len() - closed_by_engine..]);
            self.state.borrow_mut().tearing_down = true;
            self.future = None;
        }
        self.last_seq += all.len() as u64;
        Ok(())
    }

    fn replay_activation(
        &mut self,
        time: Timestamp,
        first_seq: u64,
        group: &[Event],
    ) -> Result<(), ActivationError> {
        self.activations += 1;
        self.activation_seq = first_seq;
        let split = group
            .iter()
            .position(|e| !e.is_inbound())
            .unwrap_or(group.len());
        let (inbound, commands) = group.split_at(split);
        if let Some(bad) = commands.iter().position(|e| !e.is_command()) {
            return Err(ActivationError::InvalidHistory {
                position: first_seq + 1 + (split + bad) as u64,
                reason: format!(
                    "{} after the commands of an activation",
                    commands[bad].kind()
                ),
            });
        }
        {
            let mut st = self.state.borrow_mut();
            st.replaying = true;
            st.now = time;
            st.recorded_side_effects = commands
                .iter()
                .filter_map(|e| match e {
                    Event::SideEffectRecorded { cmd, value, .. } => Some((cmd.0, value.clone())),
                    _ => None,
                })
                .collect();
            st.recorded_patches = commands
                .iter()
                .filter_map(|e| match e {
                    Event::PatchMarker { patch_id, .. } => Some(patch_id.clone()),
                    _ => None,
                })
                .collect();
        }
        let accepted = commands
            .iter()
            .filter_map(|e| match e {
                Event::UpdateAccepted {
                    update_id,
                    name,
                    input,
                } => Some((update_id.clone(), name.clone(), input.clone())),
                _ => None,
            })
            .collect();
        let produced = self.run_activation(inbound, UpdatePhase::Replay(accepted))?;
        {
            let mut st = self.state.borrow_mut();
            st.recorded_side_effects.clear();
            st.recorded_patches.clear();
        }
        let commands_seq = first_seq + 1 + split as u64;
        self.compare(commands_seq, commands, &produced)
    }

    /// Runs one new activation at `now` with the inbound batch `inbound`
    /// and returns the events to append: `ActivationStarted`, the batch,
    /// then the commands produced.
    ///
    /// Update requests in `inbound` (`UpdateRequested`) are not part of
    /// the batch: once the batch is applied and the workflow blocks, each
    /// is validated in turn; an accepted one becomes an `UpdateAccepted`
    /// command and its handler runs, a refused one is left for
    /// [`take_rejected_updates`](Self::take_rejected_updates). Requests
    /// that arrive when the workflow has already returned stay unanswered.
    /// An activation that only refused requests returns no events at all
    /// (commit it anyway: it consumes the inbox and answers the callers).
    ///
    /// # Errors
    /// `Nondeterminism` if the code did something unreplayable; `Panicked`.
    /// After an error the instance must be discarded.
    pub fn activate(
        &mut self,
        now: Timestamp,
        inbound: Vec<Event>,
    ) -> Result<Vec<Event>, ActivationError> {
        self.activations += 1;
        self.activation_seq = self.last_seq + 1;
        let time = {
            let mut st = self.state.borrow_mut();
            st.replaying = false;
            // ctx.now() never goes backwards, even if the wall clock does.
            st.now = st.now.max(now);
            st.now
        };
        // Most activations carry no update request: keep their batch as is.
        let (requests, inbound): (Vec<Event>, Vec<Event>) =
            if inbound.iter().any(Event::is_inbox_only) {
                inbound.into_iter().partition(Event::is_inbox_only)
            } else {
                (Vec::new(), inbound)
            };
        let only_requests = !requests.is_empty() && inbound.is_empty();
        self.rejected_updates.clear();
        let produced = self.run_activation(&inbound, UpdatePhase::Live(requests))?;
        if only_requests && produced.is_empty() {
            // Every request was refused and nothing else happened: the
            // history must not show that an activation ran at all.
            self.activations -= 1;
            return Ok(Vec::new());
        }
        let mut events = Vec::with_capacity(1 + inbound.len() + produced.len());
        events.push(Event::ActivationStarted { time });
        events.extend(inbound);
        events.extend(produced.into_iter().map(|p| p.event));
        self.last_seq += events.len() as u64;
        self.count_applied(&events);
        Ok(events)
    }

    /// The names of the signals the workflow waits for now (sorted, each
    /// once): what a commit records as
    /// [`ActivationCommit::awaited_signals`](refrain_history::ActivationCommit::awaited_signals).
    /// Empty once the workflow has returned.
    pub fn awaited_signals(&self) -> Vec<String> {
        if self.is_closed() {
            return Vec::new();
        }
        self.state
            .borrow()
            .awaited_signals
            .keys()
            .cloned()
            .collect()
    }

    /// The update requests the last [`activate`](Self::activate) refused,
    /// for the commit to answer without recording them.
    pub fn take_rejected_updates(&mut self) -> Vec<UpdateRejection> {
        std::mem::take(&mut self.rejected_updates)
    }

    /// Applies the inbound batch, then polls until nothing wakes; then
    /// takes each update of `updates` in turn (accepting it starts its
    /// handler, and polls again). Returns the commands produced.
    fn run_activation(
        &mut self,
        inbound: &[Event],
        updates: UpdatePhase,
    ) -> Result<Vec<state::Produced>, ActivationError> {
        if self.wake.take_foreign() {
            return Err(self.misuse_error(
                "the workflow was woken from outside Refrain (another thread, a tokio timer or channel), which replay cannot reproduce".into(),
                None,
            ));
        }
        self.wake.enter();
        {
            let mut st = self.state.borrow_mut();
            for e in inbound {
                st.apply_inbound(e);
            }
        }
        self.wake.leave();
        self.poll_until_blocked()?;
        match updates {
            UpdatePhase::Live(requests) => {
                for request in requests {
                    if !self.can_take_updates() {
                        break;
                    }
                    let Event::UpdateRequested {
                        update_id,
                        name,
                        input,
                    } = request
                    else {
                        continue;
                    };
                    match self.validate_update(&name, &input) {
                        Ok(()) => {
                            self.accept_update(update_id, name, input)?;
                            self.poll_until_blocked()?;
                        }
                        Err(reason) => self
                            .rejected_updates
                            .push(UpdateRejection { update_id, reason }),
                    }
                }
            }
            UpdatePhase::Replay(accepted) => {
                for (update_id, name, input) in accepted {
                    if !self.can_take_updates() {
                        break;
                    }
                    self.accept_update(update_id, name, input)?;
                    self.poll_until_blocked()?;
                }
            }
        }
        let mut st = self.state.borrow_mut();
        if let Some(m) = st.misuse.take() {
            drop(st);
            return Err(self.misuse_error(m.message, m.callsite));
        }
        Ok(std::mem::take(&mut st.produced))
    }

    fn poll_until_blocked(&mut self) -> Result<(), ActivationError> {
        let waker = self.wake.waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..MAX_POLLS_PER_ACTIVATION {
            let Some(fut) = self.future.as_mut() else {
                return Ok(());
            };
            self.wake.enter();
            let polled = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
            let handlers = match polled {
                Ok(Poll::Pending) => self.poll_updates(&mut cx),
                _ => Ok(false),
            };
            let woken = self.wake.leave();
            let woken = match handlers {
                Ok(finished) => woken || finished,
                Err(p) => return Err(self.classify_panic(p.as_ref())),
            };
            match polled {
                Err(p) => return Err(self.classify_panic(p.as_ref())),
                Ok(Poll::Ready(outcome)) => {
                    self.future = None;
                    // Handlers still running end with the run; dropping
                    // them cancels what they wait on, before the final
                    // command.
                    self.updates.clear();
                    let event = match outcome {
                        Ok(result) => Event::WorkflowCompleted { result },
                        Err(failure) if failure.cause == FailureCause::Cancelled => {
                            Event::WorkflowCancelled {
                                reason: failure.message,
                            }
                        }
                        Err(failure) => Event::WorkflowFailed { failure },
                    };
                    self.state.borrow_mut().emit(event, None);
                    return Ok(());
                }
                Ok(Poll::Pending) => {
                    if self.state.borrow().misuse.is_some() {
                        return Ok(());
                    }
                    let next_input = self.state.borrow_mut().continue_as_new.take();
                    if let Some(input) = next_input {
                        self.close_as_new(input);
                        return Ok(());
                    }
                    let unhandled_cancel = {
                        let st = self.state.borrow();
                        st.cancel_requested.clone().filter(|_| !st.cancel_observed)
                    };
                    if let Some(reason) = unhandled_cancel {
                        // Dropping the workflow cancels what it waits on:
                        // each pending timer and activity emits its
                        // cancellation, in drop order, which replay repeats.
                        self.future = None;
                        self.updates.clear();
                        self.state
                            .borrow_mut()
                            .emit(Event::WorkflowCancelled { reason }, None);
                        return Ok(());
                    }
                    if !woken {
                        if !self.state.borrow().sdk_waiting() {
                            return Err(self.misuse_error(
                                "the workflow is waiting on a future that Refrain does not control (a tokio timer, channel, socket or task), which replay cannot reproduce".into(),
                                None,
                            ));
                        }
                        return Ok(());
                    }
                }
            }
        }
        Err(self.misuse_error(
            format!("the workflow woke itself {MAX_POLLS_PER_ACTIVATION} times in one activation without blocking on Refrain"),
            None,
        ))
    }

    /// Ends the run with `WorkflowContinuedAsNew`, carrying the signals its
    /// code never took.
    fn close_as_new(&mut self, input: Payload) {
        {
            let mut st = self.state.borrow_mut();
            // Futures dropped with the run emit nothing: it is over.
            st.tearing_down = true;
        }
        self.future = None;
        self.updates.clear();
        let mut st = self.state.borrow_mut();
        let seed = rand::RngCore::next_u64(&mut st.rng);
        let carried_signals = st.drain_signals();
        st.emit(
            Event::WorkflowContinuedAsNew {
                input,
                seed,
                carried_signals,
            },
            None,
        );
    }

    /// Polls every running update handler once, in acceptance order,
    /// recording the result of each that returns. Returns whether any did
    /// (its result may unblock the workflow), or the payload of a panic.
    fn poll_updates(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Result<bool, Box<dyn std::any::Any + Send>> {
        let mut finished = false;
        let mut i = 0;
        while i < self.updates.len() {
            let future = &mut self.updates[i].future;
            match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)))? {
                Poll::Pending => i += 1,
                Poll::Ready(outcome) => {
                    let update_id = self.updates.remove(i).update_id;
                    let event = match outcome {
                        Ok(result) => Event::UpdateCompleted { update_id, result },
                        Err(failure) => Event::UpdateFailed { update_id, failure },
                    };
                    self.state.borrow_mut().emit(event, None);
                    finished = true;
                }
            }
        }
        Ok(finished)
    }

    /// Whether the workflow is still there to take an update: running,
    /// and not stopped by misuse.
    fn can_take_updates(&self) -> bool {
        self.future.is_some() && self.state.borrow().misuse.is_none()
    }

    /// Asks the validator of update `name` about `input`. A missing
    /// handler, a panic, or a validator that issued a command refuses it.
    fn validate_update(&self, name: &str, input: &Payload) -> Result<(), String> {
        let validate = {
            let st = self.state.borrow();
            let Some(h) = st.updates.get(name) else {
                let mut known: Vec<&str> = st.updates.keys().map(String::as_str).collect();
                known.sort_unstable();
                return Err(if known.is_empty() {
                    format!("the workflow accepts no updates, so not {name:?}")
                } else {
                    format!(
                        "the workflow does not accept update {name:?} (it accepts: {})",
                        known.join(", ")
                    )
                });
            };
            h.validate.clone()
        };
        match self.without_commands(|| validate(input)) {
            Ok(verdict) => verdict,
            Err(ReadOnlyBroken::Panicked(m)) => Err(format!("the validator panicked: {m}")),
            Err(ReadOnlyBroken::IssuedCommand) => {
                Err("update validators must not issue commands (activities, timers, ...)".into())
            }
        }
    }

    /// Runs `f`, a callback that may read workflow state but must not
    /// change the history (a query handler, an update validator). A panic
    /// is caught; a command it issued is undone and reported.
    fn without_commands<T>(&self, f: impl FnOnce() -> T) -> Result<T, ReadOnlyBroken> {
        let (produced, next_cmd) = {
            let st = self.state.borrow();
            (st.produced.len(), st.next_cmd)
        };
        let out = catch_unwind(AssertUnwindSafe(f))
            .map_err(|p| ReadOnlyBroken::Panicked(panic_message(p.as_ref())));
        let mut st = self.state.borrow_mut();
        if st.produced.len() != produced || st.next_cmd != next_cmd {
            st.produced.truncate(produced);
            st.next_cmd = next_cmd;
            return Err(ReadOnlyBroken::IssuedCommand);
        }
        out
    }

    /// Records update `update_id` as accepted and starts its handler.
    fn accept_update(
        &mut self,
        update_id: String,
        name: String,
        input: Payload,
    ) -> Result<(), ActivationError> {
        let handler = self
            .state
            .borrow()
            .updates
            .get(&name)
            .map(|h| h.run.clone());
        let Some(run) = handler else {
            // Only replay gets here: live requests were validated.
            return Err(self.misuse_error(
                format!("history accepted update {name:?} ({update_id}), but the workflow no longer registers a handler for it by this point"),
                None,
            ));
        };
        self.state.borrow_mut().emit(
            Event::UpdateAccepted {
                update_id: update_id.clone(),
                name,
                input: input.clone(),
            },
            None,
        );
        let future =
            catch_unwind(AssertUnwindSafe(|| run(input))).map_err(|p| panic_error(p.as_ref()))?;
        self.updates.push(RunningUpdate { update_id, future });
        Ok(())
    }

    /// Counts `events`, just replayed or produced, into what
    /// `ctx.history_length()` and `ctx.history_size_bytes()` report from the
    /// next activation on. Counting replayed activations exactly like live
    /// ones is what lets code that branches on them (as on
    /// `ctx.continue_as_new_suggested()`) replay to the same commands.
    fn count_applied(&self, events: &[Event]) {
        let mut st = self.state.borrow_mut();
        st.history_len += events.len() as u64;
        st.history_bytes += events.iter().map(stored_size).sum::<u64>();
    }

    /// Answers query `name` with the handler the workflow registered, from
    /// the instance's current state. Writes nothing: a handler that tries
    /// to issue a command is refused and its command discarded.
    ///
    /// # Errors
    /// `UnknownQuery`, `Payload`, or `HandlerFailed` (panic, command).
    pub fn query(&self, name: &str, args: &Payload) -> Result<Payload, crate::query::QueryError> {
        use crate::query::QueryError;
        let handler = {
            let st = self.state.borrow();
            let Some(h) = st.queries.get(name).cloned() else {
                let mut known: Vec<String> = st.queries.keys().cloned().collect();
                known.sort();
                return Err(QueryError::UnknownQuery {
                    name: name.to_owned(),
                    known,
                });
            };
            h
        };
        match self.without_commands(|| handler(args)) {
            Ok(answer) => answer,
            Err(ReadOnlyBroken::Panicked(m)) => Err(QueryError::HandlerFailed(m)),
            Err(ReadOnlyBroken::IssuedCommand) => Err(QueryError::HandlerFailed(
                "query handlers must not issue commands (activities, timers, ...)".into(),
            )),
        }
    }

    /// Tells the instance how large its history is in the store and the
    /// store's hard limits, for `ctx.continue_as_new_suggested()`.
    pub fn set_history_info(&mut self, bytes: u64, max_events: u64, max_bytes: u64) {
        let mut st = self.state.borrow_mut();
        st.history_bytes = bytes;
        st.history_limits = (max_events, max_bytes);
    }

    /// tokio's timers, spawn and I/O panic outside a tokio runtime, which is
    /// exactly where workflow code runs: report them as nondeterminism.
    fn classify_panic(&self, payload: &(dyn std::any::Any + Send)) -> ActivationError {
        let message = panic_message(payload);
        if message.contains("Tokio 1.x runtime") || message.contains("no reactor running") {
            return self.misuse_error(
                format!("workflow code used the tokio runtime (tokio::time::sleep, tokio::spawn or tokio I/O), which replay cannot reproduce ({message})"),
                None,
            );
        }
        ActivationError::Panicked { message }
    }

    fn misuse_error(
        &self,
        message: String,
        callsite: Option<refrain_history::Callsite>,
    ) -> ActivationError {
        let st = self.state.borrow();
        ActivationError::Nondeterminism(Box::new(NondeterminismError {
            workflow_type: st.workflow_type.clone(),
            workflow_id: st.workflow_id.clone(),
            run: st.run,
            activation: self.activations,
            position: self.activation_seq,
            kind: DivergenceKind::NonDeterministicCall(message),
            expected: None,
            produced: callsite.map(|c| CommandSummary {
                kind: "call",
                name: None,
                input_digest: None,
                cmd: None,
                callsite: Some(c),
            }),
            later_differences: 0,
        }))
    }

    /// Compares the commands one replayed activation produced with those
    /// history recorded for it, position by position: kind, name and
    /// command number (see [`CommandSummary::matches`]).
    ///
    /// Patch markers are left out on both sides: whether a patch applies is
    /// decided from the record itself, and a retired patch may leave
    /// markers in old histories that the code no longer produces.
    fn compare(
        &self,
        commands_seq: u64,
        recorded: &[Event],
        produced: &[state::Produced],
    ) -> Result<(), ActivationError> {
        let not_marker = |e: &Event| !matches!(e, Event::PatchMarker { .. });
        let recorded: Vec<(u64, &Event)> = (commands_seq..)
            .zip(recorded)
            .filter(|(_, e)| not_marker(e))
            .collect();
        let produced: Vec<&state::Produced> =
            produced.iter().filter(|p| not_marker(&p.event)).collect();
        let n = recorded.len().max(produced.len());
        let summary = |i: usize| -> (Option<CommandSummary>, Option<CommandSummary>) {
            (
                recorded.get(i).map(|(_, e)| CommandSummary::of(e, None)),
                produced
                    .get(i)
                    .map(|p| CommandSummary::of(&p.event, p.callsite.as_ref())),
            )
        };
        let differs = |i: usize| match summary(i) {
            (Some(e), Some(p)) => !e.matches(&p),
            _ => true,
        };
        let Some(first) = (0..n).find(|&i| differs(i)) else {
            return Ok(());
        };
        let (expected, produced_cmd) = summary(first);
        let kind = match (&expected, &produced_cmd) {
            (Some(_), Some(_)) => DivergenceKind::Mismatch,
            (Some(_), None) => DivergenceKind::Missing,
            _ => DivergenceKind::Unexpected,
        };
        let st = self.state.borrow();
        Err(ActivationError::Nondeterminism(Box::new(
            NondeterminismError {
                workflow_type: st.workflow_type.clone(),
                workflow_id: st.workflow_id.clone(),
                run: st.run,
                activation: self.activations,
                position: recorded
                    .get(first)
                    .map_or(commands_seq + recorded.len() as u64, |(seq, _)| *seq),
                kind,
                expected,
                produced: produced_cmd,
                later_differences: (first + 1..n).filter(|&i| differs(i)).count(),
            },
        )))
    }
}

impl Drop for WorkflowMachine {
    fn drop(&mut self) {
        // Futures dropped with an evicted instance must not emit
        // cancellations into a state nobody will commit.
        if let Ok(mut st) = self.state.try_borrow_mut() {
            st.tearing_down = true;
        }
        self.future = None;
    }
}

/// The size of `event` as the store keeps it (envelope included), which is
/// what `RunRecord::history_bytes` sums.
fn stored_size(event: &Event) -> u64 {
    refrain_history::codec::encode(event).map_or(0, |bytes| bytes.len() as u64)
}

/// The message of a caught panic (`panic!` with a string or a formatted
/// message), for reports; other payloads are named as such.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

fn panic_error(payload: &(dyn std::any::Any + Send)) -> ActivationError {
    ActivationError::Panicked {
        message: panic_message(payload),
    }
}
