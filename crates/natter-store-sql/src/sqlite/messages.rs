//! SQLite messages: `append` (a typed job the writer runs in its group commit; see
//! `writer`), finding a retried message by client id, and history before or after a seq.

use super::error::backend;
use super::rows::{message_from, MESSAGE_COLUMNS};
use super::writer::WriteJob;
use super::SqliteStore;
use natter_core::model::*;
use natter_core::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

pub(super) fn find_message(
    conn: &Connection,
    sender: UserId,
    room: RoomId,
    client_id: &str,
) -> Result<Option<Message>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE m.sender_id = ?1 AND m.room_id = ?2 AND m.client_id = ?3"
    ))
    .map_err(backend)?
    .query_row(params![sender.0, room.0, client_id], message_from)
    .optional()
    .map_err(backend)
}

pub(super) async fn append(
    store: &SqliteStore,
    message: NewMessage,
) -> Result<Appended, StoreError> {
    let (reply, rx) = oneshot::channel();
    store.submit(WriteJob::Append { message, reply })?;
    rx.await
        .map_err(|_| StoreError::Backend("sqlite writer dropped a job".into()))?
}

pub(super) async fn messages_after(
    store: &SqliteStore,
    room: RoomId,
    after: Seq,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
                     WHERE m.room_id = ?1 AND m.seq > ?2 ORDER BY m.seq LIMIT ?3"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![room.0, after.0, limit], message_from)
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn messages_before(
    store: &SqliteStore,
    room: RoomId,
    before: Option<Seq>,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let before = before.map_or(i64::MAX, |s| s.0);
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
                     WHERE m.room_id = ?1 AND m.seq < ?2 ORDER BY m.seq DESC LIMIT ?3"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![room.0, before, limit], message_from)
                .map_err(backend)?;
            let mut out = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            out.reverse();
            Ok(out)
        })
        .await
}
