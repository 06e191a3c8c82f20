//! PostgreSQL messages: `append`, which takes the room's next seq in the transaction that
//! inserts (see the module map in `mod.rs` for why that orders commits), retries by client id,
//! and history before or after a seq.

use super::error::backend;
use super::rows::{col, message_from, MESSAGE_COLUMNS};
use super::PostgresStore;
use deadpool_postgres::GenericClient;
use natter_core::model::*;
use natter_core::StoreError;

async fn find_message(
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
    }))
}

pub(super) async fn append(
    store: &PostgresStore,
    message: NewMessage,
) -> Result<Appended, StoreError> {
    // One connection for the whole append: once it has one, an append is not refused
    // halfway for a busy pool. The insert comes first (a retry is the rare case): three
    // round trips (BEGIN, the insert, COMMIT) where a lookup first made five.
    let mut client = store.client().await?;
    if let Some(stored) = insert_message(&mut client, &message).await? {
        return Ok(Appended {
            message: stored,
            duplicate: false,
        });
    }
    // Stored already (by an earlier attempt, or a concurrent one that won); or no room.
    let original = find_message(&client, message.sender.id, message.room, &message.client_id)
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
    rows.iter().map(message_from).collect()
}

pub(super) async fn messages_before(
    store: &PostgresStore,
    room: RoomId,
    before: Option<Seq>,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    let before = before.map_or(i64::MAX, |s| s.0);
    let client = store.client().await?;
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
             WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client
        .query(&stmt, &[&room.0, &before, &i64::from(limit)])
        .await
        .map_err(backend)?;
    let mut out = rows
        .iter()
        .map(message_from)
        .collect::<Result<Vec<_>, _>>()?;
    out.reverse();
    Ok(out)
}
