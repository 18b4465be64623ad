//! The conformance suite of [`HistoryStore`]: what every backend must do,
//! as tests any backend runs with one line (feature `test-support`).
//!
//! ```
//! // tests/conformance.rs of a backend crate (tokio with `macros` as a
//! // dev-dependency):
//! use refrain_history::conformance::Fixture;
//! use refrain_history::{HistoryStore, Store, StoreConfig};
//! use std::sync::Arc;
//!
//! /// A fresh, empty backend (here the in-memory store; yours in its place).
//! fn fixture() -> Fixture {
//!     let config = StoreConfig::default();
//!     let limit = config.max_payload_bytes;
//!     let store = Store::in_memory(config);
//!     let other: Arc<dyn HistoryStore> = Arc::new(store.clone());
//!     Fixture::new(Arc::new(store), other, limit, ())
//! }
//!
//! mod my_backend {
//!     refrain_history::history_store_conformance!(super::fixture);
//! }
//! # fn main() {}
//! ```
//!
//! The macro expands to one `#[tokio::test]` per case, named after the
//! case (so a failure names it), each calling the constructor for a fresh,
//! empty backend (a [`Fixture`]). Put each backend's invocation in a module
//! of its own, as above, so that several backends' cases can live in one
//! test file. The cases speak only through the trait: the client side
//! ([`client`], deciding as an assignee in [`human_tasks`]), what
//! operators' tools add to it ([`operator`]), the list's order
//! ([`order`]), retention ([`retention`]), and the worker side with its
//! services ([`worker`]). They build activations as a worker would (the marker, the inbox it was
//! given, then its commands) and use the wall clock only as a backend
//! does, never asserting how long anything took: a wait that never ends
//! fails the case after [`HANG`] instead of hanging it.
//!
//! [`HistoryStore`]: crate::HistoryStore

pub mod client;
pub mod human_tasks;
pub mod operator;
pub mod order;
pub mod retention;
pub mod worker;

use crate::event::{Callsite, Event};
use crate::ids::{CommandSeq, RunId, Timestamp, WorkflowId};
use crate::options::ActivityOptions;
use crate::store::api::{Activation, ActivationCommit, IdConflictPolicy, StartRequest};
use crate::HistoryStore;
use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A fresh, empty backend under test.
pub struct Fixture {
    /// The handle the cases drive.
    pub store: Arc<dyn HistoryStore>,
    /// A second handle on the same data, as a second client holds it (for
    /// sled, one process per database: a second handle of the same open
    /// store; for a network backend, a second connection).
    pub other: Arc<dyn HistoryStore>,
    /// The backend's payload limit (`StoreConfig::max_payload_bytes` for
    /// sled); keep it small, the cases send payloads just over it.
    pub max_payload_bytes: usize,
    /// What must outlive the handles (a temporary directory).
    _keep: Box<dyn Any + Send + Sync>,
}

impl Fixture {
    /// A fixture of `store`, with `other` a second handle on its data and
    /// `keep` dropped only after both (a temporary directory, `()`).
    pub fn new(
        store: Arc<dyn HistoryStore>,
        other: Arc<dyn HistoryStore>,
        max_payload_bytes: usize,
        keep: impl Any + Send + Sync,
    ) -> Self {
        Fixture {
            store,
            other,
            max_payload_bytes,
            _keep: Box::new(keep),
        }
    }
}

/// The longest any case waits for something that should happen; past it
/// the case fails as hung. A hang guard, not a timing assertion.
pub const HANG: Duration = Duration::from_secs(30);

/// Awaits `fut`, failing the case if it does not finish within [`HANG`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(HANG, fut).await {
        Ok(v) => v,
        Err(_) => panic!("hung for {HANG:?} waiting for {what}"),
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each with a fresh
/// backend from `$make` (an expression callable as `Fn() -> Fixture`).
///
/// `history_store_conformance!(skippable $make)` takes a backend that may
/// be missing where the tests run (a database server): `$make` is
/// callable as `Fn(&str) -> Option<Fixture>`, is given the case's name,
/// and a `None` passes the case without running it (the constructor says
/// why, and fails instead where skipping is not allowed).
#[macro_export]
macro_rules! history_store_conformance {
    (skippable $make:expr) => {
        $crate::history_store_conformance!(@list @skippable $make);
    };
    ($make:expr) => {
        $crate::history_store_conformance!(@list @always $make);
    };
    (@list @$how:ident $make:expr) => {
        $crate::history_store_conformance!(@cases $how $make;
            client::start_is_durable_and_visible_to_another_handle,
            client::start_follows_the_conflict_policy,
            client::start_refuses_a_payload_too_large,
            client::signal_reaches_the_open_run_and_names_missing_and_closed_ones,
            client::cancel_and_terminate_reach_the_run_and_refuse_a_closed_one,
            client::wait_closed_returns_the_closed_record,
            client::read_history_starts_at_the_sequence_number_given,
            client::list_pages_neither_skip_nor_repeat_while_runs_start,
            client::list_filters_and_refuses_a_forged_cursor,
            client::update_is_answered_once_and_refused_on_a_closed_run,
            client::query_without_a_worker_is_refused_by_name,
            client::a_query_dropped_by_its_caller_is_not_offered,
            client::a_query_is_a_workflow_task_answered_once,
            client::human_tasks_are_listed_and_decided_once,
            human_tasks::a_decision_made_as_an_earlier_assignee_is_refused,
            human_tasks::a_claim_moves_a_group_task_to_one_member,
            human_tasks::an_escalation_moves_a_claimed_task_from_the_claimer,
            client::schedules_are_created_paused_resumed_and_deleted,
            operator::list_filters_by_id_prefix_and_start_time,
            operator::signal_with_start_signals_the_open_run_or_starts_one,
            operator::trigger_fires_a_schedule_now_under_its_overlap_policy,
            retention::purge_deletes_only_closed_runs_past_their_retention,
            order::newest_first_pages_neither_skip_nor_repeat_while_runs_start,
            order::newest_first_applies_every_filter,
            order::a_cursor_is_good_for_its_order_only,
            worker::workflow_poll_returns_when_work_arrives,
            worker::workflow_poll_returns_empty_after_its_wait,
            worker::commit_folds_in_local_results_and_claims,
            worker::a_stale_local_result_is_refused,
            worker::a_moved_history_or_a_malformed_commit_is_refused,
            worker::a_failed_task_records_why_and_is_offered_again,
            worker::activity_poll_claims_and_a_result_is_recorded_once,
            worker::activity_poll_returns_when_work_arrives_or_empty_after_its_wait,
            worker::a_failed_attempt_is_retried_per_its_policy,
            worker::heartbeats_are_acknowledged_until_the_attempt_ends,
            worker::an_oversized_result_is_refused,
            worker::timers_fire_once_when_due,
            worker::due_schedules_fire_and_wait_due_wakes_for_new_timers,
            worker::limits_are_the_ones_enforced,
            worker::progress_moves_with_commits,
            worker::a_start_with_its_first_activation_commits_both,
        );
    };
    (@cases always $make:expr; $($family:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture: $crate::conformance::Fixture = ($make)();
                $crate::conformance::$family::$case(&fixture).await;
            }
        )*
    };
    (@cases skippable $make:expr; $($family:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let made: Option<$crate::conformance::Fixture> = ($make)(stringify!($case));
                if let Some(fixture) = made {
                    $crate::conformance::$family::$case(&fixture).await;
                }
            }
        )*
    };
}

