//! Nondeterminism fixtures: the exact report replay gives for each common
//! way workflow code drifts from the histories it recorded.
//!
//! One workflow, `fulfil`, records a history on the pure replay core
//! (no store, no worker, no wall clock):
//!
//! ```text
//! seq  1  WorkflowStarted
//!      2  ActivationStarted                      activation 1
//!      3  ActivityScheduled reserve (cmd 1)
//!      4  ActivationStarted                      activation 2
//!      5  ActivityCompleted (cmd 1)
//!      6  ActivityScheduled charge (cmd 2)       } in parallel (join)
//!      7  ActivityScheduled notify-customer (cmd 3) }
//!      8  ActivationStarted                      activation 3
//!      9  ActivityCompleted (cmd 2)
//!     10  ActivityCompleted (cmd 3)
//!     11  TimerStarted (cmd 4)                   wait an hour for pickup
//!     12  ActivationStarted                      activation 4
//!     13  TimerFired (cmd 4)
//!     14  ActivityScheduled ship (cmd 5)
//!     15  ActivationStarted                      activation 5
//!     16  ActivityCompleted (cmd 5)
//!     17  WorkflowCompleted
//! ```
//!
//! and each fixture replays it through a changed version of the code and
//! asserts the whole [`NondeterminismError`]: divergence kind, history
//! position, activation, the recorded and the produced command (kind,
//! name, input digest, command number, and source line, captured with
//! `line!()` next to each call), how many later commands of the activation
//! also differ, and the rendered text an operator reads. A separate
//! `checkout` workflow covers removing a `ctx.patched` guard while runs
//! that took the old path are still around.

use refrain::replay::{
    ActivationError, CommandSummary, DivergenceKind, NondeterminismError, WorkflowMachine,
};
use refrain::{join, Event, RunId, Workflow, WorkflowContext, WorkflowError};
use refrain_history::{Callsite, Timestamp};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use support::{json, machine};

mod support;

support::echo_activity!(Reserve, "reserve");
support::echo_activity!(Charge, "charge");
support::echo_activity!(NotifyCustomer, "notify-customer");
support::echo_activity!(Ship, "ship");
support::echo_activity!(FraudCheck, "fraud-check");
support::echo_activity!(Dispatch, "dispatch");
support::echo_activity!(AwaitPickup, "await-pickup");

/// The source line of one call, written by the workflow as it runs (the
/// same value every time), read by the assertions.
struct Line(AtomicU32);

impl Line {
    const fn new() -> Self {
        Line(AtomicU32::new(0))
    }
    fn set(&self, line: u32) {
        self.0.store(line, Ordering::Relaxed);
    }
    fn get(&self) -> u32 {
        let line = self.0.load(Ordering::Relaxed);
        assert_ne!(line, 0, "the call's line was never recorded");
        line
    }
}

const ORDER: &str = "o-1";
const HINT: &str = "  hint: if this change is intended, guard it so that runs started before it keep the old path: `if ctx.patched(\"my-change\") { new code } else { old code }`; otherwise deploy code that matches the history";

/// The digest reports show for an activity input of `ORDER`.
fn order_digest() -> u32 {
    json(&ORDER).digest()
}

fn started(workflow_type: &str) -> Event {
    support::started(workflow_type, "order-1", json(&ORDER), 1_000)
}

/// Runs `m` live after `history`, activation by activation, until the
/// workflow returns or `activations` have run, appending what each
/// activation recorded. Every activity completes in the activation after
/// the one that scheduled it, and every timer fires when it is due; the
/// first batch answers the commands of the last activation already in
/// `history`, so a run recorded by one version can be continued by another.
fn run_live(m: &mut WorkflowMachine, history: &mut Vec<Event>, activations: usize) {
    let last = history
        .iter()
        .rposition(|e| matches!(e, Event::ActivationStarted { .. }));
    let mut now = match last.map(|i| &history[i]) {
        Some(Event::ActivationStarted { time }) => time.0 + 1,
        _ => 2_000,
    };
    let mut inbound = last.map_or_else(Vec::new, |i| answers(&history[i..], &mut now));
    for _ in 0..activations {
        if m.is_closed() {
            return;
        }
        let events = m.activate(Timestamp(now), inbound).unwrap();
        now += 1;
        inbound = answers(&events, &mut now);
        history.extend(events);
    }
}

