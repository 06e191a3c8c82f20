//! Group commit of appends on PostgreSQL (ADR 0025): sends from every connection of a node
//! are stored many to a transaction and to a statement, where each append was a commit of its
//! own (ADR 0011: ~3k acknowledged sends/s, the ceiling of a whole cluster).
//!
//! An append joins the queue of one of [`LANES`] lanes, chosen by its room, when it is first
//! polled; each lane is a task that takes whatever its queue holds (up to [`MAX_BATCH`]) and
//! stores it in order. Consecutive plain messages (no thread, mentions, files or rules to
//! check) go into one transaction: the rooms of the batch locked in id order, then one
//! statement that bumps each room's `last_seq` by its count and inserts every message with
//! the seq it gives (the database still allocates seqs, under the room's row lock, as in ADR
//! 0011). A message with extras is stored alone, in its place in line, by the one-message path
//! (`changes::append_with_extras`). So one room's appends are stored in the order they were
//! issued ([`natter_core::Store::keeps_issue_order`]), and a connection may pipeline sends.
//!
//! Retries keep their meaning: a batch that holds the same (sender, room, client_id) twice
//! stores it once and answers the second as its duplicate; a batch that meets one stored
//! before (a retry, or a concurrent attempt on another node) rolls back without spending a
//! seq and stores its messages one by one through the one-message path, which returns
//! originals. The queue is bounded: a full lane refuses at once with `Busy` (ADR 0012).

use super::changes::append_with_extras;
use super::error::{backend, is_unique_violation};
use super::messages::append_one;
use super::pool::pooled;
use super::rows::col;
use crate::entries::has_extras;
use deadpool_postgres::Pool;
use natter_core::model::*;
use natter_core::StoreError;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// Lanes per node: batches of different lanes commit in parallel on their own connections.
pub const LANES: usize = 4;
/// Appends waiting in one lane at most; one more is refused with `Busy`.
pub const LANE_QUEUE: usize = 4096;
/// Appends taken into one batch at most.
pub const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Appended, StoreError>>;

struct Job {
    message: NewMessage,
    reply: Reply,
}

/// The lanes' queues. Dropping it (or [`Appender::finish`]) ends the lanes once their queues
/// are empty.
pub(super) struct Appender {
    /// Empty once finished: later appends are refused.
    lanes: std::sync::RwLock<Vec<mpsc::Sender<Job>>>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Appender {
    /// Starts the lanes (on the current tokio runtime), each taking connections from `pool`.
    pub(super) fn start(pool: Pool, max_waiting: usize, queue_bound: usize) -> Appender {
        let (lanes, tasks) = (0..LANES)
            .map(|_| {
                let (queue, jobs) = mpsc::channel(queue_bound.max(1));
                (queue, tokio::spawn(lane(pool.clone(), max_waiting, jobs)))
            })
            .unzip();
        Appender {
            lanes: std::sync::RwLock::new(lanes),
            tasks: std::sync::Mutex::new(tasks),
        }
    }

    /// Appends queued in the lanes, not yet taken into a batch.
    pub(super) fn waiting(&self) -> usize {
        let lanes = self.lanes.read().unwrap_or_else(|e| e.into_inner());
        lanes.iter().map(|q| q.max_capacity() - q.capacity()).sum()
    }

    /// Refuses new appends and waits until every queued one is stored and answered.
    pub(super) async fn finish(&self) {
        self.lanes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Puts `message` in its room's lane now; the answer comes when its batch has committed.
    pub(super) fn submit(
        &self,
        message: NewMessage,
    ) -> Result<oneshot::Receiver<Result<Appended, StoreError>>, StoreError> {
        let lane = message.room.0.rem_euclid(LANES as i64) as usize;
        let (reply, answer) = oneshot::channel();
        let lanes = self.lanes.read().unwrap_or_else(|e| e.into_inner());
        let Some(queue) = lanes.get(lane) else {
            return Err(StoreError::Backend("the store is shut down".into()));
        };
        queue
            .try_send(Job { message, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::Backend("the store is shut down".into())
                }
            })?;
        Ok(answer)
    }
}

/// One lane: batches of what its queue holds, stored in queue order.
async fn lane(pool: Pool, max_waiting: usize, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let mut plain = Vec::new();
        for job in jobs.drain(..) {
            if !has_extras(&job.message) {
                plain.push(job);
                continue;
            }
            commit_plain(&pool, max_waiting, &mut plain).await;
            let result = match pooled(&pool, max_waiting).await {
                Ok(mut client) => append_with_extras(&mut client, job.message).await,
                Err(e) => Err(e),
            };
            let _ = job.reply.send(result);
        }
        commit_plain(&pool, max_waiting, &mut plain).await;
    }
}

/// A copy of an error for each append of a failed batch.
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Busy => StoreError::Busy,
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(s) => StoreError::Conflict(s.clone()),
        StoreError::Refused(r) => StoreError::Refused(*r),
        StoreError::Backend(s) => StoreError::Backend(s.clone()),
    }
}

