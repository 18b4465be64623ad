//! The in-memory engine: one ordered map per table, each behind its own
//! lock, with the journal's transaction semantics (one writer at a time;
//! reads see the transaction's own writes; an abort writes nothing; a
//! commit's writes become visible together to readers that take
//! [`MemoryEngine::consistent`]). Nothing is ever flushed, and nothing
//! fails.
//!
//! The maps live in a [`MemoryStorage`], which outlives the stores opened
//! over it: dropping a store and opening the storage again is a restart
//! (every in-process piece of state gone, the open-time recovery run
//! again), as reopening a directory is for sled.
//!
//! A storage made with [`MemoryStorage::shared`] admits several stores at
//! once, as a database server admits several processes: the model of a
//! shared database for the store's multi-owner rules (leases that expire,
//! run numbers reserved in blocks, work found by polling). Its writer lock
//! and apply lock belong to the storage, not to one store, so the
//! transactions of every store over it are serialised as one database
//! would serialise them.
//!
//! A storage can also be told to die after a number of commits
//! (`MemoryStorage::crash_after_commits`, behind `test-support`): every
//! later transaction that would write is refused and writes nothing, as
//! if the process had been killed right after that commit. Crash-point
//! exploration (`refrain-testkit`) counts a run's commits once and then
//! crashes it at each of them in turn.

use super::{Bytes, Table, TxError, TxTree};
use crate::error::StoreError;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

/// The tables of an in-memory store, kept across restarts: open a store
/// over it with [`Store::open_in_memory`](crate::Store::open_in_memory),
/// drop the store, and open it again to see what a restarted process
/// would (runs, histories, tasks, schedules; the epoch bumped and running
/// attempts failed as after a crash). Cheap to clone; clones share the
/// tables. One store at a time may be open over it, as one process at a
/// time may open a sled directory; one made with [`MemoryStorage::shared`]
/// admits several at once.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    shared: Arc<Shared>,
}

struct Shared {
    tables: Mutex<HashMap<String, Arc<MemTable>>>,
    /// Source of [`MemoryEngine::generate_id`]; survives restarts like
    /// sled's id generator.
    next_id: AtomicU64,
    /// Whether a store is open over the tables, and its release.
    open: Mutex<bool>,
    released: Condvar,
    /// Several stores may be open at once (see [`MemoryStorage::shared`]).
    shared: bool,
    /// One transaction at a time, whichever store runs it.
    writer: Mutex<()>,
    /// Held for writing while a transaction's writes are applied.
    applying: RwLock<()>,
    /// Serialises [`MemoryEngine::update_key`].
    counters: Mutex<()>,
    /// Transactions that wrote something, over every store opened here.
    commits: AtomicU64,
    /// Commits after which writes are refused (`u64::MAX`: never). Read
    /// and counted under the engine's writer lock, so the two agree.
    crash_after: AtomicU64,
    /// Whether a write was refused since the switch was armed.
    crashed: AtomicBool,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            tables: Mutex::default(),
            next_id: AtomicU64::default(),
            open: Mutex::default(),
            released: Condvar::default(),
            shared: false,
            writer: Mutex::default(),
            applying: RwLock::default(),
            counters: Mutex::default(),
            commits: AtomicU64::default(),
            crash_after: AtomicU64::new(u64::MAX),
            crashed: AtomicBool::default(),
        }
    }
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStorage").finish_non_exhaustive()
    }
}

impl MemoryStorage {
    /// Empty storage for one store at a time.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// Empty storage that several stores may have open at the same time,
    /// as several processes share one database: each store is then one
    /// owner among others (its leases expire rather than void the others';
    /// see `Store::open_in_memory`).
    pub fn shared() -> MemoryStorage {
        MemoryStorage {
            shared: Arc::new(Shared {
                shared: true,
                ..Shared::default()
            }),
        }
    }

    /// Whether several stores may be open over it at once.
    pub fn is_shared(&self) -> bool {
        self.shared.shared
    }

