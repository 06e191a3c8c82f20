//! SQLite file records: uploads (`files`), which messages carry them (`message_files`, written
//! by the append that stores the message and emptied by its delete), giving pages their files,
//! the sweep, and the shared server secrets.

use super::error::backend;
use super::SqliteStore;
use crate::file_rows::{hashes_of, FileRow, FILE_COLUMNS};
use natter_core::files::{ContentHash, FileId, StoredFile};
use natter_core::model::*;
use natter_core::{Refusal, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};

fn file_from(row: &Row<'_>, at: usize) -> rusqlite::Result<StoredFile> {
    FileRow {
        id: row.get(at)?,
        owner: row.get(at + 1)?,
        name: row.get(at + 2)?,
        size: row.get(at + 3)?,
        kind: row.get(at + 4)?,
        width: row.get(at + 5)?,
        height: row.get(at + 6)?,
        hash: row.get(at + 7)?,
        thumb_hash: row.get(at + 8)?,
        created_at: row.get(at + 9)?,
    }
    .into_file()
    .map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Text, e.into())
    })
}

fn one_file(conn: &Connection, id: &FileId) -> Result<Option<StoredFile>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM files f WHERE f.id = ?1"
    ))
    .map_err(backend)?
    .query_row([id.as_str()], |r| file_from(r, 0))
    .optional()
    .map_err(backend)
}

/// The files `sender` attaches, in order; `UnknownFile` unless each is their own upload.
pub(super) fn check_files(
    conn: &Connection,
    sender: UserId,
    ids: &[FileId],
) -> Result<Vec<StoredFile>, StoreError> {
    ids.iter()
        .map(|id| match one_file(conn, id)? {
            Some(f) if f.owner == sender => Ok(f),
            _ => Err(StoreError::Refused(Refusal::UnknownFile)),
        })
        .collect()
}

/// Records that the message at (room, seq) carries `files`, and that they were posted.
pub(super) fn attach(
    conn: &Connection,
    room: RoomId,
    seq: Seq,
    files: &[StoredFile],
) -> Result<(), StoreError> {
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO message_files (room_id, seq, n, file_id) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(backend)?;
    let mut posted = conn
        .prepare_cached("UPDATE files SET posted = 1 WHERE id = ?1")
        .map_err(backend)?;
    for (n, f) in files.iter().enumerate() {
        insert
            .execute(params![room.0, seq.0, n as i64, f.id.as_str()])
            .map_err(backend)?;
        posted.execute([f.id.as_str()]).map_err(backend)?;
    }
    Ok(())
}

/// Fills in the files of a page (ascending seqs) with one query over its seq range.
pub(super) fn with_files(
    conn: &Connection,
    room: RoomId,
    page: &mut [Message],
) -> Result<(), StoreError> {
    let (Some(first), Some(last)) = (page.first(), page.last()) else {
        return Ok(());
    };
    let rows = conn
        .prepare_cached(&format!(
            "SELECT mf.seq, {FILE_COLUMNS} FROM message_files mf JOIN files f ON f.id = mf.file_id
             WHERE mf.room_id = ?1 AND mf.seq BETWEEN ?2 AND ?3 ORDER BY mf.seq, mf.n"
        ))
        .map_err(backend)?
        .query_map(params![room.0, first.seq.0, last.seq.0], |r| {
            Ok((Seq(r.get(0)?), file_from(r, 1)?))
        })
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    crate::file_rows::attach_files(page, rows);
    Ok(())
}

pub(super) async fn create_file(store: &SqliteStore, f: StoredFile) -> Result<(), StoreError> {
    store
        .write(move |conn| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO files (id, owner_id, name, size, type, width, height, hash,
                                        thumb_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
                )
                .map_err(backend)?
                .execute(params![
                    f.id.as_str(),
                    f.owner.0,
                    f.name,
                    f.size as i64,
                    f.kind,
                    f.width,
                    f.height,
                    f.hash.as_str(),
                    f.thumb_hash.as_ref().map(|h| h.as_str().to_string()),
                    f.created_at
                ])
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict("file id taken".into()));
            }
            Ok(())
        })
        .await
}

