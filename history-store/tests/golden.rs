//! Golden byte fixtures: the exact bytes this build writes for every
//! persisted type, checked in under `tests/golden/v2/` (the current
//! schema version), and the frozen bytes schema version 1 wrote, under
//! `tests/golden/v1/`, which this build must still decode to the same
//! values (with the fields version 2 added at their defaults). A change to
//! a persisted type that alters its encoding fails here, before it can
//! make existing histories unreadable.
//!
//! To create fixtures for a newly added value (never to "fix" a failing
//! one): `REFRAIN_BLESS=1 cargo test -p refrain-history --test golden`.
//! Blessing writes only current-version fixtures; the `v1` files are
//! never written again.

use refrain_history::codec::{decode, encode, SCHEMA_VERSION};
use refrain_history::{
    ActivityOptions, ActivityState, ActivityTaskRecord, Callsite, CommandSeq, EscalationStep,
    Event, EventSeq, Failure, FailureCause, HumanTaskRecord, LeaseToken, OpenHumanTask,
    ParentClosePolicy, ParentRef, Payload, PendingChild, PendingTimer, RetryPolicy, RunId,
    RunLease, RunRecord, RunStatus, SignalRecord, TimeoutKind, Timestamp, UpdateRecord,
    UpdateState, WorkflowId,
};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::path::PathBuf;
use std::time::Duration;

fn p(s: &str) -> Payload {
    Payload::from_bytes(s.as_bytes().to_vec())
}

fn callsite() -> Callsite {
    Callsite {
        file: "examples/order_to_cash.rs".into(),
        line: 27,
        column: 14,
    }
}

fn options() -> ActivityOptions {
    ActivityOptions {
        start_to_close: Some(Duration::from_millis(30_250)),
        schedule_to_close: Some(Duration::from_secs(600)),
        heartbeat_timeout: None,
        retry: RetryPolicy {
            initial_interval: Duration::from_millis(1_500),
            backoff_coefficient: 1.5,
            max_interval: Duration::from_secs(60),
            max_attempts: 5,
            non_retryable_kinds: vec!["card-declined".into()],
        },
    }
}

fn failure() -> Failure {
    Failure {
        kind: "io".into(),
        message: "connection reset by peer".into(),
        non_retryable: false,
        cause: FailureCause::Timeout(TimeoutKind::StartToClose),
        details: Some(p("{\"retry_after\":3}")),
    }
}

