//! The SQLite side of `natter migrate`: the database opened read-only (never written, never
//! migrated; with no `-wal` beside it, as an immutable file, so not even a `-shm` appears),
//! one read transaction for the whole run (every batch and every count is of the
//! same state), checks that its schema is the one this binary copies, and rows read in
//! primary-key order from a given key on.
//!
//! Blocking calls: the caller runs them on a blocking thread.

use super::tables::{quote, sqlite_skipped, Kind, Table, TABLES};
use super::CopyError;
use crate::migrate;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn sqlite(e: rusqlite::Error) -> CopyError {
    CopyError::Source(e.to_string())
}

/// The source database, read-only, inside one read transaction.
pub(crate) struct Source {
    conn: Connection,
}

impl Source {
    /// Opens `path` read-only and starts the read transaction; refuses a database whose
    /// schema is not this binary's newest, or that has a table or column the copy would miss.
    pub fn open(path: &Path) -> Result<Source, CopyError> {
        if !path.is_file() {
            return Err(CopyError::Refused(format!(
                "no SQLite database at {}",
                path.display()
            )));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if has_wal(path) {
            // The log may hold commits: read it, as any reader does (through the `-shm`).
            Connection::open_with_flags(path, flags)
        } else {
            // No log: the file is the whole database. `immutable` reads it with no locks and
            // no `-shm`/`-wal` made beside it, so nothing in the data directory changes.
            Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)
        }
        .map_err(sqlite)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(sqlite)?;
        conn.execute_batch("BEGIN").map_err(sqlite)?;
        let source = Source { conn };
        source.check_version()?;
        source.check_tables()?;
        Ok(source)
    }

    fn check_version(&self) -> Result<(), CopyError> {
        let has_versions: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master
                 WHERE type = 'table' AND name = 'schema_migrations')",
                [],
                |r| r.get(0),
            )
            .map_err(sqlite)?;
        let version: i64 = if has_versions {
            self.conn
                .query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    [],
                    |r| r.get(0),
                )
                .map_err(sqlite)?
        } else {
            0
        };
        let newest = migrate::latest(migrate::SQLITE);
        if version != newest {
            return Err(CopyError::Refused(format!(
                "the SQLite database's schema is version {version}; this natter copies version \
                 {newest}: {}",
                if version < newest {
                    "start this natter on it once (or run `natter admin stats` on it) to \
                     upgrade it, stop it, then migrate"
                } else {
                    "use the natter that wrote it"
                }
            )));
        }
        Ok(())
    }

    /// Every table and column of the source is one the copy knows (or skips on purpose).
    fn check_tables(&self) -> Result<(), CopyError> {
        for (table, columns) in self.schema()? {
            if sqlite_skipped(&table) {
                continue;
            }
            let Some(known) = TABLES.iter().find(|t| t.name == table) else {
                return Err(CopyError::Refused(format!(
                    "the SQLite database has a table this natter does not copy: {table}"
                )));
            };
            for column in columns {
                if !known.columns.iter().any(|(c, _)| *c == column) {
                    return Err(CopyError::Refused(format!(
                        "the SQLite database has a column this natter does not copy: \
                         {table}.{column}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every table's columns, by table name.
    pub fn schema(&self) -> Result<BTreeMap<String, Vec<String>>, CopyError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .map_err(sqlite)?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sqlite)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite)?;
        let mut schema = BTreeMap::new();
        for name in names {
            let mut info = self
                .conn
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info({})",
                    literal(&name)
                ))
                .map_err(sqlite)?;
            let columns = info
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(sqlite)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sqlite)?;
            schema.insert(name, columns);
        }
        Ok(schema)
    }

    /// Up to `limit` rows of `table` after key `after` (from the first if None), in key order.
    pub fn rows_after(
        &self,
        table: &Table,
        after: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>, CopyError> {
        let keys = table.key_list();
        let filter = match after {
            None => String::new(),
            Some(_) => {
                let marks: Vec<String> = (1..=table.key.len()).map(|i| format!("?{i}")).collect();
                format!("WHERE ({keys}) > ({})", marks.join(", "))
            }
        };
        let sql = format!(
            "SELECT {} FROM {} {filter} ORDER BY {keys} LIMIT {limit}",
            table.column_list(),
            quote(table.name)
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(sqlite)?;
        let width = table.columns.len();
        let params = rusqlite::params_from_iter(after.unwrap_or_default().iter());
        let rows = stmt
            .query_map(params, |r| {
                (0..width).map(|i| r.get::<_, Value>(i)).collect()
            })
            .map_err(sqlite)?;
        rows.collect::<Result<Vec<Vec<Value>>, _>>().map_err(sqlite)
    }

    /// How many rows `table` has.
    pub fn count(&self, table: &str) -> Result<i64, CopyError> {
        self.conn
            .query_row(&format!("SELECT COUNT(*) FROM {}", quote(table)), [], |r| {
                r.get(0)
            })
            .map_err(sqlite)
    }

    /// Each room's `last_seq` and the highest seq stored in it (0 for none), by room id.
    pub fn room_seqs(&self) -> Result<BTreeMap<i64, (i64, i64)>, CopyError> {
        let mut stmt = self.conn.prepare(ROOM_SEQS).map_err(sqlite)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .map_err(sqlite)?;
        rows.collect::<Result<BTreeMap<_, _>, _>>().map_err(sqlite)
    }

    /// The blobs the file records name (bytes and thumbnails), each once, sorted.
    pub fn blob_hashes(&self) -> Result<Vec<String>, CopyError> {
        let mut stmt = self.conn.prepare(BLOB_HASHES).map_err(sqlite)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sqlite)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sqlite)
    }
}

