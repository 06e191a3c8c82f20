//! PostgreSQL member states: each room's read marker, unread and mention counts after it, and
//! the member's notification level. Called at every sign-in for every room of the user, so
//! one statement answers for all of them, and each count reads at most `MAX_UNREAD_COUNT`
//! matching rows, from the marker on (`(room_id, seq)` for messages, the `mentions` table for
//! mentions): a room read long ago costs no more than one with a thousand unread.

use super::error::backend;
use super::rows::col;
use super::PostgresStore;
use crate::entries::notify_from;
use natter_core::model::*;
use natter_core::StoreError;

/// `$1` the user, `$2` one room or NULL for all of theirs. A room read up to its last seq
/// counts nothing; a DM counts every message from the other as a mention.
fn member_states_sql() -> String {
    let max = MAX_UNREAD_COUNT;
    format!(
        "SELECT mb.room_id, mb.read_seq, mb.notify, mb.role, mb.muted_until,
           CASE WHEN mb.read_seq >= r.last_seq THEN 0 ELSE (SELECT COUNT(*) FROM (
             SELECT 1 FROM messages m
             WHERE m.room_id = mb.room_id AND m.seq > mb.read_seq AND m.kind = 0
               AND NOT m.deleted AND m.sender_id <> $1
               AND (m.thread IS NULL OR m.also_room)
             LIMIT {max}) AS unread) END,
           CASE WHEN mb.read_seq >= r.last_seq THEN 0
                WHEN r.kind IN ('dm', 'group') THEN (SELECT COUNT(*) FROM (
             SELECT 1 FROM messages m
             WHERE m.room_id = mb.room_id AND m.seq > mb.read_seq AND m.kind = 0
               AND NOT m.deleted AND m.sender_id <> $1
             LIMIT {max}) AS dm)
                ELSE (SELECT COUNT(*) FROM (
             SELECT 1 FROM mentions n
             WHERE n.room_id = mb.room_id AND n.user_id IN ($1, 0) AND n.seq > mb.read_seq
               AND n.sender_id <> $1
             LIMIT {max}) AS named) END
         FROM members mb JOIN rooms r ON r.id = mb.room_id
         WHERE mb.user_id = $1 AND ($2::BIGINT IS NULL OR mb.room_id = $2)
         ORDER BY mb.room_id"
    )
}

pub(super) async fn member_states(
    store: &PostgresStore,
    user: UserId,
    room: Option<RoomId>,
) -> Result<Vec<MemberState>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&member_states_sql())
        .await
        .map_err(backend)?;
    let rows = client
        .query(&stmt, &[&user.0, &room.map(|r| r.0)])
        .await
        .map_err(backend)?;
    let count = |n: i64| n.clamp(0, i64::from(MAX_UNREAD_COUNT)) as u32;
    rows.iter()
        .map(|row| {
            Ok(MemberState {
                room: RoomId(col(row, 0)?),
                read_seq: Seq(col(row, 1)?),
                notify: notify_from(col(row, 2)?),
                role: col::<Option<&str>>(row, 3)?
                    .and_then(RoomRole::parse)
                    .unwrap_or_default(),
                muted_until: col(row, 4)?,
                unread: count(col(row, 5)?),
                mentions: count(col(row, 6)?),
            })
        })
        .collect()
}

pub(super) async fn set_notify(
    store: &PostgresStore,
    room: RoomId,
    user: UserId,
    level: NotifyLevel,
) -> Result<bool, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("UPDATE members SET notify = $3 WHERE room_id = $1 AND user_id = $2")
        .await
        .map_err(backend)?;
    let changed = client
        .execute(&stmt, &[&room.0, &user.0, &level.as_str()])
        .await
        .map_err(backend)?;
    Ok(changed == 1)
}
