//! The pure replay core, driven with in-memory histories: no store, no
//! worker, no wall clock.

use refrain::replay::{ActivationError, DivergenceKind, WorkflowMachine, WorkflowType};
use refrain::{
    select, Either, Event, Payload, RunId, Signal, Workflow, WorkflowContext, WorkflowError,
};
use refrain_history::{CommandSeq, Timestamp};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use support::{completed, json, machine};

mod support;

support::echo_activity!(Reserve, "reserve");
support::echo_activity!(Charge, "charge");

fn started(workflow_type: &str, input: Payload) -> Event {
    support::started(workflow_type, "wf-1", input, 1_000)
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

thread_local! {
    static RESERVE_LINE: Cell<u32> = const { Cell::new(0) };
    static CHARGE_LINE: Cell<u32> = const { Cell::new(0) };
}

/// reserve → sleep 10 s → charge.
struct Flow;
impl Workflow for Flow {
    const NAME: &'static str = "flow";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, order: String) -> Result<String, WorkflowError> {
        RESERVE_LINE.with(|l| l.set(line!() + 1));
        let r = ctx.activity::<Reserve>(order.clone()).await?;
        ctx.sleep(Duration::from_secs(10)).await;
        let c = ctx.activity::<Charge>(order).await?;
        Ok(format!("{r}+{c}"))
    }
}

/// The same workflow after someone swapped the two activities.
struct FlowSwapped;
impl Workflow for FlowSwapped {
    const NAME: &'static str = "flow";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, order: String) -> Result<String, WorkflowError> {
        CHARGE_LINE.with(|l| l.set(line!() + 1));
        let c = ctx.activity::<Charge>(order.clone()).await?;
        ctx.sleep(Duration::from_secs(10)).await;
        let r = ctx.activity::<Reserve>(order).await?;
        Ok(format!("{r}+{c}"))
    }
}

/// Runs `Flow` to completion, activation by activation, and returns the
/// full history it recorded.
fn record_flow() -> Vec<Event> {
    let first = started("flow", json(&"o-1"));
    let mut m = machine::<Flow>(&first);
    let mut history = vec![first];
    let a1 = m.activate(Timestamp(1_001), vec![]).unwrap();
    assert_eq!(kinds(&a1), ["ActivationStarted", "ActivityScheduled"]);
    history.extend(a1);
    let a2 = m
        .activate(Timestamp(1_002), vec![completed(1, "r")])
        .unwrap();
    assert_eq!(
        kinds(&a2),
        ["ActivationStarted", "ActivityCompleted", "TimerStarted"]
    );
    let Event::TimerStarted { fire_at, .. } = &a2[2] else {
        unreachable!()
    };
    assert_eq!(*fire_at, Timestamp(11_002), "timer counts from ctx.now()");
    history.extend(a2);
    let a3 = m
        .activate(
            Timestamp(11_002),
            vec![Event::TimerFired { cmd: CommandSeq(2) }],
        )
        .unwrap();
    assert_eq!(
        kinds(&a3),
        ["ActivationStarted", "TimerFired", "ActivityScheduled"]
    );
    history.extend(a3);
    let a4 = m
        .activate(Timestamp(11_003), vec![completed(3, "c")])
        .unwrap();
    assert_eq!(
        a4[2],
        Event::WorkflowCompleted {
            result: json(&"r+c")
        }
    );
    history.extend(a4);
    assert!(m.is_closed());
    assert_eq!(m.last_seq().0, history.len() as u64);
    history
}

#[test]
fn a_recorded_history_replays_to_the_same_end() {
    let history = record_flow();
    let mut m = machine::<Flow>(&history[0]);
    m.replay(&history[1..]).unwrap();
    assert!(m.is_closed());
    assert_eq!(m.last_seq().0, history.len() as u64);
}

#[test]
fn replay_can_resume_midway_and_continue_live() {
    let history = record_flow();
    // Replay the first two activations, then run the rest live: the
    // result must be the history already recorded.
    let mut m = machine::<Flow>(&history[0]);
    m.replay(&history[1..6]).unwrap();
    let a3 = m
        .activate(
            Timestamp(11_002),
            vec![Event::TimerFired { cmd: CommandSeq(2) }],
        )
        .unwrap();
    assert_eq!(a3[1..], history[7..9]);
}

