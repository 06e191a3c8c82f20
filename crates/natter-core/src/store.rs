//! The `Store` contract (accounts, sessions, rooms, membership, messages) and `MemoryStore`,
//! an in-memory implementation for unit tests. Real backends live in natter-store-sql.
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
//! - `create_room` records its creator: `rooms_created_by` counts them;
//! - `public_rooms_page` pages public rooms by name key, with a substring filter.

use crate::error::StoreError;
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

/// The name key an expired guest is kept under: `~` is in no valid name, so it never clashes.
pub fn freed_name_key(user: UserId) -> String {
    format!("~expired~{}", user.0)
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
    /// Creates a public room with `creator` as its first member (and recorded as its
    /// creator); `Conflict` if the name is taken.
    async fn create_room(&self, name: &str, creator: UserId) -> Result<Room, StoreError>;
    async fn room(&self, room: RoomId) -> Result<Option<Room>, StoreError>;
    async fn public_rooms(&self) -> Result<Vec<Room>, StoreError>;
    /// How many public rooms `user` created with `create_room` (rooms made by
    /// `ensure_public_room`, DMs and rooms from before creators were recorded count for no one).
    async fn rooms_created_by(&self, user: UserId) -> Result<u64, StoreError>;
    /// One page of public rooms ordered by name key: those whose name key contains
    /// `contains` (already a name key, so lower case; empty: every room) and is greater than
    /// `after` (empty: from the first), at most `limit`.
    async fn public_rooms_page(
        &self,
        contains: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Room>, StoreError>;
    /// The rooms `user` is a member of, each with the DM peer for DM rooms.
    async fn rooms_of(&self, user: UserId) -> Result<Vec<(Room, Option<User>)>, StoreError>;
    /// Adds a member; false if they were one already.
    async fn join(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    /// Removes a member; false if they were not one.
    async fn leave(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    /// Members sorted by name (case-insensitively).
    async fn members(&self, room: RoomId) -> Result<Vec<User>, StoreError>;
    /// The DM room of two distinct users, created (with both as members) if missing.
    /// The flag says whether it was created now.
    async fn open_dm(&self, a: UserId, b: UserId) -> Result<(Room, bool), StoreError>;

    /// Stores a message durably and assigns id and seq (see the module rules).
    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError>;
    /// Messages with seq > `after`, oldest first, at most `limit`.
    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// The newest `limit` messages with seq < `before` (all when None), returned oldest first.
    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;

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

    /// Finishes pending writes and flushes to disk; later calls fail. Default: nothing to do.
    async fn shutdown(&self) {}

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

#[derive(Default)]
struct MemoryData {
    users: Vec<Credentials>,
    /// Per user id: when they were last active.
    last_active: HashMap<UserId, Millis>,
    /// Expired guests: their names are free.
    freed: HashSet<UserId>,
    sessions: HashMap<Vec<u8>, MemorySession>,
    rooms: Vec<Room>,
    /// Who created each room made by `create_room`.
    creators: HashMap<RoomId, UserId>,
    dms: HashMap<(UserId, UserId), RoomId>,
    members: HashMap<RoomId, HashSet<UserId>>,
    read: HashMap<(RoomId, UserId), Seq>,
    messages: HashMap<RoomId, BTreeMap<Seq, Message>>,
    dedupe: HashMap<(UserId, RoomId, String), (RoomId, Seq)>,
    next_message_id: i64,
}

struct MemorySession {
    user: UserId,
    label: String,
    created_at: Millis,
    last_used_at: Millis,
}

impl MemoryData {
    /// Users holding their names (not expired guests).
    fn named_users(&self) -> impl Iterator<Item = &Credentials> {
        self.users
            .iter()
            .filter(|c| !self.freed.contains(&c.user.id))
    }
    fn stored_session(&self, hash: &[u8], s: &MemorySession) -> Option<StoredSession> {
        Some(StoredSession {
            token_hash: hash.to_vec(),
            user: self.user(s.user)?.clone(),
            label: s.label.clone(),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
        })
    }
    fn user(&self, id: UserId) -> Option<&User> {
        self.users.get((id.0 - 1) as usize).map(|c| &c.user)
    }
    fn room_mut(&mut self, id: RoomId) -> Option<&mut Room> {
        self.rooms.get_mut((id.0 - 1) as usize)
    }
    fn room(&self, id: RoomId) -> Option<Room> {
        let mut room = self.rooms.get((id.0 - 1) as usize)?.clone();
        room.member_count = self.members.get(&id).map_or(0, |m| m.len() as u32);
        Some(room)
    }
    fn new_room(&mut self, name: &str, kind: RoomKind) -> RoomId {
        let id = RoomId(self.rooms.len() as i64 + 1);
        self.rooms.push(Room {
            id,
            name: name.to_string(),
            kind,
            member_count: 0,
            last_seq: Seq::ZERO,
        });
        id
    }
    fn public_room_by_key(&self, key: &str) -> Option<RoomId> {
        self.rooms
            .iter()
            .find(|r| r.kind == RoomKind::Public && name_key(&r.name) == key)
            .map(|r| r.id)
    }
}

/// An in-memory `Store` for unit tests. Nothing survives the process.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<MemoryData>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryData>, StoreError> {
        self.data
            .lock()
            .map_err(|_| StoreError::Backend("memory store poisoned".into()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        guest: bool,
    ) -> Result<User, StoreError> {
        let mut d = self.lock()?;
        let key = name_key(name);
        if d.named_users().any(|c| name_key(&c.user.name) == key) {
            return Err(StoreError::Conflict("name taken".into()));
        }
        let user = User {
            id: UserId(d.users.len() as i64 + 1),
            name: name.to_string(),
            guest,
        };
        d.users.push(Credentials {
            user: user.clone(),
            password_hash: password_hash.map(str::to_string),
        });
        d.last_active.insert(user.id, now_millis());
        Ok(user)
    }

    async fn credentials(&self, name: &str) -> Result<Option<Credentials>, StoreError> {
        let key = name_key(name);
        Ok(self
            .lock()?
            .named_users()
            .find(|c| name_key(&c.user.name) == key)
            .cloned())
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        Ok(self.credentials(name).await?.map(|c| c.user))
    }

    async fn create_session(
        &self,
        token_hash: &[u8],
        user: UserId,
        label: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut d = self.lock()?;
        d.sessions.insert(
            token_hash.to_vec(),
            MemorySession {
                user,
                label: label.to_string(),
                created_at: now,
                last_used_at: now,
            },
        );
        d.last_active.insert(user, now);
        Ok(())
    }

    async fn session_user(&self, token_hash: &[u8]) -> Result<Option<User>, StoreError> {
        let d = self.lock()?;
        Ok(d.sessions
            .get(token_hash)
            .and_then(|s| d.user(s.user))
            .cloned())
    }

    async fn session(&self, token_hash: &[u8]) -> Result<Option<StoredSession>, StoreError> {
        let d = self.lock()?;
        Ok(d.sessions
            .get(token_hash)
            .and_then(|s| d.stored_session(token_hash, s)))
    }

    async fn touch_sessions(
        &self,
        token_hashes: &[Vec<u8>],
        now: Millis,
        stale_before: Millis,
    ) -> Result<(), StoreError> {
        let mut d = self.lock()?;
        let mut users = Vec::new();
        for hash in token_hashes {
            if let Some(s) = d.sessions.get_mut(hash) {
                if s.last_used_at < stale_before {
                    s.last_used_at = now;
                    users.push(s.user);
                }
            }
        }
        for user in users {
            d.last_active.insert(user, now);
        }
        Ok(())
    }

    async fn sessions_of(&self, user: UserId) -> Result<Vec<StoredSession>, StoreError> {
        let d = self.lock()?;
        let mut out: Vec<StoredSession> = d
            .sessions
            .iter()
            .filter(|(_, s)| s.user == user)
            .filter_map(|(hash, s)| d.stored_session(hash, s))
            .collect();
        out.sort_by(|a, b| (b.created_at, &b.token_hash).cmp(&(a.created_at, &a.token_hash)));
        Ok(out)
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<Option<UserId>, StoreError> {
        Ok(self.lock()?.sessions.remove(token_hash).map(|s| s.user))
    }

    async fn delete_sessions_of(
        &self,
        user: UserId,
        keep: Option<&[u8]>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut d = self.lock()?;
        let doomed: Vec<Vec<u8>> = d
            .sessions
            .iter()
            .filter(|(hash, s)| s.user == user && Some(hash.as_slice()) != keep)
            .map(|(hash, _)| hash.clone())
            .collect();
        for hash in &doomed {
            d.sessions.remove(hash);
        }
        Ok(doomed)
    }

    async fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StoreError> {
        let mut d = self.lock()?;
        let creds = d
            .users
            .get_mut((user.0 - 1) as usize)
            .ok_or(StoreError::NotFound)?;
        creds.password_hash = Some(password_hash.to_string());
        Ok(())
    }

    async fn expire(
        &self,
        used_before: Millis,
        guests_before: Millis,
    ) -> Result<Expired, StoreError> {
        let mut d = self.lock()?;
        let guests: Vec<User> = d
            .users
            .iter()
            .filter(|c| c.user.guest && !d.freed.contains(&c.user.id))
            .filter(|c| d.last_active.get(&c.user.id).copied().unwrap_or(0) < guests_before)
            .map(|c| c.user.clone())
            .collect();
        let gone: HashSet<UserId> = guests.iter().map(|g| g.id).collect();
        let doomed: Vec<(UserId, Vec<u8>)> = d
            .sessions
            .iter()
            .filter(|(_, s)| s.last_used_at < used_before || gone.contains(&s.user))
            .map(|(hash, s)| (s.user, hash.clone()))
            .collect();
        for (_, hash) in &doomed {
            d.sessions.remove(hash);
        }
        d.freed.extend(gone);
        Ok(Expired {
            sessions: doomed,
            guests,
        })
    }

    async fn ensure_public_room(&self, name: &str) -> Result<Room, StoreError> {
        let mut d = self.lock()?;
        let id = match d.public_room_by_key(&name_key(name)) {
            Some(id) => id,
            None => d.new_room(name, RoomKind::Public),
        };
        d.room(id).ok_or(StoreError::NotFound)
    }

    async fn create_room(&self, name: &str, creator: UserId) -> Result<Room, StoreError> {
        let mut d = self.lock()?;
        if d.public_room_by_key(&name_key(name)).is_some() {
            return Err(StoreError::Conflict("room name taken".into()));
        }
        let id = d.new_room(name, RoomKind::Public);
        d.members.entry(id).or_default().insert(creator);
        d.creators.insert(id, creator);
        d.room(id).ok_or(StoreError::NotFound)
    }

    async fn rooms_created_by(&self, user: UserId) -> Result<u64, StoreError> {
        Ok(self
            .lock()?
            .creators
            .values()
            .filter(|c| **c == user)
            .count() as u64)
    }

    async fn public_rooms_page(
        &self,
        contains: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Room>, StoreError> {
        let d = self.lock()?;
        let mut page: Vec<(String, RoomId)> = d
            .rooms
            .iter()
            .filter(|r| r.kind == RoomKind::Public)
            .map(|r| (name_key(&r.name), r.id))
            .filter(|(key, _)| key.as_str() > after && key.contains(contains))
            .collect();
        page.sort();
        Ok(page
            .into_iter()
            .take(limit as usize)
            .filter_map(|(_, id)| d.room(id))
            .collect())
    }

    async fn room(&self, room: RoomId) -> Result<Option<Room>, StoreError> {
        Ok(self.lock()?.room(room))
    }

    async fn public_rooms(&self) -> Result<Vec<Room>, StoreError> {
        let d = self.lock()?;
        Ok(d.rooms
            .iter()
            .filter(|r| r.kind == RoomKind::Public)
            .filter_map(|r| d.room(r.id))
            .collect())
    }

    async fn rooms_of(&self, user: UserId) -> Result<Vec<(Room, Option<User>)>, StoreError> {
        let d = self.lock()?;
        let mut out = Vec::new();
        for r in &d.rooms {
            let Some(members) = d.members.get(&r.id) else {
                continue;
            };
            if !members.contains(&user) {
                continue;
            }
            let peer = if r.kind == RoomKind::Dm {
                members
                    .iter()
                    .find(|m| **m != user)
                    .and_then(|m| d.user(*m))
                    .cloned()
            } else {
                None
            };
            if let Some(room) = d.room(r.id) {
                out.push((room, peer));
            }
        }
        Ok(out)
    }

    async fn join(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        Ok(self.lock()?.members.entry(room).or_default().insert(user))
    }

    async fn leave(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let mut d = self.lock()?;
        d.read.remove(&(room, user));
        Ok(d.members.get_mut(&room).is_some_and(|m| m.remove(&user)))
    }

    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<Seq>, StoreError> {
        let mut d = self.lock()?;
        if !d.members.get(&room).is_some_and(|m| m.contains(&user)) {
            return Ok(None);
        }
        let last = d.room(room).map_or(Seq::ZERO, |r| r.last_seq);
        let marker = d.read.entry((room, user)).or_insert(Seq::ZERO);
        *marker = (*marker).max(seq.min(last));
        Ok(Some(*marker))
    }

    async fn read_markers(&self, user: UserId) -> Result<Vec<(RoomId, Seq)>, StoreError> {
        let d = self.lock()?;
        let mut out: Vec<(RoomId, Seq)> = d
            .read
            .iter()
            .filter(|((_, u), seq)| *u == user && **seq > Seq::ZERO)
            .map(|((room, _), seq)| (*room, *seq))
            .collect();
        out.sort();
        Ok(out)
    }

    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        Ok(self
            .lock()?
            .members
            .get(&room)
            .is_some_and(|m| m.contains(&user)))
    }

    async fn members(&self, room: RoomId) -> Result<Vec<User>, StoreError> {
        let d = self.lock()?;
        let mut users: Vec<User> = d
            .members
            .get(&room)
            .into_iter()
            .flatten()
            .filter_map(|id| d.user(*id).cloned())
            .collect();
        users.sort_by_key(|u| name_key(&u.name));
        Ok(users)
    }

    async fn open_dm(&self, a: UserId, b: UserId) -> Result<(Room, bool), StoreError> {
        let mut d = self.lock()?;
        let pair = (a.min(b), a.max(b));
        let (id, created) = match d.dms.get(&pair) {
            Some(id) => (*id, false),
            None => {
                let id = d.new_room("dm", RoomKind::Dm);
                d.dms.insert(pair, id);
                let m = d.members.entry(id).or_default();
                m.insert(a);
                m.insert(b);
                (id, true)
            }
        };
        Ok((d.room(id).ok_or(StoreError::NotFound)?, created))
    }

    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        let mut d = self.lock()?;
        let key = (message.sender.id, message.room, message.client_id.clone());
        if let Some((room, seq)) = d.dedupe.get(&key).copied() {
            let existing = d
                .messages
                .get(&room)
                .and_then(|m| m.get(&seq))
                .cloned()
                .ok_or(StoreError::NotFound)?;
            return Ok(Appended {
                message: existing,
                duplicate: true,
            });
        }
        let room = d.room_mut(message.room).ok_or(StoreError::NotFound)?;
        room.last_seq = room.last_seq.next();
        let seq = room.last_seq;
        d.next_message_id += 1;
        let stored = Message {
            id: MessageId(d.next_message_id),
            room: message.room,
            seq,
            sender: message.sender,
            body: message.body,
            ts: message.ts,
            client_id: message.client_id,
        };
        d.messages
            .entry(stored.room)
            .or_default()
            .insert(seq, stored.clone());
        d.dedupe.insert(key, (stored.room, seq));
        Ok(Appended {
            message: stored,
            duplicate: false,
        })
    }

    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let d = self.lock()?;
        Ok(d.messages
            .get(&room)
            .map(|m| {
                m.range(after.next()..)
                    .take(limit as usize)
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let d = self.lock()?;
        let upper = before.unwrap_or(Seq(i64::MAX));
        let mut out: Vec<Message> = d
            .messages
            .get(&room)
            .map(|m| {
                m.range(..upper)
                    .rev()
                    .take(limit as usize)
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default();
        out.reverse();
        Ok(out)
    }
}
