//! Changing a running workflow safely with `ctx.patched`, and ending a run
//! with `ctx.continue_as_new`, on the pure replay core.

use refrain::replay::{ActivationError, WorkflowMachine};
use refrain::{Event, Payload, Signal, Workflow, WorkflowContext, WorkflowError};
use refrain_history::{SignalRecord, Timestamp};
use serde::{Deserialize, Serialize};
use support::{json, machine};

mod support;

support::echo_activity!(Charge, "charge");
support::echo_activity!(FraudCheck, "fraud-check");
support::echo_activity!(Ship, "ship");

fn started(workflow_type: &str) -> Event {
    support::started(workflow_type, "order-7", json(&"o-7"), 1_000)
}

fn done(cmd: u32) -> Event {
    support::completed(cmd, "ok")
}

fn names(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ActivityScheduled { activity_type, .. } => Some(activity_type.clone()),
            Event::PatchMarker { patch_id, .. } => Some(format!("patch:{patch_id}")),
            _ => None,
        })
        .collect()
}

/// Version 1: charge, then ship.
struct V1;
impl Workflow for V1 {
    const NAME: &'static str = "order";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        ctx.activity::<Charge>(o.clone()).await?;
        ctx.activity::<Ship>(o).await?;
        Ok("shipped".into())
    }
}

/// Version 2: a fraud check before shipping, guarded by a patch.
struct V2;
impl Workflow for V2 {
    const NAME: &'static str = "order";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        ctx.activity::<Charge>(o.clone()).await?;
        if ctx.patched("fraud-check") {
            ctx.activity::<FraudCheck>(o.clone()).await?;
        }
        ctx.activity::<Ship>(o).await?;
        Ok("shipped".into())
    }
}

/// Version 2 without the guard: what a careless deploy looks like.
struct V2Unguarded;
impl Workflow for V2Unguarded {
    const NAME: &'static str = "order";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        ctx.activity::<Charge>(o.clone()).await?;
        ctx.activity::<FraudCheck>(o.clone()).await?;
        ctx.activity::<Ship>(o).await?;
        Ok("shipped".into())
    }
}

/// Version 3: every old run has finished; the patch is retired.
struct V3;
impl Workflow for V3 {
    const NAME: &'static str = "order";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        ctx.activity::<Charge>(o.clone()).await?;
        ctx.deprecate_patch("fraud-check");
        ctx.activity::<FraudCheck>(o.clone()).await?;
        ctx.activity::<Ship>(o).await?;
        Ok("shipped".into())
    }
}

/// Runs `m` live to the end, completing each activity as it is scheduled.
fn run_to_end(m: &mut WorkflowMachine, history: &mut Vec<Event>) {
    run_to_end_from(m, history, Vec::new());
}

/// Like `run_to_end`, starting with the inbound batch `inbound`.
fn run_to_end_from(m: &mut WorkflowMachine, history: &mut Vec<Event>, mut inbound: Vec<Event>) {
    for t in 0..10 {
        let events = m.activate(Timestamp(2_000 + t), inbound).unwrap();
        inbound = events
            .iter()
            .filter_map(|e| match e {
                Event::ActivityScheduled { cmd, .. } => Some(done(cmd.0)),
                _ => None,
            })
            .collect();
        history.extend(events);
        if m.is_closed() {
            return;
        }
    }
    panic!("workflow did not finish");
}

/// A run of V1 that charged and is waiting for the charge result.
fn v1_history_in_flight() -> Vec<Event> {
    let first = started("order");
    let mut m = machine::<V1>(&first);
    let mut h = vec![first];
    h.extend(m.activate(Timestamp(1_500), vec![]).unwrap());
    h
}

#[test]
fn a_run_started_before_the_deploy_finishes_on_the_old_path() {
    // V1 charged and scheduled the shipment: it is past the point where V2
    // added the fraud check when V2 is deployed.
    let first = started("order");
    let mut v1 = machine::<V1>(&first);
    let mut history = vec![first];
    history.extend(v1.activate(Timestamp(1_500), vec![]).unwrap());
    history.extend(v1.activate(Timestamp(1_600), vec![done(1)]).unwrap());
    assert_eq!(names(&history), ["charge", "ship"]);

    let mut m = machine::<V2>(&history[0]);
    m.replay(&history[1..]).unwrap();
    run_to_end_from(&mut m, &mut history, vec![done(2)]);
    assert_eq!(
        names(&history),
        ["charge", "ship"],
        "no fraud check, no marker"
    );
    let mut again = machine::<V2>(&history[0]);
    again.replay(&history[1..]).unwrap();
    assert!(again.is_closed());
}

#[test]
fn a_run_that_reaches_the_patch_after_the_deploy_takes_the_new_path() {
    let mut history = v1_history_in_flight();
    // Deploy V2: the in-flight run replays, then carries on live.
    let mut m = machine::<V2>(&history[0]);
    m.replay(&history[1..]).unwrap();
    run_to_end_from(&mut m, &mut history, vec![done(1)]);
    // The patch was reached live for the first time after the deploy, so
    // this run takes the new path from here on, and records that it did.
    assert_eq!(
        names(&history),
        ["charge", "patch:fraud-check", "fraud-check", "ship"]
    );
    // Both the in-flight replay and the finished history replay on V2.
    let mut again = machine::<V2>(&history[0]);
    again.replay(&history[1..]).unwrap();
    assert!(again.is_closed());
}

