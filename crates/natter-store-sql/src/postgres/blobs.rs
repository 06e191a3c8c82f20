//! `PostgresFileStore`: uploads' bytes in the database, `file_chunks(hash, n, data)` with
//! `CHUNK_BYTES` a row, so every node serves every file. A blob is put in one transaction
//! (whole or not at all); it is read one chunk per query, so a download holds no connection
//! between chunks and never more than one chunk in memory.

use super::error::backend;
use super::rows::col;
use super::PostgresStore;
use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use natter_core::files::{Blob, ContentHash, FileStore};
use natter_core::StoreError;
use std::path::Path;
use tokio::io::AsyncReadExt;

/// Bytes per `file_chunks` row.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Blobs in the PostgreSQL database of a `PostgresStore` (sharing its connection pool).
#[derive(Clone)]
pub struct PostgresFileStore {
    pool: Pool,
}

impl PostgresStore {
    /// The blob store of this database, on the same connection pool.
    pub fn file_store(&self) -> PostgresFileStore {
        PostgresFileStore {
            pool: self.pool.clone(),
        }
    }
}

impl PostgresFileStore {
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    /// Chunk `n` of a blob, if there is one.
    async fn chunk(&self, hash: &ContentHash, n: i32) -> Result<Option<Bytes>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT data FROM file_chunks WHERE hash = $1 AND n = $2")
            .await
            .map_err(backend)?;
        let row = client
            .query_opt(&stmt, &[&hash.as_str(), &n])
            .await
            .map_err(backend)?;
        row.map(|r| col::<Vec<u8>>(&r, 0).map(Bytes::from))
            .transpose()
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("file store: {e}"))
}

#[async_trait]
impl FileStore for PostgresFileStore {
    async fn put(&self, hash: &ContentHash, from: &Path) -> Result<(), StoreError> {
        let mut file = tokio::fs::File::open(from).await.map_err(io)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // Concurrent puts of one hash: the first to take this lock writes, the others find it.
        let lock = tx
            .prepare_cached("SELECT pg_advisory_xact_lock(hashtext($1))")
            .await
            .map_err(backend)?;
        tx.execute(&lock, &[&hash.as_str()])
            .await
            .map_err(backend)?;
        let there = tx
            .prepare_cached("SELECT 1 FROM file_chunks WHERE hash = $1 AND n = 0")
            .await
            .map_err(backend)?;
        if tx
            .query_opt(&there, &[&hash.as_str()])
            .await
            .map_err(backend)?
            .is_some()
        {
            return tx.rollback().await.map_err(backend);
        }
        let insert = tx
            .prepare_cached("INSERT INTO file_chunks (hash, n, data) VALUES ($1, $2, $3)")
            .await
            .map_err(backend)?;
        let mut n = 0i32;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK_BYTES);
            (&mut file)
                .take(CHUNK_BYTES as u64)
                .read_to_end(&mut chunk)
                .await
                .map_err(io)?;
            // Chunk 0 is written even for an empty blob: it marks the blob as there.
            if chunk.is_empty() && n > 0 {
                break;
            }
            let last = chunk.len() < CHUNK_BYTES;
            tx.execute(&insert, &[&hash.as_str(), &n, &chunk])
                .await
                .map_err(backend)?;
            n += 1;
            if last {
                break;
            }
        }
        tx.commit().await.map_err(backend)
    }

    async fn open(&self, hash: &ContentHash) -> Result<Option<Blob>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT COALESCE(SUM(octet_length(data)), 0)::BIGINT, COUNT(*)
                 FROM file_chunks WHERE hash = $1",
            )
            .await
            .map_err(backend)?;
        let row = client
            .query_one(&stmt, &[&hash.as_str()])
            .await
            .map_err(backend)?;
        let (size, chunks): (i64, i64) = (col(&row, 0)?, col(&row, 1)?);
        drop(client);
        if chunks == 0 {
            return Ok(None);
        }
        let store = self.clone();
        let hash = hash.clone();
        let stream = futures_util::stream::iter(0..chunks)
            .then(move |n| {
                let (store, hash) = (store.clone(), hash.clone());
                async move {
                    let n = i32::try_from(n).map_err(|e| StoreError::Backend(e.to_string()))?;
                    store
                        .chunk(&hash, n)
                        .await?
                        .ok_or_else(|| StoreError::Backend("a blob lost a chunk".into()))
                }
            })
            .filter(|c| futures_util::future::ready(!matches!(c, Ok(b) if b.is_empty())));
        Ok(Some(Blob {
            size: size.max(0) as u64,
            chunks: stream.boxed(),
        }))
    }

    async fn delete(&self, hash: &ContentHash) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM file_chunks WHERE hash = $1")
            .await
            .map_err(backend)?;
        client
            .execute(&stmt, &[&hash.as_str()])
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn exists(&self, hash: &ContentHash) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT 1 FROM file_chunks WHERE hash = $1 AND n = 0")
            .await
            .map_err(backend)?;
        Ok(client
            .query_opt(&stmt, &[&hash.as_str()])
            .await
            .map_err(backend)?
            .is_some())
    }
}
