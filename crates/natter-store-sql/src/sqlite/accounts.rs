//! SQLite accounts: users, their credentials, and sessions (by token hash) with their labels,
//! last use and expiry. Writes go to the writer thread, lookups to the reader pool.

use super::error::{backend, is_unique_violation};
use super::rows::{user_from, USER_WIDTH};
use super::SqliteStore;
use natter_core::model::*;
use natter_core::store::{freed_name_key, name_key, Credentials, Expired, StoredSession};
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
                    "INSERT INTO users (name, name_key, password_hash, guest, created_at, last_active,
                                        admin)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5,
                             ?4 = 0 AND NOT EXISTS (SELECT 1 FROM users WHERE guest = 0))",
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
                    bot: false,
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
                "SELECT id, name, guest, bot, password_hash FROM users WHERE name_key = ?1",
            )
            .map_err(backend)?
            .query_row([key], |row| {
                Ok(Credentials {
                    user: user_from(row, 0)?,
                    password_hash: row.get(USER_WIDTH)?,
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
    label: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let hash = token_hash.to_vec();
    let label = label.to_string();
    store
        .write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, label)
                 VALUES (?1, ?2, ?3, ?3, ?4)",
            )
            .map_err(backend)?
            .execute(params![hash, user.0, now, label])
            .map_err(backend)?;
            conn.prepare_cached("UPDATE users SET last_active = ?1 WHERE id = ?2")
                .map_err(backend)?
                .execute(params![now, user.0])
                .map_err(backend)?;
            Ok(())
        })
        .await
}

pub(super) async fn session_user(
    store: &SqliteStore,
    token_hash: &[u8],
) -> Result<Option<User>, StoreError> {
    Ok(session(store, token_hash).await?.map(|s| s.user))
}

const SESSION_COLUMNS: &str =
    "s.token_hash, s.label, s.created_at, s.last_used_at, u.id, u.name, u.guest, u.bot";

fn session_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSession> {
    Ok(StoredSession {
        token_hash: row.get(0)?,
        label: row.get(1)?,
        created_at: row.get(2)?,
        last_used_at: row.get(3)?,
        user: user_from(row, 4)?,
    })
}

pub(super) async fn session(
    store: &SqliteStore,
    token_hash: &[u8],
) -> Result<Option<StoredSession>, StoreError> {
    let hash = token_hash.to_vec();
    store
        .read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1"
            ))
            .map_err(backend)?
            .query_row([hash], session_from)
            .optional()
            .map_err(backend)
        })
        .await
}

pub(super) async fn sessions_of(
    store: &SqliteStore,
    user: UserId,
) -> Result<Vec<StoredSession>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.user_id = ?1 ORDER BY s.created_at DESC, s.token_hash DESC"
                ))
                .map_err(backend)?;
            let rows = stmt.query_map([user.0], session_from).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn touch_sessions(
    store: &SqliteStore,
    token_hashes: &[Vec<u8>],
    now: Millis,
    stale_before: Millis,
) -> Result<(), StoreError> {
    let hashes = token_hashes.to_vec();
    store
        .write(move |conn| {
            let mut session = conn
                .prepare_cached(
                    "UPDATE sessions SET last_used_at = ?1
                     WHERE token_hash = ?2 AND last_used_at < ?3 RETURNING user_id",
                )
                .map_err(backend)?;
            let mut user = conn
                .prepare_cached("UPDATE users SET last_active = ?1 WHERE id = ?2")
                .map_err(backend)?;
            for hash in hashes {
                let touched: Option<i64> = session
                    .query_row(params![now, hash, stale_before], |row| row.get(0))
                    .optional()
                    .map_err(backend)?;
                if let Some(id) = touched {
                    user.execute(params![now, id]).map_err(backend)?;
                }
            }
            Ok(())
        })
        .await
}

pub(super) async fn delete_sessions_of(
    store: &SqliteStore,
    user: UserId,
    keep: Option<&[u8]>,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let keep = keep.map(<[u8]>::to_vec).unwrap_or_default();
    store
        .write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "DELETE FROM sessions WHERE user_id = ?1 AND token_hash != ?2
                     RETURNING token_hash",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![user.0, keep], |row| row.get(0))
                .map_err(backend)?;
            rows.collect::<Result<Vec<Vec<u8>>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn set_password(
    store: &SqliteStore,
    user: UserId,
    password_hash: &str,
) -> Result<(), StoreError> {
    let hash = password_hash.to_string();
    store
        .write(move |conn| {
            let changed = conn
                .prepare_cached("UPDATE users SET password_hash = ?1 WHERE id = ?2")
                .map_err(backend)?
                .execute(params![hash, user.0])
                .map_err(backend)?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
}

pub(super) async fn expire(
    store: &SqliteStore,
    used_before: Millis,
    guests_before: Millis,
) -> Result<Expired, StoreError> {
    store
        .write(move |conn| {
            let mut guests_stmt = conn
                .prepare_cached(
                    "SELECT id, name, guest, bot FROM users
                     WHERE guest = 1 AND last_active < ?1 AND name_key NOT LIKE '~%'",
                )
                .map_err(backend)?;
            let guests = guests_stmt
                .query_map([guests_before], |row| user_from(row, 0))
                .map_err(backend)?
                .collect::<Result<Vec<User>, _>>()
                .map_err(backend)?;
            let mut sessions = Vec::new();
            let mut of_guest = conn
                .prepare_cached("DELETE FROM sessions WHERE user_id = ?1 RETURNING token_hash")
                .map_err(backend)?;
            let mut free = conn
                .prepare_cached("UPDATE users SET name_key = ?1 WHERE id = ?2")
                .map_err(backend)?;
            for guest in &guests {
                let hashes = of_guest
                    .query_map([guest.id.0], |row| row.get::<_, Vec<u8>>(0))
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend)?;
                sessions.extend(hashes.into_iter().map(|h| (guest.id, h)));
                free.execute(params![freed_name_key(guest.id), guest.id.0])
                    .map_err(backend)?;
            }
            let mut unused = conn
                .prepare_cached(
                    "DELETE FROM sessions WHERE last_used_at < ?1 RETURNING user_id, token_hash",
                )
                .map_err(backend)?;
            let old = unused
                .query_map([used_before], |row| Ok((UserId(row.get(0)?), row.get(1)?)))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            sessions.extend(old);
            Ok(Expired { sessions, guests })
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
