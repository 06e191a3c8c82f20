//! What the broker delivers: `BusHandler` for the node, turning bus events into encoded
//! events for the local hub, and the catch-up after a broker outage.

use super::Node;
use crate::accounts;
use crate::broker::{BusEvent, BusHandler, Topic};
use crate::error::ChatError;
use crate::hub::Hub;
use crate::model::*;
use crate::protocol::*;
use crate::session::{Outbound, SessionHandle};
use crate::store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The most messages re-read from the store and delivered through the hub when the broker
/// may have missed some. More than that would go into every session's bounded queue at once
/// (and overflow it): then each session catches up by itself instead.
const RESYNC_THROUGH_HUB: u32 = 200;

impl Node {
    /// Re-delivers a room's stored messages after `after`: a few through the hub (in seq
    /// order; sessions skip what they have); a longer backlog by each session catching up
    /// from its own watermark, page by page as it writes, outside its queue.
    pub(crate) async fn redeliver_from_store(
        hub: Arc<Hub>,
        store: Arc<dyn Store>,
        room: RoomId,
        after: Seq,
    ) {
        let page = match store.messages_after(room, after, RESYNC_THROUGH_HUB).await {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(room = room.0, error = %e, "resync read failed");
                return;
            }
        };
        if page.len() < RESYNC_THROUGH_HUB as usize {
            for message in &page {
                hub.deliver_message(EncodedEvent::message(message));
            }
        } else {
            tracing::info!(
                room = room.0,
                after = after.0,
                "long backlog after a broker outage; sessions catch up from the store"
            );
            hub.catch_up_room(room);
        }
    }
}

impl Node {
    /// After a broker outage: per-user events of that time are lost, so each local user's
    /// rooms, read markers and tokens are read back from the store, and what changed is
    /// applied to their connections here as the lost events would have been.
    pub(crate) async fn resync_users(self: Arc<Self>) {
        let mut by_user: HashMap<UserId, Vec<Arc<SessionHandle>>> = HashMap::new();
        for session in self.hub.all_sessions() {
            by_user.entry(session.user.id).or_default().push(session);
        }
        for (user, sessions) in by_user {
            if let Err(e) = self.resync_user(user, &sessions).await {
                tracing::warn!(user = user.0, error = %e, "resync after broker outage failed");
            }
        }
    }

    pub(crate) async fn resync_user(
        &self,
        user: UserId,
        sessions: &[Arc<SessionHandle>],
    ) -> Result<(), ChatError> {
        for session in sessions {
            if self
                .store
                .session_user(&session.token_hash)
                .await?
                .is_none()
            {
                session.close(close::REVOKED);
            }
        }
        let rooms = self.my_rooms(user).await?;
        let now: HashSet<RoomId> = rooms.iter().map(|r| r.id).collect();
        let mut before: Vec<RoomId> = sessions.iter().flat_map(|s| s.rooms()).collect();
        before.sort_unstable();
        before.dedup();
        for room in before.into_iter().filter(|r| !now.contains(r)) {
            self.on_event(BusEvent::RoomRemoved { user, room });
        }
        for room in rooms {
            if sessions.iter().any(|s| !s.is_member(room.id)) {
                self.on_event(BusEvent::RoomAdded { user, room });
            }
        }
        for (room, read_seq) in self.store.read_markers(user).await? {
            self.on_event(BusEvent::RoomRead {
                user,
                room,
                read_seq,
                unread: None,
                mentions: None,
            });
        }
        Ok(())
    }
}

impl BusHandler for Node {
    fn on_lag(&self, lag: std::time::Duration) {
        self.metrics.broker_lag.observe(lag);
    }

    fn on_reconnected(&self) {
        self.sessions.rules.forget_all();
        let (Ok(runtime), Some(node)) = (tokio::runtime::Handle::try_current(), self.me.upgrade())
        else {
            return;
        };
        runtime.spawn(node.resync_users());
    }

