//! Atomic writes over several trees, without sled transactions.
//!
//! sled 0.34.7's transactions are costly beyond the writes they make: each
//! one takes a process-wide write lock, writes and `sync_file_range`s its
//! log buffer before and after (two device writes per transaction), and
//! once any transaction has run, `Db::flush` holds that lock's read side
//! while it waits for the disk, so every group fsync stops every commit.
//! Plain inserts and removes have none of this.
//!
//! So a store transaction is: run the closure against views of the trees
//! (reads see the transaction's own writes, nothing reaches sled), then
//!
//! 1. insert the whole write set into the `journal` tree (one key, or a
//!    few chunks for a large set), which makes the set recoverable;
//! 2. apply the writes with plain inserts and removes;
//! 3. remove the journal entry.
//!
//! sled recovers a prefix of its log after a crash, and each step is
//! logged after the one before it. A recovered write of step 2 therefore
//! implies its complete journal entry, and a recovered removal (step 3)
//! implies every write of step 2. At open, every entry still present is
//! applied again (the writes are final values, so applying twice is
//! harmless) and removed; an entry whose last chunk is missing was never
//! applied and is dropped, and one whose first chunks are missing was
//! being removed, so its writes are in place, and is dropped too.
//!
//! Each chunk is stored in the codec's envelope with its own CRC32C (see
//! [`entry`]), so a damaged entry is a `Corrupt { what: "journal" }` error
//! at open rather than a wrong write set applied to the trees; nothing is
//! applied from an entry until the whole of it has decoded. Chunks written
//! before the envelope existed (an older build that crashed mid-commit)
//! are recognised by their first byte and applied as before, without a
//! checksum to verify; a journal mixing both formats is corrupt, since
//! open empties the journal before anything new is written.
//!
//! One writer at a time (a mutex around closure and apply), so a closure's
//! reads of the trees are never interleaved with another transaction's
//! writes. Readers outside transactions that read several keys and need
//! them from one transaction take [`Journal::consistent`], which excludes
//! step 2.

mod entry;

use super::engine::{disk, Table, TxError, TxTree};
use crate::codec::CodecError;
use crate::error::StoreError;
use entry::{decode_chunk, decode_entry, encode_entry, TreeWrites};
use sled::{Db, IVec, Tree};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

/// The journal: the tree that makes multi-tree writes atomic, and the lock
/// that admits one writer at a time.
pub(super) struct Journal {
    tree: Tree,
    writer: Mutex<Writer>,
    /// Held for writing while a transaction's writes are applied.
    applying: RwLock<()>,
}

struct Writer {
    /// Number of the next entry.
    next: u64,
    /// A failed apply leaves the trees half written until the next open
    /// replays the entry: nothing more may be written meanwhile.
    failed: Option<sled::Error>,
}

impl Journal {
    /// Opens the journal of `db`, first completing whatever transaction a
    /// crash interrupted.
    pub(super) fn open(db: &Db) -> Result<Journal, StoreError> {
        let tree = db.open_tree("journal")?;
        let replayed = replay(db, &tree)?;
        if replayed.applied > 0 {
            tracing::info!(
                entries = replayed.applied,
                "completed transactions interrupted by a crash"
            );
        }
        let next = replayed.next;
        Ok(Journal {
            tree,
            writer: Mutex::new(Writer { next, failed: None }),
            applying: RwLock::new(()),
        })
    }

