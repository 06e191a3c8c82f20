//! SQLite rooms and membership: public rooms and DMs, joining and leaving (with the member
//! count), members, and read markers.

use super::error::{backend, is_unique_violation};
use super::rows::{room_from, user_from, AFTER_ROOM, ROOM_COLUMNS};
use super::SqliteStore;
use natter_core::model::*;
use natter_core::store::name_key;
use natter_core::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

fn room_by_id(conn: &Connection, id: RoomId) -> Result<Option<Room>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = ?1"
    ))
    .map_err(backend)?
    .query_row([id.0], room_from)
    .optional()
    .map_err(backend)
}

/// Adds a membership (ending an invitation); false if there was one already, `Banned` if the
/// user is banned from the room.
pub(super) fn add_member(
    conn: &Connection,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    let banned = conn
        .prepare_cached("SELECT 1 FROM bans WHERE room_id = ?1 AND user_id = ?2")
        .map_err(backend)?
        .exists(params![room.0, user.0])
        .map_err(backend)?;
    if banned {
        return Err(StoreError::Refused(natter_core::Refusal::Banned));
    }
    conn.prepare_cached("DELETE FROM invites WHERE room_id = ?1 AND user_id = ?2")
        .map_err(backend)?
        .execute(params![room.0, user.0])
        .map_err(backend)?;
    let added = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO members (room_id, user_id, joined_at) VALUES (?1, ?2, ?3)",
        )
        .map_err(backend)?
        .execute(params![room.0, user.0, now_millis()])
        .map_err(backend)?
        == 1;
    if added {
        conn.prepare_cached("UPDATE rooms SET member_count = member_count + 1 WHERE id = ?1")
            .map_err(backend)?
            .execute([room.0])
            .map_err(backend)?;
    }
    Ok(added)
}

/// Deletes a membership (with its marker, role and mute); false if there was none.
pub(super) fn remove_member(
    conn: &Connection,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    let removed = conn
        .prepare_cached("DELETE FROM members WHERE room_id = ?1 AND user_id = ?2")
        .map_err(backend)?
        .execute(params![room.0, user.0])
        .map_err(backend)?
        == 1;
    if removed {
        conn.prepare_cached("UPDATE rooms SET member_count = member_count - 1 WHERE id = ?1")
            .map_err(backend)?
            .execute([room.0])
            .map_err(backend)?;
    }
    Ok(removed)
}

pub(super) async fn ensure_public_room(
    store: &SqliteStore,
    name: &str,
) -> Result<Room, StoreError> {
    let name = name.to_string();
    store
        .write(move |conn| {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO rooms (name, kind, name_key, created_at)
                 VALUES (?1, 'public', ?2, ?3)",
            )
            .map_err(backend)?
            .execute(params![name, name_key(&name), now_millis()])
            .map_err(backend)?;
            conn.prepare_cached(&format!(
                "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.name_key = ?1"
            ))
            .map_err(backend)?
            .query_row([name_key(&name)], room_from)
            .map_err(backend)
        })
        .await
}

pub(super) async fn create_room(
    store: &SqliteStore,
    name: &str,
    creator: UserId,
    kind: RoomKind,
) -> Result<Room, StoreError> {
    let name = name.to_string();
    // A private room has no name key: its name is not unique and reveals nothing.
    let key = (kind == RoomKind::Public).then(|| name_key(&name));
    store
        .write(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO rooms (name, kind, name_key, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend)?
                .execute(params![name, kind.as_str(), key, now_millis(), creator.0]);
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict("room name taken".into()))
                }
                Err(e) => return Err(backend(e)),
            }
            let id = RoomId(conn.last_insert_rowid());
            add_member(conn, id, creator)?;
            conn.prepare_cached(
                "UPDATE members SET role = 'owner' WHERE room_id = ?1 AND user_id = ?2",
            )
            .map_err(backend)?
            .execute(params![id.0, creator.0])
            .map_err(backend)?;
            room_by_id(conn, id)?.ok_or(StoreError::NotFound)
        })
        .await
}

pub(super) async fn room(store: &SqliteStore, room: RoomId) -> Result<Option<Room>, StoreError> {
    store.read(move |conn| room_by_id(conn, room)).await
}

