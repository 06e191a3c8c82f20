//! The PostgreSQL side of `natter migrate`: the progress table that makes a copy resumable
//! and tells a copy of this source from anything else, batches written with their progress
//! in one transaction, the sequences moved past the copied ids, and the counts compared at
//! the end.
//!
//! `natter_copy_progress` has a row per copied table: the source it is a copy of (its SQLite
//! file's absolute path), the key of the last row copied (JSON, `source::key_to_json`), how
//! many rows were copied, and whether the table is done. A batch's rows and its progress row
//! commit together, so after a kill at any point the progress names exactly the rows the
//! target has, and the next run reads the source from the row after.

use super::source::key_to_json;
use super::tables::{quote, Kind, Table, POSTGRES_OTHER, TABLES};
use super::{CopyError, PROGRESS};
use crate::postgres::error::{backend, Describe};
use deadpool_postgres::{GenericClient, Object};
use rusqlite::types::Value;
use std::collections::BTreeMap;
use tokio_postgres::types::ToSql;

fn pg(e: impl Describe) -> CopyError {
    CopyError::Target(backend(e).to_string())
}

/// Key of the advisory lock a copy holds on its target ("nattcopy").
const COPY_LOCK: i64 = 0x6e61_7474_636f_7079;

/// Where a table's copy stands.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    /// The last copied row's key (JSON); None before the first batch.
    pub last_key: Option<String>,
    pub done: bool,
}

/// Creates the progress table if missing, then claims the target for `source`: a target
/// with no progress must be empty (every table of the schema), one with progress must be a
/// copy of `source`. Returns each table's progress, and whether this run resumes one before.
pub(crate) async fn claim(
    client: &Object,
    source: &str,
) -> Result<(BTreeMap<String, Progress>, bool), CopyError> {
    // Held by this connection until the run ends: two copies into one database would write
    // the same batches twice.
    let alone: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&COPY_LOCK])
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)?;
    if !alone {
        return Err(CopyError::Refused(
            "another natter migrate is copying into the target database".into(),
        ));
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {PROGRESS} (
                tbl TEXT PRIMARY KEY,
                source TEXT NOT NULL,
                last_key TEXT,
                copied BIGINT NOT NULL DEFAULT 0,
                done BOOLEAN NOT NULL DEFAULT FALSE
            )"
        ))
        .await
        .map_err(pg)?;
    let rows = client
        .query(
            &format!("SELECT tbl, source, last_key, done FROM {PROGRESS}"),
            &[],
        )
        .await
        .map_err(pg)?;
    if rows.is_empty() {
        refuse_unless_empty(client).await?;
        let mut progress = BTreeMap::new();
        for table in TABLES {
            client
                .execute(
                    &format!("INSERT INTO {PROGRESS} (tbl, source) VALUES ($1, $2)"),
                    &[&table.name, &source],
                )
                .await
                .map_err(pg)?;
            progress.insert(table.name.to_string(), Progress::default());
        }
        return Ok((progress, false));
    }
    let mut progress = BTreeMap::new();
    for row in rows {
        let tbl: String = row.try_get(0).map_err(pg)?;
        let of: String = row.try_get(1).map_err(pg)?;
        if of != source {
            return Err(CopyError::Refused(format!(
                "the target database holds a copy of another SQLite database ({of}), not of \
                 {source}: choose a new, empty database"
            )));
        }
        let entry = Progress {
            last_key: row.try_get(2).map_err(pg)?,
            done: row.try_get(3).map_err(pg)?,
        };
        progress.insert(tbl, entry);
    }
    for table in TABLES {
        if !progress.contains_key(table.name) {
            client
                .execute(
                    &format!("INSERT INTO {PROGRESS} (tbl, source) VALUES ($1, $2)"),
                    &[&table.name, &source],
                )
                .await
                .map_err(pg)?;
            progress.insert(table.name.to_string(), Progress::default());
        }
    }
    Ok((progress, true))
}

/// Refuses a target that has any row in any of natter's tables (its data is not from here).
async fn refuse_unless_empty(client: &Object) -> Result<(), CopyError> {
    let names = TABLES
        .iter()
        .map(|t| t.name)
        .chain(["file_chunks"].iter().copied());
    for name in names {
        let any: bool = client
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", quote(name)),
                &[],
            )
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?;
        if any {
            return Err(CopyError::Refused(format!(
                "the target database is not empty (its {name} table has rows) and holds no \
                 copy in progress: natter migrate copies into a new, empty database only"
            )));
        }
    }
    Ok(())
}

