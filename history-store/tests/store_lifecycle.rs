//! A run from start to close, and every way a client or worker request is
//! refused without writing anything.

mod common;

use common::*;
use refrain_history::codec::encode;
use refrain_history::{
    ActivationCommit, ActivityOptions, CommandSeq, DurabilityMode, Event, EventSeq, Failure,
    IdConflictPolicy, LeaseToken, RunFilter, RunStatus, Store, StoreConfig, StoreError, WorkflowId,
};
use std::time::Duration;

#[tokio::test]
async fn run_goes_from_start_to_outcome_durably() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        durability: DurabilityMode::Fsync,
        ..fast_config()
    };
    let store = Store::open(dir.path(), config).unwrap();

    let run = start(&store, "order-1", at(0));
    store.durable().await.unwrap();
    assert_eq!(store.take_ready(10), vec![run]);

    // Activation 1: schedule an activity and a timer.
    let task = store.claim_activation(run).unwrap().unwrap();
    assert!(task.record.needs_first_activation);
    assert!(task.inbox.is_empty());
    assert_eq!(task.record.last_seq, EventSeq(1));
    store
        .commit_activation(commit_for(
            &task,
            at(10),
            vec![
                schedule(1, ActivityOptions::default()),
                start_timer(2, at(60_000)),
            ],
        ))
        .unwrap();
    store.durable().await.unwrap();
    let record = store.run_record(run).unwrap().unwrap();
    assert_eq!(record.last_seq, EventSeq(4));
    assert_eq!(record.lease, None);
    assert!(!record.is_ready());
    assert_eq!(record.pending_activities.len(), 1);
    assert_eq!(record.pending_timers.len(), 1);
    assert!(
        store.take_ready(10).is_empty(),
        "nothing to do until a result arrives"
    );
    assert_eq!(store.next_deadline().unwrap(), Some(at(60_000)));

    // The activity runs and succeeds.
    let claimed = store.claim_activity_tasks(at(20), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    let act = &claimed[0];
    assert_eq!(act.attempt, 1);
    assert_eq!(act.idempotency_key(), format!("order-1/{}/1", run.0));
    let resolution = store
        .complete_activity(run, act.cmd, act.token, Ok(payload("\"reserved\"")), at(30))
        .unwrap();
    assert_eq!(resolution, refrain_history::ActivityResolution::Recorded);
    store.durable().await.unwrap();
    assert_eq!(store.take_ready(10), vec![run]);

    // Activation 2 sees the result and completes the workflow.
    let task = store.claim_activation(run).unwrap().unwrap();
    assert_eq!(
        task.inbox,
        vec![Event::ActivityCompleted {
            cmd: act.cmd,
            attempt: 1,
            result: payload("\"reserved\""),
        }]
    );
    store
        .commit_activation(commit_for(
            &task,
            at(40),
            vec![Event::WorkflowCompleted {
                result: payload("{\"invoice\":1}"),
            }],
        ))
        .unwrap();

    let closed = store.wait_closed(run).await.unwrap();
    assert_eq!(closed.status, RunStatus::Completed);
    assert_eq!(closed.outcome, Some(Ok(payload("{\"invoice\":1}"))));
    assert_eq!(closed.closed_at, Some(at(40)));
    assert!(closed.pending_timers.is_empty());
    assert_eq!(
        store.next_deadline().unwrap(),
        None,
        "closing removed the timer"
    );

    let history = store.read_history(run).unwrap();
    let kinds: Vec<_> = history.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled",
            "TimerStarted",
            "ActivationStarted",
            "ActivityCompleted",
            "WorkflowCompleted",
        ]
    );
    assert_eq!(closed.last_seq.0, history.len() as u64);
}

async fn wait_closed_wakes_when_the_run_closes_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    let waiter = tokio::spawn({
        let store = store.clone();
        async move { store.wait_closed(run).await }
    });
    tokio::task::yield_now().await;
    activate(
        &store,
        run,
        at(1),
        vec![Event::WorkflowFailed {
            failure: refrain_history::Failure::application("rejected", "no"),
        }],
    );
    let record = waiter.await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    assert!(matches!(record.outcome, Some(Err(ref f)) if f.kind == "rejected"));
    assert!(matches!(
        store.wait_closed(refrain_history::RunId(999)).await,
        Err(StoreError::RunNotFound { .. })
    ));
}

