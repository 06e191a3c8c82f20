//! SQLite stream changes: edits, deletes and reactions (`change`, a typed job of the writer,
//! which gives it the room's next seq from its cache and keeps the cache, as for appends: a
//! closure job would make the writer re-read every room's seq after it), appends that take
//! more than one insert (thread replies,
//! mentions; run by the writer's typed append in a savepoint of their own), and a message's
//! versions. Every refusal is decided in the transaction that would store the entry, before
//! anything is written, so it spends no seq.

use super::error::backend;
use super::messages::find_message;
use super::SqliteStore;
use crate::entries::*;
use natter_core::files::StoredFile;
use natter_core::model::*;
use natter_core::{Refusal, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

/// The entry at `seq` as a change or a thread reply sees it.
fn target_state(
    conn: &Connection,
    room: RoomId,
    seq: Seq,
) -> Result<Option<TargetState>, StoreError> {
    conn.prepare_cached(
        "SELECT kind, thread IS NOT NULL, deleted FROM messages WHERE room_id = ?1 AND seq = ?2",
    )
    .map_err(backend)?
    .query_row(params![room.0, seq.0], |r| {
        Ok(TargetState {
            kind: r.get(0)?,
            in_thread: r.get(1)?,
            deleted: r.get(2)?,
        })
    })
    .optional()
    .map_err(backend)
}

pub(super) async fn change(
    store: &SqliteStore,
    change: NewChange,
) -> Result<ChangeOutcome, StoreError> {
    let (reply, rx) = tokio::sync::oneshot::channel();
    store.submit(super::writer::WriteJob::Change { change, reply })?;
    rx.await
        .map_err(|_| StoreError::Backend("sqlite writer dropped a job".into()))?
}

/// Stores `c` as the room's entry `seq` (its next: the writer knows it) and applies it to its
/// target (see the module comment). The caller moves the room's seq if it was `Applied`.
pub(super) fn apply_change(
    conn: &Connection,
    c: NewChange,
    seq: i64,
) -> Result<ChangeOutcome, StoreError> {
    if let Some(existing) = find_message(conn, c.sender.id, c.room, &c.client_id)? {
        return Ok(ChangeOutcome::Duplicate(existing));
    }
    let Some(target) = c.change.target() else {
        return super::moderation::apply_room_event(conn, c, seq);
    };
    check_target(target_state(conn, c.room, target)?)?;
    if matches!(c.change, Change::Delete { .. }) {
        super::moderation::audit_delete(conn, &c, target)?;
    }
    // For a reaction added: the emoji's place (its first use, or this entry).
    let mut emoji_order = seq;
    if let Change::React { emoji, add, .. } = &c.change {
        let has: bool = conn
            .prepare_cached(
                "SELECT 1 FROM reactions
                 WHERE room_id = ?1 AND seq = ?2 AND emoji = ?3 AND user_id = ?4",
            )
            .map_err(backend)?
            .exists(params![c.room.0, target.0, emoji, c.sender.id.0])
            .map_err(backend)?;
        if has == *add {
            return Ok(ChangeOutcome::Unchanged);
        }
        if *add {
            let (distinct, order): (i64, Option<i64>) = conn
                .prepare_cached(
                    "SELECT COUNT(DISTINCT emoji), MIN(CASE WHEN emoji = ?3 THEN emoji_order END)
                     FROM reactions WHERE room_id = ?1 AND seq = ?2",
                )
                .map_err(backend)?
                .query_row(params![c.room.0, target.0, emoji], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(backend)?;
            match order {
                Some(order) => emoji_order = order,
                None if distinct >= i64::from(c.max_reactions) => {
                    return Err(StoreError::Refused(Refusal::TooManyReactions));
                }
                None => {}
            }
        }
    }
    let body = match c.change {
        Change::Edit { .. } => c.body.clone(),
        _ => String::new(),
    };
    let (kind, _, emoji, add) = change_columns(&c.change);
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at,
                                   kind, target, emoji, reaction_add)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        )
        .map_err(backend)?
        .query_row(
            params![
                c.room.0,
                seq,
                c.sender.id.0,
                body,
                c.client_id,
                c.ts,
                kind,
                target.0,
                emoji,
                add
            ],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let entry = Message {
        id: MessageId(id),
        room: c.room,
        seq: Seq(seq),
        sender: c.sender,
        body,
        ts: c.ts,
        client_id: c.client_id,
        change: Some(c.change),
        ..Message::default()
    };
    apply_to_target(conn, &entry, emoji_order)?;
    Ok(ChangeOutcome::Applied(entry))
}

/// What `entry` (a change just stored) does to its target.
fn apply_to_target(conn: &Connection, entry: &Message, emoji_order: i64) -> Result<(), StoreError> {
    let room = entry.room.0;
    let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Result<(), StoreError> {
        conn.prepare_cached(sql)
            .map_err(backend)?
            .execute(params)
            .map_err(backend)
            .map(|_| ())
    };
    match &entry.change {
        Some(Change::Edit { target }) => run(
            "UPDATE messages SET original_body = COALESCE(original_body, body), body = ?3,
                                 edited_at = ?4
             WHERE room_id = ?1 AND seq = ?2",
            params![room, target.0, entry.body, entry.ts],
        ),
        Some(Change::Delete { target }) => {
            run(
                "UPDATE messages SET body = '', original_body = NULL, deleted = 1
                 WHERE room_id = ?1 AND seq = ?2",
                params![room, target.0],
            )?;
            run(
                "UPDATE messages SET body = '' WHERE room_id = ?1 AND target = ?2 AND kind = 1",
                params![room, target.0],
            )?;
            run(
                "DELETE FROM reactions WHERE room_id = ?1 AND seq = ?2",
                params![room, target.0],
            )?;
            run(
                "DELETE FROM message_files WHERE room_id = ?1 AND seq = ?2",
                params![room, target.0],
            )?;
            run(
                "DELETE FROM mentions WHERE room_id = ?1 AND seq = ?2",
                params![room, target.0],
            )
        }
        Some(Change::React {
            target,
            emoji,
            add: true,
        }) => run(
            "INSERT INTO reactions (room_id, seq, emoji, user_id, emoji_order, user_order)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                room,
                target.0,
                emoji,
                entry.sender.id.0,
                emoji_order,
                entry.seq.0
            ],
        ),
        Some(Change::React {
            target,
            emoji,
            add: false,
        }) => run(
            "DELETE FROM reactions WHERE room_id = ?1 AND seq = ?2 AND emoji = ?3 AND user_id = ?4",
            params![room, target.0, emoji, entry.sender.id.0],
        ),
        // Room events are applied by `moderation::apply_room_event`.
        Some(_) | None => Ok(()),
    }
}

