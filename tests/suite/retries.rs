//! Activity attempts as the store schedules them: backoff between retries,
//! errors that must not be retried, attempts that run out of time or stop
//! heartbeating, and progress carried from one attempt to the next. Only
//! the final outcome may reach the history.

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, ActivityFailed, ClientError, Event,
    FailureCause, RetryPolicy, RunFilter, RunStatus, Signal, Workflow, WorkflowContext,
    WorkflowError,
};
use refrain_history::CommandSeq;
use refrain_tests::activities::Gate;
use refrain_tests::env::{eventually, result_of, TestEnv};
use refrain_tests::history::{assert_well_formed, completions, kinds, strings};
use refrain_tests::ledger::{attempts, Entry, Ledger, Phase};
use refrain_worker::Worker;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
const BACKOFF_COEFFICIENT: f64 = 2.0;

/// Fails its first `failures` attempts.
struct Flaky {
    ledger: Ledger,
    failures: u32,
}

#[async_trait]
impl Activity for Flaky {
    const NAME: &'static str = "flaky";
    type Input = ();
    type Output = String;

    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<String, ActivityError> {
        self.ledger.record(&ctx, Phase::Start);
        let attempt = ctx.attempt();
        self.ledger.record(&ctx, Phase::End);
        if attempt <= self.failures {
            return Err(ActivityError::retryable(format!(
                "transient failure {attempt}"
            )));
        }
        Ok(format!("ok on attempt {attempt}"))
    }
}

struct FlakyFlow;

impl Workflow for FlakyFlow {
    const NAME: &'static str = "flaky-flow";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let policy = RetryPolicy::exponential()
            .initial_interval(INITIAL_BACKOFF)
            .backoff_coefficient(BACKOFF_COEFFICIENT)
            .max_interval(Duration::from_secs(1));
        Ok(ctx.activity::<Flaky>(()).retry(policy).await?)
    }
}

struct GiveUpFlow;

impl Workflow for GiveUpFlow {
    const NAME: &'static str = "give-up-flow";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let policy = RetryPolicy::exponential()
            .initial_interval(Duration::from_millis(10))
            .max_attempts(2);
        Ok(ctx.activity::<Flaky>(()).retry(policy).await?)
    }
}

/// Declines in two ways: with the non-retryable flag, or with an error
/// kind that the caller's policy lists as non-retryable.
struct Decline {
    ledger: Ledger,
}

#[async_trait]
impl Activity for Decline {
    const NAME: &'static str = "decline";
    type Input = String;
    type Output = String;

    async fn run(&self, ctx: ActivityContext, how: String) -> Result<String, ActivityError> {
        self.ledger.record(&ctx, Phase::Start);
        self.ledger.record(&ctx, Phase::End);
        match how.as_str() {
            "flag" => Err(ActivityError::non_retryable("card declined")),
            _ => Err(ActivityError::retryable("card expired").with_kind("card-expired")),
        }
    }
}

struct DeclineFlow;

impl Workflow for DeclineFlow {
    const NAME: &'static str = "decline-flow";
    type Input = ();
    type Output = Vec<String>;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
        // Retries are allowed, so only the error itself can stop them.
        let policy = RetryPolicy::exponential()
            .initial_interval(Duration::from_millis(10))
            .max_attempts(5);
        let flagged = ctx
            .activity::<Decline>("flag".into())
            .retry(policy.clone())
            .await;
        let by_kind = ctx
            .activity::<Decline>("kind".into())
            .retry(policy.non_retryable("card-expired"))
            .await;
        let seen = |r: Result<String, ActivityFailed>| match r {
            Ok(v) => format!("unexpected success {v}"),
            Err(f) => format!(
                "attempts={} non_retryable={} kind={} message={}",
                f.attempts, f.failure.non_retryable, f.failure.kind, f.failure.message
            ),
        };
        Ok(vec![seen(flagged), seen(by_kind)])
    }
}

/// The first attempt sleeps for `first_attempt`, ignoring cancellation as
/// careless code does, then checks (by heartbeating) whether its lease
/// still holds. Later attempts return at once.
struct SlowFirst {
    ledger: Ledger,
    first_attempt: Duration,
}

#[async_trait]
impl Activity for SlowFirst {
    const NAME: &'static str = "slow-first";
    type Input = ();
    type Output = String;

    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<String, ActivityError> {
        self.ledger.record(&ctx, Phase::Start);
        if ctx.attempt() == 1 {
            tokio::time::sleep(self.first_attempt).await;
            if ctx.heartbeat(&()).await.is_err() {
                self.ledger.record(&ctx, Phase::Stale);
            }
        }
        self.ledger.record(&ctx, Phase::End);
        Ok(format!("attempt-{}", ctx.attempt()))
    }
}

#[derive(Serialize, Deserialize)]
struct Finish;