fn duplicate_start_is_rejected_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    let err = store
        .start_workflow(start_request("order-1", at(5)))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyRunning { ref workflow_id, run: r } if r == run && workflow_id.as_str() == "order-1"),
        "{err:?}"
    );
    assert_eq!(store.list_runs(&RunFilter::default()).unwrap().len(), 1);
    assert_eq!(store.read_history(run).unwrap().len(), 1);
    // The run counter did not move either.
    let other = start(&store, "order-2", at(6));
    assert_eq!(other.0, run.0 + 1);
}

fn use_existing_returns_the_latest_run_even_once_it_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut req = start_request("order-1", at(0));
    req.on_conflict = IdConflictPolicy::UseExisting;
    let first = store.start_workflow(req.clone()).unwrap();
    assert!(first.started, "a new id starts");
    let again = store.start_workflow(req.clone()).unwrap();
    assert_eq!((again.run, again.started), (first.run, false));

    activate(
        &store,
        first.run,
        at(2),
        vec![Event::WorkflowCompleted {
            result: payload("1"),
        }],
    );
    let after = store.start_workflow(req).unwrap();
    assert_eq!((after.run, after.started), (first.run, false));
    assert_eq!(store.list_runs(&RunFilter::default()).unwrap().len(), 1);
}

fn attach_to_open_returns_the_open_run_and_a_closed_run_allows_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    let mut req = start_request("order-1", at(1));
    req.on_conflict = IdConflictPolicy::AttachToOpen;
    let out = store.start_workflow(req.clone()).unwrap();
    assert_eq!((out.run, out.started), (run, false));
    assert_eq!(store.list_runs(&RunFilter::default()).unwrap().len(), 1);

    activate(
        &store,
        run,
        at(2),
        vec![Event::WorkflowCompleted {
            result: payload("1"),
        }],
    );
    let out = store.start_workflow(req).unwrap();
    assert!(out.started);
    assert_ne!(out.run, run);
    let (latest, record) = store.latest_run(&"order-1".into()).unwrap().unwrap();
    assert_eq!(latest, out.run);
    assert_eq!(record.status, RunStatus::Running);

    let running = store
        .list_runs(&RunFilter {
            status: Some(RunStatus::Running),
            workflow_type: None,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].run, out.run);
    let none = store
        .list_runs(&RunFilter {
            status: None,
            workflow_type: Some("other".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(none.is_empty());
}

fn signals_reach_the_inbox_and_refused_signals_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());

    let missing = store.signal(&WorkflowId::new("nobody"), "approve", payload("1"));
    assert!(matches!(missing, Err(StoreError::WorkflowNotFound { .. })));
    assert!(store.list_runs(&RunFilter::default()).unwrap().is_empty());

    let run = start(&store, "order-1", at(0));
    activate(&store, run, at(1), vec![]);
    assert!(store.take_ready(10).contains(&run));
    assert!(store.take_ready(10).is_empty());
    assert_eq!(
        store
            .signal(&"order-1".into(), "approve", payload("true"))
            .unwrap(),
        run
    );
    assert_eq!(store.take_ready(10), vec![run]);
    let task = store.claim_activation(run).unwrap().unwrap();
    assert_eq!(
        task.inbox,
        vec![Event::SignalReceived {
            name: "approve".into(),
            payload: payload("true"),
            sender: None,
        }]
    );
    store
        .commit_activation(commit_for(
            &task,
            at(2),
            vec![Event::WorkflowCompleted {
                result: payload("1"),
            }],
        ))
        .unwrap();

    let before = store.run_record(run).unwrap().unwrap();
    let closed = store.signal(&"order-1".into(), "approve", payload("true"));
    assert!(
        matches!(closed, Err(StoreError::WorkflowClosed { run: r, status: RunStatus::Completed, .. }) if r == run),
        "{closed:?}"
    );
    assert_eq!(store.run_record(run).unwrap().unwrap(), before);
    assert_eq!(
        store.read_history(run).unwrap().len() as u64,
        before.last_seq.0
    );
}

