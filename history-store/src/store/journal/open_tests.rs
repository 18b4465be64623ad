//! What the journal does at open with the entries a crash left: damaged,
//! half removed, or written by a build before the envelope.

use super::entry::{encode_entry, encode_legacy, CHUNK_BYTES};
use super::*;
use std::path::Path;

/// An entry number, its stored chunks, and which of them are present.
type Left = (u64, Vec<Vec<u8>>, std::ops::Range<usize>);

/// A store whose journal holds `entries` as a crash would leave them;
/// `a` holds `"k" = "old"`.
fn left_by_crash(dir: &Path, entries: &[Left]) {
    let db = super::super::open_db(dir, &Default::default()).unwrap();
    db.open_tree("a").unwrap().insert("k", "old").unwrap();
    let tree = db.open_tree("journal").unwrap();
    for (entry, chunks, present) in entries {
        for i in present.clone() {
            tree.insert(chunk_key(*entry, i as u32), &*chunks[i])
                .unwrap();
        }
    }
    db.flush().unwrap();
}

/// The chunks of an entry writing `"k" = value` to tree `a` and a value
/// `size` bytes long to `b` (so that the entry spans several chunks).
fn entry(value: &str, size: usize, legacy: bool) -> Vec<Vec<u8>> {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let (a, b) = (db.open_tree("a").unwrap(), db.open_tree("b").unwrap());
    let sets = [
        (
            &a,
            BTreeMap::from([(IVec::from("k"), Some(IVec::from(value)))]),
        ),
        (
            &b,
            BTreeMap::from([(IVec::from("big"), Some(IVec::from(vec![3u8; size])))]),
        ),
    ];
    if legacy {
        encode_legacy(&sets)
    } else {
        encode_entry(&sets)
    }
}

fn reopen(dir: &Path) -> (Db, Result<Journal, StoreError>) {
    let db = super::super::open_db(dir, &Default::default()).unwrap();
    let journal = Journal::open(&db);
    (db, journal)
}

fn value(db: &Db, tree: &str, key: &str) -> Option<IVec> {
    db.open_tree(tree).unwrap().get(key).unwrap()
}

#[test]
fn a_flipped_byte_in_an_entry_is_a_named_error_and_nothing_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut chunks = entry("new", 8, false);
    // A byte of the value "new", inside the checksummed payload.
    let at = chunks[0]
        .windows(3)
        .position(|w| w == b"new")
        .expect("the value is stored as is");
    chunks[0][at] ^= 0x20;
    left_by_crash(dir.path(), &[(4, chunks, 0..1)]);
    let (db, journal) = reopen(dir.path());
    assert!(
        matches!(
            journal,
            Err(StoreError::Corrupt {
                what: "journal",
                source: CodecError::ChecksumMismatch { .. },
                ..
            })
        ),
        "{:?}",
        journal.err()
    );
    assert_eq!(value(&db, "a", "k").as_deref(), Some(&b"old"[..]));
    assert_eq!(value(&db, "b", "big"), None);
    assert_eq!(db.open_tree("journal").unwrap().len(), 1, "left untouched");
}

#[test]
fn an_entry_whose_removal_was_interrupted_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let chunks = entry("new", 2 * CHUNK_BYTES, false);
    assert_eq!(chunks.len(), 3);
    // Applied, then chunk 0 removed before the crash.
    left_by_crash(dir.path(), &[(9, chunks, 1..3)]);
    let (db, journal) = reopen(dir.path());
    let journal = journal.unwrap();
    assert!(journal.tree.is_empty());
    assert_eq!(journal.writer().next, 10);
    assert_eq!(value(&db, "a", "k").as_deref(), Some(&b"old"[..]));
}

#[test]
fn a_missing_middle_chunk_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut chunks = entry("new", 2 * CHUNK_BYTES, false);
    chunks.remove(1);
    left_by_crash(dir.path(), &[(2, chunks, 0..2)]);
    let (db, journal) = reopen(dir.path());
    assert!(matches!(
        journal,
        Err(StoreError::Corrupt {
            what: "journal",
            ..
        })
    ));
    assert_eq!(value(&db, "a", "k").as_deref(), Some(&b"old"[..]));
}

#[test]
fn entries_written_before_the_envelope_are_applied_or_dropped_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let whole = entry("new", 2 * CHUNK_BYTES, true);
    let partial = entry("newer", 2 * CHUNK_BYTES, true);
    left_by_crash(dir.path(), &[(3, whole, 0..3), (4, partial, 0..2)]);
    let (db, journal) = reopen(dir.path());
    let journal = journal.unwrap();
    assert_eq!(value(&db, "a", "k").as_deref(), Some(&b"new"[..]));
    assert_eq!(value(&db, "b", "big").unwrap().len(), 2 * CHUNK_BYTES);
    assert!(journal.tree.is_empty());
    assert_eq!(journal.writer().next, 5);
}

#[test]
fn a_journal_mixing_both_formats_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let old = entry("new", 8, true);
    let new = entry("newer", 8, false);
    left_by_crash(dir.path(), &[(3, old, 0..1), (4, new, 0..1)]);
    let (db, journal) = reopen(dir.path());
    assert!(matches!(
        journal,
        Err(StoreError::Corrupt {
            what: "journal",
            ..
        })
    ));
    assert_eq!(db.open_tree("journal").unwrap().len(), 2, "left untouched");
}
