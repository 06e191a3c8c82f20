//! Group DMs: `group.open` (the conversation of 3 to 8 people, named by its members; the
//! same people get the same group) and `group.add` (the group of everyone plus one more: a
//! new conversation, so the person added sees it from that moment and none of the earlier
//! one, which stays with its members). Leaving is `room.leave`.
//!
//! Why adding makes a new group: a room's events are encoded once for all its members, so a
//! newcomer would also receive the changes (edits, reactions, replies) to messages from
//! before they came; a group whose membership never grows has nothing to hide from anyone in
//! it. Slack does the same.

use super::Node;
use crate::broker::BusEvent;
use crate::error::{ChatError, ErrorCode};
use crate::model::*;
use crate::protocol::*;
use crate::session::SessionHandle;
use std::sync::Arc;

impl Node {
    pub(crate) async fn group_open(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        names: &[String],
    ) -> Result<Reply, ChatError> {
        if names.len() >= MAX_GROUP_MEMBERS {
            return Err(ChatError::invalid(format!(
                "a group DM has 3 to {MAX_GROUP_MEMBERS} people"
            )));
        }
        let mut members = vec![session.user.clone()];
        for name in names {
            let Some(user) = self.store.user_by_name(name).await? else {
                return Err(ChatError::new(
                    ErrorCode::UnknownUser,
                    format!(
                        "no user named {}",
                        name.chars().take(32).collect::<String>()
                    ),
                ));
            };
            if !members.iter().any(|m| m.id == user.id) {
                members.push(user);
            }
        }
        self.open_group_of(session, members).await
    }

    pub(crate) async fn group_add(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        args: InviteArgs,
    ) -> Result<Reply, ChatError> {
        let view = self.visible_room(args.room, session.user.id).await?;
        if view.kind != RoomKind::Group {
            return Err(ChatError::invalid(
                "`group.add` takes a group DM (for a DM, open a group with `group.open`)",
            ));
        }
        let user = self.named_user(&args.user).await?;
        if view.peers.iter().any(|p| p.id == user.id) || user.id == session.user.id {
            return Err(ChatError::invalid("that person is in the group already"));
        }
        let mut members = vec![session.user.clone()];
        members.extend(view.peers);
        members.push(user);
        self.open_group_of(session, members).await
    }

    /// The group of exactly `members` (the caller first), created if new and announced to
    /// every member with `room_added`.
    async fn open_group_of(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        members: Vec<User>,
    ) -> Result<Reply, ChatError> {
        if !(MIN_GROUP_MEMBERS..=MAX_GROUP_MEMBERS).contains(&members.len()) {
            return Err(ChatError::invalid(format!(
                "a group DM has {MIN_GROUP_MEMBERS} to {MAX_GROUP_MEMBERS} people (you and 2 to {} others)",
                MAX_GROUP_MEMBERS - 1
            )));
        }
        let ids: Vec<UserId> = members.iter().map(|m| m.id).collect();
        let (room, created) = self.store.open_group(&ids).await?;
        let view_for = |viewer: UserId| {
            let mut view = Self::view(room.clone(), true, None);
            view.peers = members.iter().filter(|m| m.id != viewer).cloned().collect();
            view.peers.sort_by_key(|p| crate::store::name_key(&p.name));
            view
        };
        let mine = view_for(session.user.id);
        self.enter_room(session, &mine);
        if created {
            for member in &members {
                self.publish(BusEvent::RoomAdded {
                    user: member.id,
                    room: view_for(member.id),
                })
                .await;
            }
        }
        Ok(RoomReply { room: mine }.into())
    }
}
