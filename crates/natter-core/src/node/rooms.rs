//! Room requests: list, create, join, leave, members, read markers and direct messages;
//! who may see which room.

use super::Node;
use crate::accounts;
use crate::broker::{BusEvent, Topic};
use crate::error::{ChatError, ErrorCode, StoreError};
use crate::files::{FileId, StoredFile};
use crate::metrics::RateLimitKind;
use crate::model::*;
use crate::protocol::*;
use crate::session::{Outbound, SessionHandle};
use crate::store::name_key;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A checked `room.list` request.
struct RoomPage {
    /// The query as a name key (empty: every room).
    contains: String,
    /// The cursor: the name key of the previous page's last room (empty: the first page).
    after: String,
    limit: u32,
    /// Archived rooms instead of active ones.
    archived: bool,
}

impl RoomPage {
    fn from_args(args: RoomListArgs) -> Result<RoomPage, ChatError> {
        let query = args.query.unwrap_or_default();
        if query.chars().count() > MAX_ROOM_QUERY_CHARS {
            return Err(ChatError::invalid(format!(
                "`query` is at most {MAX_ROOM_QUERY_CHARS} characters"
            )));
        }
        let after = args.after.unwrap_or_default();
        if after.chars().count() > MAX_ROOM_CURSOR_CHARS {
            return Err(ChatError::invalid(
                "`after` must be a `next` from an earlier `room.list`",
            ));
        }
        let limit = args.limit.unwrap_or(DEFAULT_ROOM_PAGE);
        if !(1..=MAX_ROOM_PAGE).contains(&limit) {
            return Err(ChatError::invalid(format!(
                "`limit` must be 1 to {MAX_ROOM_PAGE}"
            )));
        }
        Ok(RoomPage {
            contains: name_key(&query),
            after,
            limit,
            archived: args.archived,
        })
    }
}

impl Node {
    /// One page of public rooms by name, filtered by `query`; the first page (no `after`)
    /// also lists the user's DMs (those whose peer's name matches `query`), after the public
    /// rooms and not counted in `limit`.
    pub(crate) async fn room_list(
        &self,
        session: &SessionHandle,
        args: RoomListArgs,
    ) -> Result<Reply, ChatError> {
        let page = RoomPage::from_args(args)?;
        let mine = self.my_rooms(session.user.id).await?;
        let joined: HashSet<RoomId> = mine.iter().map(|r| r.id).collect();
        let mut found = self
            .store
            .public_rooms_page(&page.contains, &page.after, page.limit + 1, page.archived)
            .await?;
        // One more than asked says whether there is a next page without a count query.
        let next = if found.len() > page.limit as usize {
            found.truncate(page.limit as usize);
            found.last().map(|r| name_key(&r.name))
        } else {
            None
        };
        let mut rooms: Vec<RoomView> = found
            .into_iter()
            .map(|r| {
                let member = joined.contains(&r.id);
                Self::view(r, member, None)
            })
            .collect();
        if page.after.is_empty() {
            rooms.extend(mine.into_iter().filter(|r| {
                match r.kind {
                    RoomKind::Dm => r
                        .peer
                        .as_ref()
                        .is_some_and(|p| name_key(&p.name).contains(&page.contains)),
                    RoomKind::Group => r
                        .peers
                        .iter()
                        .any(|p| name_key(&p.name).contains(&page.contains)),
                    RoomKind::Private => {
                        r.archived == page.archived && name_key(&r.name).contains(&page.contains)
                    }
                    RoomKind::Public => false,
                }
            }));
        }
        Ok(RoomsReply { rooms, next }.into())
    }

