//! The engine: tables as PostgreSQL tables of `(k bytea, v bytea)`, a
//! transaction as a PostgreSQL transaction, ids from a sequence.
//!
//! The store calls the engine from its own threads and from async code
//! alike, always expecting an answer before it goes on (its transitions
//! are synchronous). The connections therefore run on a small runtime of
//! ours, and a caller waits for its query's future on its own thread
//! (`futures::executor::block_on`, which, unlike a runtime's `block_on`,
//! may be called from inside another runtime). A tokio-postgres client
//! pipelines the queries of concurrent callers, so a few shared clients
//! serve every reader; the transaction has a client of its own.
//!
//! Reads during a transaction: the store runs a transaction's closure on
//! the thread that asked for it, and the closure reads through the tables
//! ([`ExternalTable::get`]). A read from that thread while the
//! transaction is open goes to the transaction's client, so it sees the
//! transaction's snapshot; every other thread reads what is committed.

use crate::schema;
use crate::{OpenError, Options};
use futures::executor::block_on;
use refrain_history::store::{Entries, TableWrites, TxBody};
use refrain_history::{ExternalEngine, ExternalError, ExternalTable};
use std::ops::Bound;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

/// The store's storage in one schema of a PostgreSQL database.
pub struct PostgresEngine {
    shared: Arc<Shared>,
}

struct Shared {
    /// Drives the connections. Shut down in the background on drop: the
    /// last handle may be dropped inside a caller's runtime, where a
    /// blocking shutdown would panic.
    runtime: Option<tokio::runtime::Runtime>,
    /// The transactions' connection.
    tx: Client,
    /// Every other query's, taken in turn.
    readers: Vec<Client>,
    next_reader: AtomicUsize,
    /// The thread running the open transaction, if one is open.
    tx_thread: Mutex<Option<ThreadId>>,
    /// `"schema"`, quoted.
    schema: String,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Shared {
    /// The client for a query from this thread now.
    fn client(&self) -> &Client {
        let current = std::thread::current().id();
        let in_tx = *self.tx_thread.lock().unwrap_or_else(|p| p.into_inner()) == Some(current);
        if in_tx {
            return &self.tx;
        }
        self.reader()
    }

    /// A reader's client (never the transaction's).
    fn reader(&self) -> &Client {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        &self.readers[i]
    }

    fn table(&self, name: &str) -> String {
        format!("{}.\"{name}\"", self.schema)
    }
}

fn external(e: tokio_postgres::Error) -> ExternalError {
    ExternalError::new(e)
}

/// Where `config` points, for messages (never the password).
fn target(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
            tokio_postgres::config::Host::Unix(p) => format!("{}:{port}", p.display()),
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost".to_owned()
    } else {
        hosts.join(",")
    };
    match config.get_dbname() {
        Some(db) => format!("{hosts}/{db}"),
        None => hosts,
    }
}

/// Whether `name` may be a schema or table name as it is (quoted the same).
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
}

