//! Running the PostgreSQL schema migrations (`crate::migrate` lists them and their rules):
//! one migration per transaction, serialized across nodes by an advisory lock, and the
//! baseline of a database from before versioned migrations.

use super::error::backend;
use crate::migrate;
use deadpool_postgres::{GenericClient, Pool};
use natter_core::model::now_millis;
use natter_core::StoreError;

/// Key of the advisory lock that serializes migrations between nodes starting together.
const MIGRATION_LOCK: i64 = 0x6e61_7474_6572; // "natter"

/// Keeps which schema migrations the database has (`crate::migrate`); `applied_at` is in
/// milliseconds since the Unix epoch, like every time in this schema.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// What a database made before read markers (the first unversioned schema) lacks of
/// migration 1.
const ADD_READ_MARKERS: &str = "ALTER TABLE members ADD COLUMN read_seq BIGINT NOT NULL DEFAULT 0";

/// Brings the schema to the newest version this binary knows (`crate::migrate`), one
/// migration per transaction. Each transaction first takes the advisory lock and then reads
/// the version, so nodes starting together take turns and never apply a migration twice.
pub(super) async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(backend)?;
    loop {
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(backend)?;
        tx.batch_execute(VERSION_TABLE).await.map_err(backend)?;
        let applied: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        migrate::refuse_if_newer(applied, migrate::POSTGRES)?;
        if applied == 0 && migrate::is_baseline(&baseline_tables_present(&tx).await?)? {
            add_read_markers_if_missing(&tx).await?;
            record(&tx, migrate::BASELINE, migrate::BASELINE_NAME).await?;
            tx.commit().await.map_err(backend)?;
            tracing::info!(
                version = migrate::BASELINE,
                "postgres schema from before versioned migrations recorded as its version"
            );
            continue;
        }
        if applied == migrate::BASELINE && add_read_markers_if_missing(&tx).await? {
            tx.commit().await.map_err(backend)?;
            tracing::info!("postgres schema at version 1 given the read markers it lacked");
            continue;
        }
        let Some(next) = migrate::next_after(migrate::POSTGRES, applied) else {
            return tx.commit().await.map_err(backend);
        };
        tx.batch_execute(next.sql).await.map_err(backend)?;
        record(&tx, next.version, next.name).await?;
        tx.commit().await.map_err(backend)?;
        tracing::info!(
            version = next.version,
            name = next.name,
            "postgres schema migrated"
        );
    }
}

/// Which of migration 1's tables the database has (in the schema its tables go to).
async fn baseline_tables_present(client: &impl GenericClient) -> Result<Vec<String>, StoreError> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_name::text = ANY($1::text[])",
            &[&migrate::BASELINE_TABLES],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(|r| r.try_get(0).map_err(backend)).collect()
}

/// Adds `members.read_seq` to a database of the first unversioned schema (see
/// `migrate::BASELINE`); true if it was missing.
async fn add_read_markers_if_missing(client: &impl GenericClient) -> Result<bool, StoreError> {
    let has_read_markers = client
        .query_opt(
            "SELECT 1 FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'members'
               AND column_name = 'read_seq'",
            &[],
        )
        .await
        .map_err(backend)?
        .is_some();
    if !has_read_markers {
        client
            .batch_execute(ADD_READ_MARKERS)
            .await
            .map_err(backend)?;
    }
    Ok(!has_read_markers)
}

/// Adds `version`'s row to `schema_migrations`.
async fn record(client: &impl GenericClient, version: i64, name: &str) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&version, &name, &now_millis()],
        )
        .await
        .map_err(backend)?;
    Ok(())
}
