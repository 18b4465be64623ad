//! Durable timers: never early, exactly once, never after cancel, and
//! still there after a restart.

mod common;

use common::*;
use refrain_history::{CommandSeq, Event, PendingTimer, RunId, Store};

fn timer_cmds(store: &Store, run: RunId) -> Vec<PendingTimer> {
    store.run_record(run).unwrap().unwrap().pending_timers
}

fn a_timer_fires_only_when_due_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    activate(&store, run, at(0), vec![start_timer(1, at(5_000))]);
    assert_eq!(
        timer_cmds(&store, run),
        vec![PendingTimer {
            cmd: CommandSeq(1),
            fire_at: at(5_000)
        }]
    );
    assert_eq!(store.next_deadline().unwrap(), Some(at(5_000)));

    assert_eq!(store.fire_due(at(4_999)).unwrap(), 0);
    assert!(peek_inbox(&store, run).is_empty());
    assert_eq!(timer_cmds(&store, run).len(), 1);

    assert_eq!(store.fire_due(at(5_000)).unwrap(), 1);
    assert_eq!(store.fire_due(at(9_000)).unwrap(), 0);
    assert!(timer_cmds(&store, run).is_empty());
    assert_eq!(store.next_deadline().unwrap(), None);
    assert_eq!(store.take_ready(10), vec![run]);
    let task = store.claim_activation(run).unwrap().unwrap();
    assert_eq!(task.inbox, vec![Event::TimerFired { cmd: CommandSeq(1) }]);
}

fn a_cancelled_timer_never_fires() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    activate(
        &store,
        run,
        at(0),
        vec![start_timer(1, at(5_000)), start_timer(2, at(6_000))],
    );
    store
        .signal(&"order-1".into(), "approve", payload("1"))
        .unwrap();
    activate(
        &store,
        run,
        at(100),
        vec![Event::TimerCancelled { cmd: CommandSeq(1) }],
    );
    assert_eq!(
        timer_cmds(&store, run),
        vec![PendingTimer {
            cmd: CommandSeq(2),
            fire_at: at(6_000)
        }]
    );
    assert_eq!(store.next_deadline().unwrap(), Some(at(6_000)));
    assert_eq!(store.fire_due(at(1_000_000)).unwrap(), 1);
    assert_eq!(
        peek_inbox(&store, run),
        vec![Event::TimerFired { cmd: CommandSeq(2) }]
    );
}

fn a_timer_started_and_cancelled_in_one_activation_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    activate(
        &store,
        run,
        at(0),
        vec![
            start_timer(1, at(5_000)),
            Event::TimerCancelled { cmd: CommandSeq(1) },
        ],
    );
    assert!(timer_cmds(&store, run).is_empty());
    assert_eq!(store.next_deadline().unwrap(), None);
    assert_eq!(store.fire_due(at(1_000_000)).unwrap(), 0);
}

fn timers_survive_a_restart_and_overdue_ones_fire_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = {
        let store = open(dir.path());
        let run = start(&store, "order-1", at(0));
        activate(&store, run, at(0), vec![start_timer(1, at(30_000))]);
        run
    };
    let store = open(dir.path());
    assert_eq!(store.next_deadline().unwrap(), Some(at(30_000)));
    assert_eq!(store.fire_due(at(90_000)).unwrap(), 1);
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.next_deadline().unwrap(), None);
    assert_eq!(store.fire_due(at(90_000)).unwrap(), 0);
    assert_eq!(
        store.take_ready(10),
        vec![run],
        "the fired timer's run is ready"
    );
    assert_eq!(
        peek_inbox(&store, run),
        vec![Event::TimerFired { cmd: CommandSeq(1) }]
    );
}

fn racing_timer_services_fire_each_timer_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let runs: Vec<RunId> = (0..40)
        .map(|i| {
            let run = start(&store, &format!("order-{i}"), at(0));
            activate(&store, run, at(0), vec![start_timer(1, at(1_000 + i))]);
            run
        })
        .collect();
    let handled: usize = std::thread::scope(|s| {
        let services: Vec<_> = (0..4)
            .map(|_| s.spawn(|| store.fire_due(at(10_000)).unwrap()))
            .collect();
        services.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(handled, runs.len());
    for run in runs {
        assert_eq!(
            peek_inbox(&store, run),
            vec![Event::TimerFired { cmd: CommandSeq(1) }]
        );
    }
}

on_both_engines! {
    fn racing_timer_services_fire_each_timer_once;
    fn a_timer_fires_only_when_due_and_only_once;
    fn a_cancelled_timer_never_fires;
    fn a_timer_started_and_cancelled_in_one_activation_leaves_nothing;
    fn timers_survive_a_restart_and_overdue_ones_fire_once;
}
