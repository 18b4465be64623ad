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
//! applied and is dropped.
//!
//! One writer at a time (a mutex around closure and apply), so a closure's
//! reads of the trees are never interleaved with another transaction's
//! writes. Readers outside transactions that read several keys and need
//! them from one transaction take [`Journal::consistent`], which excludes
//! step 2.

use crate::codec::CodecError;
use crate::error::StoreError;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    UnabortableTransactionError,
};
use sled::{Db, IVec, Tree};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

/// Largest journal value: a write set above it is split into chunks, so
/// no entry reaches sled's blob threshold (a file per value).
const CHUNK_BYTES: usize = 32 * 1024;

/// First byte of a chunk: whether it is the entry's last.
const MORE: u8 = 0;
const LAST: u8 = 1;

/// Tags of a write in an entry.
const REMOVE: u8 = 0;
const INSERT: u8 = 1;

/// A tree as a transaction sees it: the tree's contents with the
/// transaction's own writes over them. Nothing reaches the tree until the
/// transaction commits.
pub(super) struct TxTree<'a> {
    tree: &'a Tree,
    writes: RefCell<BTreeMap<IVec, Option<IVec>>>,
}

impl<'a> TxTree<'a> {
    fn new(tree: &'a Tree) -> Self {
        TxTree {
            tree,
            writes: RefCell::new(BTreeMap::new()),
        }
    }

    /// The value of `key`, as of this transaction's writes.
    pub(super) fn get<K: AsRef<[u8]>>(
        &self,
        key: K,
    ) -> Result<Option<IVec>, UnabortableTransactionError> {
        if let Some(written) = self.writes.borrow().get(key.as_ref()) {
            return Ok(written.clone());
        }
        Ok(self.tree.get(key)?)
    }

    /// Sets `key` to `value` when the transaction commits.
    pub(super) fn insert<K, V>(&self, key: K, value: V) -> Result<(), UnabortableTransactionError>
    where
        K: AsRef<[u8]> + Into<IVec>,
        V: Into<IVec>,
    {
        self.writes
            .borrow_mut()
            .insert(key.into(), Some(value.into()));
        Ok(())
    }

    /// Removes `key` when the transaction commits; returns its value as of
    /// this transaction's writes.
    pub(super) fn remove<K>(&self, key: K) -> Result<Option<IVec>, UnabortableTransactionError>
    where
        K: AsRef<[u8]> + Into<IVec>,
    {
        let old = self.get(key.as_ref())?;
        self.writes.borrow_mut().insert(key.into(), None);
        Ok(old)
    }