#[test]
fn old_path_and_new_path_histories_both_replay_on_patched_code() {
    // A history V1 completed entirely (the old path).
    let first = started("order");
    let mut old = vec![first.clone()];
    run_to_end(&mut machine::<V1>(&first), &mut old);
    assert_eq!(names(&old), ["charge", "ship"]);
    // A history V2 completed (the new path, with its marker).
    let mut new = vec![first.clone()];
    run_to_end(&mut machine::<V2>(&first), &mut new);
    assert_eq!(
        names(&new),
        ["charge", "patch:fraud-check", "fraud-check", "ship"]
    );

    for h in [&old, &new] {
        let mut m = machine::<V2>(&h[0]);
        m.replay(&h[1..]).unwrap();
        assert!(m.is_closed());
    }
}

#[test]
fn an_unguarded_change_is_caught_against_old_histories() {
    let first = started("order");
    let mut old = vec![first.clone()];
    run_to_end(&mut machine::<V1>(&first), &mut old);
    let err = machine::<V2Unguarded>(&old[0])
        .replay(&old[1..])
        .unwrap_err();
    let ActivationError::Nondeterminism(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.expected.unwrap().name.as_deref(), Some("ship"));
    assert_eq!(e.produced.unwrap().name.as_deref(), Some("fraud-check"));
}

#[test]
fn a_deprecated_patch_replays_histories_with_and_without_its_marker() {
    let first = started("order");
    let mut with_marker = vec![first.clone()];
    run_to_end(&mut machine::<V2>(&first), &mut with_marker);
    let mut without = vec![first.clone()];
    run_to_end(&mut machine::<V3>(&first), &mut without);
    for h in [&with_marker, &without] {
        let mut m = machine::<V3>(&h[0]);
        m.replay(&h[1..]).unwrap();
        assert!(m.is_closed());
    }
}

#[derive(Serialize, Deserialize)]
struct Tick(u32);
impl Signal for Tick {
    const NAME: &'static str = "tick";
}

#[derive(Serialize, Deserialize)]
struct Note(String);
impl Signal for Note {
    const NAME: &'static str = "note";
}

/// Counts ticks; continues as new after every two.
struct Counter;
impl Workflow for Counter {
    const NAME: &'static str = "counter";
    type Input = u32;
    type Output = u32;
    async fn run(ctx: WorkflowContext, total: u32) -> Result<u32, WorkflowError> {
        let mut total = total;
        for _ in 0..2 {
            total += ctx.wait_signal::<Tick>().await?.0;
        }
        ctx.continue_as_new::<Counter>(total).await;
        unreachable!()
    }
}

#[test]
fn continue_as_new_ends_the_run_and_carries_untaken_signals_in_arrival_order() {
    let first = Event::WorkflowStarted {
        workflow_type: "counter".into(),
        workflow_id: "c".into(),
        input: json(&0u32),
        seed: 1,
        start_time: Timestamp(0),
        continued_from: None,
        parent: None,
    };
    let mut m = machine::<Counter>(&first);
    m.activate(Timestamp(1), vec![]).unwrap();
    let sig = |name: &str, p: Payload| Event::SignalReceived {
        name: name.into(),
        payload: p,
        sender: None,
    };
    // Four ticks and a note in one batch: two ticks are taken, the rest
    // must reach the next run in the order they arrived.
    let batch = vec![
        sig("tick", json(&Tick(1))),
        sig("note", json(&Note("a".into()))),
        sig("tick", json(&Tick(2))),
        sig("tick", json(&Tick(3))),
        sig("tick", json(&Tick(4))),
    ];
    let events = m.activate(Timestamp(2), batch).unwrap();
    assert!(m.is_closed());
    let Some(Event::WorkflowContinuedAsNew {
        input,
        carried_signals,
        ..
    }) = events.last()
    else {
        panic!("{events:?}")
    };
    assert_eq!(input, &json(&3u32));
    let carried: Vec<&SignalRecord> = carried_signals.iter().collect();
    assert_eq!(
        carried
            .iter()
            .map(|s| (s.name.as_str(), s.payload.clone()))
            .collect::<Vec<_>>(),
        [
            ("note", json(&Note("a".into()))),
            ("tick", json(&Tick(3))),
            ("tick", json(&Tick(4))),
        ]
    );
    // And the run replays to the same end.
    let mut h = vec![first.clone()];
    let mut m2 = machine::<Counter>(&first);
    h.extend(m2.activate(Timestamp(1), vec![]).unwrap());
    h.extend(events);
    let mut again = machine::<Counter>(&first);
    again.replay(&h[1..]).unwrap();
    assert!(again.is_closed());
}