    /// How many transactions that wrote something have been applied over
    /// these tables, by every store opened over them.
    #[cfg(feature = "test-support")]
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::SeqCst)
    }

    /// Lets `n` more transactions write and refuses every later one
    /// (with `StoreError::Storage`, writing nothing), as if the process
    /// had died right after the `n`th: a test drops every handle, calls
    /// [`MemoryStorage::disarm`], and opens the storage again to see what
    /// the restarted process would. Reads still work.
    #[cfg(feature = "test-support")]
    pub fn crash_after_commits(&self, n: u64) {
        let shared = &self.shared;
        shared.crashed.store(false, Ordering::SeqCst);
        let limit = shared.commits.load(Ordering::SeqCst).saturating_add(n);
        shared.crash_after.store(limit, Ordering::SeqCst);
    }

    /// Whether a write has been refused since
    /// [`MemoryStorage::crash_after_commits`] armed the switch.
    #[cfg(feature = "test-support")]
    pub fn crashed(&self) -> bool {
        self.shared.crashed.load(Ordering::SeqCst)
    }

    /// Lets every write through again (after the crashed store's handles
    /// are gone, before the storage is opened again).
    #[cfg(feature = "test-support")]
    pub fn disarm(&self) {
        self.shared.crash_after.store(u64::MAX, Ordering::SeqCst);
        self.shared.crashed.store(false, Ordering::SeqCst);
    }

    /// Whether a store is open over the tables.
    #[cfg(feature = "test-support")]
    pub fn is_open(&self) -> bool {
        *self.shared.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one writing transaction, or refuses it when the crash
    /// switch says the process is dead. Called under the writer lock.
    fn admit_commit(&self) -> bool {
        let shared = &self.shared;
        let done = shared.commits.load(Ordering::SeqCst);
        if done >= shared.crash_after.load(Ordering::SeqCst) {
            shared.crashed.store(true, Ordering::SeqCst);
            return false;
        }
        shared.commits.store(done + 1, Ordering::SeqCst);
        true
    }

    /// The engine of a store opening over the tables, once no other store
    /// is open over them (waiting up to `lock_timeout` for one that is
    /// closing, as sled waits for its file lock).
    pub(in crate::store) fn engine(
        &self,
        lock_timeout: Duration,
    ) -> Result<MemoryEngine, StoreError> {
        if self.shared.shared {
            return Ok(MemoryEngine {
                storage: self.clone(),
            });
        }
        let give_up = Instant::now() + lock_timeout;
        let mut open = self.shared.open.lock().unwrap_or_else(|p| p.into_inner());
        while *open {
            let now = Instant::now();
            if now >= give_up {
                return Err(StoreError::StorageLocked {
                    path: PathBuf::new(),
                });
            }
            open = self
                .shared
                .released
                .wait_timeout(open, give_up - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *open = true;
        Ok(MemoryEngine {
            storage: self.clone(),
        })
    }
}

/// One table: its entries in key order.
#[derive(Default)]
pub(in crate::store) struct MemTable {
    map: RwLock<BTreeMap<Vec<u8>, Bytes>>,
}

impl MemTable {
    pub(super) fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    pub(super) fn insert(&self, key: &[u8], value: Bytes) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_vec(), value);
    }
}

/// A lazy scan: each step finds the first entry past the last one
/// returned, under the table's lock for that step only, so a scan never
/// holds a lock between steps (like sled's, it may see later writes).
pub(in crate::store) struct Iter {
    table: Arc<MemTable>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    prefix: Option<Vec<u8>>,
}

impl Iter {
    pub(super) fn new(
        table: &Arc<MemTable>,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        prefix: Option<Vec<u8>>,
    ) -> Iter {
        Iter {
            table: Arc::clone(table),
            lower,
            upper,
            prefix,
        }
    }

    /// Whether no key lies between the bounds (`BTreeMap::range` panics
    /// on some such ranges; a scan just ends).
    fn exhausted(&self) -> bool {
        match (&self.lower, &self.upper) {
            (Bound::Included(l), Bound::Included(u)) => l > u,
            (Bound::Included(l), Bound::Excluded(u))
            | (Bound::Excluded(l), Bound::Included(u))
            | (Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
            _ => false,
        }
    }
}

impl Iterator for Iter {
    type Item = (Bytes, Bytes);

    fn next(&mut self) -> Option<(Bytes, Bytes)> {
        if self.exhausted() {
            return None;
        }
        let (key, value) = {
            let map = self.table.map.read().unwrap_or_else(|p| p.into_inner());
            let bounds = (
                self.lower.as_ref().map(Vec::as_slice),
                self.upper.as_ref().map(Vec::as_slice),
            );
            let (k, v) = map.range::<[u8], _>(bounds).next()?;
            (k.clone(), v.clone())
        };
        if let Some(prefix) = &self.prefix {
            if !key.starts_with(prefix) {
                // Keys are ordered: none later has the prefix either.
                self.upper = Bound::Excluded(key);
                self.lower = self.upper.clone();
                return None;
            }
        }
        let found = Bytes::copy_of(&key);
        self.lower = Bound::Excluded(key);
        Some((found, value))
    }
}

impl DoubleEndedIterator for Iter {
    /// The last entry before the last one returned from this end. Both
    /// ends share the bounds, so a scan driven from both ends never
    /// returns an entry twice.
    fn next_back(&mut self) -> Option<(Bytes, Bytes)> {
        loop {
            if self.exhausted() {
                return None;
            }
            let (key, value) = {
                let map = self.table.map.read().unwrap_or_else(|p| p.into_inner());
                let bounds = (
                    self.lower.as_ref().map(Vec::as_slice),
                    self.upper.as_ref().map(Vec::as_slice),
                );
                let (k, v) = map.range::<[u8], _>(bounds).next_back()?;
                (k.clone(), v.clone())
            };
            self.upper = Bound::Excluded(key.clone());
            if let Some(prefix) = &self.prefix {
                if !key.starts_with(prefix) {
                    if key.as_slice() < prefix.as_slice() {
                        // Keys are ordered: none earlier has the prefix.
                        self.lower = self.upper.clone();
                        return None;
                    }
                    // Past the prefix's keys (a prefix scan has no upper
                    // bound): step back towards them.
                    continue;
                }
            }
            return Some((Bytes::copy_of(&key), value));
        }
    }
}

/// A store's hold on a [`MemoryStorage`]: released when the store's last
/// piece (its committer, its flusher, every clone of its tables' engine)
/// is dropped.
pub(in crate::store) struct MemoryEngine {
    storage: MemoryStorage,
}

impl Drop for MemoryEngine {
    fn drop(&mut self) {
        let shared = &self.storage.shared;
        if shared.shared {
            return;
        }
        *shared.open.lock().unwrap_or_else(|p| p.into_inner()) = false;
        shared.released.notify_all();
    }
}

impl MemoryEngine {
    /// The storage this engine holds.
    pub(in crate::store) fn storage(&self) -> &MemoryStorage {
        &self.storage
    }