impl Signal for Finish {
    const NAME: &'static str = "finish";
}

const START_TO_CLOSE: Duration = Duration::from_millis(300);

struct SlowFlow;

impl Workflow for SlowFlow {
    const NAME: &'static str = "slow-flow";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let result = ctx
            .activity::<SlowFirst>(())
            .start_to_close(START_TO_CLOSE)
            .retry(RetryPolicy::exponential().initial_interval(Duration::from_millis(20)))
            .await?;
        // Stay open until the test says so, so that a late result that
        // slipped through would have an open run to land in.
        ctx.wait_signal::<Finish>().await?;
        Ok(result)
    }
}

/// Attempt 1 heartbeats, goes silent past its heartbeat timeout, then
/// comes back to heartbeat and report while attempt 2 holds the task.
/// Attempt 2 heartbeats steadily until attempt 1 has come back and gone.
struct GoesSilent {
    ledger: Ledger,
    first_is_back: Gate,
}

#[async_trait]
impl Activity for GoesSilent {
    const NAME: &'static str = "goes-silent";
    type Input = ();
    type Output = String;

    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<String, ActivityError> {
        self.ledger.record(&ctx, Phase::Start);
        ctx.heartbeat(&"alive").await?;
        if ctx.attempt() == 1 {
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            if ctx.heartbeat(&"back").await.is_err() {
                self.ledger.record(&ctx, Phase::Stale);
            }
            self.ledger.record(&ctx, Phase::End);
            self.first_is_back.open();
            return Ok("attempt-1".into());
        }
        // Hold the task until attempt 1 has returned and, a few beats
        // later, its result has certainly been reported: that report must
        // meet a task running under another lease token.
        let mut beats_since_back = 0;
        while beats_since_back < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            ctx.heartbeat(&"working").await?;
            if self.first_is_back.is_open() {
                beats_since_back += 1;
            }
        }
        self.ledger.record(&ctx, Phase::End);
        Ok(format!("attempt-{}", ctx.attempt()))
    }
}

struct SilentFlow;

impl Workflow for SilentFlow {
    const NAME: &'static str = "silent-flow";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        // The start-to-close default (60 s) is far away: only the heartbeat
        // timeout can end the first attempt early.
        Ok(ctx
            .activity::<GoesSilent>(())
            .heartbeat_timeout(Duration::from_millis(500))
            .retry(RetryPolicy::exponential().initial_interval(Duration::from_millis(20)))
            .await?)
    }
}

/// Reports progress, then fails; the next attempt resumes from it.
struct Resume {
    ledger: Ledger,
}

#[async_trait]
impl Activity for Resume {
    const NAME: &'static str = "resume";
    type Input = ();
    type Output = String;

    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<String, ActivityError> {
        self.ledger.record(&ctx, Phase::Start);
        let seen: Option<u32> = ctx
            .last_heartbeat_details()
            .map_err(ActivityError::non_retryable)?;
        if ctx.attempt() == 1 {
            ctx.heartbeat(&7u32).await?;
            self.ledger.record(&ctx, Phase::End);
            return Err(ActivityError::retryable("connection lost after item 7"));
        }
        self.ledger.record(&ctx, Phase::End);
        Ok(format!("attempt {} resumed after {seen:?}", ctx.attempt()))
    }
}

struct ResumeFlow;

impl Workflow for ResumeFlow {
    const NAME: &'static str = "resume-flow";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        Ok(ctx
            .activity::<Resume>(())
            .retry(RetryPolicy::exponential().initial_interval(Duration::from_millis(20)))
            .await?)
    }
}

