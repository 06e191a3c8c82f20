//! PostgreSQL operators' views (`natter admin`): every user row and every room by id, and the
//! counts of what is stored.

use super::error::backend;
use super::rows::{col, room_from, user_from, ROOM_COLUMNS, USER_WIDTH};
use super::PostgresStore;
use natter_core::model::*;
use natter_core::store::{StoreCounts, UserRecord};
use natter_core::StoreError;

pub(super) async fn all_users(store: &PostgresStore) -> Result<Vec<UserRecord>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT id, name, guest, bot, created_at, last_active FROM users ORDER BY id",
        )
        .await
        .map_err(backend)?;
    let rows = client.query(&stmt, &[]).await.map_err(backend)?;
    rows.iter()
        .map(|row| {
            Ok(UserRecord {
                user: user_from(row, 0)?,
                created_at: col(row, USER_WIDTH)?,
                last_active: col(row, USER_WIDTH + 1)?,
            })
        })
        .collect()
}

pub(super) async fn all_rooms(store: &PostgresStore) -> Result<Vec<Room>, StoreError> {
    let client = store.client().await?;
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r ORDER BY r.id");
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client.query(&stmt, &[]).await.map_err(backend)?;
    rows.iter().map(room_from).collect()
}

/// One statement, so the counts are of one snapshot.
pub(super) async fn counts(store: &PostgresStore) -> Result<StoreCounts, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM users),
                    (SELECT COUNT(*) FROM users WHERE guest),
                    (SELECT COUNT(*) FROM rooms),
                    (SELECT COUNT(*) FROM messages WHERE kind = 0),
                    (SELECT COUNT(*) FROM sessions),
                    (SELECT COUNT(*) FROM files),
                    (SELECT COALESCE(SUM(size), 0)::BIGINT FROM files)",
        )
        .await
        .map_err(backend)?;
    let row = client.query_one(&stmt, &[]).await.map_err(backend)?;
    let n = |i: usize| col::<i64>(&row, i).map(|n| n.max(0) as u64);
    Ok(StoreCounts {
        users: n(0)?,
        guests: n(1)?,
        rooms: n(2)?,
        messages: n(3)?,
        sessions: n(4)?,
        files: n(5)?,
        file_bytes: n(6)?,
    })
}
