//! Activity attempts: retries and backoff decided by the store, timeouts
//! of every kind, heartbeats, and late results that must not be recorded.

mod common;

use common::*;
use refrain_history::{
    ActivityOptions, ActivityResolution, ActivityState, ActivityTask, CommandSeq, Event, Failure,
    FailureCause, RetryPolicy, RunId, Store, StoreError, TimeoutKind, Timestamp,
};
use std::time::Duration;

/// Starts a run whose first activation (at `at(0)`) schedules activity 1.
fn with_activity(store: &Store, options: ActivityOptions) -> RunId {
    let run = start(store, "order-1", at(0));
    activate(store, run, at(0), vec![schedule(1, options)]);
    run
}

fn claim_one(store: &Store, now: Timestamp) -> ActivityTask {
    let mut claimed = store.claim_activity_tasks(now, 10).unwrap();
    assert_eq!(claimed.len(), 1, "expected exactly one claimable task");
    claimed.remove(0)
}

fn retrying(initial_ms: u64, max_attempts: u32) -> ActivityOptions {
    ActivityOptions {
        start_to_close: Some(Duration::from_secs(30)),
        schedule_to_close: None,
        heartbeat_timeout: None,
        retry: RetryPolicy::exponential()
            .initial_interval(Duration::from_millis(initial_ms))
            .backoff_coefficient(2.0)
            .max_attempts(max_attempts),
    }
}

fn io_error() -> Failure {
    Failure::application("io", "connection reset")
}

fn a_failed_attempt_is_retried_after_its_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = with_activity(&store, retrying(1_000, 0));

    let first = claim_one(&store, at(0));
    let r = store
        .complete_activity(run, first.cmd, first.token, Err(io_error()), at(100))
        .unwrap();
    assert_eq!(
        r,
        ActivityResolution::RetryScheduled {
            attempt: 2,
            at: at(1_100)
        }
    );
    let task = store.activity_task(run, first.cmd).unwrap().unwrap();
    assert_eq!(task.attempt, 2);
    assert_eq!(
        task.state,
        ActivityState::Scheduled {
            visible_at: at(1_100)
        }
    );
    assert_eq!(task.last_failure, Some(io_error()));
    assert!(
        peek_inbox(&store, run).is_empty(),
        "retries stay out of history"
    );
    assert_eq!(store.next_activity_visible().unwrap(), Some(at(1_100)));
    assert!(store
        .claim_activity_tasks(at(1_099), 10)
        .unwrap()
        .is_empty());

    let second = claim_one(&store, at(1_100));
    assert_eq!(second.attempt, 2);
    assert_ne!(second.token, first.token);
    let r = store
        .complete_activity(run, second.cmd, second.token, Err(io_error()), at(1_200))
        .unwrap();
    assert_eq!(
        r,
        ActivityResolution::RetryScheduled {
            attempt: 3,
            at: at(3_200)
        },
        "the second wait doubles"
    );
    let third = claim_one(&store, at(3_200));
    store
        .complete_activity(run, third.cmd, third.token, Ok(payload("1")), at(3_300))
        .unwrap();
    assert_eq!(
        peek_inbox(&store, run),
        vec![Event::ActivityCompleted {
            cmd: CommandSeq(1),
            attempt: 3,
            result: payload("1"),
        }]
    );
    assert!(store.activity_task(run, CommandSeq(1)).unwrap().is_none());
    assert!(store
        .run_record(run)
        .unwrap()
        .unwrap()
        .pending_activities
        .is_empty());
}