/// The inbound events that answer the commands in `events`; moves `now`
/// to when the last timer among them is due.
fn answers(events: &[Event], now: &mut u64) -> Vec<Event> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ActivityScheduled { cmd, .. } => Some(Event::ActivityCompleted {
                cmd: *cmd,
                attempt: 1,
                result: json(&"ok"),
            }),
            Event::TimerStarted { cmd, fire_at, .. } => {
                *now = (*now).max(fire_at.0);
                Some(Event::TimerFired { cmd: *cmd })
            }
            _ => None,
        })
        .collect()
}

/// Replays `history` through `W` and returns the nondeterminism report.
fn replay_fails<W: Workflow>(history: &[Event]) -> NondeterminismError {
    match machine::<W>(&history[0]).replay(&history[1..]) {
        Err(ActivationError::Nondeterminism(e)) => *e,
        Err(other) => panic!("expected nondeterminism, got {other}"),
        Ok(()) => panic!("the changed code replayed the history without complaint"),
    }
}

/// The callsite at `line` of this file; its column is taken from
/// `reported`, after checking that file and line are the ones reported.
fn site(reported: Option<&CommandSummary>, line: u32) -> Callsite {
    let reported = reported
        .and_then(|c| c.callsite.clone())
        .expect("the report names a source location");
    assert_eq!(reported.file, file!(), "{reported}");
    assert_eq!(reported.line, line, "{reported}");
    Callsite {
        file: file!().into(),
        line,
        column: reported.column,
    }
}

/// An activity command as a report summarizes it.
fn activity(name: &str, cmd: u32, callsite: Callsite) -> CommandSummary {
    CommandSummary {
        kind: "ActivityScheduled",
        name: Some(name.into()),
        input_digest: Some(order_digest()),
        cmd: Some(cmd),
        callsite: Some(callsite),
    }
}

/// Where each call of `Fulfil` is.
struct FulfilLines {
    reserve: Line,
    charge: Line,
    notify: Line,
    timer: Line,
    ship: Line,
}

static FULFIL: FulfilLines = FulfilLines {
    reserve: Line::new(),
    charge: Line::new(),
    notify: Line::new(),
    timer: Line::new(),
    ship: Line::new(),
};

/// The recorded version: reserve; charge and notify the customer in
/// parallel; wait an hour for pickup; ship.
struct Fulfil;
impl Workflow for Fulfil {
    const NAME: &'static str = "fulfil";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        FULFIL.reserve.set(line!() + 1);
        let r = ctx.activity::<Reserve>(o.clone()).await?;
        FULFIL.charge.set(line!() + 1);
        let charge = ctx.activity::<Charge>(o.clone());
        FULFIL.notify.set(line!() + 1);
        let notify = ctx.activity::<NotifyCustomer>(o.clone());
        let (c, n) = join(charge, notify).await;
        let (c, n) = (c?, n?);
        FULFIL.timer.set(line!() + 1);
        ctx.sleep(Duration::from_secs(3600)).await;
        FULFIL.ship.set(line!() + 1);
        let s = ctx.activity::<Ship>(o).await?;
        Ok(format!("{r}+{c}+{n}+{s}"))
    }
}