fn a_stale_lease_cannot_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    let first = store.claim_activation(run).unwrap().unwrap();
    assert!(
        store.claim_activation(run).unwrap().is_none(),
        "already leased in this epoch"
    );
    store
        .release_activation(run, first.token, Some("panicked".into()))
        .unwrap();
    assert_eq!(
        store
            .run_record(run)
            .unwrap()
            .unwrap()
            .last_task_failure
            .as_deref(),
        Some("panicked")
    );
    let second = store.claim_activation(run).unwrap().unwrap();
    assert_ne!(first.token, second.token);

    let err = store
        .commit_activation(commit_for(&first, at(1), vec![]))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::LeaseLost { run: r } if r == run),
        "{err:?}"
    );
    assert!(matches!(
        store.release_activation(run, first.token, None),
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(store.read_history(run).unwrap().len(), 1);

    store
        .commit_activation(commit_for(&second, at(1), vec![]))
        .unwrap();
    let record = store.run_record(run).unwrap().unwrap();
    assert_eq!(
        record.last_task_failure, None,
        "a commit clears the last failure"
    );
}

fn a_moved_history_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    let task = store.claim_activation(run).unwrap().unwrap();
    let mut commit = commit_for(&task, at(1), vec![]);
    commit.expected_last_seq = EventSeq(5);
    let err = store.commit_activation(commit).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: EventSeq(5),
                found: EventSeq(1),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.read_history(run).unwrap().len(), 1);
    // The lease survives a refused commit.
    store
        .commit_activation(commit_for(&task, at(1), vec![]))
        .unwrap();
}

fn malformed_commits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    let task = store.claim_activation(run).unwrap().unwrap();
    let with = |events: Vec<Event>| ActivationCommit {
        run,
        token: task.token,
        expected_last_seq: EventSeq(1),
        inbox_upto: task.inbox_upto,
        events,
        rejected_updates: Vec::new(),
        awaited_signals: Vec::new(),
    };
    let done = Event::WorkflowCompleted {
        result: payload("1"),
    };
    let bad = [
        vec![],
        vec![done.clone()],
        vec![
            Event::ActivationStarted { time: at(1) },
            done.clone(),
            start_timer(1, at(5)),
        ],
        vec![
            Event::ActivationStarted { time: at(1) },
            start_timer(1, at(5)),
            Event::TimerFired {
                cmd: refrain_history::CommandSeq(1),
            },
        ],
        vec![
            Event::ActivationStarted { time: at(1) },
            Event::ActivationStarted { time: at(1) },
        ],
        vec![
            Event::ActivationStarted { time: at(1) },
            start_timer(1, at(5)),
            start_timer(1, at(6)),
        ],
    ];
    for events in bad {
        let err = store.commit_activation(with(events.clone())).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidCommit { .. }),
            "{events:?} gave {err:?}"
        );
    }
    let mut past_tail = with(vec![Event::ActivationStarted { time: at(1) }]);
    past_tail.inbox_upto = 1;
    assert!(matches!(
        store.commit_activation(past_tail),
        Err(StoreError::InvalidCommit { .. })
    ));
    assert_eq!(store.read_history(run).unwrap().len(), 1);
    assert_eq!(store.next_deadline().unwrap(), None);
}

fn an_unleased_task_is_fenced_by_the_last_seq_and_by_leases() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    let first = store.begin_activation(run).unwrap().expect("ready");
    let twin = store
        .begin_activation(run)
        .unwrap()
        .expect("writes nothing");
    assert_eq!(first.token, LeaseToken::UNLEASED);
    assert_eq!(store.read_history(run).unwrap().len(), 1);

    // While someone holds a lease, an unleased commit is refused.
    let leased = store.claim_activation(run).unwrap().unwrap();
    assert!(store.begin_activation(run).unwrap().is_none());
    assert!(matches!(
        store.commit_activation(commit_for(&first, at(1), vec![])),
        Err(StoreError::LeaseLost { .. })
    ));
    store.release_activation(run, leased.token, None).unwrap();

    // Two unleased tasks taken at the same point: the first commit wins,
    // the second finds the history moved and writes nothing.
    let timer = start_timer(1, at(1_000));
    store
        .commit_activation(commit_for(&first, at(1), vec![timer]))
        .unwrap();
    let err = store
        .commit_activation(commit_for(&twin, at(1), vec![]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: EventSeq(1),
                found: EventSeq(3),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.read_history(run).unwrap().len(), 3);
    assert!(
        store.begin_activation(run).unwrap().is_none(),
        "nothing to do until the timer fires"
    );

    // A failed unleased task is released like a leased one.
    store.fire_due(at(1_000)).unwrap();
    let task = store.begin_activation(run).unwrap().unwrap();
    assert_eq!(task.inbox.len(), 1);
    store
        .release_activation(run, task.token, Some("panicked".into()))
        .unwrap();
    let record = store.run_record(run).unwrap().unwrap();
    assert_eq!(record.last_task_failure.as_deref(), Some("panicked"));
}

