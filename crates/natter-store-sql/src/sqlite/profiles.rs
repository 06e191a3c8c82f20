//! SQLite profiles (migration 0010): display name, status line, avatar (one of the user's
//! image uploads) and last activity; a user's messages (for an export) and deleting an
//! account's personal data.

use super::error::backend;
use super::rows::user_from;
use super::SqliteStore;
use natter_core::files::FileId;
use natter_core::model::*;
use natter_core::store::{deleted_name_key, DeletedAccount, DELETED_USER_NAME};
use natter_core::{Refusal, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};

const PROFILE_COLUMNS: &str =
    "u.id, u.name, u.guest, u.bot, u.display_name, u.status, u.avatar, u.last_active";

fn profile_from(row: &Row<'_>) -> rusqlite::Result<Profile> {
    let user = user_from(row, 0)?;
    Ok(Profile {
        bot: user.bot,
        user,
        display_name: row.get(4)?,
        status: row.get(5)?,
        avatar: row.get::<_, Option<String>>(6)?.map(FileId),
        last_active: row.get(7)?,
    })
}

fn profile_of(conn: &Connection, user: UserId) -> Result<Option<Profile>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {PROFILE_COLUMNS} FROM users u WHERE u.id = ?1"
    ))
    .map_err(backend)?
    .query_row([user.0], profile_from)
    .optional()
    .map_err(backend)
}

pub(super) async fn profile(
    store: &SqliteStore,
    user: UserId,
) -> Result<Option<Profile>, StoreError> {
    store.read(move |conn| profile_of(conn, user)).await
}

pub(super) async fn member_profiles(
    store: &SqliteStore,
    room: RoomId,
) -> Result<Vec<(Profile, RoomRole)>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {PROFILE_COLUMNS}, m.role FROM members m JOIN users u ON u.id = m.user_id
                     WHERE m.room_id = ?1 ORDER BY u.name_key"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map([room.0], |r| {
                    let role = r.get::<_, Option<String>>(8)?;
                    Ok((
                        profile_from(r)?,
                        role.as_deref().and_then(RoomRole::parse).unwrap_or_default(),
                    ))
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn set_profile(
    store: &SqliteStore,
    user: UserId,
    update: ProfileUpdate,
) -> Result<Option<Profile>, StoreError> {
    store
        .write(move |conn| {
            if let Some(Some(avatar)) = &update.avatar {
                let own_image = conn
                    .prepare_cached(
                        "SELECT 1 FROM files WHERE id = ?1 AND owner_id = ?2 AND type LIKE 'image/%'",
                    )
                    .map_err(backend)?
                    .exists(params![avatar.as_str(), user.0])
                    .map_err(backend)?;
                if !own_image {
                    return Err(StoreError::Refused(Refusal::UnknownFile));
                }
            }
            conn.prepare_cached(
                "UPDATE users SET display_name = COALESCE(?2, display_name),
                                  status = COALESCE(?3, status),
                                  avatar = CASE WHEN ?4 THEN ?5 ELSE avatar END
                 WHERE id = ?1",
            )
            .map_err(backend)?
            .execute(params![
                user.0,
                update.display_name,
                update.status,
                update.avatar.is_some(),
                update.avatar.clone().flatten().map(|a| a.0)
            ])
            .map_err(backend)?;
            profile_of(conn, user)
        })
        .await
}

pub(super) async fn messages_of(
    store: &SqliteStore,
    user: UserId,
    after: MessageId,
    limit: u32,
) -> Result<Vec<(MessageId, RoomId, Seq)>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, room_id, seq FROM messages
                     WHERE sender_id = ?1 AND kind = 0 AND deleted = 0 AND id > ?2
                     ORDER BY id LIMIT ?3",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![user.0, after.0, limit], |r| {
                    Ok((MessageId(r.get(0)?), RoomId(r.get(1)?), Seq(r.get(2)?)))
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn delete_account(
    store: &SqliteStore,
    user: UserId,
) -> Result<DeletedAccount, StoreError> {
    store
        .write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE users SET name = ?2, name_key = ?3, password_hash = NULL,
                         display_name = '', status = '', avatar = NULL, admin = 0,
                         deactivated = 1
                     WHERE id = ?1",
                )
                .map_err(backend)?
                .execute(params![user.0, DELETED_USER_NAME, deleted_name_key(user)])
                .map_err(backend)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            let sessions = conn
                .prepare_cached("DELETE FROM sessions WHERE user_id = ?1 RETURNING token_hash")
                .map_err(backend)?
                .query_map([user.0], |r| r.get::<_, Vec<u8>>(0))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            conn.prepare_cached("DELETE FROM invites WHERE user_id = ?1")
                .map_err(backend)?
                .execute([user.0])
                .map_err(backend)?;
            let rooms: Vec<RoomId> = conn
                .prepare_cached("SELECT room_id FROM members WHERE user_id = ?1 ORDER BY room_id")
                .map_err(backend)?
                .query_map([user.0], |r| r.get(0).map(RoomId))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            for room in &rooms {
                super::rooms::remove_member(conn, *room, user)?;
            }
            Ok(DeletedAccount { sessions, rooms })
        })
        .await
}
