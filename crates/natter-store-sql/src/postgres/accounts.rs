//! PostgreSQL accounts: users, their credentials, and sessions (by token hash) with their
//! labels, last use and expiry.

use super::error::{backend, is_unique_violation};
use super::rows::{col, user_from, USER_WIDTH};
use super::PostgresStore;
use natter_core::model::*;
use natter_core::store::{name_key, Credentials, Expired, StoredSession};
use natter_core::StoreError;
use tokio_postgres::Row;

pub(super) async fn create_user(
    store: &PostgresStore,
    name: &str,
    password_hash: Option<&str>,
    guest: bool,
) -> Result<User, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO users (name, name_key, password_hash, guest, created_at, last_active,
                                admin)
                 VALUES ($1, $2, $3, $4, $5, $5,
                         NOT $4 AND NOT EXISTS (SELECT 1 FROM users WHERE NOT guest))
                 RETURNING id",
        )
        .await
        .map_err(backend)?;
    let key = name_key(name);
    match client
        .query_one(&stmt, &[&name, &key, &password_hash, &guest, &now_millis()])
        .await
    {
        Ok(row) => Ok(User {
            id: UserId(col(&row, 0)?),
            name: name.to_string(),
            guest,
            bot: false,
        }),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict("name taken".into())),
        Err(e) => Err(backend(e)),
    }
}

pub(super) async fn credentials(
    store: &PostgresStore,
    name: &str,
) -> Result<Option<Credentials>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("SELECT id, name, guest, bot, password_hash FROM users WHERE name_key = $1")
        .await
        .map_err(backend)?;
    client
        .query_opt(&stmt, &[&name_key(name)])
        .await
        .map_err(backend)?
        .map(|row| {
            Ok(Credentials {
                user: user_from(&row, 0)?,
                password_hash: col(&row, USER_WIDTH)?,
            })
        })
        .transpose()
}

pub(super) async fn user_by_name(
    store: &PostgresStore,
    name: &str,
) -> Result<Option<User>, StoreError> {
    Ok(credentials(store, name).await?.map(|c| c.user))
}

pub(super) async fn create_session(
    store: &PostgresStore,
    token_hash: &[u8],
    user: UserId,
    label: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "WITH s AS (
                 INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, label)
                 VALUES ($1, $2, $3, $3, $4)
             )
             UPDATE users SET last_active = $3 WHERE id = $2",
        )
        .await
        .map_err(backend)?;
    client
        .execute(&stmt, &[&token_hash, &user.0, &now, &label])
        .await
        .map_err(backend)?;
    Ok(())
}

pub(super) async fn session_user(
    store: &PostgresStore,
    token_hash: &[u8],
) -> Result<Option<User>, StoreError> {
    Ok(session(store, token_hash).await?.map(|s| s.user))
}

const SESSION_COLUMNS: &str =
    "s.token_hash, s.label, s.created_at, s.last_used_at, u.id, u.name, u.guest, u.bot";

fn session_from(row: &Row) -> Result<StoredSession, StoreError> {
    Ok(StoredSession {
        token_hash: row.try_get(0).map_err(backend)?,
        label: row.try_get(1).map_err(backend)?,
        created_at: row.try_get(2).map_err(backend)?,
        last_used_at: row.try_get(3).map_err(backend)?,
        user: user_from(row, 4)?,
    })
}

pub(super) async fn session(
    store: &PostgresStore,
    token_hash: &[u8],
) -> Result<Option<StoredSession>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1"
        ))
        .await
        .map_err(backend)?;
    client
        .query_opt(&stmt, &[&token_hash])
        .await
        .map_err(backend)?
        .as_ref()
        .map(session_from)
        .transpose()
}

pub(super) async fn sessions_of(
    store: &PostgresStore,
    user: UserId,
) -> Result<Vec<StoredSession>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.user_id = $1 ORDER BY s.created_at DESC, s.token_hash DESC"
        ))
        .await
        .map_err(backend)?;
    client
        .query(&stmt, &[&user.0])
        .await
        .map_err(backend)?
        .iter()
        .map(session_from)
        .collect()
}

pub(super) async fn touch_sessions(
    store: &PostgresStore,
    token_hashes: &[Vec<u8>],
    now: Millis,
    stale_before: Millis,
) -> Result<(), StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "WITH s AS (
                 UPDATE sessions SET last_used_at = $1
                 WHERE token_hash = ANY($2) AND last_used_at < $3 RETURNING user_id
             )
             UPDATE users SET last_active = $1 WHERE id IN (SELECT user_id FROM s)",
        )
        .await
        .map_err(backend)?;
    client
        .execute(&stmt, &[&now, &token_hashes, &stale_before])
        .await
        .map_err(backend)?;
    Ok(())
}

fn hash_row(row: &Row) -> Result<(UserId, Vec<u8>), StoreError> {
    Ok((
        UserId(row.try_get(0).map_err(backend)?),
        row.try_get(1).map_err(backend)?,
    ))
}

pub(super) async fn delete_sessions_of(
    store: &PostgresStore,
    user: UserId,
    keep: Option<&[u8]>,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "DELETE FROM sessions WHERE user_id = $1 AND token_hash != $2
             RETURNING user_id, token_hash",
        )
        .await
        .map_err(backend)?;
    let keep = keep.unwrap_or_default();
    client
        .query(&stmt, &[&user.0, &keep])
        .await
        .map_err(backend)?
        .iter()
        .map(|row| hash_row(row).map(|(_, hash)| hash))
        .collect()
}

pub(super) async fn set_password(
    store: &PostgresStore,
    user: UserId,
    password_hash: &str,
) -> Result<(), StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("UPDATE users SET password_hash = $1 WHERE id = $2")
        .await
        .map_err(backend)?;
    let changed = client
        .execute(&stmt, &[&password_hash, &user.0])
        .await
        .map_err(backend)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(super) async fn expire(
    store: &PostgresStore,
    used_before: Millis,
    guests_before: Millis,
) -> Result<Expired, StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    // The key matches `natter_core::store::freed_name_key`.
    let free = tx
        .prepare_cached(
            "UPDATE users SET name_key = '~expired~' || id::text
             WHERE guest AND last_active < $1 AND name_key NOT LIKE '~%'
             RETURNING id, name, guest, bot",
        )
        .await
        .map_err(backend)?;
    let mut guests = Vec::new();
    for row in tx.query(&free, &[&guests_before]).await.map_err(backend)? {
        guests.push(user_from(&row, 0)?);
    }
    let ids: Vec<i64> = guests.iter().map(|g| g.id.0).collect();
    let delete = tx
        .prepare_cached(
            "DELETE FROM sessions WHERE user_id = ANY($1) OR last_used_at < $2
             RETURNING user_id, token_hash",
        )
        .await
        .map_err(backend)?;
    let sessions = tx
        .query(&delete, &[&ids, &used_before])
        .await
        .map_err(backend)?
        .iter()
        .map(hash_row)
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit().await.map_err(backend)?;
    Ok(Expired { sessions, guests })
}

pub(super) async fn delete_session(
    store: &PostgresStore,
    token_hash: &[u8],
) -> Result<Option<UserId>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id")
        .await
        .map_err(backend)?;
    client
        .query_opt(&stmt, &[&token_hash])
        .await
        .map_err(backend)?
        .map(|row| col(&row, 0).map(UserId))
        .transpose()
}