    pub(crate) async fn room_create(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        args: RoomCreateArgs,
    ) -> Result<Reply, ChatError> {
        let name = args.name.as_str();
        let kind = if args.private {
            RoomKind::Private
        } else {
            RoomKind::Public
        };
        if !accounts::valid_name(name) {
            return Err(ChatError::new(
                ErrorCode::InvalidName,
                "room names are 1-32 characters of letters, digits, _ - .",
            ));
        }
        self.take_room_creation(session.user.id)?;
        let counted = self.room_cap.lock().await;
        let max = self.config.max_rooms_per_user;
        if self.store.rooms_created_by(session.user.id).await? >= u64::from(max) {
            return Err(ChatError::new(
                ErrorCode::LimitReached,
                format!("you have created {max} rooms, the most one user may"),
            ));
        }
        let room = match self.store.create_room(name, session.user.id, kind).await {
            Ok(room) => room,
            Err(StoreError::Conflict(_)) => {
                return Err(ChatError::new(
                    ErrorCode::NameTaken,
                    "a room of that name exists",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        drop(counted);
        let mut view = Self::view(room, true, None);
        view.role = Some(RoomRole::Owner);
        self.enter_room(session, &view);
        self.publish(BusEvent::RoomAdded {
            user: session.user.id,
            room: view.clone(),
        })
        .await;
        self.publish(BusEvent::MemberJoined {
            room: view.id,
            user: session.user.clone(),
            member_count: view.member_count,
        })
        .await;
        Ok(RoomReply { room: view }.into())
    }

    /// Takes one of `user`'s room creations on this node, or says when the next one comes.
    fn take_room_creation(&self, user: UserId) -> Result<(), ChatError> {
        let taken = self
            .room_creations
            .take(user, self.config.room_create_per_minute)
            .map_err(|wait| {
                ChatError::rate_limited("rooms are being created too fast, slow down", wait)
            });
        self.count_refusal(RateLimitKind::RoomCreate, taken)
    }

    /// Makes this session a live member of a room it just joined.
    pub(crate) fn enter_room(&self, session: &Arc<SessionHandle>, view: &RoomView) {
        if session.is_member(view.id) {
            return;
        }
        session.push(Outbound::Track(view.id, view.last_seq));
        if self.hub.join_room(session, view.id) {
            self.sessions.rules.forget(view.id);
            self.broker.subscribe(Topic::Room(view.id));
        }
    }

    /// The public room named `name` (case-insensitively), if there is one.
    pub async fn public_room_named(&self, name: &str) -> Result<Option<RoomId>, ChatError> {
        let key = crate::store::name_key(name);
        let rooms = self.store.public_rooms().await?;
        Ok(rooms
            .into_iter()
            .find(|room| crate::store::name_key(&room.name) == key)
            .map(|room| room.id))
    }

    pub(crate) async fn room_join(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        room: RoomId,
    ) -> Result<Reply, ChatError> {
        let view = self.visible_room(room, session.user.id).await?;
        if view.kind.is_direct() {
            self.enter_room(session, &view);
            return Ok(RoomReply { room: view }.into());
        }
        let view = self.add_member(room, &session.user).await?;
        self.enter_room(session, &view);
        Ok(RoomReply { room: view }.into())
    }

    pub(crate) async fn room_leave(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        room: RoomId,
    ) -> Result<Reply, ChatError> {
        let view = self.visible_room(room, session.user.id).await?;
        if view.kind == RoomKind::Dm {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "a direct message cannot be left",
            ));
        }
        if !self
            .remove_from_room(room, &session.user, &session.user)
            .await?
        {
            return Err(ChatError::not_member(room));
        }
        // From now on this connection may not act in the room (a send right after the reply
        // must fail `not_member`), though it still receives the room's events (its own leave
        // entry and `member_left` among them) until its `room_removed` (below) unsubscribes it.
        session.remove_room(room);
        self.publish(BusEvent::RoomRemoved {
            user: session.user.id,
            room,
        })
        .await;
        // The `room_removed` event (above) takes this connection out of the room; doing it
        // here already would make it miss its own `member_left` on a networked broker.
        Ok(Empty {}.into())
    }

    /// Moves the user's read marker in `room` forward and tells all their connections.
    pub(crate) async fn room_read(
        &self,
        session: &SessionHandle,
        room: RoomId,
        seq: Seq,
    ) -> Result<ReadMarker, ChatError> {
        self.check_member(session, room).await?;
        let Some(read_seq) = self.store.mark_read(room, session.user.id, seq).await? else {
            return Err(ChatError::not_member(room));
        };
        let state = self
            .store
            .member_states(session.user.id, Some(room))
            .await?
            .pop()
            .unwrap_or_default();
        self.publish(BusEvent::RoomRead {
            user: session.user.id,
            room,
            read_seq,
            unread: Some(state.unread),
            mentions: Some(state.mentions),
        })
        .await;
        Ok(ReadMarker {
            room,
            read_seq,
            unread: Some(state.unread),
            mentions: Some(state.mentions),
        })
    }

    pub(crate) async fn room_members(
        &self,
        session: &SessionHandle,
        room: RoomId,
    ) -> Result<Reply, ChatError> {
        let view = self.visible_room(room, session.user.id).await?;
        let profiles = self.store.member_profiles(room).await?;
        let online: HashSet<UserId> = self
            .broker
            .online_users()
            .await?
            .into_iter()
            .map(|u| u.id)
            .collect();
        // Every avatar of the list in one store query, not one per member.
        let avatar_ids: Vec<FileId> = profiles
            .iter()
            .filter_map(|(p, _)| p.avatar.clone())
            .collect();
        let avatars: HashMap<FileId, StoredFile> = self
            .store
            .files(&avatar_ids)
            .await?
            .into_iter()
            .map(|f| (f.id.clone(), f))
            .collect();
        let mut members = Vec::with_capacity(profiles.len());
        for (profile, role) in profiles {
            let is_online = online.contains(&profile.user.id);
            let avatar = profile
                .avatar
                .as_ref()
                .and_then(|id| avatars.get(id).cloned());
            let mut member = super::profiles::member_view(profile, is_online, avatar);
            if !view.kind.is_direct() {
                member.role = Some(role);
            }
            members.push(member);
        }

        Ok(MembersReply { members }.into())
    }

    pub(crate) async fn dm_open(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        name: &str,
    ) -> Result<Reply, ChatError> {
        let Some(peer) = self.store.user_by_name(name).await? else {
            return Err(ChatError::new(
                ErrorCode::UnknownUser,
                "no user of that name",
            ));
        };
        let me = session.user.clone();
        if peer.id == me.id {
            return Err(ChatError::invalid("a direct message needs another person"));
        }
        let (room, created) = self.store.open_dm(me.id, peer.id).await?;
        let mine = Self::view(room.clone(), true, Some(peer.clone()));
        self.enter_room(session, &mine);
        if created {
            let theirs = Self::view(room, true, Some(me.clone()));
            self.publish(BusEvent::RoomAdded {
                user: peer.id,
                room: theirs,
            })
            .await;
            self.publish(BusEvent::RoomAdded {
                user: me.id,
                room: mine.clone(),
            })
            .await;
        }
        Ok(RoomReply { room: mine }.into())
    }
}