    pub(super) fn open_table(&self, name: &str) -> Arc<MemTable> {
        let mut tables = self
            .storage
            .shared
            .tables
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Arc::clone(tables.entry(name.to_owned()).or_default())
    }

    pub(super) fn generate_id(&self) -> u64 {
        self.storage.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn consistent(&self) -> RwLockReadGuard<'_, ()> {
        let shared = &self.storage.shared;
        shared.applying.read().unwrap_or_else(|p| p.into_inner())
    }

    /// See [`super::Engine::update_key`]: under the storage's counter
    /// lock, so stores over a shared storage update the key one at a time.
    pub(super) fn update_key<A>(
        &self,
        table: &Table,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> Result<(Vec<u8>, A), StoreError>,
    ) -> Result<A, StoreError> {
        let Table::Memory(table) = table else {
            return Err(super::disk::foreign_table().into());
        };
        let _one = self
            .storage
            .shared
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let old = table.get(key);
        let (new, a) = f(old.as_deref())?;
        table.insert(key, Bytes::copy_of(&new));
        Ok(a)
    }

    pub(super) fn transaction<const N: usize, A, E>(
        &self,
        tables: [&Table; N],
        f: impl Fn(&[TxTree<'_>; N]) -> Result<A, TxError<E>>,
    ) -> Result<A, TxError<E>> {
        // A closure that panicked (a bug) wrote nothing: the state the
        // mutex guards is still sound.
        let shared = &self.storage.shared;
        let _writer = shared.writer.lock().unwrap_or_else(|p| p.into_inner());
        let views = tables.map(TxTree::new);
        let a = f(&views)?;
        let mut sets = Vec::with_capacity(N);
        for view in &views {
            let Table::Memory(table) = view.table() else {
                return Err(TxError::Storage(super::disk::foreign_table()));
            };
            let writes = view.take_writes();
            if !writes.is_empty() {
                sets.push((table, writes));
            }
        }
        if !sets.is_empty() && !self.storage.admit_commit() {
            return Err(TxError::Storage(super::EngineError::Sled(
                ::sled::Error::Io(std::io::Error::other(
                    "the store's process is dead (a test's crash point)",
                )),
            )));
        }
        let _applying = shared.applying.write().unwrap_or_else(|p| p.into_inner());
        for (table, writes) in sets {
            let mut map = table.map.write().unwrap_or_else(|p| p.into_inner());
            for (key, value) in writes {
                match value {
                    Some(v) => drop(map.insert(key, v)),
                    None => drop(map.remove(&key)),
                }
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(keys: &[&[u8]]) -> Arc<MemTable> {
        let t = Arc::new(MemTable::default());
        for k in keys {
            t.insert(k, Bytes::copy_of(k));
        }
        t
    }

    fn keys(items: impl Iterator<Item = (Bytes, Bytes)>) -> Vec<Vec<u8>> {
        items.map(|(k, _)| k.to_vec()).collect()
    }

    #[test]
    fn a_scan_walks_back_within_its_bounds_and_prefix() {
        let t = table(&[b"a1", b"b1", b"b2", b"b3", b"c1"]);
        let range = Iter::new(
            &t,
            Bound::Excluded(b"a1".to_vec()),
            Bound::Excluded(b"c1".to_vec()),
            None,
        );
        assert_eq!(keys(range.rev()), [b"b3", b"b2", b"b1"]);
        let prefix = Iter::new(
            &t,
            Bound::Included(b"b".to_vec()),
            Bound::Unbounded,
            Some(b"b".to_vec()),
        );
        assert_eq!(keys(prefix.rev()), [b"b3", b"b2", b"b1"]);
        let none = Iter::new(
            &t,
            Bound::Included(b"d".to_vec()),
            Bound::Unbounded,
            Some(b"d".to_vec()),
        );
        assert!(keys(none.rev()).is_empty());
    }

    #[test]
    fn a_scan_driven_from_both_ends_returns_each_entry_once() {
        let t = table(&[b"1", b"2", b"3", b"4"]);
        let mut both = Iter::new(&t, Bound::Unbounded, Bound::Unbounded, None);
        let (front, back) = (both.next(), both.next_back());
        assert_eq!(keys(front.into_iter().chain(back)), [b"1", b"4"]);
        assert_eq!(keys(both.by_ref()), [b"2", b"3"]);
        assert!(both.next_back().is_none());
    }
}
