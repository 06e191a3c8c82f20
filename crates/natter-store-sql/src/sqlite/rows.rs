//! The columns SQLite queries select for users, rooms and messages, and the model values
//! their rows map to.

use crate::entries::{change_from, fill_room_event, mentions_from};
use natter_core::model::*;
use rusqlite::types::Type;
use rusqlite::Row;

/// A user from `USER_WIDTH` columns starting at `at`: id, name, guest, bot.
pub(super) fn user_from(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(row.get(at)?),
        name: row.get(at + 1)?,
        guest: row.get::<_, i64>(at + 2)? != 0,
        bot: row.get::<_, i64>(at + 3)? != 0,
    })
}

/// How many columns `user_from` reads.
pub(super) const USER_WIDTH: usize = 4;

pub(super) const ROOM_COLUMNS: &str =
    "r.id, r.name, r.kind, r.member_count, r.last_seq, r.topic, r.description, r.archived";

/// The columns after `ROOM_COLUMNS` start here.
pub(super) const AFTER_ROOM: usize = 8;

pub(super) fn room_from(row: &Row<'_>) -> rusqlite::Result<Room> {
    let kind: String = row.get(2)?;
    Ok(Room {
        id: RoomId(row.get(0)?),
        name: row.get(1)?,
        kind: RoomKind::parse(&kind).unwrap_or(RoomKind::Public),
        member_count: row.get::<_, i64>(3)? as u32,
        last_seq: Seq(row.get(4)?),
        topic: row.get(5)?,
        description: row.get(6)?,
        archived: row.get(7)?,
    })
}

/// Every column of a stream entry, its sender's after the entry's own (see `message_from`).
pub(super) const MESSAGE_COLUMNS: &str =
    "m.id, m.room_id, m.seq, m.body, m.created_at, m.client_id, u.id, u.name, u.guest, u.bot, \
     m.kind, m.target, m.emoji, m.reaction_add, m.thread, m.also_room, m.mentions, \
     m.mentions_room, m.edited_at, m.deleted, m.replies, m.last_reply_ts";

/// An entry as stored (`MESSAGE_COLUMNS`), reactions empty.
pub(super) fn message_from(row: &Row<'_>) -> rusqlite::Result<Message> {
    let kind: i16 = row.get(10)?;
    let change = change_from(kind, row.get(11)?, row.get(12)?, row.get(13)?)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(10, Type::Integer, e.into()))?;
    let mut message = Message {
        id: MessageId(row.get(0)?),
        room: RoomId(row.get(1)?),
        seq: Seq(row.get(2)?),
        body: row.get(3)?,
        ts: row.get(4)?,
        client_id: row.get(5)?,
        sender: user_from(row, 6)?,
        change,
        thread: row.get::<_, Option<i64>>(14)?.map(Seq),
        also_room: row.get(15)?,
        mentions: mentions_from(row.get::<_, Option<String>>(16)?.as_deref()),
        mentions_room: row.get(17)?,
        edited_at: row.get(18)?,
        deleted: row.get(19)?,
        replies: row.get::<_, i64>(20)?.max(0) as u32,
        last_reply_ts: row.get(21)?,
        reactions: Vec::new(),
        files: Vec::new(),
    };
    fill_room_event(&mut message, kind)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, Type::Text, e.into()))?;
    Ok(message)
}

/// A reaction row of `REACTION_QUERY`: (seq of the message, emoji, user).
pub(super) fn reaction_from(row: &Row<'_>) -> rusqlite::Result<(Seq, String, User)> {
    Ok((Seq(row.get(0)?), row.get(1)?, user_from(row, 2)?))
}
