//! Refrain: durable workflows as ordinary async Rust.
//!
//! A [`Workflow`] is an `async fn` that orchestrates [`Activity`] calls,
//! durable timers and signals through a [`WorkflowContext`]. Every decision
//! it makes and every result it receives is appended to an event history in
//! an embedded sled store; after a crash, a deploy or a month-long wait, a
//! worker replays the history through the same code and carries on exactly
//! where it stopped. Activities run at least once and their outcome is
//! recorded exactly once.
//!
//! ```
//! use refrain::{async_trait, Activity, ActivityContext, ActivityError, RetryPolicy,
//!               Workflow, WorkflowContext, WorkflowError};
//! use std::time::Duration;
//!
//! struct ChargeCard;
//! #[async_trait]
//! impl Activity for ChargeCard {
//!     const NAME: &'static str = "charge-card";
//!     type Input = u64;       // cents
//!     type Output = String;   // payment id
//!     async fn run(&self, ctx: ActivityContext, cents: u64) -> Result<String, ActivityError> {
//!         Ok(format!("pay-{cents}-{}", ctx.idempotency_key()))
//!     }
//! }
//!
//! struct Checkout;
//! impl Workflow for Checkout {
//!     const NAME: &'static str = "checkout";
//!     type Input = u64;
//!     type Output = String;
//!     async fn run(ctx: WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
//!         let payment = ctx.activity::<ChargeCard>(cents)
//!             .start_to_close(Duration::from_secs(30))
//!             .retry(RetryPolicy::exponential().max_attempts(3))
//!             .await?;
//!         ctx.sleep(Duration::from_secs(3600)).await; // durable timer
//!         Ok(payment)
//!     }
//! }
//! ```
//!
//! The worker that runs these lives in the `refrain-worker` crate; the
//! store in `refrain-history`. A [`Client`] starts, signals and reads
//! workflows through that crate's [`HistoryStore`] seam, over the embedded
//! sled [`Store`] or any other backend.

mod activity;
mod child;
mod client;
mod client_error;
mod client_ops;
pub mod client_untyped;
mod combinators;
mod commands;
mod context;
pub mod display;
mod error;
pub mod history_file;
pub mod human_task;
pub mod payload;
mod query;
mod query_state;
pub mod replay;
pub mod retention;
mod saga;
mod schedule;
mod update;
pub mod waiting;
mod workflow;

pub use activity::{Activity, ActivityContext, CancelHandle, HeartbeatError};
pub use async_trait::async_trait;
pub use child::{ChildCall, ChildFuture, ChildWorkflowFailed};
pub use client::{
    Client, ClientError, InProcessStarts, PendingActivity, StartOptions, WorkflowDescription,
    WorkflowHandle,
};
pub use combinators::{join, join3, join_all, select, Either, JoinAll, Select};
pub use commands::{ActivityCall, ActivityFuture, SignalFuture, TimerFuture};
pub use context::WorkflowContext;
pub use error::{
    ActivityError, ActivityFailed, OversizedCommand, WorkflowError, PAYLOAD_TOO_LARGE_KIND,
};
pub use human_task::{
    Escalation, HumanDecision, HumanTask, HumanTaskCall, HumanTaskFailed, HumanTaskFuture,
    HumanTaskNotice, HumanTaskRef, NoticeKind,
};
pub use query::{Query, QueryError};
pub use query_state::QueryState;
pub use refrain_history::{
    OverlapPolicy, ScheduleRecord, ScheduleSpec, ScheduledRun, Trigger, TriggerOutcome,
};
pub use refrain_macros::{activity, deterministic, Query, Signal};
pub use replay::{ActivationError, NondeterminismError};
pub use retention::{PurgeError, PurgeOptions, PurgeReport};
pub use saga::{CompensationFailure, CompensationReport, CompensationStep, Saga};
pub use schedule::{schedule_for, ScheduleError};
pub use update::Update;
pub use waiting::Waiting;
pub use workflow::{Signal, Workflow};

pub use refrain_history::{
    ActivityOptions, DurabilityMode, Event, Failure, FailureCause, HistoryStore, IdConflictPolicy,
    ListOrder, PageRequest, ParentClosePolicy, Payload, RetryPolicy, RunCursor, RunFilter, RunId,
    RunPage, RunStatus, Store, StoreConfig, StoreError, TimeoutKind, WorkflowId,
};
pub use refrain_history::{PurgeBatch, RetentionPolicy};

/// The warnings of [`deterministic`]: identity functions whose deprecation
/// notes rustc prints where the macro wraps them around flagged code.
#[doc(hidden)]
pub mod __lint {
    /// Iterating a hash container.
    #[deprecated(
        note = "iterating a HashMap or HashSet visits entries in an order that can differ between a run and its replay; use a BTreeMap or BTreeSet, or collect and sort before iterating"
    )]
    #[inline(always)]
    pub fn hash_iteration<T>(iterated: T) -> T {
        iterated
    }

    /// Reading the environment.
    #[deprecated(
        note = "an environment variable can change between a run and its replay; read it in an activity or in `ctx.side_effect(..)`, or pass it in the workflow input"
    )]
    #[inline(always)]
    pub fn env_read<T>(value: T) -> T {
        value
    }
}
