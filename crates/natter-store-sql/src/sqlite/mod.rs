//! The SQLite `Store`: running the schema migrations (`crate::migrate` lists them), the
//! group-committing writer thread, the reader pool, and every query.
//!
//! Modules, by job:
//! - `connection`: opening a connection (WAL, how hard a commit is synced) and the
//!   checkpointer thread.
//! - `migrations`: running `crate::migrate`'s migrations, one IMMEDIATE transaction each.
//! - `writer`: the writer thread, with group commit; `readers`: the reader pool.
//! - `rows`: the columns each query selects and the rows they map to.
//! - `accounts`: users, credentials and sessions.
//! - `rooms`: rooms, DMs, membership and read markers.
//! - `messages`: `append` (a typed job for the writer), the stream after a seq, and history
//!   (pages of a room or a thread, single messages) in current state with reactions.
//! - `changes`: edits, deletes and reactions as stream entries, thread replies and mentions,
//!   and a message's versions.
//! - `search`: `search` over the word and trigram indexes (migration 0005).
//! - `files`: file records, the files messages carry, the file sweep, server secrets.
//! - `unread`: member states (read marker, unread and mention counts, notification level).
//! - `operations`: the operators' views (every user, every room, counts) for `natter admin`.
//!
//! This file holds the store itself: opening it, its threads and queues, and the `Store`
//! impl, which hands each call to the module that owns it.

mod accounts;
mod bots;
mod changes;
mod connection;
mod error;
mod files;
mod indexing;
mod messages;
mod migrations;
mod moderation;
mod operations;
mod profiles;
mod readers;
mod rooms;
mod rows;
mod search;
#[cfg(test)]
mod tests;
mod unread;
mod writer;

use async_trait::async_trait;
use connection::{open_connection, run_checkpointer, wal_path, wal_size};
use error::backend;
use migrations::migrate;
use natter_core::bots::{ApiToken, Bot, NewApiToken, TokenId, TokensOf};
use natter_core::files::{ContentHash, FileId, StoredFile};
use natter_core::model::*;
use natter_core::store::{
    Credentials, DeletedAccount, Expired, Store, StoreCounts, StoredSession, UserRecord,
};
use natter_core::StoreError;
use readers::Readers;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;
use writer::{WriteJob, Writer};

pub use connection::add_functions;
pub use connection::Synchronous;
pub use indexing::index_new_messages;

/// Writes committed together at most. Larger batches are cheaper per write under FULL
/// (one fsync, and each touched index page written once): 500 -> 1500 inserts per commit
/// cut the writer's CPU per insert from ~10 to ~7 us in a standalone measurement.
const MAX_BATCH: usize = 2048;
/// Writes waiting for the writer thread at most. A write that finds the queue full is not
/// queued: it fails at once with `StoreError::Busy` (a client is asked to retry), so a flood
/// meets back-pressure instead of a queue, and a latency, that grow without bound. Far above
/// what the writer takes per commit (`MAX_BATCH`) and what the durable benchmark keeps in
/// flight (1,600).
const WRITER_QUEUE: usize = 16_384;
/// Reader threads, each with its connection.
const READERS: usize = 4;
/// How much of the file each reader maps instead of reading page by page. A search touches
/// thousands of pages scattered over `messages` (each candidate of a common word); through
/// the 2 MB page cache each is a read() call, mapped it is a memory access: a 1M-message
/// search for a common word went from 39-50 to 18-30 ms (`examples/searchgen`, when this was added).
/// Address space only; the pages are the OS's file cache, shared, not the process's memory.
const READER_MMAP_BYTES: i64 = 1 << 30;
/// WAL pages after which the writer's own commit finishes a checkpoint (SQLite's
/// `wal_autocheckpoint`). The checkpointer thread copies pages before that, but under steady
/// writes a commit always lands during its PASSIVE pass, so the WAL is never all copied and
/// never starts over: it grew by 33-40 MB a second at 2,500-5,000 messages a second (ADR 0034).
/// The writer's pass runs between its own commits, so it completes (unless a reader still
/// reads an old snapshot), and the next commit writes the WAL from its start again: the file
/// stays near 32 MB and its blocks are reused instead of allocated. 8,000 rather than SQLite's
/// 1,000: a page written many times between two passes (a room's newest index page, the rooms
/// table) is copied once, and the pass's own `fsync` comes 8x less often. The writer spent
/// 15-21% of its time in these passes at 1,000 pages, 3% at 8,000 (ADR 0035).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 8_000;
/// The WAL file's size kept after it starts over (SQLite's `journal_size_limit`, on the
/// writer's connection): twice what `WAL_AUTOCHECKPOINT_PAGES` fills, so in steady use the
/// file is reused, never cut. A WAL that grew past it while a long read held it back (a
/// backup, `natter migrate`) is cut back to it at the first commit after it starts over.
const WAL_KEEP_BYTES: u64 = 64 << 20;