/// The history `Fulfil` records, checked against the layout in the module
/// docs so that the positions asserted below mean what they say.
fn fulfil_history() -> Vec<Event> {
    let first = started("fulfil");
    let mut m = machine::<Fulfil>(&first);
    let mut history = vec![first];
    run_live(&mut m, &mut history, 10);
    assert!(m.is_closed());
    let layout: Vec<String> = history
        .iter()
        .map(|e| match e {
            Event::ActivityScheduled {
                cmd, activity_type, ..
            } => format!("{} {activity_type} ({cmd})", e.kind()),
            Event::ActivityCompleted { cmd, .. }
            | Event::TimerStarted { cmd, .. }
            | Event::TimerFired { cmd } => format!("{} ({cmd})", e.kind()),
            _ => e.kind().to_owned(),
        })
        .collect();
    assert_eq!(
        layout,
        [
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled reserve (cmd 1)",
            "ActivationStarted",
            "ActivityCompleted (cmd 1)",
            "ActivityScheduled charge (cmd 2)",
            "ActivityScheduled notify-customer (cmd 3)",
            "ActivationStarted",
            "ActivityCompleted (cmd 2)",
            "ActivityCompleted (cmd 3)",
            "TimerStarted (cmd 4)",
            "ActivationStarted",
            "TimerFired (cmd 4)",
            "ActivityScheduled ship (cmd 5)",
            "ActivationStarted",
            "ActivityCompleted (cmd 5)",
            "WorkflowCompleted",
        ]
    );
    history
}

#[test]
fn the_recorded_history_replays_on_unchanged_code() {
    let history = fulfil_history();
    let mut m = machine::<Fulfil>(&history[0]);
    m.replay(&history[1..]).unwrap();
    assert!(m.is_closed());
}

// ----- reordered activities -----

static REORDERED_NOTIFY: Line = Line::new();

/// The customer is now notified before the payment is taken: the two
/// parallel activities are issued in the other order.
struct FulfilReordered;
impl Workflow for FulfilReordered {
    const NAME: &'static str = "fulfil";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        let r = ctx.activity::<Reserve>(o.clone()).await?;
        REORDERED_NOTIFY.set(line!() + 1);
        let notify = ctx.activity::<NotifyCustomer>(o.clone());
        let charge = ctx.activity::<Charge>(o.clone());
        let (n, c) = join(notify, charge).await;
        let (c, n) = (c?, n?);
        ctx.sleep(Duration::from_secs(3600)).await;
        let s = ctx.activity::<Ship>(o).await?;
        Ok(format!("{r}+{c}+{n}+{s}"))
    }
}

#[test]
fn reordered_activities() {
    let e = replay_fails::<FulfilReordered>(&fulfil_history());
    let recorded = site(e.expected.as_ref(), FULFIL.charge.get());
    let produced = site(e.produced.as_ref(), REORDERED_NOTIFY.get());
    assert_eq!(
        e,
        NondeterminismError {
            workflow_type: "fulfil".into(),
            workflow_id: "order-1".into(),
            run: RunId(1),
            activation: 2,
            position: 6,
            kind: DivergenceKind::Mismatch,
            expected: Some(activity("charge", 2, recorded.clone())),
            produced: Some(activity("notify-customer", 2, produced.clone())),
            // cmd 3: notify-customer recorded, charge produced.
            later_differences: 1,
        }
    );
    let d = order_digest();
    assert_eq!(
        e.to_string(),
        format!(
            "nondeterminism in workflow order-1 (fulfil, run-1) at history position 6, activation 2:\n  \
             the code produced a different command than history recorded\n  \
             recorded: ActivityScheduled \"charge\" (cmd 2) input#{d:08x} at {recorded}\n  \
             produced: ActivityScheduled \"notify-customer\" (cmd 2) input#{d:08x} at {produced}\n  \
             1 later command(s) of this activation also differ\n{HINT}"
        )
    );
}

// ----- an inserted activity -----

static INSERTED: Line = Line::new();

/// A fraud check now runs between the reservation and the payment.
struct FulfilInserted;
impl Workflow for FulfilInserted {
    const NAME: &'static str = "fulfil";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        let r = ctx.activity::<Reserve>(o.clone()).await?;
        INSERTED.set(line!() + 1);
        ctx.activity::<FraudCheck>(o.clone()).await?;
        let charge = ctx.activity::<Charge>(o.clone());
        let notify = ctx.activity::<NotifyCustomer>(o.clone());
        let (c, n) = join(charge, notify).await;
        let (c, n) = (c?, n?);
        ctx.sleep(Duration::from_secs(3600)).await;
        let s = ctx.activity::<Ship>(o).await?;
        Ok(format!("{r}+{c}+{n}+{s}"))
    }
}