/// Whether a write-ahead log file is beside the database (whatever its size).
pub(crate) fn has_wal(database: &Path) -> bool {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    Path::new(&wal).exists()
}

/// `file:PATH?immutable=1`, with the characters a URI gives meaning to escaped.
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Each room's id, `last_seq` and highest stored seq (both backends run it).
pub(crate) const ROOM_SEQS: &str = "SELECT r.id, r.last_seq, COALESCE(MAX(m.seq), 0)
     FROM rooms r LEFT JOIN messages m ON m.room_id = r.id
     GROUP BY r.id, r.last_seq ORDER BY r.id";

/// Every blob hash the file records name (both backends run it).
pub(crate) const BLOB_HASHES: &str = "SELECT hash FROM files
     UNION SELECT thumb_hash FROM files WHERE thumb_hash IS NOT NULL ORDER BY 1";

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A key as JSON for the progress table: integers as numbers, text as strings, bytes as hex.
pub(crate) fn key_to_json(table: &Table, row: &[Value]) -> String {
    let parts: Vec<serde_json::Value> = (0..table.key.len())
        .map(|i| match &row[table.key_position(i)] {
            Value::Integer(n) => serde_json::Value::from(*n),
            Value::Text(s) => serde_json::Value::from(s.as_str()),
            Value::Blob(b) => serde_json::Value::from(hex(b)),
            Value::Real(f) => serde_json::Value::from(*f),
            Value::Null => serde_json::Value::Null,
        })
        .collect();
    serde_json::Value::Array(parts).to_string()
}

/// A key stored by [`key_to_json`], as SQLite values again.
pub(crate) fn key_from_json(table: &Table, text: &str) -> Result<Vec<Value>, CopyError> {
    let bad = || {
        CopyError::Target(format!(
            "the progress of {} is unreadable: {text}",
            table.name
        ))
    };
    let parts: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|_| bad())?;
    if parts.len() != table.key.len() {
        return Err(bad());
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| match table.key_kind(i) {
            Kind::Text => part.as_str().map(|s| Value::Text(s.into())),
            Kind::Bytes => part.as_str().and_then(unhex).map(Value::Blob),
            _ => part.as_i64().map(Value::Integer),
        })
        .collect::<Option<Vec<Value>>>()
        .ok_or_else(bad)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::tables::TABLES;

    fn table(name: &str) -> &'static Table {
        TABLES.iter().find(|t| t.name == name).expect("table")
    }

    #[test]
    fn keys_round_trip_through_json() {
        let members = table("members");
        let row = vec![Value::Integer(3), Value::Integer(-7), Value::Integer(1)];
        let json = key_to_json(members, &row);
        assert_eq!(json, "[3,-7]");
        let back = key_from_json(members, &json).expect("key");
        assert_eq!(back, vec![Value::Integer(3), Value::Integer(-7)]);
        let sessions = table("sessions");
        let row = vec![Value::Blob(vec![0, 255, 16]), Value::Integer(1)];
        let json = key_to_json(sessions, &row);
        assert_eq!(json, "[\"00ff10\"]");
        assert_eq!(
            key_from_json(sessions, &json).expect("key"),
            vec![Value::Blob(vec![0, 255, 16])]
        );
        assert!(key_from_json(sessions, "[\"0\"]").is_err());
        assert!(key_from_json(members, "[1]").is_err());
    }
}
