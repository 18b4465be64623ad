//! Updates in the replay core: the validator decides live and is never
//! asked again on replay; an accepted update's handler runs alongside the
//! workflow and its commands replay like the workflow's own; a refused
//! request produces no event at all.

mod support;

use refrain::replay::ActivationError;
use refrain::{Event, Signal, Update, Workflow, WorkflowContext, WorkflowError};
use refrain_history::{CommandSeq, EventSeq, Timestamp, UpdateRejection};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use support::{completed, echo_activity, json, machine, started};

echo_activity!(Price, "price");

struct AddItem;
impl Update for AddItem {
    const NAME: &'static str = "add-item";
    type Args = String;
    type Result = usize;
}

#[derive(Serialize, Deserialize)]
struct Checkout;
impl Signal for Checkout {
    const NAME: &'static str = "checkout";
}

/// Registers `AddItem`: refuses empty skus and a fourth item; prices the
/// item with an activity, then adds it. A sku of "boom" fails the handler.
fn accept_items(ctx: &WorkflowContext, items: &Rc<RefCell<Vec<String>>>) {
    let (check, add, c) = (items.clone(), items.clone(), ctx.clone());
    ctx.on_update::<AddItem, _, _, _>(
        move |sku| {
            if sku.is_empty() {
                Err("empty sku".into())
            } else if check.borrow().len() >= 3 {
                Err("the cart is full".into())
            } else {
                Ok(())
            }
        },
        move |sku| {
            let (add, c) = (add.clone(), c.clone());
            async move {
                if sku == "boom" {
                    return Err(WorkflowError::new("unknown-sku", "no such sku"));
                }
                let priced = c.activity::<Price>(sku).await?;
                add.borrow_mut().push(priced);
                let n = add.borrow().len();
                Ok(n)
            }
        },
    );
}

struct Cart;
impl Workflow for Cart {
    const NAME: &'static str = "cart";
    type Input = ();
    type Output = Vec<String>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
        let items = Rc::new(RefCell::new(Vec::new()));
        accept_items(&ctx, &items);
        ctx.wait_signal::<Checkout>().await?;
        let all = items.borrow().clone();
        Ok(all)
    }
}

/// The same workflow after someone removed the update handler.
struct CartWithoutUpdates;
impl Workflow for CartWithoutUpdates {
    const NAME: &'static str = "cart";
    type Input = ();
    type Output = Vec<String>;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
        ctx.wait_signal::<Checkout>().await?;
        Ok(Vec::new())
    }
}

fn first() -> Event {
    started("cart", "cart-1", json(&()), 1_000)
}

fn request(update_id: &str, sku: &str) -> Event {
    Event::UpdateRequested {
        update_id: update_id.into(),
        name: "add-item".into(),
        input: json(&sku),
    }
}

