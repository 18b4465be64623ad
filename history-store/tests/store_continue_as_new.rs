//! Continue-as-new: one commit closes a run and starts the next run of the
//! same workflow id, carrying signals over without losing or repeating any.

mod common;

use common::*;
use refrain_history::codec::encode;
use refrain_history::keys::run_key;
use refrain_history::{
    ActivityOptions, CommandSeq, Event, EventSeq, IdConflictPolicy, Payload, RunId, RunStatus,
    SignalRecord, StoreError, Timestamp, WorkflowId,
};

fn signal_event(name: &str, value: &str, sender: Option<&str>) -> Event {
    Event::SignalReceived {
        name: name.into(),
        payload: payload(value),
        sender: sender.map(str::to_owned),
    }
}

fn carried(name: &str, value: &str) -> SignalRecord {
    SignalRecord {
        name: name.into(),
        payload: payload(value),
        sender: None,
    }
}

fn continue_as_new(input: &str, seed: u64, carried_signals: Vec<SignalRecord>) -> Event {
    Event::WorkflowContinuedAsNew {
        input: payload(input),
        seed,
        carried_signals,
    }
}

fn id() -> WorkflowId {
    "order-1".into()
}

/// The `WorkflowStarted` of a run of `order-1` continuing `from`.
fn started_event(input: &str, seed: u64, now: Timestamp, from: RunId) -> Event {
    Event::WorkflowStarted {
        workflow_type: "order-to-cash".into(),
        workflow_id: id(),
        input: payload(input),
        seed,
        start_time: now,
        continued_from: Some(from),
        parent: None,
    }
}

/// How many keys of `tree` belong to `run` (trees keyed run first), read
/// through sled once the store is closed.
fn keys_of_run(db: &sled::Db, tree: &str, run: RunId) -> usize {
    db.open_tree(tree)
        .unwrap()
        .scan_prefix(run_key(run))
        .count()
}

#[test]
fn carried_signals_come_first_then_late_ones_and_the_old_run_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = start(&store, "order-1", at(0));
    activate(
        &store,
        old,
        at(10),
        vec![
            schedule(1, ActivityOptions::default()),
            schedule(3, ActivityOptions::default()),
            start_timer(2, at(60_000)),
        ],
    );
    store.signal(&id(), "early", payload("1")).unwrap();
    let task = store.claim_activation(old).unwrap().unwrap();
    assert_eq!(task.inbox, vec![signal_event("early", "1", None)]);

    // After the claim: activity 1 completes (its result lands in the old
    // inbox), activity 3 is running, and a signal arrives.
    let mut claimed = store.claim_activity_tasks(at(20), 10).unwrap();
    assert_eq!(claimed.len(), 2);
    claimed.sort_by_key(|t| t.cmd);
    let (first, third) = (&claimed[0], &claimed[1]);
    store
        .complete_activity(old, first.cmd, first.token, Ok(payload("\"ok\"")), at(21))
        .unwrap();
    assert_eq!(
        store
            .signal_from(&id(), "late", payload("2"), "ops@example.com")
            .unwrap(),
        old
    );
    let _ = store.take_ready(10);

    // The workflow never took "early" and carries it, plus one of its own.
    store
        .commit_activation(commit_for(
            &task,
            at(30),
            vec![continue_as_new(
                "{\"cursor\":1}",
                99,
                vec![carried("early", "1"), carried("extra", "3")],
            )],
        ))
        .unwrap();

    // The old run: closed, linked, nothing pending, nothing in its inbox.
    let old_record = store.run_record(old).unwrap().unwrap();
    let (new, new_record) = store.latest_run(&id()).unwrap().unwrap();
    assert_ne!(new, old);
    assert_eq!(old_record.status, RunStatus::ContinuedAsNew);
    assert_eq!(old_record.outcome, None);
    assert_eq!(old_record.closed_at, Some(at(30)));
    assert_eq!(old_record.continued_to, Some(new));
    assert_eq!(old_record.lease, None);
    assert!(old_record.pending_timers.is_empty());
    assert!(old_record.pending_activities.is_empty());
    assert_eq!(old_record.inbox_head, old_record.inbox_tail);
    assert!(!old_record.is_ready());
    assert_eq!(
        store.read_history(old).unwrap().last(),
        Some(&continue_as_new(
            "{\"cursor\":1}",
            99,
            vec![carried("early", "1"), carried("extra", "3")],
        ))
    );
    assert!(store.activity_task(old, CommandSeq(3)).unwrap().is_none());
    assert_eq!(
        store.next_deadline().unwrap(),
        None,
        "timer and deadline gone"
    );
    assert_eq!(store.next_activity_visible().unwrap(), None);
    assert_eq!(store.fire_due(at(1_000_000)).unwrap(), 0);
    assert!(store
        .claim_activity_tasks(at(1_000_000), 10)
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.complete_activity(old, third.cmd, third.token, Ok(payload("1")), at(40)),
        Err(StoreError::StaleActivity { .. })
    ));

    // The new run: started by the commit, ready, linked back.
    assert_eq!(new_record.status, RunStatus::Running);
    assert_eq!(new_record.workflow_id, id());
    assert_eq!(new_record.workflow_type, "order-to-cash");
    assert_eq!(new_record.started_at, at(30));
    assert_eq!(new_record.continued_from, Some(old));
    assert_eq!(new_record.continued_to, None);
    assert_eq!(new_record.parent, None);
    assert_eq!(new_record.last_seq, EventSeq(1));
    assert!(new_record.needs_first_activation);
    assert!(new_record.is_ready());
    let expected_start = started_event("{\"cursor\":1}", 99, at(30), old);
    assert_eq!(
        new_record.history_bytes,
        encode(&expected_start).unwrap().len() as u64
    );
    assert_eq!(store.read_history(new).unwrap(), vec![expected_start]);
    assert_eq!(store.take_ready(10), vec![new]);

    // Carried signals first, in order, then the late one; the late
    // activity result is gone with its run.
    let task = store.claim_activation(new).unwrap().unwrap();
    assert_eq!(
        task.inbox,
        vec![
            signal_event("early", "1", None),
            signal_event("extra", "3", None),
            signal_event("late", "2", Some("ops@example.com")),
        ]
    );
    store.release_activation(new, task.token, None).unwrap();

    drop(store);
    let db = raw_sled(dir.path());
    assert_eq!(keys_of_run(&db, "inbox", old), 0);
    assert_eq!(keys_of_run(&db, "inbox", new), 3);
    assert_eq!(keys_of_run(&db, "activity_tasks", old), 0);
}