/// Writes `rows` of `table` and moves its progress past the last of them, in one transaction.
pub(crate) async fn write_batch(
    client: &mut Object,
    table: &Table,
    rows: &[Vec<Value>],
) -> Result<(), CopyError> {
    let Some(last) = rows.last() else {
        return Ok(());
    };
    let width = table.columns.len();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(rows.len() * width);
    let mut tuples = Vec::with_capacity(rows.len());
    for row in rows {
        let marks: Vec<String> = (0..width)
            .map(|i| format!("${}", params.len() + i + 1))
            .collect();
        tuples.push(format!("({})", marks.join(", ")));
        for ((column, kind), value) in table.columns.iter().zip(row) {
            params.push(pg_value(*kind, value, table.name, column)?);
        }
    }
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        quote(table.name),
        table.column_list(),
        tuples.join(", ")
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute(sql.as_str(), &refs).await.map_err(pg)?;
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    tx.execute(
        &format!("UPDATE {PROGRESS} SET last_key = $1, copied = copied + $2 WHERE tbl = $3"),
        &[&key_to_json(table, last), &count, &table.name],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)
}

/// Marks `table` copied whole.
pub(crate) async fn mark_done(client: &Object, table: &Table) -> Result<(), CopyError> {
    client
        .execute(
            &format!("UPDATE {PROGRESS} SET done = TRUE WHERE tbl = $1"),
            &[&table.name],
        )
        .await
        .map_err(pg)?;
    Ok(())
}

/// One SQLite value as the parameter PostgreSQL's column of `kind` takes.
fn pg_value(
    kind: Kind,
    value: &Value,
    table: &str,
    column: &str,
) -> Result<Box<dyn ToSql + Sync + Send>, CopyError> {
    let unexpected = || {
        CopyError::Source(format!(
            "{table}.{column} holds a value of an unexpected type ({:?})",
            value.data_type()
        ))
    };
    let out_of_range =
        || CopyError::Source(format!("{table}.{column} holds an out-of-range value"));
    Ok(match (kind, value) {
        (Kind::Int8, Value::Null) => Box::new(None::<i64>),
        (Kind::Int4, Value::Null) => Box::new(None::<i32>),
        (Kind::Int2, Value::Null) => Box::new(None::<i16>),
        (Kind::Bool, Value::Null) => Box::new(None::<bool>),
        (Kind::Text, Value::Null) => Box::new(None::<String>),
        (Kind::Bytes, Value::Null) => Box::new(None::<Vec<u8>>),
        (Kind::Int8, Value::Integer(n)) => Box::new(Some(*n)),
        (Kind::Int4, Value::Integer(n)) => {
            Box::new(Some(i32::try_from(*n).map_err(|_| out_of_range())?))
        }
        (Kind::Int2, Value::Integer(n)) => {
            Box::new(Some(i16::try_from(*n).map_err(|_| out_of_range())?))
        }
        (Kind::Bool, Value::Integer(n)) => Box::new(Some(*n != 0)),
        (Kind::Text, Value::Text(s)) => Box::new(Some(s.clone())),
        (Kind::Text, Value::Integer(n)) => Box::new(Some(n.to_string())),
        (Kind::Bytes, Value::Blob(b)) => Box::new(Some(b.clone())),
        (Kind::Bytes, Value::Text(s)) => Box::new(Some(s.as_bytes().to_vec())),
        _ => return Err(unexpected()),
    })
}

/// Moves each `BIGSERIAL` sequence past the highest copied id, so rows the nodes insert
/// next get new ids (idempotent).
pub(crate) async fn advance_sequences(client: &Object) -> Result<(), CopyError> {
    for table in TABLES.iter().filter(|t| t.serial) {
        let name = quote(table.name);
        client
            .query_one(
                &format!(
                    "SELECT setval(pg_get_serial_sequence($1, 'id'),
                        COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                ),
                &[&table.name],
            )
            .await
            .map_err(pg)?;
    }
    Ok(())
}

/// How many rows `table` has.
pub(crate) async fn count(client: &impl GenericClient, table: &str) -> Result<i64, CopyError> {
    client
        .query_one(&format!("SELECT COUNT(*) FROM {}", quote(table)), &[])
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)
}

/// Each room's `last_seq` and highest stored seq, by room id.
pub(crate) async fn room_seqs(client: &Object) -> Result<BTreeMap<i64, (i64, i64)>, CopyError> {
    let rows = client
        .query(super::source::ROOM_SEQS, &[])
        .await
        .map_err(pg)?;
    let mut seqs = BTreeMap::new();
    for row in rows {
        let id: i64 = row.try_get(0).map_err(pg)?;
        let last: i64 = row.try_get(1).map_err(pg)?;
        let max: i64 = row.try_get(2).map_err(pg)?;
        seqs.insert(id, (last, max));
    }
    Ok(seqs)
}

/// The tables of the target's schema and their columns (without the generated ones and the
/// tables that are not copied rows), for the test that the copy knows every column.
pub async fn schema(client: &Object) -> Result<BTreeMap<String, Vec<String>>, CopyError> {
    let rows = client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND is_generated = 'NEVER'
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .await
        .map_err(pg)?;
    let mut schema: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        let table: String = row.try_get(0).map_err(pg)?;
        let column: String = row.try_get(1).map_err(pg)?;
        if POSTGRES_OTHER.contains(&table.as_str()) {
            continue;
        }
        schema.entry(table).or_default().push(column);
    }
    Ok(schema)
}
