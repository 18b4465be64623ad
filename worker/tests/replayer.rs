//! The Replayer against histories recorded by a real worker: the same code
//! replays, changed code is reported as nondeterminism, and the directory
//! helpers refuse to pass when they check nothing.

use refrain::history_file::HistoryExport;
use refrain::{
    async_trait, Activity, ActivityContext, ActivityError, Client, Event, Store, StoreConfig,
    Workflow, WorkflowContext, WorkflowError,
};
use refrain_worker::{ReplayError, Replayer, Worker};
use std::path::Path;
use std::time::Duration;

struct CreateAccount;
#[async_trait]
impl Activity for CreateAccount {
    const NAME: &'static str = "create-account";
    type Input = String;
    type Output = String;
    async fn run(&self, _: ActivityContext, name: String) -> Result<String, ActivityError> {
        Ok(format!("acct-{name}"))
    }
}

struct SendWelcome;
#[async_trait]
impl Activity for SendWelcome {
    const NAME: &'static str = "send-welcome";
    type Input = String;
    type Output = String;
    async fn run(&self, _: ActivityContext, account: String) -> Result<String, ActivityError> {
        Ok(format!("welcomed {account}"))
    }
}

/// Never registered on a worker: only the changed code calls it.
struct OrderEquipment;
#[async_trait]
impl Activity for OrderEquipment {
    const NAME: &'static str = "order-equipment";
    type Input = String;
    type Output = String;
    async fn run(&self, _: ActivityContext, name: String) -> Result<String, ActivityError> {
        Ok(name)
    }
}

/// The code that recorded the histories.
struct Onboard;
impl Workflow for Onboard {
    const NAME: &'static str = "onboard";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
        let account = ctx.activity::<CreateAccount>(name).await?;
        ctx.sleep(Duration::from_millis(20)).await;
        Ok(ctx.activity::<SendWelcome>(account).await?)
    }
}

/// A deploy that changed the first step without a patch guard.
struct OnboardChanged;
impl Workflow for OnboardChanged {
    const NAME: &'static str = "onboard";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
        let account = ctx.activity::<OrderEquipment>(name).await?;
        ctx.sleep(Duration::from_millis(20)).await;
        Ok(ctx.activity::<SendWelcome>(account).await?)
    }
}

/// The same change, guarded: old histories keep the old path.
struct OnboardPatched;
impl Workflow for OnboardPatched {
    const NAME: &'static str = "onboard";
    type Input = String;
    type Output = String;
    async fn run(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
        let account = if ctx.patched("order-equipment-first") {
            ctx.activity::<OrderEquipment>(name).await?
        } else {
            ctx.activity::<CreateAccount>(name).await?
        };
        ctx.sleep(Duration::from_millis(20)).await;
        Ok(ctx.activity::<SendWelcome>(account).await?)
    }
}

struct OnboardPanics;
impl Workflow for OnboardPanics {
    const NAME: &'static str = "onboard";
    type Input = String;
    type Output = String;
    async fn run(_: WorkflowContext, name: String) -> Result<String, WorkflowError> {
        panic!("refusing to onboard {name}");
    }
}

/// Runs `Onboard` for each name through a real worker and returns the
/// exported histories.
fn record(names: &[&str]) -> Vec<HistoryExport> {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let worker = Worker::builder(store.clone())
            .workflow::<Onboard>()
            .activity(CreateAccount)
            .activity(SendWelcome)
            .start();
        let client = Client::new(store.clone());
        let mut exports = Vec::new();
        for name in names {
            let handle = client
                .start::<Onboard>(format!("onboard-{name}"), name.to_string())
                .await
                .unwrap();
            let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
                .await
                .expect("workflow finished")
                .unwrap();
            assert_eq!(result, format!("welcomed acct-{name}"));
            exports.push(
                HistoryExport::from_store(&store, handle.workflow_id())
                    .await
                    .unwrap(),
            );
        }
        worker.shutdown(Duration::from_secs(1)).await;
        exports
    })
}

fn write_all(dir: &Path, exports: &[HistoryExport]) {
    for (i, e) in exports.iter().enumerate() {
        let ext = if i % 2 == 0 { "json" } else { "bin" };
        e.write_file(dir.join(format!("{}.{ext}", e.workflow_id)))
            .unwrap();
    }
}

#[test]
fn a_recorded_history_replays_through_the_same_code() {
    let export = record(&["ada"]).remove(0);
    let report = Replayer::new()
        .workflow::<Onboard>()
        .replay(&export)
        .unwrap();
    assert_eq!(report.workflow_id.as_str(), "onboard-ada");
    assert_eq!(report.workflow_type, "onboard");
    assert_eq!(report.run, export.run);
    assert_eq!(report.events, export.events.len() as u64);
    assert_eq!(report.activations, 4);
    assert!(report.closed);

    // Both file forms replay the same way.
    let dir = tempfile::tempdir().unwrap();
    for name in ["h.json", "h.bin"] {
        export.write_file(dir.path().join(name)).unwrap();
        let from_file = Replayer::new()
            .workflow::<Onboard>()
            .replay_file(dir.path().join(name))
            .unwrap();
        assert_eq!(from_file, report);
    }
}

