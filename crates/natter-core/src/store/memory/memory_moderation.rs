//! `MemoryStore`'s roles, bans, mutes, invitations, room settings, admin flags and audit log:
//! room events applied as the `Store` rules say (see `super::super`).

use super::*;

/// What the memory store keeps for moderation.
#[derive(Default)]
pub(super) struct Moderation {
    /// Roles other than `Member`.
    pub roles: HashMap<(RoomId, UserId), RoomRole>,
    pub muted: HashMap<(RoomId, UserId), Millis>,
    pub bans: BTreeMap<(RoomId, UserId), (UserId, String, Millis)>,
    /// (room, user) -> (by, at), in invitation order by `at` then insertion.
    pub invites: Vec<(RoomId, UserId, UserId, Millis)>,
    pub admins: HashSet<UserId>,
    /// Profiles set with `set_profile`: (display name, status, avatar).
    pub profiles: HashMap<UserId, (String, String, Option<crate::files::FileId>)>,
    pub deactivated: HashSet<UserId>,
    pub audit: Vec<AuditEntry>,
}

impl MemoryData {
    pub(super) fn audit(&mut self, entry: NewAudit) {
        let id = self.moderation.audit.len() as i64 + 1;
        let actor = self.user(entry.actor).cloned().unwrap_or_default();
        let target = entry.target.and_then(|t| self.user(t).cloned());
        self.moderation.audit.push(AuditEntry {
            id,
            ts: entry.ts,
            actor,
            action: entry.action,
            room: entry.room,
            target,
            detail: entry.detail,
        });
    }

    pub(super) fn remove_member(&mut self, room: RoomId, user: UserId) -> bool {
        self.read.remove(&(room, user));
        self.notify.remove(&(room, user));
        self.moderation.roles.remove(&(room, user));
        self.moderation.muted.remove(&(room, user));
        self.members.get_mut(&room).is_some_and(|m| m.remove(&user))
    }

    fn is_member_of(&self, room: RoomId, user: UserId) -> bool {
        self.members.get(&room).is_some_and(|m| m.contains(&user))
    }

    /// Applies a room event (the caller checked dedupe and the room) and stores its entry.
    pub(super) fn room_event(
        &mut self,
        change: NewChange,
        key: (UserId, RoomId, String),
    ) -> Result<ChangeOutcome, StoreError> {
        let room = change.room;
        let subject = change.change.subject().map(|u| u.id);
        let needs_member = matches!(
            change.change,
            Change::Kick { .. } | Change::Mute { .. } | Change::Unmute { .. } | Change::Role { .. }
        );
        if let Some(user) = subject {
            if needs_member && !self.is_member_of(room, user) {
                return Err(StoreError::Refused(Refusal::NotMember));
            }
        }
        let at = subject.map(|u| (room, u));
        match (&change.change, at) {
            (Change::Join { .. }, Some(at)) => {
                if self.moderation.bans.contains_key(&at) {
                    return Err(StoreError::Refused(Refusal::Banned));
                }
                self.moderation.invites.retain(|i| (i.0, i.1) != at);
                if !self.members.entry(room).or_default().insert(at.1) {
                    return Ok(ChangeOutcome::Unchanged);
                }
            }
            (Change::Leave { .. }, Some(at)) => {
                if !self.remove_member(at.0, at.1) {
                    return Ok(ChangeOutcome::Unchanged);
                }
                self.groups.retain(|_, r| *r != room);
            }
            (Change::Kick { .. }, Some(at)) => {
                self.remove_member(at.0, at.1);
            }
            (Change::Ban { reason, .. }, Some(at)) => {
                if self.moderation.bans.contains_key(&at) {
                    return Ok(ChangeOutcome::Unchanged);
                }
                self.remove_member(at.0, at.1);
                self.moderation.invites.retain(|i| (i.0, i.1) != at);
                self.moderation
                    .bans
                    .insert(at, (change.sender.id, reason.clone(), change.ts));
            }
            (Change::Unban { .. }, Some(at)) => {
                if self.moderation.bans.remove(&at).is_none() {
                    return Ok(ChangeOutcome::Unchanged);
                }
            }
            (Change::Mute { until, .. }, Some(at)) => {
                self.moderation.muted.insert(at, *until);
            }
            (Change::Unmute { .. }, Some(at)) => {
                if self.moderation.muted.remove(&at).is_none() {
                    return Ok(ChangeOutcome::Unchanged);
                }
            }
            (Change::Role { role, .. }, Some(at)) => {
                let now = self.moderation.roles.get(&at).copied().unwrap_or_default();
                if now == *role {
                    return Ok(ChangeOutcome::Unchanged);
                }
                if *role == RoomRole::Member {
                    self.moderation.roles.remove(&at);
                } else {
                    self.moderation.roles.insert(at, *role);
                }
            }
            (
                Change::Settings {
                    name,
                    topic,
                    description,
                    archived,
                },
                _,
            ) => {
                let kind = self
                    .room(room)
                    .map(|r| r.kind)
                    .ok_or(StoreError::NotFound)?;
                if let Some(name) = name {
                    if kind == RoomKind::Public {
                        if let Some(other) = self.public_room_by_key(&name_key(name)) {
                            if other != room {
                                return Err(StoreError::Conflict("room name taken".into()));
                            }
                        }
                    }
                }
                let r = self.room_mut(room).ok_or(StoreError::NotFound)?;
                if let Some(name) = name {
                    r.name = name.clone();
                }
                if let Some(topic) = topic {
                    r.topic = topic.clone();
                }
                if let Some(description) = description {
                    r.description = description.clone();
                }
                if let Some(archived) = archived {
                    r.archived = *archived;
                }
            }
            _ => return Err(StoreError::Backend("not a room event".into())),
        }
        let (id, seq) = self.next_entry(room)?;
        let entry = Message {
            id,
            room,
            seq,
            sender: change.sender.clone(),
            ts: change.ts,
            client_id: change.client_id,
            change: Some(change.change.clone()),
            ..Message::default()
        };
        if !change.change.is_membership() {
            self.audit(NewAudit {
                ts: change.ts,
                actor: change.sender.id,
                action: change.change.op().to_string(),
                room: Some(room),
                target: subject,
                detail: serde_json::to_string(&change.change).unwrap_or_default(),
            });
        }
        self.messages
            .entry(room)
            .or_default()
            .insert(seq, entry.clone());
        self.dedupe.insert(key, (room, seq));
        Ok(ChangeOutcome::Applied(entry))
    }

