//! The `Store` contract (accounts, sessions, rooms, membership, messages) and `MemoryStore`,
//! an in-memory implementation for unit tests (`store/memory.rs`). Real backends live in
//! natter-store-sql.
//!
//! Rules every backend keeps (checked by `crate::conformance::store`, one test per rule):
//! - names (users, public rooms) are unique case-insensitively;
//! - `append` assigns the room's next seq (1, 2, 3, ...) and a server-wide id, and stores a
//!   retry with the same (sender, room, client_id) once, returning the original;
//! - `append` returns only after the message is durable;
//! - a session keeps its label and creation time; `touch_sessions` moves `last_used_at` (and
//!   the user's `last_active`) forward only for sessions last used before `stale_before`;
//!   `expire` deletes sessions unused since a time, and frees the names of guests inactive
//!   since another (the user row stays, under its name, for the history it wrote).
//! - `create_room` records its creator (`rooms_created_by` counts them) and makes them its
//!   owner; the first registered (not guest) account is a server admin;
//! - room events (`Change::Join` ... `Change::Settings`) are stream entries like edits, stored
//!   with their effect in one transaction: a join adds the member (ending an invitation) and
//!   a leave removes them (a group left is no longer its member set's), each `Unchanged` when
//!   it would change nothing; a kick or ban removes the member (a ban also stops a join:
//!   `Refused(Banned)`), a mute/role needs a member (`Refused(NotMember)`), a ban of
//!   the banned, an unban of the unbanned, an unmute of the unmuted or a role a member has is
//!   `Unchanged`; settings rename (a public name stays unique: `Conflict`), set topic,
//!   description, archived. Each applied room event but a join or leave, and each delete of
//!   another's message, adds an audit line in the same transaction.
//! - `public_rooms_page` pages public rooms by name key, with a substring filter.
//! - every change (edit, delete, reaction) is a stream entry with the room's next seq, stored
//!   in the transaction that updates its target; a thread reply updates its parent's reply
//!   count and time in its own. A delete empties the target's text, its earlier versions and
//!   the texts of the edit entries that target it. Refusals (`StoreError::Refused`) store
//!   nothing and spend no seq.
//! - `messages_after` returns entries as stored (a message's text is its current one,
//!   `reactions` empty); `message` and `message_page` return messages in their current state,
//!   reactions included.
//! - `search` finds messages (thread replies too) by their current text: each word as a word
//!   of the text (a backend may stem: "deploying" finds "deployed"; it must find the word
//!   itself), each substring anywhere in it, case-insensitively; deleted messages never.
//! - unread counts: messages in the timeline, from others, not deleted, after the marker;
//!   mentions: of those and of thread replies, the ones naming the user or `@room` (in a DM,
//!   every one); both stop at `MAX_UNREAD_COUNT`.
//! - files (`crate::conformance::files`): a message may carry only its sender's uploads
//!   (else `Refusal::UnknownFile`, nothing stored); every read of a message gives its files
//!   in order; a delete drops them; `sweep_files` removes records no message carries (posted
//!   once, or uploaded before a time) and names the blobs no record uses any more.
//! - operators' views (`crate::conformance::operations`): `all_users` lists every user row by
//!   id (expired guests too, under their display name), `all_rooms` every room (DMs too) by
//!   id with its member count and last seq, and `counts` counts what is stored.

use crate::bots::{ApiToken, Bot, NewApiToken, TokenId, TokensOf};
use crate::error::{Refusal, StoreError};
use crate::files::{ContentHash, FileId, StoredFile};
use crate::model::*;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

/// A stored user with their password hash (absent for guests).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<String>,
}

/// A session as stored: the token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub token_hash: Vec<u8>,
    pub user: User,
    /// The device label given at sign-in (from the User-Agent), at most 64 characters.
    pub label: String,
    pub created_at: Millis,
    /// The last recorded use (written at most once a minute, see `SESSION_TOUCH_INTERVAL`).
    pub last_used_at: Millis,
}

/// What `Store::expire` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    /// Deleted sessions (expired ones and those of expired guests): whose, and which.
    pub sessions: Vec<(UserId, Vec<u8>)>,
    /// Guests whose names were freed.
    pub guests: Vec<User>,
}

/// A user as an operator lists them (`natter admin list-users`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserRecord {
    #[serde(flatten)]
    pub user: User,
    pub created_at: Millis,
    /// The last sign-in or recorded session use (see `touch_sessions`).
    pub last_active: Millis,
}

/// What a store holds, counted (`natter admin stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreCounts {
    /// Every user row: people and guests, expired guests included.
    pub users: u64,
    /// Of those, guests.
    pub guests: u64,
    /// Public rooms and DMs.
    pub rooms: u64,
    /// Messages (thread replies and deleted ones included; edits, deletes and reactions,
    /// which are stream entries too, not).
    pub messages: u64,
    pub sessions: u64,
    /// Upload records.
    pub files: u64,
    /// The uploads' sizes added up (each record counts, even when records share a blob).
    pub file_bytes: u64,
}

