//! Rooms' rules and people's roles: invitations to private rooms, room settings
//! (`room.update`), moderation (`room.kick`, `room.ban`, `room.unban`, `room.mute`,
//! `room.unmute`, `room.role`, `room.bans`), and server admins (`admin.audit`,
//! `admin.set_admin`, `admin.deactivate`). Every change to a room is a stream entry (a
//! `Change` room event) stored with its effect, so a client that was offline replays it.
//!
//! Who may do what (docs/protocol.md section 4.9): a rank per user and room: admin 3,
//! owner 2, moderator 1, member 0. Moderators and owners act only on users of a lower rank;
//! roles and archiving take an owner. Non-members of a private room learn nothing of it:
//! every request naming it answers `unknown_room`, as for a room that does not exist.
//!
//! What restricts a post (archived room, muted member) is cached per node: `crate::rules`.

use super::Node;
use crate::accounts;
use crate::broker::BusEvent;
use crate::error::{ChatError, ErrorCode, StoreError};
use crate::model::*;
use crate::protocol::*;
use crate::session::SessionHandle;

/// Who is acting, in one room.
pub(super) struct Actor {
    pub(super) admin: bool,
    pub(super) standing: Standing,
}

impl Actor {
    fn rank(&self) -> u8 {
        rank(self.admin, &self.standing)
    }
}

fn rank(admin: bool, standing: &Standing) -> u8 {
    if admin {
        3
    } else if !standing.member {
        0
    } else {
        match standing.role {
            RoomRole::Owner => 2,
            RoomRole::Moderator => 1,
            RoomRole::Member => 0,
        }
    }
}

fn forbidden(message: &str) -> ChatError {
    ChatError::new(ErrorCode::Forbidden, message)
}

fn check_chars(field: &str, text: &str, max: usize) -> Result<(), ChatError> {
    if text.chars().count() > max {
        return Err(ChatError::invalid(format!(
            "`{field}` is at most {max} characters"
        )));
    }
    Ok(())
}

impl Node {
    /// Refuses a post (edit, reaction) in an archived room or by a muted member.
    pub(crate) async fn check_may_post(&self, user: UserId, room: RoomId) -> Result<(), ChatError> {
        let rules = match self.sessions.rules.get(room, user) {
            Some(rules) => rules,
            None => self.load_rules(room, user).await?,
        };
        self.judge(rules)
    }

    /// For a send, without an await (pipelined sends must reach the store in the order
    /// issued): Ok(false) if the cache allows it, Ok(true) if the cache has no answer yet
    /// (the store checks then: `NewMessage::check_rules`, and the cache is filled meanwhile).
    pub(crate) fn check_may_send(&self, user: UserId, room: RoomId) -> Result<bool, ChatError> {
        if let Some(rules) = self.sessions.rules.get(room, user) {
            return self.judge(rules).map(|()| false);
        }
        if let (Ok(runtime), Some(node)) =
            (tokio::runtime::Handle::try_current(), self.me.upgrade())
        {
            runtime.spawn(async move {
                if let Err(e) = node.load_rules(room, user).await {
                    tracing::debug!(error = %e, "loading room rules failed");
                }
            });
        }
        Ok(true)
    }

