//! What the store's transitions need from storage, and the two engines
//! that provide it.
//!
//! Every transition is written against this module only: named tables of
//! byte keys to byte values, ordered by key ([`Table`]: get, plain insert,
//! ordered and prefix scans); one atomic transaction over several tables
//! at a time ([`Engine::transaction`]: reads see the transaction's own
//! writes, an abort writes nothing, one writer at a time; its views are
//! [`TxTree`]s); a flush that makes everything written so far durable; and
//! a generator of ids unique for the life of the storage (lease tokens).
//!
//! - [`Engine::Disk`]: sled, through the store's `journal` (atomic writes
//!   over several trees without sled transactions). Its tables are sled
//!   trees of the same names and its bytes are what they always were; the
//!   flush marks, watermark and verification around it are sled's alone
//!   and stay outside this module.
//! - [`Engine::Memory`]: ordered maps behind locks ([`memory`]), for tests
//!   and for embedding without a directory. Its flush does nothing and its
//!   ids come from a counter; its maps outlive a store opened over them,
//!   so a test can drop the store and open it again.
//! - [`Engine::External`]: an engine kept outside this crate behind the
//!   object-safe [`external::ExternalEngine`] (PostgreSQL, in
//!   `refrain-postgres`). The transactions' views are still [`TxTree`]s
//!   here; the engine gets their writes as bytes.
//!
//! A small enum rather than a trait: a transaction is generic over its
//! closure, which a trait object could not take, and the two engines in
//! this crate stay free of dynamic calls. The match per call costs
//! nothing next to a sled lookup; only the external arm goes through a
//! trait object (and the network).

pub(super) mod disk;
pub(super) mod external;
pub(super) mod memory;

use crate::error::StoreError;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Bound, Deref, RangeBounds};
use std::sync::{Arc, RwLockReadGuard};

/// A value or key read from a table. Cheap to clone.
#[derive(Clone)]
pub(in crate::store) struct Bytes(Repr);

#[derive(Clone)]
enum Repr {
    /// Shared with sled's page cache.
    Disk(::sled::IVec),
    Shared(Arc<[u8]>),
}

impl Bytes {
    fn copy_of(bytes: &[u8]) -> Bytes {
        Bytes(Repr::Shared(Arc::from(bytes)))
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Bytes {
        Bytes::copy_of(bytes)
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Disk(v) => v,
            Repr::Shared(v) => v,
        }
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        **self == **other
    }
}

/// A storage failure: sled's (sticky, so the store treats one as fatal;
/// see [`StoreError::Storage`]) or an external engine's.
#[derive(Clone, Debug)]
pub(in crate::store) enum EngineError {
    Sled(::sled::Error),
    External(external::ExternalError),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Sled(e) => fmt::Display::fmt(e, f),
            EngineError::External(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl From<EngineError> for StoreError {
    fn from(e: EngineError) -> StoreError {
        match e {
            EngineError::Sled(e) => StoreError::Storage(e),
            EngineError::External(e) => StoreError::Backend(e),
        }
    }
}

impl From<external::ExternalError> for EngineError {
    fn from(e: external::ExternalError) -> EngineError {
        EngineError::External(e)
    }
}

/// Why a transaction wrote nothing: its closure aborted with its own
/// error, or storage failed.
#[derive(Debug)]
pub(in crate::store) enum TxError<E> {
    Abort(E),
    Storage(EngineError),
}

impl<E> From<EngineError> for TxError<E> {
    fn from(e: EngineError) -> TxError<E> {
        TxError::Storage(e)
    }
}

/// A named table of ordered byte keys. Cheap to clone.
#[derive(Clone)]
pub(in crate::store) enum Table {
    Disk(::sled::Tree),
    Memory(Arc<memory::MemTable>),
    External(Arc<dyn external::ExternalTable>),
}

impl Table {
    /// The value of `key`.
    pub(in crate::store) fn get<K: AsRef<[u8]>>(
        &self,
        key: K,
    ) -> Result<Option<Bytes>, EngineError> {
        match self {
            Table::Disk(t) => disk::get(t, key.as_ref()),
            Table::Memory(t) => Ok(t.get(key.as_ref())),
            Table::External(t) => Ok(t.get(key.as_ref())?.map(|v| Bytes::copy_of(&v))),
        }
    }

    /// Sets `key` to `value` at once, outside any transaction: only for
    /// single-key writes that need no atomicity with others.
    pub(in crate::store) fn insert<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        key: K,
        value: V,
    ) -> Result<(), EngineError> {
        match self {
            Table::Disk(t) => disk::insert(t, key.as_ref(), value.as_ref()),
            Table::Memory(t) => {
                t.insert(key.as_ref(), Bytes::copy_of(value.as_ref()));
                Ok(())
            }
            Table::External(t) => Ok(t.insert(key.as_ref(), value.as_ref())?),
        }
    }

    /// Every entry, in key order.
    pub(in crate::store) fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The entries with keys in `range`, in key order.
    pub(in crate::store) fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let owned = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let (lower, upper) = (owned(range.start_bound()), owned(range.end_bound()));
        match self {
            Table::Disk(t) => Iter(IterRepr::Disk(t.range((lower, upper)))),
            Table::Memory(t) => Iter(IterRepr::Memory(memory::Iter::new(t, lower, upper, None))),
            Table::External(t) => Iter(IterRepr::External(external::Iter::new(t, lower, upper))),
        }
    }

