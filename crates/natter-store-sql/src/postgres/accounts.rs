//! PostgreSQL accounts: users, their credentials, and sessions (by token hash).

use super::error::{backend, is_unique_violation};
use super::rows::{col, user_from};
use super::PostgresStore;
use natter_core::model::*;
use natter_core::store::{name_key, Credentials};
use natter_core::StoreError;

pub(super) async fn create_user(
    store: &PostgresStore,
    name: &str,
    password_hash: Option<&str>,
    guest: bool,
) -> Result<User, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO users (name, name_key, password_hash, guest, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
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
        .prepare_cached("SELECT id, name, guest, password_hash FROM users WHERE name_key = $1")
        .await
        .map_err(backend)?;
    client
        .query_opt(&stmt, &[&name_key(name)])
        .await
        .map_err(backend)?
        .map(|row| {
            Ok(Credentials {
                user: user_from(&row, 0)?,
                password_hash: col(&row, 3)?,
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
) -> Result<(), StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO sessions (token_hash, user_id, created_at) VALUES ($1, $2, $3)",
        )
        .await
        .map_err(backend)?;
    client
        .execute(&stmt, &[&token_hash, &user.0, &now_millis()])
        .await
        .map_err(backend)?;
    Ok(())
}

pub(super) async fn session_user(
    store: &PostgresStore,
    token_hash: &[u8],
) -> Result<Option<User>, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "SELECT u.id, u.name, u.guest FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1",
        )
        .await
        .map_err(backend)?;
    client
        .query_opt(&stmt, &[&token_hash])
        .await
        .map_err(backend)?
        .map(|row| user_from(&row, 0))
        .transpose()
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
