//! SQLite messages: `append` (a typed job the writer runs in its group commit; see
//! `writer`), finding a retried entry by client id, the stream after a seq (entries as
//! stored, the catch-up path), and history: pages of a room's timeline or of a thread, and
//! single messages, in their current state with their reactions; every read gives each
//! message its files.

use super::error::backend;
use super::rows::{message_from, reaction_from, MESSAGE_COLUMNS};
use super::writer::WriteJob;
use super::SqliteStore;
use crate::entries::attach_reactions;
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
            let mut entries = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            super::files::with_files(conn, room, &mut entries)?;
            Ok(entries)
        })
        .await
}

/// The page's filter for `scope` (`?4` is the thread's parent seq).
fn scope_filter(scope: Scope) -> &'static str {
    match scope {
        Scope::Room => "m.kind = 0 AND (m.thread IS NULL OR m.also_room = 1)",
        Scope::RoomAndEvents => {
            "(m.kind = 4 OR (m.kind = 0 AND (m.thread IS NULL OR m.also_room = 1)))"
        }
        Scope::Thread(_) => "m.kind = 0 AND m.thread = ?4",
    }
}

pub(super) async fn message_page(
    store: &SqliteStore,
    room: RoomId,
    scope: Scope,
    before: Option<Seq>,
    after: Option<Seq>,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let parent = match scope {
        Scope::Room | Scope::RoomAndEvents => None,
        Scope::Thread(p) => Some(p.0),
    };
    let filter = scope_filter(scope);
    store
        .read(move |conn| {
            let (sql, bound, newest_first) = match after {
                Some(after) => (
                    format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
                         WHERE m.room_id = ?1 AND m.seq > ?2 AND {filter}
                         ORDER BY m.seq LIMIT ?3"
                    ),
                    after.0,
                    false,
                ),
                None => (
                    format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
                         WHERE m.room_id = ?1 AND m.seq < ?2 AND {filter}
                         ORDER BY m.seq DESC LIMIT ?3"
                    ),
                    before.map_or(i64::MAX, |s| s.0),
                    true,
                ),
            };
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = match parent {
                Some(p) => stmt.query_map(params![room.0, bound, limit, p], message_from),
                None => stmt.query_map(params![room.0, bound, limit], message_from),
            }
            .map_err(backend)?;
            let mut page = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            if newest_first {
                page.reverse();
            }
            with_reactions(conn, room, &mut page)?;
            super::files::with_files(conn, room, &mut page)?;
            Ok(page)
        })
        .await
}

pub(super) async fn message(
    store: &SqliteStore,
    room: RoomId,
    seq: Seq,
) -> Result<Option<Message>, StoreError> {
    store
        .read(move |conn| {
            let found = conn
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
                     WHERE m.room_id = ?1 AND m.seq = ?2 AND m.kind = 0"
                ))
                .map_err(backend)?
                .query_row(params![room.0, seq.0], message_from)
                .optional()
                .map_err(backend)?;
            let mut page: Vec<Message> = found.into_iter().collect();
            with_reactions(conn, room, &mut page)?;
            super::files::with_files(conn, room, &mut page)?;
            Ok(page.pop())
        })
        .await
}

/// Fills in the reactions of a page (ascending seqs) with one query over its seq range.
fn with_reactions(conn: &Connection, room: RoomId, page: &mut [Message]) -> Result<(), StoreError> {
    let (Some(first), Some(last)) = (page.first(), page.last()) else {
        return Ok(());
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.seq, r.emoji, u.id, u.name, u.guest, u.bot
             FROM reactions r JOIN users u ON u.id = r.user_id
             WHERE r.room_id = ?1 AND r.seq BETWEEN ?2 AND ?3
             ORDER BY r.seq, r.emoji_order, r.user_order",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![room.0, first.seq.0, last.seq.0], reaction_from)
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    attach_reactions(page, rows);
    Ok(())
}
