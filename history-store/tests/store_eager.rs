//! Eager commits: an activation that resolves attempts completed in the
//! worker's process and claims the activities it schedules, in its one
//! transaction, with the same checks as the separate operations.

mod common;

use common::*;
use refrain_history::{
    Activation, ActivationCommit, ActivityOptions, ActivityState, CommandSeq, DirectActivities,
    Event, LocalCompletion, Payload, RunId, Store, StoreError,
};

fn completed(cmd: u32, attempt: u32, result: &str) -> Event {
    Event::ActivityCompleted {
        cmd: CommandSeq(cmd),
        attempt,
        result: payload(result),
    }
}

/// The commit of `task` at `time` applying `results` after its inbox, then
/// `commands`.
fn commit_with(
    task: &Activation,
    time: refrain_history::Timestamp,
    results: Vec<Event>,
    commands: Vec<Event>,
) -> ActivationCommit {
    let mut c = commit_for(task, time, Vec::new());
    c.events.extend(results);
    c.events.extend(commands);
    c
}

/// A run whose first activation scheduled activity 1, claimed eagerly.
fn started_with_claim(store: &Store) -> (RunId, refrain_history::ActivityTask) {
    let run = start(store, "order-1", at(0));
    let task = store.begin_activation(run).unwrap().unwrap();
    let commit = commit_for(&task, at(0), vec![schedule(1, ActivityOptions::default())]);
    let mut claimed = store
        .commit_activation_direct(
            commit,
            DirectActivities {
                completed: Vec::new(),
                claim: vec![CommandSeq(1)],
            },
        )
        .unwrap();
    assert_eq!(claimed.len(), 1);
    (run, claimed.remove(0))
}

fn a_commit_claims_the_activities_it_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (run, claimed) = started_with_claim(&store);
    assert_eq!(
        (claimed.run, claimed.cmd, claimed.attempt),
        (run, CommandSeq(1), 1)
    );
    let task = store.activity_task(run, CommandSeq(1)).unwrap().unwrap();
    assert!(
        matches!(task.state, ActivityState::Running { token, .. } if token == claimed.token),
        "{:?}",
        task.state
    );
    assert!(
        store.claim_activity_tasks(at(10), 10).unwrap().is_empty(),
        "a poller finds nothing left to claim"
    );
    assert!(
        store.next_deadline().unwrap().is_some(),
        "the attempt has a deadline"
    );
}

fn a_result_delivered_in_process_is_recorded_once_by_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (run, claimed) = started_with_claim(&store);

    let task = store
        .begin_activation_with_results(run)
        .unwrap()
        .expect("open run, inbox empty");
    assert!(task.inbox.is_empty());
    let commit = commit_with(
        &task,
        at(5),
        vec![completed(1, 1, "reserved")],
        vec![schedule(2, ActivityOptions::default())],
    );
    let next = store
        .commit_activation_direct(
            commit,
            DirectActivities {
                completed: vec![LocalCompletion {
                    cmd: CommandSeq(1),
                    token: claimed.token,
                }],
                claim: vec![CommandSeq(2)],
            },
        )
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].cmd, CommandSeq(2));

    let history = store.read_history(run).unwrap();
    let results: Vec<_> = history
        .iter()
        .filter(|e| matches!(e, Event::ActivityCompleted { .. }))
        .collect();
    assert_eq!(results, [&completed(1, 1, "reserved")]);
    assert!(store.activity_task(run, CommandSeq(1)).unwrap().is_none());
    let record = store.run_record(run).unwrap().unwrap();
    assert_eq!(record.pending_activities, [CommandSeq(2)]);
    assert_eq!(
        record.inbox_head, record.inbox_tail,
        "nothing went through the inbox"
    );

    // The same attempt cannot be recorded again, by either path.
    assert!(matches!(
        store.complete_activity(run, CommandSeq(1), claimed.token, Ok(payload("x")), at(6)),
        Err(StoreError::StaleActivity { .. })
    ));
}

fn a_stale_or_missing_result_refuses_the_whole_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (run, claimed) = started_with_claim(&store);
    let task = store.begin_activation_with_results(run).unwrap().unwrap();
    let before = store.read_history(run).unwrap().len();

    let stale = LocalCompletion {
        cmd: CommandSeq(1),
        token: refrain_history::LeaseToken(claimed.token.0 + 1_000),
    };
    let commit = commit_with(&task, at(5), vec![completed(1, 1, "r")], vec![]);
    assert!(matches!(
        store.commit_activation_direct(
            commit,
            DirectActivities {
                completed: vec![stale],
                claim: Vec::new()
            }
        ),
        Err(StoreError::StaleActivity { .. })
    ));

    let good = LocalCompletion {
        cmd: CommandSeq(1),
        token: claimed.token,
    };
    for results in [vec![], vec![completed(1, 1, "r"), completed(1, 1, "r")]] {
        let commit = commit_with(&task, at(5), results, vec![]);
        assert!(matches!(
            store.commit_activation_direct(
                commit,
                DirectActivities {
                    completed: vec![good],
                    claim: Vec::new()
                }
            ),
            Err(StoreError::InvalidCommit { .. })
        ));
    }
    assert_eq!(
        store.read_history(run).unwrap().len(),
        before,
        "nothing written"
    );
    let task = store.activity_task(run, CommandSeq(1)).unwrap().unwrap();
    assert!(matches!(task.state, ActivityState::Running { .. }));
    store
        .complete_activity(
            run,
            CommandSeq(1),
            claimed.token,
            Ok(Payload::from_bytes(vec![1])),
            at(6),
        )
        .expect("the attempt still holds its token");
}

on_both_engines! {
    fn a_commit_claims_the_activities_it_schedules;
    fn a_result_delivered_in_process_is_recorded_once_by_the_next_commit;
    fn a_stale_or_missing_result_refuses_the_whole_commit;
}