    /// A guard under which reads of several keys see whole transactions.
    /// Only for plain reads: a thread holding it must not write (the
    /// commit it waits for could not apply).
    pub(super) fn consistent(&self) -> RwLockReadGuard<'_, ()> {
        self.applying.read().unwrap_or_else(|p| p.into_inner())
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A closure that panicked (a bug) wrote nothing: the state the
        // mutex guards is still sound.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` over views of `tables` (sled trees) and, if it succeeds,
    /// commits its writes atomically. `f` runs once: with one writer at a
    /// time there is no conflict to retry.
    pub(super) fn transaction<const N: usize, A, E>(
        &self,
        tables: [&Table; N],
        f: impl Fn(&[TxTree<'_>; N]) -> Result<A, TxError<E>>,
    ) -> Result<A, TxError<E>> {
        let mut writer = self.writer();
        if let Some(e) = &writer.failed {
            return Err(TxError::Storage(disk::sled_error(e.clone())));
        }
        let views = tables.map(TxTree::new);
        let a = f(&views)?;
        let mut sets = Vec::with_capacity(N);
        for view in &views {
            let (tree, writes) = disk::staged(view)?;
            if !writes.is_empty() {
                sets.push((tree, writes));
            }
        }
        self.commit(&mut writer, sets)
            .map_err(|e| TxError::Storage(disk::sled_error(e)))?;
        Ok(a)
    }

    fn commit(
        &self,
        writer: &mut Writer,
        sets: Vec<(&Tree, BTreeMap<IVec, Option<IVec>>)>,
    ) -> sled::Result<()> {
        let count: usize = sets.iter().map(|(_, w)| w.len()).sum();
        if count == 0 {
            return Ok(());
        }
        let entry = writer.next;
        writer.next += 1;
        // One write is atomic by itself.
        let chunks = if count > 1 {
            let chunks = encode_entry(&sets);
            let n = chunks.len();
            for (i, chunk) in chunks.into_iter().enumerate() {
                self.tree.insert(chunk_key(entry, i as u32), chunk)?;
            }
            n
        } else {
            0
        };
        let applied = {
            let _applying = self.applying.write().unwrap_or_else(|p| p.into_inner());
            apply(&sets)
        };
        if let Err(e) = applied {
            writer.failed = Some(e.clone());
            return Err(e);
        }
        for i in 0..chunks {
            self.tree.remove(chunk_key(entry, i as u32))?;
        }
        Ok(())
    }
}

fn apply(sets: &[(&Tree, BTreeMap<IVec, Option<IVec>>)]) -> sled::Result<()> {
    for (tree, writes) in sets {
        for (key, value) in writes {
            match value {
                Some(v) => drop(tree.insert(key, v.clone())?),
                None => drop(tree.remove(key)?),
            }
        }
    }
    Ok(())
}

fn chunk_key(entry: u64, chunk: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&entry.to_be_bytes());
    k[8..].copy_from_slice(&chunk.to_be_bytes());
    k
}

fn corrupt(source: CodecError) -> StoreError {
    StoreError::Corrupt {
        what: "journal",
        run: None,
        source,
    }
}

fn corrupt_because(reason: String) -> StoreError {
    corrupt(CodecError::Decode(reason))
}

/// The entry and chunk numbers of a journal key.
fn parse_key(key: &[u8]) -> Result<(u64, u32), StoreError> {
    let k = <[u8; 12]>::try_from(key)
        .map_err(|_| corrupt_because(format!("journal key of {} bytes", key.len())))?;
    let entry = u64::from_be_bytes([k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]]);
    let chunk = u32::from_be_bytes([k[8], k[9], k[10], k[11]]);
    Ok((entry, chunk))
}

