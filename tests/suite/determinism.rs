//! Replay reaches the same decisions as the first execution: a `select`
//! whose two branches were both resolved before the workflow ran, and whole
//! histories written with and without the sticky cache.

use refrain::replay::{WorkflowMachine, WorkflowType};
use refrain::{
    select, Either, Event, Payload, RunId, Signal, Workflow, WorkflowContext, WorkflowError,
};
use refrain_history::{ActivationCommit, CommandSeq, IdConflictPolicy, StartRequest, Timestamp};
use refrain_tests::activities::{Charge, Reserve, Ship};
use refrain_tests::env::{eventually, result_of, TestEnv};
use refrain_tests::history::{assert_well_formed, kinds, normalise, started_event, strings};
use refrain_tests::ledger::Ledger;
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Races a timer (left) against an activity (right), then takes a step
/// that differs by winner, so that a replay taking the other branch would
/// produce a different command and be caught.
struct Race;

impl Workflow for Race {
    const NAME: &'static str = "race";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let timer = ctx.sleep(Duration::from_millis(50));
        let reserve = ctx.activity::<Reserve>("x".into());
        match select(timer, reserve).await {
            Either::Left(()) => {
                let charged = ctx.activity::<Charge>("timer won".into()).await?;
                Ok(format!("timer won, then {charged}"))
            }
            Either::Right(reserved) => {
                let shipped = ctx.activity::<Ship>(reserved?).await?;
                Ok(format!("activity won, then {shipped}"))
            }
        }
    }
}

const T0: Timestamp = Timestamp(1_700_000_000_000);

fn json<T: Serialize>(v: &T) -> Payload {
    Payload::from_bytes(serde_json::to_vec(v).unwrap())
}

fn race_started() -> Event {
    started_event(Race::NAME, "race-1", json(&()), 1, T0)
}

fn race_machine() -> WorkflowMachine {
    WorkflowMachine::new(&WorkflowType::<Race>::new(), RunId(1), &race_started()).unwrap()
}

fn completed(cmd: u32, result: &str) -> Event {
    Event::ActivityCompleted {
        cmd: CommandSeq(cmd),
        attempt: 1,
        result: json(&result),
    }
}

