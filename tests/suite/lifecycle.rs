//! A workflow's life seen from the client: start, describe while blocked,
//! signal, result, history; and the requests that must change nothing.

use refrain::replay::{WorkflowMachine, WorkflowType};
use refrain::{
    ClientError, Event, RunFilter, RunStatus, Signal, StartOptions, Workflow, WorkflowContext,
    WorkflowError,
};
use refrain_history::{ActivationCommit, CommandSeq, RunSummary, Timestamp};
use refrain_tests::activities::{CreateAccount, Gate, Provision, SendWelcome};
use refrain_tests::env::{eventually, result_of, TestEnv};
use refrain_tests::history::{assert_well_formed, kinds, strings};
use refrain_tests::ledger::{attempts, Ledger, Phase};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Approval {
    by: String,
}

impl Signal for Approval {
    const NAME: &'static str = "approval";
}

// Long enough that a loaded machine still sees the timer pending.
const WELCOME_DELAY: Duration = Duration::from_millis(800);

struct Onboarding;

impl Workflow for Onboarding {
    const NAME: &'static str = "onboarding";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
        let account = ctx.activity::<CreateAccount>(name).await?;
        ctx.sleep(WELCOME_DELAY).await;
        let approval = ctx.wait_signal::<Approval>().await?;
        let provisioned = ctx.activity::<Provision>(account.clone()).await?;
        let welcomed = ctx
            .activity::<SendWelcome>(format!("{account}/{}", approval.by))
            .await?;
        Ok(format!("{provisioned}+{welcomed}"))
    }
}

/// Waits for one approval and returns its input and the approver.
struct AwaitApproval;

impl Workflow for AwaitApproval {
    const NAME: &'static str = "await-approval";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, input: String) -> Result<String, WorkflowError> {
        let approval = ctx.wait_signal::<Approval>().await?;
        Ok(format!("{input} approved by {}", approval.by))
    }
}

struct Quick;

impl Workflow for Quick {
    const NAME: &'static str = "quick";
    type Input = u32;
    type Output = u32;

    async fn run(_ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
        Ok(n + 1)
    }
}

fn approval(by: &str) -> Approval {
    Approval { by: by.to_owned() }
}

/// Waits until the run of `id` has committed its first activation: from
/// then on an [`AwaitApproval`] run changes only when signalled.
async fn settled(env: &TestEnv, id: &str) {
    eventually(&format!("{id} to block on its signal"), async || {
        let d = env.client.describe(id).await.ok()?;
        (d.record.last_seq.0 >= 2 && d.record.lease.is_none()).then_some(())
    })
    .await;
}

