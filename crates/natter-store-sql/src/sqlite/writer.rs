//! The SQLite writer thread: the one connection that writes, with group commit. Jobs arrive
//! on a channel in the order they were issued; the writer takes everything queued (up to
//! `MAX_BATCH`), runs it in one transaction, and reports each job's outcome only after
//! COMMIT, so an acknowledged write is on disk.
//!
//! Appends, the hot path, are typed jobs run without a savepoint: one cached
//! `INSERT ... ON CONFLICT DO NOTHING RETURNING` each (a failing statement undoes only itself,
//! so a bad message fails alone). The room's seq comes from `seqs`, a map kept on this thread
//! and loaded lazily from `rooms.last_seq`; the column is written once per room per batch,
//! before COMMIT (and before any other job, which may read it), so it commits together with
//! the messages and a restart finds it exact. Every other write is a boxed closure in its own
//! savepoint, as before.

use super::{backend, find_message, run_cached, MAX_BATCH};
use natter_core::model::*;
use natter_core::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use tokio::sync::oneshot;

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
    /// Any other write, run in its own savepoint.
    Closure(ClosureJob),
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
            WriteJob::Closure(job) => (job(None).finish)(Err(error.to_string())),
        }
    }
}

/// A job that ran, waiting for the batch's COMMIT to report.
enum Finish {
    Append(
        oneshot::Sender<Result<Appended, StoreError>>,
        Result<Appended, StoreError>,
    ),
    Closure(Box<dyn FnOnce(Result<(), String>) + Send>),
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
            Finish::Closure(finish) => finish(committed.clone()),
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
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Writer {
        Writer {
            conn,
            seqs: HashMap::new(),
            dirty: HashSet::new(),
            data_version: None,
        }
    }