fn reopening_voids_old_leases_and_requeues_ready_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (run, idle, stale) = {
        let store = open(dir.path());
        let run = start(&store, "order-1", at(0));
        let idle = start(&store, "order-2", at(0));
        activate(&store, idle, at(1), vec![]);
        let stale = store.claim_activation(run).unwrap().unwrap();
        (run, idle, stale)
    };
    let store = open(dir.path());
    assert_eq!(
        store.take_ready(10),
        vec![run],
        "only runs with work are queued"
    );
    let fresh = store
        .claim_activation(run)
        .unwrap()
        .expect("the old epoch's lease is void");
    assert!(matches!(
        store.commit_activation(commit_for(&stale, at(1), vec![])),
        Err(StoreError::LeaseLost { .. })
    ));
    store
        .commit_activation(commit_for(&fresh, at(1), vec![]))
        .unwrap();
    assert!(store.claim_activation(idle).unwrap().is_none());
    assert_eq!(store.read_history(run).unwrap().len(), 2);
}

#[test]
fn oversized_payloads_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_payload_bytes: 16,
        ..fast_config()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let big = payload(&"x".repeat(17));

    let mut req = start_request("order-1", at(0));
    req.input = big.clone();
    assert!(matches!(
        store.start_workflow(req),
        Err(StoreError::PayloadTooLarge {
            size: 17,
            limit: 16
        })
    ));
    assert!(store.list_runs(&RunFilter::default()).unwrap().is_empty());
    assert!(store.take_ready(10).is_empty());

    let run = start(&store, "order-1", at(0));
    assert!(matches!(
        store.signal(&"order-1".into(), "s", big.clone()),
        Err(StoreError::PayloadTooLarge { .. })
    ));
    let task = store.claim_activation(run).unwrap().unwrap();
    assert!(task.inbox.is_empty());
    assert!(matches!(
        store.commit_activation(commit_for(
            &task,
            at(1),
            vec![Event::WorkflowCompleted {
                result: big.clone()
            }]
        )),
        Err(StoreError::PayloadTooLarge { .. })
    ));
    assert_eq!(store.read_history(run).unwrap().len(), 1);

    let mut options = ActivityOptions::default();
    options.retry.max_attempts = 1;
    store
        .commit_activation(commit_for(&task, at(1), vec![schedule(1, options)]))
        .unwrap();
    let act = store.claim_activity_tasks(at(1), 1).unwrap().remove(0);
    assert!(matches!(
        store.complete_activity(run, act.cmd, act.token, Ok(big.clone()), at(2)),
        Err(StoreError::PayloadTooLarge { .. })
    ));
    assert!(matches!(
        store.heartbeat_activity(run, act.cmd, act.token, Some(big), at(2)),
        Err(StoreError::PayloadTooLarge { .. })
    ));
    assert!(store.activity_task(run, act.cmd).unwrap().is_some());
}

async fn a_queued_run_wakes_a_consumer_that_starts_waiting_late() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    store.requeue(run);
    assert_eq!(store.take_ready(10), vec![run], "queued once, deduplicated");
    // The pushes above left a permit: a consumer that saw an empty queue
    // and only now waits is not stranded.
    tokio::time::timeout(Duration::from_secs(10), store.ready_notify().notified())
        .await
        .expect("permit stored by notify_one");
    store.requeue(run);
    assert_eq!(store.take_ready(10), vec![run]);
}