pub(super) async fn file(
    store: &SqliteStore,
    id: &FileId,
) -> Result<Option<StoredFile>, StoreError> {
    let id = id.clone();
    store.read(move |conn| one_file(conn, &id)).await
}

pub(super) async fn files(
    store: &SqliteStore,
    ids: &[FileId],
) -> Result<Vec<StoredFile>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = ids.iter().map(FileId::as_str).collect();
    let ids = serde_json::to_string(&ids).map_err(|e| StoreError::Backend(e.to_string()))?;
    store
        .read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {FILE_COLUMNS} FROM files f
                 WHERE f.id IN (SELECT value FROM json_each(?1))"
            ))
            .map_err(backend)?
            .query_map([ids], |r| file_from(r, 0))
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)
        })
        .await
}

pub(super) async fn file_bytes_of(store: &SqliteStore, owner: UserId) -> Result<u64, StoreError> {
    store
        .read(move |conn| {
            let total: i64 = conn
                .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM files WHERE owner_id = ?1")
                .map_err(backend)?
                .query_row([owner.0], |r| r.get(0))
                .map_err(backend)?;
            Ok(total.max(0) as u64)
        })
        .await
}

pub(super) async fn file_rooms(
    store: &SqliteStore,
    id: &FileId,
) -> Result<Vec<RoomId>, StoreError> {
    let id = id.clone();
    store
        .read(move |conn| {
            conn.prepare_cached(
                "SELECT DISTINCT room_id FROM message_files WHERE file_id = ?1 ORDER BY room_id",
            )
            .map_err(backend)?
            .query_map([id.as_str()], |r| Ok(RoomId(r.get(0)?)))
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)
        })
        .await
}

fn hash_used(conn: &Connection, hash: &ContentHash) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM files WHERE hash = ?1 OR thumb_hash = ?1 LIMIT 1")
        .map_err(backend)?
        .exists([hash.as_str()])
        .map_err(backend)
}

pub(super) async fn sweep_files(
    store: &SqliteStore,
    unposted_before: Millis,
) -> Result<Vec<ContentHash>, StoreError> {
    store
        .write(move |conn| {
            let doomed = conn
                .prepare_cached(&format!(
                    "SELECT {FILE_COLUMNS} FROM files f
                     WHERE (f.posted = 1 OR f.created_at < ?1)
                       AND NOT EXISTS (SELECT 1 FROM message_files mf WHERE mf.file_id = f.id)
                       AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar = f.id)"
                ))
                .map_err(backend)?
                .query_map([unposted_before], |r| file_from(r, 0))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            let mut delete = conn
                .prepare_cached("DELETE FROM files WHERE id = ?1")
                .map_err(backend)?;
            for f in &doomed {
                delete.execute([f.id.as_str()]).map_err(backend)?;
            }
            let mut freed = Vec::new();
            for hash in hashes_of(&doomed) {
                if !hash_used(conn, &hash)? {
                    freed.push(hash);
                }
            }
            Ok(freed)
        })
        .await
}

pub(super) async fn hash_in_use(
    store: &SqliteStore,
    hash: &ContentHash,
) -> Result<bool, StoreError> {
    let hash = hash.clone();
    store.read(move |conn| hash_used(conn, &hash)).await
}

pub(super) async fn server_secret(
    store: &SqliteStore,
    name: &str,
    candidate: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let (name, candidate) = (name.to_string(), candidate.to_vec());
    store
        .write(move |conn| {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO server_secrets (name, value) VALUES (?1, ?2)",
            )
            .map_err(backend)?
            .execute(params![name, candidate])
            .map_err(backend)?;
            conn.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")
                .map_err(backend)?
                .query_row([name], |r| r.get(0))
                .map_err(backend)
        })
        .await
}
