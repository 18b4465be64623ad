//! Shadow replay before a deploy: the open runs of a store (or of an
//! export directory) replayed against new code, failures listed with the
//! nondeterminism report, unregistered types skipped.

use refrain::history_file::HistoryExport;
use refrain::{Signal, Workflow, WorkflowContext, WorkflowError};
use refrain_tests::activities::{Charge, Reserve};
use refrain_tests::env::{eventually, result_of, TestEnv};
use refrain_tests::history::kinds;
use refrain_tests::ledger::Ledger;
use refrain_worker::shadow::{self, ShadowSource};
use refrain_worker::{ReplayError, Replayer, Worker};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static V1_RESERVE_LINE: AtomicU32 = AtomicU32::new(0);
static V2_CHARGE_LINE: AtomicU32 = AtomicU32::new(0);

fn here(cell: &AtomicU32, line: u32) -> String {
    cell.store(line, Ordering::SeqCst);
    format!("line {line}")
}

#[derive(Serialize, Deserialize)]
struct Go;

impl Signal for Go {
    const NAME: &'static str = "go";
}

/// The deployed code: reserve, then wait.
struct ShopV1;

impl Workflow for ShopV1 {
    const NAME: &'static str = "shadow-shop";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let reserved = ctx
            .activity::<Reserve>(here(&V1_RESERVE_LINE, line!()))
            .await?;
        ctx.wait_signal::<Go>().await?;
        Ok(reserved)
    }
}

/// The new code under the same type name: schedules a different activity.
struct ShopV2;

impl Workflow for ShopV2 {
    const NAME: &'static str = "shadow-shop";
    type Input = ();
    type Output = String;

    async fn run(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
        let charged = ctx
            .activity::<Charge>(here(&V2_CHARGE_LINE, line!()))
            .await?;
        ctx.wait_signal::<Go>().await?;
        Ok(charged)
    }
}

/// A type the new binary no longer registers.
struct Retired;

impl Workflow for Retired {
    const NAME: &'static str = "shadow-retired";
    type Input = ();
    type Output = ();

    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        ctx.wait_signal::<Go>().await?;
        Ok(())
    }
}

/// A store with two open shop runs (each past its activity), one closed
/// shop run and one open run of `Retired`; the worker is shut down.
async fn store_with_open_runs() -> TestEnv {
    let env = TestEnv::new();
    let ledger = Ledger::in_memory();
    let worker = Worker::builder(env.store.clone())
        .workflow::<ShopV1>()
        .workflow::<Retired>()
        .activity(Reserve::new(&ledger))
        .activity(Charge::new(&ledger))
        .start();
    let mut closed = None;
    for id in ["shop-1", "shop-2", "shop-closed"] {
        closed = Some(env.client.start::<ShopV1>(id, ()).await.unwrap());
        eventually("the reservation to be applied", async || {
            let h = env.client.history(id).await.ok()?;
            kinds(&h)
                .contains(&"ActivityCompleted(reserve)".to_owned())
                .then_some(())
        })
        .await;
    }
    env.client.start::<Retired>("retired-1", ()).await.unwrap();
    env.client.signal("shop-closed", &Go).await.unwrap();
    result_of(&closed.expect("shop-closed started"))
        .await
        .unwrap();
    worker.shutdown(Duration::from_secs(1)).await;
    env
}