impl PostgresEngine {
    /// Connects to the database at `url`, and creates or migrates the
    /// layout in `options.schema`.
    ///
    /// # Errors
    /// See [`OpenError`].
    pub fn connect(url: &str, options: &Options) -> Result<Arc<PostgresEngine>, OpenError> {
        if !valid_name(&options.schema) {
            return Err(OpenError::BadSchemaName {
                name: options.schema.clone(),
            });
        }
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| OpenError::BadUrl {
            reason: e.to_string(),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("refrain");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("refrain-postgres")
            .enable_all()
            .build()
            .map_err(OpenError::Runtime)?;
        let connect = |config: &tokio_postgres::Config| -> Result<Client, OpenError> {
            let owned = config.clone();
            let handle = runtime.handle().clone();
            let connecting = runtime.spawn(async move {
                let (client, connection) = owned.connect(NoTls).await?;
                handle.spawn(async move {
                    // Ends when the client is dropped or the server goes;
                    // the client's next query then reports it.
                    let _ = connection.await;
                });
                // Acknowledged means committed and flushed, whatever the
                // server's default.
                client.batch_execute("SET synchronous_commit TO on").await?;
                Ok::<_, tokio_postgres::Error>(client)
            });
            match block_on(connecting) {
                Ok(Ok(client)) => Ok(client),
                Ok(Err(source)) => Err(OpenError::Connect {
                    target: target(config),
                    source,
                }),
                Err(join) => Err(OpenError::Runtime(std::io::Error::other(join.to_string()))),
            }
        };
        let tx = connect(&config)?;
        let readers = (0..options.read_connections.max(1))
            .map(|_| connect(&config))
            .collect::<Result<Vec<_>, _>>()?;
        schema::migrate(&tx, &options.schema)?;
        Ok(Arc::new(PostgresEngine {
            shared: Arc::new(Shared {
                runtime: Some(runtime),
                tx,
                readers,
                next_reader: AtomicUsize::new(0),
                tx_thread: Mutex::new(None),
                schema: format!("\"{}\"", options.schema),
            }),
        }))
    }
}

/// One store table.
struct PgTable {
    name: String,
    shared: Arc<Shared>,
    get: String,
    insert: String,
    table: String,
}

impl ExternalTable for PgTable {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ExternalError> {
        let client = self.shared.client();
        let rows =
            block_on(client.query_typed(&self.get, &[(&key, Type::BYTEA)])).map_err(external)?;
        Ok(rows.first().map(|row| row.get::<_, Vec<u8>>(0)))
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), ExternalError> {
        // Never the transaction's client: a plain write commits on its own.
        let client = self.shared.reader();
        block_on(client.query_typed(&self.insert, &[(&key, Type::BYTEA), (&value, Type::BYTEA)]))
            .map_err(external)?;
        Ok(())
    }

    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Entries, ExternalError> {
        let mut sql = format!("SELECT k, v FROM {} WHERE true", self.table);
        let mut params: Vec<(&(dyn ToSql + Sync), Type)> = Vec::new();
        let lower_key;
        let upper_key;
        match lower {
            Bound::Included(k) => {
                lower_key = k;
                params.push((&lower_key, Type::BYTEA));
                sql.push_str(&format!(" AND k >= ${}", params.len()));
            }
            Bound::Excluded(k) => {
                lower_key = k;
                params.push((&lower_key, Type::BYTEA));
                sql.push_str(&format!(" AND k > ${}", params.len()));
            }
            Bound::Unbounded => {}
        }
        match upper {
            Bound::Included(k) => {
                upper_key = k;
                params.push((&upper_key, Type::BYTEA));
                sql.push_str(&format!(" AND k <= ${}", params.len()));
            }
            Bound::Excluded(k) => {
                upper_key = k;
                params.push((&upper_key, Type::BYTEA));
                sql.push_str(&format!(" AND k < ${}", params.len()));
            }
            Bound::Unbounded => {}
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        params.push((&limit, Type::INT8));
        sql.push_str(&format!(
            " ORDER BY k {} LIMIT ${}",
            if reverse { "DESC" } else { "ASC" },
            params.len()
        ));
        let client = self.shared.client();
        let rows = block_on(client.query_typed(&sql, &params)).map_err(external)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get::<_, Vec<u8>>(0), row.get::<_, Vec<u8>>(1)))
            .collect())
    }
}

/// A transaction open on the transactions' client: rolled back when
/// dropped before its commit (a closure that panicked, a failed write).
struct Open<'a> {
    shared: &'a Shared,
    done: bool,
}

