//! The SQLite `Store`: running the schema migrations (`crate::migrate` lists them), the
//! group-committing writer thread, the reader pool, and every query.

mod readers;
mod writer;

use crate::migrate;
use async_trait::async_trait;
use natter_core::model::*;
use natter_core::store::{name_key, Credentials, Store};
use natter_core::StoreError;
use readers::Readers;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;
use writer::{WriteJob, Writer};

/// Writes committed together at most. Larger batches are cheaper per write under FULL
/// (one fsync, and each touched index page written once): 500 -> 1500 inserts per commit
/// cut the writer's CPU per insert from ~10 to ~7 us in a standalone measurement.
const MAX_BATCH: usize = 2048;
/// How often the checkpointer folds the WAL into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// Writes waiting for the writer thread at most. A write that finds the queue full is not
/// queued: it fails at once with `StoreError::Busy` (a client is asked to retry), so a flood
/// meets back-pressure instead of a queue, and a latency, that grow without bound. Far above
/// what the writer takes per commit (`MAX_BATCH`) and what the durable benchmark keeps in
/// flight (1,600).
const WRITER_QUEUE: usize = 16_384;
/// Reader threads, each with its connection.
const READERS: usize = 4;

/// How hard SQLite works to make a commit survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync the WAL at every commit: survives power loss (the default).
    Full,
    /// fsync at checkpoints only: survives a process crash, not a power cut.
    Normal,
}

impl std::str::FromStr for Synchronous {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            other => Err(format!(
                "sqlite synchronous must be full or normal, not {other}"
            )),
        }
    }
}

/// Keeps which schema migrations the database has (`crate::migrate`); `applied_at` is in
/// milliseconds since the Unix epoch, like every time in this schema.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)";

/// What a file made before read markers (the first unversioned schema) lacks of migration 1.
const ADD_READ_MARKERS: &str = "ALTER TABLE members ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0";

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

pub struct SqliteStore {
    /// The writer thread's queue; None after `shutdown`.
    writer: Mutex<Option<mpsc::SyncSender<WriteJob>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Tells the checkpointer thread to stop.
    stop_checkpoints: Arc<std::sync::atomic::AtomicBool>,
    readers: Readers,
    path: PathBuf,
}

fn open_connection(path: &Path, sync: Synchronous) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    let sync = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
    ))
    .map_err(backend)?;
    Ok(conn)
}

/// Brings the schema to the newest version this binary knows (`crate::migrate`), one
/// migration per transaction. Each transaction is IMMEDIATE (it holds the write lock from its
/// first read), so two processes opening one file at once take turns and the second finds the
/// work done.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        tx.execute_batch(VERSION_TABLE).map_err(backend)?;
        let applied: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(backend)?;
        migrate::refuse_if_newer(applied, migrate::SQLITE)?;
        if applied == 0 && migrate::is_baseline(&baseline_tables_present(&tx)?)? {
            add_read_markers_if_missing(&tx)?;
            record(&tx, migrate::BASELINE, migrate::BASELINE_NAME)?;
            tx.commit().map_err(backend)?;
            tracing::info!(
                version = migrate::BASELINE,
                "sqlite schema from before versioned migrations recorded as its version"
            );
            continue;
        }
        if applied == migrate::BASELINE && add_read_markers_if_missing(&tx)? {
            tx.commit().map_err(backend)?;
            tracing::info!("sqlite schema at version 1 given the read markers it lacked");
            continue;
        }
        let Some(next) = migrate::next_after(migrate::SQLITE, applied) else {
            return tx.commit().map_err(backend);
        };
        tx.execute_batch(next.sql).map_err(backend)?;
        record(&tx, next.version, next.name)?;
        tx.commit().map_err(backend)?;
        tracing::info!(
            version = next.version,
            name = next.name,
            "sqlite schema migrated"
        );
    }
}

/// Which of migration 1's tables the database has.
fn baseline_tables_present(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .map_err(backend)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(backend)?;
    let names = names.collect::<Result<Vec<_>, _>>().map_err(backend)?;
    Ok(names
        .into_iter()
        .filter(|n| migrate::BASELINE_TABLES.contains(&n.as_str()))
        .collect())
}

/// Adds `members.read_seq` to a database of the first unversioned schema (see
/// `migrate::BASELINE`); true if it was missing.
fn add_read_markers_if_missing(conn: &Connection) -> Result<bool, StoreError> {
    let has_read_markers = conn
        .prepare("SELECT 1 FROM pragma_table_info('members') WHERE name = 'read_seq'")
        .map_err(backend)?
        .exists([])
        .map_err(backend)?;
    if !has_read_markers {
        conn.execute_batch(ADD_READ_MARKERS).map_err(backend)?;
    }
    Ok(!has_read_markers)
}