/// Appends a thread reply or a message with mentions at `seq` (the room's next): a retry
/// returns the original; a reply's parent is checked (refusals write nothing), counts it and
/// takes its time; mentions get their rows. The caller runs it in a savepoint, rolled back
/// if this fails.
pub(super) fn append_with_extras(
    conn: &Connection,
    seq: Seq,
    message: NewMessage,
) -> Result<Appended, StoreError> {
    if let Some(existing) = find_message(conn, message.sender.id, message.room, &message.client_id)?
    {
        let mut page = [existing];
        super::files::with_files(conn, message.room, &mut page)?;
        let [existing] = page;
        return Ok(Appended {
            message: existing,
            duplicate: true,
        });
    }
    if message.check_rules {
        let (archived, muted_until): (bool, Option<i64>) = conn
            .prepare_cached(
                "SELECT r.archived, (SELECT muted_until FROM members
                                      WHERE room_id = r.id AND user_id = ?2)
                 FROM rooms r WHERE r.id = ?1",
            )
            .map_err(backend)?
            .query_row(params![message.room.0, message.sender.id.0], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(backend)?;
        check_rules(archived, muted_until, message.ts)?;
    }
    let files = super::files::check_files(conn, message.sender.id, &message.files)?;
    let mut replies = 0u32;
    if let Some(parent) = message.thread {
        check_parent(target_state(conn, message.room, parent)?)?;
        let count: i64 = conn
            .prepare_cached(
                "UPDATE messages SET replies = replies + 1, last_reply_ts = ?3
                 WHERE room_id = ?1 AND seq = ?2 RETURNING replies",
            )
            .map_err(backend)?
            .query_row(params![message.room.0, parent.0, message.ts], |r| r.get(0))
            .map_err(backend)?;
        replies = count.max(0) as u32;
    }
    let also_room = message.thread.is_some() && message.also_room;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at,
                                   thread, also_room, mentions, mentions_room, replies)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
        )
        .map_err(backend)?
        .query_row(
            params![
                message.room.0,
                seq.0,
                message.sender.id.0,
                message.body,
                message.client_id,
                message.ts,
                message.thread.map(|s| s.0),
                also_room,
                mentions_text(&message.mentions),
                message.mentions_room,
                replies
            ],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO mentions (room_id, user_id, seq, sender_id)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(backend)?;
    for user in mention_rows(&message) {
        insert
            .execute(params![message.room.0, user, seq.0, message.sender.id.0])
            .map_err(backend)?;
    }
    super::files::attach(conn, message.room, seq, &files)?;
    Ok(Appended {
        message: Message {
            id: MessageId(id),
            room: message.room,
            seq,
            sender: message.sender,
            body: message.body,
            ts: message.ts,
            client_id: message.client_id,
            thread: message.thread,
            also_room,
            mentions: message.mentions,
            mentions_room: message.mentions_room,
            replies,
            files: files.iter().map(StoredFile::info).collect(),
            ..Message::default()
        },
        duplicate: false,
    })
}

pub(super) async fn versions(
    store: &SqliteStore,
    room: RoomId,
    seq: Seq,
) -> Result<Vec<Version>, StoreError> {
    store
        .read(move |conn| {
            let first = conn
                .prepare_cached(
                    "SELECT COALESCE(original_body, body), created_at FROM messages
                     WHERE room_id = ?1 AND seq = ?2 AND kind = 0 AND deleted = 0",
                )
                .map_err(backend)?
                .query_row(params![room.0, seq.0], |r| {
                    Ok(Version {
                        body: r.get(0)?,
                        ts: r.get(1)?,
                    })
                })
                .optional()
                .map_err(backend)?;
            let Some(first) = first else {
                return Ok(Vec::new());
            };
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body, created_at FROM messages
                     WHERE room_id = ?1 AND target = ?2 AND kind = 1 ORDER BY seq",
                )
                .map_err(backend)?;
            let edits = stmt
                .query_map(params![room.0, seq.0], |r| {
                    Ok(Version {
                        body: r.get(0)?,
                        ts: r.get(1)?,
                    })
                })
                .map_err(backend)?;
            let mut out = vec![first];
            for edit in edits {
                out.push(edit.map_err(backend)?);
            }
            Ok(out)
        })
        .await
}
