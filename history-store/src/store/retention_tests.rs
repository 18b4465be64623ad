//! What a purge leaves behind: nothing under the run, in any table, and
//! the workflow id's entry only when it names a later run.

use super::*;
use crate::event::Event;
use crate::ids::{CommandSeq, WorkflowId};
use crate::samples::{p, site};
use crate::store::api::{ActivationCommit, IdConflictPolicy, StartRequest, StoreConfig};
use crate::store::Store;

const DAY: Duration = Duration::from_secs(86_400);

fn start(store: &Store, id: &str, now: Timestamp) -> RunId {
    let outcome = store
        .start_workflow(StartRequest {
            workflow_id: WorkflowId::new(id),
            workflow_type: "loan".into(),
            input: p("{}"),
            on_conflict: IdConflictPolicy::Reject,
            seed: 1,
            now,
        })
        .expect("start");
    outcome.run
}

/// Commits `commands` in `run`'s next activation at `now`; the inbox
/// items that arrive after the claim stay unhandled.
fn commit(store: &Store, run: RunId, now: Timestamp, commands: Vec<Event>, late: impl Fn()) {
    let task = store.claim_activation(run).expect("claim").expect("a task");
    late();
    let mut events = vec![Event::ActivationStarted { time: now }];
    events.extend(task.inbox.iter().filter(|e| !e.is_inbox_only()).cloned());
    events.extend(commands);
    store
        .commit_activation(ActivationCommit {
            run,
            token: task.token,
            expected_last_seq: task.record.last_seq,
            inbox_upto: task.inbox_upto,
            events,
            rejected_updates: Vec::new(),
            awaited_signals: Vec::new(),
        })
        .expect("commit");
}

/// Every key of every run table that belongs to `run`.
fn keys_of(store: &Store, run: RunId) -> Vec<(&'static str, Vec<u8>)> {
    let t = &store.inner.trees;
    let by_run = [
        ("runs", &t.runs),
        ("history", &t.history),
        ("inbox", &t.inbox),
        ("ready", &t.ready),
        ("activity_tasks", &t.activity_tasks),
        ("run_human_tasks", &t.run_human_tasks),
        ("updates", &t.updates),
    ];
    let by_time = [
        ("activity_ready", &t.activity_ready),
        ("activity_deadlines", &t.activity_deadlines),
        ("timers", &t.timers),
    ];
    let mut out = Vec::new();
    for (name, table) in by_run {
        for key in table.scan_prefix(keys::run_key(run)).keys() {
            out.push((name, key.expect("read").to_vec()));
        }
    }
    for (name, table) in by_time {
        for key in table.iter().keys() {
            let key = key.expect("read");
            if keys::parse_time_key(&key).is_ok_and(|(_, r, _)| r == run) {
                out.push((name, key.to_vec()));
            }
        }
    }
    for key in t.human_tasks.iter().keys() {
        let key = key.expect("read");
        if keys::parse_human_task_key(&key).is_ok_and(|(_, r, _)| r == run) {
            out.push(("human_tasks", key.to_vec()));
        }
    }
    out
}

#[test]
fn a_purged_run_leaves_no_key_behind_and_a_later_run_of_its_id_keeps_working() {
    let store = Store::in_memory(StoreConfig::default());
    let t0 = Timestamp::now();
    let id = WorkflowId::new("loan-7");
    let run = start(&store, "loan-7", t0);
    // A human task, assigned and left open; a signal and an update that
    // arrive after the claim of the closing activation, never handled.
    let assign = Event::HumanTaskAssigned {
        cmd: CommandSeq(1),
        task: "underwriting-review".into(),
        assignee: "ana".into(),
        form: None,
        deadline: Some(t0.saturating_add(DAY)),
        level: 0,
        escalations: Vec::new(),
        callsite: site("loan.rs", 1, 1),
    };
    commit(&store, run, t0, vec![assign], || {});
    assert!(!keys_of(&store, run).is_empty());
    let late = || {
        store.signal(&id, "note", p("1")).expect("signal");
        store
            .request_update(&id, "u-1", "raise", p("2"), t0)
            .expect("update");
    };
    let done = vec![Event::WorkflowCompleted { result: p("3") }];
    store.signal(&id, "wake", p("0")).expect("signal");
    commit(&store, run, t0, done, late);
    let left = keys_of(&store, run);
    for table in ["history", "inbox", "updates"] {
        assert!(
            left.iter().any(|(t, _)| *t == table),
            "the closed run has nothing in {table} to purge: {left:?}"
        );
    }

    // A later run of the same id, open, whose entry must survive.
    let later = start(&store, "loan-7", t0);
    let policy = RetentionPolicy::keep_for(DAY);
    let batch = store
        .purge_closed_blocking(PurgeRequest::new(policy, t0.saturating_add(2 * DAY)))
        .expect("purge");
    assert_eq!(batch.runs.iter().map(|r| r.run).collect::<Vec<_>>(), [run]);
    assert_eq!(keys_of(&store, run), Vec::new());
    assert!(store.list_human_tasks("ana").expect("list").is_empty());
    let (latest, _) = store.latest_run(&id).expect("read").expect("the later run");
    assert_eq!(latest, later);
    store
        .signal(&id, "note", p("4"))
        .expect("the later run takes signals");
    assert!(matches!(
        store.read_history(run),
        Err(StoreError::RunNotFound { run: r }) if r == run
    ));
}