#[test]
fn a_history_cut_at_an_activation_replays_as_open() {
    let mut export = record(&["bob"]).remove(0);
    let last_activation = export
        .events
        .iter()
        .rposition(|e| matches!(e, Event::ActivationStarted { .. }))
        .unwrap();
    export.events.truncate(last_activation);
    let report = Replayer::new()
        .workflow::<Onboard>()
        .replay(&export)
        .unwrap();
    assert!(!report.closed);
    assert_eq!(report.activations, 3);

    // A termination is written by the store, outside any activation, with
    // no code to check it against: it closes the run and nothing more.
    export.events.push(Event::WorkflowTerminated {
        reason: "duplicate".into(),
        terminated_by: None,
    });
    let report = Replayer::new()
        .workflow::<Onboard>()
        .replay(&export)
        .unwrap();
    assert!(report.closed);
    assert_eq!(report.events, export.events.len() as u64);
}

#[test]
fn changed_code_is_reported_as_nondeterminism() {
    let export = record(&["cy"]).remove(0);
    let err = Replayer::new()
        .workflow::<OnboardChanged>()
        .replay(&export)
        .unwrap_err();
    let ReplayError::Nondeterminism(report) = &err else {
        panic!("{err}");
    };
    let expected = report.expected.as_ref().unwrap();
    let produced = report.produced.as_ref().unwrap();
    assert_eq!(expected.kind, "ActivityScheduled");
    assert_eq!(expected.name.as_deref(), Some("create-account"));
    assert_eq!(produced.name.as_deref(), Some("order-equipment"));
    assert_eq!(report.position, 3);
    assert_eq!(report.activation, 1);
    // The Display is the full report, hint included.
    let text = err.to_string();
    assert!(text.contains("\"create-account\""), "{text}");
    assert!(text.contains("\"order-equipment\""), "{text}");
    assert!(text.contains("replayer.rs"), "produced callsite: {text}");
    assert!(text.contains("ctx.patched"), "{text}");

    // Guarded with a patch, the same change replays.
    Replayer::new()
        .workflow::<OnboardPatched>()
        .replay(&export)
        .unwrap();
}

#[test]
fn panics_unknown_types_and_bad_histories_are_named() {
    let export = record(&["dee"]).remove(0);
    assert!(matches!(
        Replayer::new().workflow::<OnboardPanics>().replay(&export),
        Err(ReplayError::Panicked { message, .. }) if message.contains("refusing to onboard dee")
    ));
    match Replayer::new().replay(&export) {
        Err(e @ ReplayError::UnknownWorkflowType { .. }) => {
            assert!(e.to_string().contains("\"onboard\""), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let replayer = Replayer::new().workflow::<Onboard>();
    let empty = HistoryExport {
        events: vec![],
        ..export.clone()
    };
    assert!(matches!(
        replayer.replay(&empty),
        Err(ReplayError::InvalidHistory { position: 1, .. })
    ));
    let headless = HistoryExport {
        events: export.events[1..].to_vec(),
        ..export.clone()
    };
    assert!(matches!(
        replayer.replay(&headless),
        Err(ReplayError::InvalidHistory { position: 1, .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    assert!(matches!(
        replayer.replay_file(&garbage),
        Err(ReplayError::Decode { path, .. }) if path == garbage
    ));
    assert!(matches!(
        replayer.replay_file(dir.path().join("missing.bin")),
        Err(ReplayError::Io { .. })
    ));
}

#[test]
fn replay_dir_checks_every_history_file_in_name_order() {
    let exports = record(&["eve", "fay", "gus"]);
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &exports);
    std::fs::write(dir.path().join("README.md"), "not a history").unwrap();
    std::fs::create_dir(dir.path().join("nested.json")).unwrap();

    let results = Replayer::new().workflow::<Onboard>().replay_dir(dir.path());
    let names: Vec<String> = results
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["onboard-eve.json", "onboard-fay.bin", "onboard-gus.json"]
    );
    assert!(results.iter().all(|(_, r)| r.is_ok()));
    Replayer::new()
        .workflow::<Onboard>()
        .assert_replays(dir.path());

    let failing = Replayer::new()
        .workflow::<OnboardChanged>()
        .replay_dir(dir.path());
    assert!(failing
        .iter()
        .all(|(_, r)| matches!(r, Err(ReplayError::Nondeterminism(_)))));
}

#[test]
fn assert_replays_panics_with_every_failing_report() {
    let exports = record(&["hal", "ivy"]);
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &exports);
    let panic = std::panic::catch_unwind(|| {
        Replayer::new()
            .workflow::<OnboardChanged>()
            .assert_replays(dir.path())
    })
    .unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("2 of 2 histories"), "{message}");
    assert!(message.contains("onboard-hal.json"), "{message}");
    assert!(message.contains("onboard-ivy.bin"), "{message}");
    assert_eq!(message.matches("nondeterminism in workflow").count(), 2);
}

#[test]
#[should_panic(expected = "no history files")]
fn assert_replays_on_an_empty_dir_panics() {
    let dir = tempfile::tempdir().unwrap();
    Replayer::new()
        .workflow::<Onboard>()
        .assert_replays(dir.path());
}

#[test]
#[should_panic(expected = "did not replay")]
fn assert_replays_on_a_missing_dir_panics() {
    let dir = tempfile::tempdir().unwrap();
    Replayer::new()
        .workflow::<Onboard>()
        .assert_replays(dir.path().join("no-such-dir"));
}
