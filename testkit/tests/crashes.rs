//! Crash-point exploration: every boundary of a sound workflow resumes to
//! the same result, and a workflow whose outcome depends on how often an
//! activity ran is reported at the boundary where it diverged.
//!
//! - `a_sound_workflow_ends_alike_after_a_crash_at_every_boundary`
//! - `an_activity_that_counts_its_runs_is_reported_at_its_boundary`
//! - `a_restart_resumes_a_run_from_what_was_committed`

use refrain::{Activity, ActivityContext, ActivityError, Workflow, WorkflowContext, WorkflowError};
use refrain_testkit::{explore_crashes, ExploreError, TestEnv};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Charge;
#[refrain::async_trait]
impl Activity for Charge {
    const NAME: &'static str = "charge";
    type Input = u32;
    type Output = u32;
    async fn run(&self, _: ActivityContext, cents: u32) -> Result<u32, ActivityError> {
        Ok(cents)
    }
}

struct Ship;
#[refrain::async_trait]
impl Activity for Ship {
    const NAME: &'static str = "ship";
    type Input = u32;
    type Output = String;
    async fn run(&self, _: ActivityContext, parcel: u32) -> Result<String, ActivityError> {
        Ok(format!("parcel-{parcel}"))
    }
}

/// Charges, waits a day, ships.
struct Order;
impl Workflow for Order {
    const NAME: &'static str = "order";
    type Input = u32;
    type Output = String;
    async fn run(ctx: WorkflowContext, cents: u32) -> Result<String, WorkflowError> {
        let charged = ctx.activity::<Charge>(cents).await?;
        ctx.sleep(Duration::from_secs(24 * 3600)).await;
        let parcel = ctx.activity::<Ship>(charged / 100).await?;
        Ok(format!("{parcel} for {charged} cents"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sound_workflow_ends_alike_after_a_crash_at_every_boundary() {
    let explored = explore_crashes::<Order, _>(1250, |env| {
        env.register_activity(Charge);
        env.register_activity(Ship);
    })
    .await
    .unwrap();
    eprintln!("order: {explored} durable boundaries explored");
    // The start, two activity results, the timer fired, the close: at
    // least one boundary each, however the commits fold them.
    assert!(explored >= 4, "only {explored} boundaries explored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_that_counts_its_runs_is_reported_at_its_boundary() {
    let err = explore_crashes::<Order, _>(1250, |env| {
        // Not idempotent: its result is how often it ran in this process
        // and the ones after it.
        let runs = Arc::new(AtomicU32::new(0));
        env.mock_activity::<Charge, _, _>(move |_| {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok(n * 100) }
        });
        env.register_activity(Ship);
    })
    .await
    .unwrap_err();
    match &err {
        ExploreError::Diverged { what, .. } => {
            assert!(what.contains("parcel-2 for 200 cents"), "{err}");
            assert!(what.contains("parcel-1 for 100 cents"), "{err}");
        }
        other => panic!("expected Diverged, got {other}"),
    }
    eprintln!("{err}");
    assert!(
        err.to_string().starts_with("crash after durable boundary "),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_a_run_from_what_was_committed() {
    let env = TestEnv::new().await;
    env.register_workflow::<Order>();
    let charges = Arc::new(AtomicU32::new(0));
    let counted = charges.clone();
    env.mock_activity::<Charge, _, _>(move |cents| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { Ok(cents) }
    });
    env.register_activity(Ship);
    let handle = env.start::<Order>("order-9", 900).await.unwrap();
    env.run_until_blocked().await.unwrap();
    env.restart().await.unwrap();
    assert_eq!(env.result(&handle).await.unwrap(), "parcel-9 for 900 cents");
    // Charged before the restart, and not again after it.
    assert_eq!(charges.load(Ordering::SeqCst), 1);
    env.shutdown().await;
}