/// How a store is sized: `Tuning::default()` in Natter; the unit tests shrink it to reach its
/// limits quickly.
#[derive(Debug, Clone, Copy)]
struct Tuning {
    /// Writes waiting for the writer thread at most (`WRITER_QUEUE`).
    writer_queue: usize,
    /// `WAL_AUTOCHECKPOINT_PAGES`.
    wal_checkpoint_pages: u32,
    /// `WAL_KEEP_BYTES`.
    wal_keep_bytes: u64,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            writer_queue: WRITER_QUEUE,
            wal_checkpoint_pages: WAL_AUTOCHECKPOINT_PAGES,
            wal_keep_bytes: WAL_KEEP_BYTES,
        }
    }
}

pub struct SqliteStore {
    /// The writer thread's queue; None after `shutdown`.
    writer: Mutex<Option<mpsc::SyncSender<WriteJob>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The checkpointer thread and what stops it (sending, or dropping, the sender); None
    /// after `shutdown`. Dropped with the store, the sender stops the thread too.
    checkpointer: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    /// The WAL file's size, as the checkpointer thread last measured it.
    wal_bytes: Arc<std::sync::atomic::AtomicU64>,
    /// Set by the writer while committed messages may be missing from the search indexes
    /// (see `writer`): a search then asks it to index them first.
    unindexed: Arc<std::sync::atomic::AtomicBool>,
    readers: Readers,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>, sync: Synchronous) -> Result<SqliteStore, StoreError> {
        Self::open_tuned(path, sync, Tuning::default())
    }

    /// `open`, sized by `tuning`.
    fn open_tuned(
        path: impl AsRef<Path>,
        sync: Synchronous,
        tuning: Tuning,
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
        // The checkpointer thread does most of the copying (and its fsyncs) off the writer's
        // path; the writer finishes a pass only once the WAL holds WAL_AUTOCHECKPOINT_PAGES.
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {};
             PRAGMA journal_size_limit = {};",
            tuning.wal_checkpoint_pages, tuning.wal_keep_bytes
        ))
        .map_err(backend)?;
        let checkpointer = open_connection(&path, sync)?;
        let (stop, stopped) = mpsc::channel();
        let wal = wal_path(&path);
        let wal_bytes = Arc::new(std::sync::atomic::AtomicU64::new(wal_size(&wal)));
        let measured = wal_bytes.clone();
        let checkpoints = std::thread::Builder::new()
            .name("natter-sqlite-ckpt".into())
            .spawn(move || run_checkpointer(checkpointer, wal, measured, stopped))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = open_connection(&path, sync)?;
            reader
                .execute_batch(&format!("PRAGMA mmap_size = {READER_MMAP_BYTES}"))
                .map_err(backend)?;
            readers.push(reader);
        }
        let (tx, rx) = mpsc::sync_channel(tuning.writer_queue);
        let unindexed = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let writer = Writer::new(conn, unindexed.clone());
        let thread = std::thread::Builder::new()
            .name("natter-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(SqliteStore {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some((stop, checkpoints))),
            wal_bytes,
            unindexed,
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

    /// Brings the search indexes up to date if committed messages may be missing from them
    /// (one writer batch); a search calls this first, so it finds every acknowledged message.
    async fn catch_up_index(&self) -> Result<(), StoreError> {
        if !self.unindexed.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.submit(WriteJob::Index { reply })?;
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

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        guest: bool,
    ) -> Result<User, StoreError> {
        accounts::create_user(self, name, password_hash, guest).await
    }

    async fn credentials(&self, name: &str) -> Result<Option<Credentials>, StoreError> {
        accounts::credentials(self, name).await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        accounts::user_by_name(self, name).await
    }

    async fn create_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        label: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        accounts::create_session(self, token_hash, user, label, now).await
    }

    async fn session_user(&self, token_hash: &[u8]) -> Result<Option<User>, StoreError> {
        accounts::session_user(self, token_hash).await
    }

    async fn session(&self, token_hash: &[u8]) -> Result<Option<StoredSession>, StoreError> {
        accounts::session(self, token_hash).await
    }

    async fn touch_sessions(
        &self,
        token_hashes: &[Vec<u8>],
        now: Millis,
        stale_before: Millis,
    ) -> Result<(), StoreError> {
        accounts::touch_sessions(self, token_hashes, now, stale_before).await
    }

    async fn sessions_of(&self, user: UserId) -> Result<Vec<StoredSession>, StoreError> {
        accounts::sessions_of(self, user).await
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<Option<UserId>, StoreError> {
        accounts::delete_session(self, token_hash).await
    }

    async fn delete_sessions_of(
        &self,
        user: UserId,
        keep: Option<&[u8]>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        accounts::delete_sessions_of(self, user, keep).await
    }

    async fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StoreError> {
        accounts::set_password(self, user, password_hash).await
    }

    async fn expire(
        &self,
        used_before: Millis,
        guests_before: Millis,
    ) -> Result<Expired, StoreError> {
        accounts::expire(self, used_before, guests_before).await
    }

    async fn ensure_public_room(&self, name: &str) -> Result<Room, StoreError> {
        rooms::ensure_public_room(self, name).await
    }

    async fn create_room(
        &self,
        name: &str,
        creator: UserId,
        kind: RoomKind,
    ) -> Result<Room, StoreError> {
        rooms::create_room(self, name, creator, kind).await
    }

    async fn room(&self, room: RoomId) -> Result<Option<Room>, StoreError> {
        rooms::room(self, room).await
    }

    async fn public_rooms(&self) -> Result<Vec<Room>, StoreError> {
        rooms::public_rooms(self).await
    }

    async fn rooms_created_by(&self, user: UserId) -> Result<u64, StoreError> {
        rooms::rooms_created_by(self, user).await
    }

    async fn public_rooms_page(
        &self,
        contains: &str,
        after: &str,
        limit: u32,
        archived: bool,
    ) -> Result<Vec<Room>, StoreError> {
        rooms::public_rooms_page(self, contains, after, limit, archived).await
    }

    async fn rooms_of(&self, user: UserId) -> Result<Vec<(Room, Option<User>)>, StoreError> {
        rooms::rooms_of(self, user).await
    }

    async fn open_group(&self, members: &[UserId]) -> Result<(Room, bool), StoreError> {
        rooms::open_group(self, members).await
    }

    async fn standing(&self, room: RoomId, user: UserId) -> Result<Standing, StoreError> {
        moderation::standing(self, room, user).await
    }

    async fn invite(
        &self,
        room: RoomId,
        user: UserId,
        by: UserId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        moderation::invite(self, room, user, by, now).await
    }

    async fn remove_invite(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        moderation::remove_invite(self, room, user).await
    }

    async fn invites_of(&self, user: UserId) -> Result<Vec<Invite>, StoreError> {
        moderation::invites_of(self, user).await
    }

    async fn bans(&self, room: RoomId) -> Result<Vec<Ban>, StoreError> {
        moderation::bans(self, room).await
    }

    async fn profile(&self, user: UserId) -> Result<Option<Profile>, StoreError> {
        profiles::profile(self, user).await
    }

    async fn add_bot(
        &self,
        bot: UserId,
        owner: UserId,
        created_at: Millis,
    ) -> Result<(), StoreError> {
        bots::add_bot(self, bot, owner, created_at).await
    }

    async fn bots(&self, owner: Option<UserId>) -> Result<Vec<Bot>, StoreError> {
        bots::bots(self, owner).await
    }

    async fn bot(&self, user: UserId) -> Result<Option<Bot>, StoreError> {
        bots::bot(self, user).await
    }

    async fn remove_bot(&self, bot: UserId) -> Result<bool, StoreError> {
        bots::remove_bot(self, bot).await
    }

    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken, StoreError> {
        bots::create_api_token(self, token).await
    }

    async fn api_tokens(&self, of: TokensOf) -> Result<Vec<ApiToken>, StoreError> {
        bots::api_tokens(self, of).await
    }

    async fn api_token(&self, token_hash: &[u8]) -> Result<Option<(ApiToken, User)>, StoreError> {
        bots::api_token(self, token_hash).await
    }

    async fn delete_api_token(&self, id: TokenId) -> Result<Option<ApiToken>, StoreError> {
        bots::delete_api_token(self, id).await
    }

    async fn touch_api_token(&self, id: TokenId, now: Millis) -> Result<(), StoreError> {
        bots::touch_api_token(self, id, now).await
    }

    async fn member_profiles(&self, room: RoomId) -> Result<Vec<(Profile, RoomRole)>, StoreError> {
        profiles::member_profiles(self, room).await
    }

    async fn set_profile(
        &self,
        user: UserId,
        update: ProfileUpdate,
    ) -> Result<Option<Profile>, StoreError> {
        profiles::set_profile(self, user, update).await
    }

    async fn messages_of(
        &self,
        user: UserId,
        after: MessageId,
        limit: u32,
    ) -> Result<Vec<(MessageId, RoomId, Seq)>, StoreError> {
        profiles::messages_of(self, user, after, limit).await
    }

    async fn delete_account(&self, user: UserId) -> Result<DeletedAccount, StoreError> {
        profiles::delete_account(self, user).await
    }

    async fn user_flags(&self, user: UserId) -> Result<Option<UserFlags>, StoreError> {
        moderation::user_flags(self, user).await
    }

    async fn set_admin(&self, user: UserId, admin: bool) -> Result<bool, StoreError> {
        moderation::set_admin(self, user, admin).await
    }

    async fn deactivate(&self, user: UserId) -> Result<Vec<Vec<u8>>, StoreError> {
        moderation::deactivate(self, user).await
    }

    async fn record_audit(&self, entry: NewAudit) -> Result<(), StoreError> {
        moderation::record_audit(self, entry).await
    }

    async fn audit_page(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        moderation::audit_page(self, before, limit).await
    }

    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<Seq>, StoreError> {
        rooms::mark_read(self, room, user, seq).await
    }

    async fn read_markers(&self, user: UserId) -> Result<Vec<(RoomId, Seq)>, StoreError> {
        rooms::read_markers(self, user).await
    }

    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        rooms::is_member(self, room, user).await
    }

    async fn members(&self, room: RoomId) -> Result<Vec<User>, StoreError> {
        rooms::members(self, room).await
    }

    async fn open_dm(&self, a: UserId, b: UserId) -> Result<(Room, bool), StoreError> {
        rooms::open_dm(self, a, b).await
    }

    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        messages::append(self, message).await
    }

    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        messages::messages_after(self, room, after, limit).await
    }

    async fn message_page(
        &self,
        room: RoomId,
        scope: Scope,
        before: Option<Seq>,
        after: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        messages::message_page(self, room, scope, before, after, limit).await
    }

    async fn message(&self, room: RoomId, seq: Seq) -> Result<Option<Message>, StoreError> {
        messages::message(self, room, seq).await
    }

    async fn change(&self, change: NewChange) -> Result<ChangeOutcome, StoreError> {
        changes::change(self, change).await
    }

    async fn versions(&self, room: RoomId, seq: Seq) -> Result<Vec<Version>, StoreError> {
        changes::versions(self, room, seq).await
    }

    async fn member_states(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> Result<Vec<MemberState>, StoreError> {
        unread::member_states(self, user, room).await
    }

    async fn search(&self, q: &SearchQuery) -> Result<Vec<Message>, StoreError> {
        search::search(self, q).await
    }

    async fn set_notify(
        &self,
        room: RoomId,
        user: UserId,
        level: NotifyLevel,
    ) -> Result<bool, StoreError> {
        unread::set_notify(self, room, user, level).await
    }

    async fn create_file(&self, file: StoredFile) -> Result<(), StoreError> {
        files::create_file(self, file).await
    }

    async fn file(&self, id: &FileId) -> Result<Option<StoredFile>, StoreError> {
        files::file(self, id).await
    }

    async fn files(&self, ids: &[FileId]) -> Result<Vec<StoredFile>, StoreError> {
        files::files(self, ids).await
    }

    async fn file_bytes_of(&self, owner: UserId) -> Result<u64, StoreError> {
        files::file_bytes_of(self, owner).await
    }

    async fn file_rooms(&self, id: &FileId) -> Result<Vec<RoomId>, StoreError> {
        files::file_rooms(self, id).await
    }

    async fn sweep_files(&self, unposted_before: Millis) -> Result<Vec<ContentHash>, StoreError> {
        files::sweep_files(self, unposted_before).await
    }

    async fn hash_in_use(&self, hash: &ContentHash) -> Result<bool, StoreError> {
        files::hash_in_use(self, hash).await
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        files::server_secret(self, name, candidate).await
    }

    async fn all_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        operations::all_users(self).await
    }

    async fn all_rooms(&self) -> Result<Vec<Room>, StoreError> {
        operations::all_rooms(self).await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        operations::counts(self).await
    }

    fn wal_bytes(&self) -> Option<u64> {
        Some(self.wal_bytes.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn keeps_issue_order(&self) -> bool {
        // `write` queues (or refuses) its job on the single writer thread before its first
        // await.
        true
    }

    async fn shutdown(&self) {
        // Every connection is closed when this returns, the writer's last: its close finds no
        // other and folds the WAL into the file and removes it (and the `-shm`), so the data
        // directory holds only the database once the server has stopped.
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut c| c.take());
        let readers = self.readers.shutdown();
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
        let writer = self.writer_thread.lock().ok().and_then(|mut t| t.take());
        let _ = tokio::task::spawn_blocking(move || {
            if let Some((stop, thread)) = checkpointer {
                drop(stop);
                let _ = thread.join();
            }
            for thread in readers {
                let _ = thread.join();
            }
            if let Some(thread) = writer {
                let _ = thread.join();
            }
        })
        .await;
    }
}