impl<'a> Open<'a> {
    fn begin(shared: &'a Shared) -> Result<Open<'a>, tokio_postgres::Error> {
        block_on(
            shared
                .tx
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ"),
        )?;
        *shared.tx_thread.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(std::thread::current().id());
        Ok(Open {
            shared,
            done: false,
        })
    }

    /// Applies `sets` and commits.
    fn commit(mut self, sets: &[TableWrites]) -> Result<(), tokio_postgres::Error> {
        self.release_reads();
        let client = &self.shared.tx;
        let mut statements = Vec::new();
        for set in sets {
            let mut keys: Vec<&[u8]> = Vec::new();
            let mut values: Vec<&[u8]> = Vec::new();
            let mut gone: Vec<&[u8]> = Vec::new();
            for (k, v) in &set.entries {
                match v {
                    Some(v) => {
                        keys.push(k);
                        values.push(v);
                    }
                    None => gone.push(k),
                }
            }
            let table = self.shared.table(set.table.name());
            statements.push((table, keys, values, gone));
        }
        let mut writes = Vec::new();
        for (table, keys, values, gone) in &statements {
            if !keys.is_empty() {
                writes.push((
                    format!(
                        "INSERT INTO {table} (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                         ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
                    ),
                    vec![keys, values],
                ));
            }
            if !gone.is_empty() {
                writes.push((
                    format!("DELETE FROM {table} WHERE k = ANY($1::bytea[])"),
                    vec![gone],
                ));
            }
        }
        // Sent together: the client pipelines them (their order does not
        // matter: each key is written once). The COMMIT follows once all
        // have succeeded.
        let sent = writes.iter().map(|(sql, arrays)| {
            let params: Vec<(&(dyn ToSql + Sync), Type)> = arrays
                .iter()
                .map(|a| (*a as &(dyn ToSql + Sync), Type::BYTEA_ARRAY))
                .collect();
            async move { client.query_typed(sql, &params).await }
        });
        block_on(futures::future::try_join_all(sent))?;
        block_on(client.batch_execute("COMMIT"))?;
        self.done = true;
        Ok(())
    }

    /// Reads from this thread go to the readers again.
    fn release_reads(&self) {
        *self
            .shared
            .tx_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.release_reads();
        if !self.done {
            // If even the rollback fails the connection is gone, and the
            // server rolls the transaction back itself.
            let _ = block_on(self.shared.tx.batch_execute("ROLLBACK"));
        }
    }
}

/// Whether the transaction failed only because of a concurrent writer
/// (worth running again).
fn conflict(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

impl ExternalEngine for PostgresEngine {
    fn open_table(&self, name: &str) -> Result<Arc<dyn ExternalTable>, ExternalError> {
        if !valid_name(name) {
            return Err(ExternalError::msg(format!("bad table name {name:?}")));
        }
        let table = self.shared.table(name);
        if !schema::TABLES.contains(&name) {
            // A table this layout version does not list: kept like the
            // others rather than refused.
            block_on(self.shared.tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (k bytea PRIMARY KEY, v bytea NOT NULL)"
            )))
            .map_err(external)?;
        }
        Ok(Arc::new(PgTable {
            name: name.to_owned(),
            shared: Arc::clone(&self.shared),
            get: format!("SELECT v FROM {table} WHERE k = $1"),
            insert: format!(
                "INSERT INTO {table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
            ),
            table,
        }))
    }

    fn transaction(&self, body: &mut dyn FnMut() -> TxBody) -> Result<(), ExternalError> {
        loop {
            let open = Open::begin(&self.shared).map_err(external)?;
            let sets = match body() {
                TxBody::Abort => return Ok(()),
                TxBody::Commit(sets) => sets,
            };
            match open.commit(&sets) {
                Ok(()) => return Ok(()),
                Err(e) if conflict(&e) => continue,
                Err(e) => return Err(external(e)),
            }
        }
    }

    fn generate_id(&self) -> Result<u64, ExternalError> {
        let sql = format!("SELECT nextval('{}.ids')", self.shared.schema);
        let rows = block_on(self.shared.reader().query_typed(&sql, &[])).map_err(external)?;
        let id: i64 = rows
            .first()
            .ok_or_else(|| ExternalError::msg("nextval returned no row"))?
            .get(0);
        u64::try_from(id).map_err(|_| ExternalError::msg(format!("sequence ids returned {id}")))
    }
}
