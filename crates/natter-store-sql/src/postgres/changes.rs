//! PostgreSQL stream changes: edits, deletes and reactions (`change`), appends that take more
//! than one insert (thread replies, mentions), and a message's versions. Each write is one
//! transaction that first takes the room's next seq with `UPDATE rooms ... RETURNING`, so it
//! holds the room row's lock (as a plain append does): entries of a room commit in seq order,
//! and what it checks (retry, target, reactions) cannot change under it. A refusal, a retry
//! or a reaction already as asked rolls the transaction back: nothing stored, no seq spent.

use super::error::backend;
use super::messages::find_message;
use super::rows::col;
use super::PostgresStore;
use crate::entries::*;
use deadpool_postgres::{GenericClient, Transaction};
use natter_core::files::StoredFile;
use natter_core::model::*;
use natter_core::{Refusal, StoreError};

/// Takes the room's next seq (and its row lock until the transaction ends).
async fn next_seq(tx: &Transaction<'_>, room: RoomId) -> Result<i64, StoreError> {
    let stmt = tx
        .prepare_cached("UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq")
        .await
        .map_err(backend)?;
    let row = tx
        .query_opt(&stmt, &[&room.0])
        .await
        .map_err(backend)?
        .ok_or(StoreError::NotFound)?;
    col(&row, 0)
}

/// The entry at `seq` as a change or a thread reply sees it.
async fn target_state(
    client: &impl GenericClient,
    room: RoomId,
    seq: Seq,
) -> Result<Option<TargetState>, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT kind, thread IS NOT NULL, deleted FROM messages
             WHERE room_id = $1 AND seq = $2",
        )
        .await
        .map_err(backend)?;
    let Some(row) = client
        .query_opt(&stmt, &[&room.0, &seq.0])
        .await
        .map_err(backend)?
    else {
        return Ok(None);
    };
    Ok(Some(TargetState {
        kind: col(&row, 0)?,
        in_thread: col(&row, 1)?,
        deleted: col(&row, 2)?,
    }))
}

/// Ends the transaction of `result`: commits if it stored something (`Ok((value, true))`),
/// else rolls back.
async fn finish<T>(
    tx: Transaction<'_>,
    result: Result<(T, bool), StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok((value, true)) => {
            tx.commit().await.map_err(backend)?;
            Ok(value)
        }
        Ok((value, false)) => {
            tx.rollback().await.map_err(backend)?;
            Ok(value)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

pub(super) async fn change(
    store: &PostgresStore,
    change: NewChange,
) -> Result<ChangeOutcome, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    let seq = next_seq(&tx, change.room).await?;
    let result = apply_change(&tx, change, seq).await;
    finish(tx, result).await
}

/// Stores `c` at `seq` and applies it to its target; the flag says whether it stored.
async fn apply_change(
    tx: &Transaction<'_>,
    c: NewChange,
    seq: i64,
) -> Result<(ChangeOutcome, bool), StoreError> {
    if let Some(existing) = find_message(tx, c.sender.id, c.room, &c.client_id).await? {
        return Ok((ChangeOutcome::Duplicate(existing), false));
    }
    let Some(target) = c.change.target() else {
        return super::moderation::apply_room_event(tx, c, seq).await;
    };
    check_target(target_state(tx, c.room, target).await?)?;
    if matches!(c.change, Change::Delete { .. }) {
        super::moderation::audit_delete(tx, &c, target).await?;
    }
    let mut emoji_order = seq;
    if let Change::React { emoji, add, .. } = &c.change {
        match reaction_place(tx, &c, target, emoji, *add).await? {
            Placed::Unchanged => return Ok((ChangeOutcome::Unchanged, false)),
            Placed::At(order) => emoji_order = order.unwrap_or(seq),
        }
    }
    let body = match c.change {
        Change::Edit { .. } => c.body.clone(),
        _ => String::new(),
    };
    let (kind, _, emoji, add) = change_columns(&c.change);
    let stmt = tx
        .prepare_cached(
            "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at,
                                   kind, target, emoji, reaction_add)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .await
        .map_err(backend)?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &c.room.0,
                &seq,
                &c.sender.id.0,
                &body,
                &c.client_id,
                &c.ts,
                &kind,
                &target.0,
                &emoji,
                &add,
            ],
        )
        .await
        .map_err(backend)?;
    let entry = Message {
        id: MessageId(col(&row, 0)?),
        room: c.room,
        seq: Seq(seq),
        sender: c.sender,
        body,
        ts: c.ts,
        client_id: c.client_id,
        change: Some(c.change),
        ..Message::default()
    };
    apply_to_target(tx, &entry, emoji_order).await?;
    Ok((ChangeOutcome::Applied(entry), true))
}