fn checkout() -> Event {
    Event::SignalReceived {
        name: "checkout".into(),
        payload: json(&Checkout),
        sender: None,
    }
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

fn rejection(update_id: &str, reason: &str) -> UpdateRejection {
    UpdateRejection {
        update_id: update_id.into(),
        reason: reason.into(),
    }
}

/// Runs the cart live: one accepted update (priced by an activity), one
/// refused, then checkout. Returns every event after `WorkflowStarted`.
fn live_history() -> Vec<Event> {
    let mut m = machine::<Cart>(&first());
    let mut all = m.activate(Timestamp(2_000), vec![]).unwrap();

    let batch = vec![request("u1", "apple"), request("u2", "")];
    let events = m.activate(Timestamp(3_000), batch).unwrap();
    assert_eq!(
        kinds(&events),
        ["ActivationStarted", "UpdateAccepted", "ActivityScheduled"],
        "requests are not recorded; the accepted one is, then its handler's command"
    );
    assert_eq!(m.take_rejected_updates(), [rejection("u2", "empty sku")]);
    let Event::ActivityScheduled { cmd, .. } = &events[2] else {
        unreachable!()
    };
    let price_cmd = *cmd;
    all.extend(events);

    let events = m
        .activate(Timestamp(4_000), vec![completed(price_cmd.0, "apple")])
        .unwrap();
    assert_eq!(
        events.last(),
        Some(&Event::UpdateCompleted {
            update_id: "u1".into(),
            result: json(&1usize),
        })
    );
    all.extend(events);

    let events = m.activate(Timestamp(5_000), vec![checkout()]).unwrap();
    assert_eq!(
        events.last(),
        Some(&Event::WorkflowCompleted {
            result: json(&vec!["apple"]),
        })
    );
    all.extend(events);
    assert!(m.is_closed());
    all
}

#[test]
fn accepted_updates_are_recorded_and_replay_without_asking_the_validator() {
    let history = live_history();
    let mut replayed = machine::<Cart>(&first());
    replayed.replay(&history).unwrap();
    assert!(replayed.is_closed());
    assert_eq!(replayed.last_seq(), EventSeq(1 + history.len() as u64));
}

#[test]
fn a_history_with_an_update_the_code_no_longer_handles_does_not_replay() {
    let history = live_history();
    let mut replayed = machine::<CartWithoutUpdates>(&first());
    match replayed.replay(&history) {
        Err(ActivationError::Nondeterminism(e)) => {
            let report = e.to_string();
            assert!(report.contains("add-item"), "{report}");
        }
        other => panic!("expected nondeterminism, got {other:?}"),
    }
}

#[test]
fn an_activation_that_only_refuses_requests_appends_nothing() {
    let mut m = machine::<Cart>(&first());
    m.activate(Timestamp(2_000), vec![]).unwrap();
    let seq = m.last_seq();

    let batch = vec![
        request("u1", ""),
        Event::UpdateRequested {
            update_id: "u2".into(),
            name: "remove-item".into(),
            input: json(&"apple"),
        },
    ];
    let events = m.activate(Timestamp(3_000), batch).unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(m.last_seq(), seq);
    assert_eq!(
        m.take_rejected_updates(),
        [
            rejection("u1", "empty sku"),
            rejection(
                "u2",
                "the workflow does not accept update \"remove-item\" (it accepts: add-item)"
            ),
        ]
    );
}

#[test]
fn the_validator_sees_the_state_left_by_updates_accepted_before_it() {
    let mut m = machine::<Cart>(&first());
    m.activate(Timestamp(2_000), vec![]).unwrap();
    let mut cmd = 0;
    for (i, sku) in ["a", "b", "c"].into_iter().enumerate() {
        let events = m
            .activate(Timestamp(3_000 + i as u64), vec![request(sku, sku)])
            .unwrap();
        let Some(Event::ActivityScheduled { cmd: c, .. }) = events.last() else {
            panic!("{events:?}")
        };
        cmd = c.0;
        m.activate(Timestamp(3_500 + i as u64), vec![completed(cmd, sku)])
            .unwrap();
    }
    assert_eq!(cmd, 3);
    let events = m
        .activate(Timestamp(9_000), vec![request("d", "d")])
        .unwrap();
    assert!(events.is_empty());
    assert_eq!(
        m.take_rejected_updates(),
        [rejection("d", "the cart is full")]
    );
}

#[test]
fn a_handler_error_is_recorded_as_the_update_failing() {
    let mut m = machine::<Cart>(&first());
    m.activate(Timestamp(2_000), vec![]).unwrap();
    let events = m
        .activate(Timestamp(3_000), vec![request("u1", "boom")])
        .unwrap();
    assert_eq!(
        kinds(&events),
        ["ActivationStarted", "UpdateAccepted", "UpdateFailed"]
    );
    let Event::UpdateFailed { update_id, failure } = &events[2] else {
        unreachable!()
    };
    assert_eq!(update_id, "u1");
    assert!(failure.message.contains("no such sku"), "{failure:?}");
    assert!(!m.is_closed(), "a failed update does not fail the workflow");
}

#[test]
fn a_workflow_that_returns_drops_running_handlers_before_its_last_command() {
    let mut m = machine::<Cart>(&first());
    m.activate(Timestamp(2_000), vec![]).unwrap();
    m.activate(Timestamp(3_000), vec![request("u1", "apple")])
        .unwrap();
    // Checkout arrives while the handler waits for its activity.
    let events = m.activate(Timestamp(4_000), vec![checkout()]).unwrap();
    assert_eq!(
        kinds(&events),
        [
            "ActivationStarted",
            "SignalReceived",
            "ActivityCancelRequested",
            "WorkflowCompleted"
        ]
    );
    assert_eq!(
        events[2],
        Event::ActivityCancelRequested { cmd: CommandSeq(1) }
    );
}

struct SneakyUpdate;
impl Update for SneakyUpdate {
    const NAME: &'static str = "sneaky";
    type Args = ();
    type Result = ();
}

/// A validator that starts a timer: refused, and the timer undone.
struct Sneaky;
impl Workflow for Sneaky {
    const NAME: &'static str = "sneaky";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        let c = ctx.clone();
        ctx.on_update::<SneakyUpdate, _, _, _>(
            move |()| {
                drop(c.sleep(std::time::Duration::from_secs(1)));
                Ok(())
            },
            |()| async { Ok(()) },
        );
        ctx.wait_signal::<Checkout>().await?;
        Ok(())
    }
}

#[test]
fn a_validator_that_issues_a_command_is_refused_and_the_command_undone() {
    let first = started("sneaky", "s-1", json(&()), 1_000);
    let mut m = machine::<Sneaky>(&first);
    m.activate(Timestamp(2_000), vec![]).unwrap();
    let request = Event::UpdateRequested {
        update_id: "u1".into(),
        name: "sneaky".into(),
        input: json(&()),
    };
    let events = m.activate(Timestamp(3_000), vec![request]).unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        m.take_rejected_updates(),
        [rejection(
            "u1",
            "update validators must not issue commands (activities, timers, ...)"
        )]
    );
}
