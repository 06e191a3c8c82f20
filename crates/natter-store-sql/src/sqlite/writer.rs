//! The SQLite writer thread: the one connection that writes, with group commit. Jobs arrive
//! on a channel in the order they were issued; the writer takes everything queued (up to
//! `MAX_BATCH`), runs it in one transaction, and reports each job's outcome only after
//! COMMIT, so an acknowledged write is on disk. After a batch of `LINGER.after` jobs or more
//! (the server is busy) it waits up to `LINGER.wait` for the next batch to fill to
//! `LINGER.jobs`: fewer, larger commits under load, no wait for a quiet chat (ADR 0033).
//!
//! Appends, the hot path, are typed jobs run without a savepoint: one cached
//! `INSERT ... ON CONFLICT DO NOTHING RETURNING` each (a failing statement undoes only itself,
//! so a bad message fails alone). The room's seq comes from `seqs`, a map kept on this thread
//! and loaded lazily from `rooms.last_seq`; the column is written once per room per batch,
//! before COMMIT (and before any other job, which may read it), so it commits together with
//! the messages and a restart finds it exact. Every other write is a boxed closure in its own
//! savepoint, as before.
//! Appends with more to them than one row (thread replies, mentions) take a savepoint of
//! their own (`append_with_extras`); a plain message still costs its one insert.
//!
//! The search indexes are not filled in every batch (ADR 0032): at a few messages per commit,
//! FTS5 wrote an index segment, its structure record and `search_progress` at each one. The
//! writer indexes what is new once `INDEX_AFTER` messages wait, once the oldest has waited
//! `INDEX_DELAY`, when a search asks for it (`WriteJob::Index`), and before it stops; indexing
//! stays in the transaction of the batch it runs in, and `search_progress` says how far it
//! got, so a crash leaves nothing half-indexed. `unindexed`, shared with the store, is set
//! before any batch commits messages it does not index and cleared after a batch that
//! indexed everything committed: a search that finds it clear sees every acknowledged
//! message in the indexes.

use super::changes::append_with_extras;
use super::error::backend;
use super::messages::find_message;
use super::MAX_BATCH;
use crate::entries::has_extras;
use natter_core::model::*;
use natter_core::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A batch (its transaction, COMMIT and fsync) that takes this long is logged as a warning.
const SLOW_BATCH: Duration = Duration::from_secs(1);

/// Runs a parameterless statement through the statement cache (no re-parse per call).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

/// Messages that wait for the search indexes at most before a batch indexes them.
const INDEX_AFTER: usize = 32;
/// How long the oldest message waits for the search indexes at most (unless a search asks
/// first: it never waits for this).
const INDEX_DELAY: Duration = Duration::from_millis(500);

/// How the writer gathers a batch under load (ADR 0033): when the last batch had at least
/// `after` jobs, it waits up to `wait` for more before it commits, until the batch holds
/// `jobs`. Fewer, larger commits when the server is busy: each commit has a fixed cost (its
/// WAL header, locks, `fsync`) that the batch's messages share. A quiet chat (batches of one)
/// never waits.
#[derive(Clone, Copy, Debug)]
pub(super) struct Linger {
    pub(super) after: usize,
    pub(super) wait: Duration,
    pub(super) jobs: usize,
    /// The writer sleeps this long at a time while it waits, then takes what arrived.
    pub(super) slice: Duration,
}

/// Natter's gathering: after a batch of 4 or more, up to 1 ms for up to 64 jobs, in one sleep
/// (at the rooms benchmark's limit, about 5,000 messages a second, 64 jobs never arrive in
/// less than 1 ms, so a shorter sleep would only wake the writer more often).
pub(super) const LINGER: Linger = Linger {
    after: 4,
    wait: Duration::from_millis(1),
    jobs: 64,
    slice: Duration::from_millis(1),
};

/// Rooms whose seq is kept in memory at most; beyond that the map starts afresh (between
/// batches, when nothing in it is unwritten).
const MAX_CACHED_ROOMS: usize = 100_000;