#[test]
fn an_inserted_activity() {
    let e = replay_fails::<FulfilInserted>(&fulfil_history());
    let recorded = site(e.expected.as_ref(), FULFIL.charge.get());
    let produced = site(e.produced.as_ref(), INSERTED.get());
    assert_eq!(
        e,
        NondeterminismError {
            workflow_type: "fulfil".into(),
            workflow_id: "order-1".into(),
            run: RunId(1),
            activation: 2,
            position: 6,
            kind: DivergenceKind::Mismatch,
            expected: Some(activity("charge", 2, recorded.clone())),
            produced: Some(activity("fraud-check", 2, produced.clone())),
            // notify-customer (cmd 3) was recorded; the new code, waiting
            // for the fraud check, produced nothing more.
            later_differences: 1,
        }
    );
    let d = order_digest();
    assert_eq!(
        e.to_string(),
        format!(
            "nondeterminism in workflow order-1 (fulfil, run-1) at history position 6, activation 2:\n  \
             the code produced a different command than history recorded\n  \
             recorded: ActivityScheduled \"charge\" (cmd 2) input#{d:08x} at {recorded}\n  \
             produced: ActivityScheduled \"fraud-check\" (cmd 2) input#{d:08x} at {produced}\n  \
             1 later command(s) of this activation also differ\n{HINT}"
        )
    );
}

// ----- a removed activity -----

/// The customer is no longer notified.
struct FulfilRemoved;
impl Workflow for FulfilRemoved {
    const NAME: &'static str = "fulfil";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        let r = ctx.activity::<Reserve>(o.clone()).await?;
        let c = ctx.activity::<Charge>(o.clone()).await?;
        ctx.sleep(Duration::from_secs(3600)).await;
        let s = ctx.activity::<Ship>(o).await?;
        Ok(format!("{r}+{c}+{s}"))
    }
}

#[test]
fn a_removed_activity() {
    let e = replay_fails::<FulfilRemoved>(&fulfil_history());
    let recorded = site(e.expected.as_ref(), FULFIL.notify.get());
    assert_eq!(
        e,
        NondeterminismError {
            workflow_type: "fulfil".into(),
            workflow_id: "order-1".into(),
            run: RunId(1),
            activation: 2,
            // charge (seq 6) still matches; notify-customer (seq 7) is gone.
            position: 7,
            kind: DivergenceKind::Missing,
            expected: Some(activity("notify-customer", 3, recorded.clone())),
            produced: None,
            later_differences: 0,
        }
    );
    let d = order_digest();
    assert_eq!(
        e.to_string(),
        format!(
            "nondeterminism in workflow order-1 (fulfil, run-1) at history position 7, activation 2:\n  \
             history recorded a command that the code no longer produces\n  \
             recorded: ActivityScheduled \"notify-customer\" (cmd 3) input#{d:08x} at {recorded}\n  \
             produced: nothing\n{HINT}"
        )
    );
}

// ----- a changed activity type -----

static CHANGED: Line = Line::new();

/// Shipping now goes through a dispatch service, a different activity
/// type at the same place.
struct FulfilChangedType;
impl Workflow for FulfilChangedType {
    const NAME: &'static str = "fulfil";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        let r = ctx.activity::<Reserve>(o.clone()).await?;
        let charge = ctx.activity::<Charge>(o.clone());
        let notify = ctx.activity::<NotifyCustomer>(o.clone());
        let (c, n) = join(charge, notify).await;
        let (c, n) = (c?, n?);
        ctx.sleep(Duration::from_secs(3600)).await;
        CHANGED.set(line!() + 1);
        let s = ctx.activity::<Dispatch>(o).await?;
        Ok(format!("{r}+{c}+{n}+{s}"))
    }
}

