//! The sled engine: tables are sled trees, transactions go through the
//! store's `journal`, the flush is sled's and ids are sled's id generator
//! (unique across restarts). Everything sled-specific beyond these (flush
//! marks, watermark, fsync of the data file, verification of a copy) lives
//! in the modules that need it, not behind the engine.

use super::{Bytes, EngineError, Repr, Table, TxTree};
use crate::error::StoreError;
use crate::store::journal::Journal;
use sled::{Db, IVec, Tree};
use std::collections::BTreeMap;

impl From<sled::Error> for EngineError {
    fn from(e: sled::Error) -> EngineError {
        EngineError::Sled(e)
    }
}

/// An open sled database and its journal.
pub(in crate::store) struct DiskEngine {
    db: Db,
    journal: Journal,
}

impl DiskEngine {
    /// The engine over `db`, first completing whatever transaction a
    /// crash interrupted (before anything is read).
    pub(in crate::store) fn open(db: &Db) -> Result<DiskEngine, StoreError> {
        Ok(DiskEngine {
            journal: Journal::open(db)?,
            db: db.clone(),
        })
    }

    pub(super) fn open_table(&self, name: &str) -> Result<Table, EngineError> {
        Ok(Table::Disk(self.db.open_tree(name)?))
    }

    pub(super) fn journal(&self) -> &Journal {
        &self.journal
    }

    pub(super) fn flush(&self) -> Result<(), EngineError> {
        self.db.flush()?;
        Ok(())
    }

    pub(super) fn generate_id(&self) -> Result<u64, EngineError> {
        Ok(self.db.generate_id()?)
    }
}

pub(super) fn get(tree: &Tree, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
    Ok(tree.get(key)?.map(|v| Bytes(Repr::Disk(v))))
}

pub(super) fn insert(tree: &Tree, key: &[u8], value: &[u8]) -> Result<(), EngineError> {
    tree.insert(key, value)?;
    Ok(())
}

pub(super) fn entry(item: sled::Result<(IVec, IVec)>) -> Result<(Bytes, Bytes), EngineError> {
    let (k, v) = item?;
    Ok((Bytes(Repr::Disk(k)), Bytes(Repr::Disk(v))))
}

/// The storage error for a bug: a transaction given a table of another
/// engine.
pub(in crate::store) fn foreign_table() -> EngineError {
    EngineError::Sled(sled::Error::ReportableBug(
        "a sled transaction was given a table of another engine".into(),
    ))
}

/// The storage error a transaction returns while an earlier failed apply
/// blocks every write.
pub(in crate::store) fn sled_error(e: sled::Error) -> EngineError {
    EngineError::Sled(e)
}

/// A view's staged writes as the journal stores and applies them: its
/// sled tree and each key with its new value.
#[allow(clippy::type_complexity)]
pub(in crate::store) fn staged<'t>(
    view: &TxTree<'t>,
) -> Result<(&'t Tree, BTreeMap<IVec, Option<IVec>>), EngineError> {
    let Table::Disk(tree) = view.table() else {
        return Err(foreign_table());
    };
    let writes = view
        .take_writes()
        .into_iter()
        .map(|(k, v)| (IVec::from(k), v.map(ivec)))
        .collect();
    Ok((tree, writes))
}

fn ivec(bytes: Bytes) -> IVec {
    match bytes.0 {
        Repr::Disk(v) => v,
        Repr::Shared(v) => IVec::from(&*v),
    }
}