fn a_non_retryable_failure_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut options = retrying(1_000, 0);
    options.retry = options.retry.non_retryable("card-declined");
    let run = with_activity(&store, options);

    let attempt = claim_one(&store, at(0));
    let declined = Failure::application("card-declined", "insufficient funds");
    let r = store
        .complete_activity(
            run,
            attempt.cmd,
            attempt.token,
            Err(declined.clone()),
            at(5),
        )
        .unwrap();
    assert_eq!(r, ActivityResolution::Recorded);
    assert_eq!(
        peek_inbox(&store, run),
        vec![Event::ActivityFailed {
            cmd: CommandSeq(1),
            attempt: 1,
            failure: declined,
        }]
    );

    // The failure itself can say so too.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = with_activity(&store, retrying(1_000, 0));
    let attempt = claim_one(&store, at(0));
    let mut fatal = io_error();
    fatal.non_retryable = true;
    let r = store
        .complete_activity(run, attempt.cmd, attempt.token, Err(fatal), at(5))
        .unwrap();
    assert_eq!(r, ActivityResolution::Recorded);
}

fn exhausted_attempts_record_the_count_and_last_failure() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = with_activity(&store, retrying(10, 3));
    let mut now = at(0);
    for n in 1..=3u32 {
        let attempt = claim_one(&store, now);
        assert_eq!(attempt.attempt, n);
        let failure = Failure::application("io", format!("failure {n}"));
        now = Timestamp(now.0 + 1);
        let r = store
            .complete_activity(run, attempt.cmd, attempt.token, Err(failure), now)
            .unwrap();
        match r {
            ActivityResolution::RetryScheduled { attempt, at } => {
                assert_eq!(attempt, n + 1);
                now = at;
            }
            ActivityResolution::Recorded => assert_eq!(n, 3),
        }
    }
    assert_eq!(
        peek_inbox(&store, run),
        vec![Event::ActivityFailed {
            cmd: CommandSeq(1),
            attempt: 3,
            failure: Failure::application("io", "failure 3"),
        }]
    );
    assert!(store
        .claim_activity_tasks(at(1_000_000), 10)
        .unwrap()
        .is_empty());
}

fn start_to_close_expiry_retries_and_the_late_result_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut options = retrying(500, 0);
    options.start_to_close = Some(Duration::from_secs(10));
    let run = with_activity(&store, options);

    let slow = claim_one(&store, at(0));
    assert_eq!(slow.deadline, at(10_000));
    assert_eq!(store.next_deadline().unwrap(), Some(at(10_000)));
    assert_eq!(store.fire_due(at(9_999)).unwrap(), 0);
    assert_eq!(store.fire_due(at(10_000)).unwrap(), 1);
    assert_eq!(store.fire_due(at(10_000)).unwrap(), 0, "expired once");

    let task = store.activity_task(run, slow.cmd).unwrap().unwrap();
    assert_eq!(task.attempt, 2);
    assert_eq!(
        task.state,
        ActivityState::Scheduled {
            visible_at: at(10_500)
        }
    );
    assert_eq!(
        task.last_failure.as_ref().map(|f| f.cause),
        Some(FailureCause::Timeout(TimeoutKind::StartToClose))
    );

    let record = store.run_record(run).unwrap().unwrap();
    let late = store.complete_activity(run, slow.cmd, slow.token, Ok(payload("late")), at(10_001));
    assert!(
        matches!(late, Err(StoreError::StaleActivity { run: r, cmd }) if r == run && cmd == slow.cmd),
        "{late:?}"
    );
    assert!(matches!(
        store.heartbeat_activity(run, slow.cmd, slow.token, None, at(10_001)),
        Err(StoreError::StaleActivity { .. })
    ));
    assert_eq!(store.activity_task(run, slow.cmd).unwrap().unwrap(), task);
    assert_eq!(store.run_record(run).unwrap().unwrap(), record);

    // The retry then runs normally and its result is the one recorded.
    let retry = claim_one(&store, at(10_500));
    store
        .complete_activity(run, retry.cmd, retry.token, Ok(payload("ok")), at(10_600))
        .unwrap();
    assert_eq!(
        peek_inbox(&store, run),
        vec![Event::ActivityCompleted {
            cmd: CommandSeq(1),
            attempt: 2,
            result: payload("ok"),
        }]
    );
}