/// Fixed event values, named by their fixture files: at least one of every
/// variant (see `fixture_of_variant`).
fn events() -> Vec<(&'static str, Event)> {
    vec![
        (
            "event_workflow_started",
            Event::WorkflowStarted {
                workflow_type: "order-to-cash".into(),
                workflow_id: WorkflowId::new("order-1001"),
                input: p("{\"sku\":\"A-1\",\"qty\":2}"),
                seed: 0x0123_4567_89AB_CDEF,
                start_time: Timestamp(1_700_000_000_000),
                continued_from: None,
                parent: None,
            },
        ),
        (
            "event_workflow_started_continued_child",
            Event::WorkflowStarted {
                workflow_type: "invoice-batch".into(),
                workflow_id: WorkflowId::new("order-1001/invoices"),
                input: p("{\"cursor\":1000}"),
                seed: 0xFEDC_BA98_7654_3210,
                start_time: Timestamp(1_700_000_900_000),
                continued_from: Some(RunId(41)),
                parent: Some(parent()),
            },
        ),
        (
            "event_activation_started",
            Event::ActivationStarted {
                time: Timestamp(1_700_000_000_005),
            },
        ),
        (
            "event_activity_scheduled",
            Event::ActivityScheduled {
                cmd: CommandSeq(1),
                activity_type: "reserve-stock".into(),
                input: p("{\"sku\":\"A-1\"}"),
                options: options(),
                callsite: callsite(),
            },
        ),
        (
            "event_activity_completed",
            Event::ActivityCompleted {
                cmd: CommandSeq(1),
                attempt: 2,
                result: p("{\"reservation\":\"R-9\"}"),
            },
        ),
        (
            "event_activity_failed",
            Event::ActivityFailed {
                cmd: CommandSeq(3),
                attempt: 5,
                failure: failure(),
            },
        ),
        (
            "event_timer_started",
            Event::TimerStarted {
                cmd: CommandSeq(2),
                fire_at: Timestamp(1_700_086_400_000),
                callsite: callsite(),
            },
        ),
        (
            "event_timer_fired",
            Event::TimerFired { cmd: CommandSeq(2) },
        ),
        (
            "event_timer_cancelled",
            Event::TimerCancelled { cmd: CommandSeq(4) },
        ),
        (
            "event_signal_received",
            Event::SignalReceived {
                name: "approve".into(),
                payload: p("{\"by\":\"ops\"}"),
                sender: Some("ops@example.com".into()),
            },
        ),
        (
            "event_side_effect_recorded",
            Event::SideEffectRecorded {
                cmd: CommandSeq(5),
                value: p("\"5f1e0c2a\""),
                callsite: callsite(),
            },
        ),
        (
            "event_workflow_completed",
            Event::WorkflowCompleted {
                result: p("{\"invoice\":\"INV-7\"}"),
            },
        ),
        (
            "event_workflow_failed",
            Event::WorkflowFailed {
                failure: Failure {
                    kind: "credit-check".into(),
                    message: "limit exceeded".into(),
                    non_retryable: true,
                    cause: FailureCause::Application,
                    details: None,
                },
            },
        ),
        (
            "event_patch_marker",
            Event::PatchMarker {
                patch_id: "fraud-check-v2".into(),
                deprecated: false,
            },
        ),
        (
            "event_workflow_continued_as_new",
            Event::WorkflowContinuedAsNew {
                input: p("{\"cursor\":2000}"),
                seed: 0x0F0F_0F0F_0F0F_0F0F,
                carried_signals: vec![SignalRecord {
                    name: "approve".into(),
                    payload: p("{\"by\":\"ops\"}"),
                    sender: None,
                }],
            },
        ),
        (
            "event_workflow_cancel_requested",
            Event::WorkflowCancelRequested {
                reason: "customer withdrew the order".into(),
                requested_by: Some("support@example.com".into()),
            },
        ),
        (
            "event_activity_cancel_requested",
            Event::ActivityCancelRequested { cmd: CommandSeq(6) },
        ),
        (
            "event_workflow_cancelled",
            Event::WorkflowCancelled {
                reason: "customer withdrew the order".into(),
            },
        ),
        (
            "event_workflow_terminated",
            Event::WorkflowTerminated {
                reason: "duplicate order".into(),
                terminated_by: None,
            },
        ),
        (
            "event_workflow_terminated_by",
            Event::WorkflowTerminated {
                reason: "duplicate order".into(),
                terminated_by: Some("ops@example.com".into()),
            },
        ),
        (
            "event_child_workflow_started",
            Event::ChildWorkflowStarted {
                cmd: CommandSeq(7),
                workflow_type: "reconcile-batch".into(),
                workflow_id: WorkflowId::new("recon-2026-11-21/batch-3"),
                input: p("{\"accounts\":[1,2,3]}"),
                seed: 99,
                parent_close: ParentClosePolicy::RequestCancel,
                callsite: callsite(),
            },
        ),
        (
            "event_child_workflow_completed",
            Event::ChildWorkflowCompleted {
                cmd: CommandSeq(7),
                result: p("{\"mismatches\":0}"),
            },
        ),
        (
            "event_child_workflow_failed",
            Event::ChildWorkflowFailed {
                cmd: CommandSeq(7),
                failure: failure(),
            },
        ),
        (
            "event_child_workflow_cancel_requested",
            Event::ChildWorkflowCancelRequested { cmd: CommandSeq(7) },
        ),
        (
            "event_human_task_assigned",
            Event::HumanTaskAssigned {
                cmd: CommandSeq(8),
                task: "credit-exception".into(),
                assignee: "underwriter-1@bank.example".into(),
                form: Some(p("{\"amount\":25000,\"score\":0.42}")),
                deadline: Some(Timestamp(1_700_000_300_000)),
                level: 0,
                callsite: callsite(),
                escalations: Vec::new(),
            },
        ),
        (
            "event_human_task_assigned_with_chain",
            Event::HumanTaskAssigned {
                cmd: CommandSeq(8),
                task: "credit-exception".into(),
                assignee: "underwriters".into(),
                form: None,
                deadline: Some(Timestamp(1_700_000_300_000)),
                level: 0,
                callsite: callsite(),
                escalations: vec![
                    EscalationStep {
                        assignee: "credit-manager".into(),
                        deadline: Some(Duration::from_secs(7_200)),
                    },
                    EscalationStep {
                        assignee: "head-of-credit@bank.example".into(),
                        deadline: None,
                    },
                ],
            },
        ),
        (
            "event_human_task_reminded",
            Event::HumanTaskReminded {
                cmd: CommandSeq(8),
                assignee: "underwriter-1@bank.example".into(),
            },
        ),
        (
            "event_human_task_escalated",
            Event::HumanTaskEscalated {
                cmd: CommandSeq(8),
                from: "underwriter-1@bank.example".into(),
                to: "head-of-credit@bank.example".into(),
                level: 1,
                deadline: Some(Timestamp(1_700_000_900_000)),
            },
        ),
        (
            "event_human_task_decided",
            Event::HumanTaskDecided {
                cmd: CommandSeq(8),
                decision: p("{\"approve\":true}"),
                decided_by: "head-of-credit@bank.example".into(),
                comment: Some("collateral covers the gap".into()),
                decided_at: Timestamp(1_700_000_450_000),
            },
        ),
        (
            "event_human_task_closed",
            Event::HumanTaskClosed {
                cmd: CommandSeq(8),
                reason: "nobody answered; fallback used".into(),
            },
        ),
        (
            "event_update_requested",
            Event::UpdateRequested {
                update_id: "change-address-1".into(),
                name: "change-address".into(),
                input: p("{\"street\":\"1 Main St\"}"),
            },
        ),
        (
            "event_update_accepted",
            Event::UpdateAccepted {
                update_id: "change-address-1".into(),
                name: "change-address".into(),
                input: p("{\"street\":\"1 Main St\"}"),
            },
        ),
        (
            "event_update_completed",
            Event::UpdateCompleted {
                update_id: "change-address-1".into(),
                result: p("\"label reprinted\""),
            },
        ),
        (
            "event_update_failed",
            Event::UpdateFailed {
                update_id: "change-address-2".into(),
                failure: failure(),
            },
        ),
        (
            "event_human_task_claimed",
            Event::HumanTaskClaimed {
                cmd: CommandSeq(8),
                from: "underwriters".into(),
                claimed_by: "underwriter-1@bank.example".into(),
                claimed_at: Timestamp(1_700_000_200_000),
            },
        ),
    ]
}

