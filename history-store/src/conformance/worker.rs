//! Cases of the worker side: workflow tasks, activity tasks, and the time
//! services (timers, attempt deadlines, schedules).

use super::{activate, commit_for, inbox_of, p, schedule, start, task_of, within, Fixture};
use crate::event::{Event, Failure, Payload};
use crate::history_store::{ActivityError, AttemptRef, CommitError};
use crate::ids::{CommandSeq, EventSeq, Timestamp};
use crate::options::{ActivityOptions, RetryPolicy};
use crate::store::api::ActivityResolution;
use crate::store::records::{ActivityTask, RunStatus};
use crate::store::schedules::{ScheduleSpec, Trigger};
use crate::store::{DirectActivities, LocalCompletion};
use crate::HistoryStore;
use std::time::Duration;

/// Options with one attempt of at most a minute.
fn one_attempt() -> ActivityOptions {
    ActivityOptions {
        start_to_close: Some(Duration::from_secs(60)),
        retry: RetryPolicy::no_retries(),
        ..ActivityOptions::default()
    }
}

/// Claims activity tasks until one of `run`'s comes.
async fn claim_one(store: &dyn HistoryStore) -> ActivityTask {
    within("an activity task", async {
        loop {
            let mut tasks = store
                .poll_activity_tasks(1, Duration::from_millis(200))
                .await
                .expect("poll activity tasks");
            if let Some(task) = tasks.pop() {
                return task;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

/// A poll that is waiting returns the task of a run started after it began.
pub async fn workflow_poll_returns_when_work_arrives(f: &Fixture) {
    let other = f.other.clone();
    let poll = tokio::spawn(async move { other.poll_workflow_tasks(8, super::HANG).await });
    // Whether the poll is already waiting or not, the start must reach it.
    tokio::task::yield_now().await;
    let run = start(&*f.store, "order-20").await;
    let tasks = super::activations(within("the poll", poll).await.unwrap().unwrap());
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].run, run);
    assert!(tasks[0].record.needs_first_activation);
}

/// With no work, a poll returns empty once its wait is over.
pub async fn workflow_poll_returns_empty_after_its_wait(f: &Fixture) {
    let tasks = within(
        "an empty poll",
        f.store.poll_workflow_tasks(8, Duration::from_millis(50)),
    )
    .await
    .unwrap();
    assert!(tasks.is_empty(), "{tasks:?}");
}

/// A commit claims the activities it schedules for its worker (returned
/// ready to run), and a later commit records their results, completed in
/// the worker's process, without their passing through the inbox.
pub async fn commit_folds_in_local_results_and_claims(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-21").await;
    let task = task_of(s, run).await;
    let claim = DirectActivities {
        completed: vec![],
        claim: vec![CommandSeq(1)],
    };
    let commit = commit_for(&task, Timestamp::now(), vec![schedule(1, one_attempt())]);
    let claimed = s.commit_activation(commit, claim).await.unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(
        (claimed[0].run, claimed[0].cmd, claimed[0].attempt),
        (run, CommandSeq(1), 1)
    );
    // Claimed for this worker: no poller gets it.
    assert!(s
        .poll_activity_tasks(8, Duration::from_millis(20))
        .await
        .unwrap()
        .is_empty());

    let task = s
        .activation(run)
        .await
        .unwrap()
        .expect("an open run has a task");
    assert!(task.inbox.is_empty());
    let result = Event::ActivityCompleted {
        cmd: CommandSeq(1),
        attempt: 1,
        result: p("\"reserved\""),
    };
    let done = Event::WorkflowCompleted {
        result: p("\"ok\""),
    };
    let mut commit = commit_for(&task, Timestamp::now(), vec![done]);
    commit.events.insert(1, result.clone());
    let local = DirectActivities {
        completed: vec![LocalCompletion {
            cmd: CommandSeq(1),
            token: claimed[0].token,
        }],
        claim: vec![],
    };
    assert!(s.commit_activation(commit, local).await.unwrap().is_empty());
    let record = within("the close", f.other.wait_closed(run)).await.unwrap();
    assert_eq!(record.status, RunStatus::Completed);
    let history = f.other.read_history(run, EventSeq(1)).await.unwrap();
    assert_eq!(
        history.iter().filter(|e| **e == result).count(),
        1,
        "{history:?}"
    );
}

/// A result completed in process after its attempt timed out is refused
/// with the run and command, and nothing is written.
pub async fn a_stale_local_result_is_refused(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-22").await;
    let task = task_of(s, run).await;
    let options = ActivityOptions {
        start_to_close: Some(Duration::from_secs(1)),
        retry: RetryPolicy::no_retries(),
        ..ActivityOptions::default()
    };
    let commit = commit_for(&task, Timestamp::now(), vec![schedule(1, options)]);
    let claim = DirectActivities {
        completed: vec![],
        claim: vec![CommandSeq(1)],
    };
    let claimed = s.commit_activation(commit, claim).await.unwrap();
    // An hour later the attempt's deadline has long passed.
    let later = Timestamp::now().saturating_add(Duration::from_secs(3600));
    assert!(s.fire_due(later).await.unwrap() >= 1);

    // The timeout's failure is in the inbox; a worker that still holds the
    // late result tries to record it instead.
    let task = task_of(s, run).await;
    let before = s.read_history(run, EventSeq(1)).await.unwrap();
    let late = Event::ActivityCompleted {
        cmd: CommandSeq(1),
        attempt: 1,
        result: p("\"late\""),
    };
    let mut commit = commit_for(&task, Timestamp::now(), vec![]);
    commit
        .events
        .retain(|e| !matches!(e, Event::ActivityFailed { .. }));
    commit.events.insert(1, late);
    commit.inbox_upto = task.record.inbox_head;
    let local = DirectActivities {
        completed: vec![LocalCompletion {
            cmd: CommandSeq(1),
            token: claimed[0].token,
        }],
        claim: vec![],
    };
    match s.commit_activation(commit, local).await {
        Err(CommitError::StaleActivity { run: r, cmd }) => {
            assert_eq!((r, cmd), (run, CommandSeq(1)))
        }
        other => panic!("expected StaleActivity, got {other:?}"),
    }
    assert_eq!(s.read_history(run, EventSeq(1)).await.unwrap(), before);
}

/// A commit against a history that moved since its task is refused with
/// both sequence numbers; a malformed one is refused as invalid.
pub async fn a_moved_history_or_a_malformed_commit_is_refused(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-23").await;
    let first = task_of(s, run).await;
    let stale = s.activation(run).await.unwrap().expect("a second task");
    s.commit_activation(
        commit_for(&first, Timestamp::now(), vec![]),
        Default::default(),
    )
    .await
    .unwrap();
    match s
        .commit_activation(
            commit_for(&stale, Timestamp::now(), vec![]),
            Default::default(),
        )
        .await
    {
        Err(CommitError::Conflict {
            run: r,
            expected,
            found,
        }) => {
            assert_eq!(r, run);
            assert_eq!((expected, found), (EventSeq(1), EventSeq(2)));
        }
        Err(CommitError::LeaseLost { run: r }) => assert_eq!(r, run),
        other => panic!("expected Conflict (or LeaseLost), got {other:?}"),
    }

    let task = s.activation(run).await.unwrap().expect("a task");
    let mut commit = commit_for(&task, Timestamp::now(), vec![]);
    commit.events.remove(0); // no activation marker
    commit
        .events
        .push(Event::WorkflowCompleted { result: p("1") });
    assert!(matches!(
        s.commit_activation(commit, Default::default()).await,
        Err(CommitError::Invalid { run: r, .. }) if r == run
    ));
    assert_eq!(
        s.run_record(run).await.unwrap().unwrap().status,
        RunStatus::Running
    );
}

/// A failed activation records why for operators, and the run is
/// offered again after the pause given.
pub async fn a_failed_task_records_why_and_is_offered_again(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-24").await;
    let task = task_of(s, run).await;
    s.fail_activation(
        run,
        task.token,
        Some("panicked: boom".into()),
        Some(Duration::ZERO),
    )
    .await
    .unwrap();
    let record = f.other.run_record(run).await.unwrap().unwrap();
    assert_eq!(record.last_task_failure.as_deref(), Some("panicked: boom"));
    let again = task_of(s, run).await;
    assert!(again.record.needs_first_activation);
    s.commit_activation(
        commit_for(&again, Timestamp::now(), vec![]),
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        s.run_record(run).await.unwrap().unwrap().last_task_failure,
        None
    );
}

/// A polled activity task is durable to start; its result is recorded
/// once (in the run's inbox) and a second completion is refused as stale,
/// naming the attempt.
pub async fn activity_poll_claims_and_a_result_is_recorded_once(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-25").await;
    activate(s, run, vec![schedule(1, one_attempt())]).await;
    let task = claim_one(&*f.other).await;
    assert_eq!((task.run, task.cmd, task.attempt), (run, CommandSeq(1), 1));
    assert_eq!(task.idempotency_key(), format!("order-25/{}/1", run.0));
    let attempt = AttemptRef::from(&task);
    let resolution = s
        .complete_activity(attempt, Ok(p("\"reserved\"")))
        .await
        .unwrap();
    assert_eq!(resolution, ActivityResolution::Recorded);
    match s.complete_activity(attempt, Ok(p("\"again\""))).await {
        Err(ActivityError::Stale {
            run: r,
            cmd,
            attempt: n,
        }) => assert_eq!((r, cmd, n), (run, CommandSeq(1), 1)),
        other => panic!("expected Stale, got {other:?}"),
    }
    let inbox = inbox_of(s, run).await;
    assert_eq!(
        inbox,
        [Event::ActivityCompleted {
            cmd: CommandSeq(1),
            attempt: 1,
            result: p("\"reserved\""),
        }]
    );
}

/// An activity poll returns an activity scheduled while it waits, and
/// returns empty once its wait is over when there is none.
pub async fn activity_poll_returns_when_work_arrives_or_empty_after_its_wait(f: &Fixture) {
    let empty = within(
        "an empty poll",
        f.store.poll_activity_tasks(8, Duration::from_millis(50)),
    )
    .await
    .unwrap();
    assert!(empty.is_empty(), "{empty:?}");

    let run = start(&*f.store, "order-26").await;
    let other = f.other.clone();
    let poll = tokio::spawn(async move { other.poll_activity_tasks(8, super::HANG).await });
    tokio::task::yield_now().await;
    activate(&*f.store, run, vec![schedule(1, one_attempt())]).await;
    let tasks = within("the poll", poll).await.unwrap().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!((tasks[0].run, tasks[0].cmd), (run, CommandSeq(1)));
}

/// A failed attempt whose policy allows another is retried (attempt 2,
/// later), not recorded.
pub async fn a_failed_attempt_is_retried_per_its_policy(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-27").await;
    let options = ActivityOptions {
        start_to_close: Some(Duration::from_secs(60)),
        retry: RetryPolicy::exponential().max_attempts(3),
        ..ActivityOptions::default()
    };
    activate(s, run, vec![schedule(1, options)]).await;
    let task = claim_one(s).await;
    let failure = Failure::application("io", "connection reset");
    match s
        .complete_activity(AttemptRef::from(&task), Err(failure))
        .await
        .unwrap()
    {
        ActivityResolution::RetryScheduled { attempt, .. } => assert_eq!(attempt, 2),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(
        inbox_of(s, run).await.is_empty(),
        "a retried failure is not recorded"
    );
    let pending = s
        .activity_task(run, CommandSeq(1))
        .await
        .unwrap()
        .expect("still pending");
    assert_eq!(pending.attempt, 2);
}

/// Heartbeats of a running attempt are acknowledged; once the attempt has
/// ended they are refused as stale.
pub async fn heartbeats_are_acknowledged_until_the_attempt_ends(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-28").await;
    activate(s, run, vec![schedule(1, one_attempt())]).await;
    let task = claim_one(s).await;
    let attempt = AttemptRef::from(&task);
    let ack = s.heartbeat_activity(attempt, Some(p("50%"))).await.unwrap();
    assert!(!ack.cancel_requested);
    s.complete_activity(attempt, Ok(p("1"))).await.unwrap();
    assert!(matches!(
        s.heartbeat_activity(attempt, None).await,
        Err(ActivityError::Stale { attempt: 1, .. })
    ));
}

/// A result over the payload limit is refused with its size, and the
/// attempt can still complete.
pub async fn an_oversized_result_is_refused(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-29").await;
    activate(s, run, vec![schedule(1, one_attempt())]).await;
    let task = claim_one(s).await;
    let attempt = AttemptRef::from(&task);
    let big = Payload::from_bytes(vec![b'x'; f.max_payload_bytes + 1]);
    match s.complete_activity(attempt, Ok(big)).await {
        Err(ActivityError::PayloadTooLarge { size, limit }) => {
            assert_eq!(
                (size, limit),
                (f.max_payload_bytes + 1, f.max_payload_bytes)
            );
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert_eq!(
        s.complete_activity(attempt, Ok(p("1"))).await.unwrap(),
        ActivityResolution::Recorded
    );
}

/// A timer is the next thing due, fires once at (not before) its time, and
/// its firing reaches the run.
pub async fn timers_fire_once_when_due(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-30").await;
    let fire_at = Timestamp::now().saturating_add(Duration::from_secs(3600));
    activate(
        s,
        run,
        vec![Event::TimerStarted {
            cmd: CommandSeq(1),
            fire_at,
            callsite: super::callsite(),
        }],
    )
    .await;
    assert_eq!(s.next_due().await.unwrap(), Some(fire_at));
    assert_eq!(s.fire_due(Timestamp(fire_at.0 - 1)).await.unwrap(), 0);
    assert_eq!(s.fire_due(fire_at).await.unwrap(), 1);
    assert_eq!(s.fire_due(fire_at).await.unwrap(), 0, "a timer fires once");
    assert_eq!(s.next_due().await.unwrap(), None);
    assert_eq!(
        inbox_of(&*f.other, run).await,
        [Event::TimerFired { cmd: CommandSeq(1) }]
    );
}

/// A due schedule starts its run when fired; `wait_due` returns when an
/// earlier timer is added while it waits.
pub async fn due_schedules_fire_and_wait_due_wakes_for_new_timers(f: &Fixture) {
    let s = &*f.store;
    let spec = ScheduleSpec::new(
        "hourly",
        "order-to-cash",
        p("{}"),
        Trigger::Every(Duration::from_secs(3600)),
    );
    let next = s
        .create_schedule(spec)
        .await
        .unwrap()
        .next_fire
        .expect("a next fire");
    assert_eq!(s.next_due().await.unwrap(), Some(next));
    let fires = s.fire_due_schedules(next).await.unwrap();
    assert_eq!(fires.started.len(), 1, "{fires:?}");
    let (id, started) = &fires.started[0];
    assert_eq!(id, "hourly");
    let record = f
        .other
        .run_record(started.run)
        .await
        .unwrap()
        .expect("the run");
    assert_eq!(record.workflow_type, "order-to-cash");
    assert!(s.fire_due_schedules(next).await.unwrap().started.is_empty());

    // Nothing due for an hour: a waiting `wait_due` wakes for a timer due
    // now, the only thing that happens while it waits.
    let run = start(s, "order-31").await;
    let task = task_of(s, run).await;
    // As a timer service waits: `wait_due` may return early (something
    // *may* be due), so it loops until something is.
    let other = f.other.clone();
    let waiting = tokio::spawn(async move {
        loop {
            other.wait_due(2 * super::HANG).await?;
            if other
                .next_due()
                .await?
                .is_some_and(|t| t <= Timestamp::now())
            {
                return Ok::<_, crate::history_store::ReadError>(());
            }
        }
    });
    tokio::task::yield_now().await;
    let commit = commit_for(
        &task,
        Timestamp::now(),
        vec![Event::TimerStarted {
            cmd: CommandSeq(1),
            fire_at: Timestamp::now(),
            callsite: super::callsite(),
        }],
    );
    s.commit_activation(commit, DirectActivities::default())
        .await
        .unwrap();
    within("wait_due", waiting).await.unwrap().unwrap();
}

/// The limits a backend reports are the ones it enforces: a payload of
/// exactly `max_payload_bytes` is taken, one byte more is refused.
pub async fn limits_are_the_ones_enforced(f: &Fixture) {
    let limits = f.store.limits();
    assert_eq!(limits.max_payload_bytes, f.max_payload_bytes);
    assert!(limits.max_history_events > 1 && limits.max_history_bytes > 1);
    let mut req = super::start_request("limit-1", crate::IdConflictPolicy::Reject);
    req.input = Payload::from_bytes(vec![b'x'; limits.max_payload_bytes]);
    f.store.start(req).await.expect("a payload at the limit");
    let mut req = super::start_request("limit-2", crate::IdConflictPolicy::Reject);
    req.input = Payload::from_bytes(vec![b'x'; limits.max_payload_bytes + 1]);
    assert!(
        f.store.start(req).await.is_err(),
        "a payload over the limit"
    );
}

/// A backend that reports progress counts the commits it applies and the
/// flushes that make them durable: a watchdog sees them move.
pub async fn progress_moves_with_commits(f: &Fixture) {
    let Some(before) = f.store.progress() else {
        return;
    };
    let run = start(&*f.store, "progress-1").await;
    activate(&*f.store, run, vec![]).await;
    let after = f.store.progress().expect("progress, as before");
    assert!(
        after.commits.finished > before.commits.finished,
        "{after:?}"
    );
    assert!(after.flushes.done >= before.flushes.done, "{after:?}");
}

/// A start that carries its first activation makes both in one step: the
/// run is the one reserved, its history holds the activation when the
/// start returns, and the activities it schedules are claimed for the
/// caller. A second such start of the taken id is refused as an ordinary
/// start would be, and its activation leaves nothing. A backend that
/// reserves nothing passes trivially (its clients start the ordinary way).
pub async fn a_start_with_its_first_activation_commits_both(f: &Fixture) {
    let s = &*f.store;
    let req = super::start_request("eager-1", crate::IdConflictPolicy::Reject);
    let Some(reserved) = s.reserve_start(req).await.unwrap() else {
        return;
    };
    let run = reserved.run;
    assert!(matches!(reserved.started, Event::WorkflowStarted { .. }));
    let first = |reserved: &crate::ReservedStart| crate::ActivationCommit {
        run: reserved.run,
        token: crate::LeaseToken::UNLEASED,
        expected_last_seq: reserved.record.last_seq,
        inbox_upto: reserved.record.inbox_tail,
        events: vec![
            Event::ActivationStarted {
                time: Timestamp::now(),
            },
            schedule(1, one_attempt()),
        ],
        rejected_updates: Vec::new(),
        awaited_signals: Vec::new(),
    };
    let commit = first(&reserved);
    let local = DirectActivities {
        completed: Vec::new(),
        claim: vec![CommandSeq(1)],
    };
    let started = s
        .start_with_activation(reserved, commit, local)
        .await
        .unwrap();
    assert!(started.outcome.started);
    assert_eq!(started.outcome.run, run);
    let claimed = started.claimed.expect("the activation was used");
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].run, claimed[0].cmd), (run, CommandSeq(1)));
    let kinds: Vec<_> = s
        .read_history(run, EventSeq(1))
        .await
        .unwrap()
        .iter()
        .map(Event::kind)
        .collect();
    assert_eq!(
        kinds,
        ["WorkflowStarted", "ActivationStarted", "ActivityScheduled"]
    );

    let again = super::start_request("eager-1", crate::IdConflictPolicy::Reject);
    let reserved = s.reserve_start(again).await.unwrap().expect("reserved");
    let other = reserved.run;
    let commit = first(&reserved);
    let refused = s
        .start_with_activation(reserved, commit, DirectActivities::default())
        .await;
    assert!(
        matches!(refused, Err(crate::StartError::AlreadyRunning { .. })),
        "{refused:?}"
    );
    assert!(s.run_record(other).await.unwrap().is_none());
}
