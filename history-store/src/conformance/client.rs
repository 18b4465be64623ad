//! Cases of the client side: starting, changing and reading workflows,
//! human tasks and schedules.

use super::{activate, callsite, inbox_of, p, start, start_request, within, Fixture};
use crate::event::{Event, Payload};
use crate::history_store::{
    HumanTaskDecision, HumanTaskError, PageRequest, QueryError, ReadError, RunCursor, RunOpError,
    ScheduleError, StartError, UpdateError, UpdateRequest,
};
use crate::ids::{CommandSeq, EventSeq, RunId, WorkflowId};
use crate::store::api::{IdConflictPolicy, RunFilter, UpdateRejection};
use crate::store::records::RunStatus;
use crate::store::schedules::{ScheduleSpec, Trigger};
use crate::store::{UpdateState, UpdateWait};
use std::collections::HashSet;
use std::time::Duration;

/// An acknowledged start is durable and visible through a second handle:
/// its record, its id's latest run, and its history (`WorkflowStarted`).
pub async fn start_is_durable_and_visible_to_another_handle(f: &Fixture) {
    let run = start(&*f.store, "order-1").await;
    let (latest, record) = f
        .other
        .latest_run(&WorkflowId::new("order-1"))
        .await
        .unwrap()
        .expect("the other handle sees the run");
    assert_eq!(latest, run);
    assert_eq!(record.status, RunStatus::Running);
    assert_eq!(record.workflow_type, "order-to-cash");
    assert_eq!(f.other.run_record(run).await.unwrap(), Some(record));
    let history = f.other.read_history(run, EventSeq(1)).await.unwrap();
    assert!(
        matches!(&history[..], [Event::WorkflowStarted { workflow_id, .. }] if workflow_id.as_str() == "order-1"),
        "{history:?}"
    );
    assert!(f
        .other
        .latest_run(&"nobody".into())
        .await
        .unwrap()
        .is_none());
}