#[test]
fn select_picks_the_left_branch_on_a_tie_whatever_the_arrival_order() {
    let first = race_machine().activate(T0, Vec::new()).unwrap();
    assert_eq!(
        kinds(&first),
        strings(&[
            "ActivationStarted",
            "TimerStarted",
            "ActivityScheduled(reserve)"
        ])
    );
    let fired = Event::TimerFired { cmd: CommandSeq(1) };
    let arrival_orders = [
        vec![completed(2, "reserve(x)"), fired.clone()],
        vec![fired, completed(2, "reserve(x)")],
    ];
    for inbound in arrival_orders {
        let mut live = race_machine();
        live.replay(&first).unwrap();
        let second = live
            .activate(Timestamp(T0.0 + 100), inbound.clone())
            .unwrap();
        let third = live
            .activate(
                Timestamp(T0.0 + 200),
                vec![completed(3, "charge(timer won)")],
            )
            .unwrap();
        assert!(live.is_closed());
        assert_eq!(
            third.last(),
            Some(&Event::WorkflowCompleted {
                result: json(&"timer won, then charge(timer won)")
            }),
            "inbound order {inbound:?}"
        );
        let history: Vec<Event> = std::iter::once(race_started())
            .chain(first.iter().cloned())
            .chain(second.iter().cloned())
            .chain(third.iter().cloned())
            .collect();
        assert_well_formed(&history);
        assert!(kinds(&second).contains(&"ActivityScheduled(charge)".to_owned()));

        // A fresh instance (a restart, an eviction) replays to the same
        // commands and the same end.
        let mut replayed = race_machine();
        replayed.replay(&history[1..]).unwrap();
        assert!(replayed.is_closed());

        // And one that replays only the first activation produces the
        // second exactly as recorded.
        let mut again = race_machine();
        again.replay(&first).unwrap();
        assert_eq!(
            again.activate(Timestamp(T0.0 + 100), inbound).unwrap(),
            second
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_takes_the_same_branch_when_both_results_wait_in_the_inbox() {
    let env = TestEnv::new();
    let handle = env.client.start::<Race>("race-2", ()).await.unwrap();
    let run = handle.run_id();
    // No worker runs yet: the test commits the first activation itself, so
    // that no timer service or activity poller can act behind its back.
    let task = env.store.claim_activation(run).unwrap().expect("a task");
    let started = env.store.read_history(run).unwrap().remove(0);
    let mut machine = WorkflowMachine::new(&WorkflowType::<Race>::new(), run, &started).unwrap();
    let events = machine.activate(Timestamp::now(), task.inbox).unwrap();
    env.store
        .commit_activation(ActivationCommit {
            run,
            token: task.token,
            expected_last_seq: task.record.last_seq,
            inbox_upto: task.inbox_upto,
            events,
            rejected_updates: Vec::new(),
            awaited_signals: Vec::new(),
        })
        .unwrap();
    drop(machine);

    // Then it completes the activity and fires the timer, through the
    // store, in that order.
    let tasks = env
        .store
        .claim_activity_tasks(Timestamp::now(), 10)
        .unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = &tasks[0];
    assert_eq!((task.run, task.cmd), (run, CommandSeq(2)));
    env.store
        .complete_activity(
            run,
            task.cmd,
            task.token,
            Ok(json(&"reserve(x)")),
            Timestamp::now(),
        )
        .unwrap();
    let timer = env.client.describe("race-2").await.unwrap().pending_timers[0];
    eventually("the timer's deadline", async || {
        (Timestamp::now() >= timer.fire_at).then_some(())
    })
    .await;
    assert_eq!(env.store.fire_due(Timestamp::now()).unwrap(), 1);
    let record = env.client.describe("race-2").await.unwrap().record;
    assert_eq!(record.inbox_tail - record.inbox_head, 2);

    let ledger = Ledger::in_memory();
    let second = Worker::builder(env.store.clone())
        .workflow::<Race>()
        .activity(Charge::new(&ledger))
        .activity(Ship::new(&ledger))
        .cache_size(0)
        .start();
    assert_eq!(
        result_of(&handle).await.unwrap(),
        "timer won, then charge(timer won)"
    );
    let history = env.client.history("race-2").await.unwrap();
    assert_well_formed(&history);
    assert_eq!(
        kinds(&history),
        strings(&[
            "WorkflowStarted",
            "ActivationStarted",
            "TimerStarted",
            "ActivityScheduled(reserve)",
            "ActivationStarted",
            "ActivityCompleted(reserve)",
            "TimerFired",
            "ActivityScheduled(charge)",
            "ActivationStarted",
            "ActivityCompleted(charge)",
            "WorkflowCompleted",
        ])
    );
    let mut replayed =
        WorkflowMachine::new(&WorkflowType::<Race>::new(), run, &history[0]).unwrap();
    replayed.replay(&history[1..]).unwrap();
    assert!(replayed.is_closed());
    second.shutdown(Duration::from_secs(1)).await;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Approve(String);

impl Signal for Approve {
    const NAME: &'static str = "approve";
}

/// Counts calls of the side-effect closure: replay must return the
/// recorded value instead of calling it again.
static LABEL_CALLS: AtomicU32 = AtomicU32::new(0);

/// Uses every source of nondeterminism the context makes replay-safe.
struct Scripted;

impl Workflow for Scripted {
    const NAME: &'static str = "scripted";
    type Input = String;
    type Output = String;

    async fn run(ctx: WorkflowContext, order: String) -> Result<String, WorkflowError> {
        let lucky = ctx.random() % 1000;
        let token = ctx.uuid();
        let label = ctx.side_effect(|| {
            LABEL_CALLS.fetch_add(1, Ordering::SeqCst);
            format!("{order}-label")
        });
        let reserved = ctx.activity::<Reserve>(format!("{order}#{lucky}")).await?;
        ctx.sleep(Duration::from_millis(30)).await;
        let approval = ctx
            .wait_signal_for::<Approve>(Duration::from_secs(3600))
            .await?
            .ok_or_else(|| WorkflowError::new("timeout", "no approval"))?;
        let charged = ctx
            .activity::<Charge>(format!("{reserved}/{}", approval.0))
            .await?;
        let shipped = ctx.activity::<Ship>(token).await?;
        Ok(format!("{charged}|{shipped}|{label}|{}", ctx.random()))
    }
}

/// Starts `W` with a fixed seed, through the store, because the client
/// draws a random one and two runs must be comparable byte for byte.
async fn start_seeded<W: Workflow>(
    env: &TestEnv,
    id: &str,
    input: &W::Input,
) -> refrain::WorkflowHandle<W> {
    env.store
        .start_workflow(StartRequest {
            workflow_id: id.into(),
            workflow_type: W::NAME.into(),
            input: json(input),
            on_conflict: IdConflictPolicy::Reject,
            seed: 0x5eed,
            now: Timestamp::now(),
        })
        .unwrap();
    env.store.durable().await.unwrap();
    env.client.handle::<W>(id).await.unwrap()
}

/// Runs [`Scripted`] to completion on a worker with `cache_size`, with a
/// fixed seed and the signal sent only once the run waits for it, and
/// returns its history, result and side-effect calls.
async fn run_scripted(cache_size: usize) -> (Vec<Event>, String, u32) {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<Scripted>()
        .activity(Reserve::new(&ledger))
        .activity(Charge::new(&ledger))
        .activity(Ship::new(&ledger))
        .cache_size(cache_size)
        .start();
    let calls_before = LABEL_CALLS.load(Ordering::SeqCst);
    let handle = start_seeded::<Scripted>(&env, "scripted-1", &"order-7".to_owned()).await;
    eventually("the run to wait for its approval", async || {
        let h = env.client.history("scripted-1").await.ok()?;
        h.iter()
            .any(|e| matches!(e, Event::TimerFired { .. }))
            .then_some(())
    })
    .await;
    env.client
        .signal("scripted-1", &Approve("boss".into()))
        .await
        .unwrap();
    let result = result_of(&handle).await.unwrap();
    let history = env.client.history("scripted-1").await.unwrap();
    worker.shutdown(Duration::from_secs(1)).await;
    let calls = LABEL_CALLS.load(Ordering::SeqCst) - calls_before;
    (history, result, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_size_zero_and_n_write_identical_histories() {
    let (cached, cached_result, cached_calls) = run_scripted(1000).await;
    let (uncached, uncached_result, uncached_calls) = run_scripted(0).await;

    assert_well_formed(&cached);
    assert_eq!(
        kinds(&cached),
        strings(&[
            "WorkflowStarted",
            "ActivationStarted",
            "SideEffectRecorded",
            "ActivityScheduled(reserve)",
            "ActivationStarted",
            "ActivityCompleted(reserve)",
            "TimerStarted",
            "ActivationStarted",
            "TimerFired",
            "TimerStarted",
            "ActivationStarted",
            "SignalReceived(approve)",
            "TimerCancelled",
            "ActivityScheduled(charge)",
            "ActivationStarted",
            "ActivityCompleted(charge)",
            "ActivityScheduled(ship)",
            "ActivationStarted",
            "ActivityCompleted(ship)",
            "WorkflowCompleted",
        ])
    );
    assert_eq!(normalise(&uncached), normalise(&cached));
    assert_eq!(uncached_result, cached_result);
    assert_eq!(cached_calls, 1, "the side effect ran once with the cache");
    assert_eq!(
        uncached_calls, 1,
        "replaying every activation must reuse the recorded side effect"
    );
}

/// Takes different steps depending on how long its history is, as
/// `ctx.continue_as_new_suggested()` does.
struct SizeAware;

impl Workflow for SizeAware {
    const NAME: &'static str = "size-aware";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        ctx.activity::<Reserve>("stock".into()).await?;
        let by_length = if ctx.history_length() > 1 {
            ctx.activity::<Charge>("long".into()).await?
        } else {
            ctx.activity::<Ship>("short".into()).await?
        };
        let by_size = if ctx.history_size_bytes() > 0 {
            ctx.activity::<Charge>("large".into()).await?
        } else {
            ctx.activity::<Ship>("small".into()).await?
        };
        Ok(format!("{by_length} {by_size}"))
    }
}

async fn run_size_aware(cache_size: usize) -> (Vec<Event>, RunId) {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<SizeAware>()
        .activity(Reserve::new(&ledger))
        .activity(Charge::new(&ledger))
        .activity(Ship::new(&ledger))
        .cache_size(cache_size)
        .start();
    let handle = start_seeded::<SizeAware>(&env, "size-1", &()).await;
    assert_eq!(
        result_of(&handle).await.unwrap(),
        "charge(long) charge(large)",
        "cache size {cache_size}"
    );
    worker.shutdown(Duration::from_secs(1)).await;
    (env.client.history("size-1").await.unwrap(), handle.run_id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_length_and_size_read_the_same_on_replay() {
    let (cached, run) = run_size_aware(1000).await;
    let (uncached, _) = run_size_aware(0).await;
    assert_eq!(normalise(&uncached), normalise(&cached));
    let mut replayed =
        WorkflowMachine::new(&WorkflowType::<SizeAware>::new(), run, &cached[0]).unwrap();
    replayed
        .replay(&cached[1..])
        .unwrap_or_else(|e| panic!("a recorded history must replay: {e}"));
    assert!(replayed.is_closed());
}