fn heartbeat_details_reach_the_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = with_activity(&store, retrying(100, 0));

    let first = claim_one(&store, at(0));
    assert_eq!(first.heartbeat_details, None);
    store
        .heartbeat_activity(run, first.cmd, first.token, Some(payload("page 7")), at(50))
        .unwrap();
    store
        .complete_activity(run, first.cmd, first.token, Err(io_error()), at(60))
        .unwrap();
    let second = claim_one(&store, at(160));
    assert_eq!(second.attempt, 2);
    assert_eq!(second.heartbeat_details, Some(payload("page 7")));
}

fn a_silent_attempt_times_out_on_its_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut options = retrying(100, 0);
    options.start_to_close = Some(Duration::from_secs(60));
    options.heartbeat_timeout = Some(Duration::from_secs(2));
    let run = with_activity(&store, options);

    let attempt = claim_one(&store, at(0));
    assert_eq!(attempt.deadline, at(2_000));
    assert_eq!(attempt.heartbeat_timeout, Some(Duration::from_secs(2)));
    store
        .heartbeat_activity(run, attempt.cmd, attempt.token, None, at(1_500))
        .unwrap();
    let task = store.activity_task(run, attempt.cmd).unwrap().unwrap();
    assert!(matches!(task.state, ActivityState::Running { deadline, .. } if deadline == at(3_500)));
    assert_eq!(store.next_deadline().unwrap(), Some(at(3_500)));
    assert_eq!(
        store.fire_due(at(3_000)).unwrap(),
        0,
        "the heartbeat moved the deadline"
    );
    assert_eq!(store.fire_due(at(3_500)).unwrap(), 1);

    let task = store.activity_task(run, attempt.cmd).unwrap().unwrap();
    assert_eq!(task.attempt, 2);
    assert_eq!(
        task.last_failure.map(|f| f.cause),
        Some(FailureCause::Timeout(TimeoutKind::Heartbeat))
    );
}

fn heartbeats_never_extend_past_start_to_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut options = retrying(100, 1);
    options.start_to_close = Some(Duration::from_secs(3));
    options.heartbeat_timeout = Some(Duration::from_secs(2));
    let run = with_activity(&store, options);

    let attempt = claim_one(&store, at(0));
    store
        .heartbeat_activity(run, attempt.cmd, attempt.token, None, at(1_900))
        .unwrap();
    assert_eq!(store.next_deadline().unwrap(), Some(at(3_000)));
    assert_eq!(store.fire_due(at(3_000)).unwrap(), 1);
    let inbox = peek_inbox(&store, run);
    assert!(
        matches!(&inbox[..], [Event::ActivityFailed { attempt: 1, failure, .. }]
            if failure.cause == FailureCause::Timeout(TimeoutKind::StartToClose)),
        "{inbox:?}"
    );
}

fn schedule_to_close_bounds_all_attempts() {
    // A retry that would start after the deadline is not scheduled.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut options = retrying(1_000, 0);
    options.schedule_to_close = Some(Duration::from_secs(5));
    let run = with_activity(&store, options.clone());
    let attempt = claim_one(&store, at(0));
    assert_eq!(attempt.deadline, at(5_000), "the tighter deadline binds");
    let r = store
        .complete_activity(run, attempt.cmd, attempt.token, Err(io_error()), at(4_500))
        .unwrap();
    assert_eq!(r, ActivityResolution::Recorded);
    assert!(matches!(
        &peek_inbox(&store, run)[..],
        [Event::ActivityFailed { attempt: 1, .. }]
    ));

    // Expiry of a running attempt at the schedule-to-close deadline.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = with_activity(&store, options.clone());
    claim_one(&store, at(0));
    assert_eq!(store.fire_due(at(5_000)).unwrap(), 1);
    let inbox = peek_inbox(&store, run);
    assert!(
        matches!(&inbox[..], [Event::ActivityFailed { attempt: 1, failure, .. }]
            if failure.cause == FailureCause::Timeout(TimeoutKind::ScheduleToClose)),
        "{inbox:?}"
    );

    // A task nobody claimed in time is failed at claim time, not handed out.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = with_activity(&store, options);
    assert!(store
        .claim_activity_tasks(at(6_000), 10)
        .unwrap()
        .is_empty());
    let inbox = peek_inbox(&store, run);
    assert!(
        matches!(&inbox[..], [Event::ActivityFailed { attempt: 0, failure, .. }]
            if failure.cause == FailureCause::Timeout(TimeoutKind::ScheduleToClose)),
        "{inbox:?}"
    );
    assert!(store.activity_task(run, CommandSeq(1)).unwrap().is_none());
}

