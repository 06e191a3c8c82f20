//! The PostgreSQL `Store`: running the schema migrations (`crate::migrate` lists them;
//! serialized across nodes by an advisory lock), a connection pool, and every query. Several
//! nodes share one database: the database allocates ids and per-room sequence numbers, never
//! a node.
//!
//! Sequence numbers: `append` bumps `rooms.last_seq` with `UPDATE ... RETURNING` inside the
//! transaction that inserts the message (or its batch: `appender`, ADR 0025). The row lock it takes is held until COMMIT, so two
//! appends to one room commit in seq order, and a committed `last_seq` of N means 1..=N are all
//! committed. A retry with the same (sender, room, client_id) returns the original message,
//! also when the two attempts race (the unique index decides, the loser rolls back its seq).
//!
//! Modules, by job:
//! - `pool`: the connection pool's limits and the back-pressure of a query waiting for one.
//! - `database`: URLs, and creating and dropping whole databases (tests use the latter).
//! - `migrations`: running `crate::migrate`'s migrations under the advisory lock.
//! - `rows`: the columns each query selects and the rows they map to.
//! - `accounts`: users, credentials and sessions.
//! - `rooms`: rooms, DMs, membership and read markers.
//! - `appender`: the group commit of appends (lanes by room, batched transactions).
//! - `messages`: `append` with its seq, the stream after a seq, and history (pages of a room
//!   or a thread, single messages) in current state with reactions.
//! - `changes`: edits, deletes and reactions as stream entries, thread replies and mentions
//!   (each in one transaction holding the room row), and a message's versions.
//! - `search`: `search` over the word and trigram GIN indexes (migration 0005).
//! - `files`: file records, the files messages carry, the file sweep, server secrets.
//! - `blobs`: `PostgresFileStore`, uploads' bytes in `file_chunks`.
//! - `unread`: member states (read marker, unread and mention counts, notification level).
//! - `operations`: the operators' views (every user, every room, counts) for `natter admin`.
//!
//! This file holds the store itself: connecting, and the `Store` impl, which hands each call
//! to the module that owns it.

mod accounts;
mod appender;
mod blobs;
mod bots;
mod changes;
mod database;
pub(crate) mod error;
mod files;
mod messages;
mod migrations;
mod moderation;
mod operations;
mod pool;
mod profiles;
mod rooms;
mod rows;
mod search;
mod unread;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use error::backend;
use natter_core::bots::{ApiToken, Bot, NewApiToken, TokenId, TokensOf};
use natter_core::files::{ContentHash, FileId, StoredFile};
use natter_core::model::*;
use natter_core::store::{
    Credentials, DeletedAccount, Expired, Store, StoreCounts, StoredSession, UserRecord,
};
use natter_core::StoreError;
use tokio_postgres::NoTls;

pub use blobs::{PostgresFileStore, CHUNK_BYTES};
pub use database::{drop_database, unique_database_name, with_database};
pub use pool::{PoolLimits, DEFAULT_POOL_SIZE, POOL_MAX_WAITING_PER_CONNECTION};

/// The PostgreSQL store. Cheap to share: queries take a pooled connection each.
pub struct PostgresStore {
    pool: Pool,
    /// Queries allowed to wait for a connection (`PoolLimits::max_waiting`).
    max_waiting: usize,
    /// The group commit every `append` goes through (`appender`).
    appender: appender::Appender,
}

impl PostgresStore {
    /// Connects to the database at `url` (creating it if missing), migrates its schema, and
    /// keeps up to `pool_size` connections.
    pub async fn connect(url: &str, pool_size: usize) -> Result<PostgresStore, StoreError> {
        Self::connect_with(url, PoolLimits::with_size(pool_size)).await
    }

    /// `connect` with every limit of the connection pool given.
    pub async fn connect_with(url: &str, limits: PoolLimits) -> Result<PostgresStore, StoreError> {
        let config = database::parse_url(url)?;
        database::create_database_if_missing(&config).await?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(limits.size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(limits.wait_timeout))
            .create_timeout(Some(pool::POOL_TIMEOUT))
            .build()
            .map_err(backend)?;
        migrations::migrate(&pool).await?;
        Ok(PostgresStore {
            appender: appender::Appender::start(
                pool.clone(),
                limits.max_waiting,
                limits.append_queue,
            ),
            pool,
            max_waiting: limits.max_waiting,
        })
    }
}

impl PostgresStore {
    /// The connection pool, for `crate::copy` (which writes whole tables in its own SQL).
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }
}

#[async_trait]
impl Store for PostgresStore {
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

    /// Appends join their room's lane when first polled (`appender`), and a lane stores in
    /// queue order: one room's appends are stored in the order they were issued.
    fn keeps_issue_order(&self) -> bool {
        true
    }

    async fn shutdown(&self) {
        self.appender.finish().await;
        self.pool.close();
    }
}