    /// The entries whose keys start with `prefix`, in key order.
    pub(in crate::store) fn scan_prefix<P: AsRef<[u8]>>(&self, prefix: P) -> Iter {
        let prefix = prefix.as_ref();
        match self {
            Table::Disk(t) => Iter(IterRepr::Disk(t.scan_prefix(prefix))),
            Table::Memory(t) => Iter(IterRepr::Memory(memory::Iter::new(
                t,
                Bound::Included(prefix.to_vec()),
                Bound::Unbounded,
                Some(prefix.to_vec()),
            ))),
            Table::External(t) => Iter(IterRepr::External(external::Iter::prefix(t, prefix))),
        }
    }
}

/// A scan of a table. Lazy on every engine: entries are read as the scan
/// advances (a page at a time on an external one), so a scan may see
/// writes made after it began.
pub(in crate::store) struct Iter(IterRepr);

enum IterRepr {
    Disk(::sled::Iter),
    Memory(memory::Iter),
    External(external::Iter),
}

impl Iterator for Iter {
    type Item = Result<(Bytes, Bytes), EngineError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Disk(i) => i.next().map(disk::entry),
            IterRepr::Memory(i) => i.next().map(Ok),
            IterRepr::External(i) => i.next_entry(),
        }
    }
}

/// From the last entry back: a newest-first list walks the `runs` table
/// from its end. As lazy as the forward walk.
impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Disk(i) => i.next_back().map(disk::entry),
            IterRepr::Memory(i) => i.next_back().map(Ok),
            IterRepr::External(i) => i.next_back_entry(),
        }
    }
}

impl Iter {
    /// The keys alone.
    pub(in crate::store) fn keys(self) -> impl Iterator<Item = Result<Bytes, EngineError>> {
        self.map(|r| r.map(|(k, _)| k))
    }

    /// The values alone.
    pub(in crate::store) fn values(self) -> impl Iterator<Item = Result<Bytes, EngineError>> {
        self.map(|r| r.map(|(_, v)| v))
    }
}

/// A table as a transaction sees it: the table's contents with the
/// transaction's own writes over them. Nothing reaches the table until the
/// transaction commits.
pub(in crate::store) struct TxTree<'a> {
    table: &'a Table,
    writes: RefCell<BTreeMap<Vec<u8>, Option<Bytes>>>,
}

impl<'a> TxTree<'a> {
    pub(in crate::store) fn new(table: &'a Table) -> Self {
        TxTree {
            table,
            writes: RefCell::new(BTreeMap::new()),
        }
    }

    /// The value of `key`, as of this transaction's writes.
    pub(in crate::store) fn get<K: AsRef<[u8]>>(
        &self,
        key: K,
    ) -> Result<Option<Bytes>, EngineError> {
        if let Some(written) = self.writes.borrow().get(key.as_ref()) {
            return Ok(written.clone());
        }
        self.table.get(key)
    }

    /// Sets `key` to `value` when the transaction commits.
    pub(in crate::store) fn insert<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        key: K,
        value: V,
    ) -> Result<(), EngineError> {
        self.writes
            .borrow_mut()
            .insert(key.as_ref().to_vec(), Some(Bytes::copy_of(value.as_ref())));
        Ok(())
    }

    /// Removes `key` when the transaction commits; returns its value as of
    /// this transaction's writes.
    pub(in crate::store) fn remove<K: AsRef<[u8]>>(
        &self,
        key: K,
    ) -> Result<Option<Bytes>, EngineError> {
        let old = self.get(key.as_ref())?;
        self.writes.borrow_mut().insert(key.as_ref().to_vec(), None);
        Ok(old)
    }

    /// Removes `key` when the transaction commits, without reading its
    /// value: a remove whose old value nobody needs costs no lookup here
    /// (the commit's own remove skips a key that is already absent).
    pub(in crate::store) fn delete<K: AsRef<[u8]>>(&self, key: K) -> Result<(), EngineError> {
        self.writes.borrow_mut().insert(key.as_ref().to_vec(), None);
        Ok(())
    }

    /// The table this view is of.
    pub(in crate::store) fn table(&self) -> &'a Table {
        self.table
    }

    /// Takes the writes staged so far (`None`: remove), in key order.
    pub(in crate::store) fn take_writes(&self) -> BTreeMap<Vec<u8>, Option<Bytes>> {
        self.writes.take()
    }
}

/// The storage under one open store. Cheap to clone; clones share it.
#[derive(Clone)]
pub(in crate::store) enum Engine {
    Disk(Arc<disk::DiskEngine>),
    Memory(Arc<memory::MemoryEngine>),
    External(Arc<external::ExternalHandle>),
}