fn closing_a_run_deletes_its_activity_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    activate(
        &store,
        run,
        at(0),
        vec![schedule(1, retrying(100, 0)), schedule(2, retrying(100, 0))],
    );
    let running = store.claim_activity_tasks(at(0), 1).unwrap().remove(0);
    store
        .signal(&"order-1".into(), "cancel", payload("1"))
        .unwrap();
    activate(
        &store,
        run,
        at(1),
        vec![Event::WorkflowCompleted {
            result: payload("cancelled"),
        }],
    );
    assert!(store.activity_task(run, CommandSeq(1)).unwrap().is_none());
    assert!(store.activity_task(run, CommandSeq(2)).unwrap().is_none());
    assert_eq!(store.next_deadline().unwrap(), None);
    assert_eq!(store.next_activity_visible().unwrap(), None);
    assert!(matches!(
        store.complete_activity(run, running.cmd, running.token, Ok(payload("1")), at(2)),
        Err(StoreError::StaleActivity { .. })
    ));
}

fn claims_take_the_oldest_visible_tasks_up_to_max() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    let commands = (1..=5).map(|c| schedule(c, retrying(100, 0))).collect();
    activate(&store, run, at(0), commands);
    assert!(store.claim_activity_tasks(at(0), 0).unwrap().is_empty());
    let first = store.claim_activity_tasks(at(0), 3).unwrap();
    let cmds: Vec<u32> = first.iter().map(|t| t.cmd.0).collect();
    assert_eq!(cmds, [1, 2, 3]);
    let rest = store.claim_activity_tasks(at(0), 10).unwrap();
    assert_eq!(rest.len(), 2);
    assert!(store.claim_activity_tasks(at(0), 10).unwrap().is_empty());
}

/// Reopening the store means the process that ran the attempt is gone: the
/// attempt fails as a start-to-close timeout would (counted, token void),
/// but its retry is due at once instead of after the hour-long timeout and
/// the policy's backoff.
fn an_attempt_running_when_the_store_closed_is_retried_at_once_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = ActivityOptions {
        start_to_close: Some(Duration::from_secs(3_600)),
        ..retrying(600_000, 0)
    };
    let (run, lost) = {
        let store = open(dir.path());
        let run = with_activity(&store, options);
        (run, claim_one(&store, at(0)))
    };
    let store = open(dir.path());
    let task = store.activity_task(run, lost.cmd).unwrap().unwrap();
    assert_eq!(task.attempt, 2);
    let ActivityState::Scheduled { visible_at } = task.state else {
        panic!("expected a scheduled retry, found {:?}", task.state);
    };
    assert!(
        visible_at <= Timestamp::now(),
        "due at once, not after the 10-minute backoff"
    );
    let failure = task.last_failure.expect("the lost attempt's failure");
    assert_eq!(
        failure.cause,
        FailureCause::Timeout(TimeoutKind::StartToClose)
    );
    assert!(
        failure.message.contains("lost with its process"),
        "{failure:?}"
    );

    let retry = claim_one(&store, visible_at);
    assert_eq!(retry.attempt, 2);
    assert!(matches!(
        store.complete_activity(run, lost.cmd, lost.token, Ok(payload("late")), visible_at),
        Err(StoreError::StaleActivity { .. })
    ));
    store
        .complete_activity(run, retry.cmd, retry.token, Ok(payload("ok")), visible_at)
        .unwrap();
    let completed: Vec<_> = peek_inbox(&store, run)
        .into_iter()
        .filter(|e| matches!(e, Event::ActivityCompleted { .. }))
        .collect();
    assert_eq!(completed.len(), 1, "recorded once");
}

