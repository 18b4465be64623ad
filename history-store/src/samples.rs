//! Sample values for tests, in this crate and in crates that build on it
//! (feature `test-support`): one canonical list of every [`Event`]
//! variant, so a new variant is added to the samples once.

use crate::event::{
    Callsite, EscalationStep, Event, Failure, FailureCause, ParentClosePolicy, ParentRef, Payload,
    SignalRecord, TimeoutKind,
};
use crate::ids::{CommandSeq, RunId, Timestamp, WorkflowId};
use crate::options::{ActivityOptions, RetryPolicy};
use std::time::Duration;

/// A payload holding `s`.
pub fn p(s: &str) -> Payload {
    Payload::from_bytes(s.as_bytes().to_vec())
}

/// A callsite at `file:line:column`.
pub fn site(file: &str, line: u32, column: u32) -> Callsite {
    Callsite {
        file: file.into(),
        line,
        column,
    }
}

/// One of every `Event` variant, with the awkward values each field can
/// hold (binary payloads, sub-millisecond durations, extreme numbers). The
/// match at the end stops compiling when a variant is added without a
/// sample here.
pub fn every_event() -> Vec<Event> {
    let events = vec![
        Event::WorkflowStarted {
            workflow_type: "order-to-cash".into(),
            workflow_id: WorkflowId::new("order-1"),
            input: p(r#"{"sku":"A-1","qty":2}"#),
            seed: u64::MAX,
            start_time: Timestamp(1_700_000_000_000),
            continued_from: Some(RunId(3)),
            parent: Some(ParentRef {
                workflow_id: WorkflowId::new("batch-9"),
                run: RunId(2),
                cmd: CommandSeq(4),
            }),
        },
        Event::ActivationStarted {
            time: Timestamp(1_700_000_000_001),
        },
        Event::ActivityScheduled {
            cmd: CommandSeq(1),
            activity_type: "reserve-stock".into(),
            input: Payload::from_bytes(vec![0, 1, 2, 255]),
            options: ActivityOptions {
                start_to_close: Some(Duration::from_millis(30_500)),
                schedule_to_close: None,
                heartbeat_timeout: Some(Duration::new(5, 123_456_789)),
                retry: RetryPolicy::exponential()
                    .max_attempts(3)
                    .backoff_coefficient(1.5)
                    .max_interval(Duration::MAX)
                    .non_retryable("card-declined")
                    .non_retryable("fraud"),
            },
            callsite: site(r"C:\src\order.rs", 42, 9),
        },
        Event::ActivityCompleted {
            cmd: CommandSeq(1),
            attempt: 2,
            result: p("\"ok\""),
        },
        Event::ActivityFailed {
            cmd: CommandSeq(1),
            attempt: u32::MAX,
            failure: Failure {
                kind: "io".into(),
                message: "connection reset \"quoted\"\n second line".into(),
                non_retryable: true,
                cause: FailureCause::Timeout(TimeoutKind::Heartbeat),
                details: Some(p("[1, 2]")),
            },
        },
        Event::TimerStarted {
            cmd: CommandSeq(2),
            fire_at: Timestamp(u64::MAX),
            callsite: Callsite::default(),
        },
        Event::TimerFired { cmd: CommandSeq(2) },
        Event::TimerCancelled {
            cmd: CommandSeq(u32::MAX),
        },
        Event::SignalReceived {
            name: "approve".into(),
            payload: Payload::default(),
            sender: Some("ops@example.com".into()),
        },
        Event::SideEffectRecorded {
            cmd: CommandSeq(3),
            value: p(r#"{"$bytes":"00"}"#),
            callsite: site("src/lib.rs", 0, 0),
        },
        Event::WorkflowCompleted { result: p(" 42 ") },
        Event::WorkflowFailed {
            failure: Failure {
                details: Some(p("null")),
                ..Failure::application("rejected", "credit check failed")
            },
        },
        Event::PatchMarker {
            patch_id: "fraud-check-v2".into(),
            deprecated: true,
        },
        Event::WorkflowContinuedAsNew {
            input: p(r#"{"cursor":1000}"#),
            seed: 0,
            carried_signals: vec![
                SignalRecord {
                    name: "approve".into(),
                    payload: p("true"),
                    sender: None,
                },
                SignalRecord {
                    name: "note".into(),
                    payload: p("\"é ✓\""),
                    sender: Some("ada".into()),
                },
            ],
        },
        Event::WorkflowCancelRequested {
            reason: "customer withdrew".into(),
            requested_by: Some("support@example.com".into()),
        },
        Event::ActivityCancelRequested { cmd: CommandSeq(1) },
        Event::WorkflowCancelled {
            reason: "customer withdrew".into(),
        },
        Event::WorkflowTerminated {
            reason: String::new(),
            terminated_by: None,
        },
        Event::WorkflowTerminated {
            reason: "duplicate order".into(),
            terminated_by: Some("ops@example.com".into()),
        },
        Event::ActivityFailed {
            cmd: CommandSeq(5),
            attempt: 1,
            failure: Failure::cancelled("no longer wanted"),
        },
        Event::WorkflowFailed {
            failure: Failure::terminated("operator"),
        },
        Event::ChildWorkflowStarted {
            cmd: CommandSeq(6),
            workflow_type: "ship-order".into(),
            workflow_id: WorkflowId::new("order-1/ship"),
            input: p(r#"{"carrier":"dhl"}"#),
            seed: 12_345_678_901_234_567_890,
            parent_close: ParentClosePolicy::RequestCancel,
            callsite: site("src/order.rs", 77, 5),
        },
        Event::ChildWorkflowStarted {
            cmd: CommandSeq(7),
            workflow_type: "audit".into(),
            workflow_id: WorkflowId::new("order-1/audit"),
            input: Payload::default(),
            seed: 1,
            parent_close: ParentClosePolicy::Abandon,
            callsite: Callsite::default(),
        },
        Event::ChildWorkflowCompleted {
            cmd: CommandSeq(6),
            result: p("\"shipped\""),
        },
        Event::ChildWorkflowFailed {
            cmd: CommandSeq(7),
            failure: Failure::terminated("parent closed"),
        },
        Event::ChildWorkflowCancelRequested { cmd: CommandSeq(6) },
        Event::HumanTaskAssigned {
            cmd: CommandSeq(8),
            task: "approve-refund".into(),
            assignee: "ops@example.com".into(),
            form: Some(p(r#"{"amount":"12.50 EUR"}"#)),
            deadline: Some(Timestamp(1_700_000_600_000)),
            level: 0,
            callsite: site("src/order.rs", 90, 9),
            escalations: vec![
                EscalationStep {
                    assignee: "finance-lead".into(),
                    deadline: Some(Duration::from_secs(3600)),
                },
                EscalationStep {
                    assignee: "cfo".into(),
                    deadline: None,
                },
            ],
        },
        Event::HumanTaskAssigned {
            cmd: CommandSeq(9),
            task: "ack".into(),
            assignee: "ann".into(),
            form: Some(p("null")),
            deadline: None,
            level: u32::MAX,
            callsite: Callsite::default(),
            escalations: Vec::new(),
        },
        Event::HumanTaskAssigned {
            cmd: CommandSeq(10),
            task: "ack".into(),
            assignee: "bob".into(),
            form: None,
            deadline: None,
            level: 0,
            callsite: Callsite::default(),
            escalations: Vec::new(),
        },
        Event::HumanTaskReminded {
            cmd: CommandSeq(8),
            assignee: "ops@example.com".into(),
        },
        Event::HumanTaskEscalated {
            cmd: CommandSeq(8),
            from: "ops@example.com".into(),
            to: "head-of-ops@example.com".into(),
            level: 1,
            deadline: Some(Timestamp(1_700_001_200_000)),
        },
        Event::HumanTaskEscalated {
            cmd: CommandSeq(9),
            from: "ann".into(),
            to: "bob".into(),
            level: 2,
            deadline: None,
        },
        Event::HumanTaskDecided {
            cmd: CommandSeq(8),
            decision: p(r#"{"approve":true}"#),
            decided_by: "head-of-ops@example.com".into(),
            comment: Some("customer is right".into()),
            decided_at: Timestamp(1_700_000_900_000),
        },
        Event::HumanTaskDecided {
            cmd: CommandSeq(9),
            decision: Payload::from_bytes(vec![0, 255]),
            decided_by: String::new(),
            comment: None,
            decided_at: Timestamp(0),
        },
        Event::HumanTaskClosed {
            cmd: CommandSeq(10),
            reason: "nobody answered (asked bob); fallback used".into(),
        },
        Event::UpdateRequested {
            update_id: "u-1".into(),
            name: "change-address".into(),
            input: p(r#"{"street":"1 Main St"}"#),
        },
        Event::UpdateAccepted {
            update_id: "u-1".into(),
            name: "change-address".into(),
            input: p(r#"{"street":"1 Main St"}"#),
        },
        Event::UpdateCompleted {
            update_id: "u-1".into(),
            result: p("\"label reprinted\""),
        },
        Event::UpdateFailed {
            update_id: "u-2".into(),
            failure: Failure::application("too-late", "already shipped"),
        },
        Event::HumanTaskClaimed {
            cmd: CommandSeq(10),
            from: "refund-desk".into(),
            claimed_by: "bob".into(),
            claimed_at: Timestamp(1_700_000_700_000),
        },
    ];
    for e in &events {
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
            | Event::WorkflowFailed { .. }
            | Event::PatchMarker { .. }
            | Event::WorkflowContinuedAsNew { .. }
            | Event::WorkflowCancelRequested { .. }
            | Event::ActivityCancelRequested { .. }
            | Event::WorkflowCancelled { .. }
            | Event::WorkflowTerminated { .. }
            | Event::ChildWorkflowStarted { .. }
            | Event::ChildWorkflowCompleted { .. }
            | Event::ChildWorkflowFailed { .. }
            | Event::ChildWorkflowCancelRequested { .. }
            | Event::HumanTaskAssigned { .. }
            | Event::HumanTaskReminded { .. }
            | Event::HumanTaskEscalated { .. }
            | Event::HumanTaskDecided { .. }
            | Event::HumanTaskClosed { .. }
            | Event::UpdateRequested { .. }
            | Event::UpdateAccepted { .. }
            | Event::UpdateCompleted { .. }
            | Event::UpdateFailed { .. }
            | Event::HumanTaskClaimed { .. } => {}
        }
    }
    events
}