    /// Removes `key` when the transaction commits, without reading its
    /// value: a remove whose old value nobody needs costs no lookup here
    /// (the commit's own remove skips a key that is already absent).
    pub(super) fn delete<K>(&self, key: K) -> Result<(), UnabortableTransactionError>
    where
        K: AsRef<[u8]> + Into<IVec>,
    {
        self.writes.borrow_mut().insert(key.into(), None);
        Ok(())
    }
}

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

    /// Runs `f` over views of `trees` and, if it succeeds, commits its
    /// writes atomically. `f` runs once: with one writer at a time there
    /// is no conflict to retry.
    pub(super) fn transaction<const N: usize, A, E>(
        &self,
        trees: [&Tree; N],
        f: impl Fn(&[TxTree<'_>; N]) -> ConflictableTransactionResult<A, E>,
    ) -> Result<A, TransactionError<E>> {
        let mut writer = self.writer();
        if let Some(e) = &writer.failed {
            return Err(TransactionError::Storage(e.clone()));
        }
        let views = trees.map(TxTree::new);
        match f(&views) {
            Ok(a) => {
                self.commit(&mut writer, &views)
                    .map_err(TransactionError::Storage)?;
                Ok(a)
            }
            Err(ConflictableTransactionError::Abort(e)) => Err(TransactionError::Abort(e)),
            Err(ConflictableTransactionError::Storage(e)) => Err(TransactionError::Storage(e)),
            // Views never report a conflict, so only a bug gets here.
            Err(_) => Err(TransactionError::Storage(sled::Error::ReportableBug(
                "a store transaction reported a conflict".into(),
            ))),
        }
    }

    fn commit(&self, writer: &mut Writer, views: &[TxTree<'_>]) -> sled::Result<()> {
        let sets: Vec<(&Tree, BTreeMap<IVec, Option<IVec>>)> = views
            .iter()
            .map(|v| (v.tree, v.writes.take()))
            .filter(|(_, w)| !w.is_empty())
            .collect();
        let count: usize = sets.iter().map(|(_, w)| w.len()).sum();
        if count == 0 {
            return Ok(());
        }
        let entry = writer.next;
        writer.next += 1;
        // One write is atomic by itself.
        let chunks = if count > 1 {
            let bytes = encode(&sets);
            let chunks = bytes.chunks(CHUNK_BYTES);
            let (n, last) = (chunks.len(), chunks.len() - 1);
            for (i, chunk) in chunks.enumerate() {
                let mut value = Vec::with_capacity(1 + chunk.len());
                value.push(if i == last { LAST } else { MORE });
                value.extend_from_slice(chunk);
                self.tree.insert(chunk_key(entry, i as u32), value)?;
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

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys and values are far below 4 GiB (the codec's limit is lower).
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// An entry: for each tree, its name and its writes.
fn encode(sets: &[(&Tree, BTreeMap<IVec, Option<IVec>>)]) -> Vec<u8> {
    let size: usize = sets
        .iter()
        .flat_map(|(_, w)| w.iter())
        .map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, |v| v.len()))
        .sum();
    let mut out = Vec::with_capacity(4 + size + sets.len() * 32);
    out.extend_from_slice(&(sets.len() as u32).to_be_bytes());
    for (tree, writes) in sets {
        put_bytes(&mut out, &tree.name());
        out.extend_from_slice(&(writes.len() as u32).to_be_bytes());
        for (key, value) in writes {
            put_bytes(&mut out, key);
            match value {
                None => out.push(REMOVE),
                Some(v) => {
                    out.push(INSERT);
                    put_bytes(&mut out, v);
                }
            }
        }
    }
    out
}

/// Reads an entry back.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < n {
            return Err(corrupt(CodecError::Truncated {
                needed: n,
                got: self.bytes.len(),
            }));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<usize, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.u32()?;
        self.take(n)
    }
}

fn corrupt(source: CodecError) -> StoreError {
    StoreError::Corrupt {
        what: "journal",
        run: None,
        source,
    }
}

/// Applies a whole entry to the trees of `db`.
fn apply_entry(db: &Db, bytes: &[u8]) -> Result<(), StoreError> {
    let mut r = Reader { bytes };
    for _ in 0..r.u32()? {
        let tree = db.open_tree(r.bytes()?)?;
        for _ in 0..r.u32()? {
            let key = r.bytes()?;
            match r.take(1)?[0] {
                REMOVE => drop(tree.remove(key)?),
                INSERT => drop(tree.insert(key, r.bytes()?)?),
                tag => {
                    return Err(corrupt(CodecError::Decode(format!(
                        "unknown write tag {tag}"
                    ))))
                }
            }
        }
    }
    if !r.bytes.is_empty() {
        return Err(corrupt(CodecError::TrailingBytes {
            count: r.bytes.len(),
        }));
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

/// Completes the entries a crash left, oldest first, and empties the
/// journal.
fn replay(db: &Db, journal: &Tree) -> Result<Replayed, StoreError> {
    let mut next = 0;
    let mut applied = 0;
    let mut pending: Option<(u64, Vec<u8>)> = None;
    let mut keys = Vec::new();
    for item in journal.iter() {
        let (key, value) = item?;
        let entry = match <[u8; 12]>::try_from(&key[..]) {
            Ok(k) => u64::from_be_bytes([k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]]),
            Err(_) => {
                return Err(corrupt(CodecError::Decode(format!(
                    "journal key of {} bytes",
                    key.len()
                ))))
            }
        };
        keys.push(key);
        next = entry + 1;
        let (flag, chunk) = value
            .split_first()
            .ok_or_else(|| corrupt(CodecError::Truncated { needed: 1, got: 0 }))?;
        let bytes = match pending.take() {
            Some((e, mut bytes)) if e == entry => {
                bytes.extend_from_slice(chunk);
                bytes
            }
            // An earlier entry without its last chunk: never applied.
            _ => chunk.to_vec(),
        };
        if *flag == LAST {
            apply_entry(db, &bytes)?;
            applied += 1;
        } else {
            pending = Some((entry, bytes));
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
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> (Db, Journal, Tree, Tree) {
        let db = super::super::open_db(dir, &Default::default()).unwrap();
        let journal = Journal::open(&db).unwrap();
        let (a, b) = (db.open_tree("a").unwrap(), db.open_tree("b").unwrap());
        (db, journal, a, b)
    }

    type Tx<A> = Result<A, TransactionError<&'static str>>;

    #[test]
    fn reads_see_own_writes_and_an_abort_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, journal, a, b) = open(dir.path());
        a.insert("gone", "x").unwrap();
        let r: Tx<()> = journal.transaction([&a, &b], |[a, b]| {
            a.insert("k", "1")?;
            assert_eq!(a.get("k")?.as_deref(), Some(&b"1"[..]));
            assert_eq!(a.remove("gone")?.as_deref(), Some(&b"x"[..]));
            assert_eq!(a.get("gone")?, None);
            b.insert("k", "2")?;
            Err(ConflictableTransactionError::Abort("no"))
        });
        assert!(matches!(r, Err(TransactionError::Abort("no"))));
        assert_eq!(a.get("k").unwrap(), None);
        assert!(a.get("gone").unwrap().is_some());
        assert_eq!(b.get("k").unwrap(), None);

        let r: Tx<()> = journal.transaction([&a, &b], |[a, b]| {
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
            let bytes = encode(&[(&a, writes_a), (&b, writes_b)]);
            let chunks: Vec<_> = bytes.chunks(CHUNK_BYTES).collect();
            assert!(chunks.len() > 2);
            for (i, chunk) in chunks.iter().enumerate() {
                let flag = if i == chunks.len() - 1 { LAST } else { MORE };
                let mut v = vec![flag];
                v.extend_from_slice(chunk);
                journal.tree.insert(chunk_key(5, i as u32), v).unwrap();
            }
            // A later entry whose last chunk never made it.
            journal
                .tree
                .insert(chunk_key(6, 0), [&[MORE][..], b"partial"].concat())
                .unwrap();
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
            tree.insert(chunk_key(0, 0), &[LAST, 0, 0, 0, 1, 0][..])
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