/// The fixture that stands for each variant. The match is exhaustive, so
/// adding a variant to `Event` fails to compile here until it is given a
/// fixture; `every_event_variant_has_a_fixture` then checks that the named
/// fixture is one of `events()` and that it holds that variant.
fn fixture_of_variant(event: &Event) -> &'static str {
    match event {
        Event::WorkflowStarted { .. } => "event_workflow_started",
        Event::ActivationStarted { .. } => "event_activation_started",
        Event::ActivityScheduled { .. } => "event_activity_scheduled",
        Event::ActivityCompleted { .. } => "event_activity_completed",
        Event::ActivityFailed { .. } => "event_activity_failed",
        Event::TimerStarted { .. } => "event_timer_started",
        Event::TimerFired { .. } => "event_timer_fired",
        Event::TimerCancelled { .. } => "event_timer_cancelled",
        Event::SignalReceived { .. } => "event_signal_received",
        Event::SideEffectRecorded { .. } => "event_side_effect_recorded",
        Event::WorkflowCompleted { .. } => "event_workflow_completed",
        Event::WorkflowFailed { .. } => "event_workflow_failed",
        Event::PatchMarker { .. } => "event_patch_marker",
        Event::WorkflowContinuedAsNew { .. } => "event_workflow_continued_as_new",
        Event::WorkflowCancelRequested { .. } => "event_workflow_cancel_requested",
        Event::ActivityCancelRequested { .. } => "event_activity_cancel_requested",
        Event::WorkflowCancelled { .. } => "event_workflow_cancelled",
        Event::WorkflowTerminated { .. } => "event_workflow_terminated",
        Event::ChildWorkflowStarted { .. } => "event_child_workflow_started",
        Event::ChildWorkflowCompleted { .. } => "event_child_workflow_completed",
        Event::ChildWorkflowFailed { .. } => "event_child_workflow_failed",
        Event::ChildWorkflowCancelRequested { .. } => "event_child_workflow_cancel_requested",
        Event::HumanTaskAssigned { .. } => "event_human_task_assigned",
        Event::HumanTaskReminded { .. } => "event_human_task_reminded",
        Event::HumanTaskEscalated { .. } => "event_human_task_escalated",
        Event::HumanTaskDecided { .. } => "event_human_task_decided",
        Event::HumanTaskClosed { .. } => "event_human_task_closed",
        Event::UpdateRequested { .. } => "event_update_requested",
        Event::UpdateAccepted { .. } => "event_update_accepted",
        Event::UpdateCompleted { .. } => "event_update_completed",
        Event::UpdateFailed { .. } => "event_update_failed",
        Event::HumanTaskClaimed { .. } => "event_human_task_claimed",
    }
}

