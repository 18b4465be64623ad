//! Changed or nondeterministic workflow code stops with an error that names
//! the history position, what was recorded, what was produced and where in
//! the source each came from; the stored history is never touched.

use refrain::replay::{ActivationError, DivergenceKind, WorkflowMachine, WorkflowType};
use refrain::{Event, Payload, RunId, RunStatus, Signal, Workflow, WorkflowContext, WorkflowError};
use refrain_history::Timestamp;
use refrain_tests::activities::{Charge, Reserve};
use refrain_tests::env::{eventually, result_of, task_failure, TestEnv};
use refrain_tests::history::{kinds, started_event};
use refrain_tests::ledger::Ledger;
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Source lines of the activity calls below, written by the calls
/// themselves (`line!()` on the same line as `ctx.activity`).
static V1_RESERVE_LINE: AtomicU32 = AtomicU32::new(0);
static V1_CHARGE_LINE: AtomicU32 = AtomicU32::new(0);
static V2_CHARGE_LINE: AtomicU32 = AtomicU32::new(0);
static V2_RESERVE_LINE: AtomicU32 = AtomicU32::new(0);

fn here(cell: &AtomicU32, line: u32) -> String {
    cell.store(line, Ordering::SeqCst);
    format!("line {line}")
}

#[derive(Serialize, Deserialize)]
struct Go;

impl Signal for Go {
    const NAME: &'static str = "go";
}

/// The code that wrote the histories: reserve, then charge.
struct CheckoutV1;

impl Workflow for CheckoutV1 {
    const NAME: &'static str = "checkout";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let reserved = ctx
            .activity::<Reserve>(here(&V1_RESERVE_LINE, line!()))
            .await?;
        let charged = ctx
            .activity::<Charge>(here(&V1_CHARGE_LINE, line!()))
            .await?;
        ctx.wait_signal::<Go>().await?;
        Ok(format!("{reserved} {charged}"))
    }
}

/// The same workflow type after a careless edit: the two calls swapped.
struct CheckoutV2;

impl Workflow for CheckoutV2 {
    const NAME: &'static str = "checkout";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let charged = ctx
            .activity::<Charge>(here(&V2_CHARGE_LINE, line!()))
            .await?;
        let reserved = ctx
            .activity::<Reserve>(here(&V2_RESERVE_LINE, line!()))
            .await?;
        ctx.wait_signal::<Go>().await?;
        Ok(format!("{reserved} {charged}"))
    }
}

/// Starts a V1 checkout under `id` and waits until it waits for `Go`.
async fn checkout_waiting_for_go(env: &TestEnv, id: &str) -> refrain::WorkflowHandle<CheckoutV1> {
    let handle = env.client.start::<CheckoutV1>(id, ()).await.unwrap();
    eventually("both activities to be applied", async || {
        let h = env.client.history(id).await.ok()?;
        kinds(&h)
            .contains(&"ActivityCompleted(charge)".to_owned())
            .then_some(())
    })
    .await;
    handle
}