#[test]
fn a_changed_activity_type() {
    let e = replay_fails::<FulfilChangedType>(&fulfil_history());
    let recorded = site(e.expected.as_ref(), FULFIL.ship.get());
    let produced = site(e.produced.as_ref(), CHANGED.get());
    assert_eq!(
        e,
        NondeterminismError {
            workflow_type: "fulfil".into(),
            workflow_id: "order-1".into(),
            run: RunId(1),
            activation: 4,
            position: 14,
            kind: DivergenceKind::Mismatch,
            expected: Some(activity("ship", 5, recorded.clone())),
            produced: Some(activity("dispatch", 5, produced.clone())),
            later_differences: 0,
        }
    );
    let d = order_digest();
    assert_eq!(
        e.to_string(),
        format!(
            "nondeterminism in workflow order-1 (fulfil, run-1) at history position 14, activation 4:\n  \
             the code produced a different command than history recorded\n  \
             recorded: ActivityScheduled \"ship\" (cmd 5) input#{d:08x} at {recorded}\n  \
             produced: ActivityScheduled \"dispatch\" (cmd 5) input#{d:08x} at {produced}\n{HINT}"
        )
    );
}

// ----- a timer replaced by an activity -----

static REPLACED_TIMER: Line = Line::new();

/// Instead of waiting an hour, the workflow asks the carrier when the
/// parcel was picked up.
struct FulfilTimerReplaced;
impl Workflow for FulfilTimerReplaced {
    const NAME: &'static str = "fulfil";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        let r = ctx.activity::<Reserve>(o.clone()).await?;
        let charge = ctx.activity::<Charge>(o.clone());
        let notify = ctx.activity::<NotifyCustomer>(o.clone());
        let (c, n) = join(charge, notify).await;
        let (c, n) = (c?, n?);
        REPLACED_TIMER.set(line!() + 1);
        ctx.activity::<AwaitPickup>(o.clone()).await?;
        let s = ctx.activity::<Ship>(o).await?;
        Ok(format!("{r}+{c}+{n}+{s}"))
    }
}

#[test]
fn a_timer_replaced_by_an_activity() {
    let e = replay_fails::<FulfilTimerReplaced>(&fulfil_history());
    let recorded = site(e.expected.as_ref(), FULFIL.timer.get());
    let produced = site(e.produced.as_ref(), REPLACED_TIMER.get());
    assert_eq!(
        e,
        NondeterminismError {
            workflow_type: "fulfil".into(),
            workflow_id: "order-1".into(),
            run: RunId(1),
            activation: 3,
            position: 11,
            kind: DivergenceKind::Mismatch,
            expected: Some(CommandSummary {
                kind: "TimerStarted",
                name: None,
                input_digest: None,
                cmd: Some(4),
                callsite: Some(recorded.clone()),
            }),
            produced: Some(activity("await-pickup", 4, produced.clone())),
            later_differences: 0,
        }
    );
    let d = order_digest();
    assert_eq!(
        e.to_string(),
        format!(
            "nondeterminism in workflow order-1 (fulfil, run-1) at history position 11, activation 3:\n  \
             the code produced a different command than history recorded\n  \
             recorded: TimerStarted (cmd 4) at {recorded}\n  \
             produced: ActivityScheduled \"await-pickup\" (cmd 4) input#{d:08x} at {produced}\n{HINT}"
        )
    );
}

// ----- a removed patch -----

static CHECKOUT_V1_SHIP: Line = Line::new();
static CHECKOUT_V3_FRAUD_CHECK: Line = Line::new();

/// Version 1: charge, ship, notify the customer.
struct CheckoutV1;
impl Workflow for CheckoutV1 {
    const NAME: &'static str = "checkout";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        ctx.activity::<Charge>(o.clone()).await?;
        CHECKOUT_V1_SHIP.set(line!() + 1);
        ctx.activity::<Ship>(o.clone()).await?;
        ctx.activity::<NotifyCustomer>(o).await?;
        Ok("shipped".into())
    }
}

/// Version 2: a fraud check before shipping, guarded by a patch so that
/// runs already past the payment keep the old path.
struct CheckoutV2;
impl Workflow for CheckoutV2 {
    const NAME: &'static str = "checkout";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        ctx.activity::<Charge>(o.clone()).await?;
        if ctx.patched("fraud-check") {
            ctx.activity::<FraudCheck>(o.clone()).await?;
        }
        ctx.activity::<Ship>(o.clone()).await?;
        ctx.activity::<NotifyCustomer>(o).await?;
        Ok("shipped".into())
    }
}

