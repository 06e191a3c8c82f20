//! The columns PostgreSQL queries select for users, rooms and messages, and the model values
//! their rows map to.

use natter_core::model::*;
use tokio_postgres::Row;

pub(super) fn user_from(row: &Row, at: usize) -> User {
    User {
        id: UserId(row.get(at)),
        name: row.get(at + 1),
        guest: row.get(at + 2),
    }
}

pub(super) const ROOM_COLUMNS: &str = "r.id, r.name, r.kind, r.member_count, r.last_seq";

pub(super) fn room_from(row: &Row) -> Room {
    let kind: &str = row.get(2);
    Room {
        id: RoomId(row.get(0)),
        name: row.get(1),
        kind: if kind == "dm" {
            RoomKind::Dm
        } else {
            RoomKind::Public
        },
        member_count: row.get::<_, i32>(3).max(0) as u32,
        last_seq: Seq(row.get(4)),
    }
}

pub(super) const MESSAGE_COLUMNS: &str =
    "m.id, m.room_id, m.seq, m.body, m.created_at, m.client_id, u.id, u.name, u.guest";

pub(super) fn message_from(row: &Row) -> Message {
    Message {
        id: MessageId(row.get(0)),
        room: RoomId(row.get(1)),
        seq: Seq(row.get(2)),
        body: row.get(3),
        ts: row.get(4),
        client_id: row.get(5),
        sender: user_from(row, 6),
    }
}
