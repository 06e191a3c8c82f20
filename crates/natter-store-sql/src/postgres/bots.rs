//! PostgreSQL bots, API tokens and webhooks (migration 0011; `natter_core::bots`). The
//! SQLite module of the same name is its twin.

use super::error::{backend, is_unique_violation};
use super::rows::{col, user_from, USER_WIDTH};
use super::PostgresStore;
use natter_core::bots::{
    rooms_from_text, rooms_to_text, ApiToken, Bot, NewApiToken, TokenId, TokensOf,
};
use natter_core::model::*;
use natter_core::StoreError;
use tokio_postgres::Row;

const BOT_QUERY: &str = "SELECT u.id, u.name, u.guest, u.bot, b.owner_id, b.created_at
                         FROM bots b JOIN users u ON u.id = b.user_id";

fn bot_from(row: &Row) -> Result<Bot, StoreError> {
    Ok(Bot {
        user: user_from(row, 0)?,
        owner: UserId(col(row, USER_WIDTH)?),
        created_at: col(row, USER_WIDTH + 1)?,
    })
}

const TOKEN_COLUMNS: &str =
    "t.id, t.bot_id, t.name, t.rooms, t.hook_room, t.created_by, t.created_at, t.last_used_at";

fn token_from(row: &Row) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: TokenId(col(row, 0)?),
        bot: UserId(col(row, 1)?),
        name: col(row, 2)?,
        rooms: rooms_from_text(col::<&str>(row, 3)?),
        hook_room: col::<Option<i64>>(row, 4)?.map(RoomId),
        created_by: UserId(col(row, 5)?),
        created_at: col(row, 6)?,
        last_used_at: col(row, 7)?,
    })
}

pub(super) async fn add_bot(
    store: &PostgresStore,
    bot: UserId,
    owner: UserId,
    created_at: Millis,
) -> Result<(), StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(backend)?;
    let stmt = tx
        .prepare_cached("INSERT INTO bots (user_id, owner_id, created_at) VALUES ($1, $2, $3)")
        .await
        .map_err(backend)?;
    match tx.execute(&stmt, &[&bot.0, &owner.0, &created_at]).await {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict("already a bot".into()))
        }
        Err(e) => return Err(backend(e)),
    }
    // Every User read from the row says so from now on (migration 0012).
    let mark = tx
        .prepare_cached("UPDATE users SET bot = true WHERE id = $1")
        .await
        .map_err(backend)?;
    tx.execute(&mark, &[&bot.0]).await.map_err(backend)?;
    tx.commit().await.map_err(backend)
}

pub(super) async fn bots(
    store: &PostgresStore,
    owner: Option<UserId>,
) -> Result<Vec<Bot>, StoreError> {
    let client = store.client().await?;
    let sql = format!("{BOT_QUERY} WHERE $1::BIGINT IS NULL OR b.owner_id = $1 ORDER BY u.id");
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let owner = owner.map(|o| o.0);
    let rows = client.query(&stmt, &[&owner]).await.map_err(backend)?;
    rows.iter().map(bot_from).collect()
}

pub(super) async fn bot(store: &PostgresStore, user: UserId) -> Result<Option<Bot>, StoreError> {
    let client = store.client().await?;
    let sql = format!("{BOT_QUERY} WHERE b.user_id = $1");
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    client
        .query_opt(&stmt, &[&user.0])
        .await
        .map_err(backend)?
        .map(|r| bot_from(&r))
        .transpose()
}

pub(super) async fn remove_bot(store: &PostgresStore, bot: UserId) -> Result<bool, StoreError> {
    let client = store.client().await?;
    let tokens = client
        .prepare_cached("DELETE FROM api_tokens WHERE bot_id = $1")
        .await
        .map_err(backend)?;
    client.execute(&tokens, &[&bot.0]).await.map_err(backend)?;
    let bots = client
        .prepare_cached("DELETE FROM bots WHERE user_id = $1")
        .await
        .map_err(backend)?;
    Ok(client.execute(&bots, &[&bot.0]).await.map_err(backend)? > 0)
}

pub(super) async fn create_api_token(
    store: &PostgresStore,
    token: NewApiToken,
) -> Result<ApiToken, StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO api_tokens (token_hash, bot_id, name, rooms, hook_room, created_by,
                                     created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .await
        .map_err(backend)?;
    let rooms = rooms_to_text(&token.rooms);
    let hook_room = token.hook_room.map(|r| r.0);
    let inserted = client
        .query_one(
            &stmt,
            &[
                &token.token_hash,
                &token.bot.0,
                &token.name,
                &rooms,
                &hook_room,
                &token.created_by.0,
                &token.created_at,
            ],
        )
        .await;
    match inserted {
        Ok(row) => Ok(ApiToken {
            id: TokenId(col(&row, 0)?),
            bot: token.bot,
            name: token.name,
            rooms: token.rooms,
            hook_room: token.hook_room,
            created_by: token.created_by,
            created_at: token.created_at,
            last_used_at: None,
        }),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict("token hash taken".into())),
        Err(e) => Err(backend(e)),
    }
}

pub(super) async fn api_tokens(
    store: &PostgresStore,
    of: TokensOf,
) -> Result<Vec<ApiToken>, StoreError> {
    let client = store.client().await?;
    let (sql, key) = match of {
        TokensOf::Bot(bot) => (
            format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t
                 WHERE t.bot_id = $1 AND t.hook_room IS NULL ORDER BY t.id"
            ),
            bot.0,
        ),
        TokensOf::Hooks(room) => (
            format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.hook_room = $1 ORDER BY t.id"
            ),
            room.0,
        ),
    };
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client.query(&stmt, &[&key]).await.map_err(backend)?;
    rows.iter().map(token_from).collect()
}

pub(super) async fn api_token(
    store: &PostgresStore,
    token_hash: &[u8],
) -> Result<Option<(ApiToken, User)>, StoreError> {
    let client = store.client().await?;
    let sql = format!(
        "SELECT {TOKEN_COLUMNS}, u.id, u.name, u.guest, u.bot FROM api_tokens t
         JOIN users u ON u.id = t.bot_id WHERE t.token_hash = $1"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    client
        .query_opt(&stmt, &[&token_hash])
        .await
        .map_err(backend)?
        .map(|r| Ok((token_from(&r)?, user_from(&r, 8)?)))
        .transpose()
}

pub(super) async fn delete_api_token(
    store: &PostgresStore,
    id: TokenId,
) -> Result<Option<ApiToken>, StoreError> {
    let client = store.client().await?;
    let sql = format!("DELETE FROM api_tokens t WHERE t.id = $1 RETURNING {TOKEN_COLUMNS}");
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    client
        .query_opt(&stmt, &[&id.0])
        .await
        .map_err(backend)?
        .map(|r| token_from(&r))
        .transpose()
}

pub(super) async fn touch_api_token(
    store: &PostgresStore,
    id: TokenId,
    now: Millis,
) -> Result<(), StoreError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
        .await
        .map_err(backend)?;
    client
        .execute(&stmt, &[&id.0, &now])
        .await
        .map_err(backend)?;
    Ok(())
}