/// Version 3: the patch removed, keeping only the new path, while a run
/// that took the old path still has to replay.
struct CheckoutV3;
impl Workflow for CheckoutV3 {
    const NAME: &'static str = "checkout";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        ctx.activity::<Charge>(o.clone()).await?;
        CHECKOUT_V3_FRAUD_CHECK.set(line!() + 1);
        ctx.activity::<FraudCheck>(o.clone()).await?;
        ctx.activity::<Ship>(o.clone()).await?;
        ctx.activity::<NotifyCustomer>(o).await?;
        Ok("shipped".into())
    }
}

fn names(history: &[Event]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match e {
            Event::ActivityScheduled { activity_type, .. } => Some(activity_type.clone()),
            Event::PatchMarker { patch_id, .. } => Some(format!("patch:{patch_id}")),
            _ => None,
        })
        .collect()
}

/// A run V1 started and took up to scheduling the shipment; V2, deployed
/// then, replayed it (`ctx.patched("fraud-check")` is false in replay:
/// the run had passed that point without the marker) and finished it on
/// the old path.
fn checkout_old_path_history() -> Vec<Event> {
    let first = started("checkout");
    let mut v1 = machine::<CheckoutV1>(&first);
    let mut history = vec![first];
    run_live(&mut v1, &mut history, 2);
    assert_eq!(
        names(&history),
        ["charge", "ship"],
        "V1 is waiting for ship"
    );
    let mut v2 = machine::<CheckoutV2>(&history[0]);
    v2.replay(&history[1..]).unwrap();
    run_live(&mut v2, &mut history, 10);
    assert!(v2.is_closed());
    assert_eq!(names(&history), ["charge", "ship", "notify-customer"]);
    // V2 replays it, and so would every worker still running V2.
    let mut again = machine::<CheckoutV2>(&history[0]);
    again.replay(&history[1..]).unwrap();
    assert!(again.is_closed());
    history
}

#[test]
fn a_removed_patch() {
    let old_path = checkout_old_path_history();

    // A run that took the new path replays on V3: markers are not
    // compared, and V3 produces exactly the new path's commands.
    let first = started("checkout");
    let mut new_path = vec![first.clone()];
    run_live(&mut machine::<CheckoutV2>(&first), &mut new_path, 10);
    assert_eq!(
        names(&new_path),
        [
            "charge",
            "patch:fraud-check",
            "fraud-check",
            "ship",
            "notify-customer"
        ]
    );
    let mut m = machine::<CheckoutV3>(&new_path[0]);
    m.replay(&new_path[1..]).unwrap();
    assert!(m.is_closed());

    // The run that took the old path does not.
    let e = replay_fails::<CheckoutV3>(&old_path);
    let recorded = site(e.expected.as_ref(), CHECKOUT_V1_SHIP.get());
    let produced = site(e.produced.as_ref(), CHECKOUT_V3_FRAUD_CHECK.get());
    assert_eq!(
        e,
        NondeterminismError {
            workflow_type: "checkout".into(),
            workflow_id: "order-1".into(),
            run: RunId(1),
            activation: 2,
            // WorkflowStarted, ActivationStarted, charge (cmd 1),
            // ActivationStarted, its completion, then the shipment.
            position: 6,
            kind: DivergenceKind::Mismatch,
            expected: Some(activity("ship", 2, recorded.clone())),
            produced: Some(activity("fraud-check", 2, produced.clone())),
            later_differences: 0,
        }
    );
    let d = order_digest();
    assert_eq!(
        e.to_string(),
        format!(
            "nondeterminism in workflow order-1 (checkout, run-1) at history position 6, activation 2:\n  \
             the code produced a different command than history recorded\n  \
             recorded: ActivityScheduled \"ship\" (cmd 2) input#{d:08x} at {recorded}\n  \
             produced: ActivityScheduled \"fraud-check\" (cmd 2) input#{d:08x} at {produced}\n{HINT}"
        )
    );
}
