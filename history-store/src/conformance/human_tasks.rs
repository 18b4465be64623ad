//! Cases of deciding a human task as its assignee: a decision that names
//! the assignee it is made as lands only while the task is still theirs;
//! and of claiming a group's task for one member, which makes it theirs.

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

/// `loan-id`'s task 1, assigned to the group `underwriters` with a chain
/// that escalates to `credit-manager`.
async fn group_task(f: &Fixture, id: &str) -> RunId {
    let s = &*f.store;
    let run = start(s, id).await;
    activate(
        s,
        run,
        vec![Event::HumanTaskAssigned {
            cmd: CommandSeq(1),
            task: "underwriting-review".into(),
            assignee: "underwriters".into(),
            form: None,
            deadline: None,
            level: 0,
            callsite: callsite(),
            escalations: vec![crate::EscalationStep {
                assignee: "credit-manager".into(),
                deadline: None,
            }],
        }],
    )
    .await;
    run
}

/// A member's claim moves a group's task to the member's list, off the
/// group's, records who claimed it (in the inbox, for the history), and
/// keeps the chain; a second claim as the group is refused naming who has
/// it, and writes nothing; a decision made as the group is refused like
/// one that lost a race with an escalation, and the claimer's lands.
pub async fn a_claim_moves_a_group_task_to_one_member(f: &Fixture) {
    let s = &*f.store;
    let run = group_task(f, "loan-30").await;
    assert_eq!(
        f.other
            .list_human_tasks("underwriters")
            .await
            .unwrap()
            .len(),
        1
    );

    s.claim_human_task(run, CommandSeq(1), "underwriters", "ann")
        .await
        .unwrap();
    assert!(f
        .other
        .list_human_tasks("underwriters")
        .await
        .unwrap()
        .is_empty());
    let mine = f.other.list_human_tasks("ann").await.unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].claimed_from.as_deref(), Some("underwriters"));
    assert_eq!(
        mine[0].escalates_to().map(|e| e.assignee.as_str()),
        Some("credit-manager")
    );
    let inbox = inbox_of(s, run).await;
    assert!(
        matches!(&inbox[..], [Event::HumanTaskClaimed { cmd: CommandSeq(1), from, claimed_by, .. }]
            if from == "underwriters" && claimed_by == "ann"),
        "{inbox:?}"
    );

    match s
        .claim_human_task(run, CommandSeq(1), "underwriters", "bob")
        .await
    {
        Err(HumanTaskError::Reassigned {
            expected, assignee, ..
        }) => assert_eq!(
            (expected.as_str(), assignee.as_str()),
            ("underwriters", "ann")
        ),
        other => panic!("expected Reassigned, got {other:?}"),
    }
    assert!(f.other.list_human_tasks("bob").await.unwrap().is_empty());
    assert_eq!(
        inbox_of(s, run).await.len(),
        1,
        "a refused claim writes nothing"
    );

    match s
        .decide_human_task(decision(run, "bob", Some("underwriters")))
        .await
    {
        Err(HumanTaskError::Reassigned { assignee, .. }) => assert_eq!(assignee, "ann"),
        other => panic!("expected Reassigned, got {other:?}"),
    }
    s.decide_human_task(decision(run, "ann", Some("ann")))
        .await
        .unwrap();
    assert!(f.other.list_human_tasks("ann").await.unwrap().is_empty());
    match s
        .claim_human_task(run, CommandSeq(1), "underwriters", "bob")
        .await
    {
        Err(HumanTaskError::Closed { .. } | HumanTaskError::NotFound { .. }) => {}
        other => panic!("expected a decided task to refuse a claim, got {other:?}"),
    }
}

/// After a claim, the workflow's escalation moves the task on from the
/// claimer (whatever `from` it names) and the claim ends with it.
pub async fn an_escalation_moves_a_claimed_task_from_the_claimer(f: &Fixture) {
    let s = &*f.store;
    let run = group_task(f, "loan-31").await;
    s.claim_human_task(run, CommandSeq(1), "underwriters", "ann")
        .await
        .unwrap();
    activate(
        s,
        run,
        vec![Event::HumanTaskEscalated {
            cmd: CommandSeq(1),
            from: "ann".into(),
            to: "credit-manager".into(),
            level: 1,
            deadline: None,
        }],
    )
    .await;
    assert!(f.other.list_human_tasks("ann").await.unwrap().is_empty());
    let moved = f.other.list_human_tasks("credit-manager").await.unwrap();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].claimed_from, None);
    assert_eq!(moved[0].escalates_to(), None);
    match s.decide_human_task(decision(run, "ann", Some("ann"))).await {
        Err(HumanTaskError::Reassigned { assignee, .. }) => assert_eq!(assignee, "credit-manager"),
        other => panic!("expected Reassigned, got {other:?}"),
    }
}
