//! [`WorkflowContext`]: everything a workflow may do, each of it replayable.

use crate::activity::Activity;
use crate::commands::{ActivityCall, SignalFuture, TimerFuture};
use crate::combinators::{select, Either};
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
/// wakes stop the workflow task with a [`NondeterminismError`](crate::NondeterminismError),
/// as does replaying changed code against an old history.
#[derive(Clone)]
pub struct WorkflowContext {
    state: SharedState,
}

impl WorkflowContext {
    pub(crate) fn new(state: SharedState) -> Self {
        WorkflowContext { state }
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
        let (value, payload) = match recorded.map(|p| (payload::decode::<T>("side effect", &p), p)) {
            Some((Ok(v), p)) => (v, p),
            Some((Err(e), _)) => {
                self.state
                    .borrow_mut()
                    .record_misuse(format!("recorded side effect does not decode: {e}"), Some(callsite.clone()));
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
    /// ```ignore
    /// let r = ctx.activity::<ReserveStock>(order)
    ///     .start_to_close(Duration::from_secs(30))
    ///     .retry(RetryPolicy::exponential().max_attempts(3))
    ///     .await?;
    /// ```
    #[track_caller]
    pub fn activity<A: Activity>(&self, input: A::Input) -> ActivityCall<A> {
        ActivityCall::schedule(
            self.state.clone(),
            payload::encode(&format!("{} input", A::NAME), &input),
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
        let next = self
            .state
            .borrow_mut()
            .signals
            .get_mut(S::NAME)
            .and_then(|q| q.pop_front());
        next.map(|p| payload::decode(&format!("signal {}", S::NAME), &p))
            .transpose()
            .map_err(WorkflowError::from)
    }
}
