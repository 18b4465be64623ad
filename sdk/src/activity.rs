//! The traits and context of activities: ordinary async code with side
//! effects, run at least once, recorded exactly once.

use crate::error::ActivityError;
use crate::payload;
use async_trait::async_trait;
use refrain_history::{ActivityTask, AttemptRef, HistoryStore, Payload};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::watch;

/// An activity: a named, typed unit of side-effecting work (charge a card,
/// send an email, call a model). Workflows call it by type,
/// `ctx.activity::<ChargeCard>(input)`; a worker runs it with the
/// registered instance, which may hold clients and pools.
///
/// ```
/// use refrain::{async_trait, Activity, ActivityContext, ActivityError};
///
/// struct SendEmail;
/// #[async_trait]
/// impl Activity for SendEmail {
///     const NAME: &'static str = "send-email";
///     type Input = String;
///     type Output = ();
///     async fn run(&self, ctx: ActivityContext, to: String) -> Result<(), ActivityError> {
///         // Pass the key on so the mail service drops duplicates of retries.
///         let _key = ctx.idempotency_key();
///         let _ = to;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Activity: Send + Sync + 'static {
    /// Name under which the activity is registered and recorded.
    const NAME: &'static str;
    /// Input.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// Output.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Runs one attempt.
    async fn run(
        &self,
        ctx: ActivityContext,
        input: Self::Input,
    ) -> Result<Self::Output, ActivityError>;
}

/// What a running activity attempt knows and can do: its attempt number, a
/// stable idempotency key, heartbeats, and cancellation.
#[derive(Clone)]
pub struct ActivityContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    task: ActivityTask,
    store: Option<Arc<dyn HistoryStore>>,
    cancel: Arc<watch::Sender<bool>>,
}

/// The sending half of an activity's cancellation, held by the worker.
#[derive(Clone)]
pub struct CancelHandle(Arc<watch::Sender<bool>>);

impl CancelHandle {
    /// Requests cancellation of the attempt.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

impl ActivityContext {
    /// Creates the context of a claimed attempt. `store` is where heartbeats
    /// go; without one (unit tests of activity code) heartbeats are
    /// accepted and dropped.
    pub fn new(task: ActivityTask, store: Option<Arc<dyn HistoryStore>>) -> (Self, CancelHandle) {
        let cancel = Arc::new(watch::Sender::new(false));
        let ctx = ActivityContext {
            inner: Arc::new(ContextInner {
                task,
                store,
                cancel: cancel.clone(),
            }),
        };
        (ctx, CancelHandle(cancel))
    }

    /// The claimed task.
    pub fn task(&self) -> &ActivityTask {
        &self.inner.task
    }

    /// This attempt, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.inner.task.attempt
    }

    /// `workflow-id/run/cmd`: the same for every attempt of this activity
    /// call, across retries and restarts. Hand it to external systems so
    /// they can drop duplicate requests.
    pub fn idempotency_key(&self) -> String {
        self.inner.task.idempotency_key()
    }

    /// The workflow that scheduled this activity.
    pub fn workflow_id(&self) -> &refrain_history::WorkflowId {
        &self.inner.task.workflow_id
    }

    /// Details of the last heartbeat of an earlier attempt (for resuming
    /// long work where it stopped), if any.
    ///
    /// # Errors
    /// `PayloadError` if they do not decode as `T`.
    pub fn last_heartbeat_details<T: DeserializeOwned>(
        &self,
    ) -> Result<Option<T>, payload::PayloadError> {
        self.inner
            .task
            .heartbeat_details
            .as_ref()
            .map(|p| payload::decode("heartbeat details", p))
            .transpose()
    }

    /// Reports progress: extends the heartbeat deadline and stores
    /// `details` for a later attempt. This is also how cancellation reaches
    /// a running activity: when the workflow no longer wants the result,
    /// the context becomes cancelled ([`is_cancelled`](Self::is_cancelled),
    /// [`cancelled`](Self::cancelled)). If the store says this attempt is
    /// no longer current (it timed out), the context becomes cancelled and
    /// the error is returned.
    ///
    /// # Errors
    /// `HeartbeatError` when the details cannot be encoded or the store
    /// rejects the heartbeat.
    pub async fn heartbeat<T: Serialize>(&self, details: &T) -> Result<(), HeartbeatError> {
        let details =
            payload::encode("heartbeat details", details).map_err(HeartbeatError::Encode)?;
        self.heartbeat_payload(Some(details)).await
    }

    async fn heartbeat_payload(&self, details: Option<Payload>) -> Result<(), HeartbeatError> {
        let Some(store) = &self.inner.store else {
            return Ok(());
        };
        let attempt = AttemptRef::from(&self.inner.task);
        match store.heartbeat_activity(attempt, details).await {
            Ok(ack) => {
                if ack.cancel_requested {
                    self.inner.cancel.send_replace(true);
                }
                Ok(())
            }
            Err(e) => {
                if matches!(e, refrain_history::ActivityError::Stale { .. }) {
                    // The attempt is over as far as the workflow is
                    // concerned: tell the code so it can stop.
                    self.inner.cancel.send_replace(true);
                }
                Err(HeartbeatError::Store(e))
            }
        }
    }

    /// Whether cancellation was requested (the attempt timed out, its
    /// heartbeat was rejected, or the worker is shutting down).
    pub fn is_cancelled(&self) -> bool {
        *self.inner.cancel.borrow()
    }

    /// Resolves when cancellation is requested; `select` on it in
    /// long-running activities.
    pub async fn cancelled(&self) {
        let mut rx = self.inner.cancel.subscribe();
        // The sender lives as long as this context, so waiting cannot fail.
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// A heartbeat was not recorded.
#[derive(Debug)]
pub enum HeartbeatError {
    /// The details could not be encoded.
    Encode(payload::PayloadError),
    /// The store refused it; `ActivityError::Stale` means the attempt
    /// timed out and its result will be rejected.
    Store(refrain_history::ActivityError),
}

impl std::fmt::Display for HeartbeatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeartbeatError::Encode(e) => write!(f, "heartbeat not sent: {e}"),
            HeartbeatError::Store(e) => write!(f, "heartbeat not recorded: {e}"),
        }
    }
}

impl std::error::Error for HeartbeatError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HeartbeatError::Encode(e) => Some(e),
            HeartbeatError::Store(e) => Some(e),
        }
    }
}