fn the_id_points_at_the_new_run_for_signals_and_starts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = start(&store, "order-1", at(0));
    activate(
        &store,
        old,
        at(5),
        vec![continue_as_new("2", 8, Vec::new())],
    );
    let (new, _) = store.latest_run(&id()).unwrap().unwrap();

    // Nothing carried and nothing late: the new run is still ready for its
    // first activation.
    let task = store.claim_activation(new).unwrap().unwrap();
    assert!(task.inbox.is_empty());
    assert!(task.record.needs_first_activation);
    store.release_activation(new, task.token, None).unwrap();

    assert_eq!(store.signal(&id(), "after", payload("4")).unwrap(), new);
    assert_eq!(
        peek_inbox(&store, new),
        vec![signal_event("after", "4", None)]
    );
    assert!(matches!(
        store.start_workflow(start_request("order-1", at(6))),
        Err(StoreError::AlreadyRunning { run, .. }) if run == new
    ));
    let attached = store
        .start_workflow(refrain_history::StartRequest {
            on_conflict: IdConflictPolicy::AttachToOpen,
            ..start_request("order-1", at(6))
        })
        .unwrap();
    assert_eq!((attached.run, attached.started), (new, false));

    // The chain goes on: the next run continues this one.
    activate(
        &store,
        new,
        at(7),
        vec![continue_as_new("3", 9, Vec::new())],
    );
    let (third, record) = store.latest_run(&id()).unwrap().unwrap();
    assert_eq!(record.continued_from, Some(new));
    assert_eq!(
        store.run_record(new).unwrap().unwrap().continued_to,
        Some(third)
    );
    assert_eq!(
        store.read_history(third).unwrap(),
        vec![started_event("3", 9, at(7), new)]
    );
    // "after" was in the claimed inbox, so that activation applied it; it
    // was not carried, so the third run starts with an empty inbox.
    assert!(peek_inbox(&store, third).is_empty());
}

fn continuations_and_starts_share_the_run_counter() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = start(&store, "order-1", at(0));
    activate(&store, a, at(1), vec![continue_as_new("1", 1, Vec::new())]);
    let (b, _) = store.latest_run(&id()).unwrap().unwrap();
    let other = start(&store, "order-2", at(2));
    assert!(a < b && b < other, "{a} {b} {other}");
    assert_eq!(
        store.run_record(other).unwrap().unwrap().continued_from,
        None
    );
}

