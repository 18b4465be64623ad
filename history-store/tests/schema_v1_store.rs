//! A sled store written by schema version 1 opens and runs on this build.
//!
//! The store is made by this build and then turned, value by value, into
//! exactly what version 1 wrote: every field version 2 added sits at the
//! end of its type and is at its default here (an empty list or `None`,
//! one zero byte each in bincode), so version 1's bytes are these bytes
//! without that tail, under a version-1 header with its length and
//! checksum. The golden fixtures (`tests/golden/v1`) hold real version-1
//! bytes of every type; this test holds a whole store of them to what an
//! application does next: list and decide a task, commit an activation,
//! read and terminate runs.

mod common;

use common::*;
use refrain_history::codec::{decode, encode, HEADER_LEN};
use refrain_history::{CommandSeq, Event, EventSeq, HumanTaskRecord, RunRecord, RunStatus};
use std::collections::BTreeMap;
use std::path::Path;

/// `bytes` (a value this build wrote) as version 1 wrote it: `tail` bytes
/// fewer, version 1 in the header.
fn as_version_1(bytes: &[u8], tail: usize) -> Vec<u8> {
    assert_eq!(&bytes[..2], b"RF");
    let payload = &bytes[HEADER_LEN..bytes.len() - tail];
    assert!(
        bytes[bytes.len() - tail..].iter().all(|b| *b == 0),
        "the fields version 2 added are not at their defaults"
    );
    let mut out = bytes[..HEADER_LEN].to_vec();
    out[3..5].copy_from_slice(&1u16.to_be_bytes());
    out[5..9].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    out[9..13].copy_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// How many trailing bytes the version-2 fields of an event take.
fn event_tail(e: &Event) -> usize {
    match e {
        Event::HumanTaskAssigned { .. } | Event::WorkflowTerminated { .. } => 1,
        _ => 0,
    }
}

/// Rewrites every enveloped value of the closed store at `dir` as
/// version 1 wrote it; returns how many values changed length. A run
/// record counts its history's stored size, so it is rewritten with the
/// size version 1's shorter events add up to.
fn downgrade(dir: &Path) -> usize {
    // The closed store's threads may hold sled's file lock a moment longer.
    let mut tries = 0;
    let db = loop {
        match sled::open(dir) {
            Ok(db) => break db,
            Err(_) if tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Err(e) => panic!("reopening the store's sled database: {e}"),
        }
    };
    let mut shortened = 0;
    let mut history_shrank: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut names: Vec<String> = db
        .tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    // Histories first: the run records then know their sizes.
    names.sort_by_key(|n| n != "history");
    for name in names {
        let tree = db.open_tree(&name).unwrap();
        for item in tree.iter() {
            let (key, mut bytes) = item.unwrap();
            if bytes.len() < HEADER_LEN || &bytes[..2] != b"RF" {
                continue;
            }
            let tail = match name.as_str() {
                "runs" => {
                    let mut record: RunRecord = decode(&bytes).unwrap();
                    let shrank = history_shrank.get(&key[..]).copied().unwrap_or(0);
                    record.history_bytes -= shrank;
                    bytes = encode(&record).unwrap().into();
                    1
                }
                "human_tasks" => 2,
                "history" | "inbox" => event_tail(&decode::<Event>(&bytes).unwrap()),
                _ => 0,
            };
            if name == "history" {
                *history_shrank.entry(key[..8].to_vec()).or_default() += tail as u64;
            }
            shortened += usize::from(tail > 0);
            tree.insert(key, as_version_1(&bytes, tail)).unwrap();
        }
    }
    db.flush().unwrap();
    shortened
}

#[test]
fn a_store_written_by_version_1_opens_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (loan, stuck) = {
        let store = open(dir.path());
        let loan = start(&store, "loan-1", at(0));
        activate(
            &store,
            loan,
            at(10),
            vec![Event::HumanTaskAssigned {
                cmd: CommandSeq(1),
                task: "underwriting-review".into(),
                assignee: "underwriter-1".into(),
                form: Some(payload("{\"amount\":25000}")),
                deadline: Some(at(3_600_000)),
                level: 0,
                callsite: callsite(),
                escalations: Vec::new(),
            }],
        );
        let stuck = start(&store, "stuck-1", at(20));
        store
            .terminate(&"stuck-1".into(), "duplicate", at(30))
            .unwrap();
        store.durable_blocking().unwrap();
        (loan, stuck)
    };
    // Two run records, the task, the assignment and the termination.
    assert_eq!(downgrade(dir.path()), 5);

    let store = open(dir.path());
    let record: RunRecord = store.run_record(loan).unwrap().unwrap();
    assert!(record.awaited_signals.is_empty());
    let tasks: Vec<HumanTaskRecord> = store.list_human_tasks("underwriter-1").unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(
        (tasks[0].escalations.len(), &tasks[0].claimed_from),
        (0, &None)
    );
    let history = store.read_history(stuck).unwrap();
    assert!(
        matches!(history.last(), Some(Event::WorkflowTerminated { reason, terminated_by: None }) if reason == "duplicate"),
        "{history:?}"
    );

    // It runs on: a decision, the activation that applies it, the end.
    store
        .decide_human_task(
            loan,
            CommandSeq(1),
            payload("\"approve\""),
            "underwriter-1",
            None,
            at(40),
        )
        .unwrap();
    activate(
        &store,
        loan,
        at(50),
        vec![Event::WorkflowCompleted {
            result: payload("\"approved\""),
        }],
    );
    let record = store.run_record(loan).unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Completed);
    let history = store.read_history(loan).unwrap();
    assert!(matches!(
        history.first(),
        Some(Event::WorkflowStarted { .. })
    ));
    assert_eq!(record.last_seq, EventSeq(history.len() as u64));
    assert!(store.list_human_tasks("underwriter-1").unwrap().is_empty());
}