    /// Runs batches until every sender is gone (the store was dropped or shut down).
    pub(super) fn run(mut self, jobs: mpsc::Receiver<WriteJob>) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.run_batch(batch);
        }
        // Checkpoint so the WAL is folded in.
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    }

    /// Runs `batch` in one transaction and reports every job's outcome after COMMIT.
    pub(super) fn run_batch(&mut self, batch: Vec<WriteJob>) {
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
            None => self.write_seqs().and_then(|()| self.commit()),
        };
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
            },
            duplicate: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{migrate, open_connection, Synchronous};

    /// A migrated database with users 1 (ana) and 2 (bob) and rooms 1 and 2; returns the
    /// writer and a second connection to the same file.
    fn setup(dir: &tempfile::TempDir) -> (Writer, Connection) {
        let path = dir.path().join("w.db");
        let mut conn = open_connection(&path, Synchronous::Normal).unwrap();
        migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, created_at) VALUES (1, 'ana', 'ana', 0), (2, 'bob', 'bob', 0);
             INSERT INTO rooms (id, name, kind, name_key, created_at) VALUES (1, 'one', 'public', 'one', 0), (2, 'two', 'public', 'two', 0);",
        )
        .unwrap();
        let other = open_connection(&path, Synchronous::Normal).unwrap();
        (Writer::new(conn), other)
    }

    fn user(id: i64) -> User {
        User {
            id: UserId(id),
            name: format!("u{id}"),
            guest: false,
        }
    }

    type Reply = oneshot::Receiver<Result<Appended, StoreError>>;

    fn append(room: i64, sender: i64, client_id: &str) -> (WriteJob, Reply) {
        let (reply, rx) = oneshot::channel();
        let message = NewMessage {
            room: RoomId(room),
            sender: user(sender),
            body: format!("body {client_id}"),
            client_id: client_id.into(),
            ts: 1,
        };
        (WriteJob::Append { message, reply }, rx)
    }

    /// A closure job running `f`; its outcome arrives on the receiver.
    fn closure<T: Send + 'static>(
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> (WriteJob, oneshot::Receiver<Result<T, StoreError>>) {
        let (tx, rx) = oneshot::channel();
        (WriteJob::closure(f, tx), rx)
    }

    fn seq_of(rx: &mut Reply) -> (i64, bool) {
        let appended = rx.try_recv().unwrap().unwrap();
        (appended.message.seq.0, appended.duplicate)
    }

    fn stored(conn: &Connection, room: i64) -> (i64, i64) {
        let count: i64 = conn
            .query_row(
                "SELECT count(*) FROM messages WHERE room_id = ?1",
                [room],
                |r| r.get(0),
            )
            .unwrap();
        let last: i64 = conn
            .query_row("SELECT last_seq FROM rooms WHERE id = ?1", [room], |r| {
                r.get(0)
            })
            .unwrap();
        (count, last)
    }

    #[test]
    fn a_failing_job_leaves_its_neighbours_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, other) = setup(&dir);
        let (a, mut ra) = append(1, 1, "a");
        let (unknown_sender, mut rb) = append(1, 99, "b");
        let (unknown_room, mut rc) = append(42, 1, "c");
        let (bad_closure, mut rd) = closure(|conn| {
            conn.execute(
                "INSERT INTO users (id, name, name_key, created_at) VALUES (3, 'x', 'ana', 0)",
                [],
            )
            .map_err(crate::sqlite::backend)
        });
        let (e, mut re) = append(1, 2, "e");
        writer.run_batch(vec![a, unknown_sender, unknown_room, bad_closure, e]);
        assert_eq!(seq_of(&mut ra), (1, false));
        assert!(
            rb.try_recv().unwrap().is_err(),
            "a sender that does not exist"
        );
        assert!(matches!(rc.try_recv().unwrap(), Err(StoreError::NotFound)));
        assert!(rd.try_recv().unwrap().is_err(), "a taken name");
        assert_eq!(
            seq_of(&mut re),
            (2, false),
            "no seq is lost to the failures"
        );
        assert_eq!(stored(&other, 1), (2, 2));
    }

    #[test]
    fn duplicates_within_and_across_batches_return_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, other) = setup(&dir);
        let (a, mut ra) = append(1, 1, "same");
        let (again, mut ragain) = append(1, 1, "same");
        let (bob, mut rbob) = append(1, 2, "same");
        writer.run_batch(vec![a, again, bob]);
        assert_eq!(seq_of(&mut ra), (1, false));
        assert_eq!(seq_of(&mut ragain), (1, true));
        assert_eq!(
            seq_of(&mut rbob),
            (2, false),
            "another sender's id is its own"
        );
        let (later, mut rlater) = append(1, 1, "same");
        let (next, mut rnext) = append(1, 1, "next");
        writer.run_batch(vec![later, next]);
        let original = rlater.try_recv().unwrap().unwrap();
        assert!(original.duplicate);
        assert_eq!(original.message.seq, Seq(1));
        assert_eq!(original.message.body, "body same");
        assert_eq!(seq_of(&mut rnext), (3, false));
        assert_eq!(stored(&other, 1), (3, 3));
    }

    #[test]
    fn a_closure_sees_the_seqs_appended_before_it_in_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _other) = setup(&dir);
        let (a, _ra) = append(2, 1, "a");
        let (b, _rb) = append(2, 1, "b");
        let (read, mut rread) = closure(|conn| {
            conn.query_row("SELECT last_seq FROM rooms WHERE id = 2", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(crate::sqlite::backend)
        });
        let (c, mut rc) = append(2, 1, "c");
        writer.run_batch(vec![a, b, read, c]);
        assert_eq!(rread.try_recv().unwrap().unwrap(), 2);
        assert_eq!(seq_of(&mut rc), (3, false));
    }

    #[test]
    fn seqs_written_by_another_connection_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, other) = setup(&dir);
        let (a, mut ra) = append(1, 1, "a");
        writer.run_batch(vec![a]);
        assert_eq!(seq_of(&mut ra), (1, false));
        other
            .execute_batch(
                "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at)
                 VALUES (1, 2, 2, 'elsewhere', 'x', 0);
                 UPDATE rooms SET last_seq = 2 WHERE id = 1;",
            )
            .unwrap();
        let (b, mut rb) = append(1, 1, "b");
        writer.run_batch(vec![b]);
        assert_eq!(seq_of(&mut rb), (3, false));
    }

    #[test]
    fn a_batch_that_cannot_commit_fails_whole_and_uses_no_seq() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, other) = setup(&dir);
        let (a, mut ra) = append(1, 1, "a");
        writer.run_batch(vec![a]);
        assert_eq!(seq_of(&mut ra), (1, false));
        // Writing rooms.last_seq = 3 fails, after both appends ran: the batch rolls back.
        // (Made on the writer's own connection, so only the rollback can make it forget.)
        writer
            .conn
            .execute_batch(
                "CREATE TRIGGER no_three BEFORE UPDATE OF last_seq ON rooms WHEN NEW.last_seq = 3
                 BEGIN SELECT RAISE(ABORT, 'no'); END;",
            )
            .unwrap();
        let (b, mut rb) = append(1, 1, "b");
        let (c, mut rc) = append(1, 2, "c");
        writer.run_batch(vec![b, c]);
        assert!(rb.try_recv().unwrap().is_err());
        assert!(rc.try_recv().unwrap().is_err());
        writer.conn.execute_batch("DROP TRIGGER no_three").unwrap();
        let (d, mut rd) = append(1, 1, "d");
        writer.run_batch(vec![d]);
        assert_eq!(seq_of(&mut rd), (2, false), "the failed batch used no seq");
        assert_eq!(stored(&other, 1), (2, 2));
    }
}
