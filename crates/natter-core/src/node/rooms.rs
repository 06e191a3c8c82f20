//! Room requests: list, create, join, leave, members, read markers and direct messages;
//! who may see which room.

use super::Node;
use crate::accounts;
use crate::broker::{BusEvent, Topic};
use crate::error::{ChatError, ErrorCode, StoreError};
use crate::model::*;
use crate::protocol::*;
use crate::session::{Outbound, SessionHandle};
use std::sync::Arc;

impl Node {
    pub(crate) async fn room_list(&self, session: &SessionHandle) -> Result<Reply, ChatError> {
        let me = session.user.id;
        let mine = self.my_rooms(me).await?;
        let mut rooms: Vec<RoomView> = self
            .store
            .public_rooms()
            .await?
            .into_iter()
            .map(|r| {
                let joined = mine.iter().any(|m| m.id == r.id);
                Self::view(r, joined, None)
            })
            .collect();
        rooms.extend(mine.into_iter().filter(|r| r.kind == RoomKind::Dm));
        Ok(RoomsReply { rooms }.into())
    }

    pub(crate) async fn room_create(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        name: &str,
    ) -> Result<Reply, ChatError> {
        if !accounts::valid_name(name) {
            return Err(ChatError::new(
                ErrorCode::InvalidName,
                "room names are 1-32 characters of letters, digits, _ - .",
            ));
        }
        let room = match self.store.create_room(name, session.user.id).await {
            Ok(room) => room,
            Err(StoreError::Conflict(_)) => {
                return Err(ChatError::new(
                    ErrorCode::NameTaken,
                    "a room of that name exists",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let view = Self::view(room, true, None);
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

    /// Makes this session a live member of a room it just joined.
    pub(crate) fn enter_room(&self, session: &Arc<SessionHandle>, view: &RoomView) {
        if session.is_member(view.id) {
            return;
        }
        session.push(Outbound::Track(view.id, view.last_seq));
        if self.hub.join_room(session, view.id) {
            self.broker.subscribe(Topic::Room(view.id));
        }
    }

    pub(crate) async fn room_join(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        room: RoomId,
    ) -> Result<Reply, ChatError> {
        let view = self.visible_room(room, session.user.id).await?;
        if view.kind == RoomKind::Dm {
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
        if !self.store.leave(room, session.user.id).await? {
            return Err(ChatError::not_member(room));
        }
        let count = self.store.room(room).await?.map_or(0, |r| r.member_count);
        self.end_typing(room, &session.user).await;
        self.publish(BusEvent::MemberLeft {
            room,
            user: session.user.clone(),
            member_count: count,
        })
        .await;
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
        self.publish(BusEvent::RoomRead {
            user: session.user.id,
            room,
            read_seq,
        })
        .await;
        Ok(ReadMarker { room, read_seq })
    }

    pub(crate) async fn room_members(
        &self,
        session: &SessionHandle,
        room: RoomId,
    ) -> Result<Reply, ChatError> {
        self.visible_room(room, session.user.id).await?;
        let members = self.store.members(room).await?;
        let online: std::collections::HashSet<UserId> = self
            .broker
            .online_users()
            .await?
            .into_iter()
            .map(|u| u.id)
            .collect();
        let members: Vec<MemberView> = members
            .into_iter()
            .map(|user| MemberView {
                online: online.contains(&user.id),
                user,
            })
            .collect();
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
