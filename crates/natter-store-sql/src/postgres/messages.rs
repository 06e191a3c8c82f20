//! PostgreSQL messages: `append`, which takes the room's next seq in the transaction that
//! inserts (see the module map in `mod.rs` for why that orders commits), retries by client id,
//! the stream after a seq (entries as stored), and history: pages of a room's timeline or of
//! a thread, and single messages, in their current state with their reactions; every read
//! gives each message its files.

use super::changes::append_with_extras;
use super::error::backend;
use super::rows::{col, message_from, reaction_from, MESSAGE_COLUMNS};
use super::PostgresStore;
use crate::entries::{attach_reactions, has_extras};
use deadpool_postgres::GenericClient;
use natter_core::model::*;
use natter_core::StoreError;

pub(super) async fn find_message(
    client: &impl GenericClient,
    sender: UserId,
    room: RoomId,
    client_id: &str,
) -> Result<Option<Message>, StoreError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE m.sender_id = $1 AND m.room_id = $2 AND m.client_id = $3"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    client
        .query_opt(&stmt, &[&sender.0, &room.0, &client_id])
        .await
        .map_err(backend)?
        .map(|r| message_from(&r))
        .transpose()
}

/// Inserts a message in a transaction that holds the room's row lock: one statement bumps
/// the room's seq and inserts with it. None if nothing was stored: the same (sender, room,
/// client_id) is stored already (also by a concurrent attempt) or the room does not exist;
/// the transaction is then rolled back, so no seq is spent.
async fn insert_message(
    client: &mut deadpool_postgres::Object,
    message: &NewMessage,
) -> Result<Option<Message>, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let insert = tx
        .prepare_cached(
            "WITH bump AS (
                     UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq
                 )
                 INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at)
                 SELECT $1, last_seq, $2, $3, $4, $5 FROM bump
                 ON CONFLICT (sender_id, room_id, client_id) DO NOTHING RETURNING id, seq",
        )
        .await
        .map_err(backend)?;
    let row = tx
        .query_opt(
            &insert,
            &[
                &message.room.0,
                &message.sender.id.0,
                &message.body,
                &message.client_id,
                &message.ts,
            ],
        )
        .await
        .map_err(backend)?;
    let Some(row) = row else {
        tx.rollback().await.map_err(backend)?;
        return Ok(None);
    };
    let (id, seq) = (col(&row, 0)?, col(&row, 1)?);
    tx.commit().await.map_err(backend)?;
    Ok(Some(Message {
        id: MessageId(id),
        room: message.room,
        seq: Seq(seq),
        sender: message.sender.clone(),
        body: message.body.clone(),
        ts: message.ts,
        client_id: message.client_id.clone(),
        ..Message::default()
    }))
}

/// Appends through the node's group commit (`appender`): stored in its lane's next batch.
pub(super) async fn append(
    store: &PostgresStore,
    message: NewMessage,
) -> Result<Appended, StoreError> {
    let answer = store.appender.submit(message)?;
    answer
        .await
        .map_err(|_| StoreError::Backend("the append was dropped unanswered".into()))?
}