#[test]
fn swapped_activities_are_reported_with_position_types_and_both_lines() {
    let history = record_flow();
    let mut m = machine::<FlowSwapped>(&history[0]);
    let err = m.replay(&history[1..]).unwrap_err();
    let ActivationError::Nondeterminism(e) = err else {
        panic!("expected nondeterminism, got {err:?}")
    };
    assert_eq!(e.kind, DivergenceKind::Mismatch);
    assert_eq!(
        e.position, 3,
        "WorkflowStarted, ActivationStarted, then cmd 1"
    );
    assert_eq!(e.activation, 1);
    let expected = e.expected.as_ref().unwrap();
    let produced = e.produced.as_ref().unwrap();
    assert_eq!(expected.name.as_deref(), Some("reserve"));
    assert_eq!(produced.name.as_deref(), Some("charge"));
    let expected_site = expected.callsite.as_ref().unwrap();
    let produced_site = produced.callsite.as_ref().unwrap();
    assert!(expected_site.file.ends_with("replay_core.rs"));
    assert_eq!(expected_site.line, RESERVE_LINE.with(Cell::get));
    assert_eq!(produced_site.line, CHARGE_LINE.with(Cell::get));
    let text = e.to_string();
    assert!(text.contains("history position 3"), "{text}");
    assert!(
        text.contains("ctx.patched"),
        "the hint names the fix: {text}"
    );
}

#[test]
fn a_removed_command_is_reported_as_missing() {
    struct Shorter;
    impl Workflow for Shorter {
        const NAME: &'static str = "flow";
        type Input = String;
        type Output = String;
        async fn run(ctx: WorkflowContext, order: String) -> Result<String, WorkflowError> {
            let r = ctx.activity::<Reserve>(order).await?;
            Ok(r)
        }
    }
    let history = record_flow();
    let err = machine::<Shorter>(&history[0])
        .replay(&history[1..])
        .unwrap_err();
    let ActivationError::Nondeterminism(e) = err else {
        panic!("{err:?}")
    };
    // Activation 2 recorded TimerStarted; the new code completes instead.
    assert_eq!(e.activation, 2);
    assert_eq!(e.expected.as_ref().unwrap().kind, "TimerStarted");
    assert_eq!(e.produced.as_ref().unwrap().kind, "WorkflowCompleted");
}

/// select over an activity and a timer.
struct Race;
impl Workflow for Race {
    const NAME: &'static str = "race";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let act = ctx.activity::<Reserve>("x".into());
        let timer = ctx.sleep(Duration::from_secs(1));
        Ok(match select(act, timer).await {
            Either::Left(r) => format!("activity {}", r?),
            Either::Right(()) => "timer".into(),
        })
    }
}

#[test]
fn select_with_both_results_in_one_batch_picks_the_same_winner_on_replay() {
    let first = started("race", json(&()));
    let mut m = machine::<Race>(&first);
    let mut history = vec![first];
    history.extend(m.activate(Timestamp(2_000), vec![]).unwrap());
    // The timer's event arrived before the activity's, in the same batch.
    let batch = vec![Event::TimerFired { cmd: CommandSeq(2) }, completed(1, "r")];
    let a2 = m.activate(Timestamp(3_000), batch).unwrap();
    assert_eq!(
        a2.last(),
        Some(&Event::WorkflowCompleted {
            result: json(&"activity r")
        }),
        "select is biased to its first branch when both are ready"
    );
    history.extend(a2);
    for _ in 0..3 {
        let mut again = machine::<Race>(&history[0]);
        again.replay(&history[1..]).unwrap();
        assert!(again.is_closed());
    }
}

#[derive(Serialize, Deserialize)]
struct Approve(bool);
impl Signal for Approve {
    const NAME: &'static str = "approve";
}

/// Waits for approval for an hour.
struct Approval;
impl Workflow for Approval {
    const NAME: &'static str = "approval";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        Ok(
            match ctx
                .wait_signal_for::<Approve>(Duration::from_secs(3600))
                .await?
            {
                Some(Approve(true)) => "approved".into(),
                Some(Approve(false)) => "rejected".into(),
                None => "timed out".into(),
            },
        )
    }
}

#[test]
fn a_signal_before_the_deadline_cancels_the_deadline_timer() {
    let first = started("approval", json(&()));
    let mut m = machine::<Approval>(&first);
    let a1 = m.activate(Timestamp(2_000), vec![]).unwrap();
    assert_eq!(kinds(&a1), ["ActivationStarted", "TimerStarted"]);
    let signal = Event::SignalReceived {
        name: "approve".into(),
        payload: json(&Approve(true)),
        sender: Some("manager".into()),
    };
    let a2 = m.activate(Timestamp(3_000), vec![signal]).unwrap();
    assert_eq!(
        kinds(&a2),
        [
            "ActivationStarted",
            "SignalReceived",
            "TimerCancelled",
            "WorkflowCompleted"
        ]
    );
    assert_eq!(
        a2[3],
        Event::WorkflowCompleted {
            result: json(&"approved")
        }
    );
}