/// The variant names of an enum as its derived `Deserialize` declares
/// them: the compiler's list, so it cannot fall behind the type.
fn variant_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Capture<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not an enum"))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = variants;
            Err(de::Error::custom("variant names captured"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map struct identifier ignored_any
        }
    }

    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Capture(&mut names));
    assert!(!names.is_empty(), "not an enum");
    names
}

fn parent() -> ParentRef {
    ParentRef {
        workflow_id: WorkflowId::new("order-1001"),
        run: RunId(40),
        cmd: CommandSeq(6),
    }
}

fn run_record_open() -> RunRecord {
    RunRecord {
        workflow_id: WorkflowId::new("order-1001"),
        workflow_type: "order-to-cash".into(),
        status: RunStatus::Running,
        started_at: Timestamp(1_700_000_000_000),
        closed_at: None,
        last_seq: EventSeq(12),
        inbox_head: 3,
        inbox_tail: 5,
        needs_first_activation: false,
        lease: Some(RunLease {
            token: LeaseToken(77),
            epoch: 4,
        }),
        pending_timers: vec![PendingTimer {
            cmd: CommandSeq(2),
            fire_at: Timestamp(1_700_086_400_000),
        }],
        pending_activities: vec![CommandSeq(1), CommandSeq(3)],
        outcome: None,
        last_task_failure: Some("nondeterminism at event 7".into()),
        history_bytes: 2_345,
        continued_from: Some(RunId(41)),
        continued_to: None,
        parent: Some(parent()),
        pending_children: vec![PendingChild {
            cmd: CommandSeq(4),
            workflow_id: WorkflowId::new("order-1001/shipment"),
            parent_close: ParentClosePolicy::Terminate,
        }],
        awaited_signals: Vec::new(),
    }
}

fn run_record_awaiting_signals() -> RunRecord {
    RunRecord {
        awaited_signals: vec!["stock-resolved".into(), "order-cancelled".into()],
        ..run_record_open()
    }
}

fn run_record_closed() -> RunRecord {
    RunRecord {
        status: RunStatus::Failed,
        closed_at: Some(Timestamp(1_700_000_900_000)),
        lease: None,
        pending_timers: Vec::new(),
        pending_activities: Vec::new(),
        pending_children: Vec::new(),
        outcome: Some(Err(failure())),
        last_task_failure: None,
        ..run_record_open()
    }
}

fn run_record_completed() -> RunRecord {
    RunRecord {
        status: RunStatus::Completed,
        outcome: Some(Ok(p("{\"invoice\":\"INV-7\"}"))),
        ..run_record_closed()
    }
}

