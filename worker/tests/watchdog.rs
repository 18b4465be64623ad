//! The stall watchdog: what it reports, what it leaves alone, and that by
//! default a stalled process exits non-zero.
//!
//! - a_silent_activity_is_reported_naming_its_run_and_command
//! - a_long_activity_within_its_deadline_is_never_reported
//! - an_activity_that_heartbeats_between_checks_is_never_reported
//! - by_default_a_stalled_worker_exits_with_the_stall_status (a child
//!   process)

use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, DurabilityMode, Store,
    StoreConfig, Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::{StallAction, Stalled, Worker, STALL_EXIT_CODE};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// Never returns and never heartbeats (and ignores being told to stop).
struct Hang;
#[async_trait]
impl Activity for Hang {
    const NAME: &'static str = "hang";
    type Input = ();
    type Output = ();
    async fn run(&self, _: ActivityContext, _: ()) -> Result<(), ActivityError> {
        std::future::pending().await
    }
}

/// Calls `Hang` with a start-to-close timeout of the input's milliseconds.
struct Stuck;
impl Workflow for Stuck {
    const NAME: &'static str = "stuck";
    type Input = u64;
    type Output = ();
    async fn run(ctx: WorkflowContext, start_to_close_ms: u64) -> Result<(), WorkflowError> {
        ctx.activity::<Hang>(())
            .start_to_close(Duration::from_millis(start_to_close_ms))
            .await?;
        Ok(())
    }
}

/// A deadline the hanging attempt overstays within the test.
const SHORT_MS: u64 = 300;
/// A deadline far beyond the test.
const LONG_MS: u64 = 3_600_000;

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(
        dir.path(),
        StoreConfig {
            // No flush can be slow: these tests are about attempts.
            durability: DurabilityMode::None,
            ..StoreConfig::default()
        },
    )
    .unwrap()
}

/// A worker running `Stuck` and `Hang` whose watchdog, with a 200 ms
/// threshold, only reports.
fn reporting_worker(store: &Store) -> Worker {
    Worker::builder(store.clone())
        .workflow::<Stuck>()
        .activity(Hang)
        .stall_threshold(Duration::from_millis(200))
        .on_stall(StallAction::Report)
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_activity_is_reported_naming_its_run_and_command() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let worker = reporting_worker(&store);
    let client = Client::new(store.clone());
    client.start::<Stuck>("stuck-1", SHORT_MS).await.unwrap();
    let run = store
        .latest_run(&refrain::WorkflowId::new("stuck-1"))
        .unwrap()
        .unwrap()
        .0;

    let reported = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let health = worker.health();
            let found = health.stuck.iter().find_map(|s| match &s.what {
                Stalled::AttemptSilent(a) => Some((a.clone(), s.to_string())),
                _ => None,
            });
            if let Some(found) = found {
                return (found, health);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let ((attempt, message), health) = reported.expect("the watchdog reports the silent attempt");
    assert_eq!(attempt.workflow_id.as_str(), "stuck-1");
    assert_eq!(attempt.run, run);
    assert_eq!(attempt.attempt, 1);
    let record = store.run_record(run).unwrap().unwrap();
    assert_eq!(record.pending_activities, [attempt.cmd]);
    assert!(
        message.contains("stuck-1") && message.contains(&attempt.cmd.to_string()),
        "the report names the run and command: {message}"
    );
    assert!(health.stalls_reported >= 1);
    assert!(!health.is_healthy());
    worker.shutdown(Duration::ZERO).await;
}

/// Runs for many checks of the watchdog, well past its threshold, but
/// within its own start-to-close timeout: that is the user's statement of
/// how long it may take, so it is not a stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_activity_within_its_deadline_is_never_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let worker = reporting_worker(&store);
    let client = Client::new(store.clone());
    client.start::<Stuck>("long-1", LONG_MS).await.unwrap();
    let first = worker.health().checks;
    tokio::time::timeout(Duration::from_secs(60), async {
        while worker.health().checks < first + 10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the watchdog keeps checking");
    let health = worker.health();
    assert_eq!(
        health.stalls_reported, 0,
        "an attempt within its deadline is not stuck: {health:?}"
    );
    worker.shutdown(Duration::ZERO).await;
}

/// Heartbeats with a new detail each time, once between every two checks
/// of the watchdog, `BEATS` times.
struct Beating {
    worker: Arc<OnceLock<Weak<Worker>>>,
}
const BEATS: u64 = 12;

#[async_trait]
impl Activity for Beating {
    const NAME: &'static str = "beating";
    type Input = ();
    type Output = u64;
    async fn run(&self, ctx: ActivityContext, _: ()) -> Result<u64, ActivityError> {
        let checks = || {
            self.worker
                .get()
                .and_then(Weak::upgrade)
                .map_or(0, |w| w.health().checks)
        };
        for i in 0..BEATS {
            ctx.heartbeat(&i).await.expect("heartbeat recorded");
            // The next check comes after this heartbeat.
            let seen = checks();
            while checks() <= seen {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(BEATS)
    }
}

struct Patient;
impl Workflow for Patient {
    const NAME: &'static str = "patient";
    type Input = ();
    type Output = u64;
    async fn run(ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
        Ok(ctx
            .activity::<Beating>(())
            .start_to_close(Duration::from_secs(3600))
            .await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_that_heartbeats_between_checks_is_never_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let handle = Arc::new(OnceLock::new());
    // Checks every 100 ms; the attempt runs for about 12 of them, well
    // past the threshold.
    let worker = Arc::new(
        Worker::builder(store.clone())
            .workflow::<Patient>()
            .activity(Beating {
                worker: handle.clone(),
            })
            .stall_threshold(Duration::from_millis(400))
            .on_stall(StallAction::Report)
            .start(),
    );
    handle.set(Arc::downgrade(&worker)).unwrap();
    let client = Client::new(store);
    let h = client.start::<Patient>("patient-1", ()).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(120), h.result())
        .await
        .expect("the workflow finishes")
        .unwrap();
    assert_eq!(result, BEATS);
    let health = worker.health();
    assert!(health.checks >= BEATS, "the watchdog kept checking");
    assert_eq!(
        health.stalls_reported, 0,
        "a heartbeating attempt is progress: {health:?}"
    );
}

const CHILD: &str = "REFRAIN_WATCHDOG_TEST_CHILD";

#[test]
fn by_default_a_stalled_worker_exits_with_the_stall_status() {
    if std::env::var_os(CHILD).is_some() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = open(&dir);
            // Only the threshold is set: the action is the default.
            let _worker = Worker::builder(store.clone())
                .workflow::<Stuck>()
                .activity(Hang)
                .stall_threshold(Duration::from_millis(200))
                .start();
            Client::new(store)
                .start::<Stuck>("stuck-1", SHORT_MS)
                .await
                .unwrap();
            // The watchdog ends the process; a minute is far beyond it.
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        std::process::exit(0);
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "by_default_a_stalled_worker_exits_with_the_stall_status",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(STALL_EXIT_CODE),
        "the child exits with the stall status; stderr:\n{stderr}"
    );
    assert!(stderr.contains("stalled"), "it says why: {stderr}");
}
