//! The columns PostgreSQL queries select for users, rooms and messages, and the model values
//! their rows map to. Columns are read with `try_get`: a column whose type is not the one
//! expected (a schema that drifted from the code) is a `StoreError::Backend`, not a panic.

use super::error::backend;
use crate::entries::{change_from, fill_room_event, mentions_from};
use natter_core::model::*;
use natter_core::StoreError;
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

/// Column `at` of `row` as a `T`; a type mismatch (or a missing column) is a backend error.
pub(super) fn col<'a, T: FromSql<'a>>(row: &'a Row, at: usize) -> Result<T, StoreError> {
    row.try_get(at).map_err(backend)
}

/// A user from `USER_WIDTH` columns starting at `at`: id, name, guest, bot.
pub(super) fn user_from(row: &Row, at: usize) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(col(row, at)?),
        name: col(row, at + 1)?,
        guest: col(row, at + 2)?,
        bot: col(row, at + 3)?,
    })
}

/// How many columns `user_from` reads.
pub(super) const USER_WIDTH: usize = 4;

pub(super) const ROOM_COLUMNS: &str =
    "r.id, r.name, r.kind, r.member_count, r.last_seq, r.topic, r.description, r.archived";

/// The columns after `ROOM_COLUMNS` start here.
pub(super) const AFTER_ROOM: usize = 8;

pub(super) fn room_from(row: &Row) -> Result<Room, StoreError> {
    let kind: &str = col(row, 2)?;
    Ok(Room {
        id: RoomId(col(row, 0)?),
        name: col(row, 1)?,
        kind: RoomKind::parse(kind).unwrap_or(RoomKind::Public),
        member_count: col::<i32>(row, 3)?.max(0) as u32,
        last_seq: Seq(col(row, 4)?),
        topic: col(row, 5)?,
        description: col(row, 6)?,
        archived: col(row, 7)?,
    })
}

/// Every column of a stream entry, its sender's after the entry's own (see `message_from`).
pub(super) const MESSAGE_COLUMNS: &str =
    "m.id, m.room_id, m.seq, m.body, m.created_at, m.client_id, u.id, u.name, u.guest, u.bot, \
     m.kind, m.target, m.emoji, m.reaction_add, m.thread, m.also_room, m.mentions, \
     m.mentions_room, m.edited_at, m.deleted, m.replies, m.last_reply_ts";

/// An entry as stored (`MESSAGE_COLUMNS`), reactions empty.
pub(super) fn message_from(row: &Row) -> Result<Message, StoreError> {
    let kind: i16 = col(row, 10)?;
    let change = change_from(kind, col(row, 11)?, col(row, 12)?, col(row, 13)?)
        .map_err(StoreError::Backend)?;
    let mut message = Message {
        id: MessageId(col(row, 0)?),
        room: RoomId(col(row, 1)?),
        seq: Seq(col(row, 2)?),
        body: col(row, 3)?,
        ts: col(row, 4)?,
        client_id: col(row, 5)?,
        sender: user_from(row, 6)?,
        change,
        thread: col::<Option<i64>>(row, 14)?.map(Seq),
        also_room: col(row, 15)?,
        mentions: mentions_from(col(row, 16)?),
        mentions_room: col(row, 17)?,
        edited_at: col(row, 18)?,
        deleted: col(row, 19)?,
        replies: col::<i32>(row, 20)?.max(0) as u32,
        last_reply_ts: col(row, 21)?,
        reactions: Vec::new(),
        files: Vec::new(),
    };
    fill_room_event(&mut message, kind).map_err(StoreError::Backend)?;
    Ok(message)
}

/// A reaction row (seq of the message, emoji, user) selected as
/// `r.seq, r.emoji, u.id, u.name, u.guest, u.bot`.
pub(super) fn reaction_from(row: &Row) -> Result<(Seq, String, User), StoreError> {
    Ok((Seq(col(row, 0)?), col(row, 1)?, user_from(row, 2)?))
}