/// Where a reaction goes: nowhere (already as asked), or at the emoji's order (None: a new
/// emoji, placed at this entry).
enum Placed {
    Unchanged,
    At(Option<i64>),
}

async fn reaction_place(
    tx: &Transaction<'_>,
    c: &NewChange,
    target: Seq,
    emoji: &str,
    add: bool,
) -> Result<Placed, StoreError> {
    let stmt = tx
        .prepare_cached(
            "SELECT COUNT(DISTINCT emoji),
                    MIN(CASE WHEN emoji = $3 THEN emoji_order END),
                    COALESCE(BOOL_OR(emoji = $3 AND user_id = $4), FALSE)
             FROM reactions WHERE room_id = $1 AND seq = $2",
        )
        .await
        .map_err(backend)?;
    let row = tx
        .query_one(&stmt, &[&c.room.0, &target.0, &emoji, &c.sender.id.0])
        .await
        .map_err(backend)?;
    let (distinct, order, has): (i64, Option<i64>, bool) =
        (col(&row, 0)?, col(&row, 1)?, col(&row, 2)?);
    if has == add {
        return Ok(Placed::Unchanged);
    }
    if add && order.is_none() && distinct >= i64::from(c.max_reactions) {
        return Err(StoreError::Refused(Refusal::TooManyReactions));
    }
    Ok(Placed::At(order))
}

/// What `entry` (a change just stored) does to its target.
async fn apply_to_target(
    tx: &Transaction<'_>,
    entry: &Message,
    emoji_order: i64,
) -> Result<(), StoreError> {
    let room = entry.room.0;
    let sender = entry.sender.id.0;
    match &entry.change {
        Some(Change::Edit { target }) => {
            run(
                tx,
                "UPDATE messages SET original_body = COALESCE(original_body, body), body = $3,
                                     edited_at = $4
                 WHERE room_id = $1 AND seq = $2",
                &[&room, &target.0, &entry.body, &entry.ts],
            )
            .await
        }
        Some(Change::Delete { target }) => {
            run(
                tx,
                "UPDATE messages SET body = '', original_body = NULL, deleted = TRUE
                 WHERE room_id = $1 AND seq = $2",
                &[&room, &target.0],
            )
            .await?;
            run(
                tx,
                "UPDATE messages SET body = '' WHERE room_id = $1 AND target = $2 AND kind = 1",
                &[&room, &target.0],
            )
            .await?;
            run(
                tx,
                "DELETE FROM reactions WHERE room_id = $1 AND seq = $2",
                &[&room, &target.0],
            )
            .await?;
            run(
                tx,
                "DELETE FROM message_files WHERE room_id = $1 AND seq = $2",
                &[&room, &target.0],
            )
            .await?;
            run(
                tx,
                "DELETE FROM mentions WHERE room_id = $1 AND seq = $2",
                &[&room, &target.0],
            )
            .await
        }
        Some(Change::React {
            target,
            emoji,
            add: true,
        }) => {
            run(
                tx,
                "INSERT INTO reactions (room_id, seq, emoji, user_id, emoji_order, user_order)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&room, &target.0, emoji, &sender, &emoji_order, &entry.seq.0],
            )
            .await
        }
        Some(Change::React {
            target,
            emoji,
            add: false,
        }) => {
            run(
                tx,
                "DELETE FROM reactions
                 WHERE room_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4",
                &[&room, &target.0, emoji, &sender],
            )
            .await
        }
        // Room events are applied by `moderation::apply_room_event`.
        Some(_) | None => Ok(()),
    }
}

/// Runs one cached statement.
async fn run(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<(), StoreError> {
    let stmt = tx.prepare_cached(sql).await.map_err(backend)?;
    tx.execute(&stmt, params).await.map_err(backend)?;
    Ok(())
}

/// Appends a thread reply or a message with mentions (see the module comment): a retry
/// returns the original; a reply's parent is checked, counts it and takes its time; mentions
/// get their rows.
pub(super) async fn append_with_extras(
    client: &mut deadpool_postgres::Object,
    message: NewMessage,
) -> Result<Appended, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let seq = next_seq(&tx, message.room).await?;
    let result = insert_with_extras(&tx, message, seq).await;
    finish(tx, result).await
}

