//! Cases of deciding a human task as its assignee: a decision that names
//! the assignee it is made as lands only while the task is still theirs.

use super::{activate, callsite, inbox_of, p, start, Fixture};
use crate::event::Event;
use crate::history_store::{HumanTaskDecision, HumanTaskError};
use crate::ids::{CommandSeq, RunId};

/// A decision on task 1 of `run` by `by`, made as `expected`.
fn decision(run: RunId, by: &str, expected: Option<&str>) -> HumanTaskDecision {
    HumanTaskDecision {
        run,
        cmd: CommandSeq(1),
        decision: p("\"approve\""),
        decided_by: by.into(),
        comment: None,
        expected_assignee: expected.map(str::to_owned),
    }
}

/// `loan-id`'s task 1, assigned to `underwriter-1` and then escalated to
/// `credit-manager` (a signal wakes the run, as a due deadline timer
/// would).
async fn escalated(f: &Fixture, id: &str) -> RunId {
    let s = &*f.store;
    let run = start(s, id).await;
    activate(
        s,
        run,
        vec![Event::HumanTaskAssigned {
            cmd: CommandSeq(1),
            task: "underwriting-review".into(),
            assignee: "underwriter-1".into(),
            form: None,
            deadline: None,
            level: 0,
            callsite: callsite(),
            escalations: Vec::new(),
        }],
    )
    .await;
    s.signal(&id.into(), "deadline", p("null"), None)
        .await
        .unwrap();
    activate(
        s,
        run,
        vec![Event::HumanTaskEscalated {
            cmd: CommandSeq(1),
            from: "underwriter-1".into(),
            to: "credit-manager".into(),
            level: 1,
            deadline: None,
        }],
    )
    .await;
    run
}

/// After an escalation, a decision made as the earlier assignee is
/// refused by name and writes nothing (the task stays in the new
/// assignee's list, the run's inbox stays empty); made as the current
/// assignee it lands; made with no expectation it lands whoever makes it.
pub async fn a_decision_made_as_an_earlier_assignee_is_refused(f: &Fixture) {
    let s = &*f.store;
    let run = escalated(f, "loan-20").await;
    match s
        .decide_human_task(decision(run, "underwriter-1", Some("underwriter-1")))
        .await
    {
        Err(HumanTaskError::Reassigned {
            run: r,
            cmd,
            expected,
            assignee,
        }) => {
            assert_eq!((r, cmd), (run, CommandSeq(1)));
            assert_eq!(
                (expected.as_str(), assignee.as_str()),
                ("underwriter-1", "credit-manager")
            );
        }
        other => panic!("expected Reassigned, got {other:?}"),
    }
    let listed = f.other.list_human_tasks("credit-manager").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(inbox_of(s, run).await.is_empty());

    s.decide_human_task(decision(run, "credit-manager", Some("credit-manager")))
        .await
        .unwrap();
    assert!(f
        .other
        .list_human_tasks("credit-manager")
        .await
        .unwrap()
        .is_empty());
    let inbox = inbox_of(s, run).await;
    assert!(
        matches!(&inbox[..], [Event::HumanTaskDecided { decided_by, .. }] if decided_by == "credit-manager"),
        "{inbox:?}"
    );

    // Without an expectation, whoever holds the reference may decide.
    let run = escalated(f, "loan-21").await;
    s.decide_human_task(decision(run, "underwriter-1", None))
        .await
        .unwrap();
    let inbox = inbox_of(s, run).await;
    assert!(
        matches!(&inbox[..], [Event::HumanTaskDecided { decided_by, .. }] if decided_by == "underwriter-1"),
        "{inbox:?}"
    );
}
