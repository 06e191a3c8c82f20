//! `MemoryStore`: the reference implementation of the `Store` rules (see `super`), in memory,
//! for unit tests. Every rule it keeps is checked by the conformance suite like the real
//! backends'. One `impl Store` of one method per rule, hence its length (~870 lines).

use super::*;

#[derive(Default)]
struct MemoryData {
    users: Vec<Credentials>,
    /// Per user id: when they were last active.
    last_active: HashMap<UserId, Millis>,
    /// Per user id: when they were created.
    created: HashMap<UserId, Millis>,
    /// Expired guests: their names are free.
    freed: HashSet<UserId>,
    sessions: HashMap<Vec<u8>, MemorySession>,
    rooms: Vec<Room>,
    /// Who created each room made by `create_room`.
    creators: HashMap<RoomId, UserId>,
    dms: HashMap<(UserId, UserId), RoomId>,
    /// Open group DMs by their sorted member set.
    groups: HashMap<Vec<UserId>, RoomId>,
    members: HashMap<RoomId, HashSet<UserId>>,
    read: HashMap<(RoomId, UserId), Seq>,
    messages: HashMap<RoomId, BTreeMap<Seq, Message>>,
    dedupe: HashMap<(UserId, RoomId, String), (RoomId, Seq)>,
    next_message_id: i64,
    /// Reactions per message, in first-use order.
    reactions: HashMap<(RoomId, Seq), Vec<Reaction>>,
    /// A message's original text, kept from its first edit on.
    originals: HashMap<(RoomId, Seq), Version>,
    notify: HashMap<(RoomId, UserId), NotifyLevel>,
    files: memory_files::FileRecords,
    moderation: memory_moderation::Moderation,
    bots: memory_bots::BotRecords,
}