#[test]
fn the_deadline_fires_when_no_signal_comes() {
    let first = started("approval", json(&()));
    let mut m = machine::<Approval>(&first);
    m.activate(Timestamp(2_000), vec![]).unwrap();
    let a2 = m
        .activate(
            Timestamp(3_602_000),
            vec![Event::TimerFired { cmd: CommandSeq(1) }],
        )
        .unwrap();
    assert_eq!(
        a2[2],
        Event::WorkflowCompleted {
            result: json(&"timed out")
        }
    );
}

static SIDE_EFFECT_CALLS: AtomicU32 = AtomicU32::new(0);

/// Uses every deterministic helper.
struct Helpers;
impl Workflow for Helpers {
    const NAME: &'static str = "helpers";
    type Input = ();
    type Output = (u64, String, u32, u64);
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(u64, String, u32, u64), WorkflowError> {
        let n = ctx.random();
        let id = ctx.uuid();
        let v = ctx.side_effect(|| SIDE_EFFECT_CALLS.fetch_add(1, Ordering::SeqCst) + 100);
        let now = ctx.now().duration_since(std::time::UNIX_EPOCH).unwrap();
        Ok((n, id, v, now.as_millis() as u64))
    }
}

#[test]
fn random_uuid_side_effect_and_now_replay_identically() {
    let first = started("helpers", json(&()));
    let mut m = machine::<Helpers>(&first);
    let a1 = m.activate(Timestamp(5_000), vec![]).unwrap();
    let calls = SIDE_EFFECT_CALLS.load(Ordering::SeqCst);
    let Event::WorkflowCompleted { result } = a1.last().unwrap() else {
        panic!("{a1:?}")
    };
    let (_, uuid, v, now): (u64, String, u32, u64) =
        serde_json::from_slice(result.as_bytes()).unwrap();
    assert_eq!(now, 5_000);
    assert_eq!(v, calls - 1 + 100);
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4", "version-4 UUID");
    let mut history = vec![first];
    history.extend(a1);
    let mut again = machine::<Helpers>(&history[0]);
    again.replay(&history[1..]).unwrap();
    assert_eq!(
        SIDE_EFFECT_CALLS.load(Ordering::SeqCst),
        calls,
        "replay returns the recorded side effect without calling the closure"
    );
}

#[test]
fn tokio_sleep_in_a_workflow_is_reported_as_nondeterministic() {
    struct Sleepy;
    impl Workflow for Sleepy {
        const NAME: &'static str = "sleepy";
        type Input = ();
        type Output = ();
        async fn run(_: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(())
        }
    }
    let first = started("sleepy", json(&()));
    let err = machine::<Sleepy>(&first)
        .activate(Timestamp(1), vec![])
        .unwrap_err();
    let ActivationError::Nondeterminism(e) = err else {
        panic!("{err:?}")
    };
    let DivergenceKind::NonDeterministicCall(what) = &e.kind else {
        panic!("{e:?}")
    };
    assert!(what.contains("tokio::time::sleep"), "{what}");
    assert!(e.to_string().contains("ctx.sleep"), "hint names the fix");
}

#[test]
fn awaiting_a_foreign_future_is_reported() {
    struct Foreign;
    impl Workflow for Foreign {
        const NAME: &'static str = "foreign";
        type Input = ();
        type Output = ();
        async fn run(_: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            std::mem::forget(tx);
            let _ = rx.await;
            Ok(())
        }
    }
    let first = started("foreign", json(&()));
    let err = machine::<Foreign>(&first)
        .activate(Timestamp(1), vec![])
        .unwrap_err();
    assert!(err.to_string().contains("does not control"), "{err}");
}

#[test]
fn a_panicking_workflow_is_an_activation_error_not_a_crash() {
    struct Boom;
    impl Workflow for Boom {
        const NAME: &'static str = "boom";
        type Input = ();
        type Output = ();
        async fn run(_: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
            panic!("bad deploy")
        }
    }
    let first = started("boom", json(&()));
    let err = machine::<Boom>(&first)
        .activate(Timestamp(1), vec![])
        .unwrap_err();
    let ActivationError::Panicked { message } = err else {
        panic!("{err:?}")
    };
    assert_eq!(message, "bad deploy");
}

#[test]
fn a_history_of_another_type_is_rejected() {
    let first = started("something-else", json(&"o-1"));
    let err = WorkflowMachine::new(&WorkflowType::<Flow>::new(), RunId(1), &first)
        .err()
        .unwrap();
    assert!(matches!(
        err,
        ActivationError::InvalidHistory { position: 1, .. }
    ));
}