    fn on_missed(&self, rooms: Vec<RoomId>) {
        for room in &rooms {
            self.sessions.rules.forget(*room);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut redeliver = Vec::new();
        for room in rooms {
            match self.hub.room_state(room) {
                // Nothing fanned out here yet: each session catches up from its own watermark.
                (None, sessions) => {
                    for session in sessions {
                        session.push(Outbound::CatchUp(room));
                    }
                }
                (Some(delivered), _) => redeliver.push((room, delivered)),
            }
        }
        if redeliver.is_empty() {
            return;
        }
        // One room after another: after a Redis outage every room asks at once, and the
        // store's pool should not be flooded.
        let (hub, store) = (self.hub.clone(), self.store.clone());
        runtime.spawn(async move {
            for (room, delivered) in redeliver {
                Self::redeliver_from_store(hub.clone(), store.clone(), room, delivered).await;
            }
        });
    }

    fn on_event(&self, event: BusEvent) {
        match event {
            BusEvent::Message { message } => {
                if message.change.as_ref().is_some_and(Change::is_room_event) {
                    self.sessions.rules.forget(message.room);
                }
                self.hub.deliver_message(EncodedEvent::message(&message));
            }
            BusEvent::MemberJoined {
                room,
                user,
                member_count,
            } => {
                let event = Event::MemberJoined(MemberEvent {
                    room,
                    user,
                    member_count,
                })
                .encode();
                self.hub.to_room(room, &event, None);
            }
            BusEvent::MemberLeft {
                room,
                user,
                member_count,
            } => {
                let event = Event::MemberLeft(MemberEvent {
                    room,
                    user,
                    member_count,
                })
                .encode();
                self.hub.to_room(room, &event, None);
            }
            BusEvent::Typing { room, user, active } => {
                let except = Some(user.id);
                let event = Event::Typing(TypingEvent { room, user, active }).encode();
                self.hub.to_room(room, &event, except);
            }
            BusEvent::Presence { user, online } => {
                let event = Event::Presence(PresenceEvent { user, online }).encode();
                self.sessions.presence.push(event);
                self.hub.presence_changed();
            }
            BusEvent::RoomAdded { user, room } => {
                let sessions = self.hub.sessions_of(user);
                if sessions.is_empty() {
                    return;
                }
                let event = Event::RoomAdded(RoomAddedEvent { room: room.clone() }).encode();
                for session in sessions {
                    let new = !session.is_member(room.id);
                    if new {
                        session.push(Outbound::Track(room.id, room.last_seq));
                        if self.hub.join_room(&session, room.id) {
                            self.sessions.rules.forget(room.id);
                            self.broker.subscribe(Topic::Room(room.id));
                        }
                    }
                    session.deliver(event.clone());
                }
            }
            BusEvent::RoomRead {
                user,
                room,
                read_seq,
                unread,
                mentions,
            } => {
                if self.hub.has_user(user) {
                    let event = Event::RoomRead(ReadMarker {
                        room,
                        read_seq,
                        unread,
                        mentions,
                    })
                    .encode();
                    self.hub.to_user(user, &event);
                }
            }
            BusEvent::RoomNotify { user, room, notify } => {
                if self.hub.has_user(user) {
                    let event = Event::RoomNotify(NotifyReply { room, notify }).encode();
                    self.hub.to_user(user, &event);
                }
            }
            BusEvent::RoomRemoved { user, room } => {
                let event = Event::RoomRemoved(RoomRemovedEvent { room }).encode();
                for session in self.hub.sessions_of(user) {
                    if self.hub.leave_room(&session, room) {
                        self.broker.unsubscribe(Topic::Room(room));
                    }
                    session.deliver(event.clone());
                }
            }
            BusEvent::RoomInvited { user, invite } => {
                if self.hub.has_user(user) {
                    let event = Event::RoomInvited(invite).encode();
                    self.hub.to_user(user, &event);
                }
            }
            BusEvent::UserDeactivated { user } => {
                for session in self.hub.sessions_of(user) {
                    session.close(close::DEACTIVATED);
                }
            }
            BusEvent::SessionRevoked { user, token_hash } => {
                for session in self.hub.sessions_of(user) {
                    if accounts::to_hex(&session.token_hash) == token_hash {
                        session.close(close::REVOKED);
                    }
                }
            }
        }
    }
}
