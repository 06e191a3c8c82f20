//! PostgreSQL file records: uploads (`files`), which messages carry them (`message_files`,
//! written in the append's transaction and emptied by the delete's), giving pages their
//! files, the sweep, and the server secrets every node shares.

use super::error::backend;
use super::rows::col;
use super::PostgresStore;
use crate::file_rows::{attach_files, hashes_of, FileRow, FILE_COLUMNS};
use deadpool_postgres::GenericClient;
use natter_core::files::{ContentHash, FileId, StoredFile};
use natter_core::model::*;
use natter_core::{Refusal, StoreError};
use tokio_postgres::Row;

fn file_from(row: &Row, at: usize) -> Result<StoredFile, StoreError> {
    FileRow {
        id: col(row, at)?,
        owner: col(row, at + 1)?,
        name: col(row, at + 2)?,
        size: col(row, at + 3)?,
        kind: col(row, at + 4)?,
        width: col::<Option<i32>>(row, at + 5)?.map(i64::from),
        height: col::<Option<i32>>(row, at + 6)?.map(i64::from),
        hash: col(row, at + 7)?,
        thumb_hash: col(row, at + 8)?,
        created_at: col(row, at + 9)?,
    }
    .into_file()
    .map_err(StoreError::Backend)
}

async fn one_file(
    client: &impl GenericClient,
    id: &FileId,
) -> Result<Option<StoredFile>, StoreError> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.id = $1");
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    client
        .query_opt(&stmt, &[&id.as_str()])
        .await
        .map_err(backend)?
        .map(|r| file_from(&r, 0))
        .transpose()
}

/// The files `sender` attaches, in order; `UnknownFile` unless each is their own upload.
pub(super) async fn check_files(
    client: &impl GenericClient,
    sender: UserId,
    ids: &[FileId],
) -> Result<Vec<StoredFile>, StoreError> {
    let mut files = Vec::with_capacity(ids.len());
    for id in ids {
        match one_file(client, id).await? {
            Some(f) if f.owner == sender => files.push(f),
            _ => return Err(StoreError::Refused(Refusal::UnknownFile)),
        }
    }
    Ok(files)
}

/// Records that the message at (room, seq) carries `files`, and that they were posted.
pub(super) async fn attach(
    client: &impl GenericClient,
    room: RoomId,
    seq: i64,
    files: &[StoredFile],
) -> Result<(), StoreError> {
    if files.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = files.iter().map(|f| f.id.as_str()).collect();
    let stmt = client
        .prepare_cached(
            "INSERT INTO message_files (room_id, seq, n, file_id)
             SELECT $1, $2, (t.n - 1)::INTEGER, t.id FROM unnest($3::TEXT[]) WITH ORDINALITY AS t(id, n)",
        )
        .await
        .map_err(backend)?;
    client
        .execute(&stmt, &[&room.0, &seq, &ids])
        .await
        .map_err(backend)?;
    let stmt = client
        .prepare_cached("UPDATE files SET posted = TRUE WHERE id = ANY($1)")
        .await
        .map_err(backend)?;
    client.execute(&stmt, &[&ids]).await.map_err(backend)?;
    Ok(())
}

