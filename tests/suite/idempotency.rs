//! An activity's idempotency key (`workflow-id/run/cmd`) is what an
//! external system deduplicates by, so every attempt of one call must see
//! the same key, before and after any crash; and an attempt that began in
//! a killed process must count, so its number is never run again.
//!
//! The workload (`refrain_tests::keys`) makes every call the first command
//! of a new run (eager start, continue-as-new, child start), which is where
//! a crash once split a call across keys: the run that scheduled it was
//! lost with the process while its attempt had already begun, and the call
//! was scheduled again in a run with another number.

use crate::crash::{tempdir, RunningChild};
use refrain::{RunFilter, RunStatus, Store, StoreConfig};
use refrain_tests::crash::{db_dir, READY};
use refrain_tests::keys::{
    attempts_run_twice, calls_with_several_keys, key_ledger_file, read_key_ledger, KEY_CHAINS,
    KEY_GENERATIONS,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Kills of the test: each lands while most chains are between runs.
const KILLS: u32 = 15;

#[test]
fn killed_while_new_runs_start_their_first_call_each_call_keeps_one_key() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    // Printed so that a failing interleaving can be named; libtest shows it
    // only when the test fails.
    println!("key crash seed {seed}");
    let mut rng = seed;
    let mut next_delay = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        Duration::from_millis(5 + rng % 80)
    };

    let dir = tempdir();
    let dir_arg = dir.path().display().to_string();
    for round in 1..=KILLS {
        let mut child = RunningChild::spawn(dir.path(), &["keys", &dir_arg], round);
        child.wait_for("the chains to be started", |l| l == READY);
        std::thread::sleep(next_delay());
        child.kill();
    }
    let results = RunningChild::spawn(dir.path(), &["keys", &dir_arg], KILLS + 1).finish();
    assert_eq!(results.len(), KEY_CHAINS, "every chain completes");

    let entries = read_key_ledger(&key_ledger_file(dir.path())).expect("reading the key ledger");
    let split = calls_with_several_keys(&entries);
    assert!(
        split.is_empty(),
        "calls that ran under more than one idempotency key (seed {seed}): {split:#?}"
    );
    let twice = attempts_run_twice(&entries);
    assert!(
        twice.is_empty(),
        "attempts that began twice under the same number (seed {seed}): {twice:?}"
    );
    // Every call ran (the ledger is not vacuous): each generation of each
    // chain, and each leaf.
    let calls: std::collections::BTreeSet<&str> = entries.iter().map(|e| e.call.as_str()).collect();
    assert_eq!(
        calls.len(),
        KEY_CHAINS * (KEY_GENERATIONS as usize + 1),
        "{calls:?}"
    );

    // Whatever a killed process drew, the store holds one run per
    // generation and leaf, each closed: no start was lost or doubled.
    let store = Store::open(db_dir(dir.path()), StoreConfig::default()).expect("reopening");
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), KEY_CHAINS * (KEY_GENERATIONS as usize + 1));
    assert!(runs.iter().all(|r| !r.status.is_open()), "{runs:?}");
    assert_eq!(
        runs.iter()
            .filter(|r| r.status == RunStatus::ContinuedAsNew)
            .count(),
        KEY_CHAINS * (KEY_GENERATIONS as usize - 1)
    );
}