/// Stores `message` at `seq`; the flag says whether it stored (not a retry).
async fn insert_with_extras(
    tx: &Transaction<'_>,
    message: NewMessage,
    seq: i64,
) -> Result<(Appended, bool), StoreError> {
    let (room, sender) = (message.room, message.sender.id);
    if let Some(existing) = find_message(tx, sender, room, &message.client_id).await? {
        let mut page = [existing];
        super::files::with_files(tx, room, &mut page).await?;
        let [existing] = page;
        let appended = Appended {
            message: existing,
            duplicate: true,
        };
        return Ok((appended, false));
    }
    if message.check_rules {
        let stmt = tx
            .prepare_cached(
                "SELECT r.archived, (SELECT muted_until FROM members
                                      WHERE room_id = r.id AND user_id = $2)
                 FROM rooms r WHERE r.id = $1",
            )
            .await
            .map_err(backend)?;
        let row = tx
            .query_one(&stmt, &[&room.0, &sender.0])
            .await
            .map_err(backend)?;
        check_rules(col(&row, 0)?, col(&row, 1)?, message.ts)?;
    }
    let files = super::files::check_files(tx, sender, &message.files).await?;
    let mut replies = 0i32;
    if let Some(parent) = message.thread {
        check_parent(target_state(tx, room, parent).await?)?;
        let stmt = tx
            .prepare_cached(
                "UPDATE messages SET replies = replies + 1, last_reply_ts = $3
                 WHERE room_id = $1 AND seq = $2 RETURNING replies",
            )
            .await
            .map_err(backend)?;
        let row = tx
            .query_one(&stmt, &[&room.0, &parent.0, &message.ts])
            .await
            .map_err(backend)?;
        replies = col(&row, 0)?;
    }
    let also_room = message.thread.is_some() && message.also_room;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at,
                                   thread, also_room, mentions, mentions_room, replies)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .await
        .map_err(backend)?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &room.0,
                &seq,
                &sender.0,
                &message.body,
                &message.client_id,
                &message.ts,
                &message.thread.map(|s| s.0),
                &also_room,
                &mentions_text(&message.mentions),
                &message.mentions_room,
                &replies,
            ],
        )
        .await
        .map_err(backend)?;
    let id = MessageId(col(&row, 0)?);
    let mentioned = mention_rows(&message);
    if !mentioned.is_empty() {
        run(
            tx,
            "INSERT INTO mentions (room_id, user_id, seq, sender_id)
             SELECT $1, u, $3, $4 FROM unnest($2::BIGINT[]) AS u ON CONFLICT DO NOTHING",
            &[&room.0, &mentioned, &seq, &sender.0],
        )
        .await?;
    }
    super::files::attach(tx, room, seq, &files).await?;
    let stored = Message {
        id,
        room,
        seq: Seq(seq),
        sender: message.sender,
        body: message.body,
        ts: message.ts,
        client_id: message.client_id,
        thread: message.thread,
        also_room,
        mentions: message.mentions,
        mentions_room: message.mentions_room,
        replies: replies.max(0) as u32,
        files: files.iter().map(StoredFile::info).collect(),
        ..Message::default()
    };
    let appended = Appended {
        message: stored,
        duplicate: false,
    };
    Ok((appended, true))
}

pub(super) async fn versions(
    store: &PostgresStore,
    room: RoomId,
    seq: Seq,
) -> Result<Vec<Version>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT COALESCE(original_body, body), created_at, seq FROM messages
             WHERE room_id = $1 AND seq = $2 AND kind = 0 AND NOT deleted
             UNION ALL
             SELECT e.body, e.created_at, e.seq FROM messages e
             WHERE e.room_id = $1 AND e.target = $2 AND e.kind = 1
               AND EXISTS (SELECT 1 FROM messages t WHERE t.room_id = $1 AND t.seq = $2
                                                     AND t.kind = 0 AND NOT t.deleted)
             ORDER BY 3",
        )
        .await
        .map_err(backend)?;
    // The original (at the message's own seq), then each edit (later seqs).
    let rows = client
        .query(&stmt, &[&room.0, &seq.0])
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| {
            Ok(Version {
                body: col(row, 0)?,
                ts: col(row, 1)?,
            })
        })
        .collect()
}
