//! The `refrain` binary against a store recorded by a real worker: a
//! checkout whose payment is retried and which waits for an approval
//! signal, and a run left waiting on a failing activity and a timer.

use refrain::history_file::HistoryExport;
use refrain::{
    async_trait, join, Activity, ActivityContext, ActivityError, Client, RetryPolicy, RunId,
    Signal, Store, StoreConfig, Workflow, WorkflowContext, WorkflowError,
};
use refrain_history::Timestamp;
use refrain_worker::{Replayer, Worker};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::{Command, ExitCode, Output};
use std::time::{Duration, Instant};

struct ChargePayment;
#[async_trait]
impl Activity for ChargePayment {
    const NAME: &'static str = "charge-payment";
    type Input = u64;
    type Output = String;
    async fn run(&self, ctx: ActivityContext, cents: u64) -> Result<String, ActivityError> {
        if ctx.attempt() < 2 {
            return Err(ActivityError::retryable("gateway unavailable").with_kind("gateway"));
        }
        Ok(format!("pay-{cents}"))
    }
}

struct NotifyOperations;
#[async_trait]
impl Activity for NotifyOperations {
    const NAME: &'static str = "notify-operations";
    type Input = String;
    type Output = ();
    async fn run(&self, _: ActivityContext, _: String) -> Result<(), ActivityError> {
        Err(ActivityError::retryable("pager unreachable").with_kind("pager"))
    }
}

#[derive(Serialize, Deserialize)]
struct Approve {
    approved: bool,
}
impl Signal for Approve {
    const NAME: &'static str = "approve";
}

struct Checkout;
impl Workflow for Checkout {
    const NAME: &'static str = "checkout";
    type Input = u64;
    type Output = String;
    async fn run(ctx: WorkflowContext, cents: u64) -> Result<String, WorkflowError> {
        let payment = ctx
            .activity::<ChargePayment>(cents)
            .retry(
                RetryPolicy::exponential()
                    .initial_interval(Duration::from_millis(10))
                    .max_attempts(3),
            )
            .await?;
        let approval = ctx.wait_signal::<Approve>().await?;
        Ok(format!("{payment} approved={}", approval.approved))
    }
}

struct Stuck;
impl Workflow for Stuck {
    const NAME: &'static str = "stuck";
    type Input = ();
    type Output = ();
    async fn run(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
        let notify = ctx
            .activity::<NotifyOperations>("disk full".into())
            .retry(RetryPolicy::exponential().initial_interval(Duration::from_secs(3600)));
        let deadline = ctx.sleep(Duration::from_secs(7200));
        let (notified, ()) = join(notify, deadline).await;
        notified?;
        Ok(())
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    stuck_run: RunId,
}

impl Fixture {
    fn db(&self) -> &Path {
        self.dir.path()
    }
}

/// Records `order-1` (completed after a retry and a signal), `stuck-1`
/// (open: its activity failed once and waits to retry, its timer is
/// pending) and `stuck-2` (terminated), then drops everything so the CLI
/// can take the lock.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stuck_run = runtime.block_on(async {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let worker = Worker::builder(store.clone())
            .workflow::<Checkout>()
            .workflow::<Stuck>()
            .activity(ChargePayment)
            .activity(NotifyOperations)
            .start();
        let client = Client::new(store.clone());
        let order = client.start::<Checkout>("order-1", 4200).await.unwrap();
        client
            .signal_from("order-1", &Approve { approved: true }, "ops@example.com")
            .await
            .unwrap();
        let result = tokio::time::timeout(Duration::from_secs(30), order.result())
            .await
            .expect("checkout finished")
            .unwrap();
        assert_eq!(result, "pay-4200 approved=true");

        let stuck = client.start::<Stuck>("stuck-1", ()).await.unwrap();
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let d = client.describe("stuck-1").await.unwrap();
            let retried = d
                .pending_activities
                .iter()
                .any(|a| a.attempt == 2 && a.last_failure.is_some());
            if retried && d.pending_timers.len() == 1 {
                break;
            }
            assert!(Instant::now() < give_up, "stuck-1 never retried: {d:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        client.start::<Stuck>("stuck-2", ()).await.unwrap();
        store
            .terminate_by(
                &"stuck-2".into(),
                "duplicate alert",
                Some("oncall"),
                Timestamp::now(),
            )
            .unwrap();
        store.durable().await.unwrap();
        worker.shutdown(Duration::from_secs(1)).await;
        stuck.run_id()
    });
    drop(runtime);
    Fixture { dir, stuck_run }
}

