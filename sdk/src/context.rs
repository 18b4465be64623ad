//! [`WorkflowContext`]: everything a workflow may do, each of it replayable.

use crate::activity::Activity;
use crate::combinators::{select, Either};
use crate::commands::{ActivityCall, Cancelled, ContinueAsNew, SignalFuture, TimerFuture};
use crate::error::WorkflowError;
use crate::payload;
use crate::replay::state::SharedState;
use crate::workflow::Signal;
use rand::RngCore;
use refrain_history::{Callsite, Event, RunId, WorkflowId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::panic::Location;
use std::time::{Duration, SystemTime};

/// The handle through which a workflow talks to the world.
///
/// # Determinism rules
///
/// A workflow is re-executed from its history after every crash, restart
/// and cache eviction, and must make the same decisions every time. Use
/// the replay-safe replacement for each of these:
///
/// | not replay-safe | use instead |
/// |---|---|
/// | `SystemTime::now()`, `Instant::now()` | [`ctx.now()`](Self::now): the activation's recorded time |
/// | `tokio::time::sleep`, `std::thread::sleep` | [`ctx.sleep(d)`](Self::sleep): a durable timer |
/// | `rand::random`, `StdRng`, `Uuid::new_v4` | [`ctx.random()`](Self::random), [`ctx.uuid()`](Self::uuid) |
/// | reading files, env vars, HTTP, databases | an [`Activity`], or [`ctx.side_effect`](Self::side_effect) for a cheap local value |
/// | `tokio::spawn`, threads, channels to other tasks | [`join`](crate::join), [`join_all`](crate::join_all), [`select`](crate::select) |
/// | iterating a `HashMap`/`HashSet` to decide order | `BTreeMap`/`BTreeSet`, or sort first |
///
/// Breaking a rule is caught where it can be: tokio timers and foreign
/// wakes stop the activation with a [`NondeterminismError`](crate::NondeterminismError),
/// as does replaying changed code against an old history.
#[derive(Clone)]
pub struct WorkflowContext {
    state: SharedState,
}

impl WorkflowContext {
    pub(crate) fn new(state: SharedState) -> Self {
        WorkflowContext { state }
    }

    pub(crate) fn state(&self) -> &SharedState {
        &self.state
    }

    /// The caller-chosen workflow id.
    pub fn workflow_id(&self) -> WorkflowId {
        self.state.borrow().workflow_id.clone()
    }

    /// The run number.
    pub fn run_id(&self) -> RunId {
        self.state.borrow().run
    }

    /// The recorded time of the current activation. Never goes backwards.
    pub fn now(&self) -> SystemTime {
        self.state.borrow().now.to_system_time()
    }

    /// Whether the workflow is re-executing recorded history (rather than
    /// making new progress). Use it to avoid repeating log lines.
    pub fn is_replaying(&self) -> bool {
        self.state.borrow().replaying
    }

    /// Events in the run's history so far.
    pub fn history_length(&self) -> u64 {
        self.state.borrow().history_len
    }

    /// Encoded size of the run's history so far, in bytes.
    pub fn history_size_bytes(&self) -> u64 {
        self.state.borrow().history_bytes
    }

    /// Whether the history has grown enough (a fifth of the store's hard
    /// limit on events or bytes) that the workflow should
    /// [`continue_as_new`](Self::continue_as_new) soon. Past the hard limit
    /// the store refuses further progress and the run fails.
    pub fn continue_as_new_suggested(&self) -> bool {
        let st = self.state.borrow();
        let (max_events, max_bytes) = st.history_limits;
        st.history_len >= max_events / 5 || st.history_bytes >= max_bytes / 5
    }

    /// Ends this run and starts a new run of the same workflow id with
    /// `input` and an empty history, so that long-lived workflows (a
    /// subscription, an entity) never hit the history limits. Signals that
    /// arrived but were not taken are delivered to the new run. Await it:
    ///
    /// ```
    /// use refrain::{Workflow, WorkflowContext, WorkflowError};
    /// use std::time::Duration;
    ///
    /// /// Bills a subscription every month, for as long as it lives.
    /// struct Subscription;
    /// impl Workflow for Subscription {
    ///     const NAME: &'static str = "subscription";
    ///     type Input = u32; // months billed so far
    ///     type Output = ();
    ///     async fn run(ctx: WorkflowContext, mut months: u32) -> Result<(), WorkflowError> {
    ///         loop {
    ///             ctx.sleep(Duration::from_secs(30 * 24 * 3600)).await;
    ///             months += 1;
    ///             if ctx.continue_as_new_suggested() {
    ///                 match ctx.continue_as_new::<Self>(months).await {}
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn continue_as_new<W: crate::Workflow>(&self, input: W::Input) -> ContinueAsNew {
        match payload::encode("continue-as-new input", &input) {
            Ok(p) => self.state.borrow_mut().continue_as_new = Some(p),
            Err(e) => self
                .state
                .borrow_mut()
                .record_misuse(format!("cannot continue as new: {e}"), None),
        }
        ContinueAsNew { _private: () }
    }

    /// Resolves with the reason when someone asks this workflow to cancel
    /// ([`Client::cancel`](crate::Client::cancel)).
    ///
    /// A workflow that never calls this (nor
    /// [`is_cancel_requested`](Self::is_cancel_requested) or
    /// [`or_cancelled`](Self::or_cancelled)) is cancelled for it: its
    /// pending activities and timers are cancelled and the run ends as
    /// `Cancelled`. A workflow that does call it decides what cancelling
    /// means; everything it does after seeing the request (compensating
    /// activities, notifications) runs to completion, as in a
    /// non-cancellable scope, until it returns
    /// `Err(WorkflowError::cancelled(reason))`.
    pub fn cancelled(&self) -> Cancelled {
        self.state.borrow_mut().cancel_observed = true;
        Cancelled {
            state: self.state.clone(),
        }
    }

    /// Whether cancellation has been requested (see
    /// [`cancelled`](Self::cancelled)).
    pub fn is_cancel_requested(&self) -> bool {
        let mut st = self.state.borrow_mut();
        st.cancel_observed = true;
        st.cancel_requested.is_some()
    }

    /// Runs `work` unless cancellation is requested first; then `work` is
    /// dropped (its activities are cancelled, reaching running ones at
    /// their next heartbeat, and its timers are cancelled) and the error to
    /// return from the workflow after any cleanup is given back.
    ///
    /// ```
    /// use refrain::{Activity, ActivityContext, ActivityError, Workflow, WorkflowContext,
    ///               WorkflowError};
    /// # macro_rules! activity {
    /// #     ($name:ident, $key:literal, $in:ty => $out:ty) => {
    /// #         struct $name;
    /// #         #[refrain::activity]
    /// #         impl Activity for $name {
    /// #             const NAME: &'static str = $key;
    /// #             type Input = $in;
    /// #             type Output = $out;
    /// #             async fn run(&self, _: ActivityContext, _: $in) -> Result<$out, ActivityError> {
    /// #                 unimplemented!()
    /// #             }
    /// #         }
    /// #     };
    /// # }
    /// # activity!(ReserveStock, "reserve-stock", String => ());
    /// # activity!(Ship, "ship", String => String);
    /// # activity!(ReleaseStock, "release-stock", String => ());
    ///
    /// async fn fulfil(ctx: &WorkflowContext, sku: String) -> Result<String, WorkflowError> {
    ///     ctx.activity::<ReserveStock>(sku.clone()).await?;
    ///     Ok(ctx.activity::<Ship>(sku).await?)
    /// }
    ///
    /// struct Order;
    /// impl Workflow for Order {
    ///     const NAME: &'static str = "order";
    ///     type Input = String;
    ///     type Output = String;
    ///     async fn run(ctx: WorkflowContext, sku: String) -> Result<String, WorkflowError> {
    ///         match ctx.or_cancelled(fulfil(&ctx, sku.clone())).await {
    ///             Ok(done) => done,
    ///             Err(cancelled) => {
    ///                 ctx.activity::<ReleaseStock>(sku).await?; // runs to completion
    ///                 Err(cancelled)
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    pub async fn or_cancelled<F: std::future::IntoFuture>(
        &self,
        work: F,
    ) -> Result<F::Output, WorkflowError> {
        match select(self.cancelled(), work).await {
            Either::Left(reason) => Err(WorkflowError::cancelled(reason)),
            Either::Right(out) => Ok(out),
        }
    }

    /// Whether this run takes the new code path of change `patch_id`.
    ///
    /// Wrap a change to a running workflow's logic in it:
    /// `if ctx.patched("skip-fraud-check") { new } else { old }`. Runs that
    /// recorded commands before the change was deployed replay the old
    /// path (false); new runs, and old runs reaching this point for the
    /// first time after the deploy, take the new path (true) and record a
    /// `PatchMarker` so their replays do too. The decision is taken once
    /// per run and id.
    pub fn patched(&self, patch_id: &str) -> bool {
        self.decide_patch(patch_id, false)
    }

    /// Marks `patch_id` as retired: every run that could take the old path
    /// has finished, and the `if/else` around it has been removed. Both
    /// histories with and without the patch marker replay; once no such
    /// run is left, the call itself can go.
    pub fn deprecate_patch(&self, patch_id: &str) {
        self.decide_patch(patch_id, true);
    }

    fn decide_patch(&self, patch_id: &str, deprecated: bool) -> bool {
        let mut st = self.state.borrow_mut();
        if let Some(&taken) = st.patches.get(patch_id) {
            return taken;
        }
        let taken = deprecated || !st.replaying || st.recorded_patches.contains(patch_id);
        st.patches.insert(patch_id.to_owned(), taken);
        if taken && (!st.replaying || st.recorded_patches.contains(patch_id)) {
            st.emit(
                Event::PatchMarker {
                    patch_id: patch_id.to_owned(),
                    deprecated,
                },
                None,
            );
        }
        taken
    }

    /// Logs `message` at info level with the workflow id and run, once:
    /// not again when the workflow is replayed. Use it instead of
    /// `tracing::info!` in workflow code.
    pub fn log_info(&self, message: impl std::fmt::Display) {
        self.log(tracing::Level::INFO, message);
    }

    /// Like [`log_info`](Self::log_info), at warn level.
    pub fn log_warn(&self, message: impl std::fmt::Display) {
        self.log(tracing::Level::WARN, message);
    }

    fn log(&self, level: tracing::Level, message: impl std::fmt::Display) {
        let st = self.state.borrow();
        if st.replaying {
            return;
        }
        let (id, run) = (&st.workflow_id, st.run.0);
        if level == tracing::Level::WARN {
            tracing::warn!(workflow_id = %id, run, "{message}");
        } else {
            tracing::info!(workflow_id = %id, run, "{message}");
        }
    }

    /// A random number from the run's seeded generator (ChaCha8, seeded
    /// from `WorkflowStarted.seed`): the same sequence on every replay.
    pub fn random(&self) -> u64 {
        self.state.borrow_mut().rng.next_u64()
    }

    /// A random version-4 UUID from the run's seeded generator.
    pub fn uuid(&self) -> String {
        let mut b = [0u8; 16];
        self.state.borrow_mut().rng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Computes a value once and records it; replay returns the recorded
    /// value without calling `f`. For cheap, local, non-deterministic
    /// values (a generated id, a config flag read at that moment). Anything
    /// slow or with effects belongs in an activity.
    ///
    /// # Panics
    /// If `T` cannot be encoded as JSON.
    #[track_caller]
    pub fn side_effect<T, F>(&self, f: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        let callsite = Callsite::from_location(Location::caller());
        let (cmd, recorded) = {
            let mut st = self.state.borrow_mut();
            let cmd = st.next_cmd();
            let recorded = if st.replaying {
                st.recorded_side_effects.get(&cmd.0).cloned()
            } else {
                None
            };
            (cmd, recorded)
        };
        let (value, payload) = match recorded.map(|p| (payload::decode::<T>("side effect", &p), p))
        {
            Some((Ok(v), p)) => (v, p),
            Some((Err(e), _)) => {
                self.state.borrow_mut().record_misuse(
                    format!("recorded side effect does not decode: {e}"),
                    Some(callsite.clone()),
                );
                let v = f();
                let p = payload::encode("side effect", &v).unwrap_or_default();
                (v, p)
            }
            None => {
                let v = f();
                let p = payload::encode("side effect", &v)
                    .unwrap_or_else(|e| panic!("side effect value cannot be recorded: {e}"));
                (v, p)
            }
        };
        self.state.borrow_mut().emit(
            Event::SideEffectRecorded {
                cmd,
                value: payload,
                callsite: callsite.clone(),
            },
            Some(callsite),
        );
        value
    }

    /// Calls activity `A` with `input`: the command is recorded here, in
    /// program order. Chain options before awaiting:
    ///
    /// ```
    /// # use refrain::{Activity, ActivityContext, ActivityError, WorkflowContext, WorkflowError};
    /// use refrain::RetryPolicy;
    /// use std::time::Duration;
    /// # struct ReserveStock;
    /// # #[refrain::activity]
    /// # impl Activity for ReserveStock {
    /// #     const NAME: &'static str = "reserve-stock";
    /// #     type Input = String;
    /// #     type Output = u64;
    /// #     async fn run(&self, _: ActivityContext, _: String) -> Result<u64, ActivityError> {
    /// #         Ok(1)
    /// #     }
    /// # }
    /// # async fn order(ctx: WorkflowContext, order: String) -> Result<u64, WorkflowError> {
    /// let reservation = ctx.activity::<ReserveStock>(order)
    ///     .start_to_close(Duration::from_secs(30))
    ///     .retry(RetryPolicy::exponential().max_attempts(3))
    ///     .await?;
    /// # Ok(reservation) }
    /// ```
    #[track_caller]
    pub fn activity<A: Activity>(&self, input: A::Input) -> ActivityCall<A> {
        ActivityCall::schedule(
            self.state.clone(),
            payload::encode(&format!("{} input", A::NAME), &input),
            Callsite::from_location(Location::caller()),
        )
    }

    /// Starts child workflow `W` under `workflow_id` with `input` and
    /// returns its result when awaited. The child has its own history. If
    /// this workflow closes first, the child is asked to cancel, unless
    /// `.parent_close(..)` says to terminate or abandon it. Dropping the
    /// future unawaited also asks the child to cancel (unless abandoned).
    #[track_caller]
    pub fn child<W: crate::Workflow>(
        &self,
        workflow_id: impl Into<WorkflowId>,
        input: W::Input,
    ) -> crate::child::ChildCall<W> {
        crate::child::ChildCall::start(
            self.state.clone(),
            workflow_id.into(),
            payload::encode(&format!("{} input", W::NAME), &input),
            Callsite::from_location(Location::caller()),
        )
    }

    /// A durable timer: resolves after `duration`, even across restarts and
    /// deploys. A sleep of 30 days costs one stored key and no memory.
    #[track_caller]
    pub fn sleep(&self, duration: Duration) -> TimerFuture {
        TimerFuture::start(
            self.state.clone(),
            duration,
            Callsite::from_location(Location::caller()),
        )
    }

    /// Waits for the next signal of type `S` (signals that arrived earlier
    /// are buffered, in arrival order).
    pub fn wait_signal<S: Signal>(&self) -> SignalFuture<S> {
        SignalFuture {
            state: self.state.clone(),
            waiting: false,
            _marker: PhantomData,
        }
    }

    /// Waits for the next signal of type `S` for at most `timeout`;
    /// `Ok(None)` when the deadline passed first.
    ///
    /// # Errors
    /// If the signal's payload does not decode as `S`.
    #[track_caller]
    pub fn wait_signal_for<S: Signal>(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Option<S>, WorkflowError>> + 'static {
        let timer = self.sleep(timeout);
        let signal = self.wait_signal::<S>();
        async move {
            match select(signal, timer).await {
                Either::Left(s) => s.map(Some),
                Either::Right(()) => Ok(None),
            }
        }
    }

    /// Takes a signal of type `S` if one has already arrived, without
    /// waiting.
    ///
    /// # Errors
    /// If the signal's payload does not decode as `S`.
    pub fn try_signal<S: Signal>(&self) -> Result<Option<S>, WorkflowError> {
        let next = self.state.borrow_mut().take_signal(S::NAME);
        next.map(|p| payload::decode(&format!("signal {}", S::NAME), &p))
            .transpose()
            .map_err(WorkflowError::from)
    }
}