/// What a closure job leaves for after the commit: whether it succeeded (else its savepoint
/// is rolled back) and how to report the outcome.
pub(super) struct JobDone {
    pub(super) ok: bool,
    pub(super) finish: Box<dyn FnOnce(Result<(), String>) + Send>,
}

/// A closure write to run inside the writer's current transaction (`None`: the transaction
/// could not be started or was lost; the job must report failure).
pub(super) type ClosureJob = Box<dyn FnOnce(Option<&Connection>) -> JobDone + Send>;

/// One unit of work for the writer thread.
pub(super) enum WriteJob {
    /// Store a message (see the module comment); the reply is sent after COMMIT.
    Append {
        message: NewMessage,
        reply: oneshot::Sender<Result<Appended, StoreError>>,
    },
    /// Store a change (edit, delete, reaction) as the room's next entry, in a savepoint.
    Change {
        change: NewChange,
        reply: oneshot::Sender<Result<ChangeOutcome, StoreError>>,
    },
    /// Any other write, run in its own savepoint.
    Closure(ClosureJob),
    /// Bring the search indexes up to date in this batch (a search is waiting); the reply
    /// comes after COMMIT.
    Index {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

impl WriteJob {
    /// A closure write: `f` runs in the writer's transaction, in its own savepoint; `reply`
    /// gets its result once the batch has committed, or why it was not run or not committed.
    pub(super) fn closure<T, F>(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> WriteJob
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        WriteJob::Closure(Box::new(move |conn| match conn {
            None => JobDone {
                ok: false,
                finish: Box::new(move |r| {
                    let e = r.err().unwrap_or_else(|| "no transaction".into());
                    let _ = reply.send(Err(StoreError::Backend(e)));
                }),
            },
            Some(conn) => {
                let result = f(conn);
                JobDone {
                    ok: result.is_ok(),
                    finish: Box::new(move |committed| {
                        let outcome = match committed {
                            Ok(()) => result,
                            Err(e) => Err(StoreError::Backend(e)),
                        };
                        let _ = reply.send(outcome);
                    }),
                }
            }
        }))
    }

    /// Reports failure without running the job.
    fn fail(self, error: &str) {
        match self {
            WriteJob::Append { reply, .. } => {
                let _ = reply.send(Err(StoreError::Backend(error.to_string())));
            }
            WriteJob::Change { reply, .. } => {
                let _ = reply.send(Err(StoreError::Backend(error.to_string())));
            }
            WriteJob::Closure(job) => (job(None).finish)(Err(error.to_string())),
            WriteJob::Index { reply } => {
                let _ = reply.send(Err(StoreError::Backend(error.to_string())));
            }
        }
    }
}

/// A job that ran, waiting for the batch's COMMIT to report.
// An append's outcome is kept inline: a batch's finishes share one Vec allocated per batch,
// where boxing it would allocate once per append on the hot path.
#[allow(clippy::large_enum_variant)]
enum Finish {
    Append(
        oneshot::Sender<Result<Appended, StoreError>>,
        Result<Appended, StoreError>,
    ),
    Change(
        oneshot::Sender<Result<ChangeOutcome, StoreError>>,
        Result<ChangeOutcome, StoreError>,
    ),
    Closure(Box<dyn FnOnce(Result<(), String>) + Send>),
    Index(oneshot::Sender<Result<(), StoreError>>),
}

impl Finish {
    fn report(self, committed: &Result<(), String>) {
        match self {
            Finish::Append(reply, result) => {
                let outcome = match committed {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Backend(e.clone())),
                };
                let _ = reply.send(outcome);
            }
            Finish::Change(reply, result) => {
                let outcome = match committed {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Backend(e.clone())),
                };
                let _ = reply.send(outcome);
            }
            Finish::Closure(finish) => finish(committed.clone()),
            Finish::Index(reply) => {
                let _ = reply.send(committed.clone().map_err(StoreError::Backend));
            }
        }
    }
}