fn ids(runs: &[RunSummary]) -> Vec<String> {
    runs.iter().map(|r| r.workflow_id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_records_three_activities_a_timer_and_a_signal_in_order() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let gate = Gate::new();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Onboarding>()
        .activity(CreateAccount::new(&ledger).gated(&gate))
        .activity(Provision::new(&ledger))
        .activity(SendWelcome::new(&ledger))
        .start();
    let handle = env
        .client
        .start::<Onboarding>("onboard-ada", "ada".into())
        .await
        .unwrap();
    assert!(handle.was_started());

    // Blocked on the gated first activity.
    let blocked = eventually("create-account to be running", async || {
        let d = env.client.describe("onboard-ada").await.ok()?;
        d.pending_activities
            .first()
            .is_some_and(|a| a.running)
            .then_some(d)
    })
    .await;
    assert_eq!(blocked.status(), RunStatus::Running);
    assert_eq!(blocked.run, handle.run_id());
    assert_eq!(blocked.pending_activities.len(), 1);
    let pending = &blocked.pending_activities[0];
    assert_eq!(pending.cmd, CommandSeq(1));
    assert_eq!(pending.activity_type, "create-account");
    assert_eq!(pending.attempt, 1);
    assert!(pending.last_failure.is_none());
    assert!(pending.next_attempt_at.is_none(), "an attempt is running");
    let deadline = pending
        .attempt_deadline
        .expect("a running attempt's deadline");
    assert!(deadline > pending.first_scheduled_at);
    assert!(blocked.pending_timers.is_empty());

    // Then on the durable timer.
    gate.open();
    let sleeping = eventually("the welcome timer to be pending", async || {
        let d = env.client.describe("onboard-ada").await.ok()?;
        (!d.pending_timers.is_empty()).then_some(d)
    })
    .await;
    assert_eq!(sleeping.status(), RunStatus::Running);
    assert!(sleeping.pending_activities.is_empty());
    assert_eq!(sleeping.pending_timers.len(), 1);
    let timer = sleeping.pending_timers[0];
    assert_eq!(timer.cmd, CommandSeq(2));
    assert!(
        timer.fire_at.0 >= sleeping.record.started_at.0 + WELCOME_DELAY.as_millis() as u64,
        "timer {timer:?} fires before the delay after the start at {}",
        sleeping.record.started_at
    );

    // Then on the signal: nothing pending at all.
    eventually("the timer to fire", async || {
        let h = env.client.history("onboard-ada").await.ok()?;
        h.iter()
            .any(|e| matches!(e, Event::TimerFired { .. }))
            .then_some(())
    })
    .await;
    let waiting = env.client.describe("onboard-ada").await.unwrap();
    assert_eq!(waiting.status(), RunStatus::Running);
    assert!(waiting.pending_activities.is_empty());
    assert!(waiting.pending_timers.is_empty());

    env.client
        .signal("onboard-ada", &approval("grace"))
        .await
        .unwrap();
    let result = result_of(&handle).await.unwrap();
    assert_eq!(
        result,
        "provision(create-account(ada))+send-welcome(create-account(ada)/grace)"
    );

    let history = env.client.history("onboard-ada").await.unwrap();
    assert_well_formed(&history);
    assert_eq!(
        kinds(&history),
        strings(&[
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled(create-account)",
            "ActivationStarted",
            "ActivityCompleted(create-account)",
            "TimerStarted",
            "ActivationStarted",
            "TimerFired",
            "ActivationStarted",
            "SignalReceived(approval)",
            "ActivityScheduled(provision)",
            "ActivationStarted",
            "ActivityCompleted(provision)",
            "ActivityScheduled(send-welcome)",
            "ActivationStarted",
            "ActivityCompleted(send-welcome)",
            "WorkflowCompleted",
        ])
    );
    for activity in ["create-account", "provision", "send-welcome"] {
        let entries = ledger.of("onboard-ada", activity);
        assert_eq!(attempts(&entries, Phase::Start), [1], "{activity}");
        assert_eq!(attempts(&entries, Phase::End), [1], "{activity}");
    }

    let done = env.client.describe("onboard-ada").await.unwrap();
    assert_eq!(done.status(), RunStatus::Completed);
    assert!(done.record.closed_at.is_some());
    assert!(done.pending_activities.is_empty() && done.pending_timers.is_empty());
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_start_while_open_is_rejected_and_writes_nothing() {
    let env = TestEnv::new();
    let worker = Worker::builder(env.store.clone())
        .workflow::<AwaitApproval>()
        .start();
    let first = env
        .client
        .start::<AwaitApproval>("dup-1", "first".into())
        .await
        .unwrap();
    settled(&env, "dup-1").await;
    let history = env.client.history("dup-1").await.unwrap();
    let record = env.client.describe("dup-1").await.unwrap().record;
    let runs = env.client.list(&RunFilter::default()).await.unwrap();

    match env
        .client
        .start::<AwaitApproval>("dup-1", "second".into())
        .await
    {
        Err(ClientError::AlreadyRunning { workflow_id, run }) => {
            assert_eq!(workflow_id.as_str(), "dup-1");
            assert_eq!(run, first.run_id());
        }
        Err(other) => panic!("expected AlreadyRunning, got {other}"),
        Ok(h) => panic!("duplicate start succeeded as {}", h.run_id()),
    }
    assert_eq!(env.client.history("dup-1").await.unwrap(), history);
    assert_eq!(env.client.describe("dup-1").await.unwrap().record, record);
    assert_eq!(env.client.list(&RunFilter::default()).await.unwrap(), runs);

    env.client.signal("dup-1", &approval("ops")).await.unwrap();
    assert_eq!(
        result_of(&first).await.unwrap(),
        "first approved by ops",
        "the rejected start's input must not have reached the run"
    );
    // Closed runs do not block the id.
    let again = env
        .client
        .start::<AwaitApproval>("dup-1", "third".into())
        .await
        .unwrap();
    assert!(again.was_started());
    assert_ne!(again.run_id(), first.run_id());
    assert_eq!(
        env.client.list(&RunFilter::default()).await.unwrap().len(),
        2
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_to_open_returns_the_open_run() {
    let env = TestEnv::new();
    let worker = Worker::builder(env.store.clone())
        .workflow::<AwaitApproval>()
        .start();
    let first = env
        .client
        .start::<AwaitApproval>("attach-1", "original".into())
        .await
        .unwrap();
    settled(&env, "attach-1").await;
    let history = env.client.history("attach-1").await.unwrap();
    let runs = env.client.list(&RunFilter::default()).await.unwrap();

    let attached = env
        .client
        .start_with::<AwaitApproval>("attach-1", "ignored".into(), StartOptions::attach_to_open())
        .await
        .unwrap();
    assert!(!attached.was_started());
    assert_eq!(attached.run_id(), first.run_id());
    assert_eq!(env.client.history("attach-1").await.unwrap(), history);
    assert_eq!(env.client.list(&RunFilter::default()).await.unwrap(), runs);

    env.client
        .signal("attach-1", &approval("lead"))
        .await
        .unwrap();
    assert_eq!(
        result_of(&attached).await.unwrap(),
        "original approved by lead"
    );
    assert_eq!(
        result_of(&first).await.unwrap(),
        "original approved by lead"
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_to_missing_or_closed_workflows_are_refused_and_write_nothing() {
    let env = TestEnv::new();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Quick>()
        .start();

    match env.client.signal("nobody", &approval("x")).await {
        Err(ClientError::NotFound { workflow_id }) => assert_eq!(workflow_id.as_str(), "nobody"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        env.client.describe("nobody").await,
        Err(ClientError::NotFound { .. })
    ));
    assert!(env
        .client
        .list(&RunFilter::default())
        .await
        .unwrap()
        .is_empty());

    let quick = env.client.start::<Quick>("quick-1", 41).await.unwrap();
    assert_eq!(result_of(&quick).await.unwrap(), 42);
    let history = env.client.history("quick-1").await.unwrap();
    let record = env.client.describe("quick-1").await.unwrap().record;
    match env.client.signal("quick-1", &approval("late")).await {
        Err(ClientError::Closed {
            workflow_id,
            status,
        }) => {
            assert_eq!(workflow_id.as_str(), "quick-1");
            assert_eq!(status, RunStatus::Completed);
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    assert_eq!(env.client.history("quick-1").await.unwrap(), history);
    assert_eq!(env.client.describe("quick-1").await.unwrap().record, record);
    assert_eq!(
        env.client.list(&RunFilter::default()).await.unwrap().len(),
        1
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_status_and_type() {
    let env = TestEnv::new();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Quick>()
        .workflow::<AwaitApproval>()
        .start();
    let quick = env.client.start::<Quick>("quick-1", 1).await.unwrap();
    result_of(&quick).await.unwrap();
    let waiting = env
        .client
        .start::<AwaitApproval>("wait-1", "w".into())
        .await
        .unwrap();
    let list = async |status: Option<RunStatus>, workflow_type: Option<&str>| {
        ids(&env
            .client
            .list(&RunFilter {
                status,
                workflow_type: workflow_type.map(str::to_owned),
                ..Default::default()
            })
            .await
            .unwrap())
    };

    assert_eq!(list(None, None).await, ["quick-1", "wait-1"]);
    assert_eq!(list(Some(RunStatus::Running), None).await, ["wait-1"]);
    assert_eq!(list(Some(RunStatus::Completed), None).await, ["quick-1"]);
    assert!(list(Some(RunStatus::Failed), None).await.is_empty());
    assert_eq!(list(None, Some("quick")).await, ["quick-1"]);
    assert_eq!(list(None, Some("await-approval")).await, ["wait-1"]);
    assert!(list(Some(RunStatus::Completed), Some("await-approval"))
        .await
        .is_empty());
    assert!(list(None, Some("no-such-type")).await.is_empty());

    env.client.signal("wait-1", &approval("me")).await.unwrap();
    result_of(&waiting).await.unwrap();
    assert_eq!(
        list(Some(RunStatus::Completed), None).await,
        ["quick-1", "wait-1"]
    );
    assert!(list(Some(RunStatus::Running), None).await.is_empty());
    let summary = &env.client.list(&RunFilter::default()).await.unwrap()[1];
    assert_eq!(summary.workflow_type, "await-approval");
    assert_eq!(summary.run, waiting.run_id());
    assert!(summary.closed_at.is_some());
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_starts_of_one_id_make_one_run() {
    let env = TestEnv::new();
    let worker = Worker::builder(env.store.clone())
        .workflow::<AwaitApproval>()
        .start();
    let starts: Vec<_> = (0..50)
        .map(|i| {
            let client = env.client.clone();
            tokio::spawn(async move {
                client
                    .start::<AwaitApproval>("popular-1", format!("start {i}"))
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut rejected_for = Vec::new();
    for (i, start) in starts.into_iter().enumerate() {
        match start.await.unwrap() {
            Ok(handle) => winners.push((i, handle)),
            Err(ClientError::AlreadyRunning { run, .. }) => rejected_for.push(run),
            Err(other) => panic!("start {i} failed: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one start may win");
    let (winner, handle) = winners.pop().unwrap();
    assert_eq!(rejected_for.len(), 49);
    assert!(rejected_for.iter().all(|run| *run == handle.run_id()));
    assert_eq!(
        env.client.list(&RunFilter::default()).await.unwrap().len(),
        1
    );

    env.client
        .signal("popular-1", &approval("crowd"))
        .await
        .unwrap();
    assert_eq!(
        result_of(&handle).await.unwrap(),
        format!("start {winner} approved by crowd")
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_ids_are_kept_apart() {
    let env = TestEnv::new();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Quick>()
        .start();
    let long = "x".repeat(10_000);
    let ids = ["", "a", "a\0b", "a\0", "ünï cødé/ü", long.as_str()];
    let mut handles = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let handle = env
            .client
            .start::<Quick>(*id, n as u32 * 10)
            .await
            .unwrap_or_else(|e| panic!("starting {id:?}: {e}"));
        handles.push(handle);
    }
    for (n, (id, handle)) in ids.iter().zip(&handles).enumerate() {
        assert_eq!(
            result_of(handle).await.unwrap(),
            n as u32 * 10 + 1,
            "{id:?}"
        );
        let d = env.client.describe(*id).await.unwrap();
        assert_eq!(d.workflow_id.as_str(), *id);
        assert_eq!(d.run, handle.run_id());
        match &env.client.history(*id).await.unwrap()[0] {
            Event::WorkflowStarted { workflow_id, .. } => assert_eq!(workflow_id.as_str(), *id),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        env.client.list(&RunFilter::default()).await.unwrap().len(),
        ids.len()
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

/// Waits for an approval for a short while, then sleeps on another timer
/// past the first one's deadline.
struct ApprovalDeadline;

impl Workflow for ApprovalDeadline {
    const NAME: &'static str = "approval-deadline";
    type Input = ();
    type Output = Option<String>;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<Option<String>, WorkflowError> {
        let approval = ctx
            .wait_signal_for::<Approval>(Duration::from_millis(1_000))
            .await?;
        ctx.sleep(Duration::from_millis(1_300)).await;
        Ok(approval.map(|a| a.by))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_timer_never_fires() {
    let env = TestEnv::new();
    let worker = Worker::builder(env.store.clone())
        .workflow::<ApprovalDeadline>()
        .start();
    let handle = env
        .client
        .start::<ApprovalDeadline>("deadline-1", ())
        .await
        .unwrap();
    env.client
        .signal("deadline-1", &approval("quick"))
        .await
        .unwrap();
    assert_eq!(result_of(&handle).await.unwrap().as_deref(), Some("quick"));

    let history = env.client.history("deadline-1").await.unwrap();
    assert_well_formed(&history);
    let cancelled: Vec<u32> = history
        .iter()
        .filter_map(|e| match e {
            Event::TimerCancelled { cmd } => Some(cmd.0),
            _ => None,
        })
        .collect();
    let fired: Vec<u32> = history
        .iter()
        .filter_map(|e| match e {
            Event::TimerFired { cmd } => Some(cmd.0),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, [1], "the approval deadline is cancelled");
    assert_eq!(fired, [2], "only the later sleep fires");
    worker.shutdown(Duration::from_secs(1)).await;
}

// Regression: a timer that fired between the claim and the commit of the
// activation that cancels it used to stay in the inbox, so a later
// activation recorded `TimerFired` after `TimerCancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_that_fires_while_its_cancellation_is_computed_is_not_delivered() {
    let env = TestEnv::new();
    let handle = env
        .client
        .start::<ApprovalDeadline>("deadline-2", ())
        .await
        .unwrap();
    let run = handle.run_id();
    // The test plays the worker for two activations, to put the timer's
    // firing between the claim and the commit of the one that cancels it.
    let workflow = WorkflowType::<ApprovalDeadline>::new();
    let started = env.store.read_history(run).unwrap().remove(0);
    let mut machine = WorkflowMachine::new(&workflow, run, &started).unwrap();
    let activate = |machine: &mut WorkflowMachine| {
        let task = env.store.claim_activation(run).unwrap().expect("a task");
        let events = machine.activate(Timestamp::now(), task.inbox).unwrap();
        ActivationCommit {
            run,
            token: task.token,
            expected_last_seq: task.record.last_seq,
            inbox_upto: task.inbox_upto,
            events,
            rejected_updates: Vec::new(),
            awaited_signals: Vec::new(),
        }
    };
    let first = activate(&mut machine);
    env.store.commit_activation(first).unwrap();
    let deadline = env
        .client
        .describe("deadline-2")
        .await
        .unwrap()
        .pending_timers[0];

    env.client
        .signal("deadline-2", &approval("just in time"))
        .await
        .unwrap();
    let second = activate(&mut machine);
    assert!(
        second
            .events
            .iter()
            .any(|e| matches!(e, Event::TimerCancelled { cmd } if *cmd == deadline.cmd)),
        "the signal wins and cancels the deadline: {:?}",
        second.events
    );
    eventually("the deadline to pass", async || {
        (Timestamp::now() >= deadline.fire_at).then_some(())
    })
    .await;
    env.store.fire_due(Timestamp::now()).unwrap();
    env.store.commit_activation(second).unwrap();

    let worker = Worker::builder(env.store.clone())
        .workflow::<ApprovalDeadline>()
        .start();
    assert_eq!(
        result_of(&handle).await.unwrap().as_deref(),
        Some("just in time")
    );
    let history = env.client.history("deadline-2").await.unwrap();
    assert_well_formed(&history);
    let fired: Vec<CommandSeq> = history
        .iter()
        .filter_map(|e| match e {
            Event::TimerFired { cmd } => Some(*cmd),
            _ => None,
        })
        .collect();
    assert!(
        !fired.contains(&deadline.cmd),
        "cancelled timer {} fired after its cancellation: {:#?}",
        deadline.cmd,
        kinds(&history)
    );
    worker.shutdown(Duration::from_secs(1)).await;
}