fn run_record_cancelled() -> RunRecord {
    RunRecord {
        status: RunStatus::Cancelled,
        outcome: Some(Err(Failure {
            kind: "cancelled".into(),
            message: "customer withdrew the order".into(),
            non_retryable: true,
            cause: FailureCause::Cancelled,
            details: None,
        })),
        ..run_record_closed()
    }
}

fn run_record_terminated() -> RunRecord {
    RunRecord {
        status: RunStatus::Terminated,
        outcome: Some(Err(Failure {
            kind: "terminated".into(),
            message: "duplicate order".into(),
            non_retryable: true,
            cause: FailureCause::Terminated,
            details: None,
        })),
        ..run_record_closed()
    }
}

fn run_record_continued_as_new() -> RunRecord {
    RunRecord {
        status: RunStatus::ContinuedAsNew,
        outcome: None,
        continued_to: Some(RunId(43)),
        ..run_record_closed()
    }
}

/// Every run record fixture with its name.
fn run_records() -> Vec<(&'static str, RunRecord)> {
    vec![
        ("run_record_open", run_record_open()),
        ("run_record_closed", run_record_closed()),
        ("run_record_completed", run_record_completed()),
        ("run_record_continued_as_new", run_record_continued_as_new()),
        ("run_record_cancelled", run_record_cancelled()),
        ("run_record_terminated", run_record_terminated()),
        ("run_record_awaiting_signals", run_record_awaiting_signals()),
    ]
}

fn activity_task_scheduled() -> ActivityTaskRecord {
    ActivityTaskRecord {
        workflow_id: WorkflowId::new("order-1001"),
        activity_type: "reserve-stock".into(),
        input: p("{\"sku\":\"A-1\"}"),
        options: options(),
        attempt: 3,
        first_scheduled_at: Timestamp(1_700_000_000_005),
        state: ActivityState::Scheduled {
            visible_at: Timestamp(1_700_000_004_505),
        },
        heartbeat_details: Some(p("{\"page\":7}")),
        last_failure: Some(failure()),
        cancel_requested: false,
    }
}

fn activity_task_running() -> ActivityTaskRecord {
    ActivityTaskRecord {
        attempt: 1,
        state: ActivityState::Running {
            token: LeaseToken(1_000_001),
            started_at: Timestamp(1_700_000_000_010),
            deadline: Timestamp(1_700_000_030_260),
        },
        heartbeat_details: None,
        last_failure: None,
        cancel_requested: true,
        ..activity_task_scheduled()
    }
}

fn fixture_path(version: u16, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/golden/v{version}"))
        .join(format!("{name}.bin"))
}

/// Checks `expected` against its fixture of the current version (same
/// bytes both ways) and, if schema version 1 wrote it, against that
/// frozen fixture (same value when decoded). A value version 1 could not
/// hold (a field version 2 added, set) has no v1 fixture.
fn check<T>(name: &str, expected: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let v1 = fixture_path(1, name);
    if v1.exists() {
        let frozen = std::fs::read(&v1).unwrap();
        assert_eq!(
            u16::from_be_bytes([frozen[3], frozen[4]]),
            1,
            "{} must stay as schema version 1 wrote it",
            v1.display()
        );
        let decoded: T = decode(&frozen)
            .unwrap_or_else(|e| panic!("version-1 fixture {name} no longer decodes: {e}"));
        assert_eq!(
            &decoded, expected,
            "version-1 fixture {name} decodes to a different value"
        );
    }
    let path = fixture_path(SCHEMA_VERSION, name);
    let encoded = encode(expected).unwrap();
    if std::env::var_os("REFRAIN_BLESS").is_some() && !path.exists() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &encoded).unwrap();
    }
    let fixture = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "missing fixture {} ({e}); create it with REFRAIN_BLESS=1",
            path.display()
        )
    });
    let decoded: T =
        decode(&fixture).unwrap_or_else(|e| panic!("fixture {name} no longer decodes: {e}"));
    assert_eq!(
        &decoded, expected,
        "fixture {name} decodes to a different value"
    );
    assert_eq!(
        encoded, fixture,
        "{name} no longer encodes to its fixture bytes"
    );
}

