//! SQLite member states: each room's read marker, unread and mention counts after it, and the
//! member's notification level. Called at every sign-in for every room of the user, so one
//! statement answers for all of them, and each count reads at most `MAX_UNREAD_COUNT`
//! matching rows, from the marker on (`(room_id, seq)` for messages, the `mentions` table for
//! mentions): a room read long ago costs no more than one with a thousand unread.

use super::error::backend;
use super::SqliteStore;
use crate::entries::notify_from;
use natter_core::model::*;
use natter_core::StoreError;
use rusqlite::params;

/// `?1` the user, `?2` one room or NULL for all of theirs. A room read up to its last seq
/// counts nothing; a DM counts every message from the other as a mention.
fn member_states_sql() -> String {
    let max = MAX_UNREAD_COUNT;
    format!(
        "SELECT mb.room_id, mb.read_seq, mb.notify, mb.role, mb.muted_until,
           CASE WHEN mb.read_seq >= r.last_seq THEN 0 ELSE (SELECT COUNT(*) FROM (
             SELECT 1 FROM messages m
             WHERE m.room_id = mb.room_id AND m.seq > mb.read_seq AND m.kind = 0
               AND m.deleted = 0 AND m.sender_id <> ?1
               AND (m.thread IS NULL OR m.also_room = 1)
             LIMIT {max})) END,
           CASE WHEN mb.read_seq >= r.last_seq THEN 0
                WHEN r.kind IN ('dm', 'group') THEN (SELECT COUNT(*) FROM (
             SELECT 1 FROM messages m
             WHERE m.room_id = mb.room_id AND m.seq > mb.read_seq AND m.kind = 0
               AND m.deleted = 0 AND m.sender_id <> ?1
             LIMIT {max}))
                ELSE (SELECT COUNT(*) FROM (
             SELECT 1 FROM mentions n
             WHERE n.room_id = mb.room_id AND n.user_id IN (?1, 0) AND n.seq > mb.read_seq
               AND n.sender_id <> ?1
             LIMIT {max})) END
         FROM members mb JOIN rooms r ON r.id = mb.room_id
         WHERE mb.user_id = ?1 AND (?2 IS NULL OR mb.room_id = ?2)
         ORDER BY mb.room_id"
    )
}

pub(super) async fn member_states(
    store: &SqliteStore,
    user: UserId,
    room: Option<RoomId>,
) -> Result<Vec<MemberState>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn.prepare_cached(&member_states_sql()).map_err(backend)?;
            let rows = stmt
                .query_map(params![user.0, room.map(|r| r.0)], |r| {
                    Ok(MemberState {
                        room: RoomId(r.get(0)?),
                        read_seq: Seq(r.get(1)?),
                        notify: notify_from(r.get::<_, Option<String>>(2)?.as_deref()),
                        role: r
                            .get::<_, Option<String>>(3)?
                            .as_deref()
                            .and_then(RoomRole::parse)
                            .unwrap_or_default(),
                        muted_until: r.get(4)?,
                        unread: r.get::<_, i64>(5)?.clamp(0, i64::from(MAX_UNREAD_COUNT)) as u32,
                        mentions: r.get::<_, i64>(6)?.clamp(0, i64::from(MAX_UNREAD_COUNT)) as u32,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn set_notify(
    store: &SqliteStore,
    room: RoomId,
    user: UserId,
    level: NotifyLevel,
) -> Result<bool, StoreError> {
    store
        .write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE members SET notify = ?3 WHERE room_id = ?1 AND user_id = ?2",
                )
                .map_err(backend)?
                .execute(params![room.0, user.0, level.as_str()])
                .map_err(backend)?;
            Ok(changed == 1)
        })
        .await
}
