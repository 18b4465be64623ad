//! Engines kept outside this crate (PostgreSQL, in `refrain-postgres`):
//! the object-safe face of what the transitions need from storage, and the
//! store's side of it.
//!
//! An external engine provides named tables of ordered byte keys
//! ([`ExternalTable`]: get, plain insert, a bounded page of an ordered
//! scan), one atomic transaction at a time ([`ExternalEngine::transaction`])
//! and an id generator. The transitions' own views ([`TxTree`]) stay
//! here: a transaction's writes are staged in them as for the other
//! engines and handed to the engine as [`TableWrites`] once its closure
//! succeeds, so the transitions run unchanged and the engine only stores
//! bytes.
//!
//! Reads a closure makes belong to the engine's transaction: the engine
//! answers [`ExternalTable::get`] from inside it when the call comes from
//! the thread running the transaction (the closure never leaves it). An
//! engine whose commit can fail for a concurrent writer (a serialization
//! failure) runs the body again; bodies are pure over their reads, so a
//! second run decides afresh.
//!
//! In this process one transaction runs at a time, as on the other
//! engines, and [`Engine::consistent`](super::Engine::consistent) readers
//! wait for whole transactions: the store's guarantees do not depend on
//! the engine's isolation level beyond what its transaction promises.

use super::{Bytes, EngineError, Table, TxError, TxTree};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// A failure of an external engine, in its own words. Cheap to clone.
#[derive(Clone)]
pub struct ExternalError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl ExternalError {
    /// The error of an engine's failure `source`.
    pub fn new(source: impl std::error::Error + Send + Sync + 'static) -> ExternalError {
        ExternalError(Arc::new(source))
    }

    /// An error with `message` alone.
    pub fn msg(message: impl Into<String>) -> ExternalError {
        ExternalError::new(Message(message.into()))
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl fmt::Debug for ExternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ExternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for ExternalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// One named table of an external engine: byte keys in bytewise order,
/// each with a byte value.
pub trait ExternalTable: Send + Sync {
    /// The table's name, as given to [`ExternalEngine::open_table`].
    fn name(&self) -> &str;

    /// The value of `key` (from inside the transaction when called on the
    /// thread running one).
    ///
    /// # Errors
    /// The engine's failure.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ExternalError>;

    /// Sets `key` to `value` at once, committed on its own (outside any
    /// transaction, even when called from inside one).
    ///
    /// # Errors
    /// The engine's failure.
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), ExternalError>;

    /// Up to `limit` entries with keys between `lower` and `upper`, in key
    /// order (from the last key back when `reverse`), as committed now.
    ///
    /// # Errors
    /// The engine's failure.
    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Entries, ExternalError>;
}

/// Keys with their values, in the order a scan returns them.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The writes one transaction makes to one table: each key with its new
/// value (`None`: removed), in key order, each key once.
pub struct TableWrites {
    /// The table written.
    pub table: Arc<dyn ExternalTable>,
    /// Its keys and new values.
    pub entries: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// What a transaction's body decided: commit these writes, or write
/// nothing.
pub enum TxBody {
    /// Commit these writes atomically.
    Commit(Vec<TableWrites>),
    /// Roll back: the body aborted (its reason is the store's to keep).
    Abort,
}

/// Storage kept outside this crate, under the store's transitions (see
/// [`Store::open_external`](crate::Store::open_external)).
pub trait ExternalEngine: Send + Sync {
    /// The table `name` (letters, digits and `_`), created empty if it
    /// does not exist.
    ///
    /// # Errors
    /// The engine's failure.
    fn open_table(&self, name: &str) -> Result<Arc<dyn ExternalTable>, ExternalError>;

    /// Begins a transaction, runs `body` on this thread (its reads through
    /// [`ExternalTable::get`] see the transaction), and commits the writes
    /// it returns, all or none; rolls back on [`TxBody::Abort`]. Runs
    /// `body` again if the commit failed only because of a concurrent
    /// writer. Returned once committed durably.
    ///
    /// # Errors
    /// The engine's failure; nothing was written.
    fn transaction(&self, body: &mut dyn FnMut() -> TxBody) -> Result<(), ExternalError>;

    /// An id no earlier call on this storage returned, even across
    /// reopens and other processes.
    ///
    /// # Errors
    /// The engine's failure.
    fn generate_id(&self) -> Result<u64, ExternalError>;
}

/// The store's hold on an external engine.
pub(in crate::store) struct ExternalHandle {
    engine: Arc<dyn ExternalEngine>,
    /// Held for writing while a transaction runs (one at a time, and
    /// readers under `consistent` see whole transactions).
    applying: RwLock<()>,
}

impl ExternalHandle {
    pub(super) fn new(engine: Arc<dyn ExternalEngine>) -> ExternalHandle {
        ExternalHandle {
            engine,
            applying: RwLock::new(()),
        }
    }

    pub(super) fn open_table(&self, name: &str) -> Result<Table, EngineError> {
        Ok(Table::External(self.engine.open_table(name)?))
    }