#[test]
fn a_workflow_error_is_recorded_as_workflow_failed() {
    struct Fails;
    impl Workflow for Fails {
        const NAME: &'static str = "fails";
        type Input = ();
        type Output = ();
        async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
            ctx.activity::<Reserve>("x".into()).await?;
            Ok(())
        }
    }
    let first = started("fails", json(&()));
    let mut m = machine::<Fails>(&first);
    m.activate(Timestamp(1), vec![]).unwrap();
    let failure = refrain::Failure::application("out-of-stock", "no stock");
    let a2 = m
        .activate(
            Timestamp(2),
            vec![Event::ActivityFailed {
                cmd: CommandSeq(1),
                attempt: 3,
                failure,
            }],
        )
        .unwrap();
    let Event::WorkflowFailed { failure } = a2.last().unwrap() else {
        panic!("{a2:?}")
    };
    assert_eq!(failure.kind, "activity-failed");
    assert!(
        failure.message.contains("after 3 attempts"),
        "{}",
        failure.message
    );
}

#[test]
fn a_history_terminated_after_an_activation_replays_as_closed() {
    let mut history = record_flow();
    // Cut after activation 2 and terminate, as the store does.
    history.truncate(6);
    history.push(Event::WorkflowTerminated {
        reason: "duplicate".into(),
        terminated_by: None,
    });
    let mut m = machine::<Flow>(&history[0]);
    m.replay(&history[1..]).unwrap();
    assert!(m.is_closed());
    assert_eq!(m.last_seq().0, history.len() as u64);
}

#[test]
fn misuse_found_during_replay_points_at_its_activation() {
    /// Waits on a foreign future only from its second activation on.
    struct LateForeign;
    impl Workflow for LateForeign {
        const NAME: &'static str = "late-foreign";
        type Input = ();
        type Output = ();
        async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
            ctx.activity::<Reserve>("x".into()).await?;
            if !ctx.is_replaying() {
                ctx.activity::<Charge>("y".into()).await?;
                return Ok(());
            }
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            std::mem::forget(tx);
            let _ = rx.await;
            Ok(())
        }
    }
    let first = started("late-foreign", json(&()));
    let mut m = machine::<LateForeign>(&first);
    let mut h = vec![first];
    h.extend(m.activate(Timestamp(1), vec![]).unwrap());
    h.extend(m.activate(Timestamp(2), vec![completed(1, "r")]).unwrap());
    let err = machine::<LateForeign>(&h[0]).replay(&h[1..]).unwrap_err();
    let ActivationError::Nondeterminism(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.activation, 2);
    assert_eq!(e.position, 4, "activation 2 starts at event 4");
}

/// A call whose input has no JSON form (map keys must be strings): it
/// fails at once and is never scheduled.
struct Audit;
#[refrain::async_trait]
impl refrain::Activity for Audit {
    const NAME: &'static str = "audit";
    type Input = std::collections::BTreeMap<(u8, u8), u8>;
    type Output = ();
    async fn run(
        &self,
        _: refrain::ActivityContext,
        _: Self::Input,
    ) -> Result<(), refrain::ActivityError> {
        Ok(())
    }
}

/// Awaits a call that cannot be scheduled, handles its error, goes on.
struct AuditThenReserve;
impl Workflow for AuditThenReserve {
    const NAME: &'static str = "audit-then-reserve";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, order: String) -> Result<String, WorkflowError> {
        let audit = ctx
            .activity::<Audit>(std::collections::BTreeMap::from([((1, 2), 3)]))
            .await;
        let failed = audit.expect_err("an input without a JSON form cannot be scheduled");
        let reserved = ctx.activity::<Reserve>(order).await?;
        Ok(format!("{}:{reserved}", failed.failure.kind))
    }
}

/// Regression: dropping the awaited future of a call that was never
/// scheduled recorded an `ActivityCancelRequested` for a command that no
/// event had ever scheduled.
#[test]
fn a_call_that_was_never_scheduled_is_not_cancelled_when_its_future_drops() {
    let first = started("audit-then-reserve", json(&"o-1"));
    let mut m = machine::<AuditThenReserve>(&first);
    let commands = m.activate(Timestamp(2_000), Vec::new()).unwrap();
    assert_eq!(
        kinds(&commands),
        ["ActivationStarted", "ActivityScheduled"],
        "{commands:?}"
    );
    let closing = m
        .activate(Timestamp(3_000), vec![completed(2, "r")])
        .unwrap();
    assert!(m.is_closed());
    assert!(
        !closing
            .iter()
            .any(|e| matches!(e, Event::ActivityCancelRequested { .. })),
        "{closing:?}"
    );
}