fn refrain(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_refrain"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("REFRAIN_DB")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the CLI and expects success.
fn ok(db: &Path, args: &[&str]) -> String {
    let o = refrain(db, args);
    assert!(
        o.status.success(),
        "refrain {args:?} failed ({:?}):\n{}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Runs the CLI and expects exit code `code`; returns stderr.
fn fails(db: &Path, args: &[&str], code: i32) -> String {
    let o = refrain(db, args);
    assert_eq!(
        o.status.code(),
        Some(code),
        "refrain {args:?}:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    stderr(&o)
}

/// The store's view of `id`'s latest run, read after the CLI exited.
fn history_len(db: &Path, id: &str) -> (usize, u64) {
    let store = Store::open(db, StoreConfig::default()).unwrap();
    let (run, record) = store.latest_run(&id.into()).unwrap().unwrap();
    (store.read_history(run).unwrap().len(), record.inbox_tail)
}

#[test]
fn list_shows_runs_and_filters_them() {
    let f = fixture();
    let all = ok(f.db(), &["list"]);
    let lines: Vec<&str> = all.lines().collect();
    assert!(lines[0].starts_with("ID"), "{all}");
    assert!(lines[0].contains("STATUS"), "{all}");
    let order = lines.iter().find(|l| l.starts_with("order-1")).unwrap();
    assert!(
        order.contains("checkout") && order.contains("completed"),
        "{all}"
    );
    let stuck = lines.iter().find(|l| l.starts_with("stuck-1")).unwrap();
    assert!(stuck.contains("running") && stuck.ends_with(" -"), "{all}");

    let running = ok(f.db(), &["list", "--status", "running"]);
    assert!(
        running.contains("stuck-1") && !running.contains("order-1"),
        "{running}"
    );
    let checkouts = ok(f.db(), &["list", "--type", "checkout"]);
    assert!(checkouts.contains("order-1") && !checkouts.contains("stuck-1"));
    let terminated = ok(f.db(), &["list", "--status", "terminated"]);
    assert!(terminated.contains("stuck-2") && !terminated.contains("stuck-1"));
    let none = ok(f.db(), &["list", "--status", "failed"]);
    assert!(none.contains("no runs match"), "{none}");
    fails(f.db(), &["list", "--status", "sleeping"], 2);
}

#[test]
fn list_pages_with_a_cursor_and_refuses_a_forged_one() {
    let f = fixture();
    let ids = |out: &str| -> Vec<String> {
        out.lines()
            .skip(1)
            .filter(|l| !l.starts_with('('))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    let all = ids(&ok(f.db(), &["list"]));
    assert_eq!(all.len(), 3, "{all:?}");

    let first = ok(f.db(), &["list", "--limit", "2"]);
    let cursor = first
        .lines()
        .find_map(|l| l.strip_prefix("(more: --after "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no cursor after a full page: {first}"));
    let second = ok(f.db(), &["list", "--limit", "2", "--after", cursor]);
    assert!(!second.contains("(more:"), "{second}");
    // The two pages are the whole list, in its order, once each.
    let paged: Vec<String> = ids(&first).into_iter().chain(ids(&second)).collect();
    assert_eq!(paged, all);

    let err = fails(f.db(), &["list", "--after", "not-a-cursor"], 1);
    assert!(err.contains("not-a-cursor"), "{err}");
    fails(f.db(), &["list", "--limit", "0"], 2);
}

#[test]
fn list_newest_first_pages_the_other_way() {
    let f = fixture();
    let ids = |out: &str| -> Vec<String> {
        out.lines()
            .skip(1)
            .filter(|l| !l.starts_with('('))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    let mut oldest = ids(&ok(f.db(), &["list"]));
    oldest.reverse();
    assert_eq!(ids(&ok(f.db(), &["list", "--newest-first"])), oldest);

    let first = ok(f.db(), &["list", "--newest-first", "--limit", "2"]);
    let cursor = first
        .lines()
        .find_map(|l| l.strip_prefix("(more: --after "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no cursor after a full page: {first}"));
    let second = ok(
        f.db(),
        &["list", "--newest-first", "--limit", "2", "--after", cursor],
    );
    let paged: Vec<String> = ids(&first).into_iter().chain(ids(&second)).collect();
    assert_eq!(paged, oldest);
    // The cursor continues its own order only.
    let err = fails(f.db(), &["list", "--after", cursor], 1);
    assert!(err.contains(cursor), "{err}");
}

#[test]
fn describe_shows_pending_work_and_outcomes() {
    let f = fixture();
    let stuck = ok(f.db(), &["describe", "stuck-1"]);
    assert!(stuck.contains("status    running"), "{stuck}");
    assert!(stuck.contains("notify-operations"), "{stuck}");
    assert!(stuck.contains("attempt 2"), "{stuck}");
    assert!(stuck.contains("waiting to retry"), "{stuck}");
    assert!(
        stuck.contains("last failure (attempt 1): pager: pager unreachable"),
        "{stuck}"
    );
    assert!(stuck.contains("pending timers (1):"), "{stuck}");
    assert!(stuck.contains("fires "), "{stuck}");
    assert!(stuck.contains("last activation failure: none"), "{stuck}");

    let order = ok(f.db(), &["describe", "order-1"]);
    assert!(order.contains("status    completed"), "{order}");
    assert!(
        order.contains("result    \"pay-4200 approved=true\""),
        "{order}"
    );
    assert!(order.contains("pending activities: none"), "{order}");

    let err = fails(f.db(), &["describe", "nope"], 1);
    assert!(err.contains("no workflow with id nope"), "{err}");
}

#[test]
fn history_is_a_timeline_that_shows_retries_and_signals() {
    let f = fixture();
    let text = ok(f.db(), &["history", "order-1"]);
    assert!(text.contains("checkout, completed"), "{text}");
    assert!(
        text.contains("schedule activity charge-payment (cmd 1) with input 4200 [up to 3 attempts"),
        "{text}"
    );
    assert!(
        text.contains("completed on attempt 2 after 1 failed attempt(s), retried"),
        "{text}"
    );
    assert!(
        text.contains(r#"signal approve from ops@example.com: {"approved":true}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"workflow COMPLETED with result "pay-4200 approved=true""#),
        "{text}"
    );
    // Every event line starts with its seq and a UTC time to the ms.
    let events: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    // One line per stored event, however the signal and the first
    // activation happened to be batched.
    assert_eq!(events.len(), history_len(f.db(), "order-1").0, "{text}");
    for line in events {
        let time = line.split_whitespace().nth(1).unwrap();
        assert_eq!(time.len(), 24, "{line}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{line}");
    }

    let stuck = ok(f.db(), &["history", "stuck-1"]);
    assert!(stuck.contains("start timer (cmd 2) for 2h00m"), "{stuck}");
    assert!(stuck.contains("now: the run is open"), "{stuck}");
    assert!(
        stuck.contains("retrying after attempt 1 failed: pager: pager unreachable"),
        "{stuck}"
    );

    let terminated = ok(f.db(), &["history", "stuck-2"]);
    assert!(
        terminated.contains("workflow TERMINATED by oncall: duplicate alert"),
        "{terminated}"
    );

    // --run must name a run of the same workflow.
    let run = f.stuck_run.0.to_string();
    assert!(ok(f.db(), &["history", "stuck-1", "--run", &run]).contains("stuck, running"));
    let err = fails(f.db(), &["history", "order-1", "--run", &run], 1);
    assert!(err.contains("belongs to workflow stuck-1"), "{err}");
}

#[test]
fn export_writes_a_file_that_reads_back_and_replays() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("order-1.json");
    let bin = out.path().join("order-1.bin");
    let said = ok(
        f.db(),
        &["export", "order-1", "--out", json.to_str().unwrap()],
    );
    assert!(said.contains("(JSON)"), "{said}");
    ok(
        f.db(),
        &["export", "order-1", "--out", bin.to_str().unwrap()],
    );
    assert!(std::fs::read_to_string(&json)
        .unwrap()
        .contains("\"format\": \"refrain-history\""));
    assert_eq!(&std::fs::read(&bin).unwrap()[..2], b"RF");

    let from_json = HistoryExport::read_file(&json).unwrap();
    let from_bin = HistoryExport::read_file(&bin).unwrap();
    assert_eq!(from_json, from_bin);
    let store = Store::open(f.db(), StoreConfig::default()).unwrap();
    assert_eq!(
        from_json,
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(HistoryExport::from_store(&store, &"order-1".into()))
            .unwrap()
    );
    drop(store);

    // An unknown id writes nothing.
    let missing = out.path().join("nope.json");
    let err = fails(
        f.db(),
        &["export", "nope", "--out", missing.to_str().unwrap()],
        1,
    );
    assert!(err.contains("no workflow with id nope"), "{err}");
    assert!(!missing.exists());

    // The stock binary cannot replay and says how to get one that can.
    let err = fails(f.db(), &["replay", json.to_str().unwrap()], 2);
    assert!(err.contains("no workflow types registered"), "{err}");
    assert!(err.contains("refrain_worker::cli::run"), "{err}");

    // An application's own binary, with its workflows registered, can.
    let with_code = || Replayer::new().workflow::<Checkout>().workflow::<Stuck>();
    let terminated = out.path().join("stuck-2.json");
    ok(
        f.db(),
        &["export", "stuck-2", "--out", terminated.to_str().unwrap()],
    );
    let dir_arg = out.path().to_str().unwrap();
    assert_eq!(
        refrain_worker::cli::run_with_args(with_code(), ["refrain", "replay", dir_arg]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        refrain_worker::cli::run_with_args(
            Replayer::new().workflow::<Stuck>(),
            ["refrain", "replay", json.to_str().unwrap()]
        ),
        ExitCode::from(1)
    );
}

#[test]
fn signal_checks_its_input_and_writes_nothing_on_error() {
    let f = fixture();
    let err = fails(f.db(), &["signal", "nope", "approve", "{}"], 1);
    assert!(err.contains("no workflow with id nope"), "{err}");

    let before = history_len(f.db(), "stuck-1");
    let err = fails(
        f.db(),
        &["signal", "stuck-1", "approve", "{approved: yes"],
        1,
    );
    assert!(err.contains("not JSON"), "{err}");
    let err = fails(f.db(), &["signal", "order-1", "approve", "{}"], 1);
    assert!(err.contains("closed"), "{err}");
    assert_eq!(history_len(f.db(), "stuck-1"), before);

    let said = ok(
        f.db(),
        &[
            "signal",
            "stuck-1",
            "note",
            r#"{"text": "disk replaced"}"#,
            "--sender",
            "grace",
        ],
    );
    assert!(said.contains("signal note sent to stuck-1"), "{said}");
    // Durable and queued for the run's next activation.
    let (events, inbox_tail) = history_len(f.db(), "stuck-1");
    assert_eq!(events, before.0);
    assert_eq!(inbox_tail, before.1 + 1);
    let described = ok(f.db(), &["describe", "stuck-1"]);
    assert!(described.contains("1 event(s) waiting"), "{described}");
}

#[test]
fn cancel_and_terminate_record_the_request_and_refuse_closed_runs() {
    let f = fixture();
    let said = ok(
        f.db(),
        &[
            "cancel",
            "stuck-1",
            "--reason",
            "alert resolved",
            "--by",
            "oncall",
        ],
    );
    assert!(said.contains("cancellation of stuck-1"), "{said}");
    // No worker runs here: the request waits in the inbox, durable, and is
    // what the workflow sees when a worker next runs it.
    let store = Store::open(f.db(), StoreConfig::default()).unwrap();
    let record = store.run_record(f.stuck_run).unwrap().unwrap();
    assert_eq!(record.inbox_tail - record.inbox_head, 1);
    drop(store);

    let said = ok(f.db(), &["terminate", "stuck-1", "--reason", "superseded"]);
    assert!(said.contains("terminated: superseded"), "{said}");
    let timeline = ok(f.db(), &["history", "stuck-1"]);
    assert!(timeline.contains("superseded"), "{timeline}");
    let err = fails(f.db(), &["cancel", "stuck-1"], 1);
    assert!(err.contains("closed"), "{err}");
    let err = fails(f.db(), &["terminate", "nope", "--reason", "x"], 1);
    assert!(err.contains("no workflow with id nope"), "{err}");
}

#[test]
fn a_store_held_by_another_process_is_a_one_line_error() {
    let f = fixture();
    let _held = Store::open(f.db(), StoreConfig::default()).unwrap();
    let err = fails(f.db(), &["list"], 2);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("locked"), "{err}");
    assert!(err.contains(&f.db().display().to_string()), "{err}");
}

#[test]
fn a_missing_store_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("typo");
    let err = fails(&db, &["list"], 2);
    assert!(err.contains("no Refrain store at"), "{err}");
    assert!(!db.exists());
}

#[test]
#[ignore = "prints the CLI's output for a human to read"]
fn show_output() {
    let f = fixture();
    for args in [
        &["list"][..],
        &["describe", "stuck-1"],
        &["describe", "order-1"],
        &["history", "order-1"],
        &["history", "stuck-1"],
    ] {
        println!("$ refrain {}\n{}", args.join(" "), ok(f.db(), args));
    }
}

/// Every file of the store, by name, for checking that nothing was written.
fn snapshot(db: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![db.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn a_damaged_store_is_verified_and_exported_without_being_written() {
    let f = fixture();
    let said = ok(f.db(), &["verify"]);
    assert!(said.contains("3 runs checked, no damage found"), "{said}");

    // What a lost log tail leaves: sled's flush mark behind the
    // watermark, and stuck-2's record ahead of its history.
    let stuck_2 = {
        let store = Store::open(f.db(), StoreConfig::default()).unwrap();
        let (run, record) = store.latest_run(&"stuck-2".into()).unwrap().unwrap();
        (run, record.last_seq)
    };
    {
        let db = sled::open(f.db()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        let mark = meta.get("flush_mark").unwrap().expect("a flush mark");
        let mark = u64::from_be_bytes(mark.as_ref().try_into().unwrap());
        meta.insert("flush_mark", &(mark - 1).to_be_bytes()[..])
            .unwrap();
        let history = db.open_tree("history").unwrap();
        let mut key = stuck_2.0 .0.to_be_bytes().to_vec();
        key.extend_from_slice(&stuck_2.1 .0.to_be_bytes());
        assert!(history.remove(key).unwrap().is_some());
        db.flush().unwrap();
    }
    let before = snapshot(f.db());

    let err = fails(f.db(), &["signal", "stuck-1", "approve", "{}"], 2);
    assert!(err.contains("is damaged"), "{err}");
    assert!(err.contains("refrain verify --db"), "{err}");

    let o = refrain(f.db(), &["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let report = stdout(&o);
    assert!(
        report.contains("store: the data file ends at flush"),
        "{report}"
    );
    let line = format!("run-{} (stuck-2): history holds", stuck_2.0 .0);
    assert!(report.contains(&line), "{report}");
    assert!(!report.contains("order-1"), "{report}");

    let out = tempfile::tempdir().unwrap();
    let intact = out.path().join("order-1.json");
    let o = refrain(
        f.db(),
        &["export", "order-1", "--out", intact.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("the store is damaged"),
        "{}",
        stderr(&o)
    );
    assert!(HistoryExport::read_file(&intact).is_ok());
    let damaged = out.path().join("stuck-2.json");
    let err = fails(
        f.db(),
        &["export", "stuck-2", "--out", damaged.to_str().unwrap()],
        1,
    );
    assert!(err.contains("is damaged: history holds"), "{err}");
    assert!(!damaged.exists());
    // The other reading commands read the same copy.
    let listed = ok(f.db(), &["list"]);
    assert!(
        listed.contains("order-1") && listed.contains("stuck-2"),
        "{listed}"
    );
    let described = ok(f.db(), &["describe", "order-1"]);
    assert!(described.contains("order-1"), "{described}");
    let timeline = ok(f.db(), &["history", "order-1"]);
    assert!(timeline.contains("workflow COMPLETED"), "{timeline}");

    // sled rebuilds its snapshot file (page locations, derived from the
    // log) whenever it opens; the data itself must be as it was.
    let data = |files: Vec<(std::path::PathBuf, Vec<u8>)>| {
        files
            .into_iter()
            .filter(|(path, _)| {
                !path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("snap.")
            })
            .collect::<Vec<_>>()
    };
    assert!(
        data(snapshot(f.db())) == data(before),
        "a command wrote to the damaged store"
    );
}
