//! SQLite operators' views (`natter admin`): every user row and every room by id, and the
//! counts of what is stored. Read-only, on the reader pool.

use super::error::backend;
use super::rows::{room_from, user_from, ROOM_COLUMNS, USER_WIDTH};
use super::SqliteStore;
use natter_core::model::*;
use natter_core::store::{StoreCounts, UserRecord};
use natter_core::StoreError;

pub(super) async fn all_users(store: &SqliteStore) -> Result<Vec<UserRecord>, StoreError> {
    store
        .read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, name, guest, bot, created_at, last_active FROM users ORDER BY id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(UserRecord {
                        user: user_from(row, 0)?,
                        created_at: row.get(USER_WIDTH)?,
                        last_active: row.get(USER_WIDTH + 1)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn all_rooms(store: &SqliteStore) -> Result<Vec<Room>, StoreError> {
    store
        .read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {ROOM_COLUMNS} FROM rooms r ORDER BY r.id"))
                .map_err(backend)?;
            let rows = stmt.query_map([], room_from).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

/// One read transaction, so the counts are of one moment.
pub(super) async fn counts(store: &SqliteStore) -> Result<StoreCounts, StoreError> {
    store
        .read(|conn| {
            conn.query_row(
                "SELECT (SELECT COUNT(*) FROM users),
                        (SELECT COUNT(*) FROM users WHERE guest <> 0),
                        (SELECT COUNT(*) FROM rooms),
                        (SELECT COUNT(*) FROM messages WHERE kind = 0),
                        (SELECT COUNT(*) FROM sessions),
                        (SELECT COUNT(*) FROM files),
                        (SELECT COALESCE(SUM(size), 0) FROM files)",
                [],
                |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|n| n.max(0) as u64);
                    Ok(StoreCounts {
                        users: n(0)?,
                        guests: n(1)?,
                        rooms: n(2)?,
                        messages: n(3)?,
                        sessions: n(4)?,
                        files: n(5)?,
                        file_bytes: n(6)?,
                    })
                },
            )
            .map_err(backend)
        })
        .await
}
