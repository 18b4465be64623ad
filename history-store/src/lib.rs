//! Event histories and the durable store behind Refrain workflows.
//!
//! This crate holds no user code. It defines the vocabulary every other
//! Refrain crate speaks (ids, [`Event`], [`ActivityOptions`]), the codec that
//! every stored value passes through, [`HistoryStore`], the one async seam
//! between the engine and its store, and [`Store`], the sled-backed store
//! behind it that performs every durable state transition: starting runs,
//! committing activations, claiming and completing activity tasks, firing
//! timers, expiring attempts and scheduling retries.
//!
//! [`HistoryStore`] is what a client (the `Client`, the `refrain` CLI, an
//! API server) and a worker ask of a store, each operation async and each
//! acknowledged write durable when it returns; [`history_store`] says what
//! it covers and what still stays in process. `Store` implements
//! it; another backend implements it and proves it with the conformance
//! suite (`conformance`, feature `test-support`:
//! `history_store_conformance!(make)`).
//!
//! # Layout
//!
//! Each layer uses only the ones below it; nothing below calls up (a
//! query or an eager start reaches a worker as a workflow task it polls,
//! or through the start it makes, never as a call from the store):
//!
//! ```text
//! history_store         the seam: trait HistoryStore and its error families;
//!      │                 sled's implementation (sled.rs, sled_tasks.rs, queries.rs)
//!      ▼
//! store (the shell)     Store: open and recovery, group commit (batch),
//!      │                 flush tickets (durability), ready queue and wake-ups
//!      │                 (ready); each operation runs one transition in a
//!      │                 transaction and performs the effects it returns
//!      ▼
//! store::transitions    every state transition, over one transaction's
//!      │                 table views: no I/O, no thread, no clock
//!      ▼
//! store::engine         named ordered tables and atomic transactions:
//!      │                 sled (journal, integrity, verify) or memory
//!      ▼
//! event, ids, records,  the vocabulary and its bytes
//! keys, codec
//! ```
//!
//! The metrics the engine reports through the `metrics` facade, store and
//! worker alike, are named and described in one place: [`telemetry`].
//!
//! Above this crate, `refrain` (the SDK: workflows, replay, `Client`) and
//! `refrain-worker` (the worker, its CLI) reach a store only through an
//! `Arc<dyn HistoryStore>`.
//!
//! ```
//! use refrain_history::{Store, StoreConfig, StartRequest, IdConflictPolicy, Payload, Timestamp};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
//! let started = store
//!     .start_workflow(StartRequest {
//!         workflow_id: "order-1".into(),
//!         workflow_type: "order-to-cash".into(),
//!         input: Payload::from_bytes(b"{}".to_vec()),
//!         on_conflict: IdConflictPolicy::Reject,
//!         seed: 7,
//!         now: Timestamp::now(),
//!     })
//!     .unwrap();
//! store.durable_blocking().unwrap(); // acknowledged means durable
//! assert!(started.started);
//! assert_eq!(store.read_history(started.run).unwrap().len(), 1);
//! ```

mod clock;
pub mod codec;
#[cfg(feature = "test-support")]
pub mod conformance;
mod error;
mod event;
#[cfg(any(test, feature = "test-support"))]
pub mod fuzz;
pub mod history_store;
mod ids;
pub mod keys;
mod options;
#[cfg(any(test, feature = "test-support"))]
pub mod samples;
mod sizes;
pub mod store;
pub mod telemetry;

pub use clock::Clock;
pub use error::StoreError;
pub use event::{
    Callsite, EscalationStep, Event, Failure, FailureCause, ParentClosePolicy, ParentRef, Payload,
    SignalRecord, TimeoutKind, HISTORY_LIMIT_KIND,
};
pub use history_store::{
    ActivityError, AttemptRef, BackendError, CommitError, HistoryLimits, HistoryStore,
    HumanTaskDecision, HumanTaskError, PageRequest, QueryError, QueryId, QueryTask, ReadError,
    ReservedStart, RunCursor, RunOpError, RunPage, ScheduleError, StartError, StartedWith,
    UpdateError, UpdateRequest, WorkflowTask,
};
pub use ids::{CommandSeq, EventSeq, LeaseToken, RunId, Timestamp, WorkflowId};
pub use options::{ActivityOptions, RetryPolicy};
pub use store::api::{
    Activation, ActivationCommit, ActivityResolution, DurabilityMode, HeartbeatAck,
    IdConflictPolicy, ListOrder, RunFilter, RunSummary, StartOutcome, StartRequest, StoreConfig,
    UpdateRejection,
};
pub use store::records::{
    ActivityState, ActivityTask, ActivityTaskRecord, PendingChild, PendingTimer, RunLease,
    RunRecord, RunStatus,
};
pub use store::retention::{PurgeBatch, PurgeRequest, RetentionPolicy, MAX_PURGE_BATCH};
pub use store::schedules::{
    OverlapPolicy, ScheduleFires, ScheduleRecord, ScheduleSpec, ScheduledRun, Trigger,
    TriggerOutcome,
};
/// Tables of an in-memory store, kept across restarts ([`Store::open_in_memory`]).
pub use store::MemoryStorage;
pub use store::{
    CommitProgress, DirectActivities, EagerStart, EagerStartAnswer, ExternalEngine, ExternalError,
    ExternalTable, FlushProgress, FlushTicket, HumanTaskRecord, LocalCompletion, OpenHumanTask,
    Store, StoreProgress, UpdateRecord, UpdateState, UpdateWait,
};
