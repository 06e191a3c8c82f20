//! SQLite accounts: users, their credentials, and sessions (by token hash). Writes go to the
//! writer thread, lookups to the reader pool.

use super::error::{backend, is_unique_violation};
use super::rows::user_from;
use super::SqliteStore;
use natter_core::model::*;
use natter_core::store::{name_key, Credentials};
use natter_core::StoreError;
use rusqlite::{params, OptionalExtension};

pub(super) async fn create_user(
    store: &SqliteStore,
    name: &str,
    password_hash: Option<&str>,
    guest: bool,
) -> Result<User, StoreError> {
    let name = name.to_string();
    let hash = password_hash.map(str::to_string);
    store
        .write(move |conn| {
            let result = conn
                .prepare_cached(
                    "INSERT INTO users (name, name_key, password_hash, guest, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend)?
                .execute(params![
                    name,
                    name_key(&name),
                    hash,
                    guest as i64,
                    now_millis()
                ]);
            match result {
                Ok(_) => Ok(User {
                    id: UserId(conn.last_insert_rowid()),
                    name,
                    guest,
                }),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict("name taken".into())),
                Err(e) => Err(backend(e)),
            }
        })
        .await
}

pub(super) async fn credentials(
    store: &SqliteStore,
    name: &str,
) -> Result<Option<Credentials>, StoreError> {
    let key = name_key(name);
    store
        .read(move |conn| {
            conn.prepare_cached(
                "SELECT id, name, guest, password_hash FROM users WHERE name_key = ?1",
            )
            .map_err(backend)?
            .query_row([key], |row| {
                Ok(Credentials {
                    user: user_from(row, 0)?,
                    password_hash: row.get(3)?,
                })
            })
            .optional()
            .map_err(backend)
        })
        .await
}

pub(super) async fn user_by_name(
    store: &SqliteStore,
    name: &str,
) -> Result<Option<User>, StoreError> {
    Ok(credentials(store, name).await?.map(|c| c.user))
}

pub(super) async fn create_session(
    store: &SqliteStore,
    token_hash: &[u8],
    user: UserId,
) -> Result<(), StoreError> {
    let hash = token_hash.to_vec();
    store
        .write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO sessions (token_hash, user_id, created_at) VALUES (?1, ?2, ?3)",
            )
            .map_err(backend)?
            .execute(params![hash, user.0, now_millis()])
            .map_err(backend)?;
            Ok(())
        })
        .await
}

pub(super) async fn session_user(
    store: &SqliteStore,
    token_hash: &[u8],
) -> Result<Option<User>, StoreError> {
    let hash = token_hash.to_vec();
    store
        .read(move |conn| {
            conn.prepare_cached(
                "SELECT u.id, u.name, u.guest FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1",
            )
            .map_err(backend)?
            .query_row([hash], |row| user_from(row, 0))
            .optional()
            .map_err(backend)
        })
        .await
}

pub(super) async fn delete_session(
    store: &SqliteStore,
    token_hash: &[u8],
) -> Result<Option<UserId>, StoreError> {
    let hash = token_hash.to_vec();
    store
        .write(move |conn| {
            conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1 RETURNING user_id")
                .map_err(backend)?
                .query_row([hash], |row| Ok(UserId(row.get(0)?)))
                .optional()
                .map_err(backend)
        })
        .await
}