pub(super) struct Writer {
    conn: Connection,
    /// Each room's last seq as of the open transaction (loaded from `rooms.last_seq`).
    seqs: HashMap<RoomId, i64>,
    /// Rooms whose seq in `seqs` is ahead of `rooms.last_seq`.
    dirty: HashSet<RoomId>,
    /// `PRAGMA data_version` at the last batch: it changes when another connection commits,
    /// after which `seqs` cannot be trusted.
    data_version: Option<i64>,
    /// Set while committed messages may be missing from the search indexes (shared with the
    /// store, whose searches first ask for an index pass while it is set).
    unindexed: Arc<AtomicBool>,
    /// Since when the search indexes are behind, and by how many appends (None: not behind).
    behind: Option<(Instant, usize)>,
}

/// The batch that starts with `first` (none: an index pass came due, and the batch is
/// empty): every job already queued, up to `MAX_BATCH`; and when the last batch had
/// `linger.after` jobs or more, what arrives within `linger.wait`, up to `linger.jobs`.
pub(super) fn gather(
    jobs: &mpsc::Receiver<WriteJob>,
    first: Option<WriteJob>,
    last_batch: usize,
    linger: Linger,
) -> Vec<WriteJob> {
    let mut batch: Vec<WriteJob> = first.into_iter().collect();
    if batch.is_empty() {
        return batch;
    }
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    let want = linger.jobs.min(MAX_BATCH);
    if last_batch >= linger.after && batch.len() < want {
        // Sleep, then take what came: a job sent while the writer sleeps wakes nobody, where
        // waiting on the queue cost a wake-up of this thread (two context switches on the
        // event loop's core) for every job.
        let until = Instant::now() + linger.wait;
        'linger: loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(linger.slice));
            while batch.len() < want {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => break 'linger,
                }
            }
            if batch.len() >= want {
                break;
            }
        }
    }
    batch
}

impl Writer {
    /// A writer on `conn`; `unindexed` is shared with the store (see the module comment). A
    /// new writer assumes the indexes are behind (an earlier run may have stopped before
    /// indexing): its first index pass is due after `INDEX_DELAY`.
    pub(super) fn new(conn: Connection, unindexed: Arc<AtomicBool>) -> Writer {
        unindexed.store(true, Ordering::Release);
        Writer {
            conn,
            seqs: HashMap::new(),
            dirty: HashSet::new(),
            data_version: None,
            unindexed,
            behind: Some((Instant::now(), 0)),
        }
    }