/// `Reject` names the open run; `AttachToOpen` returns it; a closed run
/// does not stop a new one; `UseExisting` returns the latest, closed or
/// not.
pub async fn start_follows_the_conflict_policy(f: &Fixture) {
    let s = &*f.store;
    let first = start(s, "order-2").await;
    match s
        .start(start_request("order-2", IdConflictPolicy::Reject))
        .await
    {
        Err(StartError::AlreadyRunning { workflow_id, run }) => {
            assert_eq!(workflow_id.as_str(), "order-2");
            assert_eq!(run, first);
        }
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    let attached = s
        .start(start_request("order-2", IdConflictPolicy::AttachToOpen))
        .await
        .unwrap();
    assert_eq!((attached.run, attached.started), (first, false));

    s.terminate(&"order-2".into(), "test", None).await.unwrap();
    let existing = s
        .start(start_request("order-2", IdConflictPolicy::UseExisting))
        .await
        .unwrap();
    assert_eq!((existing.run, existing.started), (first, false));
    let second = s
        .start(start_request("order-2", IdConflictPolicy::AttachToOpen))
        .await
        .unwrap();
    assert!(second.started && second.run != first, "{second:?}");
}

/// An input over the limit is refused with its size and the limit, and
/// nothing is written.
pub async fn start_refuses_a_payload_too_large(f: &Fixture) {
    let mut req = start_request("big-1", IdConflictPolicy::Reject);
    req.input = Payload::from_bytes(vec![b'x'; f.max_payload_bytes + 1]);
    match f.store.start(req).await {
        Err(StartError::PayloadTooLarge { size, limit }) => {
            assert_eq!(
                (size, limit),
                (f.max_payload_bytes + 1, f.max_payload_bytes)
            );
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert!(f.store.latest_run(&"big-1".into()).await.unwrap().is_none());
}

/// A signal reaches the open run's inbox with its sender; a missing id, a
/// closed run and an oversized payload are refused by name.
pub async fn signal_reaches_the_open_run_and_names_missing_and_closed_ones(f: &Fixture) {
    let s = &*f.store;
    match s.signal(&"ghost".into(), "approve", p("1"), None).await {
        Err(RunOpError::NotFound { workflow_id }) => assert_eq!(workflow_id.as_str(), "ghost"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let run = start(s, "order-3").await;
    activate(s, run, vec![]).await;
    let to = s
        .signal(
            &"order-3".into(),
            "approve",
            p("true"),
            Some("ops@example.com"),
        )
        .await
        .unwrap();
    assert_eq!(to, run);
    let inbox = inbox_of(&*f.other, run).await;
    assert!(
        matches!(&inbox[..], [Event::SignalReceived { name, sender: Some(who), .. }]
            if name == "approve" && who == "ops@example.com"),
        "{inbox:?}"
    );
    let big = Payload::from_bytes(vec![0; f.max_payload_bytes + 1]);
    assert!(matches!(
        s.signal(&"order-3".into(), "approve", big, None).await,
        Err(RunOpError::PayloadTooLarge { .. })
    ));

    s.terminate(&"order-3".into(), "test", None).await.unwrap();
    match s.signal(&"order-3".into(), "approve", p("1"), None).await {
        Err(RunOpError::Closed {
            workflow_id,
            run: closed,
            status,
        }) => {
            assert_eq!(workflow_id.as_str(), "order-3");
            assert_eq!((closed, status), (run, RunStatus::Terminated));
        }
        other => panic!("expected Closed, got {other:?}"),
    }
}

/// A cancel request reaches the run with who asked; a termination closes
/// it at once and records who ended it; either on a closed run is refused.
pub async fn cancel_and_terminate_reach_the_run_and_refuse_a_closed_one(f: &Fixture) {
    let s = &*f.store;
    assert!(matches!(
        s.cancel(&"ghost".into(), "why", None).await,
        Err(RunOpError::NotFound { .. })
    ));
    let run = start(s, "order-4").await;
    activate(s, run, vec![]).await;
    assert_eq!(
        s.cancel(&"order-4".into(), "customer asked", Some("ann"))
            .await
            .unwrap(),
        run
    );
    let inbox = inbox_of(s, run).await;
    assert!(
        matches!(&inbox[..], [Event::WorkflowCancelRequested { reason, requested_by: Some(who) }]
            if reason == "customer asked" && who == "ann"),
        "{inbox:?}"
    );

    assert_eq!(
        s.terminate(&"order-4".into(), "stuck", Some("oncall"))
            .await
            .unwrap(),
        run
    );
    let record = f.other.run_record(run).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Terminated);
    let history = f.other.read_history(run, EventSeq(1)).await.unwrap();
    match history.last() {
        Some(Event::WorkflowTerminated {
            reason,
            terminated_by,
        }) => {
            assert_eq!(reason, "stuck");
            assert_eq!(terminated_by.as_deref(), Some("oncall"));
        }
        other => panic!("expected WorkflowTerminated last, got {other:?}"),
    }
    assert!(matches!(
        s.terminate(&"order-4".into(), "again", None).await,
        Err(RunOpError::Closed { .. })
    ));
    assert!(matches!(
        s.cancel(&"order-4".into(), "again", None).await,
        Err(RunOpError::Closed { .. })
    ));
}

/// `wait_closed` returns once the run closes, with its outcome; an unknown
/// run is named.
pub async fn wait_closed_returns_the_closed_record(f: &Fixture) {
    let run = start(&*f.store, "order-5").await;
    let other = f.other.clone();
    let waiter = tokio::spawn(async move { other.wait_closed(run).await });
    activate(
        &*f.store,
        run,
        vec![Event::WorkflowCompleted {
            result: p("\"done\""),
        }],
    )
    .await;
    let record = within("wait_closed", waiter).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Completed);
    assert_eq!(record.outcome, Some(Ok(p("\"done\""))));
    match f.store.wait_closed(RunId(u64::MAX - 1)).await {
        Err(ReadError::RunNotFound { run }) => assert_eq!(run, RunId(u64::MAX - 1)),
        other => panic!("expected RunNotFound, got {other:?}"),
    }
}

/// `read_history(run, from)` returns the events from `from` on.
pub async fn read_history_starts_at_the_sequence_number_given(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-6").await;
    activate(s, run, vec![super::schedule(1, Default::default())]).await;
    let all = s.read_history(run, EventSeq(1)).await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(s.read_history(run, EventSeq(2)).await.unwrap(), all[1..]);
    assert_eq!(s.read_history(run, EventSeq(3)).await.unwrap(), all[2..]);
    assert!(s.read_history(run, EventSeq(4)).await.unwrap().is_empty());
    assert!(matches!(
        s.read_history(RunId(u64::MAX - 1), EventSeq(1)).await,
        Err(ReadError::RunNotFound { .. })
    ));
}

/// Paging through the runs while more are started: every run that existed
/// before the first page is listed exactly once, nothing is listed twice,
/// and the pages follow the order of one whole listing.
pub async fn list_pages_neither_skip_nor_repeat_while_runs_start(f: &Fixture) {
    let s = &*f.store;
    let mut before = Vec::new();
    for i in 0..7 {
        before.push(start(s, &format!("list-{i}")).await);
    }
    let all = RunFilter::default();
    let whole: Vec<RunId> = s
        .list_runs(&all, PageRequest::first(1000))
        .await
        .unwrap()
        .runs
        .iter()
        .map(|r| r.run)
        .collect();
    assert_eq!(whole.len(), 7);

    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    let mut started = 0;
    loop {
        let got = s.list_runs(&all, page).await.unwrap();
        assert!(got.runs.len() <= 3);
        seen.extend(got.runs.iter().map(|r| r.run));
        // Runs keep starting between pages.
        if started < 4 {
            start(s, &format!("late-{started}")).await;
            started += 1;
        }
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(cursor, 3),
            None => break,
        }
    }
    let unique: HashSet<RunId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a run was listed twice: {seen:?}");
    for run in &before {
        assert!(seen.contains(run), "{run} was skipped: {seen:?}");
    }
    let in_order: Vec<RunId> = seen.iter().copied().filter(|r| whole.contains(r)).collect();
    assert_eq!(in_order, whole, "the pages changed the order");
}

/// A list filters by status and type; a cursor the backend did not hand
/// out is refused by name.
pub async fn list_filters_and_refuses_a_forged_cursor(f: &Fixture) {
    let s = &*f.store;
    let open = start(s, "filter-open").await;
    let closed = start(s, "filter-closed").await;
    s.terminate(&"filter-closed".into(), "test", None)
        .await
        .unwrap();
    let list = |status, workflow_type: Option<&str>| {
        let filter = RunFilter {
            status,
            workflow_type: workflow_type.map(str::to_owned),
            ..Default::default()
        };
        async move {
            s.list_runs(&filter, PageRequest::first(100))
                .await
                .unwrap()
                .runs
                .iter()
                .map(|r| r.run)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(Some(RunStatus::Running), None).await, [open]);
    assert_eq!(list(Some(RunStatus::Terminated), None).await, [closed]);
    assert_eq!(list(None, Some("order-to-cash")).await.len(), 2);
    assert!(list(None, Some("no-such-type")).await.is_empty());
    let forged = RunCursor::new("not a cursor");
    match s
        .list_runs(&RunFilter::default(), PageRequest::after(forged, 10))
        .await
    {
        Err(ReadError::BadCursor { cursor }) => assert_eq!(cursor, "not a cursor"),
        other => panic!("expected BadCursor, got {other:?}"),
    }
}

fn update(id: &str, update_id: &str) -> UpdateRequest {
    UpdateRequest {
        workflow_id: id.into(),
        update_id: update_id.into(),
        name: "change-address".into(),
        input: p("{\"street\":\"1 Main St\"}"),
    }
}

/// An update waits for the workflow's answer; asking again with the same
/// id returns that answer without a second request; a rejection is an
/// answer; a closed run or a missing id is refused by name.
pub async fn update_is_answered_once_and_refused_on_a_closed_run(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "order-7").await;
    activate(s, run, vec![]).await;

    let other = f.other.clone();
    let asked = tokio::spawn(async move { other.update(update("order-7", "u1")).await });
    let task = super::task_of(s, run).await;
    assert!(
        matches!(&task.inbox[..], [Event::UpdateRequested { update_id, .. }] if update_id == "u1"),
        "{:?}",
        task.inbox
    );
    let commands = vec![
        Event::UpdateAccepted {
            update_id: "u1".into(),
            name: "change-address".into(),
            input: p("{\"street\":\"1 Main St\"}"),
        },
        Event::UpdateCompleted {
            update_id: "u1".into(),
            result: p("\"moved\""),
        },
    ];
    let commit = super::commit_for(&task, crate::Timestamp::now(), commands);
    s.commit_activation(commit, Default::default())
        .await
        .unwrap();
    match within("the update's answer", asked).await.unwrap().unwrap() {
        UpdateWait::Answered(u) => assert_eq!(u.state, UpdateState::Completed(p("\"moved\""))),
        other => panic!("expected an answer, got {other:?}"),
    }
    // The same id again: the same answer, and no second request.
    match s.update(update("order-7", "u1")).await.unwrap() {
        UpdateWait::Answered(u) => assert_eq!(u.state, UpdateState::Completed(p("\"moved\""))),
        other => panic!("expected the earlier answer, got {other:?}"),
    }
    assert!(inbox_of(s, run).await.is_empty());

    // A rejection answers too.
    let other = f.other.clone();
    let asked = tokio::spawn(async move { other.update(update("order-7", "u2")).await });
    let task = super::task_of(s, run).await;
    let mut commit = super::commit_for(&task, crate::Timestamp::now(), vec![]);
    commit.rejected_updates = vec![UpdateRejection {
        update_id: "u2".into(),
        reason: "already shipped".into(),
    }];
    s.commit_activation(commit, Default::default())
        .await
        .unwrap();
    match within("the rejection", asked).await.unwrap().unwrap() {
        UpdateWait::Answered(u) => {
            assert_eq!(u.state, UpdateState::Rejected("already shipped".into()))
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    s.terminate(&"order-7".into(), "test", None).await.unwrap();
    // An answer given before the run closed is still the answer.
    match s.update(update("order-7", "u1")).await.unwrap() {
        UpdateWait::Answered(u) => assert_eq!(u.state, UpdateState::Completed(p("\"moved\""))),
        other => panic!("expected the earlier answer, got {other:?}"),
    }
    match s.update(update("order-7", "u3")).await {
        Err(UpdateError::Closed {
            run: closed,
            status,
            ..
        }) => {
            assert_eq!((closed, status), (run, RunStatus::Terminated));
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(matches!(
        s.update(update("ghost", "u1")).await,
        Err(UpdateError::NotFound { .. })
    ));
}

/// A worker polling now is offered no query.
async fn assert_no_query_offered(f: &Fixture) {
    let polled = f
        .store
        .poll_workflow_tasks(8, Duration::ZERO)
        .await
        .unwrap();
    assert!(
        !polled
            .iter()
            .any(|t| matches!(t, crate::WorkflowTask::Query(_))),
        "{polled:?}"
    );
}

/// With no worker polling, a query times out by name after the caller's
/// wait (nothing hangs), and a late answer finds nobody waiting.
pub async fn query_without_a_worker_is_refused_by_name(f: &Fixture) {
    let run = start(&*f.store, "order-8").await;
    let wait = Duration::from_millis(50);
    let answer = within("the query", f.store.query(run, "status", p("null"), wait)).await;
    assert_eq!(answer, Err(QueryError::TimedOut { run, waited: wait }));
    // The query left with its caller: a poll does not offer it.
    assert_no_query_offered(f).await;
}

/// A caller that stops waiting before its query's wait ends (it dropped
/// the call: a client gone, a `select!` that took another branch) takes
/// the query with it: a worker polling afterwards is not offered it.
pub async fn a_query_dropped_by_its_caller_is_not_offered(f: &Fixture) {
    let run = start(&*f.store, "order-10").await;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        f.store.query(run, "status", p("null"), super::HANG),
    )
    .await;
    assert!(gave_up.is_err(), "answered with no worker: {gave_up:?}");
    assert_no_query_offered(f).await;
}

/// A query reaches a worker as a task of its workflow-task poll (on
/// another handle, as a worker holds it); the worker's answer reaches the
/// caller, once: a second answer finds nobody waiting.
pub async fn a_query_is_a_workflow_task_answered_once(f: &Fixture) {
    let run = start(&*f.store, "order-9").await;
    let store = f.store.clone();
    let asked =
        tokio::spawn(async move { store.query(run, "status", p("\"args\""), super::HANG).await });
    let query = within("the query task", async {
        loop {
            let polled = f
                .other
                .poll_workflow_tasks(8, Duration::from_millis(200))
                .await
                .unwrap();
            if let Some(q) = polled.into_iter().find_map(|t| match t {
                crate::WorkflowTask::Query(q) => Some(q),
                crate::WorkflowTask::Activation(_) => None,
            }) {
                return q;
            }
        }
    })
    .await;
    assert_eq!((query.run, query.name.as_str()), (run, "status"));
    assert_eq!(query.args, p("\"args\""));
    f.other
        .answer_query(query.id, Ok(p("\"shipped\"")))
        .await
        .unwrap();
    let answer = within("the answer", asked).await.unwrap();
    assert_eq!(answer, Ok(p("\"shipped\"")));
    assert_eq!(
        f.other.answer_query(query.id, Ok(p("1"))).await,
        Err(QueryError::UnknownQuery { id: query.id })
    );
}

/// A human task is in its assignee's list and its run's; a decision is
/// recorded once (the run's inbox gets it) and a second is refused; an
/// unknown task is named.
pub async fn human_tasks_are_listed_and_decided_once(f: &Fixture) {
    let s = &*f.store;
    let run = start(s, "loan-1").await;
    activate(
        s,
        run,
        vec![Event::HumanTaskAssigned {
            cmd: CommandSeq(1),
            task: "underwriting-review".into(),
            assignee: "ann".into(),
            form: Some(p("{\"amount\":100}")),
            deadline: None,
            level: 0,
            callsite: callsite(),
            escalations: Vec::new(),
        }],
    )
    .await;
    let listed = f.other.list_human_tasks("ann").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0].run, listed[0].cmd), (run, CommandSeq(1)));
    assert_eq!(listed[0].task, "underwriting-review");
    assert_eq!(f.other.human_tasks_of_run(run).await.unwrap(), listed);
    assert!(f.other.list_human_tasks("bob").await.unwrap().is_empty());

    let decide = |cmd| HumanTaskDecision {
        run,
        cmd: CommandSeq(cmd),
        decision: p("\"approve\""),
        decided_by: "ann".into(),
        comment: Some("fine".into()),
        expected_assignee: None,
    };
    s.decide_human_task(decide(1)).await.unwrap();
    assert!(s.list_human_tasks("ann").await.unwrap().is_empty());
    let inbox = inbox_of(s, run).await;
    assert!(
        matches!(&inbox[..], [Event::HumanTaskDecided { cmd: CommandSeq(1), decided_by, .. }] if decided_by == "ann"),
        "{inbox:?}"
    );
    match s.decide_human_task(decide(1)).await {
        Err(HumanTaskError::Closed { run: r, cmd, .. }) => {
            assert_eq!((r, cmd), (run, CommandSeq(1)))
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    match s.decide_human_task(decide(9)).await {
        Err(HumanTaskError::NotFound { run: r, cmd }) => assert_eq!((r, cmd), (run, CommandSeq(9))),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// A schedule's life: created (a duplicate, a bad cron, an empty id
/// refused by name), listed, described, paused, resumed, deleted.
pub async fn schedules_are_created_paused_resumed_and_deleted(f: &Fixture) {
    let s = &*f.store;
    let hourly = |id: &str| {
        ScheduleSpec::new(
            id,
            "order-to-cash",
            p("{}"),
            Trigger::Every(Duration::from_secs(3600)),
        )
    };
    let created = s.create_schedule(hourly("hourly")).await.unwrap();
    assert!(
        !created.paused && created.next_fire.is_some(),
        "{created:?}"
    );
    assert!(matches!(
        s.create_schedule(hourly("hourly")).await,
        Err(ScheduleError::AlreadyExists { id }) if id == "hourly"
    ));
    let bad = ScheduleSpec::new(
        "bad",
        "order-to-cash",
        p("{}"),
        Trigger::Cron("61 * * *".into()),
    );
    assert!(matches!(
        s.create_schedule(bad).await,
        Err(ScheduleError::BadCronExpression { .. })
    ));
    assert!(matches!(
        s.create_schedule(hourly("")).await,
        Err(ScheduleError::Invalid { .. })
    ));
    let listed = f.other.list_schedules().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        f.other.describe_schedule("hourly").await.unwrap(),
        listed[0]
    );

    assert!(s.pause_schedule("hourly").await.unwrap().paused);
    assert!(f.other.describe_schedule("hourly").await.unwrap().paused);
    assert!(!s.resume_schedule("hourly").await.unwrap().paused);
    s.delete_schedule("hourly").await.unwrap();
    assert!(matches!(
        f.other.describe_schedule("hourly").await,
        Err(ScheduleError::NotFound { id }) if id == "hourly"
    ));
    assert!(matches!(
        s.pause_schedule("hourly").await,
        Err(ScheduleError::NotFound { .. })
    ));
}