#[test]
fn a_large_payload_is_acknowledged_durably_and_reads_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        durability: DurabilityMode::Fsync,
        ..fast_config()
    };
    let input = refrain_history::Payload::from_bytes((0..1_000_000u32).map(|i| i as u8).collect());
    let run = {
        let store = Store::open(dir.path(), config.clone()).unwrap();
        let mut req = start_request("order-1", at(0));
        req.input = input.clone();
        let run = store.start_workflow(req).unwrap().run;
        store.durable_blocking().unwrap();
        run
    };
    // sled keeps values this large in separate blob files, which its own
    // flush does not fsync; the store's Fsync mode must cover them.
    let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
    assert!(
        blobs > 0,
        "expected sled to use blob files for a 1 MB value"
    );
    let store = Store::open(dir.path(), config).unwrap();
    match &store.read_history(run).unwrap()[..] {
        [Event::WorkflowStarted { input: read, .. }] => assert_eq!(*read, input),
        other => panic!("unexpected history {other:?}"),
    }
}

/// Sum of the stored (enveloped) sizes of `events`.
fn encoded_size(events: &[Event]) -> u64 {
    events.iter().map(|e| encode(e).unwrap().len() as u64).sum()
}

fn fail(message: &str) -> Event {
    Event::WorkflowFailed {
        failure: Failure::application("too-long", message),
    }
}

fn history_bytes_grows_by_the_encoded_size_of_each_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    let history = store.read_history(run).unwrap();
    let bytes = |store: &Store| store.run_record(run).unwrap().unwrap().history_bytes;
    assert_eq!(bytes(&store), encoded_size(&history));
    assert!(bytes(&store) > 0);

    let before = bytes(&store);
    activate(
        &store,
        run,
        at(1),
        vec![
            schedule(1, ActivityOptions::default()),
            Event::PatchMarker {
                patch_id: "fraud-check-v2".into(),
                deprecated: false,
            },
            start_timer(2, at(60_000)),
        ],
    );
    let history = store.read_history(run).unwrap();
    assert_eq!(history.len(), 5);
    assert_eq!(bytes(&store), before + encoded_size(&history[1..]));

    store
        .signal(&"order-1".into(), "approve", payload("true"))
        .unwrap();
    let before = bytes(&store);
    activate(
        &store,
        run,
        at(2),
        vec![Event::WorkflowCompleted {
            result: payload("\"done\""),
        }],
    );
    let history = store.read_history(run).unwrap();
    assert_eq!(history.len(), 8);
    assert_eq!(bytes(&store), before + encoded_size(&history[5..]));
    assert_eq!(bytes(&store), encoded_size(&history));
}

#[test]
fn a_commit_past_the_event_limit_is_refused_but_a_lone_failure_closes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_history_events: 4,
        ..fast_config()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let run = start(&store, "order-1", at(0));
    activate(
        &store,
        run,
        at(1),
        vec![schedule(1, ActivityOptions::default())],
    );
    let task = store.claim_activation(run).unwrap();
    assert!(task.is_none(), "nothing to do yet");
    store
        .signal(&"order-1".into(), "cancel", payload("1"))
        .unwrap();
    let task = store.claim_activation(run).unwrap().unwrap();
    let record = store.run_record(run).unwrap().unwrap();
    assert_eq!(record.last_seq, EventSeq(3));

    // 3 + ActivationStarted + SignalReceived + 2 timers = 7 > 4.
    let commit = commit_for(
        &task,
        at(2),
        vec![start_timer(2, at(9)), start_timer(3, at(9))],
    );
    let expected_bytes = record.history_bytes + encoded_size(&commit.events);
    let err = store.commit_activation(commit).unwrap_err();
    match &err {
        StoreError::HistoryLimitExceeded {
            run: r,
            events,
            bytes,
            max_events,
            max_bytes,
        } => {
            assert_eq!(*r, run);
            assert_eq!(*events, 7);
            assert_eq!(*bytes, expected_bytes);
            assert_eq!(*max_events, 4);
            assert_eq!(*max_bytes, StoreConfig::default().max_history_bytes);
        }
        other => panic!("expected HistoryLimitExceeded, got {other:?}"),
    }
    assert!(err.to_string().contains("7 events (max 4)"), "{err}");
    // Nothing written: record (lease included), history, timers.
    assert_eq!(store.run_record(run).unwrap().unwrap(), record);
    assert_eq!(store.read_history(run).unwrap().len(), 3);
    assert_eq!(store.next_deadline().unwrap(), None);

    // A failure alongside another command is not exempt.
    let commit = commit_for(&task, at(2), vec![start_timer(2, at(9)), fail("no")]);
    assert!(matches!(
        store.commit_activation(commit),
        Err(StoreError::HistoryLimitExceeded { events: 7, .. })
    ));
    assert_eq!(store.run_record(run).unwrap().unwrap(), record);

    // A lone WorkflowFailed is accepted past the limit (3 + 3 = 6 > 4); the
    // inbound signal it applies does not count as a command.
    store
        .commit_activation(commit_for(&task, at(3), vec![fail("history too long")]))
        .unwrap();
    let closed = store.run_record(run).unwrap().unwrap();
    assert_eq!(closed.status, RunStatus::Failed);
    assert_eq!(closed.last_seq, EventSeq(6));
    assert_eq!(closed.closed_at, Some(at(3)));
    assert!(store.activity_task(run, CommandSeq(1)).unwrap().is_none());
    assert_eq!(
        closed.history_bytes,
        encoded_size(&store.read_history(run).unwrap())
    );
}