    pub(super) fn profile(&self, user: UserId) -> Option<Profile> {
        let u = self.user(user)?.clone();
        let (display_name, status, avatar) = self
            .moderation
            .profiles
            .get(&user)
            .cloned()
            .unwrap_or_default();
        Some(Profile {
            bot: u.bot,
            user: u,
            display_name,
            status,
            avatar,
            last_active: self.last_active.get(&user).copied().unwrap_or_default(),
        })
    }

    pub(super) fn avatars(&self) -> HashSet<crate::files::FileId> {
        self.moderation
            .profiles
            .values()
            .filter_map(|(_, _, a)| a.clone())
            .collect()
    }

    pub(super) fn standing(&self, room: RoomId, user: UserId) -> Standing {
        let at = (room, user);
        Standing {
            member: self.is_member_of(room, user),
            role: self.moderation.roles.get(&at).copied().unwrap_or_default(),
            muted_until: self.moderation.muted.get(&at).copied(),
            banned: self.moderation.bans.contains_key(&at),
            invited: self.moderation.invites.iter().any(|i| (i.0, i.1) == at),
        }
    }

    pub(super) fn invites_of(&self, user: UserId) -> Vec<Invite> {
        self.moderation
            .invites
            .iter()
            .filter(|i| i.1 == user)
            .filter_map(|i| {
                Some(Invite {
                    room: i.0,
                    name: self.room(i.0)?.name,
                    by: self.user(i.2)?.clone(),
                    ts: i.3,
                })
            })
            .collect()
    }

    pub(super) fn bans_of(&self, room: RoomId) -> Vec<Ban> {
        let mut bans: Vec<Ban> = self
            .moderation
            .bans
            .iter()
            .filter(|((r, _), _)| *r == room)
            .filter_map(|((_, u), (by, reason, ts))| {
                Some(Ban {
                    user: self.user(*u)?.clone(),
                    by: self.user(*by)?.clone(),
                    reason: reason.clone(),
                    ts: *ts,
                })
            })
            .collect();
        bans.sort_by_key(|b| (b.ts, b.user.id));
        bans
    }
}