pub(super) async fn public_rooms(store: &SqliteStore) -> Result<Vec<Room>, StoreError> {
    store
        .read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.kind = 'public' ORDER BY r.name_key"
            ))
                .map_err(backend)?;
            let rows = stmt.query_map([], room_from).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn rooms_created_by(store: &SqliteStore, user: UserId) -> Result<u64, StoreError> {
    store
        .read(move |conn| {
            conn.prepare_cached("SELECT COUNT(*) FROM rooms WHERE created_by = ?1")
                .map_err(backend)?
                .query_row([user.0], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(backend)
        })
        .await
}

/// Walks the unique index on `name_key` from the cursor (DMs have none, so never match);
/// `instr` rather than `LIKE`, so `_` and `%` in a query are plain characters.
pub(super) async fn public_rooms_page(
    store: &SqliteStore,
    contains: &str,
    after: &str,
    limit: u32,
    archived: bool,
) -> Result<Vec<Room>, StoreError> {
    let (contains, after) = (contains.to_string(), after.to_string());
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ROOM_COLUMNS} FROM rooms r
                     WHERE r.kind = 'public' AND r.name_key > ?1
                       AND (?2 = '' OR instr(r.name_key, ?2) > 0) AND r.archived = ?4
                     ORDER BY r.name_key LIMIT ?3"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![after, contains, limit, archived], room_from)
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn rooms_of(
    store: &SqliteStore,
    user: UserId,
) -> Result<Vec<(Room, Option<User>)>, StoreError> {
    store.read(move |conn| {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {ROOM_COLUMNS}, p.id, p.name, p.guest, p.bot
                     FROM members me JOIN rooms r ON r.id = me.room_id
                     LEFT JOIN members pm ON r.kind = 'dm' AND pm.room_id = r.id AND pm.user_id != me.user_id
                     LEFT JOIN users p ON p.id = pm.user_id
                     WHERE me.user_id = ?1 ORDER BY r.id"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map([user.0], |row| {
                let room = room_from(row)?;
                let peer = match row.get::<_, Option<i64>>(AFTER_ROOM)? {
                    Some(_) => Some(user_from(row, AFTER_ROOM)?),
                    None => None,
                };
                Ok((room, peer))
            })
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    })
    .await
}

/// A group someone left is no longer the group of its member set (`open_group` makes a new
/// one for that set).
pub(super) fn forget_group(conn: &Connection, room: RoomId) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE rooms SET dm_key = NULL WHERE id = ?1 AND kind = 'group'")
        .map_err(backend)?
        .execute([room.0])
        .map_err(backend)?;
    Ok(())
}

pub(super) async fn open_group(
    store: &SqliteStore,
    members: &[UserId],
) -> Result<(Room, bool), StoreError> {
    let members = members.to_vec();
    store
        .write(move |conn| {
            let key = crate::entries::group_key(&members);
            let created = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO rooms (name, kind, dm_key, created_at)
                     VALUES ('group', 'group', ?1, ?2)",
                )
                .map_err(backend)?
                .execute(params![key, now_millis()])
                .map_err(backend)?
                == 1;
            let id: i64 = conn
                .prepare_cached("SELECT id FROM rooms WHERE dm_key = ?1")
                .map_err(backend)?
                .query_row([&key], |r| r.get(0))
                .map_err(backend)?;
            if created {
                for m in &members {
                    add_member(conn, RoomId(id), *m)?;
                }
            }
            let room = room_by_id(conn, RoomId(id))?.ok_or(StoreError::NotFound)?;
            Ok((room, created))
        })
        .await
}

pub(super) async fn mark_read(
    store: &SqliteStore,
    room: RoomId,
    user: UserId,
    seq: Seq,
) -> Result<Option<Seq>, StoreError> {
    // The room's last seq from `messages`: `rooms.last_seq` may lag within a group commit.
    store
        .write(move |conn| {
            conn.prepare_cached(
                "UPDATE members SET read_seq = MAX(read_seq, MIN(?3,
                     COALESCE((SELECT MAX(seq) FROM messages WHERE room_id = ?1), 0)))
                 WHERE room_id = ?1 AND user_id = ?2 RETURNING read_seq",
            )
            .map_err(backend)?
            .query_row(params![room.0, user.0, seq.0], |r| r.get(0).map(Seq))
            .optional()
            .map_err(backend)
        })
        .await
}

pub(super) async fn read_markers(
    store: &SqliteStore,
    user: UserId,
) -> Result<Vec<(RoomId, Seq)>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT room_id, read_seq FROM members
                     WHERE user_id = ?1 AND read_seq > 0 ORDER BY room_id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([user.0], |r| Ok((RoomId(r.get(0)?), Seq(r.get(1)?))))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn is_member(
    store: &SqliteStore,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    store
        .read(move |conn| {
            conn.prepare_cached("SELECT 1 FROM members WHERE room_id = ?1 AND user_id = ?2")
                .map_err(backend)?
                .exists(params![room.0, user.0])
                .map_err(backend)
        })
        .await
}

pub(super) async fn members(store: &SqliteStore, room: RoomId) -> Result<Vec<User>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT u.id, u.name, u.guest, u.bot FROM members m JOIN users u ON u.id = m.user_id
                     WHERE m.room_id = ?1 ORDER BY u.name_key",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([room.0], |row| user_from(row, 0))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn open_dm(
    store: &SqliteStore,
    a: UserId,
    b: UserId,
) -> Result<(Room, bool), StoreError> {
    store.write(move |conn| {
        let key = format!("{}:{}", a.min(b).0, a.max(b).0);
        let created = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO rooms (name, kind, dm_key, created_at) VALUES ('dm', 'dm', ?1, ?2)",
            )
            .map_err(backend)?
            .execute(params![key, now_millis()])
            .map_err(backend)?
            == 1;
        let id: i64 = conn
            .prepare_cached("SELECT id FROM rooms WHERE dm_key = ?1")
            .map_err(backend)?
            .query_row([&key], |r| r.get(0))
            .map_err(backend)?;
        if created {
            add_member(conn, RoomId(id), a)?;
            add_member(conn, RoomId(id), b)?;
        }
        let room = room_by_id(conn, RoomId(id))?.ok_or(StoreError::NotFound)?;
        Ok((room, created))
    })
    .await
}