/// Applies a decoded entry to the trees of `db`.
fn apply_entry(db: &Db, trees: &[TreeWrites<'_>]) -> Result<(), StoreError> {
    for t in trees {
        let tree = db.open_tree(t.name)?;
        for (key, value) in &t.writes {
            match value {
                Some(v) => drop(tree.insert(key, *v)?),
                None => drop(tree.remove(key)?),
            }
        }
    }
    Ok(())
}

/// What [`replay`] found.
struct Replayed {
    /// Number for the next entry.
    next: u64,
    /// Entries applied again.
    applied: usize,
}

/// An entry being read back, chunk by chunk.
struct Pending {
    entry: u64,
    /// Number of the chunk due next.
    next_chunk: u32,
    bytes: Vec<u8>,
}

/// Completes the entries a crash left, oldest first, and empties the
/// journal.
///
/// An entry's chunks are inserted in order and removed in order, and sled
/// recovers a prefix of its log, so the chunks of an entry found at open
/// are consecutive: from the first without the last, an entry never
/// applied (dropped); from the first to the last, an entry to apply
/// again; or from some later chunk on, an entry whose removal (step 3)
/// was interrupted, whose writes are therefore all in place (dropped).
/// Anything else is corrupt.
fn replay(db: &Db, journal: &Tree) -> Result<Replayed, StoreError> {
    let mut next = 0;
    let mut applied = 0;
    let mut pending: Option<Pending> = None;
    // The entry last applied or found half removed: none of its chunks may
    // follow.
    let mut settled: Option<(u64, bool)> = None;
    // Whether the journal's chunks predate the envelope: one build wrote
    // them all, since open empties the journal before anything is written.
    let mut legacy: Option<bool> = None;
    let mut keys = Vec::new();
    for item in journal.iter() {
        let (key, value) = item?;
        let (entry, chunk) = parse_key(&key)?;
        keys.push(key);
        next = entry + 1;
        match settled {
            Some((e, true)) if e == entry => continue,
            Some((e, false)) if e == entry => {
                return Err(corrupt_because(format!(
                    "journal entry {entry} has chunk {chunk} after its last"
                )))
            }
            _ => {}
        }
        let due = match &pending {
            Some(p) if p.entry == entry => p.next_chunk,
            // A new entry. One before it without its last chunk was never
            // applied.
            _ => 0,
        };
        if chunk != due {
            if due == 0 {
                settled = Some((entry, true));
                pending = None;
                continue;
            }
            return Err(corrupt_because(format!(
                "journal entry {entry} has chunk {chunk} where chunk {due} was due"
            )));
        }
        let c = decode_chunk(&value).map_err(corrupt)?;
        if *legacy.get_or_insert(c.legacy) != c.legacy {
            return Err(corrupt_because(format!(
                "journal entry {entry} chunk {chunk} is in another format than the chunks before it"
            )));
        }
        if due == 0 {
            pending = None;
        }
        let p = pending.get_or_insert_with(|| Pending {
            entry,
            next_chunk: 0,
            bytes: Vec::new(),
        });
        p.bytes.extend_from_slice(&c.bytes);
        p.next_chunk += 1;
        if c.last {
            let bytes = pending.take().map(|p| p.bytes).unwrap_or_default();
            apply_entry(db, &decode_entry(&bytes).map_err(corrupt)?)?;
            applied += 1;
            settled = Some((entry, false));
        }
    }
    if !keys.is_empty() {
        for key in keys {
            journal.remove(key)?;
        }
        db.flush()?;
    }
    Ok(Replayed { next, applied })
}

#[cfg(test)]
mod open_tests;

#[cfg(test)]
mod tests {
    use super::entry::CHUNK_BYTES;
    use super::*;

    fn open(dir: &std::path::Path) -> (Db, Journal, Tree, Tree) {
        let db = super::super::open_db(dir, &Default::default()).unwrap();
        let journal = Journal::open(&db).unwrap();
        let (a, b) = (db.open_tree("a").unwrap(), db.open_tree("b").unwrap());
        (db, journal, a, b)
    }

    type Tx<A> = Result<A, TxError<&'static str>>;

    #[test]
    fn reads_see_own_writes_and_an_abort_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, journal, a, b) = open(dir.path());
        a.insert("gone", "x").unwrap();
        let (ta, tb) = (Table::Disk(a.clone()), Table::Disk(b.clone()));
        let r: Tx<()> = journal.transaction([&ta, &tb], |[a, b]| {
            a.insert("k", "1")?;
            assert_eq!(a.get("k")?.as_deref(), Some(&b"1"[..]));
            assert_eq!(a.remove("gone")?.as_deref(), Some(&b"x"[..]));
            assert_eq!(a.get("gone")?, None);
            b.insert("k", "2")?;
            Err(TxError::Abort("no"))
        });
        assert!(matches!(r, Err(TxError::Abort("no"))));
        assert_eq!(a.get("k").unwrap(), None);
        assert!(a.get("gone").unwrap().is_some());
        assert_eq!(b.get("k").unwrap(), None);

        let r: Tx<()> = journal.transaction([&ta, &tb], |[a, b]| {
            a.insert("k", "1")?;
            a.remove("gone")?;
            b.insert("k", "2")?;
            Ok(())
        });
        r.unwrap();
        assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(a.get("gone").unwrap(), None);
        assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"2"[..]));
        assert!(journal.tree.is_empty(), "entry removed once applied");
    }

    #[test]
    fn an_entry_left_by_a_crash_is_applied_at_open_and_a_partial_one_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (db, journal, a, b) = open(dir.path());
            // A large entry (several chunks) whose writes never reached the
            // trees, as if the process died after step 1.
            let big = vec![7u8; CHUNK_BYTES * 2];
            let writes_a = BTreeMap::from([
                (IVec::from("big"), Some(IVec::from(big.clone()))),
                (IVec::from("old"), None),
            ]);
            let writes_b = BTreeMap::from([(IVec::from("k"), Some(IVec::from("v")))]);
            a.insert("old", "x").unwrap();
            let chunks = encode_entry(&[(&a, writes_a), (&b, writes_b.clone())]);
            assert!(chunks.len() > 2);
            for (i, chunk) in chunks.into_iter().enumerate() {
                journal.tree.insert(chunk_key(5, i as u32), chunk).unwrap();
            }
            // A later entry whose last chunk never made it.
            let writes_b = BTreeMap::from([(IVec::from("k"), Some(IVec::from(big)))]);
            let partial = encode_entry(&[(&b, writes_b)]);
            assert!(partial.len() > 1);
            journal.tree.insert(chunk_key(6, 0), &*partial[0]).unwrap();
            db.flush().unwrap();
        }
        let (_db, journal, a, b) = open(dir.path());
        assert_eq!(a.get("big").unwrap().unwrap().len(), CHUNK_BYTES * 2);
        assert_eq!(a.get("old").unwrap(), None);
        assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(journal.tree.is_empty());
        assert_eq!(journal.writer().next, 7, "numbers continue after the last");
    }

    #[test]
    fn a_damaged_entry_is_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = super::super::open_db(dir.path(), &Default::default()).unwrap();
            let tree = db.open_tree("journal").unwrap();
            // A last chunk in the format before the envelope: one tree,
            // whose name's length is cut short.
            tree.insert(chunk_key(0, 0), &[1, 0, 0, 0, 1, 0][..])
                .unwrap();
            db.flush().unwrap();
        }
        let db = super::super::open_db(dir.path(), &Default::default()).unwrap();
        assert!(matches!(
            Journal::open(&db),
            Err(StoreError::Corrupt {
                what: "journal",
                ..
            })
        ));
    }

    /// Environment variable that makes [`crash_child`] run: the directory
    /// of the store it writes to.
    const CHILD_DIR: &str = "REFRAIN_JOURNAL_CRASH_CHILD";

    /// Keys per transaction in tree `a`, each `VALUE_BYTES` long: enough
    /// that one transaction spans several of sled's log buffers, so a kill
    /// usually finds one half on disk.
    const KEYS: u64 = 24;
    const VALUE_BYTES: usize = 8 * 1024;

    /// The child of the SIGKILL test: commits transactions forever, each
    /// writing generation `g` to every key of tree `a` and to `b["g"]`.
    #[test]
    #[ignore = "run by the SIGKILL test as its child process"]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CHILD_DIR) else {
            return;
        };
        let db = super::super::open_db(std::path::Path::new(&dir), &Default::default()).unwrap();
        let journal = Journal::open(&db).unwrap();
        let (a, b) = (db.open_tree("a").unwrap(), db.open_tree("b").unwrap());
        let start = generation(&b).map_or(1, |g| g + 1);
        let (a, b) = (Table::Disk(a), Table::Disk(b));
        println!("RUNNING");
        for g in start.. {
            let r: Tx<()> = journal.transaction([&a, &b], |[a, b]| {
                for k in 0..KEYS {
                    let mut v = vec![0u8; VALUE_BYTES];
                    v[..8].copy_from_slice(&g.to_be_bytes());
                    a.insert(&k.to_be_bytes()[..], v)?;
                }
                b.insert("g", &g.to_be_bytes()[..])?;
                Ok(())
            });
            r.unwrap();
        }
    }

    fn generation(b: &Tree) -> Option<u64> {
        let v = b.get("g").unwrap()?;
        Some(u64::from_be_bytes(v[..8].try_into().unwrap()))
    }

    #[test]
    fn killed_mid_transaction_the_store_reopens_with_whole_transactions_only() {
        use rand::Rng;
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        let dir = tempfile::tempdir().unwrap();
        let mut completed = 0;
        let mut kills = 0;
        // Until a kill has been seen to need the journal (most do), and at
        // least a few kills in all.
        while kills < 4 || (completed == 0 && kills < 40) {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "store::journal::tests::crash_child",
                    "--ignored",
                    "--nocapture",
                ])
                .env(CHILD_DIR, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            while !line.contains("RUNNING") {
                line.clear();
                assert_ne!(out.read_line(&mut line).unwrap(), 0, "child exited");
            }
            let pause = rand::rng().random_range(20..120);
            std::thread::sleep(std::time::Duration::from_millis(pause));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;

            let db = super::super::open_db(dir.path(), &Default::default()).unwrap();
            let tree = db.open_tree("journal").unwrap();
            completed += replay(&db, &tree).unwrap().applied;
            let (a, b) = (db.open_tree("a").unwrap(), db.open_tree("b").unwrap());
            let g = generation(&b);
            for k in 0..KEYS {
                let v = a.get(k.to_be_bytes()).unwrap();
                let found = v.map(|v| u64::from_be_bytes(v[..8].try_into().unwrap()));
                assert_eq!(found, g, "key {k} after kill {kills}: torn transaction");
            }
        }
        assert!(
            completed > 0,
            "no kill in {kills} needed the journal; the test did not exercise it"
        );
    }
}