/// Adds `version`'s row to `schema_migrations`.
fn record(conn: &Connection, version: i64, name: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
        params![version, name, now_millis()],
    )
    .map_err(backend)?;
    Ok(())
}

/// Runs a parameterless statement through the statement cache (no re-parse per call).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

fn run_checkpointer(conn: Connection, stop: Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(CHECKPOINT_EVERY);
        // PASSIVE: copies what it can without waiting for (or blocking) the writer.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite checkpoint failed");
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop_checkpoints
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>, sync: Synchronous) -> Result<SqliteStore, StoreError> {
        Self::open_with_queue(path, sync, WRITER_QUEUE)
    }

    /// `open` with room for `writer_queue` waiting writes.
    fn open_with_queue(
        path: impl AsRef<Path>,
        sync: Synchronous,
        writer_queue: usize,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
            }
        }
        let mut conn = open_connection(&path, sync)?;
        migrate(&mut conn)?;
        // Checkpoints (and their fsyncs) run on their own thread, never stalling commits.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0")
            .map_err(backend)?;
        let checkpointer = open_connection(&path, sync)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_checkpoints = stop.clone();
        std::thread::Builder::new()
            .name("natter-sqlite-ckpt".into())
            .spawn(move || run_checkpointer(checkpointer, stop_checkpoints))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open_connection(&path, sync)?);
        }
        let (tx, rx) = mpsc::sync_channel(writer_queue);
        let thread = std::thread::Builder::new()
            .name("natter-sqlite-writer".into())
            .spawn(move || Writer::new(conn).run(rx))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(SqliteStore {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            stop_checkpoints: stop,
            readers: Readers::start(readers)?,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in the writer's next transaction; resolves after COMMIT.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(WriteJob::closure(f, tx))?;
        rx.await
            .map_err(|_| StoreError::Backend("sqlite writer dropped a job".into()))?
    }

    /// Queues a job on the writer thread, without waiting: a full queue refuses it (`Busy`).
    /// (Never waiting is also what keeps the issue order: a write is queued, or refused,
    /// before its caller's first await.)
    fn submit(&self, job: WriteJob) -> Result<(), StoreError> {
        let writer = self
            .writer
            .lock()
            .map_err(|_| StoreError::Backend("writer lock poisoned".into()))?;
        let queue = writer
            .as_ref()
            .ok_or_else(|| StoreError::Backend("store is shut down".into()))?;
        queue.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => StoreError::Busy,
            mpsc::TrySendError::Disconnected(_) => {
                StoreError::Backend("sqlite writer stopped".into())
            }
        })
    }

    /// Runs `f` on one of the reader threads' connections.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.readers.run(f).await
    }
}

fn user_from(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(row.get(at)?),
        name: row.get(at + 1)?,
        guest: row.get::<_, i64>(at + 2)? != 0,
    })
}

const ROOM_COLUMNS: &str = "r.id, r.name, r.kind, r.member_count, r.last_seq";

fn room_from(row: &Row<'_>) -> rusqlite::Result<Room> {
    let kind: String = row.get(2)?;
    Ok(Room {
        id: RoomId(row.get(0)?),
        name: row.get(1)?,
        kind: if kind == "dm" {
            RoomKind::Dm
        } else {
            RoomKind::Public
        },
        member_count: row.get::<_, i64>(3)? as u32,
        last_seq: Seq(row.get(4)?),
    })
}

const MESSAGE_COLUMNS: &str =
    "m.id, m.room_id, m.seq, m.body, m.created_at, m.client_id, u.id, u.name, u.guest";

fn message_from(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: MessageId(row.get(0)?),
        room: RoomId(row.get(1)?),
        seq: Seq(row.get(2)?),
        body: row.get(3)?,
        ts: row.get(4)?,
        client_id: row.get(5)?,
        sender: user_from(row, 6)?,
    })
}

fn room_by_id(conn: &Connection, id: RoomId) -> Result<Option<Room>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = ?1"
    ))
    .map_err(backend)?
    .query_row([id.0], room_from)
    .optional()
    .map_err(backend)
}

fn add_member(conn: &Connection, room: RoomId, user: UserId) -> Result<bool, StoreError> {
    let added = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO members (room_id, user_id, joined_at) VALUES (?1, ?2, ?3)",
        )
        .map_err(backend)?
        .execute(params![room.0, user.0, now_millis()])
        .map_err(backend)?
        == 1;
    if added {
        conn.prepare_cached("UPDATE rooms SET member_count = member_count + 1 WHERE id = ?1")
            .map_err(backend)?
            .execute([room.0])
            .map_err(backend)?;
    }
    Ok(added)
}