fn site(line: &AtomicU32) -> String {
    format!("{}:{}:", file!(), line.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_activities_are_reported_with_position_types_and_both_lines() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<CheckoutV1>()
        .activity(Reserve::new(&ledger))
        .activity(Charge::new(&ledger))
        .start();
    let handle = checkout_waiting_for_go(&env, "checkout-1").await;
    env.client.signal("checkout-1", &Go).await.unwrap();
    result_of(&handle).await.unwrap();
    worker.shutdown(Duration::from_secs(1)).await;
    let history = env.client.history("checkout-1").await.unwrap();

    let mut changed = WorkflowMachine::new(
        &WorkflowType::<CheckoutV2>::new(),
        handle.run_id(),
        &history[0],
    )
    .unwrap();
    let err = match changed.replay(&history[1..]) {
        Err(ActivationError::Nondeterminism(e)) => e,
        other => panic!("expected a nondeterminism error, got {other:?}"),
    };
    assert_eq!(err.kind, DivergenceKind::Mismatch);
    // #1 WorkflowStarted, #2 ActivationStarted, #3 the first command.
    assert_eq!(err.position, 3);
    assert!(matches!(history[2], Event::ActivityScheduled { .. }));
    assert_eq!(err.activation, 1);
    assert_eq!(err.run, handle.run_id());
    assert_eq!(err.workflow_id.as_str(), "checkout-1");

    let expected = err.expected.as_ref().expect("the recorded command");
    assert_eq!(expected.kind, "ActivityScheduled");
    assert_eq!(expected.name.as_deref(), Some("reserve"));
    assert_eq!(expected.cmd, Some(1));
    let recorded_at = expected.callsite.as_ref().expect("recorded callsite");
    assert_eq!(recorded_at.file, file!());
    assert_eq!(recorded_at.line, V1_RESERVE_LINE.load(Ordering::SeqCst));

    let produced = err.produced.as_ref().expect("the produced command");
    assert_eq!(produced.kind, "ActivityScheduled");
    assert_eq!(produced.name.as_deref(), Some("charge"));
    assert_eq!(produced.cmd, Some(1));
    let produced_at = produced.callsite.as_ref().expect("produced callsite");
    assert_eq!(produced_at.file, file!());
    assert_eq!(produced_at.line, V2_CHARGE_LINE.load(Ordering::SeqCst));
    assert_ne!(recorded_at.line, produced_at.line);

    let report = err.to_string();
    for needle in [
        "at history position 3".to_owned(),
        "\"reserve\"".to_owned(),
        "\"charge\"".to_owned(),
        site(&V1_RESERVE_LINE),
        site(&V2_CHARGE_LINE),
        "ctx.patched".to_owned(),
    ] {
        assert!(
            report.contains(&needle),
            "{needle:?} missing from:\n{report}"
        );
    }
    assert_eq!(env.client.history("checkout-1").await.unwrap(), history);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_changed_code_leaves_the_history_alone_until_fixed_code_returns() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let old = Worker::builder(env.store.clone())
        .workflow::<CheckoutV1>()
        .activity(Reserve::new(&ledger))
        .activity(Charge::new(&ledger))
        .start();
    let handle = checkout_waiting_for_go(&env, "checkout-2").await;
    old.shutdown(Duration::from_secs(1)).await;
    let history = env.client.history("checkout-2").await.unwrap();

    let changed = Worker::builder(env.store.clone())
        .workflow::<CheckoutV2>()
        .activity(Reserve::new(&ledger))
        .activity(Charge::new(&ledger))
        .start();
    env.client.signal("checkout-2", &Go).await.unwrap();
    let failure = task_failure(
        &env.client,
        "checkout-2",
        "the changed code to fail its task",
    )
    .await;
    for needle in [
        "nondeterminism".to_owned(),
        "at history position 3".to_owned(),
        "\"reserve\"".to_owned(),
        "\"charge\"".to_owned(),
        site(&V1_RESERVE_LINE),
        site(&V2_CHARGE_LINE),
    ] {
        assert!(
            failure.contains(&needle),
            "{needle:?} missing from:\n{failure}"
        );
    }
    changed.shutdown(Duration::from_secs(1)).await;
    let d = env.client.describe("checkout-2").await.unwrap();
    assert_eq!(d.status(), RunStatus::Running);
    assert_eq!(
        d.record.inbox_tail - d.record.inbox_head,
        1,
        "the signal waits"
    );
    assert_eq!(env.client.history("checkout-2").await.unwrap(), history);

    // Deploying the original code again lets the run finish.
    let fixed = Worker::builder(env.store.clone())
        .workflow::<CheckoutV1>()
        .activity(Reserve::new(&ledger))
        .activity(Charge::new(&ledger))
        .start();
    // The retry of the failed task was scheduled by the stopped worker.
    env.store.requeue(handle.run_id());
    let result = result_of(&handle).await.unwrap();
    assert!(result.starts_with("reserve(line "), "{result}");
    let after = env.client.history("checkout-2").await.unwrap();
    assert_eq!(after[..history.len()], history[..]);
    assert!(env
        .client
        .describe("checkout-2")
        .await
        .unwrap()
        .record
        .last_task_failure
        .is_none());
    fixed.shutdown(Duration::from_secs(1)).await;
}

/// Sleeps on tokio's clock, which replay cannot reproduce.
struct Napper;

impl Workflow for Napper {
    const NAME: &'static str = "napper";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let mood = ctx.side_effect(|| "sleepy".to_owned());
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(ctx.activity::<Reserve>(mood).await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_sleep_in_a_workflow_is_reported_and_nothing_is_committed() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Napper>()
        .activity(Reserve::new(&ledger))
        .start();
    let handle = env.client.start::<Napper>("napper-1", ()).await.unwrap();
    let failure = task_failure(&env.client, "napper-1", "the activation to fail").await;
    assert!(failure.contains("nondeterminism"), "{failure}");
    assert!(failure.contains("tokio::time::sleep"), "{failure}");
    let d = env.client.describe("napper-1").await.unwrap();
    assert_eq!(d.status(), RunStatus::Running);
    assert_eq!(d.record.last_seq.0, 1);
    let history = env.client.history("napper-1").await.unwrap();
    assert_eq!(kinds(&history), ["WorkflowStarted"]);
    assert!(ledger.entries().is_empty());
    assert_eq!(handle.run_id(), d.run);
    worker.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn tokio_sleep_is_a_nondeterministic_call_with_or_without_a_runtime() {
    let started = started_event(
        Napper::NAME,
        "napper-2",
        Payload::from_bytes(b"null".to_vec()),
        3,
        Timestamp(1_000),
    );
    let activate = || {
        let mut m =
            WorkflowMachine::new(&WorkflowType::<Napper>::new(), RunId(1), &started).unwrap();
        match m.activate(Timestamp(1_000), Vec::new()) {
            Err(ActivationError::Nondeterminism(e)) => e,
            other => panic!("expected a nondeterminism error, got {other:?}"),
        }
    };

    // As on a worker's workflow thread: no runtime, so tokio panics.
    let err = activate();
    match &err.kind {
        DivergenceKind::NonDeterministicCall(what) => assert!(what.contains("tokio"), "{what}"),
        other => panic!("expected NonDeterministicCall, got {other:?}"),
    }
    assert_eq!(err.position, 2);

    // Inside a runtime the sleep does not panic; it waits on a timer that
    // Refrain does not control.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _inside = rt.enter();
    let err = activate();
    match &err.kind {
        DivergenceKind::NonDeterministicCall(what) => assert!(what.contains("tokio"), "{what}"),
        other => panic!("expected NonDeterministicCall, got {other:?}"),
    }
}
