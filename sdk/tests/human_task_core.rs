//! Human tasks in the pure replay core: which commands the waiting loop
//! produces for a given inbound batch, independent of any timing.

use refrain::replay::{ActivationError, WorkflowMachine};
use refrain::{select, Either, Event, Payload, Workflow, WorkflowContext, WorkflowError};
use refrain_history::{CommandSeq, Timestamp};
use std::time::Duration;

mod support;

const T0: u64 = 1_000_000;

fn machine<W: Workflow>() -> WorkflowMachine {
    let first = support::started(W::NAME, "wf-1", Payload::from_bytes(b"null".to_vec()), T0);
    support::machine::<W>(&first)
}

fn commands(events: &[Event]) -> Vec<Event> {
    events.iter().filter(|e| e.is_command()).cloned().collect()
}

fn decided(cmd: u32, decision: &str, by: &str) -> Event {
    Event::HumanTaskDecided {
        cmd: CommandSeq(cmd),
        decision: Payload::from_bytes(decision.as_bytes().to_vec()),
        decided_by: by.into(),
        comment: None,
        decided_at: Timestamp(T0 + 1),
    }
}

/// Approve (true) or not, by ann then bob, 1 s each, reminders every
/// 100 ms; returns who decided.
struct Approve;
impl Workflow for Approve {
    const NAME: &'static str = "approve";
    type Input = ();
    type Output = String;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let d = ctx
            .human_task::<bool>("approve")
            .assignee("ann")
            .deadline(Duration::from_secs(1))
            .remind_every(Duration::from_millis(100))
            .escalate_to(["bob"])
            .await?;
        Ok(format!("{} {}", d.value, d.decided_by))
    }
}

#[test]
fn a_decision_beats_a_deadline_that_fired_with_it() {
    let mut m = machine::<Approve>();
    let first = commands(&m.activate(Timestamp(T0), vec![]).unwrap());
    assert_eq!(
        first.iter().map(Event::kind).collect::<Vec<_>>(),
        ["HumanTaskAssigned", "TimerStarted", "TimerStarted"]
    );
    assert!(matches!(
        &first[0],
        Event::HumanTaskAssigned { cmd: CommandSeq(1), assignee, deadline: Some(Timestamp(d)), level: 0, .. }
            if assignee == "ann" && *d == T0 + 1_000
    ));
    // The deadline timer (cmd 2) and the decision arrive together.
    let next = commands(
        &m.activate(
            Timestamp(T0 + 1_000),
            vec![
                Event::TimerFired { cmd: CommandSeq(2) },
                decided(1, "true", "ann"),
            ],
        )
        .unwrap(),
    );
    assert_eq!(
        next,
        vec![
            Event::TimerCancelled { cmd: CommandSeq(3) },
            Event::WorkflowCompleted {
                result: Payload::from_bytes(b"\"true ann\"".to_vec()),
            },
        ]
    );
}

#[test]
fn reminders_missed_while_nothing_ran_are_sent_once() {
    let mut m = machine::<Approve>();
    m.activate(Timestamp(T0), vec![]).unwrap();
    // The first reminder (cmd 3, due at +100 ms) is handled at +550 ms.
    let late = commands(
        &m.activate(
            Timestamp(T0 + 550),
            vec![Event::TimerFired { cmd: CommandSeq(3) }],
        )
        .unwrap(),
    );
    assert_eq!(
        late,
        vec![
            Event::HumanTaskReminded {
                cmd: CommandSeq(1),
                assignee: "ann".into(),
            },
            late[1].clone(),
        ]
    );
    // The next one is on the grid after now (+600 ms), not a burst.
    assert!(matches!(
        late[1],
        Event::TimerStarted { cmd: CommandSeq(4), fire_at: Timestamp(t), .. } if t == T0 + 600
    ));
}