    /// Runs batches until every sender is gone (the store was dropped or shut down).
    pub(super) fn run(mut self, jobs: mpsc::Receiver<WriteJob>) {
        let mut last_batch = 0;
        loop {
            let first = match self.behind {
                // Wait for a job, or until the index pass is due.
                Some((since, _)) => {
                    let wait = (since + INDEX_DELAY).saturating_duration_since(Instant::now());
                    match jobs.recv_timeout(wait) {
                        Ok(job) => Some(job),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match jobs.recv() {
                    Ok(job) => Some(job),
                    Err(_) => break,
                },
            };
            let batch = gather(&jobs, first, last_batch, LINGER);
            last_batch = batch.len();
            // An empty batch is the index pass that came due.
            self.run_batch(batch);
        }
        // Index what waits, then checkpoint so the WAL is folded in.
        if self.behind.is_some() {
            self.run_batch(Vec::new());
        }
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    }

    /// Whether the batch about to commit (with `appended` messages of its own) indexes:
    /// `asked` by a search or by an empty batch, or the waiting messages reached
    /// `INDEX_AFTER`, or the oldest has waited `INDEX_DELAY`.
    fn index_due(&self, asked: bool, appended: usize, now: Instant) -> bool {
        match self.behind {
            None => asked || appended >= INDEX_AFTER,
            Some((since, waiting)) => {
                asked || waiting + appended >= INDEX_AFTER || now >= since + INDEX_DELAY
            }
        }
    }

    /// Runs `batch` in one transaction and reports every job's outcome after COMMIT.
    pub(super) fn run_batch(&mut self, batch: Vec<WriteJob>) {
        let started = Instant::now();
        let jobs = batch.len();
        // An empty batch (the index pass came due, or the writer is stopping) or a search's
        // request indexes whatever waits.
        let asked = batch.is_empty() || batch.iter().any(|j| matches!(j, WriteJob::Index { .. }));
        let appended = batch
            .iter()
            .filter(|j| matches!(j, WriteJob::Append { .. }))
            .count();
        let index = self.index_due(asked, appended, started);
        if let Err(e) = self.begin() {
            tracing::error!(error = %e, "sqlite BEGIN failed");
            for job in batch {
                job.fail(&e);
            }
            return;
        }
        let mut finishes = Vec::with_capacity(batch.len());
        let mut not_run = Vec::new();
        // Set when the transaction can no longer commit: the rest of the batch is not run.
        let mut aborted: Option<String> = None;
        for job in batch {
            if aborted.is_none() && matches!(job, WriteJob::Closure(_)) {
                // A closure may read (or change) rooms.last_seq: bring it up to date first.
                aborted = self.write_seqs().err();
            }
            if aborted.is_some() {
                not_run.push(job);
                continue;
            }
            finishes.push(self.run_job(job));
            if self.conn.is_autocommit() {
                // SQLite rolled the whole transaction back (an I/O error, a full disk).
                aborted = Some("sqlite rolled the transaction back".into());
            }
        }
        let committed = match aborted {
            Some(e) => Err(e),
            None => self
                .write_seqs()
                .and_then(|()| {
                    if index {
                        super::indexing::index_new_messages(&self.conn)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    } else {
                        // Whatever this batch stored waits for a later pass: say so before
                        // any of it is acknowledged.
                        self.unindexed.store(true, Ordering::Release);
                        Ok(())
                    }
                })
                .and_then(|()| self.commit()),
        };
        match (&committed, index) {
            (Ok(()), true) => {
                // Everything committed is indexed (this is the only writer of messages).
                self.behind = None;
                self.unindexed.store(false, Ordering::Release);
            }
            (Ok(()), false) => {
                // Behind since the oldest batch not indexed, by every append since.
                self.behind.get_or_insert((started, 0)).1 += appended;
            }
            // Nothing of the batch was committed: the indexes are as far behind as before; a
            // pass that failed is tried again after `INDEX_DELAY`, not at once in a loop.
            (Err(_), true) => {
                if let Some((since, _)) = &mut self.behind {
                    *since = started;
                }
            }
            (Err(_), false) => {}
        }
        if let Err(e) = &committed {
            tracing::error!(error = %e, "sqlite batch not committed");
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.forget_seqs();
            for job in not_run {
                job.fail(e);
            }
        }
        for finish in finishes {
            finish.report(&committed);
        }
        let took = started.elapsed();
        if took >= SLOW_BATCH {
            // Every reply of the batch waited this long: say so, it is usually the disk.
            tracing::warn!(
                ms = took.as_millis() as u64,
                jobs,
                "sqlite write batch was slow"
            );
        }
    }

    fn begin(&mut self) -> Result<(), String> {
        run_cached(&self.conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
        let version: i64 = match self
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
        {
            Ok(version) => version,
            Err(e) => {
                // Leave no transaction open behind a failed start.
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(e.to_string());
            }
        };
        if self.data_version != Some(version) || self.seqs.len() > MAX_CACHED_ROOMS {
            self.forget_seqs();
            self.data_version = Some(version);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), String> {
        run_cached(&self.conn, "COMMIT")
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn forget_seqs(&mut self) {
        self.seqs.clear();
        self.dirty.clear();
    }

    /// Writes the seqs that moved to `rooms.last_seq`.
    fn write_seqs(&mut self) -> Result<(), String> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE rooms SET last_seq = ?2 WHERE id = ?1")
            .map_err(|e| e.to_string())?;
        for room in self.dirty.drain() {
            let seq = self.seqs.get(&room).copied().unwrap_or_default();
            stmt.execute(params![room.0, seq])
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn run_job(&mut self, job: WriteJob) -> Finish {
        match job {
            WriteJob::Append { message, reply } => Finish::Append(reply, self.append(message)),
            WriteJob::Change { change, reply } => Finish::Change(reply, self.change(change)),
            WriteJob::Index { reply } => Finish::Index(reply),
            WriteJob::Closure(job) => {
                // Each closure in its own savepoint, so a failing one leaves no trace.
                let _ = run_cached(&self.conn, "SAVEPOINT job");
                let done = job(Some(&self.conn));
                if !done.ok {
                    let _ = run_cached(&self.conn, "ROLLBACK TO job");
                }
                let _ = run_cached(&self.conn, "RELEASE job");
                // Whatever it did to rooms is read afresh.
                self.seqs.clear();
                Finish::Closure(done.finish)
            }
        }
    }

    /// The room's last seq in the open transaction; `NotFound` if there is no such room.
    fn last_seq(&mut self, room: RoomId) -> Result<i64, StoreError> {
        if let Some(seq) = self.seqs.get(&room) {
            return Ok(*seq);
        }
        let seq: i64 = self
            .conn
            .prepare_cached("SELECT last_seq FROM rooms WHERE id = ?1")
            .map_err(backend)?
            .query_row([room.0], |r| r.get(0))
            .optional()
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        self.seqs.insert(room, seq);
        Ok(seq)
    }

    fn append(&mut self, message: NewMessage) -> Result<Appended, StoreError> {
        if has_extras(&message) {
            return self.append_with_extras(message);
        }
        let seq = self.last_seq(message.room)? + 1;
        let id: Option<i64> = self
            .conn
            .prepare_cached(
                "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (sender_id, room_id, client_id) DO NOTHING
                 RETURNING id",
            )
            .map_err(backend)?
            .query_row(
                params![
                    message.room.0,
                    seq,
                    message.sender.id.0,
                    message.body,
                    message.client_id,
                    message.ts
                ],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        let Some(id) = id else {
            // A retry: (sender, room, client_id) is stored already; return the original.
            let existing = find_message(
                &self.conn,
                message.sender.id,
                message.room,
                &message.client_id,
            )?
            .ok_or_else(|| StoreError::Backend("duplicate without an original".into()))?;
            return Ok(Appended {
                message: existing,
                duplicate: true,
            });
        };
        self.seqs.insert(message.room, seq);
        self.dirty.insert(message.room);
        Ok(Appended {
            message: Message {
                id: MessageId(id),
                room: message.room,
                seq: Seq(seq),
                sender: message.sender,
                body: message.body,
                ts: message.ts,
                client_id: message.client_id,
                ..Message::default()
            },
            duplicate: false,
        })
    }

    /// A change (`changes::apply_change`) as the room's next entry, in a savepoint of its own;
    /// the room's seq moves (in the cache, written before COMMIT) only if it was stored.
    fn change(&mut self, change: NewChange) -> Result<ChangeOutcome, StoreError> {
        let room = change.room;
        let seq = self.last_seq(room)? + 1;
        run_cached(&self.conn, "SAVEPOINT change").map_err(backend)?;
        let result = super::changes::apply_change(&self.conn, change, seq);
        if result.is_err() {
            let _ = run_cached(&self.conn, "ROLLBACK TO change");
        }
        let _ = run_cached(&self.conn, "RELEASE change");
        if matches!(&result, Ok(ChangeOutcome::Applied(_))) {
            self.seqs.insert(room, seq);
            self.dirty.insert(room);
        }
        result
    }

    /// A thread reply or a message with mentions (`changes::append_with_extras`): several
    /// statements, so in a savepoint of its own; a refusal or failure leaves no trace and
    /// spends no seq.
    fn append_with_extras(&mut self, message: NewMessage) -> Result<Appended, StoreError> {
        let room = message.room;
        let seq = self.last_seq(room)? + 1;
        run_cached(&self.conn, "SAVEPOINT extras").map_err(backend)?;
        let result = append_with_extras(&self.conn, Seq(seq), message);
        if result.is_err() {
            let _ = run_cached(&self.conn, "ROLLBACK TO extras");
        }
        let _ = run_cached(&self.conn, "RELEASE extras");
        if matches!(&result, Ok(a) if !a.duplicate) {
            self.seqs.insert(room, seq);
            self.dirty.insert(room);
        }
        result
    }
}

#[cfg(test)]
mod tests;