impl Engine {
    /// The engine over the sled database `db`, first completing whatever
    /// transaction a crash interrupted (before anything is read).
    pub(in crate::store) fn disk(db: &::sled::Db) -> Result<Engine, StoreError> {
        Ok(Engine::Disk(Arc::new(disk::DiskEngine::open(db)?)))
    }

    /// The engine of a store opening over `storage` (see
    /// [`memory::MemoryStorage::engine`]).
    pub(in crate::store) fn memory(
        storage: &memory::MemoryStorage,
        lock_timeout: std::time::Duration,
    ) -> Result<Engine, StoreError> {
        Ok(Engine::Memory(Arc::new(storage.engine(lock_timeout)?)))
    }

    /// The engine of a store opening over `engine`, kept outside this
    /// crate.
    pub(in crate::store) fn external(engine: Arc<dyn external::ExternalEngine>) -> Engine {
        Engine::External(Arc::new(external::ExternalHandle::new(engine)))
    }

    /// The table `name`, created empty if it does not exist.
    pub(in crate::store) fn open_table(&self, name: &str) -> Result<Table, EngineError> {
        match self {
            Engine::Disk(e) => e.open_table(name),
            Engine::Memory(e) => Ok(Table::Memory(e.open_table(name))),
            Engine::External(e) => e.open_table(name),
        }
    }

    /// Runs `f` over views of `tables` and, if it succeeds, commits its
    /// writes atomically. `f` runs once on sled and memory: with one
    /// writer at a time there is no conflict to retry; an external engine
    /// may run it again after a conflict with another process (so `f`
    /// must decide from its reads alone). `tables` must be this engine's.
    pub(in crate::store) fn transaction<const N: usize, A, E>(
        &self,
        tables: [&Table; N],
        f: impl Fn(&[TxTree<'_>; N]) -> Result<A, TxError<E>>,
    ) -> Result<A, TxError<E>> {
        match self {
            Engine::Disk(e) => e.journal().transaction(tables, f),
            Engine::Memory(e) => e.transaction(tables, f),
            Engine::External(e) => e.transaction(tables, f),
        }
    }

    /// A guard under which reads of several keys see whole transactions.
    /// Only for plain reads: a thread holding it must not write (the
    /// commit it waits for could not apply).
    pub(in crate::store) fn consistent(&self) -> RwLockReadGuard<'_, ()> {
        match self {
            Engine::Disk(e) => e.journal().consistent(),
            Engine::Memory(e) => e.consistent(),
            Engine::External(e) => e.consistent(),
        }
    }

    /// Makes everything written so far survive the process (sled's flush;
    /// nothing in memory, nor on an external engine, whose commit is
    /// durable when it returns).
    pub(in crate::store) fn flush(&self) -> Result<(), EngineError> {
        match self {
            Engine::Disk(e) => e.flush(),
            Engine::Memory(_) | Engine::External(_) => Ok(()),
        }
    }

    /// Replaces the value of `key` in `table` with what `f` makes of it
    /// (`None`: absent), atomically with respect to every other
    /// `update_key` of the storage, including those of other stores over
    /// a shared storage, and durably (flushed) before it returns. Outside
    /// any transaction, and may be called from inside one (run numbers are
    /// reserved in blocks this way while a start is being applied).
    pub(in crate::store) fn update_key<A>(
        &self,
        table: &Table,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> Result<(Vec<u8>, A), StoreError>,
    ) -> Result<A, StoreError> {
        match self {
            // One process per sled database: the caller's own lock is the
            // only one needed (see `tx::RunIds`).
            Engine::Disk(e) => {
                let old = table.get(key)?;
                let (new, a) = f(old.as_deref())?;
                table.insert(key, new)?;
                e.flush()?;
                Ok(a)
            }
            Engine::Memory(e) => e.update_key(table, key, f),
            // One process per external store for now (see
            // `Store::open_external`), like sled; its writes are durable
            // when they return.
            Engine::External(_) => {
                let old = table.get(key)?;
                let (new, a) = f(old.as_deref())?;
                table.insert(key, new)?;
                Ok(a)
            }
        }
    }

    /// Whether other stores may be open over the same storage at the same
    /// time (a shared database), so that this store is one owner among
    /// several rather than the only one (see `transitions::leases`).
    pub(in crate::store) fn is_shared(&self) -> bool {
        match self {
            Engine::Disk(_) => false,
            Engine::Memory(e) => e.storage().is_shared(),
            Engine::External(_) => false,
        }
    }

    /// An id no earlier call on this storage returned, even across
    /// reopens (not necessarily consecutive).
    pub(in crate::store) fn generate_id(&self) -> Result<u64, EngineError> {
        match self {
            Engine::Disk(e) => e.generate_id(),
            Engine::Memory(e) => Ok(e.generate_id()),
            Engine::External(e) => e.generate_id(),
        }
    }
}