    pub(super) fn generate_id(&self) -> Result<u64, EngineError> {
        Ok(self.engine.generate_id()?)
    }

    pub(super) fn consistent(&self) -> RwLockReadGuard<'_, ()> {
        self.applying.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn transaction<const N: usize, A, E>(
        &self,
        tables: [&Table; N],
        f: impl Fn(&[TxTree<'_>; N]) -> Result<A, TxError<E>>,
    ) -> Result<A, TxError<E>> {
        // A closure that panicked (a bug) wrote nothing: the state the
        // lock guards is still sound.
        let _one = self.applying.write().unwrap_or_else(|p| p.into_inner());
        let mut outcome = None;
        let mut body = || {
            let views = tables.map(TxTree::new);
            let decided = f(&views).and_then(|a| {
                let mut sets = Vec::with_capacity(N);
                for view in &views {
                    let Table::External(table) = view.table() else {
                        return Err(TxError::Storage(super::disk::foreign_table()));
                    };
                    let writes = view.take_writes();
                    if !writes.is_empty() {
                        sets.push(TableWrites {
                            table: Arc::clone(table),
                            entries: writes
                                .into_iter()
                                .map(|(k, v)| (k, v.map(|v| v.to_vec())))
                                .collect(),
                        });
                    }
                }
                Ok((a, sets))
            });
            let (result, body) = match decided {
                Ok((a, sets)) => (Ok(a), TxBody::Commit(sets)),
                Err(e) => (Err(e), TxBody::Abort),
            };
            // The last run's outcome is the one committed.
            outcome = Some(result);
            body
        };
        self.engine
            .transaction(&mut body)
            .map_err(|e| TxError::Storage(e.into()))?;
        match outcome {
            Some(result) => result,
            None => Err(TxError::Storage(EngineError::External(ExternalError::msg(
                "the engine committed without running the transaction's body",
            )))),
        }
    }
}

/// Rows fetched per step of a scan.
const PAGE: usize = 256;

/// A lazy scan of an external table: pages of [`PAGE`] entries fetched as
/// it advances, from either end; both ends share the bounds, so a scan
/// driven from both never returns an entry twice.
pub(in crate::store) struct Iter {
    table: Arc<dyn ExternalTable>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    front: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
    back: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
    done: bool,
}

impl Iter {
    pub(super) fn new(
        table: &Arc<dyn ExternalTable>,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
    ) -> Iter {
        Iter {
            table: Arc::clone(table),
            lower,
            upper,
            front: Vec::new().into_iter(),
            back: Vec::new().into_iter(),
            done: false,
        }
    }

    /// The scan of the keys starting with `prefix`.
    pub(super) fn prefix(table: &Arc<dyn ExternalTable>, prefix: &[u8]) -> Iter {
        let upper = match successor(prefix) {
            Some(next) => Bound::Excluded(next),
            None => Bound::Unbounded,
        };
        Iter::new(table, Bound::Included(prefix.to_vec()), upper)
    }

    fn fetch(&mut self, reverse: bool) -> Result<(), EngineError> {
        let page = self.table.scan(
            self.lower.as_ref().map(Vec::as_slice),
            self.upper.as_ref().map(Vec::as_slice),
            reverse,
            PAGE,
        )?;
        if page.len() < PAGE {
            self.done = true;
        }
        // Narrow the bounds past the page, so the other end never fetches
        // what this one holds.
        if let Some((last, _)) = page.last() {
            if reverse {
                self.upper = Bound::Excluded(last.clone());
            } else {
                self.lower = Bound::Excluded(last.clone());
            }
        }
        if reverse {
            self.back = page.into_iter();
        } else {
            self.front = page.into_iter();
        }
        Ok(())
    }

    fn step(&mut self, reverse: bool) -> Option<Result<(Bytes, Bytes), EngineError>> {
        loop {
            let buffered = if reverse {
                self.back.next()
            } else {
                self.front.next()
            };
            if let Some((k, v)) = buffered {
                return Some(Ok((Bytes::copy_of(&k), Bytes::copy_of(&v))));
            }
            if self.done {
                // What the other end fetched and has not returned yet.
                let rest = if reverse {
                    self.front.next_back()
                } else {
                    self.back.next_back()
                };
                return rest.map(|(k, v)| Ok((Bytes::copy_of(&k), Bytes::copy_of(&v))));
            }
            if let Err(e) = self.fetch(reverse) {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    pub(super) fn next_entry(&mut self) -> Option<Result<(Bytes, Bytes), EngineError>> {
        self.step(false)
    }

    pub(super) fn next_back_entry(&mut self) -> Option<Result<(Bytes, Bytes), EngineError>> {
        self.step(true)
    }
}

/// The least key greater than every key starting with `prefix`; `None`
/// when there is none (the prefix is empty or all 0xff).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn a_prefix_ends_before_its_successor() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(successor(&[0xff, 0xff]), None);
        assert_eq!(successor(b""), None);
    }
}
