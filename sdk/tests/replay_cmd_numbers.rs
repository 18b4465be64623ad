//! Replay compares recorded command numbers, not only kinds and names.
//!
//! Results find their command by number: an `ActivityCompleted { cmd 1 }`
//! wakes whatever the code issued as command 1. If the code now numbers
//! its commands differently (a call that takes a number without recording
//! a command was added before them), every kind and name may still line up
//! while each result would go to the wrong command, or to none, and the
//! run would hang. Replay reports that at the first renumbered command.
//!
//! ```text
//! seq 1  WorkflowStarted
//!     2  ActivationStarted            activation 1
//!     3  ActivityScheduled reserve (cmd 1)
//!     4  ActivationStarted            activation 2
//!     5  ActivityCompleted (cmd 1)
//!     6  ActivityScheduled charge (cmd 2)
//!     7  ActivationStarted            activation 3
//!     8  ActivityCompleted (cmd 2)
//!     9  WorkflowCompleted
//! ```

use refrain::replay::{ActivationError, DivergenceKind, NondeterminismError};
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Event, RunId, Workflow, WorkflowContext,
    WorkflowError,
};
use refrain_history::{CommandSeq, Timestamp};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use support::{completed, json, machine};

mod support;

support::echo_activity!(Reserve, "reserve");
support::echo_activity!(Charge, "charge");

/// An audit call whose input has no JSON form (map keys must be strings),
/// so it fails before anything is scheduled, yet takes a command number.
struct Audit;
#[async_trait]
impl Activity for Audit {
    const NAME: &'static str = "audit";
    type Input = BTreeMap<(u8, u8), u8>;
    type Output = ();
    async fn run(&self, _: ActivityContext, _: Self::Input) -> Result<(), ActivityError> {
        Ok(())
    }
}

static RESERVE_V1: AtomicU32 = AtomicU32::new(0);
static RESERVE_V2: AtomicU32 = AtomicU32::new(0);

/// The recorded version: reserve, then charge.
struct Order;
impl Workflow for Order {
    const NAME: &'static str = "order";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        RESERVE_V1.store(line!() + 1, Ordering::Relaxed);
        let r = ctx.activity::<Reserve>(o.clone()).await?;
        let c = ctx.activity::<Charge>(o).await?;
        Ok(format!("{r}+{c}"))
    }
}

/// A later version that first starts an audit call, which records
/// nothing but still takes command number 1.
struct OrderAudited;
impl Workflow for OrderAudited {
    const NAME: &'static str = "order";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, o: String) -> Result<String, WorkflowError> {
        // Started without waiting for it: nothing is scheduled, since the
        // input has no JSON form, but the call takes command number 1.
        drop(ctx.activity::<Audit>(BTreeMap::from([((1, 2), 3)])));
        RESERVE_V2.store(line!() + 1, Ordering::Relaxed);
        let r = ctx.activity::<Reserve>(o.clone()).await?;
        let c = ctx.activity::<Charge>(o).await?;
        Ok(format!("{r}+{c}"))
    }
}

fn started() -> Event {
    support::started("order", "order-7", json(&"o-7"), 1_000)
}

/// The history `Order` records, whole (see the module docs).
fn recorded() -> Vec<Event> {
    let first = started();
    let mut m = machine::<Order>(&first);
    let mut history = vec![first];
    history.extend(m.activate(Timestamp(2_000), Vec::new()).unwrap());
    history.extend(
        m.activate(Timestamp(3_000), vec![completed(1, "r")])
            .unwrap(),
    );
    history.extend(
        m.activate(Timestamp(4_000), vec![completed(2, "c")])
            .unwrap(),
    );
    assert!(m.is_closed());
    let kinds: Vec<&str> = history.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled",
            "ActivationStarted",
            "ActivityCompleted",
            "ActivityScheduled",
            "ActivationStarted",
            "ActivityCompleted",
            "WorkflowCompleted",
        ]
    );
    history
}

fn nondeterminism(r: Result<(), ActivationError>) -> NondeterminismError {
    match r {
        Err(ActivationError::Nondeterminism(e)) => *e,
        Err(other) => panic!("expected nondeterminism, got {other}"),
        Ok(()) => panic!("replay accepted commands numbered differently than recorded"),
    }
}

#[test]
fn the_recorded_history_replays_on_unchanged_code() {
    let history = recorded();
    let mut m = machine::<Order>(&history[0]);
    m.replay(&history[1..]).unwrap();
    assert!(m.is_closed());
}

#[test]
fn a_recorded_cmd_number_the_code_does_not_produce_is_reported() {
    // The run so far (waiting for reserve), as if history had recorded
    // reserve under number 7.
    let mut history = recorded()[..3].to_vec();
    let Event::ActivityScheduled { cmd, .. } = &mut history[2] else {
        unreachable!("checked by recorded()")
    };
    *cmd = CommandSeq(7);
    let e = nondeterminism(machine::<Order>(&history[0]).replay(&history[1..]));
    assert_eq!(e.kind, DivergenceKind::Mismatch);
    assert_eq!((e.position, e.activation), (3, 1));
    let (expected, produced) = (e.expected.clone().unwrap(), e.produced.clone().unwrap());
    assert_eq!(
        (expected.kind, expected.name.as_deref()),
        ("ActivityScheduled", Some("reserve"))
    );
    assert_eq!(
        (produced.kind, produced.name.as_deref()),
        ("ActivityScheduled", Some("reserve"))
    );
    assert_eq!((expected.cmd, produced.cmd), (Some(7), Some(1)));
    let line = RESERVE_V1.load(Ordering::Relaxed);
    let site = produced
        .callsite
        .expect("the produced command's source line");
    assert_eq!((site.file.as_str(), site.line), (file!(), line));
    let text = e.to_string();
    assert!(
        text.contains("the code numbered a command differently than history recorded"),
        "{text}"
    );
    assert!(
        text.contains("recorded: ActivityScheduled \"reserve\" (cmd 7)"),
        "{text}"
    );
    assert!(
        text.contains("produced: ActivityScheduled \"reserve\" (cmd 1)"),
        "{text}"
    );
}

#[test]
fn a_call_that_takes_a_number_without_a_command_is_reported_where_it_shifts_the_numbers() {
    // Replayed in the middle of the run (reserve scheduled, not yet done)
    // the new code issues the same kinds and names; only the numbers
    // differ. Unnoticed, reserve's result (cmd 1) would never reach the
    // code, which waits on cmd 2, and the run would hang.
    let history = recorded();
    for upto in [3, history.len()] {
        let e = nondeterminism(machine::<OrderAudited>(&history[0]).replay(&history[1..upto]));
        let expected = e.expected.clone().unwrap();
        let produced = e.produced.clone().unwrap();
        assert_eq!(
            (e.kind.clone(), e.position, e.activation, e.run),
            (DivergenceKind::Mismatch, 3, 1, RunId(1))
        );
        assert_eq!(expected.name, produced.name, "{e}");
        assert_eq!((expected.cmd, produced.cmd), (Some(1), Some(2)));
        let site = produced
            .callsite
            .expect("the produced command's source line");
        assert_eq!(site.line, RESERVE_V2.load(Ordering::Relaxed));
        assert_eq!(e.later_differences, 0);
    }
}