fn of_phase(entries: &[Entry], phase: Phase) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| e.phase == phase)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_retried_after_backoff_and_only_the_last_is_recorded() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<FlakyFlow>()
        .activity(Flaky {
            ledger: ledger.clone(),
            failures: 2,
        })
        .start();
    let handle = env.client.start::<FlakyFlow>("flaky-1", ()).await.unwrap();
    assert_eq!(result_of(&handle).await.unwrap(), "ok on attempt 3");

    let history = env.client.history("flaky-1").await.unwrap();
    assert_well_formed(&history);
    assert_eq!(
        kinds(&history),
        strings(&[
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled(flaky)",
            "ActivationStarted",
            "ActivityCompleted(flaky)",
            "WorkflowCompleted",
        ])
    );
    assert_eq!(completions(&history), BTreeMap::from([(1, vec![3])]));

    let entries = ledger.of("flaky-1", "flaky");
    assert_eq!(attempts(&entries, Phase::Start), [1, 2, 3]);
    let starts = of_phase(&entries, Phase::Start);
    let ends = of_phase(&entries, Phase::End);
    // Attempt n+1 may start no earlier than backoff_after(n) after attempt
    // n failed: 50 ms, then 100 ms. Timestamps are the store's milliseconds.
    for n in 1..=2u32 {
        let failed = &ends[n as usize - 1];
        let next = &starts[n as usize];
        let gap = next.at.saturating_since(failed.at);
        let backoff = INITIAL_BACKOFF.mul_f64(BACKOFF_COEFFICIENT.powi(n as i32 - 1));
        assert!(
            gap >= backoff,
            "attempt {} started {gap:?} after attempt {n} failed; backoff is {backoff:?}",
            n + 1
        );
    }
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retryable_errors_fail_the_activity_at_once() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<DeclineFlow>()
        .activity(Decline {
            ledger: ledger.clone(),
        })
        .start();
    let handle = env
        .client
        .start::<DeclineFlow>("decline-1", ())
        .await
        .unwrap();
    assert_eq!(
        result_of(&handle).await.unwrap(),
        [
            "attempts=1 non_retryable=true kind=error message=card declined",
            "attempts=1 non_retryable=false kind=card-expired message=card expired",
        ]
    );

    let history = env.client.history("decline-1").await.unwrap();
    assert_well_formed(&history);
    let failures: Vec<_> = history
        .iter()
        .filter_map(|e| match e {
            Event::ActivityFailed {
                cmd,
                attempt,
                failure,
            } => Some((*cmd, *attempt, failure.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 2, "{history:#?}");
    assert_eq!((failures[0].0, failures[0].1), (CommandSeq(1), 1));
    assert!(failures[0].2.non_retryable);
    assert_eq!(failures[0].2.cause, FailureCause::Application);
    assert_eq!(failures[0].2.message, "card declined");
    assert_eq!((failures[1].0, failures[1].1), (CommandSeq(2), 1));
    assert_eq!(failures[1].2.kind, "card-expired");
    assert!(completions(&history).is_empty());
    assert_eq!(
        attempts(&ledger.of("decline-1", "decline"), Phase::Start),
        [1, 1],
        "one attempt per call"
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_result_of_a_timed_out_attempt_is_rejected() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<SlowFlow>()
        .activity(SlowFirst {
            ledger: ledger.clone(),
            first_attempt: Duration::from_millis(1_500),
        })
        .start();
    let handle = env.client.start::<SlowFlow>("slow-1", ()).await.unwrap();

    let recorded = eventually("the activity result to be applied", async || {
        let h = env.client.history("slow-1").await.ok()?;
        h.iter().find_map(|e| match e {
            Event::ActivityCompleted { attempt, .. } => Some(*attempt),
            _ => None,
        })
    })
    .await;
    assert_eq!(
        recorded, 2,
        "the retry, not the timed-out attempt, is recorded"
    );
    eventually("the timed-out attempt to finish anyway", async || {
        let entries = ledger.of("slow-1", "slow-first");
        entries
            .iter()
            .any(|e| e.attempt == 1 && e.phase == Phase::End)
            .then_some(())
    })
    .await;
    // Its result is reported right after its last ledger line; give that
    // report time to reach the store while the run is still open.
    tokio::time::sleep(Duration::from_millis(100)).await;
    env.client.signal("slow-1", &Finish).await.unwrap();
    assert_eq!(result_of(&handle).await.unwrap(), "attempt-2");

    let history = env.client.history("slow-1").await.unwrap();
    assert_well_formed(&history);
    assert_eq!(completions(&history), BTreeMap::from([(1, vec![2])]));
    assert!(!history
        .iter()
        .any(|e| matches!(e, Event::ActivityFailed { .. })));

    let entries = ledger.of("slow-1", "slow-first");
    assert_eq!(attempts(&entries, Phase::Start), [1, 2]);
    assert_eq!(
        attempts(&entries, Phase::Stale),
        [1],
        "the store must refuse the timed-out attempt's heartbeat"
    );
    let starts = of_phase(&entries, Phase::Start);
    let ends = of_phase(&entries, Phase::End);
    let end_of = |n: u32| ends.iter().find(|e| e.attempt == n).unwrap().at;
    assert!(
        end_of(1) >= end_of(2),
        "attempt 1 finished after attempt 2: {entries:?}"
    );
    // No bound on the time between the two starts: the timeout counts
    // from the store's claim, these ledger times from when the runtime
    // got round to running the activity, which under load comes later by
    // any amount. That attempt 2 waited for attempt 1's timeout shows in
    // the store's refusal of attempt 1's heartbeat above.
    assert!(
        starts[1].at >= starts[0].at,
        "attempt 2 started before attempt 1: {entries:?}"
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_attempt_is_retried_and_its_lease_no_longer_holds() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<SilentFlow>()
        .activity(GoesSilent {
            ledger: ledger.clone(),
            first_is_back: Gate::new(),
        })
        .start();
    let handle = env
        .client
        .start::<SilentFlow>("silent-1", ())
        .await
        .unwrap();
    // Attempt 1 would succeed by itself after 1.2 s; only the heartbeat
    // timeout can make attempt 2 the one recorded.
    assert_eq!(result_of(&handle).await.unwrap(), "attempt-2");
    let history = env.client.history("silent-1").await.unwrap();
    assert_well_formed(&history);
    assert_eq!(completions(&history), BTreeMap::from([(1, vec![2])]));
    let entries = ledger.of("silent-1", "goes-silent");
    assert_eq!(attempts(&entries, Phase::Start), [1, 2]);
    assert_eq!(
        attempts(&entries, Phase::Stale),
        [1],
        "attempt 1's heartbeat must be refused while attempt 2 holds the task"
    );
    assert_eq!(
        attempts(&entries, Phase::End),
        [1, 2],
        "attempt 1 reported while attempt 2 was running"
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_details_reach_the_next_attempt() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<ResumeFlow>()
        .activity(Resume {
            ledger: ledger.clone(),
        })
        .start();
    let handle = env
        .client
        .start::<ResumeFlow>("resume-1", ())
        .await
        .unwrap();
    assert_eq!(
        result_of(&handle).await.unwrap(),
        "attempt 2 resumed after Some(7)"
    );
    let history = env.client.history("resume-1").await.unwrap();
    assert_eq!(completions(&history), BTreeMap::from([(1, vec![2])]));
    assert_eq!(
        attempts(&ledger.of("resume-1", "resume"), Phase::Start),
        [1, 2]
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_fail_the_activity_and_then_the_workflow() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<GiveUpFlow>()
        .activity(Flaky {
            ledger: ledger.clone(),
            failures: 5,
        })
        .start();
    let handle = env
        .client
        .start::<GiveUpFlow>("give-up-1", ())
        .await
        .unwrap();
    match result_of(&handle).await {
        Err(ClientError::WorkflowFailed {
            workflow_id,
            failure,
        }) => {
            assert_eq!(workflow_id.as_str(), "give-up-1");
            assert_eq!(failure.kind, "activity-failed");
            assert!(
                failure.message.contains("transient failure 2"),
                "{failure:?}"
            );
        }
        other => panic!("expected the workflow to fail, got {other:?}"),
    }
    let d = env.client.describe("give-up-1").await.unwrap();
    assert_eq!(d.status(), RunStatus::Failed);
    let history = env.client.history("give-up-1").await.unwrap();
    assert_well_formed(&history);
    assert_eq!(
        kinds(&history),
        strings(&[
            "WorkflowStarted",
            "ActivationStarted",
            "ActivityScheduled(flaky)",
            "ActivationStarted",
            "ActivityFailed(flaky)",
            "WorkflowFailed",
        ])
    );
    assert!(history.iter().any(|e| matches!(
        e,
        Event::ActivityFailed { attempt: 2, failure, .. } if failure.message == "transient failure 2"
    )));
    assert_eq!(
        attempts(&ledger.of("give-up-1", "flaky"), Phase::Start),
        [1, 2]
    );
    assert_eq!(
        env.client
            .list(&RunFilter {
                status: Some(RunStatus::Failed),
                workflow_type: None,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
    worker.shutdown(Duration::from_secs(1)).await;
}

/// Retries after an hour: longer than the default 100 s cap on a single
/// wait, which must not shorten it.
struct PatientFlow;

impl Workflow for PatientFlow {
    const NAME: &'static str = "patient-flow";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let policy = RetryPolicy::exponential().initial_interval(Duration::from_secs(3600));
        Ok(ctx.activity::<Flaky>(()).retry(policy).await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_when_a_backed_off_retry_will_run() {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<PatientFlow>()
        .activity(Flaky {
            ledger: ledger.clone(),
            failures: 1,
        })
        .start();
    env.client
        .start::<PatientFlow>("patient-1", ())
        .await
        .unwrap();
    let waiting = eventually("attempt 2 to be scheduled", async || {
        let d = env.client.describe("patient-1").await.ok()?;
        let a = d.pending_activities.first()?.clone();
        (a.attempt == 2).then_some(a)
    })
    .await;
    assert!(!waiting.running);
    assert!(waiting.attempt_deadline.is_none());
    let failed_at = waiting.first_scheduled_at;
    let next = waiting.next_attempt_at.expect("the retry's time");
    let wait = next.duration_since(failed_at).unwrap();
    // The hour asked for, counted from the failed attempt (which ran after
    // the activity was first scheduled, so a little more than an hour).
    assert!(
        wait >= Duration::from_secs(3600) && wait < Duration::from_secs(3660),
        "{wait:?}"
    );
    assert_eq!(
        waiting.last_failure.map(|f| f.message).as_deref(),
        Some("transient failure 1")
    );
    worker.shutdown(Duration::from_secs(1)).await;
}
