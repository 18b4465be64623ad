//! Golden byte fixtures: the exact bytes this build writes for every
//! persisted type, checked in under `tests/golden/`. A change to a
//! persisted type that alters its encoding fails here, before it can make
//! existing histories unreadable.
//!
//! To create fixtures for a newly added value (never to "fix" a failing
//! one): `REFRAIN_BLESS=1 cargo test -p refrain-history --test golden`.

use refrain_history::codec::{decode, encode};
use refrain_history::{
    ActivityOptions, ActivityState, ActivityTaskRecord, Callsite, CommandSeq, Event, Failure,
    FailureCause, LeaseToken, Payload, PendingTimer, RetryPolicy, RunLease, RunRecord, RunStatus,
    TimeoutKind, Timestamp, WorkflowId,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
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

/// One fixed value of every event variant, named by its fixture file.
fn events() -> Vec<(&'static str, Event)> {
    let events = vec![
        (
            "event_workflow_started",
            Event::WorkflowStarted {
                workflow_type: "order-to-cash".into(),
                workflow_id: WorkflowId::new("order-1001"),
                input: p("{\"sku\":\"A-1\",\"qty\":2}"),
                seed: 0x0123_4567_89AB_CDEF,
                start_time: Timestamp(1_700_000_000_000),
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
    ];
    // Fails to compile when a variant is added: give it a fixture too.
    for (_, e) in &events {
        match e {
            Event::WorkflowStarted { .. }
            | Event::ActivationStarted { .. }
            | Event::ActivityScheduled { .. }
            | Event::ActivityCompleted { .. }
            | Event::ActivityFailed { .. }
            | Event::TimerStarted { .. }
            | Event::TimerFired { .. }
            | Event::TimerCancelled { .. }
            | Event::SignalReceived { .. }
            | Event::SideEffectRecorded { .. }
            | Event::WorkflowCompleted { .. }
            | Event::WorkflowFailed { .. } => {}
        }
    }
    events
}

fn run_record_open() -> RunRecord {
    RunRecord {
        workflow_id: WorkflowId::new("order-1001"),
        workflow_type: "order-to-cash".into(),
        status: RunStatus::Running,
        started_at: Timestamp(1_700_000_000_000),
        closed_at: None,
        last_seq: 12,
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
    }
}

fn run_record_closed() -> RunRecord {
    RunRecord {
        status: RunStatus::Failed,
        closed_at: Some(Timestamp(1_700_000_900_000)),
        lease: None,
        pending_timers: Vec::new(),
        pending_activities: Vec::new(),
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
        ..activity_task_scheduled()
    }
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.bin"))
}

fn check<T>(name: &str, expected: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let path = fixture_path(name);
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
fn run_records_match_their_fixtures() {
    check("run_record_open", &run_record_open());
    check("run_record_closed", &run_record_closed());
    check("run_record_completed", &run_record_completed());
}

#[test]
fn activity_task_records_match_their_fixtures() {
    check("activity_task_scheduled", &activity_task_scheduled());
    check("activity_task_running", &activity_task_running());
}