mod memory_bots;
mod memory_files;
mod memory_moderation;

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
            ..Room::default()
        });
        id
    }
    /// A stored entry as `messages_after` returns it.
    fn entry(&self, room: RoomId, seq: Seq) -> Option<Message> {
        self.messages.get(&room)?.get(&seq).cloned()
    }
    /// A message with its reactions.
    fn current(&self, m: &Message) -> Message {
        let mut m = m.clone();
        m.reactions = self
            .reactions
            .get(&(m.room, m.seq))
            .cloned()
            .unwrap_or_default();
        m
    }
    /// The next message id and the room's next seq (taken).
    fn next_entry(&mut self, room: RoomId) -> Result<(MessageId, Seq), StoreError> {
        let r = self.room_mut(room).ok_or(StoreError::NotFound)?;
        r.last_seq = r.last_seq.next();
        let seq = r.last_seq;
        self.next_message_id += 1;
        Ok((MessageId(self.next_message_id), seq))
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
            bot: false,
        };
        if !guest && !d.users.iter().any(|c| !c.user.guest) {
            d.moderation.admins.insert(user.id);
        }
        d.users.push(Credentials {
            user: user.clone(),
            password_hash: password_hash.map(str::to_string),
        });
        let now = now_millis();
        d.last_active.insert(user.id, now);
        d.created.insert(user.id, now);
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

    async fn create_room(
        &self,
        name: &str,
        creator: UserId,
        kind: RoomKind,
    ) -> Result<Room, StoreError> {
        let mut d = self.lock()?;
        if kind == RoomKind::Public && d.public_room_by_key(&name_key(name)).is_some() {
            return Err(StoreError::Conflict("room name taken".into()));
        }
        let id = d.new_room(name, kind);
        d.members.entry(id).or_default().insert(creator);
        d.creators.insert(id, creator);
        d.moderation.roles.insert((id, creator), RoomRole::Owner);
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
        archived: bool,
    ) -> Result<Vec<Room>, StoreError> {
        let d = self.lock()?;
        let mut page: Vec<(String, RoomId)> = d
            .rooms
            .iter()
            .filter(|r| r.kind == RoomKind::Public && r.archived == archived)
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

    async fn open_group(&self, members: &[UserId]) -> Result<(Room, bool), StoreError> {
        let mut d = self.lock()?;
        let mut set = members.to_vec();
        set.sort_unstable();
        set.dedup();
        let (id, created) = match d.groups.get(&set) {
            Some(id) => (*id, false),
            None => {
                let id = d.new_room("group", RoomKind::Group);
                d.groups.insert(set.clone(), id);
                d.members.entry(id).or_default().extend(set.iter().copied());
                (id, true)
            }
        };
        Ok((d.room(id).ok_or(StoreError::NotFound)?, created))
    }

    async fn standing(&self, room: RoomId, user: UserId) -> Result<Standing, StoreError> {
        Ok(self.lock()?.standing(room, user))
    }

    async fn invite(
        &self,
        room: RoomId,
        user: UserId,
        by: UserId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut d = self.lock()?;
        if d.moderation
            .invites
            .iter()
            .any(|i| (i.0, i.1) == (room, user))
        {
            return Ok(false);
        }
        d.moderation.invites.push((room, user, by, now));
        Ok(true)
    }

    async fn remove_invite(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let mut d = self.lock()?;
        let before = d.moderation.invites.len();
        d.moderation.invites.retain(|i| (i.0, i.1) != (room, user));
        Ok(d.moderation.invites.len() < before)
    }

    async fn invites_of(&self, user: UserId) -> Result<Vec<Invite>, StoreError> {
        Ok(self.lock()?.invites_of(user))
    }

    async fn bans(&self, room: RoomId) -> Result<Vec<Ban>, StoreError> {
        Ok(self.lock()?.bans_of(room))
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
            let existing = d.entry(room, seq).ok_or(StoreError::NotFound)?;
            return Ok(Appended {
                message: existing,
                duplicate: true,
            });
        }
        if message.check_rules {
            let at = (message.room, message.sender.id);
            if d.room(message.room).is_some_and(|r| r.archived) {
                return Err(StoreError::Refused(Refusal::Archived));
            }
            if let Some(until) = d.moderation.muted.get(&at).copied() {
                if until > message.ts {
                    return Err(StoreError::Refused(Refusal::Muted(until)));
                }
            }
        }
        if d.room(message.room).is_none() {
            return Err(StoreError::NotFound);
        }
        if let Some(parent) = message.thread {
            let p = d
                .messages
                .get(&message.room)
                .and_then(|m| m.get(&parent))
                .filter(|p| p.change.is_none())
                .ok_or(StoreError::Refused(Refusal::UnknownMessage))?;
            if p.thread.is_some() {
                return Err(StoreError::Refused(Refusal::InvalidThread));
            }
            if p.deleted {
                return Err(StoreError::Refused(Refusal::Deleted));
            }
        }
        let files = d.files.check(message.sender.id, &message.files)?;
        let (id, seq) = d.next_entry(message.room)?;
        d.files.attach(message.room, seq, message.files);
        let mut stored = Message {
            id,
            room: message.room,
            seq,
            sender: message.sender,
            body: message.body,
            ts: message.ts,
            client_id: message.client_id,
            thread: message.thread,
            also_room: message.thread.is_some() && message.also_room,
            mentions: message.mentions,
            mentions_room: message.mentions_room,
            files,
            ..Message::default()
        };
        if let Some(parent) = message.thread {
            if let Some(p) = d
                .messages
                .get_mut(&stored.room)
                .and_then(|m| m.get_mut(&parent))
            {
                p.replies += 1;
                p.last_reply_ts = Some(stored.ts);
                stored.replies = p.replies;
            }
        }
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

    async fn change(&self, change: NewChange) -> Result<ChangeOutcome, StoreError> {
        let mut d = self.lock()?;
        let key = (change.sender.id, change.room, change.client_id.clone());
        if let Some((room, seq)) = d.dedupe.get(&key).copied() {
            let existing = d.entry(room, seq).ok_or(StoreError::NotFound)?;
            return Ok(ChangeOutcome::Duplicate(existing));
        }
        if d.room(change.room).is_none() {
            return Err(StoreError::NotFound);
        }
        let Some(target_seq) = change.change.target() else {
            return d.room_event(change, key);
        };
        let target = d
            .messages
            .get(&change.room)
            .and_then(|m| m.get(&target_seq))
            .filter(|t| t.change.is_none())
            .cloned()
            .ok_or(StoreError::Refused(Refusal::UnknownMessage))?;
        if target.deleted {
            return Err(StoreError::Refused(Refusal::Deleted));
        }
        let at = (change.room, target_seq);
        if let Change::React { emoji, add, .. } = &change.change {
            let list = d.reactions.get(&at);
            let has = list
                .and_then(|l| l.iter().find(|r| &r.emoji == emoji))
                .is_some_and(|r| r.users.iter().any(|u| u.id == change.sender.id));
            if has == *add {
                return Ok(ChangeOutcome::Unchanged);
            }
            let distinct = list.map_or(0, |l| l.len());
            let new_emoji = !list.is_some_and(|l| l.iter().any(|r| &r.emoji == emoji));
            if *add && new_emoji && distinct as u32 >= change.max_reactions {
                return Err(StoreError::Refused(Refusal::TooManyReactions));
            }
        }
        let (id, seq) = d.next_entry(change.room)?;
        let mut entry = Message {
            id,
            room: change.room,
            seq,
            sender: change.sender.clone(),
            body: String::new(),
            ts: change.ts,
            client_id: change.client_id,
            change: Some(change.change.clone()),
            ..Message::default()
        };
        match &change.change {
            Change::Edit { .. } => {
                entry.body = change.body;
                d.originals.entry(at).or_insert(Version {
                    body: target.body.clone(),
                    ts: target.ts,
                });
                if let Some(t) = d.messages.get_mut(&at.0).and_then(|m| m.get_mut(&at.1)) {
                    t.body = entry.body.clone();
                    t.edited_at = Some(entry.ts);
                }
            }
            Change::Delete { .. } => {
                if target.sender.id != change.sender.id {
                    d.audit(NewAudit {
                        ts: entry.ts,
                        actor: change.sender.id,
                        action: "delete".into(),
                        room: Some(at.0),
                        target: Some(target.sender.id),
                        detail: format!("{{\"seq\":{}}}", at.1),
                    });
                }
                d.originals.remove(&at);
                d.files.detach(at.0, at.1);
                d.reactions.remove(&at);
                if let Some(entries) = d.messages.get_mut(&at.0) {
                    for e in entries.values_mut() {
                        let edits_it =
                            matches!(e.change, Some(Change::Edit { target }) if target == at.1);
                        if e.seq == at.1 || edits_it {
                            e.body.clear();
                        }
                        if e.seq == at.1 {
                            e.deleted = true;
                            e.files.clear();
                        }
                    }
                }
            }
            Change::React { emoji, add, .. } => {
                let list = d.reactions.entry(at).or_default();
                if *add {
                    match list.iter_mut().find(|r| &r.emoji == emoji) {
                        Some(r) => r.users.push(change.sender.clone()),
                        None => list.push(Reaction {
                            emoji: emoji.clone(),
                            users: vec![change.sender.clone()],
                        }),
                    }
                } else {
                    for r in list.iter_mut() {
                        if &r.emoji == emoji {
                            r.users.retain(|u| u.id != change.sender.id);
                        }
                    }
                    list.retain(|r| !r.users.is_empty());
                }
            }
            _ => return Err(StoreError::Backend("a room event with a target".into())),
        }
        d.messages
            .entry(change.room)
            .or_default()
            .insert(seq, entry.clone());
        d.dedupe.insert(key, (change.room, seq));
        Ok(ChangeOutcome::Applied(entry))
    }

    async fn message(&self, room: RoomId, seq: Seq) -> Result<Option<Message>, StoreError> {
        let d = self.lock()?;
        Ok(d.messages
            .get(&room)
            .and_then(|m| m.get(&seq))
            .filter(|m| m.change.is_none())
            .map(|m| d.current(m)))
    }

    async fn message_page(
        &self,
        room: RoomId,
        scope: Scope,
        before: Option<Seq>,
        after: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let d = self.lock()?;
        let Some(entries) = d.messages.get(&room) else {
            return Ok(Vec::new());
        };
        let wanted = |m: &&Message| match scope {
            Scope::Room => m.in_timeline(),
            Scope::RoomAndEvents => {
                m.in_timeline() || m.change.as_ref().is_some_and(Change::is_room_event)
            }
            Scope::Thread(parent) => m.change.is_none() && m.thread == Some(parent),
        };
        let mut out: Vec<Message> = match after {
            Some(after) => entries
                .range(after.next()..)
                .map(|(_, m)| m)
                .filter(wanted)
                .take(limit as usize)
                .map(|m| d.current(m))
                .collect(),
            None => {
                let upper = before.unwrap_or(Seq(i64::MAX));
                let mut page: Vec<Message> = entries
                    .range(..upper)
                    .rev()
                    .map(|(_, m)| m)
                    .filter(wanted)
                    .take(limit as usize)
                    .map(|m| d.current(m))
                    .collect();
                page.reverse();
                page
            }
        };
        out.shrink_to_fit();
        Ok(out)
    }

    async fn versions(&self, room: RoomId, seq: Seq) -> Result<Vec<Version>, StoreError> {
        let d = self.lock()?;
        let Some(entries) = d.messages.get(&room) else {
            return Ok(Vec::new());
        };
        let Some(target) = entries.get(&seq).filter(|m| m.change.is_none()) else {
            return Ok(Vec::new());
        };
        if target.deleted {
            return Ok(Vec::new());
        }
        let mut out = vec![d.originals.get(&(room, seq)).cloned().unwrap_or(Version {
            body: target.body.clone(),
            ts: target.ts,
        })];
        out.extend(
            entries
                .range(seq.next()..)
                .filter(|(_, e)| matches!(e.change, Some(Change::Edit { target }) if target == seq))
                .map(|(_, e)| Version {
                    body: e.body.clone(),
                    ts: e.ts,
                }),
        );
        Ok(out)
    }

    async fn member_states(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> Result<Vec<MemberState>, StoreError> {
        let d = self.lock()?;
        let mut rooms: Vec<RoomId> = d
            .members
            .iter()
            .filter(|(id, m)| m.contains(&user) && room.is_none_or(|r| r == **id))
            .map(|(id, _)| *id)
            .collect();
        rooms.sort();
        let mut out = Vec::new();
        for id in rooms {
            let read_seq = d.read.get(&(id, user)).copied().unwrap_or(Seq::ZERO);
            let dm = d.room(id).is_some_and(|r| r.kind.is_direct());
            let (mut unread, mut mentions) = (0u32, 0u32);
            if let Some(entries) = d.messages.get(&id) {
                for m in entries.range(read_seq.next()..).map(|(_, m)| m) {
                    if m.change.is_some() || m.deleted || m.sender.id == user {
                        continue;
                    }
                    if m.in_timeline() {
                        unread = (unread + 1).min(MAX_UNREAD_COUNT);
                    }
                    if dm || m.mentions_room || m.mentions.contains(&user) {
                        mentions = (mentions + 1).min(MAX_UNREAD_COUNT);
                    }
                }
            }
            out.push(MemberState {
                room: id,
                read_seq,
                unread,
                mentions,
                notify: d.notify.get(&(id, user)).copied().unwrap_or_default(),
                role: d
                    .moderation
                    .roles
                    .get(&(id, user))
                    .copied()
                    .unwrap_or_default(),
                muted_until: d.moderation.muted.get(&(id, user)).copied(),
            });
        }
        Ok(out)
    }

    async fn search(&self, q: &SearchQuery) -> Result<Vec<Message>, StoreError> {
        let d = self.lock()?;
        let mut found: Vec<Message> = Vec::new();
        for room in &q.rooms {
            let Some(entries) = d.messages.get(room) else {
                continue;
            };
            for m in entries.values() {
                if m.change.is_some() || m.deleted {
                    continue;
                }
                let text = m.body.to_lowercase();
                let words: Vec<&str> = text
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .collect();
                let ok = q.words.iter().all(|w| words.contains(&w.as_str()))
                    && q.substrings
                        .iter()
                        .all(|s| crate::search::phrase_in(&text, s))
                    && q.from.is_none_or(|f| m.sender.id == f)
                    && q.after_ts.is_none_or(|t| m.ts >= t)
                    && q.before_ts.is_none_or(|t| m.ts < t);
                if ok {
                    found.push(d.current(m));
                }
            }
        }
        // Newest first; "relevance" here: more term occurrences first, then newest.
        let score = |m: &Message| {
            let text = m.body.to_lowercase();
            q.words
                .iter()
                .chain(q.substrings.iter())
                .map(|t| text.matches(t.as_str()).count())
                .sum::<usize>()
        };
        match q.order {
            SearchOrder::Newest => found.sort_by_key(|m| std::cmp::Reverse((m.ts, m.id))),
            SearchOrder::Relevance => {
                found.sort_by_key(|m| std::cmp::Reverse((score(m), m.ts, m.id)))
            }
        }
        let skip = match q.page {
            SearchPage::First => 0,
            SearchPage::Offset(n) => n as usize,
            SearchPage::Before { ts, id } => found
                .iter()
                .position(|m| (m.ts, m.id) < (ts, id))
                .unwrap_or(found.len()),
        };
        Ok(found
            .into_iter()
            .skip(skip)
            .take(q.limit as usize)
            .collect())
    }

    async fn set_notify(
        &self,
        room: RoomId,
        user: UserId,
        level: NotifyLevel,
    ) -> Result<bool, StoreError> {
        let mut d = self.lock()?;
        if !d.members.get(&room).is_some_and(|m| m.contains(&user)) {
            return Ok(false);
        }
        d.notify.insert((room, user), level);
        Ok(true)
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

    async fn create_file(&self, file: StoredFile) -> Result<(), StoreError> {
        self.lock()?.files.create(file)
    }

    async fn file(&self, id: &FileId) -> Result<Option<StoredFile>, StoreError> {
        Ok(self.lock()?.files.get(id))
    }

    async fn files(&self, ids: &[FileId]) -> Result<Vec<StoredFile>, StoreError> {
        let state = self.lock()?;
        Ok(ids.iter().filter_map(|id| state.files.get(id)).collect())
    }

    async fn file_bytes_of(&self, owner: UserId) -> Result<u64, StoreError> {
        Ok(self.lock()?.files.bytes_of(owner))
    }

    async fn file_rooms(&self, id: &FileId) -> Result<Vec<RoomId>, StoreError> {
        Ok(self.lock()?.files.rooms_of(id))
    }

    async fn sweep_files(&self, unposted_before: Millis) -> Result<Vec<ContentHash>, StoreError> {
        let mut d = self.lock()?;
        let avatars = d.avatars();
        Ok(d.files.sweep(unposted_before, &avatars))
    }

    async fn hash_in_use(&self, hash: &ContentHash) -> Result<bool, StoreError> {
        Ok(self.lock()?.files.in_use(hash))
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(self.lock()?.files.secret(name, candidate))
    }

    async fn profile(&self, user: UserId) -> Result<Option<Profile>, StoreError> {
        Ok(self.lock()?.profile(user))
    }

    async fn member_profiles(&self, room: RoomId) -> Result<Vec<(Profile, RoomRole)>, StoreError> {
        let d = self.lock()?;
        let mut out: Vec<(Profile, RoomRole)> = d
            .members
            .get(&room)
            .into_iter()
            .flatten()
            .filter_map(|id| {
                let role = d.moderation.roles.get(&(room, *id)).copied();
                Some((d.profile(*id)?, role.unwrap_or_default()))
            })
            .collect();
        out.sort_by_key(|(p, _)| name_key(&p.user.name));
        Ok(out)
    }

    async fn set_profile(
        &self,
        user: UserId,
        update: ProfileUpdate,
    ) -> Result<Option<Profile>, StoreError> {
        let mut d = self.lock()?;
        if d.user(user).is_none() {
            return Ok(None);
        }
        if let Some(Some(avatar)) = &update.avatar {
            let own_image = d
                .files
                .get(avatar)
                .is_some_and(|f| f.owner == user && f.kind.starts_with("image/"));
            if !own_image {
                return Err(StoreError::Refused(Refusal::UnknownFile));
            }
        }
        let entry = d.moderation.profiles.entry(user).or_default();
        if let Some(name) = update.display_name {
            entry.0 = name;
        }
        if let Some(status) = update.status {
            entry.1 = status;
        }
        if let Some(avatar) = update.avatar {
            entry.2 = avatar;
        }
        Ok(d.profile(user))
    }

    async fn messages_of(
        &self,
        user: UserId,
        after: MessageId,
        limit: u32,
    ) -> Result<Vec<(MessageId, RoomId, Seq)>, StoreError> {
        let d = self.lock()?;
        let mut out: Vec<(MessageId, RoomId, Seq)> = d
            .messages
            .values()
            .flat_map(|entries| entries.values())
            .filter(|m| m.sender.id == user && m.change.is_none() && !m.deleted && m.id > after)
            .map(|m| (m.id, m.room, m.seq))
            .collect();
        out.sort();
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn delete_account(&self, user: UserId) -> Result<DeletedAccount, StoreError> {
        let mut d = self.lock()?;
        let Some(creds) = d.users.get_mut((user.0 - 1) as usize) else {
            return Err(StoreError::NotFound);
        };
        creds.user.name = DELETED_USER_NAME.into();
        creds.password_hash = None;
        // Entries keep their sender by value here: they show the new name, as a join would.
        for entries in d.messages.values_mut() {
            for m in entries.values_mut().filter(|m| m.sender.id == user) {
                m.sender.name = DELETED_USER_NAME.into();
            }
        }
        // The name is free: `named_users` skips freed rows.
        d.freed.insert(user);
        d.moderation.profiles.remove(&user);
        d.moderation.admins.remove(&user);
        d.moderation.deactivated.insert(user);
        d.moderation.invites.retain(|i| i.1 != user);
        let sessions: Vec<Vec<u8>> = d
            .sessions
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(h, _)| h.clone())
            .collect();
        for h in &sessions {
            d.sessions.remove(h);
        }
        let mut rooms: Vec<RoomId> = d
            .members
            .iter()
            .filter(|(_, m)| m.contains(&user))
            .map(|(r, _)| *r)
            .collect();
        rooms.sort();
        for room in &rooms {
            d.remove_member(*room, user);
        }
        Ok(DeletedAccount { sessions, rooms })
    }

    async fn user_flags(&self, user: UserId) -> Result<Option<UserFlags>, StoreError> {
        let d = self.lock()?;
        Ok(d.user(user).map(|_| UserFlags {
            admin: d.moderation.admins.contains(&user),
            deactivated: d.moderation.deactivated.contains(&user),
        }))
    }

    async fn set_admin(&self, user: UserId, admin: bool) -> Result<bool, StoreError> {
        let mut d = self.lock()?;
        if d.user(user).is_none() {
            return Ok(false);
        }
        if admin {
            d.moderation.admins.insert(user);
        } else {
            d.moderation.admins.remove(&user);
        }
        Ok(true)
    }

    async fn deactivate(&self, user: UserId) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut d = self.lock()?;
        d.moderation.deactivated.insert(user);
        let gone: Vec<Vec<u8>> = d
            .sessions
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(h, _)| h.clone())
            .collect();
        for h in &gone {
            d.sessions.remove(h);
        }
        Ok(gone)
    }

    async fn record_audit(&self, entry: NewAudit) -> Result<(), StoreError> {
        self.lock()?.audit(entry);
        Ok(())
    }

    async fn audit_page(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let d = self.lock()?;
        Ok(d.moderation
            .audit
            .iter()
            .rev()
            .filter(|a| before.is_none_or(|b| a.id < b))
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn all_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let d = self.lock()?;
        Ok(d.users
            .iter()
            .map(|c| UserRecord {
                user: c.user.clone(),
                created_at: d.created.get(&c.user.id).copied().unwrap_or_default(),
                last_active: d.last_active.get(&c.user.id).copied().unwrap_or_default(),
            })
            .collect())
    }

    async fn all_rooms(&self) -> Result<Vec<Room>, StoreError> {
        let d = self.lock()?;
        Ok(d.rooms.iter().filter_map(|r| d.room(r.id)).collect())
    }

    async fn add_bot(
        &self,
        bot: UserId,
        owner: UserId,
        created_at: Millis,
    ) -> Result<(), StoreError> {
        let mut d = self.lock()?;
        if d.user(bot).is_none() {
            return Err(StoreError::NotFound);
        }
        d.bots.add(bot, owner, created_at)?;
        if let Some(c) = d.users.get_mut((bot.0 - 1) as usize) {
            c.user.bot = true;
        }
        Ok(())
    }

    async fn bots(&self, owner: Option<UserId>) -> Result<Vec<Bot>, StoreError> {
        let d = self.lock()?;
        Ok(d.bots
            .list(owner)
            .into_iter()
            .filter_map(|(bot, owner, at)| {
                let user = d.user(bot)?.clone();
                Some(memory_bots::BotRecords::bot(user, (owner, at)))
            })
            .collect())
    }

    async fn bot(&self, user: UserId) -> Result<Option<Bot>, StoreError> {
        let d = self.lock()?;
        Ok(d.bots.get(user).and_then(|record| {
            let found = d.user(user)?.clone();
            Some(memory_bots::BotRecords::bot(found, record))
        }))
    }

    async fn remove_bot(&self, bot: UserId) -> Result<bool, StoreError> {
        Ok(self.lock()?.bots.remove(bot))
    }

    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken, StoreError> {
        self.lock()?.bots.create_token(token)
    }

    async fn api_tokens(&self, of: TokensOf) -> Result<Vec<ApiToken>, StoreError> {
        Ok(self.lock()?.bots.tokens(of))
    }

    async fn api_token(&self, token_hash: &[u8]) -> Result<Option<(ApiToken, User)>, StoreError> {
        let d = self.lock()?;
        Ok(d.bots
            .by_hash(token_hash)
            .and_then(|t| Some((t.clone(), d.user(t.bot)?.clone()))))
    }

    async fn delete_api_token(&self, id: TokenId) -> Result<Option<ApiToken>, StoreError> {
        Ok(self.lock()?.bots.delete_token(id))
    }

    async fn touch_api_token(&self, id: TokenId, now: Millis) -> Result<(), StoreError> {
        self.lock()?.bots.touch(id, now);
        Ok(())
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let d = self.lock()?;
        let (files, file_bytes) = d.files.totals();
        Ok(StoreCounts {
            users: d.users.len() as u64,
            guests: d.users.iter().filter(|c| c.user.guest).count() as u64,
            rooms: d.rooms.len() as u64,
            messages: d
                .messages
                .values()
                .flat_map(|m| m.values())
                .filter(|m| m.change.is_none())
                .count() as u64,
            sessions: d.sessions.len() as u64,
            files,
            file_bytes,
        })
    }
}