#[test]
fn every_event_variant_matches_its_fixture() {
    for (name, event) in events() {
        check(name, &event);
    }
}

#[test]
fn every_event_variant_has_a_fixture() {
    let events = events();
    let names: BTreeSet<&str> = events.iter().map(|(name, _)| *name).collect();
    assert_eq!(names.len(), events.len(), "fixture names repeat");
    let mut covered = BTreeSet::new();
    for (name, event) in &events {
        covered.insert(event.kind());
        let canonical = fixture_of_variant(event);
        let (_, held) = events
            .iter()
            .find(|(n, _)| *n == canonical)
            .unwrap_or_else(|| panic!("{} names fixture {canonical}, not in events()", name));
        assert_eq!(
            held.kind(),
            event.kind(),
            "fixture {canonical} does not hold a {}",
            event.kind()
        );
    }
    let declared: BTreeSet<&str> = variant_names::<Event>().iter().copied().collect();
    let missing: Vec<_> = declared.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "Event variants without a fixture: {missing:?}"
    );
    assert_eq!(
        covered, declared,
        "Event::kind() disagrees with the variant names"
    );
}

#[test]
fn run_records_match_their_fixtures() {
    for (name, record) in run_records() {
        check(name, &record);
    }
}

#[test]
fn every_run_status_has_a_run_record_fixture() {
    let covered: BTreeSet<String> = run_records()
        .iter()
        .map(|(_, r)| format!("{:?}", r.status))
        .collect();
    let declared: BTreeSet<String> = variant_names::<RunStatus>()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(covered, declared, "RunStatus variants without a fixture");
}

#[test]
fn human_task_records_match_their_fixtures() {
    let record = HumanTaskRecord {
        workflow_id: WorkflowId::new("loan-77"),
        run: RunId(12),
        cmd: CommandSeq(8),
        task: "credit-exception".into(),
        assignee: "head-of-credit@bank.example".into(),
        form: Some(p("{\"amount\":25000}")),
        deadline: Some(Timestamp(1_700_000_900_000)),
        assigned_at: Timestamp(1_700_000_300_000),
        level: 1,
        escalations: Vec::new(),
        claimed_from: None,
    };
    check("human_task_record", &record);
    check(
        "human_task_record_claimed",
        &HumanTaskRecord {
            assignee: "underwriter-1@bank.example".into(),
            level: 0,
            escalations: vec![EscalationStep {
                assignee: "head-of-credit@bank.example".into(),
                deadline: Some(Duration::from_secs(3_600)),
            }],
            claimed_from: Some("underwriters".into()),
            ..record
        },
    );
    check(
        "run_human_tasks",
        &vec![
            OpenHumanTask {
                cmd: CommandSeq(8),
                assignee: "head-of-credit@bank.example".into(),
            },
            OpenHumanTask {
                cmd: CommandSeq(11),
                assignee: "compliance@bank.example".into(),
            },
        ],
    );
}

#[test]
fn update_records_match_their_fixtures() {
    let record = |state| UpdateRecord {
        name: "change-address".into(),
        requested_at: Timestamp(1_700_000_100_000),
        state,
    };
    let states = [
        ("update_record_requested", UpdateState::Requested),
        ("update_record_accepted", UpdateState::Accepted),
        (
            "update_record_completed",
            UpdateState::Completed(p("\"label reprinted\"")),
        ),
        ("update_record_failed", UpdateState::Failed(failure())),
        (
            "update_record_rejected",
            UpdateState::Rejected("the parcel has already shipped".into()),
        ),
    ];
    let covered: BTreeSet<String> = states
        .iter()
        .map(|(_, s)| format!("{s:?}").split('(').next().unwrap().to_owned())
        .collect();
    let declared: BTreeSet<String> = variant_names::<UpdateState>()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(covered, declared, "UpdateState variants without a fixture");
    for (name, state) in states {
        check(name, &record(state));
    }
}

#[test]
fn activity_task_records_match_their_fixtures() {
    check("activity_task_scheduled", &activity_task_scheduled());
    check("activity_task_running", &activity_task_running());
}