fn store_source(env: &TestEnv) -> ShadowSource {
    ShadowSource::StoreDir(env.store_path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_code_replays_every_open_run_and_skips_unregistered_types() {
    let env = store_with_open_runs().await;
    let replayer = Replayer::new().workflow::<ShopV1>();
    let report = shadow::replay_open_runs(&replayer, &store_source(&env)).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.checked, 3, "{report}");
    assert_eq!(report.passed, 2, "{report}");
    assert_eq!(report.skipped.len(), 1, "{report}");
    assert_eq!(report.skipped[0].0.as_str(), "retired-1");
    assert_eq!(report.skipped[0].2, "shadow-retired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_code_is_reported_per_open_run_naming_both_lines() {
    let env = store_with_open_runs().await;
    let replayer = Replayer::new().workflow::<ShopV2>().workflow::<Retired>();
    let report = shadow::replay_open_runs(&replayer, &store_source(&env)).unwrap();
    assert_eq!(report.checked, 3, "{report}");
    assert_eq!(report.passed, 1, "{report}");
    assert!(report.skipped.is_empty(), "{report}");
    let mut failed: Vec<&str> = report
        .failed
        .iter()
        .map(|f| f.workflow_id.as_str())
        .collect();
    failed.sort();
    assert_eq!(failed, ["shop-1", "shop-2"], "{report}");
    for failure in &report.failed {
        assert_eq!(failure.workflow_type, "shadow-shop");
        assert!(matches!(failure.error, ReplayError::Nondeterminism(_)));
    }
    let text = report.to_string();
    for needle in [
        format!("{}:{}:", file!(), V1_RESERVE_LINE.load(Ordering::SeqCst)),
        format!("{}:{}:", file!(), V2_CHARGE_LINE.load(Ordering::SeqCst)),
        "\"reserve\"".to_owned(),
        "\"charge\"".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle:?} missing from:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_directory_is_checked_like_the_store_it_came_from() {
    let env = store_with_open_runs().await;
    let exports = tempfile::tempdir().unwrap();
    for id in ["shop-1", "shop-2", "shop-closed", "retired-1"] {
        let history = HistoryExport::from_store(&env.store, &id.into())
            .await
            .unwrap();
        history
            .write_file(exports.path().join(format!("{id}.json")))
            .unwrap();
    }
    let source = ShadowSource::ExportDir(exports.path().to_path_buf());
    let report = shadow::replay_open_runs(&Replayer::new().workflow::<ShopV2>(), &source).unwrap();
    assert_eq!(report.checked, 3, "{report}");
    assert_eq!(report.passed, 0, "{report}");
    assert_eq!(report.failed.len(), 2, "{report}");
    assert_eq!(report.skipped.len(), 1, "{report}");
}

#[test]
fn a_missing_store_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let source = ShadowSource::StoreDir(dir.path().join("absent"));
    let err = shadow::replay_open_runs(&Replayer::new(), &source).unwrap_err();
    assert!(err.to_string().contains("cannot read the store"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_verb_exits_1_and_lists_the_runs_the_new_code_would_not_replay() {
    let env = store_with_open_runs().await;
    let db = env.store_path();
    let db = db.to_str().expect("a UTF-8 temporary path");
    let run = |replayer: Replayer| {
        refrain_worker::cli::run_captured(replayer, ["refrain", "--db", db, "shadow"], None)
    };

    let same = run(Replayer::new().workflow::<ShopV1>());
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    assert!(
        same.stdout
            .contains("3 open runs checked: 2 passed, 0 failed, 1 skipped"),
        "{}",
        same.stdout
    );

    let changed = run(Replayer::new().workflow::<ShopV2>().workflow::<Retired>());
    assert_eq!(changed.code, 1, "{}{}", changed.stdout, changed.stderr);
    for needle in ["FAILED shop-1", "FAILED shop-2", "\"charge\""] {
        assert!(
            changed.stdout.contains(needle),
            "{needle:?} missing from:\n{}",
            changed.stdout
        );
    }

    // The stock binary has no workflow code: it says how to get one.
    let stock = run(Replayer::new());
    assert_eq!(stock.code, 2, "{}", stock.stderr);
    assert!(
        stock.stderr.contains("no workflow types registered"),
        "{}",
        stock.stderr
    );

    // A server holds no workflow code either: refused by name, nothing read.
    let remote = refrain_worker::cli::run_captured(
        Replayer::new().workflow::<ShopV1>(),
        ["refrain", "--server", "http://127.0.0.1:9", "shadow"],
        Some("token"),
    );
    assert_eq!(remote.code, 2, "{}", remote.stderr);
    assert!(
        remote.stderr.contains("reads no server"),
        "{}",
        remote.stderr
    );
}
