//! The layout of the store in its schema, versioned: created in an empty
//! schema, migrated from an older version, refused when newer than this
//! build knows.
//!
//! `refrain_schema` holds one row, the layout's version. Opening takes an
//! exclusive lock on it for the check and any migration, so two processes
//! opening one schema at once migrate it once.

use crate::OpenError;
use futures::executor::block_on;
use tokio_postgres::Client;

/// The store's tables, as the store names them.
pub(crate) const TABLES: [&str; 17] = [
    "meta",
    "workflow_ids",
    "runs",
    "history",
    "inbox",
    "ready",
    "activity_tasks",
    "activity_ready",
    "activity_deadlines",
    "timers",
    "human_tasks",
    "run_human_tasks",
    "updates",
    "schedules",
    "schedule_ids",
    "schedule_due",
    "schedule_buffered",
];

/// Each migration, in order: the SQL that takes the layout from version
/// `i` to `i + 1` (`{schema}` stands for the quoted schema).
fn migrations() -> Vec<String> {
    let tables: String = TABLES
        .iter()
        .map(|t| {
            format!("CREATE TABLE {{schema}}.\"{t}\" (k bytea PRIMARY KEY, v bytea NOT NULL);\n")
        })
        .collect();
    vec![format!("{tables}CREATE SEQUENCE {{schema}}.ids;\n")]
}

/// The newest layout version this build knows.
pub(crate) fn current_version() -> i32 {
    i32::try_from(migrations().len()).unwrap_or(i32::MAX)
}

/// Brings the layout in `schema` to the current version.
pub(crate) fn migrate(client: &Client, schema: &str) -> Result<(), OpenError> {
    let failed = |source| OpenError::Schema {
        schema: schema.to_owned(),
        source,
    };
    let quoted = format!("\"{schema}\"");
    block_on(client.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};
         CREATE TABLE IF NOT EXISTS {quoted}.refrain_schema (
             one boolean PRIMARY KEY DEFAULT true CHECK (one),
             version integer NOT NULL
         );"
    )))
    .map_err(failed)?;
    block_on(client.batch_execute(&format!(
        "BEGIN; LOCK TABLE {quoted}.refrain_schema IN EXCLUSIVE MODE;"
    )))
    .map_err(failed)?;
    let migrated = (|| {
        let rows =
            block_on(client.query(&format!("SELECT version FROM {quoted}.refrain_schema"), &[]))
                .map_err(failed)?;
        let found: i32 = rows.first().map_or(0, |row| row.get(0));
        let all = migrations();
        let supported = current_version();
        if found > supported {
            return Err(OpenError::SchemaTooNew {
                schema: schema.to_owned(),
                found,
                supported,
            });
        }
        let from = usize::try_from(found).unwrap_or(0);
        for sql in &all[from..] {
            block_on(client.batch_execute(&sql.replace("{schema}", &quoted))).map_err(failed)?;
        }
        if found < supported {
            block_on(client.execute(
                &format!(
                    "INSERT INTO {quoted}.refrain_schema (one, version) VALUES (true, $1)
                     ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version"
                ),
                &[&supported],
            ))
            .map_err(failed)?;
        }
        Ok(())
    })();
    let end = if migrated.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = block_on(client.batch_execute(end)).map_err(failed);
    migrated.and(ended)
}