#[test]
fn a_commit_past_the_byte_limit_is_refused_but_a_lone_failure_closes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_history_bytes: 400,
        ..fast_config()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let run = start(&store, "order-1", at(0));
    let task = store.claim_activation(run).unwrap().unwrap();
    let record = store.run_record(run).unwrap().unwrap();
    assert!(record.history_bytes < 400);

    let big = Event::SideEffectRecorded {
        cmd: CommandSeq(1),
        value: payload(&"x".repeat(500)),
        callsite: callsite(),
    };
    let commit = commit_for(&task, at(1), vec![big]);
    let expected_bytes = record.history_bytes + encoded_size(&commit.events);
    assert!(matches!(
        store.commit_activation(commit),
        Err(StoreError::HistoryLimitExceeded { events: 3, bytes, max_events: 50_000, max_bytes: 400, .. })
            if bytes == expected_bytes
    ));
    assert_eq!(store.run_record(run).unwrap().unwrap(), record);
    assert_eq!(store.read_history(run).unwrap().len(), 1);

    // Under the limit still commits.
    store
        .commit_activation(commit_for(&task, at(1), vec![start_timer(1, at(50))]))
        .unwrap();
    let task = {
        store.fire_due(at(50)).unwrap();
        store.claim_activation(run).unwrap().unwrap()
    };
    store
        .commit_activation(commit_for(&task, at(51), vec![fail(&"y".repeat(500))]))
        .unwrap();
    let closed = store.run_record(run).unwrap().unwrap();
    assert_eq!(closed.status, RunStatus::Failed);
    assert!(closed.history_bytes > 400);
    assert_eq!(
        closed.history_bytes,
        encoded_size(&store.read_history(run).unwrap())
    );
}

/// Regression: blocking store calls made from one async task used to spin
/// forever once the task had spent tokio's cooperative budget (every poll
/// of the reply channel returned `Pending` with an immediate wake). The
/// runtime runs on its own thread so that a hang fails the test.
#[test]
fn blocking_calls_from_an_async_task_never_spin_on_the_task_budget() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (done_tx, done) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            // Far more than the budget of one task (128), without yielding.
            for i in 0..1_000 {
                start(&store, &format!("order-{i}"), at(0));
            }
        });
        let _ = done_tx.send(());
    });
    done.recv_timeout(Duration::from_secs(60))
        .expect("1,000 blocking starts from one task finish");
    worker.join().unwrap();
}

on_both_engines! {
    fn duplicate_start_is_rejected_and_writes_nothing;
    fn use_existing_returns_the_latest_run_even_once_it_closed;
    fn attach_to_open_returns_the_open_run_and_a_closed_run_allows_a_new_one;
    fn signals_reach_the_inbox_and_refused_signals_write_nothing;
    fn a_stale_lease_cannot_commit;
    fn a_moved_history_is_a_conflict;
    fn malformed_commits_are_refused;
    fn an_unleased_task_is_fenced_by_the_last_seq_and_by_leases;
    fn reopening_voids_old_leases_and_requeues_ready_runs;
    fn history_bytes_grows_by_the_encoded_size_of_each_commit;
    async fn wait_closed_wakes_when_the_run_closes_later;
    async fn a_queued_run_wakes_a_consumer_that_starts_waiting_late;
}
