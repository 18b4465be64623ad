//! Damaged bytes on disk and a second opener: named errors for the one
//! affected run, never a panic, and other runs carry on.

mod common;

use common::*;
use refrain_history::keys::{run_key, run_seq_key};
use refrain_history::{CommandSeq, Event, RunId, Store, StoreConfig, StoreError};
use std::path::Path;
use std::time::Duration;

/// Flips every bit of the value at `key` in `tree`, with the store closed.
fn flip_value(dir: &Path, tree: &str, key: &[u8]) {
    let db = raw_sled(dir);
    let tree = db.open_tree(tree).unwrap();
    let mut bytes = tree.get(key).unwrap().expect("value to corrupt").to_vec();
    for b in &mut bytes[4..] {
        *b ^= 0xFF;
    }
    tree.insert(key, bytes).unwrap();
    db.flush().unwrap();
}

fn assert_corrupt<T: std::fmt::Debug>(
    r: Result<T, StoreError>,
    expected_what: &str,
    expected_run: RunId,
) {
    match r {
        Err(StoreError::Corrupt { what, run, .. }) => {
            assert_eq!(what, expected_what);
            assert_eq!(run, Some(expected_run));
        }
        other => panic!("expected corrupt {expected_what} of {expected_run}, got {other:?}"),
    }
}

#[test]
fn a_corrupt_event_fails_only_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let (bad, good) = {
        let store = open(dir.path());
        let bad = start(&store, "order-1", at(0));
        let good = start(&store, "order-2", at(0));
        (bad, good)
    };
    flip_value(dir.path(), "history", &run_seq_key(bad, 1));

    let store = open(dir.path());
    assert_corrupt(store.read_history(bad), "history", bad);
    let history = store.read_history(good).unwrap();
    assert!(matches!(history[..], [Event::WorkflowStarted { .. }]));
    activate(&store, good, at(1), vec![]);
    assert_eq!(store.read_history(good).unwrap().len(), 2);
}

#[test]
fn a_corrupt_run_record_fails_only_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let (bad, good) = {
        let store = open(dir.path());
        (
            start(&store, "order-1", at(0)),
            start(&store, "order-2", at(0)),
        )
    };
    flip_value(dir.path(), "runs", &run_key(bad));

    let store = open(dir.path());
    assert_corrupt(store.run_record(bad), "run", bad);
    assert_corrupt(store.claim_activation(bad), "run", bad);
    assert_corrupt(
        store.signal(&"order-1".into(), "s", payload("1")),
        "run",
        bad,
    );
    assert!(store.claim_activation(good).unwrap().is_some());
    store.signal(&"order-2".into(), "s", payload("1")).unwrap();
}

#[test]
fn a_corrupt_inbox_item_fails_the_claim_without_leasing() {
    let dir = tempfile::tempdir().unwrap();
    let run = {
        let store = open(dir.path());
        let run = start(&store, "order-1", at(0));
        store.signal(&"order-1".into(), "s", payload("1")).unwrap();
        run
    };
    flip_value(dir.path(), "inbox", &run_seq_key(run, 0));
    let store = open(dir.path());
    assert_corrupt(store.claim_activation(run), "inbox", run);
    assert_eq!(store.run_record(run).unwrap().unwrap().lease, None);
}

#[test]
fn a_timer_of_a_corrupt_run_is_skipped_and_others_fire() {
    let dir = tempfile::tempdir().unwrap();
    let (bad, good) = {
        let store = open(dir.path());
        let bad = start(&store, "order-1", at(0));
        let good = start(&store, "order-2", at(0));
        activate(&store, bad, at(0), vec![start_timer(1, at(100))]);
        activate(&store, good, at(0), vec![start_timer(1, at(200))]);
        (bad, good)
    };
    flip_value(dir.path(), "runs", &run_key(bad));

    let store = open(dir.path());
    assert_eq!(store.fire_due(at(1_000)).unwrap(), 1);
    assert_eq!(
        peek_inbox(&store, good),
        vec![Event::TimerFired { cmd: CommandSeq(1) }]
    );
    // The unreadable timer is not offered again, so a timer service does
    // not spin on it; its key is left on disk for an operator.
    assert_eq!(store.next_deadline().unwrap(), None);
    assert_eq!(store.fire_due(at(1_000)).unwrap(), 0);
    drop(store);
    let db = raw_sled(dir.path());
    assert_eq!(db.open_tree("timers").unwrap().len(), 1);
}

#[test]
fn a_second_open_of_a_held_directory_is_storage_locked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let config = StoreConfig {
        lock_timeout: Duration::from_millis(200),
        ..fast_config()
    };
    match Store::open(dir.path(), config.clone()) {
        Err(StoreError::StorageLocked { path }) => assert_eq!(path, dir.path()),
        Err(e) => panic!("expected StorageLocked, got {e:?}"),
        Ok(_) => panic!("a second handle opened a held directory"),
    }
    // Once the holder is gone the directory opens again.
    drop(store);
    let reopened = Store::open(
        dir.path(),
        StoreConfig {
            lock_timeout: Duration::from_secs(5),
            ..config
        },
    );
    assert!(reopened.is_ok(), "{:?}", reopened.err());
}

#[test]
fn a_damaged_meta_counter_is_a_named_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    {
        let db = raw_sled(dir.path());
        db.open_tree("meta")
            .unwrap()
            .insert("epoch", &[1u8, 2, 3][..])
            .unwrap();
        db.flush().unwrap();
    }
    match Store::open(dir.path(), fast_config()) {
        Err(StoreError::Corrupt { what: "meta", .. }) => {}
        Err(e) => panic!("expected corrupt meta, got {e:?}"),
        Ok(_) => panic!("opened with a damaged epoch"),
    }
}
