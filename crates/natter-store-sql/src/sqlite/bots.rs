//! SQLite bots, API tokens and webhooks (migration 0011; `natter_core::bots`). A token's
//! scope is stored as room ids joined by commas.

use super::error::{backend, is_unique_violation};
use super::rows::{user_from, USER_WIDTH};
use super::SqliteStore;
use natter_core::bots::{
    rooms_from_text, rooms_to_text, ApiToken, Bot, NewApiToken, TokenId, TokensOf,
};
use natter_core::model::*;
use natter_core::StoreError;
use rusqlite::{params, OptionalExtension, Row};

const BOT_QUERY: &str = "SELECT u.id, u.name, u.guest, u.bot, b.owner_id, b.created_at
                         FROM bots b JOIN users u ON u.id = b.user_id";

fn bot_from(row: &Row<'_>) -> rusqlite::Result<Bot> {
    Ok(Bot {
        user: user_from(row, 0)?,
        owner: UserId(row.get(USER_WIDTH)?),
        created_at: row.get(USER_WIDTH + 1)?,
    })
}

const TOKEN_COLUMNS: &str =
    "t.id, t.bot_id, t.name, t.rooms, t.hook_room, t.created_by, t.created_at, t.last_used_at";

fn token_from(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: TokenId(row.get(0)?),
        bot: UserId(row.get(1)?),
        name: row.get(2)?,
        rooms: rooms_from_text(&row.get::<_, String>(3)?),
        hook_room: row.get::<_, Option<i64>>(4)?.map(RoomId),
        created_by: UserId(row.get(5)?),
        created_at: row.get(6)?,
        last_used_at: row.get(7)?,
    })
}

pub(super) async fn add_bot(
    store: &SqliteStore,
    bot: UserId,
    owner: UserId,
    created_at: Millis,
) -> Result<(), StoreError> {
    store
        .write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO bots (user_id, owner_id, created_at) VALUES (?1, ?2, ?3)",
            )
            .map_err(backend)?
            .execute(params![bot.0, owner.0, created_at])
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("already a bot".into())
                } else {
                    backend(e)
                }
            })?;
            // Every User read from the row says so from now on (migration 0012).
            conn.prepare_cached("UPDATE users SET bot = 1 WHERE id = ?1")
                .map_err(backend)?
                .execute([bot.0])
                .map_err(backend)?;
            Ok(())
        })
        .await
}

pub(super) async fn bots(
    store: &SqliteStore,
    owner: Option<UserId>,
) -> Result<Vec<Bot>, StoreError> {
    store
        .read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "{BOT_QUERY} WHERE ?1 IS NULL OR b.owner_id = ?1 ORDER BY u.id"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map([owner.map(|o| o.0)], bot_from)
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn bot(store: &SqliteStore, user: UserId) -> Result<Option<Bot>, StoreError> {
    store
        .read(move |conn| {
            conn.prepare_cached(&format!("{BOT_QUERY} WHERE b.user_id = ?1"))
                .map_err(backend)?
                .query_row([user.0], bot_from)
                .optional()
                .map_err(backend)
        })
        .await
}

pub(super) async fn remove_bot(store: &SqliteStore, bot: UserId) -> Result<bool, StoreError> {
    store
        .write(move |conn| {
            conn.prepare_cached("DELETE FROM api_tokens WHERE bot_id = ?1")
                .map_err(backend)?
                .execute([bot.0])
                .map_err(backend)?;
            let n = conn
                .prepare_cached("DELETE FROM bots WHERE user_id = ?1")
                .map_err(backend)?
                .execute([bot.0])
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
}

pub(super) async fn create_api_token(
    store: &SqliteStore,
    token: NewApiToken,
) -> Result<ApiToken, StoreError> {
    store
        .write(move |conn| {
            let result = conn
                .prepare_cached(
                    "INSERT INTO api_tokens (token_hash, bot_id, name, rooms, hook_room,
                                             created_by, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(backend)?
                .execute(params![
                    token.token_hash,
                    token.bot.0,
                    token.name,
                    rooms_to_text(&token.rooms),
                    token.hook_room.map(|r| r.0),
                    token.created_by.0,
                    token.created_at
                ]);
            match result {
                Ok(_) => Ok(ApiToken {
                    id: TokenId(conn.last_insert_rowid()),
                    bot: token.bot,
                    name: token.name,
                    rooms: token.rooms,
                    hook_room: token.hook_room,
                    created_by: token.created_by,
                    created_at: token.created_at,
                    last_used_at: None,
                }),
                Err(e) if is_unique_violation(&e) => {
                    Err(StoreError::Conflict("token hash taken".into()))
                }
                Err(e) => Err(backend(e)),
            }
        })
        .await
}

pub(super) async fn api_tokens(
    store: &SqliteStore,
    of: TokensOf,
) -> Result<Vec<ApiToken>, StoreError> {
    let (sql, key) = match of {
        TokensOf::Bot(bot) => (
            format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t
                 WHERE t.bot_id = ?1 AND t.hook_room IS NULL ORDER BY t.id"
            ),
            bot.0,
        ),
        TokensOf::Hooks(room) => (
            format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.hook_room = ?1 ORDER BY t.id"
            ),
            room.0,
        ),
    };
    store
        .read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = stmt.query_map([key], token_from).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
}

pub(super) async fn api_token(
    store: &SqliteStore,
    token_hash: &[u8],
) -> Result<Option<(ApiToken, User)>, StoreError> {
    let hash = token_hash.to_vec();
    store
        .read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS}, u.id, u.name, u.guest, u.bot FROM api_tokens t
                 JOIN users u ON u.id = t.bot_id WHERE t.token_hash = ?1"
            ))
            .map_err(backend)?
            .query_row([hash], |row| Ok((token_from(row)?, user_from(row, 8)?)))
            .optional()
            .map_err(backend)
        })
        .await
}

pub(super) async fn delete_api_token(
    store: &SqliteStore,
    id: TokenId,
) -> Result<Option<ApiToken>, StoreError> {
    store
        .write(move |conn| {
            let found = conn
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.id = ?1"
                ))
                .map_err(backend)?
                .query_row([id.0], token_from)
                .optional()
                .map_err(backend)?;
            conn.prepare_cached("DELETE FROM api_tokens WHERE id = ?1")
                .map_err(backend)?
                .execute([id.0])
                .map_err(backend)?;
            Ok(found)
        })
        .await
}

pub(super) async fn touch_api_token(
    store: &SqliteStore,
    id: TokenId,
    now: Millis,
) -> Result<(), StoreError> {
    store
        .write(move |conn| {
            conn.prepare_cached("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1")
                .map_err(backend)?
                .execute(params![id.0, now])
                .map_err(backend)?;
            Ok(())
        })
        .await
}
