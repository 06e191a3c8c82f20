//! The columns PostgreSQL queries select for users, rooms and messages, and the model values
//! their rows map to. Columns are read with `try_get`: a column whose type is not the one
//! expected (a schema that drifted from the code) is a `StoreError::Backend`, not a panic.

use super::error::backend;
use natter_core::model::*;
use natter_core::StoreError;
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

/// Column `at` of `row` as a `T`; a type mismatch (or a missing column) is a backend error.
pub(super) fn col<'a, T: FromSql<'a>>(row: &'a Row, at: usize) -> Result<T, StoreError> {
    row.try_get(at).map_err(backend)
}

pub(super) fn user_from(row: &Row, at: usize) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(col(row, at)?),
        name: col(row, at + 1)?,
        guest: col(row, at + 2)?,
    })
}

pub(super) const ROOM_COLUMNS: &str = "r.id, r.name, r.kind, r.member_count, r.last_seq";

pub(super) fn room_from(row: &Row) -> Result<Room, StoreError> {
    let kind: &str = col(row, 2)?;
    Ok(Room {
        id: RoomId(col(row, 0)?),
        name: col(row, 1)?,
        kind: if kind == "dm" {
            RoomKind::Dm
        } else {
            RoomKind::Public
        },
        member_count: col::<i32>(row, 3)?.max(0) as u32,
        last_seq: Seq(col(row, 4)?),
    })
}

pub(super) const MESSAGE_COLUMNS: &str =
    "m.id, m.room_id, m.seq, m.body, m.created_at, m.client_id, u.id, u.name, u.guest";

pub(super) fn message_from(row: &Row) -> Result<Message, StoreError> {
    Ok(Message {
        id: MessageId(col(row, 0)?),
        room: RoomId(col(row, 1)?),
        seq: Seq(col(row, 2)?),
        body: col(row, 3)?,
        ts: col(row, 4)?,
        client_id: col(row, 5)?,
        sender: user_from(row, 6)?,
    })
}