// ----- building blocks -----

pub use crate::samples::p;

/// A start of `id` (type `order-to-cash`) under `on_conflict`.
pub fn start_request(id: &str, on_conflict: IdConflictPolicy) -> StartRequest {
    StartRequest {
        workflow_id: WorkflowId::new(id),
        workflow_type: "order-to-cash".into(),
        input: p("{}"),
        on_conflict,
        seed: 7,
        now: Timestamp::now(),
    }
}

/// Starts `id` and returns its run.
pub async fn start(store: &dyn HistoryStore, id: &str) -> RunId {
    let outcome = store
        .start(start_request(id, IdConflictPolicy::Reject))
        .await
        .expect("start");
    assert!(outcome.started);
    outcome.run
}

/// Where a command was asked for.
pub fn callsite() -> Callsite {
    crate::samples::site("conformance.rs", 1, 1)
}

/// `ActivityScheduled` of command `cmd`.
pub fn schedule(cmd: u32, options: ActivityOptions) -> Event {
    Event::ActivityScheduled {
        cmd: CommandSeq(cmd),
        activity_type: "reserve-stock".into(),
        input: p("\"sku-1\""),
        options,
        callsite: callsite(),
    }
}

/// The commit a well-behaved worker makes for `task` at `time`: the
/// activation marker, the inbox it was given (but for what never enters a
/// history), then `commands`.
pub fn commit_for(task: &Activation, time: Timestamp, commands: Vec<Event>) -> ActivationCommit {
    let mut events = vec![Event::ActivationStarted { time }];
    events.extend(task.inbox.iter().filter(|e| !e.is_inbox_only()).cloned());
    events.extend(commands);
    ActivationCommit {
        run: task.run,
        token: task.token,
        expected_last_seq: task.record.last_seq,
        inbox_upto: task.inbox_upto,
        events,
        rejected_updates: Vec::new(),
        awaited_signals: Vec::new(),
    }
}

/// The activations among polled tasks (the cases that use this ask no
/// queries).
pub fn activations(polled: Vec<crate::WorkflowTask>) -> Vec<Activation> {
    polled
        .into_iter()
        .map(|task| match task {
            crate::WorkflowTask::Activation(task) => *task,
            crate::WorkflowTask::Query(q) => panic!("a query nobody asked: {q:?}"),
        })
        .collect()
}

/// Polls until an activation of `run` comes (tasks of other runs are
/// given back).
pub async fn task_of(store: &dyn HistoryStore, run: RunId) -> Activation {
    within(&format!("an activation of {run}"), async {
        loop {
            let polled = store
                .poll_workflow_tasks(16, Duration::from_millis(200))
                .await
                .expect("poll workflow tasks");
            let tasks = activations(polled);
            let mut found = None;
            for task in tasks {
                if task.run == run && found.is_none() {
                    found = Some(task);
                } else {
                    store
                        .fail_activation(task.run, task.token, None, Some(Duration::ZERO))
                        .await
                        .expect("give back a task of another run");
                }
            }
            if let Some(task) = found {
                return task;
            }
            // A backend that answers at once must not starve the hang
            // guard.
            tokio::task::yield_now().await;
        }
    })
    .await
}

/// Takes the activation of `run` and commits one activation producing
/// `commands`; returns the task (with the inbox it applied).
pub async fn activate(store: &dyn HistoryStore, run: RunId, commands: Vec<Event>) -> Activation {
    let task = task_of(store, run).await;
    store
        .commit_activation(
            commit_for(&task, Timestamp::now(), commands),
            Default::default(),
        )
        .await
        .expect("commit");
    task
}

/// What waits in `run`'s inbox now (takes the run's task and gives it
/// back).
pub async fn inbox_of(store: &dyn HistoryStore, run: RunId) -> Vec<Event> {
    let Some(task) = store.activation(run).await.expect("activation") else {
        return Vec::new();
    };
    store
        .fail_activation(run, task.token, None, Some(Duration::ZERO))
        .await
        .expect("give the task back");
    task.inbox
}