fn find_message(
    conn: &Connection,
    sender: UserId,
    room: RoomId,
    client_id: &str,
) -> Result<Option<Message>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE m.sender_id = ?1 AND m.room_id = ?2 AND m.client_id = ?3"
    ))
    .map_err(backend)?
    .query_row(params![sender.0, room.0, client_id], message_from)
    .optional()
    .map_err(backend)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        guest: bool,
    ) -> Result<User, StoreError> {
        let name = name.to_string();
        let hash = password_hash.map(str::to_string);
        self.write(move |conn| {
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

    async fn credentials(&self, name: &str) -> Result<Option<Credentials>, StoreError> {
        let key = name_key(name);
        self.read(move |conn| {
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

    async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        Ok(self.credentials(name).await?.map(|c| c.user))
    }

    async fn create_session(&self, token_hash: &[u8], user: UserId) -> Result<(), StoreError> {
        let hash = token_hash.to_vec();
        self.write(move |conn| {
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

    async fn session_user(&self, token_hash: &[u8]) -> Result<Option<User>, StoreError> {
        let hash = token_hash.to_vec();
        self.read(move |conn| {
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

    async fn delete_session(&self, token_hash: &[u8]) -> Result<Option<UserId>, StoreError> {
        let hash = token_hash.to_vec();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1 RETURNING user_id")
                .map_err(backend)?
                .query_row([hash], |row| Ok(UserId(row.get(0)?)))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn ensure_public_room(&self, name: &str) -> Result<Room, StoreError> {
        let name = name.to_string();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO rooms (name, kind, name_key, created_at)
                 VALUES (?1, 'public', ?2, ?3)",
            )
            .map_err(backend)?
            .execute(params![name, name_key(&name), now_millis()])
            .map_err(backend)?;
            conn.prepare_cached(&format!(
                "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.name_key = ?1"
            ))
            .map_err(backend)?
            .query_row([name_key(&name)], room_from)
            .map_err(backend)
        })
        .await
    }

    async fn create_room(&self, name: &str, creator: UserId) -> Result<Room, StoreError> {
        let name = name.to_string();
        self.write(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO rooms (name, kind, name_key, created_at) VALUES (?1, 'public', ?2, ?3)",
                )
                .map_err(backend)?
                .execute(params![name, name_key(&name), now_millis()]);
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict("room name taken".into()))
                }
                Err(e) => return Err(backend(e)),
            }
            let id = RoomId(conn.last_insert_rowid());
            add_member(conn, id, creator)?;
            room_by_id(conn, id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn room(&self, room: RoomId) -> Result<Option<Room>, StoreError> {
        self.read(move |conn| room_by_id(conn, room)).await
    }

    async fn public_rooms(&self) -> Result<Vec<Room>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.kind = 'public' ORDER BY r.name_key"
                ))
                .map_err(backend)?;
            let rows = stmt.query_map([], room_from).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn rooms_of(&self, user: UserId) -> Result<Vec<(Room, Option<User>)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ROOM_COLUMNS}, p.id, p.name, p.guest
                     FROM members me JOIN rooms r ON r.id = me.room_id
                     LEFT JOIN members pm ON r.kind = 'dm' AND pm.room_id = r.id AND pm.user_id != me.user_id
                     LEFT JOIN users p ON p.id = pm.user_id
                     WHERE me.user_id = ?1 ORDER BY r.id"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map([user.0], |row| {
                    let room = room_from(row)?;
                    let peer = match row.get::<_, Option<i64>>(5)? {
                        Some(_) => Some(user_from(row, 5)?),
                        None => None,
                    };
                    Ok((room, peer))
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn join(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        self.write(move |conn| add_member(conn, room, user)).await
    }

    async fn leave(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let removed = conn
                .prepare_cached("DELETE FROM members WHERE room_id = ?1 AND user_id = ?2")
                .map_err(backend)?
                .execute(params![room.0, user.0])
                .map_err(backend)?
                == 1;
            if removed {
                conn.prepare_cached(
                    "UPDATE rooms SET member_count = member_count - 1 WHERE id = ?1",
                )
                .map_err(backend)?
                .execute([room.0])
                .map_err(backend)?;
            }
            Ok(removed)
        })
        .await
    }

    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<Seq>, StoreError> {
        // The room's last seq from `messages`: `rooms.last_seq` may lag within a group commit.
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE members SET read_seq = MAX(read_seq, MIN(?3,
                     COALESCE((SELECT MAX(seq) FROM messages WHERE room_id = ?1), 0)))
                 WHERE room_id = ?1 AND user_id = ?2 RETURNING read_seq",
            )
            .map_err(backend)?
            .query_row(params![room.0, user.0, seq.0], |r| r.get(0).map(Seq))
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn read_markers(&self, user: UserId) -> Result<Vec<(RoomId, Seq)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT room_id, read_seq FROM members
                     WHERE user_id = ?1 AND read_seq > 0 ORDER BY room_id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([user.0], |r| Ok((RoomId(r.get(0)?), Seq(r.get(1)?))))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT 1 FROM members WHERE room_id = ?1 AND user_id = ?2")
                .map_err(backend)?
                .exists(params![room.0, user.0])
                .map_err(backend)
        })
        .await
    }

    async fn members(&self, room: RoomId) -> Result<Vec<User>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT u.id, u.name, u.guest FROM members m JOIN users u ON u.id = m.user_id
                     WHERE m.room_id = ?1 ORDER BY u.name_key",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([room.0], |row| user_from(row, 0))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn open_dm(&self, a: UserId, b: UserId) -> Result<(Room, bool), StoreError> {
        self.write(move |conn| {
            let key = format!("{}:{}", a.min(b).0, a.max(b).0);
            let created = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO rooms (name, kind, dm_key, created_at) VALUES ('dm', 'dm', ?1, ?2)",
                )
                .map_err(backend)?
                .execute(params![key, now_millis()])
                .map_err(backend)?
                == 1;
            let id: i64 = conn
                .prepare_cached("SELECT id FROM rooms WHERE dm_key = ?1")
                .map_err(backend)?
                .query_row([&key], |r| r.get(0))
                .map_err(backend)?;
            if created {
                add_member(conn, RoomId(id), a)?;
                add_member(conn, RoomId(id), b)?;
            }
            let room = room_by_id(conn, RoomId(id))?.ok_or(StoreError::NotFound)?;
            Ok((room, created))
        })
        .await
    }

    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.submit(WriteJob::Append { message, reply })?;
        rx.await
            .map_err(|_| StoreError::Backend("sqlite writer dropped a job".into()))?
    }

    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
                     WHERE m.room_id = ?1 AND m.seq > ?2 ORDER BY m.seq LIMIT ?3"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![room.0, after.0, limit], message_from)
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let before = before.map_or(i64::MAX, |s| s.0);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
                     WHERE m.room_id = ?1 AND m.seq < ?2 ORDER BY m.seq DESC LIMIT ?3"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![room.0, before, limit], message_from)
                .map_err(backend)?;
            let mut out = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            out.reverse();
            Ok(out)
        })
        .await
    }

    fn keeps_issue_order(&self) -> bool {
        // `write` queues (or refuses) its job on the single writer thread before its first
        // await.
        true
    }

    async fn shutdown(&self) {
        self.stop_checkpoints
            .store(true, std::sync::atomic::Ordering::Release);
        self.readers.shutdown();
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
        let thread = self.writer_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::model::{NewMessage, User};
    use std::time::Duration;

    fn message(room: RoomId, sender: &User, n: u32) -> NewMessage {
        NewMessage {
            room,
            sender: sender.clone(),
            body: format!("m{n}"),
            client_id: format!("c{n}"),
            ts: 0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_writer_queue_refuses_at_once_and_what_it_holds_goes_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            SqliteStore::open_with_queue(dir.path().join("q.db"), Synchronous::Normal, 2)
                .expect("open"),
        );
        let ana = store.create_user("ana", None, false).await.expect("user");
        let room = store.create_room("r", ana.id).await.expect("room").id;

        // Hold the writer inside a job of its own.
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |_| {
                        let _ = started_tx.send(());
                        let _ = release_rx.recv();
                        Ok(())
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv_timeout(Duration::from_secs(10)))
            .await
            .expect("join")
            .expect("the writer took the blocking job");

        // Two appends fill the queue (each is queued at its first poll)...
        let mut first = Box::pin(store.append(message(room, &ana, 1)));
        let mut second = Box::pin(store.append(message(room, &ana, 2)));
        assert!(tokio::time::timeout(Duration::ZERO, &mut first)
            .await
            .is_err());
        assert!(tokio::time::timeout(Duration::ZERO, &mut second)
            .await
            .is_err());
        // ... and the third is refused at once, not queued.
        let third = store.append(message(room, &ana, 3)).await;
        assert!(matches!(third, Err(StoreError::Busy)), "{third:?}");

        release_tx.send(()).expect("release");
        blocker.await.expect("join").expect("blocking job");
        let first = first.await.expect("first append");
        let second = second.await.expect("second append");
        assert_eq!((first.message.seq, second.message.seq), (Seq(1), Seq(2)));
        // The refused one was never stored; sent again, it is the next.
        let again = store.append(message(room, &ana, 3)).await.expect("retry");
        assert_eq!((again.message.seq, again.duplicate), (Seq(3), false));
    }
}