async fn wait_closed_returns_the_continued_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = start(&store, "order-1", at(0));
    let waiter = tokio::spawn({
        let store = store.clone();
        async move { store.wait_closed(old).await }
    });
    tokio::task::yield_now().await;
    activate(
        &store,
        old,
        at(3),
        vec![continue_as_new("5", 2, Vec::new())],
    );
    let record = waiter.await.unwrap().unwrap();
    let (new, _) = store.latest_run(&id()).unwrap().unwrap();
    assert_eq!(record.status, RunStatus::ContinuedAsNew);
    assert_eq!(record.outcome, None);
    assert_eq!(record.continued_to, Some(new));
    // Already closed: answered at once.
    assert_eq!(store.wait_closed(old).await.unwrap(), record);
}

fn a_continuation_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = {
        let store = open(dir.path());
        let old = start(&store, "order-1", at(0));
        activate(
            &store,
            old,
            at(1),
            vec![continue_as_new("1", 1, vec![carried("x", "1")])],
        );
        store.durable_blocking().unwrap();
        (old, store.latest_run(&id()).unwrap().unwrap().0)
    };
    let store = open(dir.path());
    assert_eq!(store.take_ready(10), vec![new]);
    assert_eq!(peek_inbox(&store, new), vec![signal_event("x", "1", None)]);
    assert_eq!(
        store.run_record(old).unwrap().unwrap().continued_to,
        Some(new)
    );
}

fn a_refused_continuation_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = start(&store, "order-1", at(0));
    let task = store.claim_activation(old).unwrap().unwrap();
    let huge = Payload::from_bytes(vec![b'x'; store.config().max_payload_bytes + 1]);
    let mut commit = commit_for(&task, at(1), vec![continue_as_new("1", 1, Vec::new())]);
    commit.events[1] = Event::WorkflowContinuedAsNew {
        input: huge,
        seed: 1,
        carried_signals: Vec::new(),
    };
    assert!(matches!(
        store.commit_activation(commit),
        Err(StoreError::PayloadTooLarge { .. })
    ));
    let mut stale = commit_for(&task, at(1), vec![continue_as_new("1", 1, Vec::new())]);
    stale.expected_last_seq = EventSeq(7);
    assert!(matches!(
        store.commit_activation(stale),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.latest_run(&id()).unwrap().unwrap().0, old);
    assert_eq!(store.list_runs(&Default::default()).unwrap().len(), 1);
    assert_eq!(store.read_history(old).unwrap().len(), 1);
}

fn signals_racing_a_continuation_arrive_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = start(&store, "order-1", at(0));
    activate(&store, old, at(1), Vec::new());
    const N: usize = 200;
    let sender = std::thread::spawn({
        let store = store.clone();
        move || {
            for i in 0..N {
                store.signal(&id(), "n", payload(&i.to_string())).unwrap();
            }
        }
    });
    // Whenever the claim lands, the workflow carries everything it was
    // given; what arrives later is moved or reaches the new run.
    let task = loop {
        if let Some(task) = store.claim_activation(old).unwrap() {
            break task;
        }
        std::thread::yield_now();
    };
    let carry = task
        .inbox
        .iter()
        .map(|e| match e {
            Event::SignalReceived { name, payload, .. } => SignalRecord {
                name: name.clone(),
                payload: payload.clone(),
                sender: None,
            },
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    store
        .commit_activation(commit_for(
            &task,
            at(2),
            vec![continue_as_new("1", 1, carry)],
        ))
        .unwrap();
    sender.join().unwrap();
    let (new, _) = store.latest_run(&id()).unwrap().unwrap();
    let received: Vec<Event> = peek_inbox(&store, new);
    let expected: Vec<Event> = (0..N)
        .map(|i| signal_event("n", &i.to_string(), None))
        .collect();
    assert_eq!(received, expected);
}

on_both_engines! {
    fn signals_racing_a_continuation_arrive_once_and_in_order;
    fn the_id_points_at_the_new_run_for_signals_and_starts;
    fn continuations_and_starts_share_the_run_counter;
    fn a_continuation_survives_a_restart;
    fn a_refused_continuation_writes_nothing;
    async fn wait_closed_returns_the_continued_record;
}