#[test]
fn a_deadline_escalates_and_the_last_one_fails_the_task() {
    let mut m = machine::<Approve>();
    m.activate(Timestamp(T0), vec![]).unwrap();
    let escalated = commands(
        &m.activate(
            Timestamp(T0 + 1_000),
            vec![Event::TimerFired { cmd: CommandSeq(2) }],
        )
        .unwrap(),
    );
    assert_eq!(
        escalated[..2],
        [
            Event::TimerCancelled { cmd: CommandSeq(3) },
            Event::HumanTaskEscalated {
                cmd: CommandSeq(1),
                from: "ann".into(),
                to: "bob".into(),
                level: 1,
                deadline: Some(Timestamp(T0 + 2_000)),
            },
        ]
    );
    let deadline = match &escalated[2] {
        Event::TimerStarted { cmd, fire_at, .. } => {
            assert_eq!(*fire_at, Timestamp(T0 + 2_000));
            *cmd
        }
        other => panic!("{other:?}"),
    };
    let end = commands(
        &m.activate(
            Timestamp(T0 + 2_000),
            vec![Event::TimerFired { cmd: deadline }],
        )
        .unwrap(),
    );
    assert!(
        matches!(
            &end[..],
            [
                Event::TimerCancelled { .. },
                Event::HumanTaskClosed { reason, .. },
                Event::WorkflowFailed { failure },
            ] if reason == "nobody answered (asked ann, bob); the task failed"
                && failure.kind == "human-task-failed"
                && failure.message.contains("human-task-unanswered")
        ),
        "{end:?}"
    );
}

/// Waits for a decision or 1 s, whichever comes first.
struct Impatient;
impl Workflow for Impatient {
    const NAME: &'static str = "impatient";
    type Input = ();
    type Output = bool;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<bool, WorkflowError> {
        let task = ctx.human_task::<bool>("approve").assignee("ann");
        Ok(
            match select(ctx.sleep(Duration::from_secs(1)), task).await {
                Either::Left(()) => false,
                Either::Right(d) => d?.value,
            },
        )
    }
}

#[test]
fn a_task_nobody_waits_for_any_more_is_closed() {
    let mut m = machine::<Impatient>();
    m.activate(Timestamp(T0), vec![]).unwrap();
    let end = commands(
        &m.activate(
            Timestamp(T0 + 1_000),
            vec![Event::TimerFired { cmd: CommandSeq(2) }],
        )
        .unwrap(),
    );
    assert_eq!(
        end,
        vec![
            Event::HumanTaskClosed {
                cmd: CommandSeq(1),
                reason: "cancelled: the workflow stopped waiting for it".into(),
            },
            Event::WorkflowCompleted {
                result: Payload::from_bytes(b"false".to_vec()),
            },
        ]
    );
}

struct NoAssignee;
impl Workflow for NoAssignee {
    const NAME: &'static str = "no-assignee";
    type Input = ();
    type Output = bool;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<bool, WorkflowError> {
        Ok(ctx.human_task::<bool>("approve").await?.value)
    }
}

#[test]
fn a_task_without_an_assignee_is_a_named_misuse() {
    let mut m = machine::<NoAssignee>();
    match m.activate(Timestamp(T0), vec![]) {
        Err(ActivationError::Nondeterminism(e)) => {
            assert!(e.to_string().contains("has no assignee"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

/// The assignment records the escalation chain; after a member claims
/// the task, reminders go to the claimer and the escalation moves it on
/// from the claimer.
#[test]
fn a_claimed_task_is_reminded_to_and_escalated_from_the_claimer() {
    let mut m = machine::<Approve>();
    let first = commands(&m.activate(Timestamp(T0), vec![]).unwrap());
    assert!(
        matches!(&first[0], Event::HumanTaskAssigned { escalations, .. }
            if escalations.len() == 1 && escalations[0].assignee == "bob"
                && escalations[0].deadline.is_none()),
        "{first:?}"
    );
    let claimed = Event::HumanTaskClaimed {
        cmd: CommandSeq(1),
        from: "ann".into(),
        claimed_by: "ann-marie".into(),
        claimed_at: Timestamp(T0 + 10),
    };
    // The claim and the first reminder (cmd 3) arrive together.
    let reminded = commands(
        &m.activate(
            Timestamp(T0 + 100),
            vec![claimed, Event::TimerFired { cmd: CommandSeq(3) }],
        )
        .unwrap(),
    );
    assert_eq!(
        reminded[0],
        Event::HumanTaskReminded {
            cmd: CommandSeq(1),
            assignee: "ann-marie".into(),
        }
    );
    let escalated = commands(
        &m.activate(
            Timestamp(T0 + 1_000),
            vec![Event::TimerFired { cmd: CommandSeq(2) }],
        )
        .unwrap(),
    );
    assert!(
        escalated.iter().any(|e| matches!(e,
            Event::HumanTaskEscalated { from, to, level: 1, .. }
                if from == "ann-marie" && to == "bob")),
        "{escalated:?}"
    );
}
