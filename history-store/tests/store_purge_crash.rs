//! A purge killed with SIGKILL in the middle: every run is either wholly
//! there or wholly gone, open runs are untouched, and running the purge
//! again finishes it.
//!
//! The child is this test binary itself, run for its `purge_child` test
//! (ignored unless asked for), which purges the store in small batches
//! until none is left and then waits to be killed.

use refrain_history::{
    IdConflictPolicy, Payload, PurgeRequest, RetentionPolicy, RunId, StartRequest, Store,
    StoreConfig, Timestamp, WorkflowId,
};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Environment variable that makes [`purge_child`] run: the store's
/// directory.
const CHILD_DIR: &str = "REFRAIN_PURGE_CRASH_CHILD";
const RUNS: u64 = 2_000;
/// Small batches: many transactions, so that a kill lands between two
/// or inside one.
const BATCH: usize = 50;
/// When the runs closed, long before any purge.
const CLOSED_AT: Timestamp = Timestamp(2_000);

fn policy() -> RetentionPolicy {
    RetentionPolicy::keep_for(Duration::from_secs(86_400))
}

fn id(i: u64) -> String {
    format!("order-{i}")
}

/// Every seventh run stays open; the others close (terminated) at
/// `CLOSED_AT`.
fn stays_open(i: u64) -> bool {
    i % 7 == 0
}

/// Fills a new store; returns each workflow id's run.
fn fill(dir: &Path) -> BTreeMap<String, RunId> {
    let store = Store::open(dir, StoreConfig::default()).expect("open");
    let mut runs = BTreeMap::new();
    for i in 0..RUNS {
        let outcome = store
            .start_workflow(StartRequest {
                workflow_id: WorkflowId::new(id(i)),
                workflow_type: "order-to-cash".into(),
                input: Payload::from_bytes(format!("{{\"order\":{i}}}").into_bytes()),
                on_conflict: IdConflictPolicy::Reject,
                seed: i,
                now: Timestamp(1_000),
            })
            .expect("start");
        if !stays_open(i) {
            store
                .terminate(&WorkflowId::new(id(i)), "done", CLOSED_AT)
                .expect("terminate");
        }
        runs.insert(id(i), outcome.run);
    }
    store.durable_blocking().expect("durable");
    runs
}

/// The child: purges until nothing is left, printing `RUNNING` first and
/// `DONE` at the end, then waits to be killed.
#[test]
#[ignore = "run by the SIGKILL test as its child process"]
fn purge_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let store = Store::open(Path::new(&dir), StoreConfig::default()).expect("open");
    println!("RUNNING");
    let mut req = PurgeRequest {
        limit: BATCH,
        ..PurgeRequest::new(policy(), Timestamp::now())
    };
    loop {
        let batch = store.purge_closed_blocking(req.clone()).expect("purge");
        store.durable_blocking().expect("durable");
        match batch.next {
            Some(next) => req.after = Some(next),
            None => break,
        }
    }
    println!("DONE");
    std::thread::sleep(Duration::from_secs(600));
}

/// Whether each run is wholly there (record and a whole history, the id
/// naming it) or wholly gone (no record, no history key, the id unused);
/// returns how many are gone. Panics on anything in between.
fn whole_or_gone(dir: &Path, runs: &BTreeMap<String, RunId>) -> usize {
    // Opening completes a transaction the kill interrupted.
    drop(Store::open(dir, StoreConfig::default()).expect("reopen"));
    let db = sled::open(dir).expect("sled");
    let (records, history, ids) = (
        db.open_tree("runs").expect("runs"),
        db.open_tree("history").expect("history"),
        db.open_tree("workflow_ids").expect("ids"),
    );
    let mut gone = 0;
    for (i, (id, run)) in runs.iter().enumerate() {
        let key = run.0.to_be_bytes();
        let record = records.get(key).expect("read").is_some();
        let events = history.scan_prefix(key).count();
        let mapped = ids.get(id.as_bytes()).expect("read").is_some();
        if record {
            // Started, and terminated unless it stays open.
            assert!(
                events >= 1 && mapped,
                "{run} of {id} is torn: {events} events"
            );
        } else {
            assert!(
                events == 0 && !mapped,
                "{run} of {id} is half gone: {events} events, id mapped {mapped}"
            );
            gone += 1;
        }
        let n: u64 = id.trim_start_matches("order-").parse().expect("id");
        if stays_open(n) {
            assert!(record, "open run {run} ({i}) was purged");
        }
    }
    gone
}

#[test]
fn a_purge_killed_in_the_middle_leaves_each_run_whole_or_gone_and_resumes() {
    use rand::Rng;
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = fill(dir.path());
    let closed = runs
        .keys()
        .filter(|id| !stays_open(id.trim_start_matches("order-").parse().expect("id")))
        .count();
    let mut kills = 0;
    let mut killed_midway = 0;
    loop {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", "purge_child", "--ignored", "--nocapture"])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        while !line.contains("RUNNING") {
            line.clear();
            assert_ne!(out.read_line(&mut line).expect("read"), 0, "child exited");
        }
        let pause = rand::rng().random_range(5..80);
        std::thread::sleep(Duration::from_millis(pause));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        kills += 1;
        let gone = whole_or_gone(dir.path(), &runs);
        if gone == closed {
            break;
        }
        if gone > 0 {
            killed_midway += 1;
        }
        assert!(kills < 200, "the purge never finished ({gone} of {closed})");
    }
    assert!(
        killed_midway > 0,
        "no kill landed in the middle of the purge; the test did not exercise it"
    );
}
