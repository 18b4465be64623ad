//! Human tasks in the store: the index by assignee follows the commands
//! that assign, escalate and close a task; a decision enters the run's
//! inbox exactly once; a closing run takes its open tasks with it.

mod common;

use common::*;
use refrain_history::{
    CommandSeq, Event, EventSeq, HumanTaskRecord, Payload, RunId, Store, StoreError, Timestamp,
};

fn assign(cmd: u32, task: &str, assignee: &str, deadline: Option<Timestamp>) -> Event {
    Event::HumanTaskAssigned {
        cmd: CommandSeq(cmd),
        task: task.into(),
        assignee: assignee.into(),
        form: Some(payload("{\"amount\":25000}")),
        deadline,
        level: 0,
        callsite: callsite(),
        escalations: Vec::new(),
    }
}

fn escalate(cmd: u32, from: &str, to: &str, level: u32, deadline: Option<Timestamp>) -> Event {
    Event::HumanTaskEscalated {
        cmd: CommandSeq(cmd),
        from: from.into(),
        to: to.into(),
        level,
        deadline,
    }
}

fn listed(store: &Store, assignee: &str) -> Vec<(RunId, u32, u32)> {
    store
        .list_human_tasks(assignee)
        .unwrap()
        .into_iter()
        .map(|t| (t.run, t.cmd.0, t.level))
        .collect()
}

fn decide(store: &Store, run: RunId, cmd: u32, by: &str) -> Result<(), StoreError> {
    store.decide_human_task(
        run,
        CommandSeq(cmd),
        payload("\"approve\""),
        by,
        Some("looks fine"),
        at(5_000),
    )
}

fn a_task_is_listed_under_its_current_assignee_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "loan-1", at(0));
    activate(
        &store,
        run,
        at(10),
        vec![assign(1, "credit-exception", "ann", Some(at(1_000)))],
    );

    let tasks = store.list_human_tasks("ann").unwrap();
    assert_eq!(
        tasks,
        vec![HumanTaskRecord {
            workflow_id: "loan-1".into(),
            run,
            cmd: CommandSeq(1),
            task: "credit-exception".into(),
            assignee: "ann".into(),
            form: Some(payload("{\"amount\":25000}")),
            deadline: Some(at(1_000)),
            assigned_at: at(10),
            level: 0,
            escalations: Vec::new(),
            claimed_from: None,
        }]
    );
    assert!(listed(&store, "anna").is_empty(), "no prefix matches");
    assert!(listed(&store, "an").is_empty(), "no prefix matches");
    assert_eq!(store.human_tasks_of_run(run).unwrap(), tasks);

    // The deadline is the workflow's business (its own timer): the store
    // keeps nothing due for it.
    assert_eq!(store.next_deadline().unwrap(), None);
    let run2 = start(&store, "other", at(0));
    activate(&store, run2, at(20), vec![assign(1, "review", "bob", None)]);
    // A reminder, then the task moves to bob.
    poke(&store, "loan-1");
    activate(
        &store,
        run,
        at(1_010),
        vec![
            Event::HumanTaskReminded {
                cmd: CommandSeq(1),
                assignee: "ann".into(),
            },
            escalate(1, "ann", "bob", 1, Some(at(2_010))),
        ],
    );
    assert!(listed(&store, "ann").is_empty());
    assert_eq!(listed(&store, "bob"), vec![(run, 1, 1), (run2, 1, 0)]);
    let moved = &store.list_human_tasks("bob").unwrap()[0];
    assert_eq!(moved.assigned_at, at(1_010));
    assert_eq!(moved.deadline, Some(at(2_010)));
    assert_eq!(moved.task, "credit-exception");
    assert_eq!(moved.form, Some(payload("{\"amount\":25000}")));
}

/// Gives the run something in its inbox, so that `activate` can claim it.
fn poke(store: &Store, id: &str) {
    store.signal(&id.into(), "poke", payload("null")).unwrap();
}

async fn a_decision_enters_the_inbox_once_and_leaves_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "loan-1", at(0));
    activate(&store, run, at(10), vec![assign(1, "approve", "ann", None)]);
    assert!(store.take_ready(10).contains(&run));

    decide(&store, run, 1, "ann").unwrap();
    store.durable().await.unwrap();
    assert!(listed(&store, "ann").is_empty());
    assert!(store.human_tasks_of_run(run).unwrap().is_empty());
    assert_eq!(
        store.take_ready(10),
        vec![run],
        "the decision queues the run"
    );
    let decided = Event::HumanTaskDecided {
        cmd: CommandSeq(1),
        decision: payload("\"approve\""),
        decided_by: "ann".into(),
        comment: Some("looks fine".into()),
        decided_at: at(5_000),
    };
    assert_eq!(peek_inbox(&store, run), vec![decided.clone()]);

    // A second decision, before or after the workflow applied the first,
    // writes nothing and says why.
    let before = store.run_record(run).unwrap().unwrap();
    match decide(&store, run, 1, "bob") {
        Err(StoreError::HumanTaskClosed { why, .. }) => {
            assert_eq!(why, "decided by ann (the workflow has yet to apply it)")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.run_record(run).unwrap().unwrap(), before);
    let task = activate(&store, run, at(6_000), vec![]);
    assert_eq!(task.inbox, vec![decided.clone()]);
    match decide(&store, run, 1, "bob") {
        Err(StoreError::HumanTaskClosed { why, cmd, .. }) => {
            assert_eq!(cmd, CommandSeq(1));
            assert_eq!(why, "decided by ann");
        }
        other => panic!("{other:?}"),
    }
    let history = store.read_history(run).unwrap();
    assert_eq!(
        history
            .iter()
            .filter(|e| matches!(e, Event::HumanTaskDecided { .. }))
            .count(),
        1
    );
    assert!(history.contains(&decided));

    // Never assigned: not found.
    assert!(matches!(
        decide(&store, run, 9, "ann"),
        Err(StoreError::HumanTaskNotFound {
            cmd: CommandSeq(9),
            ..
        })
    ));
    assert!(matches!(
        decide(&store, RunId(999), 1, "ann"),
        Err(StoreError::HumanTaskNotFound { .. })
    ));
}