/// With no attempts left, the lost attempt is the activity's failure.
fn a_lost_last_attempt_fails_the_activity_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let run = {
        let store = open(dir.path());
        let run = with_activity(&store, retrying(10, 1));
        claim_one(&store, at(0));
        run
    };
    let store = open(dir.path());
    let inbox = peek_inbox(&store, run);
    assert!(
        matches!(
            &inbox[..],
            [Event::ActivityFailed { attempt: 1, failure, .. }]
                if failure.cause == FailureCause::Timeout(TimeoutKind::StartToClose)
        ),
        "{inbox:?}"
    );
    assert_eq!(store.take_ready(10), vec![run]);
}

/// An attempt with no timeout at all has no deadline for a timer service
/// to reach, but it is lost with its process all the same: the next open
/// finds it (it is indexed at the end of time), counts it and makes the
/// retry due, so the call's next attempt runs as attempt 2, not as a
/// second attempt 1.
fn an_attempt_without_any_timeout_is_found_and_counted_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = ActivityOptions {
        start_to_close: None,
        schedule_to_close: None,
        heartbeat_timeout: None,
        ..retrying(600_000, 0)
    };
    let (run, lost) = {
        let store = open(dir.path());
        let run = with_activity(&store, options);
        let lost = claim_one(&store, at(0));
        assert_eq!(lost.deadline, Timestamp(u64::MAX), "no deadline of its own");
        (run, lost)
    };
    let store = open(dir.path());
    let task = store.activity_task(run, lost.cmd).unwrap().unwrap();
    assert_eq!(task.attempt, 2, "the lost attempt counts");
    assert!(
        matches!(task.state, ActivityState::Scheduled { visible_at } if visible_at <= Timestamp::now()),
        "{:?}",
        task.state
    );
    let retry = claim_one(&store, Timestamp::now());
    assert_eq!(retry.attempt, 2);
    assert!(matches!(
        store.complete_activity(
            run,
            lost.cmd,
            lost.token,
            Ok(payload("late")),
            Timestamp::now()
        ),
        Err(StoreError::StaleActivity { .. })
    ));
    // Nothing is due before the end of time: the timer service does not
    // expire the running retry.
    assert_eq!(store.fire_due(Timestamp::now()).unwrap(), 0);
    store
        .complete_activity(
            run,
            retry.cmd,
            retry.token,
            Ok(payload("ok")),
            Timestamp::now(),
        )
        .unwrap();
}

on_both_engines! {
    fn a_failed_attempt_is_retried_after_its_backoff;
    fn a_non_retryable_failure_fails_at_once;
    fn exhausted_attempts_record_the_count_and_last_failure;
    fn start_to_close_expiry_retries_and_the_late_result_is_rejected;
    fn heartbeat_details_reach_the_next_attempt;
    fn a_silent_attempt_times_out_on_its_heartbeat;
    fn heartbeats_never_extend_past_start_to_close;
    fn schedule_to_close_bounds_all_attempts;
    fn closing_a_run_deletes_its_activity_tasks;
    fn claims_take_the_oldest_visible_tasks_up_to_max;
    fn an_attempt_running_when_the_store_closed_is_retried_at_once_on_reopen;
    fn a_lost_last_attempt_fails_the_activity_on_reopen;
    fn an_attempt_without_any_timeout_is_found_and_counted_on_reopen;
}
