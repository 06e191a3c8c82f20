//! PostgreSQL profiles (migration 0010): display name, status line, avatar (one of the
//! user's image uploads) and last activity; a user's messages (for an export) and deleting
//! an account's personal data. The SQLite module of the same name is its twin.

use super::error::backend;
use super::rows::{col, user_from};
use super::PostgresStore;
use deadpool_postgres::GenericClient;
use natter_core::files::FileId;
use natter_core::model::*;
use natter_core::store::{deleted_name_key, DeletedAccount, DELETED_USER_NAME};
use natter_core::{Refusal, StoreError};
use tokio_postgres::Row;

const PROFILE_COLUMNS: &str =
    "u.id, u.name, u.guest, u.bot, u.display_name, u.status, u.avatar, u.last_active";

fn profile_from(row: &Row) -> Result<Profile, StoreError> {
    let user = user_from(row, 0)?;
    Ok(Profile {
        bot: user.bot,
        user,
        display_name: col(row, 4)?,
        status: col(row, 5)?,
        avatar: col::<Option<String>>(row, 6)?.map(FileId),
        last_active: col(row, 7)?,
    })
}

async fn profile_of(
    client: &impl GenericClient,
    user: UserId,
) -> Result<Option<Profile>, StoreError> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM users u WHERE u.id = $1");
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    client
        .query_opt(&stmt, &[&user.0])
        .await
        .map_err(backend)?
        .map(|r| profile_from(&r))
        .transpose()
}

pub(super) async fn profile(
    store: &PostgresStore,
    user: UserId,
) -> Result<Option<Profile>, StoreError> {
    profile_of(&store.client().await?, user).await
}

pub(super) async fn member_profiles(
    store: &PostgresStore,
    room: RoomId,
) -> Result<Vec<(Profile, RoomRole)>, StoreError> {
    let client = store.client().await?;
    let sql = format!(
        "SELECT {PROFILE_COLUMNS}, m.role FROM members m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = $1 ORDER BY u.name_key"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client.query(&stmt, &[&room.0]).await.map_err(backend)?;
    rows.iter()
        .map(|r| {
            let role = col::<Option<&str>>(r, 8)?
                .and_then(RoomRole::parse)
                .unwrap_or_default();
            Ok((profile_from(r)?, role))
        })
        .collect()
}

pub(super) async fn set_profile(
    store: &PostgresStore,
    user: UserId,
    update: ProfileUpdate,
) -> Result<Option<Profile>, StoreError> {
    let client = store.client().await?;
    if let Some(Some(avatar)) = &update.avatar {
        let stmt = client
            .prepare_cached(
                "SELECT 1 FROM files WHERE id = $1 AND owner_id = $2 AND type LIKE 'image/%'",
            )
            .await
            .map_err(backend)?;
        let found = client
            .query_opt(&stmt, &[&avatar.as_str(), &user.0])
            .await
            .map_err(backend)?;
        if found.is_none() {
            return Err(StoreError::Refused(Refusal::UnknownFile));
        }
    }
    let stmt = client
        .prepare_cached(
            "UPDATE users SET display_name = COALESCE($2, display_name),
                              status = COALESCE($3, status),
                              avatar = CASE WHEN $4 THEN $5 ELSE avatar END
             WHERE id = $1",
        )
        .await
        .map_err(backend)?;
    let avatar = update.avatar.clone().flatten().map(|a| a.0);
    client
        .execute(
            &stmt,
            &[
                &user.0,
                &update.display_name,
                &update.status,
                &update.avatar.is_some(),
                &avatar,
            ],
        )
        .await
        .map_err(backend)?;
    profile_of(&client, user).await
}

pub(super) async fn messages_of(
    store: &PostgresStore,
    user: UserId,
    after: MessageId,
    limit: u32,
) -> Result<Vec<(MessageId, RoomId, Seq)>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT id, room_id, seq FROM messages
             WHERE sender_id = $1 AND kind = 0 AND NOT deleted AND id > $2
             ORDER BY id LIMIT $3",
        )
        .await
        .map_err(backend)?;
    let rows = client
        .query(&stmt, &[&user.0, &after.0, &i64::from(limit)])
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|r| Ok((MessageId(col(r, 0)?), RoomId(col(r, 1)?), Seq(col(r, 2)?))))
        .collect()
}

pub(super) async fn delete_account(
    store: &PostgresStore,
    user: UserId,
) -> Result<DeletedAccount, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    let stmt = tx
        .prepare_cached(
            "UPDATE users SET name = $2, name_key = $3, password_hash = NULL,
                 display_name = '', status = '', avatar = NULL, admin = FALSE,
                 deactivated = TRUE
             WHERE id = $1",
        )
        .await
        .map_err(backend)?;
    let changed = tx
        .execute(
            &stmt,
            &[&user.0, &DELETED_USER_NAME, &deleted_name_key(user)],
        )
        .await
        .map_err(backend)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    let stmt = tx
        .prepare_cached("DELETE FROM sessions WHERE user_id = $1 RETURNING token_hash")
        .await
        .map_err(backend)?;
    let sessions = tx
        .query(&stmt, &[&user.0])
        .await
        .map_err(backend)?
        .iter()
        .map(|r| col::<Vec<u8>>(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let stmt = tx
        .prepare_cached("DELETE FROM invites WHERE user_id = $1")
        .await
        .map_err(backend)?;
    tx.execute(&stmt, &[&user.0]).await.map_err(backend)?;
    let stmt = tx
        .prepare_cached("SELECT room_id FROM members WHERE user_id = $1 ORDER BY room_id")
        .await
        .map_err(backend)?;
    let rooms = tx
        .query(&stmt, &[&user.0])
        .await
        .map_err(backend)?
        .iter()
        .map(|r| col(r, 0).map(RoomId))
        .collect::<Result<Vec<_>, _>>()?;
    for room in &rooms {
        super::rooms::remove_member(&tx, *room, user).await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(DeletedAccount { sessions, rooms })
}