/// Stores `jobs` (plain messages, in order) and answers each; leaves `jobs` empty.
async fn commit_plain(pool: &Pool, max_waiting: usize, jobs: &mut Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    let mut client = match pooled(pool, max_waiting).await {
        Ok(c) => c,
        Err(e) => {
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(copy(&e)));
            }
            return;
        }
    };
    // The first of each (sender, room, client_id) is stored; a later one is its duplicate.
    let mut first: HashMap<(i64, i64, &str), usize> = HashMap::new();
    let mut unique = Vec::with_capacity(jobs.len());
    let mut same_as = vec![None; jobs.len()];
    for (i, job) in jobs.iter().enumerate() {
        let m = &job.message;
        match first.entry((m.sender.id.0, m.room.0, m.client_id.as_str())) {
            std::collections::hash_map::Entry::Occupied(e) => same_as[i] = Some(*e.get()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(unique.len());
                unique.push(&job.message);
            }
        }
    }
    drop(first);
    match insert_batch(&mut client, &unique).await {
        Ok(Some(stored)) => {
            let mut next = 0;
            for (job, same) in jobs.drain(..).zip(same_as) {
                let appended = match same {
                    Some(at) => Appended {
                        message: stored[at].clone(),
                        duplicate: true,
                    },
                    None => {
                        next += 1;
                        Appended {
                            message: stored[next - 1].clone(),
                            duplicate: false,
                        }
                    }
                };
                let _ = job.reply.send(Ok(appended));
            }
        }
        // Something of the batch was stored before, or a room is gone: nothing was stored.
        // One by one, the one-message path tells each apart (originals, not found).
        Ok(None) => {
            for job in jobs.drain(..) {
                let result = append_one(&mut client, job.message).await;
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(copy(&e)));
            }
        }
    }
}

/// Stores `messages` (no two with the same key) in one transaction; the stored messages in
/// the same order, or None (rolled back) if any was not inserted: stored before, or no room.
async fn insert_batch(
    client: &mut deadpool_postgres::Object,
    messages: &[&NewMessage],
) -> Result<Option<Vec<Message>>, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let mut rooms: Vec<i64> = messages.iter().map(|m| m.room.0).collect();
    rooms.sort_unstable();
    rooms.dedup();
    if rooms.len() > 1 {
        // Row locks in id order, so two batches (or nodes) sharing rooms cannot deadlock.
        let lock = tx
            .prepare_cached("SELECT id FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .await
            .map_err(backend)?;
        tx.query(&lock, &[&rooms]).await.map_err(backend)?;
    }
    let insert = tx
        .prepare_cached(
            "WITH input AS (
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[],
                                      $5::bigint[]) WITH ORDINALITY
                     AS t(room_id, sender_id, body, client_id, created_at, ord)
             ), counts AS (
                 SELECT room_id, count(*) AS n FROM input GROUP BY room_id
             ), bump AS (
                 UPDATE rooms r SET last_seq = r.last_seq + c.n FROM counts c
                 WHERE r.id = c.room_id RETURNING r.id, r.last_seq - c.n AS base
             )
             INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at)
             SELECT i.room_id,
                    b.base + row_number() OVER (PARTITION BY i.room_id ORDER BY i.ord),
                    i.sender_id, i.body, i.client_id, i.created_at
             FROM input i JOIN bump b ON b.id = i.room_id
             ON CONFLICT (sender_id, room_id, client_id) DO NOTHING
             RETURNING id, room_id, seq, sender_id, client_id",
        )
        .await
        .map_err(backend)?;
    let room_ids: Vec<i64> = messages.iter().map(|m| m.room.0).collect();
    let senders: Vec<i64> = messages.iter().map(|m| m.sender.id.0).collect();
    let bodies: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
    let client_ids: Vec<&str> = messages.iter().map(|m| m.client_id.as_str()).collect();
    let created: Vec<i64> = messages.iter().map(|m| m.ts).collect();
    let rows = match tx
        .query(
            &insert,
            &[&room_ids, &senders, &bodies, &client_ids, &created],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) if is_unique_violation(&e) => return Ok(None),
        Err(e) => return Err(backend(e)),
    };
    if rows.len() != messages.len() {
        tx.rollback().await.map_err(backend)?;
        return Ok(None);
    }
    let mut at: HashMap<(i64, i64, String), (i64, i64)> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let (id, room, seq, sender, client_id): (i64, i64, i64, i64, String) = (
            col(row, 0)?,
            col(row, 1)?,
            col(row, 2)?,
            col(row, 3)?,
            col(row, 4)?,
        );
        at.insert((sender, room, client_id), (id, seq));
    }
    let mut stored = Vec::with_capacity(messages.len());
    for m in messages {
        let key = (m.sender.id.0, m.room.0, m.client_id.clone());
        let Some(&(id, seq)) = at.get(&key) else {
            tx.rollback().await.map_err(backend)?;
            return Ok(None);
        };
        stored.push(Message {
            id: MessageId(id),
            room: m.room,
            seq: Seq(seq),
            sender: m.sender.clone(),
            body: m.body.clone(),
            ts: m.ts,
            client_id: m.client_id.clone(),
            ..Message::default()
        });
    }
    tx.commit().await.map_err(backend)?;
    Ok(Some(stored))
}