/// The name key an expired guest is kept under: `~` is in no valid name, so it never clashes.
pub fn freed_name_key(user: UserId) -> String {
    format!("~expired~{}", user.0)
}

/// The name key a deleted account is kept under (its row stays for the history it wrote).
pub fn deleted_name_key(user: UserId) -> String {
    format!("~deleted~{}", user.0)
}

/// The name a deleted account's messages show.
pub const DELETED_USER_NAME: &str = "deleted user";

/// What `Store::delete_account` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedAccount {
    /// The hashes of its sessions.
    pub sessions: Vec<Vec<u8>>,
    /// The rooms it was a member of.
    pub rooms: Vec<RoomId>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a user; `StoreError::Conflict` if the name is taken (case-insensitively).
    async fn create_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        guest: bool,
    ) -> Result<User, StoreError>;
    async fn credentials(&self, name: &str) -> Result<Option<Credentials>, StoreError>;
    async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError>;

    /// Stores a session created (and last used) at `now`; the user's `last_active` is `now`.
    async fn create_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        label: &str,
        now: Millis,
    ) -> Result<(), StoreError>;
    async fn session_user(&self, token_hash: &[u8]) -> Result<Option<User>, StoreError>;
    /// A session with its label and times.
    async fn session(&self, token_hash: &[u8]) -> Result<Option<StoredSession>, StoreError>;
    /// Records a use at `now` of each of these sessions last used before `stale_before`, and
    /// of their users (`last_active`). Unknown hashes are skipped.
    async fn touch_sessions(
        &self,
        token_hashes: &[Vec<u8>],
        now: Millis,
        stale_before: Millis,
    ) -> Result<(), StoreError>;
    /// The user's sessions, newest first (by creation).
    async fn sessions_of(&self, user: UserId) -> Result<Vec<StoredSession>, StoreError>;
    /// Deletes a session; returns whose it was.
    async fn delete_session(&self, token_hash: &[u8]) -> Result<Option<UserId>, StoreError>;
    /// Deletes every session of `user` but `keep`; returns the deleted hashes.
    async fn delete_sessions_of(
        &self,
        user: UserId,
        keep: Option<&[u8]>,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Replaces the user's password hash.
    async fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StoreError>;
    /// Deletes sessions last used before `used_before`; expires guests last active before
    /// `guests_before`: deletes their sessions and frees their name (the row is kept under
    /// [`freed_name_key`], its display name unchanged, so their messages keep their sender).
    async fn expire(
        &self,
        used_before: Millis,
        guests_before: Millis,
    ) -> Result<Expired, StoreError>;

    /// The public room of that name, created if missing.
    async fn ensure_public_room(&self, name: &str) -> Result<Room, StoreError>;
    /// Creates a public or private room with `creator` as its first member, its owner, and
    /// recorded as its creator. A public room's name is unique (`Conflict` if taken); a
    /// private room's is not (it has no name key).
    async fn create_room(
        &self,
        name: &str,
        creator: UserId,
        kind: RoomKind,
    ) -> Result<Room, StoreError>;
    async fn room(&self, room: RoomId) -> Result<Option<Room>, StoreError>;
    async fn public_rooms(&self) -> Result<Vec<Room>, StoreError>;
    /// How many public rooms `user` created with `create_room` (rooms made by
    /// `ensure_public_room`, DMs and rooms from before creators were recorded count for no one).
    async fn rooms_created_by(&self, user: UserId) -> Result<u64, StoreError>;
    /// One page of public rooms ordered by name key: those whose name key contains
    /// `contains` (already a name key, so lower case; empty: every room) and is greater than
    /// `after` (empty: from the first), archived or not as `archived` says, at most `limit`.
    async fn public_rooms_page(
        &self,
        contains: &str,
        after: &str,
        limit: u32,
        archived: bool,
    ) -> Result<Vec<Room>, StoreError>;
    /// The rooms `user` is a member of, each with the DM peer for DM rooms.
    async fn rooms_of(&self, user: UserId) -> Result<Vec<(Room, Option<User>)>, StoreError>;
    /// The user's standing in the room: member, role, mute, ban, invitation.
    async fn standing(&self, room: RoomId, user: UserId) -> Result<Standing, StoreError>;
    /// Invites `user` to `room` (by `by`, at `now`); false if already invited.
    async fn invite(
        &self,
        room: RoomId,
        user: UserId,
        by: UserId,
        now: Millis,
    ) -> Result<bool, StoreError>;
    /// Drops an invitation (declined or withdrawn); false if there was none.
    async fn remove_invite(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    /// The user's pending invitations, oldest first.
    async fn invites_of(&self, user: UserId) -> Result<Vec<Invite>, StoreError>;
    /// The room's bans, oldest first.
    async fn bans(&self, room: RoomId) -> Result<Vec<Ban>, StoreError>;
    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    /// Members sorted by name (case-insensitively).
    async fn members(&self, room: RoomId) -> Result<Vec<User>, StoreError>;
    /// The DM room of two distinct users, created (with both as members) if missing.
    /// The flag says whether it was created now.
    async fn open_dm(&self, a: UserId, b: UserId) -> Result<(Room, bool), StoreError>;
    /// The group DM of exactly these users (distinct, 3 to 8: the caller checks), created
    /// with all of them as members if there is none; the flag says whether it was created
    /// now. A group someone left is no longer that set's (`leave` drops its key): opening the
    /// set again makes a new group.
    async fn open_group(&self, members: &[UserId]) -> Result<(Room, bool), StoreError>;

    /// Stores a message durably and assigns id and seq (see the module rules).
    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError>;
    /// Messages with seq > `after`, oldest first, at most `limit`.
    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// A page of messages (no change entries; room events too for `Scope::RoomAndEvents`) of
    /// `scope`, in their current state, oldest first: with `after`, the oldest `limit` with seq > after; otherwise the newest `limit`
    /// with seq < `before` (all when None).
    async fn message_page(
        &self,
        room: RoomId,
        scope: Scope,
        before: Option<Seq>,
        after: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// One message (not a change entry) in its current state.
    async fn message(&self, room: RoomId, seq: Seq) -> Result<Option<Message>, StoreError>;
    /// Stores a change as a new stream entry (see the module rules).
    async fn change(&self, change: NewChange) -> Result<ChangeOutcome, StoreError>;
    /// The texts a message has had, oldest first: the original, then each edit's. Empty for
    /// a deleted message or one that does not exist.
    async fn versions(&self, room: RoomId, seq: Seq) -> Result<Vec<Version>, StoreError>;
    /// The user's state in each room they are a member of (or only in `room`).
    async fn member_states(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> Result<Vec<MemberState>, StoreError>;
    /// Messages (not change entries, not deleted) of `q.rooms` matching `q`, in their current
    /// state, in `q.order`, at most `q.limit` (see the module rules).
    async fn search(&self, q: &SearchQuery) -> Result<Vec<Message>, StoreError>;
    /// Sets the user's notification level in a room; false if they are not a member.
    async fn set_notify(
        &self,
        room: RoomId,
        user: UserId,
        level: NotifyLevel,
    ) -> Result<bool, StoreError>;

    /// Moves `user`'s read marker in `room` forward to `seq`: never back, never past the
    /// room's last seq. Returns the marker now stored, or None if the user is not a member.
    /// Leaving a room forgets its marker.
    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<Seq>, StoreError>;
    /// The user's read markers above zero, by room id.
    async fn read_markers(&self, user: UserId) -> Result<Vec<(RoomId, Seq)>, StoreError>;

    /// Records an upload; `Conflict` if its id is taken.
    async fn create_file(&self, file: StoredFile) -> Result<(), StoreError>;
    async fn file(&self, id: &FileId) -> Result<Option<StoredFile>, StoreError>;
    /// The records of those of `ids` that exist, in no particular order (unknown ids are
    /// left out): a member list's avatars in one query.
    async fn files(&self, ids: &[FileId]) -> Result<Vec<StoredFile>, StoreError>;
    /// The bytes of the uploads of `owner` still kept (the upload quota counts these).
    async fn file_bytes_of(&self, owner: UserId) -> Result<u64, StoreError>;
    /// The rooms with a message that carries the file (deleted messages carry none).
    async fn file_rooms(&self, id: &FileId) -> Result<Vec<RoomId>, StoreError>;
    /// Removes the records of files no message carries: those a message carried once, and
    /// uploads made before `unposted_before`. Returns the hashes (bytes and thumbnails) of
    /// the removed records that no remaining record names: their blobs may go.
    async fn sweep_files(&self, unposted_before: Millis) -> Result<Vec<ContentHash>, StoreError>;
    /// Whether a file record names `hash` (as its bytes or its thumbnail).
    async fn hash_in_use(&self, hash: &ContentHash) -> Result<bool, StoreError>;
    /// A user's profile; None if there is no such user.
    async fn profile(&self, user: UserId) -> Result<Option<Profile>, StoreError>;
    /// The profiles of a room's members with their roles, by name (case-insensitively).
    async fn member_profiles(&self, room: RoomId) -> Result<Vec<(Profile, RoomRole)>, StoreError>;
    /// Changes what `update` gives; an avatar must be the user's own upload of an image
    /// (`Refused(UnknownFile)` otherwise, nothing changed). None if there is no such user.
    /// An avatar's file is kept by `sweep_files` while it is someone's avatar.
    async fn set_profile(
        &self,
        user: UserId,
        update: ProfileUpdate,
    ) -> Result<Option<Profile>, StoreError>;
    /// The user's messages (not change entries, not deleted) with id > `after`, by id, at
    /// most `limit`: (id, room, seq).
    async fn messages_of(
        &self,
        user: UserId,
        after: MessageId,
        limit: u32,
    ) -> Result<Vec<(MessageId, RoomId, Seq)>, StoreError>;
    /// Deletes an account's personal data: its name is freed (the row stays under
    /// [`deleted_name_key`], named [`DELETED_USER_NAME`], so its messages keep a sender), its
    /// password, profile and admin flag go, it is deactivated, and its sessions, invitations
    /// and memberships are deleted.
    async fn delete_account(&self, user: UserId) -> Result<DeletedAccount, StoreError>;
    /// A user's server-wide flags; None if there is no such user.
    async fn user_flags(&self, user: UserId) -> Result<Option<UserFlags>, StoreError>;
    /// Grants or takes back server admin; false if there is no such user.
    async fn set_admin(&self, user: UserId, admin: bool) -> Result<bool, StoreError>;
    /// Deactivates an account: flagged, every session deleted (their hashes returned).
    async fn deactivate(&self, user: UserId) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Adds a line to the audit log (room events and moderators' deletes are recorded by
    /// `change` itself, in its transaction).
    async fn record_audit(&self, entry: NewAudit) -> Result<(), StoreError>;
    /// The audit log, newest first: lines with id < `before` (all when None), at most `limit`.
    async fn audit_page(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// The secret stored under `name`, stored as `candidate` if there is none yet: every
    /// node of one database gets the same bytes.
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Every user row, by id: people and guests, expired guests too (under their display
    /// name), with when each was created and last active.
    async fn all_users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Every room, public and DM, by id, with its member count and last seq.
    async fn all_rooms(&self) -> Result<Vec<Room>, StoreError>;
    /// What the store holds, counted (see [`StoreCounts`]).
    async fn counts(&self) -> Result<StoreCounts, StoreError>;

    // ----- bots, API tokens, webhooks (`crate::bots`, migration 0011) ---------------

    /// Marks an existing user (made by `create_user` with no password) a bot of `owner`:
    /// from then on every `User` of it read from the store has `bot` set (migration 0012).
    async fn add_bot(
        &self,
        bot: UserId,
        owner: UserId,
        created_at: Millis,
    ) -> Result<(), StoreError>;
    /// Bots by id: all of them, or those of one owner.
    async fn bots(&self, owner: Option<UserId>) -> Result<Vec<Bot>, StoreError>;
    /// The bot with this user id, if that user is one.
    async fn bot(&self, user: UserId) -> Result<Option<Bot>, StoreError>;
    /// Forgets that a user is a bot, with its tokens and webhooks (the user row stays:
    /// `delete_account` removes its personal data); false if it was not one. Its `User` keeps
    /// `bot`: what it wrote was a bot's.
    async fn remove_bot(&self, bot: UserId) -> Result<bool, StoreError>;
    /// Stores an API token or webhook (`Conflict` if its hash is taken).
    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken, StoreError>;
    /// A bot's API tokens, or a room's webhooks, by id.
    async fn api_tokens(&self, of: TokensOf) -> Result<Vec<ApiToken>, StoreError>;
    /// The token with this hash and its bot.
    async fn api_token(&self, token_hash: &[u8]) -> Result<Option<(ApiToken, User)>, StoreError>;
    /// Deletes a token or webhook; returns it if it was there.
    async fn delete_api_token(&self, id: TokenId) -> Result<Option<ApiToken>, StoreError>;
    /// Records a use of a token.
    async fn touch_api_token(&self, id: TokenId, now: Millis) -> Result<(), StoreError>;

    /// Finishes pending writes and flushes to disk; later calls fail. Default: nothing to do.
    async fn shutdown(&self) {}

    /// The size in bytes of the store's own write-ahead log on this node's disk, as last
    /// measured (the `natter_store_wal_bytes` gauge): SQLite's WAL file, measured by its
    /// checkpointer thread every 250 ms, so asking does no I/O. None for a store without a log
    /// of its own (in memory; PostgreSQL's WAL belongs to the database server). Default: None.
    fn wal_bytes(&self) -> Option<u64> {
        None
    }

    /// True if appends take their place in line when first polled (a single writer queue),
    /// so appends started one after another from one task are stored in that order even
    /// while several are in flight. Transports pipeline sends only then. Default: false.
    fn keeps_issue_order(&self) -> bool {
        false
    }
}

/// The case-insensitive key of a user or room name.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

mod memory;
pub use memory::MemoryStore;
