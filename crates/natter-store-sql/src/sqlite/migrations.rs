//! Running the SQLite schema migrations (`crate::migrate` lists them and their rules): one
//! IMMEDIATE transaction per migration, so two processes opening one file take turns, and
//! the baseline of a file from before versioned migrations.

use super::error::backend;
use crate::migrate;
use natter_core::model::now_millis;
use natter_core::StoreError;
use rusqlite::{params, Connection};

/// Keeps which schema migrations the database has (`crate::migrate`); `applied_at` is in
/// milliseconds since the Unix epoch, like every time in this schema.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)";

/// What a file made before read markers (the first unversioned schema) lacks of migration 1.
const ADD_READ_MARKERS: &str = "ALTER TABLE members ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0";

/// Brings the schema to the newest version this binary knows (`crate::migrate`), one
/// migration per transaction. Each transaction is IMMEDIATE (it holds the write lock from its
/// first read), so two processes opening one file at once take turns and the second finds the
/// work done.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        tx.execute_batch(VERSION_TABLE).map_err(backend)?;
        let applied: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(backend)?;
        migrate::refuse_if_newer(applied, migrate::SQLITE)?;
        if applied == 0 && migrate::is_baseline(&baseline_tables_present(&tx)?)? {
            add_read_markers_if_missing(&tx)?;
            record(&tx, migrate::BASELINE, migrate::BASELINE_NAME)?;
            tx.commit().map_err(backend)?;
            tracing::info!(
                version = migrate::BASELINE,
                "sqlite schema from before versioned migrations recorded as its version"
            );
            continue;
        }
        if applied == migrate::BASELINE && add_read_markers_if_missing(&tx)? {
            tx.commit().map_err(backend)?;
            tracing::info!("sqlite schema at version 1 given the read markers it lacked");
            continue;
        }
        let Some(next) = migrate::next_after(migrate::SQLITE, applied) else {
            return tx.commit().map_err(backend);
        };
        tx.execute_batch(next.sql).map_err(backend)?;
        if next.sql.contains("writable_schema") {
            // The schema text was edited in place (a CHECK widened): other connections to
            // the file see it once the schema version moves (SQLite's documented procedure).
            let version: i64 = tx
                .query_row("PRAGMA schema_version", [], |r| r.get(0))
                .map_err(backend)?;
            tx.execute_batch(&format!("PRAGMA schema_version = {}", version + 1))
                .map_err(backend)?;
        }
        record(&tx, next.version, next.name)?;
        tx.commit().map_err(backend)?;
        tracing::info!(
            version = next.version,
            name = next.name,
            "sqlite schema migrated"
        );
    }
}

/// Which of migration 1's tables the database has.
fn baseline_tables_present(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .map_err(backend)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(backend)?;
    let names = names.collect::<Result<Vec<_>, _>>().map_err(backend)?;
    Ok(names
        .into_iter()
        .filter(|n| migrate::BASELINE_TABLES.contains(&n.as_str()))
        .collect())
}

/// Adds `members.read_seq` to a database of the first unversioned schema (see
/// `migrate::BASELINE`); true if it was missing.
fn add_read_markers_if_missing(conn: &Connection) -> Result<bool, StoreError> {
    let has_read_markers = conn
        .prepare("SELECT 1 FROM pragma_table_info('members') WHERE name = 'read_seq'")
        .map_err(backend)?
        .exists([])
        .map_err(backend)?;
    if !has_read_markers {
        conn.execute_batch(ADD_READ_MARKERS).map_err(backend)?;
    }
    Ok(!has_read_markers)
}

/// Adds `version`'s row to `schema_migrations`.
fn record(conn: &Connection, version: i64, name: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
        params![version, name, now_millis()],
    )
    .map_err(backend)?;
    Ok(())
}
