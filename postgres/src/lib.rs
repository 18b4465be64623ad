//! The Refrain store on PostgreSQL.
//!
//! PostgreSQL is a third engine under the store's transitions, beside
//! sled and memory: every transition the sled store makes in one
//! transaction is one PostgreSQL transaction here, over the same tables,
//! keys and bytes. [`open`] returns the same [`refrain_history::Store`], so
//! the worker, the client, the server and the CLI take it unchanged, and
//! the conformance suite and the seeded model test hold on it as on sled.
//!
//! ```no_run
//! let store = refrain_postgres::open(
//!     "postgresql://refrain@db.internal/refrain",
//!     refrain_history::StoreConfig::default(),
//! )?;
//! # Ok::<(), refrain_postgres::OpenError>(())
//! ```
//!
//! # Layout in the database
//!
//! Everything lives in one PostgreSQL schema (`refrain` unless
//! [`Options::schema`] says otherwise): one table per store table
//! (`runs`, `history`, `inbox`, `ready`, `activity_tasks`, ...), each
//! `(k bytea primary key, v bytea not null)` with the store's keys and
//! values as bytes (`bytea` compares bytewise, as sled orders keys); the
//! sequence `ids` (lease tokens); and `refrain_schema`, the version of
//! this layout. [`open`] creates the layout in an empty schema, migrates
//! an older one, and refuses one newer than this build knows
//! ([`OpenError::SchemaTooNew`]).
//!
//! # Transactions and durability
//!
//! A transaction is `REPEATABLE READ`: its reads come from one snapshot
//! and a concurrent writer to the same rows makes the commit fail with a
//! serialization failure, in which case the transition runs again
//! (transitions are pure over their reads). Each connection runs with
//! `synchronous_commit = on`, so a commit is durable when it returns, and
//! the store acknowledges nothing before its commit. What the sled store
//! shares between concurrent operations (one transaction per batch) it
//! shares here too: the batcher is the store's, above the engine.
//!
//! This step runs one process per schema, as sled runs one process per
//! directory: leases and run numbers are kept in the process.

mod engine;
mod schema;
#[cfg(feature = "test-support")]
pub mod testing;

pub use engine::PostgresEngine;

use refrain_history::{Store, StoreConfig, StoreError};
use std::fmt;
use std::sync::Arc;

/// How to lay the store out in the database, and how many connections to
/// keep.
#[derive(Clone, Debug)]
pub struct Options {
    /// The PostgreSQL schema holding the store's tables: lowercase ASCII
    /// letters, digits and `_`, starting with a letter or `_`, at most 63
    /// bytes. Default `refrain`.
    pub schema: String,
    /// Connections for reads and single-key writes outside transactions
    /// (each pipelines concurrent queries); transactions have one more of
    /// their own. Default 4.
    pub read_connections: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            schema: "refrain".to_owned(),
            read_connections: 4,
        }
    }
}

/// Why a store could not be opened on PostgreSQL.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The connection string could not be read.
    BadUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The schema name is not one [`Options::schema`] allows.
    BadSchemaName {
        /// The name given.
        name: String,
    },
    /// No connection could be made to the server.
    Connect {
        /// Where it tried (hosts, ports and database; no password).
        target: String,
        /// The client's error.
        source: tokio_postgres::Error,
    },
    /// The schema holds a layout newer than this build knows: it was
    /// written by a newer Refrain, and this one must not touch it.
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// The version found.
        found: i32,
        /// The newest version this build knows.
        supported: i32,
    },
    /// Creating or migrating the layout failed.
    Schema {
        /// The schema.
        schema: String,
        /// The server's error.
        source: tokio_postgres::Error,
    },
    /// The thread that drives the connections could not be started.
    Runtime(std::io::Error),
    /// The store failed to open over the database (its open-time
    /// recovery).
    Store(StoreError),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::BadUrl { reason } => write!(f, "bad PostgreSQL connection string: {reason}"),
            OpenError::BadSchemaName { name } => write!(
                f,
                "bad schema name {name:?}: use lowercase ASCII letters, digits and _, at most 63 bytes"
            ),
            OpenError::Connect { target, source } => {
                write!(f, "cannot connect to PostgreSQL at {target}: {source}")
            }
            OpenError::SchemaTooNew {
                schema,
                found,
                supported,
            } => write!(
                f,
                "schema {schema:?} has layout version {found}, newer than the {supported} this \
                 build of Refrain knows: open it with a newer Refrain"
            ),
            OpenError::Schema { schema, source } => {
                write!(f, "cannot create or migrate schema {schema:?}: {source}")
            }
            OpenError::Runtime(e) => write!(f, "cannot start the PostgreSQL client thread: {e}"),
            OpenError::Store(e) => write!(f, "cannot open the store on PostgreSQL: {e}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Connect { source, .. } | OpenError::Schema { source, .. } => Some(source),
            OpenError::Runtime(e) => Some(e),
            OpenError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// Opens (or creates) the store in schema `refrain` of the database at
/// `url` (a libpq-style connection string or `postgresql://` URL), as
/// [`Store::open`] opens a directory: creates or migrates the layout,
/// bumps the epoch, fails attempts left running by an earlier process and
/// queues every ready run.
///
/// # Errors
/// See [`OpenError`].
pub fn open(url: &str, config: StoreConfig) -> Result<Store, OpenError> {
    open_with(url, &Options::default(), config)
}

/// [`open`] with [`Options`] other than the default.
///
/// # Errors
/// See [`OpenError`].
pub fn open_with(url: &str, options: &Options, config: StoreConfig) -> Result<Store, OpenError> {
    let engine = PostgresEngine::connect(url, options)?;
    Store::open_external(engine as Arc<dyn refrain_history::ExternalEngine>, config)
        .map_err(OpenError::Store)
}