/// Appends one message on `client`, in its own transaction: the path of a message with
/// extras, and of a batch that met a retry. The insert comes first (a retry is the rare
/// case): three round trips (BEGIN, the insert, COMMIT) where a lookup first made five.
pub(super) async fn append_one(
    client: &mut deadpool_postgres::Object,
    message: NewMessage,
) -> Result<Appended, StoreError> {
    if has_extras(&message) {
        return append_with_extras(client, message).await;
    }
    if let Some(stored) = insert_message(client, &message).await? {
        return Ok(Appended {
            message: stored,
            duplicate: false,
        });
    }
    // Stored already (by an earlier attempt, or a concurrent one that won); or no room.
    let original = find_message(
        &*client,
        message.sender.id,
        message.room,
        &message.client_id,
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(Appended {
        message: original,
        duplicate: true,
    })
}

pub(super) async fn messages_after(
    store: &PostgresStore,
    room: RoomId,
    after: Seq,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let client = store.client().await?;
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
             WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client
        .query(&stmt, &[&room.0, &after.0, &i64::from(limit)])
        .await
        .map_err(backend)?;
    let mut entries = rows
        .iter()
        .map(message_from)
        .collect::<Result<Vec<_>, _>>()?;
    super::files::with_files(&client, room, &mut entries).await?;
    Ok(entries)
}

/// The page's filter for `scope` (`$4` is the thread's parent seq).
fn scope_filter(scope: Scope) -> &'static str {
    match scope {
        Scope::Room => "m.kind = 0 AND (m.thread IS NULL OR m.also_room)",
        Scope::RoomAndEvents => {
            "(m.kind = 4 OR (m.kind = 0 AND (m.thread IS NULL OR m.also_room)))"
        }
        Scope::Thread(_) => "m.kind = 0 AND m.thread = $4",
    }
}

pub(super) async fn message_page(
    store: &PostgresStore,
    room: RoomId,
    scope: Scope,
    before: Option<Seq>,
    after: Option<Seq>,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let filter = scope_filter(scope);
    let (sql, bound, newest_first) = match after {
        Some(after) => (
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
                 WHERE m.room_id = $1 AND m.seq > $2 AND {filter} ORDER BY m.seq LIMIT $3"
            ),
            after.0,
            false,
        ),
        None => (
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
                 WHERE m.room_id = $1 AND m.seq < $2 AND {filter} ORDER BY m.seq DESC LIMIT $3"
            ),
            before.map_or(i64::MAX, |s| s.0),
            true,
        ),
    };
    let client = store.client().await?;
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let limit = i64::from(limit);
    let rows = match scope {
        Scope::Room | Scope::RoomAndEvents => client.query(&stmt, &[&room.0, &bound, &limit]).await,
        Scope::Thread(parent) => {
            client
                .query(&stmt, &[&room.0, &bound, &limit, &parent.0])
                .await
        }
    }
    .map_err(backend)?;
    let mut page = rows
        .iter()
        .map(message_from)
        .collect::<Result<Vec<_>, _>>()?;
    if newest_first {
        page.reverse();
    }
    with_reactions(&client, room, &mut page).await?;
    super::files::with_files(&client, room, &mut page).await?;
    Ok(page)
}

pub(super) async fn message(
    store: &PostgresStore,
    room: RoomId,
    seq: Seq,
) -> Result<Option<Message>, StoreError> {
    let client = store.client().await?;
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
             WHERE m.room_id = $1 AND m.seq = $2 AND m.kind = 0"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let row = client
        .query_opt(&stmt, &[&room.0, &seq.0])
        .await
        .map_err(backend)?;
    let mut page = row
        .iter()
        .map(message_from)
        .collect::<Result<Vec<_>, _>>()?;
    with_reactions(&client, room, &mut page).await?;
    super::files::with_files(&client, room, &mut page).await?;
    Ok(page.pop())
}

/// Fills in the reactions of a page with one query for its seqs.
async fn with_reactions(
    client: &impl GenericClient,
    room: RoomId,
    page: &mut [Message],
) -> Result<(), StoreError> {
    if page.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = page.iter().map(|m| m.seq.0).collect();
    let stmt = client
        .prepare_cached(
            "SELECT r.seq, r.emoji, u.id, u.name, u.guest, u.bot
             FROM reactions r JOIN users u ON u.id = r.user_id
             WHERE r.room_id = $1 AND r.seq = ANY($2)
             ORDER BY r.seq, r.emoji_order, r.user_order",
        )
        .await
        .map_err(backend)?;
    let rows = client
        .query(&stmt, &[&room.0, &seqs])
        .await
        .map_err(backend)?;
    let rows = rows
        .iter()
        .map(reaction_from)
        .collect::<Result<Vec<_>, _>>()?;
    attach_reactions(page, rows);
    Ok(())
}