fn closing_a_task_or_its_run_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "incident-1", at(0));
    activate(
        &store,
        run,
        at(10),
        vec![
            assign(1, "ack", "ann", None),
            assign(2, "postmortem", "ann", None),
            assign(3, "notify-customer", "carl", None),
        ],
    );
    assert_eq!(listed(&store, "ann"), vec![(run, 1, 0), (run, 2, 0)]);
    poke(&store, "incident-1");
    activate(
        &store,
        run,
        at(30),
        vec![Event::HumanTaskClosed {
            cmd: CommandSeq(1),
            reason: "nobody answered; fallback used".into(),
        }],
    );
    assert_eq!(listed(&store, "ann"), vec![(run, 2, 0)]);
    match decide(&store, run, 1, "ann") {
        Err(StoreError::HumanTaskClosed { why, .. }) => {
            assert_eq!(why, "closed: nobody answered; fallback used")
        }
        other => panic!("{other:?}"),
    }

    // The run completes with two tasks open: both leave the lists.
    poke(&store, "incident-1");
    activate(
        &store,
        run,
        at(50),
        vec![Event::WorkflowCompleted {
            result: payload("null"),
        }],
    );
    assert!(listed(&store, "ann").is_empty());
    assert!(listed(&store, "carl").is_empty());
    match decide(&store, run, 3, "carl") {
        Err(StoreError::HumanTaskClosed { why, .. }) => assert_eq!(why, "its run is completed"),
        other => panic!("{other:?}"),
    }
}

fn terminating_a_run_drops_its_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "incident-2", at(0));
    activate(&store, run, at(10), vec![assign(1, "ack", "ann", None)]);
    store
        .terminate(&"incident-2".into(), "duplicate", at(20))
        .unwrap();
    assert!(listed(&store, "ann").is_empty());
    assert!(store.human_tasks_of_run(run).unwrap().is_empty());
}

fn an_escalation_after_a_decision_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "loan-2", at(0));
    activate(
        &store,
        run,
        at(10),
        vec![assign(1, "approve", "ann", Some(at(100)))],
    );
    poke(&store, "loan-2");
    // The worker claims the run to escalate; ann decides meanwhile.
    let task = store.claim_activation(run).unwrap().unwrap();
    decide(&store, run, 1, "ann").unwrap();
    store
        .commit_activation(commit_for(
            &task,
            at(110),
            vec![escalate(1, "ann", "bob", 1, None)],
        ))
        .unwrap();
    assert!(listed(&store, "ann").is_empty());
    assert!(
        listed(&store, "bob").is_empty(),
        "a decided task is not revived"
    );
    // The decision waits for the next activation.
    assert!(matches!(
        peek_inbox(&store, run).as_slice(),
        [Event::HumanTaskDecided { decided_by, .. }] if decided_by == "ann"
    ));
}

fn malformed_assignments_are_refused_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "loan-3", at(0));
    let bad = [
        vec![assign(1, "approve", "", None)],
        vec![
            assign(1, "approve", "ann", None),
            assign(1, "again", "bob", None),
        ],
        vec![assign(1, "approve", &"x".repeat(70_000), None)],
    ];
    for commands in bad {
        let task = store.claim_activation(run).unwrap().unwrap();
        let err = store
            .commit_activation(commit_for(&task, at(10), commands))
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidCommit { .. }), "{err:?}");
        store.release_activation(run, task.token, None).unwrap();
        assert_eq!(
            store.run_record(run).unwrap().unwrap().last_seq,
            EventSeq(1)
        );
        assert!(listed(&store, "ann").is_empty());
        assert!(store.human_tasks_of_run(run).unwrap().is_empty());
    }
}

fn open_tasks_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let run = {
        let store = open(dir.path());
        let run = start(&store, "loan-4", at(0));
        activate(&store, run, at(10), vec![assign(1, "approve", "ann", None)]);
        store.durable_blocking().unwrap();
        run
    };
    let store = open(dir.path());
    assert_eq!(listed(&store, "ann"), vec![(run, 1, 0)]);
    store
        .decide_human_task(
            run,
            CommandSeq(1),
            Payload::from_bytes(b"true".to_vec()),
            "ann",
            None,
            at(20),
        )
        .unwrap();
    assert!(listed(&store, "ann").is_empty());
}

on_both_engines! {
    fn a_task_is_listed_under_its_current_assignee_only;
    fn closing_a_task_or_its_run_drops_it;
    fn terminating_a_run_drops_its_tasks;
    fn an_escalation_after_a_decision_changes_nothing;
    fn malformed_assignments_are_refused_without_writing;
    fn open_tasks_survive_a_reopen;
    async fn a_decision_enters_the_inbox_once_and_leaves_the_list;
}
