//! The transitions run directly over fresh memory tables, one transaction
//! at a time (`testing::Tables`): what each writes, and what each refuses
//! without writing anything.
//!
//! - an activation commit that schedules an activity and starts a timer
//! - an attempt whose deadline passes is retried; its late result is refused
//!   by its token
//! - a child started by a commit tells its parent when it closes
//! - a human task decided twice: the second decision is refused
//! - a decision made as an assignee the task escalated away from is refused
//! - an update accepted and completed by a commit is answered
//! - a commit made against a moved history is refused, nothing written

use super::activation::{self, CommitLimits};
use super::activities::{self, Claim};
use super::effects::Effects;
use super::human_tasks;
use super::leases::Owner;
use super::start::{start_in_tx, RunNumber};
use super::tables::{decode, encode, get_run};
use super::testing::Tables;
use super::timers;
use super::updates::{self, UpdateRecord, UpdateState};
use crate::error::StoreError;
use crate::event::{Callsite, Event, ParentClosePolicy, Payload};
use crate::ids::{CommandSeq, EventSeq, LeaseToken, RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::options::ActivityOptions;
use crate::store::api::{ActivationCommit, ActivityResolution, IdConflictPolicy};
use crate::store::engine::Bytes;
use crate::store::records::{ActivityState, ActivityTaskRecord, PendingTimer, RunRecord};
use std::time::Duration;

const OWNER: Owner = Owner {
    id: 1,
    shared: false,
};
pub(super) const T0: Timestamp = Timestamp(1_000_000);
pub(super) const T1: Timestamp = Timestamp(2_000_000);
pub(super) const T2: Timestamp = Timestamp(3_000_000);
pub(super) const LIMITS: CommitLimits = CommitLimits {
    max_payload_bytes: 1 << 20,
    max_history_events: 1_000,
    max_history_bytes: 1 << 20,
};

/// Starts a run of `id` as a client's start would.
pub(super) fn start(t: &Tables, id: &str) -> RunId {
    let workflow_id = WorkflowId::new(id);
    let started = Event::WorkflowStarted {
        workflow_type: "wf".into(),
        workflow_id: workflow_id.clone(),
        input: Payload(vec![]),
        seed: 0,
        start_time: T0,
        continued_from: None,
        parent: None,
    };
    let event = encode(&started, "history", None).unwrap();
    let record = RunRecord::started(
        workflow_id.clone(),
        "wf".into(),
        T0,
        event.len() as u64,
        None,
        None,
    );
    let outcome = t
        .run(|tx| {
            start_in_tx(
                (tx.meta, tx.ids, tx.task.runs, tx.history, tx.task.ready),
                RunNumber::Draw(tx.run_ids),
                &workflow_id,
                IdConflictPolicy::Reject,
                &event,
                &record,
            )
        })
        .unwrap();
    assert!(outcome.started);
    outcome.run
}

pub(super) fn record(t: &Tables, run: RunId) -> RunRecord {
    t.run(|tx| get_run(tx.task.runs, run)).unwrap().unwrap()
}

/// The activation commit of `commands` at `time`, made against the run as
/// it stands (its whole inbox consumed).
pub(super) fn activation(
    t: &Tables,
    run: RunId,
    time: Timestamp,
    commands: Vec<Event>,
) -> ActivationCommit {
    let r = record(t, run);
    let mut events = vec![Event::ActivationStarted { time }];
    events.extend(commands);
    ActivationCommit {
        run,
        token: LeaseToken::UNLEASED,
        expected_last_seq: r.last_seq,
        inbox_upto: r.inbox_tail,
        events,
        rejected_updates: vec![],
        awaited_signals: Vec::new(),
    }
}

fn apply(t: &Tables, commit: &ActivationCommit) -> Result<Effects, StoreError> {
    let prepared = activation::prepare(commit, LIMITS, OWNER, T2)?;
    t.run(|tx| activation::apply(tx, commit, &prepared))
}

pub(super) fn commit(t: &Tables, run: RunId, time: Timestamp, commands: Vec<Event>) -> Effects {
    apply(t, &activation(t, run, time, commands)).unwrap()
}

pub(super) fn scheduled(cmd: u32, options: ActivityOptions) -> Event {
    Event::ActivityScheduled {
        cmd: CommandSeq(cmd),
        activity_type: "charge".into(),
        input: Payload(b"order-1".to_vec()),
        options,
        callsite: Callsite::default(),
    }
}

pub(super) fn timer(cmd: u32, fire_at: Timestamp) -> Event {
    Event::TimerStarted {
        cmd: CommandSeq(cmd),
        fire_at,
        callsite: Callsite::default(),
    }
}

/// The last item of `run`'s inbox.
fn last_inbox_item(t: &Tables, run: RunId) -> Event {
    let r = record(t, run);
    let key = keys::run_seq_key(run, r.inbox_tail - 1).to_vec();
    decode(&t.contents("inbox")[&key], "inbox", Some(run)).unwrap()
}

#[test]
fn a_commit_schedules_its_activity_and_starts_its_timer() {
    let t = Tables::new();
    let run = start(&t, "order-1");
    let fire_at = T1.saturating_add(Duration::from_secs(60));
    let fx = commit(
        &t,
        run,
        T1,
        vec![scheduled(1, ActivityOptions::default()), timer(2, fire_at)],
    );
    assert!(fx.activity_scheduled && fx.timer_started);
    assert!(!fx.ready, "nothing in the inbox: no work for the run");
    assert!(fx.closed.is_empty() && fx.also_ready.is_empty());

    // The history holds the start and the three committed events.
    let history: Vec<Vec<u8>> = (1..=4)
        .map(|s| keys::run_seq_key(run, s).to_vec())
        .collect();
    assert_eq!(t.keys("history"), history);
    // The task, claimable at the activation's time, and its index entry.
    let tasks = t.contents("activity_tasks");
    let task: ActivityTaskRecord = decode(
        &tasks[&keys::task_key(run, CommandSeq(1)).to_vec()],
        "activity task",
        Some(run),
    )
    .unwrap();
    assert_eq!(task.attempt, 1);
    assert_eq!(task.first_scheduled_at, T1);
    assert_eq!(task.state, ActivityState::Scheduled { visible_at: T1 });
    assert_eq!(
        t.keys("activity_ready"),
        vec![keys::time_key(T1, run, CommandSeq(1)).to_vec()]
    );
    assert!(t.keys("activity_deadlines").is_empty());
    // The timer, indexed at its fire time.
    assert_eq!(
        t.keys("timers"),
        vec![keys::time_key(fire_at, run, CommandSeq(2)).to_vec()]
    );
    // The run waits on both, and nothing else.
    let r = record(&t, run);
    assert_eq!(r.last_seq, EventSeq(4));
    assert_eq!(r.pending_activities, vec![CommandSeq(1)]);
    assert_eq!(
        r.pending_timers,
        vec![PendingTimer {
            cmd: CommandSeq(2),
            fire_at
        }]
    );
    assert!(!r.needs_first_activation);
    assert!(t.keys("ready").is_empty());
}

#[test]
fn a_timed_out_attempt_is_retried_and_its_late_result_refused() {
    let t = Tables::new();
    let run = start(&t, "order-1");
    let cmd = CommandSeq(1);
    let options = ActivityOptions {
        start_to_close: Some(Duration::from_secs(10)),
        ..ActivityOptions::default()
    };
    commit(&t, run, T1, vec![scheduled(1, options)]);
    let token = LeaseToken(41);
    let ready_key = Bytes::from(&keys::time_key(T1, run, cmd)[..]);
    let claim = t
        .run(|tx| activities::claim_one(&tx.task, &ready_key, (token, OWNER.id), T1))
        .unwrap();
    let Claim::Claimed(attempt) = claim else {
        panic!("the scheduled task was not claimed");
    };
    assert_eq!(attempt.deadline, T1.saturating_add(Duration::from_secs(10)));

    // The deadline passes: the attempt fails as timed out, a retry follows
    // after the policy's backoff (1 s for the first).
    let late = attempt.deadline.saturating_add(Duration::from_millis(5));
    let deadline_key = Bytes::from(&keys::time_key(attempt.deadline, run, cmd)[..]);
    let expired = t
        .run(|tx| timers::expire_attempt(&tx.task, &deadline_key, late))
        .unwrap();
    let retry_at = late.saturating_add(Duration::from_secs(1));
    let retried = ActivityResolution::RetryScheduled {
        attempt: 2,
        at: retry_at,
    };
    assert_eq!(expired, Some((run, retried)));
    assert!(t.keys("activity_deadlines").is_empty());
    assert_eq!(
        t.keys("activity_ready"),
        vec![keys::time_key(retry_at, run, cmd).to_vec()]
    );

    // The retry starts under a token of its own; then the timed-out
    // attempt's result arrives: its token no longer runs the task, so
    // nothing is recorded.
    let retry_key = Bytes::from(&keys::time_key(retry_at, run, cmd)[..]);
    let claim = t
        .run(|tx| activities::claim_one(&tx.task, &retry_key, (LeaseToken(42), OWNER.id), retry_at))
        .unwrap();
    assert!(matches!(claim, Claim::Claimed(ref a) if a.attempt == 2));
    let before = t.snapshot();
    let late_result = Ok(Payload(b"charged".to_vec()));
    let refused = t.run(|tx| activities::complete(&tx.task, run, cmd, token, &late_result, late));
    assert!(
        matches!(refused, Err(StoreError::StaleActivity { run: r, cmd: c }) if r == run && c == cmd),
        "{refused:?}"
    );
    assert_eq!(t.snapshot(), before);
    assert_eq!(record(&t, run).inbox_tail, 0, "no outcome reached the run");
}

#[test]
fn a_child_started_by_a_commit_tells_its_parent_when_it_closes() {
    let t = Tables::new();
    let parent = start(&t, "parent");
    let fx = commit(
        &t,
        parent,
        T1,
        vec![Event::ChildWorkflowStarted {
            cmd: CommandSeq(1),
            workflow_type: "child".into(),
            workflow_id: WorkflowId::new("parent/child"),
            input: Payload(vec![]),
            seed: 7,
            parent_close: ParentClosePolicy::Abandon,
            callsite: Callsite::default(),
        }],
    );
    let [child] = fx.also_ready[..] else {
        panic!("expected one child queued, got {:?}", fx.also_ready);
    };
    let child_record = record(&t, child);
    assert!(child_record.is_ready());
    assert_eq!(child_record.parent.as_ref().map(|p| p.run), Some(parent));
    assert_eq!(record(&t, parent).pending_children.len(), 1);

    let result = Payload(b"done".to_vec());
    let fx = commit(
        &t,
        child,
        T2,
        vec![Event::WorkflowCompleted {
            result: result.clone(),
        }],
    );
    assert_eq!(fx.closed, vec![child]);
    assert_eq!(fx.also_ready, vec![parent]);
    let p = record(&t, parent);
    assert!(p.pending_children.is_empty());
    assert!(p.is_ready());
    assert_eq!(
        last_inbox_item(&t, parent),
        Event::ChildWorkflowCompleted {
            cmd: CommandSeq(1),
            result
        }
    );
}

#[test]
fn a_human_task_is_decided_once() {
    let t = Tables::new();
    let run = start(&t, "expense-9");
    let cmd = CommandSeq(1);
    commit(
        &t,
        run,
        T1,
        vec![Event::HumanTaskAssigned {
            cmd,
            task: "approve".into(),
            assignee: "ann".into(),
            form: None,
            deadline: None,
            level: 0,
            callsite: Callsite::default(),
            escalations: Vec::new(),
        }],
    );
    assert_eq!(t.keys("human_tasks").len(), 1);
    assert_eq!(t.keys("run_human_tasks").len(), 1);
    let decision = |by: &str| Event::HumanTaskDecided {
        cmd,
        decision: Payload(b"yes".to_vec()),
        decided_by: by.into(),
        comment: None,
        decided_at: T2,
    };
    let decide = |by: &str| {
        let event = decision(by);
        t.run(|tx| {
            let tables = (
                tx.task.runs,
                tx.task.inbox,
                tx.task.ready,
                tx.human_tasks,
                tx.run_human_tasks,
            );
            human_tasks::decide(tables, run, cmd, None, &event)
        })
    };
    decide("ann").unwrap();
    assert!(t.keys("human_tasks").is_empty());
    assert!(t.keys("run_human_tasks").is_empty());
    assert_eq!(last_inbox_item(&t, run), decision("ann"));

    let before = t.snapshot();
    let second = decide("bob");
    assert!(
        matches!(second, Err(StoreError::HumanTaskNotFound { run: r, cmd: c }) if r == run && c == cmd),
        "{second:?}"
    );
    assert_eq!(t.snapshot(), before);
}

#[test]
fn a_decision_made_as_an_earlier_assignee_is_refused() {
    let t = Tables::new();
    let run = start(&t, "loan-7");
    let cmd = CommandSeq(1);
    commit(
        &t,
        run,
        T1,
        vec![Event::HumanTaskAssigned {
            cmd,
            task: "underwriting-review".into(),
            assignee: "underwriter-1".into(),
            form: None,
            deadline: Some(T2),
            level: 0,
            callsite: Callsite::default(),
            escalations: Vec::new(),
        }],
    );
    // The deadline passed: the workflow moved the task on.
    commit(
        &t,
        run,
        T2,
        vec![Event::HumanTaskEscalated {
            cmd,
            from: "underwriter-1".into(),
            to: "credit-manager".into(),
            level: 1,
            deadline: None,
        }],
    );
    let decide = |by: &str, expected: Option<&str>| {
        let event = Event::HumanTaskDecided {
            cmd,
            decision: Payload(b"yes".to_vec()),
            decided_by: by.into(),
            comment: None,
            decided_at: T2,
        };
        t.run(|tx| {
            let tables = (
                tx.task.runs,
                tx.task.inbox,
                tx.task.ready,
                tx.human_tasks,
                tx.run_human_tasks,
            );
            human_tasks::decide(tables, run, cmd, expected, &event)
        })
    };
    let before = t.snapshot();
    let stale = decide("underwriter-1", Some("underwriter-1"));
    assert!(
        matches!(&stale, Err(StoreError::HumanTaskReassigned { expected, assignee, .. })
            if expected == "underwriter-1" && assignee == "credit-manager"),
        "{stale:?}"
    );
    assert_eq!(t.snapshot(), before);

    decide("credit-manager", Some("credit-manager")).unwrap();
    assert!(t.keys("human_tasks").is_empty());
    assert!(matches!(
        last_inbox_item(&t, run),
        Event::HumanTaskDecided { decided_by, .. } if decided_by == "credit-manager"
    ));
}

#[test]
fn an_update_accepted_and_completed_by_a_commit_is_answered() {
    let t = Tables::new();
    let run = start(&t, "account-3");
    let workflow_id = WorkflowId::new("account-3");
    let input = Payload(b"limit=5".to_vec());
    let requested = UpdateRecord {
        name: "set_limit".into(),
        requested_at: T1,
        state: UpdateState::Requested,
    };
    let request = Event::UpdateRequested {
        update_id: "u-1".into(),
        name: "set_limit".into(),
        input: input.clone(),
    };
    let (to, written) = t
        .run(|tx| {
            let tables = (
                tx.ids,
                tx.task.runs,
                tx.task.inbox,
                tx.task.ready,
                tx.updates,
            );
            updates::request(tables, &workflow_id, "u-1", &requested, &request)
        })
        .unwrap();
    assert_eq!((to, written), (run, true));
    assert_eq!(last_inbox_item(&t, run), request);

    let result = Payload(b"ok".to_vec());
    let fx = commit(
        &t,
        run,
        T2,
        vec![
            Event::UpdateAccepted {
                update_id: "u-1".into(),
                name: "set_limit".into(),
                input,
            },
            Event::UpdateCompleted {
                update_id: "u-1".into(),
                result: result.clone(),
            },
        ],
    );
    assert!(fx.updates_answered);
    let stored = &t.contents("updates")[&keys::update_key(run, "u-1").to_vec()];
    let answered: UpdateRecord = decode(stored, "update", Some(run)).unwrap();
    assert_eq!(answered.state, UpdateState::Completed(result));
}

#[test]
fn a_commit_against_a_moved_history_is_refused_and_writes_nothing() {
    let t = Tables::new();
    let run = start(&t, "order-1");
    // Someone else's activation committed first.
    commit(&t, run, T1, vec![timer(1, T2)]);
    let before = t.snapshot();
    let mut stale = activation(&t, run, T1, vec![scheduled(2, ActivityOptions::default())]);
    stale.expected_last_seq = EventSeq(1);
    let refused = apply(&t, &stale);
    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict {
                expected: EventSeq(1),
                found: EventSeq(3),
                ..
            })
        ),
        "{:?}",
        refused.err()
    );
    assert_eq!(t.snapshot(), before);
}