/// Fills in the files of a page with one query for its seqs.
pub(super) async fn with_files(
    client: &impl GenericClient,
    room: RoomId,
    page: &mut [Message],
) -> Result<(), StoreError> {
    if page.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = page.iter().map(|m| m.seq.0).collect();
    let sql = format!(
        "SELECT mf.seq, {FILE_COLUMNS} FROM message_files mf JOIN files f ON f.id = mf.file_id
         WHERE mf.room_id = $1 AND mf.seq = ANY($2) ORDER BY mf.seq, mf.n"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client
        .query(&stmt, &[&room.0, &seqs])
        .await
        .map_err(backend)?;
    let rows = rows
        .iter()
        .map(|r| Ok((Seq(col(r, 0)?), file_from(r, 1)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    attach_files(page, rows);
    Ok(())
}

pub(super) async fn create_file(store: &PostgresStore, f: StoredFile) -> Result<(), StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO files (id, owner_id, name, size, type, width, height, hash, thumb_hash,
                                created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(backend)?;
    let n = client
        .execute(
            &stmt,
            &[
                &f.id.as_str(),
                &f.owner.0,
                &f.name,
                &(f.size as i64),
                &f.kind,
                &f.width.map(|w| w as i32),
                &f.height.map(|h| h as i32),
                &f.hash.as_str(),
                &f.thumb_hash.as_ref().map(|h| h.as_str()),
                &f.created_at,
            ],
        )
        .await
        .map_err(backend)?;
    if n == 0 {
        return Err(StoreError::Conflict("file id taken".into()));
    }
    Ok(())
}

pub(super) async fn file(
    store: &PostgresStore,
    id: &FileId,
) -> Result<Option<StoredFile>, StoreError> {
    let client = store.client().await?;
    one_file(&client, id).await
}

pub(super) async fn files(
    store: &PostgresStore,
    ids: &[FileId],
) -> Result<Vec<StoredFile>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = ids.iter().map(FileId::as_str).collect();
    let client = store.client().await?;
    let sql = format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.id = ANY($1)");
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    client
        .query(&stmt, &[&ids])
        .await
        .map_err(backend)?
        .iter()
        .map(|r| file_from(r, 0))
        .collect()
}

pub(super) async fn file_bytes_of(store: &PostgresStore, owner: UserId) -> Result<u64, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("SELECT COALESCE(SUM(size), 0)::BIGINT FROM files WHERE owner_id = $1")
        .await
        .map_err(backend)?;
    let row = client
        .query_one(&stmt, &[&owner.0])
        .await
        .map_err(backend)?;
    Ok(col::<i64>(&row, 0)?.max(0) as u64)
}

pub(super) async fn file_rooms(
    store: &PostgresStore,
    id: &FileId,
) -> Result<Vec<RoomId>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT DISTINCT room_id FROM message_files WHERE file_id = $1 ORDER BY room_id",
        )
        .await
        .map_err(backend)?;
    let rows = client
        .query(&stmt, &[&id.as_str()])
        .await
        .map_err(backend)?;
    rows.iter().map(|r| Ok(RoomId(col(r, 0)?))).collect()
}

async fn hash_used(client: &impl GenericClient, hash: &ContentHash) -> Result<bool, StoreError> {
    let stmt = client
        .prepare_cached("SELECT 1 FROM files WHERE hash = $1 OR thumb_hash = $1 LIMIT 1")
        .await
        .map_err(backend)?;
    Ok(client
        .query_opt(&stmt, &[&hash.as_str()])
        .await
        .map_err(backend)?
        .is_some())
}

pub(super) async fn sweep_files(
    store: &PostgresStore,
    unposted_before: Millis,
) -> Result<Vec<ContentHash>, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    let sql = format!(
        "DELETE FROM files f
         WHERE (f.posted OR f.created_at < $1)
           AND NOT EXISTS (SELECT 1 FROM message_files mf WHERE mf.file_id = f.id)
           AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar = f.id)
         RETURNING {FILE_COLUMNS}"
    );
    let stmt = tx.prepare_cached(&sql).await.map_err(backend)?;
    let doomed = tx
        .query(&stmt, &[&unposted_before])
        .await
        .map_err(backend)?
        .iter()
        .map(|r| file_from(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut freed = Vec::new();
    for hash in hashes_of(&doomed) {
        if !hash_used(&tx, &hash).await? {
            freed.push(hash);
        }
    }
    tx.commit().await.map_err(backend)?;
    Ok(freed)
}

pub(super) async fn hash_in_use(
    store: &PostgresStore,
    hash: &ContentHash,
) -> Result<bool, StoreError> {
    let client = store.client().await?;
    hash_used(&client, hash).await
}

pub(super) async fn server_secret(
    store: &PostgresStore,
    name: &str,
    candidate: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .await
        .map_err(backend)?;
    client
        .execute(&stmt, &[&name, &candidate])
        .await
        .map_err(backend)?;
    let stmt = client
        .prepare_cached("SELECT value FROM server_secrets WHERE name = $1")
        .await
        .map_err(backend)?;
    let row = client.query_one(&stmt, &[&name]).await.map_err(backend)?;
    col(&row, 0)
}