    async fn load_rules(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<(bool, Option<Millis>), ChatError> {
        let generation = self.sessions.rules.generation();
        let archived = self.store.room(room).await?.is_some_and(|r| r.archived);
        let muted = self.store.standing(room, user).await?.muted_until;
        self.sessions
            .rules
            .put(generation, room, user, archived, muted);
        Ok((archived, muted))
    }

    fn judge(&self, (archived, muted): (bool, Option<Millis>)) -> Result<(), ChatError> {
        if archived {
            return Err(ChatError::archived());
        }
        let now = self.config.clock.now_millis();
        if let Some(until) = muted.filter(|until| *until > now) {
            return Err(ChatError::muted(until, now));
        }
        Ok(())
    }

    /// The room and the acting user's standing in it; `unknown_room` if it does not exist or
    /// is private or a DM and they are not in it (an admin sees every private room).
    pub(super) async fn acting_in(
        &self,
        user: UserId,
        room: RoomId,
    ) -> Result<(Room, Actor), ChatError> {
        let found = self
            .store
            .room(room)
            .await?
            .ok_or_else(|| ChatError::unknown_room(room))?;
        let admin = self.is_admin(user).await?;
        let standing = self.store.standing(room, user).await?;
        let hidden = match found.kind {
            RoomKind::Public => false,
            RoomKind::Private => !standing.member && !standing.invited && !admin,
            RoomKind::Dm | RoomKind::Group => !standing.member,
        };
        if hidden {
            return Err(ChatError::unknown_room(room));
        }
        Ok((found, Actor { admin, standing }))
    }

    pub(crate) async fn is_admin(&self, user: UserId) -> Result<bool, ChatError> {
        Ok(self
            .store
            .user_flags(user)
            .await?
            .is_some_and(|f| f.admin && !f.deactivated))
    }

    /// The user of that name, or `unknown_user`.
    pub(crate) async fn named_user(&self, name: &str) -> Result<User, ChatError> {
        self.store
            .user_by_name(name)
            .await?
            .ok_or_else(|| ChatError::new(ErrorCode::UnknownUser, "no user of that name"))
    }

    /// The room view for a viewer allowed to see it: `visible_room`'s rules for private rooms.
    pub(crate) async fn private_view(
        &self,
        room: Room,
        viewer: UserId,
    ) -> Result<RoomView, ChatError> {
        let id = room.id;
        let standing = self.store.standing(id, viewer).await?;
        if !standing.member && !standing.invited && !self.is_admin(viewer).await? {
            return Err(ChatError::unknown_room(id));
        }
        let mut view = Self::view(room, standing.member, None);
        if standing.member {
            view.role = Some(standing.role);
            view.muted_until = standing.muted_until;
        }
        Ok(view)
    }

    /// Stores a room event and publishes its entry; a kick or ban also takes the member out
    /// (on every node: `room_removed` to them, `member_left` to the room).
    async fn room_event(
        &self,
        sender: &User,
        room: RoomId,
        client_id: String,
        change: Change,
    ) -> Result<Reply, ChatError> {
        Self::check_client_id(&client_id)?;
        let removes = match &change {
            Change::Kick { user, .. } | Change::Ban { user, .. } => Some(user.clone()),
            _ => None,
        };
        let outcome = match self
            .store
            .change(NewChange {
                room,
                sender: sender.clone(),
                client_id,
                ts: self.config.clock.now_millis(),
                change,
                body: String::new(),
                max_reactions: 0,
            })
            .await
        {
            Ok(outcome) => outcome,
            Err(StoreError::Conflict(_)) => {
                return Err(ChatError::new(
                    ErrorCode::NameTaken,
                    "a room of that name exists",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let (entry, duplicate) = match outcome {
            ChangeOutcome::Applied(entry) => (Some(entry), false),
            ChangeOutcome::Duplicate(entry) => (Some(entry), true),
            ChangeOutcome::Unchanged => (None, false),
        };
        if let Some(entry) = &entry {
            self.sessions.rules.forget(room);
            self.publish(BusEvent::Message {
                message: entry.clone(),
            })
            .await;
            if let (Some(user), false) = (removes, duplicate) {
                self.end_typing(room, &user).await;
                let count = self.store.room(room).await?.map_or(0, |r| r.member_count);
                self.publish(BusEvent::MemberLeft {
                    room,
                    user: user.clone(),
                    member_count: count,
                })
                .await;
                self.publish(BusEvent::RoomRemoved {
                    user: user.id,
                    room,
                })
                .await;
            }
        }
        Ok(ChangeReply { entry, duplicate }.into())
    }

    /// `room.kick`, `room.ban`, `room.unban`, `room.mute`, `room.unmute`.
    pub(crate) async fn moderate(
        &self,
        session: &SessionHandle,
        args: ModerateArgs,
        op: &str,
    ) -> Result<Reply, ChatError> {
        let (room, actor) = self.acting_in(session.user.id, args.room).await?;
        if room.kind.is_direct() {
            return Err(forbidden("a direct message has no moderators"));
        }
        if actor.rank() < 1 {
            return Err(forbidden("only the room's moderators may do that"));
        }
        let target = self.named_user(&args.user).await?;
        if target.id == session.user.id {
            return Err(ChatError::invalid(
                "moderators act on others, not themselves",
            ));
        }
        let standing = self.store.standing(room.id, target.id).await?;
        if rank(self.is_admin(target.id).await?, &standing) >= actor.rank() {
            return Err(forbidden(
                "moderators act only on members of a lower role than theirs",
            ));
        }
        let reason = args.reason.unwrap_or_default();
        check_chars("reason", &reason, MAX_REASON_CHARS)?;
        let change = match op {
            "kick" => Change::Kick {
                user: target,
                reason,
            },
            "ban" => Change::Ban {
                user: target,
                reason,
            },
            "unban" => Change::Unban { user: target },
            "mute" => {
                let minutes = args.minutes.unwrap_or(0);
                if !(1..=MAX_MUTE_MINUTES).contains(&minutes) {
                    return Err(ChatError::invalid(format!(
                        "`minutes` must be 1 to {MAX_MUTE_MINUTES}"
                    )));
                }
                Change::Mute {
                    user: target,
                    until: self.config.clock.now_millis() + i64::from(minutes) * 60_000,
                }
            }
            _ => Change::Unmute { user: target },
        };
        self.room_event(&session.user, room.id, args.client_id, change)
            .await
    }

    /// `room.role`: owners (and admins) set a member's role.
    pub(crate) async fn set_role(
        &self,
        session: &SessionHandle,
        args: RoleArgs,
    ) -> Result<Reply, ChatError> {
        let (room, actor) = self.acting_in(session.user.id, args.room).await?;
        if room.kind.is_direct() {
            return Err(forbidden("a direct message has no roles"));
        }
        if actor.rank() < 2 {
            return Err(forbidden("only the room's owners may set roles"));
        }
        let target = self.named_user(&args.user).await?;
        if target.id == session.user.id {
            return Err(ChatError::invalid("you cannot change your own role"));
        }
        let standing = self.store.standing(room.id, target.id).await?;
        if !actor.admin && standing.role == RoomRole::Owner {
            return Err(forbidden("an owner's role is changed by an admin"));
        }
        let change = Change::Role {
            user: target,
            role: args.role,
        };
        self.room_event(&session.user, room.id, args.client_id, change)
            .await
    }

    /// `room.update`: moderators set name, topic, description; owners archive.
    pub(crate) async fn room_update(
        &self,
        session: &SessionHandle,
        args: RoomUpdateArgs,
    ) -> Result<Reply, ChatError> {
        let (room, actor) = self.acting_in(session.user.id, args.room).await?;
        if room.kind.is_direct() {
            return Err(forbidden("a direct message has no settings"));
        }
        if actor.rank() < 1 {
            return Err(forbidden(
                "only the room's moderators may change its settings",
            ));
        }
        if args.archived.is_some() && actor.rank() < 2 {
            return Err(forbidden("only the room's owners may archive it"));
        }
        if let Some(name) = &args.name {
            if !accounts::valid_name(name) {
                return Err(ChatError::new(
                    ErrorCode::InvalidName,
                    "room names are 1-32 characters of letters, digits, _ - .",
                ));
            }
        }
        if let Some(topic) = &args.topic {
            check_chars("topic", topic, MAX_TOPIC_CHARS)?;
        }
        if let Some(description) = &args.description {
            check_chars("description", description, MAX_DESCRIPTION_CHARS)?;
        }
        if args.name.is_none()
            && args.topic.is_none()
            && args.description.is_none()
            && args.archived.is_none()
        {
            return Err(ChatError::invalid(
                "give at least one of `name`, `topic`, `description`, `archived`",
            ));
        }
        let change = Change::Settings {
            name: args.name,
            topic: args.topic,
            description: args.description,
            archived: args.archived,
        };
        self.room_event(&session.user, room.id, args.client_id, change)
            .await
    }

    /// `room.bans`: moderators list the room's bans.
    pub(crate) async fn room_bans(
        &self,
        session: &SessionHandle,
        room: RoomId,
    ) -> Result<Reply, ChatError> {
        let (room, actor) = self.acting_in(session.user.id, room).await?;
        if actor.rank() < 1 || room.kind.is_direct() {
            return Err(forbidden("only the room's moderators may list its bans"));
        }
        Ok(BansReply {
            bans: self.store.bans(room.id).await?,
        }
        .into())
    }

    /// `room.invite`: a member of a private room invites someone by name.
    pub(crate) async fn room_invite(
        &self,
        session: &SessionHandle,
        args: InviteArgs,
    ) -> Result<Reply, ChatError> {
        let (room, actor) = self.acting_in(session.user.id, args.room).await?;
        if room.kind != RoomKind::Private {
            return Err(ChatError::invalid(
                "only private rooms take invitations (anyone may join a public room)",
            ));
        }
        if !actor.standing.member && !actor.admin {
            return Err(ChatError::not_member(room.id));
        }
        if room.archived {
            return Err(ChatError::new(
                ErrorCode::RoomArchived,
                "this room is archived: it is read-only",
            ));
        }
        let target = self.named_user(&args.user).await?;
        let standing = self.store.standing(room.id, target.id).await?;
        if standing.member {
            return Err(ChatError::invalid("that user is a member already"));
        }
        if standing.banned {
            return Err(ChatError::new(
                ErrorCode::Banned,
                "that user is banned from this room",
            ));
        }
        let now = self.config.clock.now_millis();
        if self
            .store
            .invite(room.id, target.id, session.user.id, now)
            .await?
        {
            self.publish(BusEvent::RoomInvited {
                user: target.id,
                invite: Invite {
                    room: room.id,
                    name: room.name,
                    by: session.user.clone(),
                    ts: now,
                },
            })
            .await;
        }
        Ok(Empty {}.into())
    }

    pub(crate) async fn invite_list(&self, session: &SessionHandle) -> Result<Reply, ChatError> {
        Ok(InvitesReply {
            invites: self.store.invites_of(session.user.id).await?,
        }
        .into())
    }

    pub(crate) async fn invite_decline(
        &self,
        session: &SessionHandle,
        room: RoomId,
    ) -> Result<Reply, ChatError> {
        if !self.store.remove_invite(room, session.user.id).await? {
            return Err(ChatError::unknown_room(room));
        }
        Ok(Empty {}.into())
    }

    async fn check_admin(&self, session: &SessionHandle) -> Result<(), ChatError> {
        if self.is_admin(session.user.id).await? {
            Ok(())
        } else {
            Err(forbidden("only server admins may do that"))
        }
    }

    pub(crate) async fn admin_audit(
        &self,
        session: &SessionHandle,
        args: AuditArgs,
    ) -> Result<Reply, ChatError> {
        self.check_admin(session).await?;
        let limit = args.limit.unwrap_or(DEFAULT_AUDIT_PAGE);
        if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
            return Err(ChatError::invalid(format!(
                "`limit` must be 1 to {MAX_AUDIT_PAGE}"
            )));
        }
        let entries = self.store.audit_page(args.before, limit).await?;
        let next = if entries.len() == limit as usize {
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditReply { entries, next }.into())
    }

    pub(crate) async fn admin_set_admin(
        &self,
        session: &SessionHandle,
        args: SetAdminArgs,
    ) -> Result<Reply, ChatError> {
        self.check_admin(session).await?;
        let target = self.named_user(&args.user).await?;
        if target.id == session.user.id {
            return Err(ChatError::invalid("you cannot change your own admin role"));
        }
        if target.guest {
            return Err(ChatError::invalid("guests cannot be admins"));
        }
        self.store.set_admin(target.id, args.admin).await?;
        self.store
            .record_audit(NewAudit {
                ts: self.config.clock.now_millis(),
                actor: session.user.id,
                action: if args.admin { "admin" } else { "unadmin" }.into(),
                room: None,
                target: Some(target.id),
                detail: String::new(),
            })
            .await?;
        Ok(Empty {}.into())
    }

    pub(crate) async fn admin_deactivate(
        &self,
        session: &SessionHandle,
        name: &str,
    ) -> Result<Reply, ChatError> {
        self.check_admin(session).await?;
        let target = self.named_user(name).await?;
        if target.id == session.user.id {
            return Err(ChatError::invalid("you cannot deactivate yourself"));
        }
        self.store.deactivate(target.id).await?;
        self.store
            .record_audit(NewAudit {
                ts: self.config.clock.now_millis(),
                actor: session.user.id,
                action: "deactivate".into(),
                room: None,
                target: Some(target.id),
                detail: String::new(),
            })
            .await?;
        self.publish(BusEvent::UserDeactivated { user: target.id })
            .await;
        Ok(Empty {}.into())
    }

    /// Whether `actor` may delete `author`'s message in `room` (their own: always).
    pub(crate) async fn may_delete_of(
        &self,
        actor: UserId,
        author: UserId,
        room: RoomId,
    ) -> Result<bool, ChatError> {
        if actor == author {
            return Ok(true);
        }
        let (found, acting) = self.acting_in(actor, room).await?;
        if found.kind.is_direct() || acting.rank() < 1 {
            return Ok(false);
        }
        let standing = self.store.standing(room, author).await?;
        Ok(rank(self.is_admin(author).await?, &standing) < acting.rank())
    }
}
