//! The `Broker` contract: carries chat events between nodes and keeps global presence, and
//! `LocalBroker`, the in-process default for a single node. The broker never sees a socket:
//! it hands events to the node's `BusHandler`, which gives them to its local hub. The rules
//! every backend keeps are `crate::conformance::broker`, one test per rule per backend.

use crate::error::BrokerError;
use crate::model::{Invite, Message, RoomId, RoomView, Seq, User, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, Weak};

/// Where an event goes: the members of a room, one user's connections, or everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Room(RoomId),
    User(UserId),
    Presence,
}

/// An event between nodes. Serializable so a networked broker can carry it as is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusEvent {
    Message {
        message: Message,
    },
    MemberJoined {
        room: RoomId,
        user: User,
        member_count: u32,
    },
    MemberLeft {
        room: RoomId,
        user: User,
        member_count: u32,
    },
    Typing {
        room: RoomId,
        user: User,
        active: bool,
    },
    Presence {
        user: User,
        online: bool,
    },
    /// `user` became a member of `room` (seen from `user`'s side).
    RoomAdded {
        user: UserId,
        room: RoomView,
    },
    /// `user` has read `room` up to `read_seq` (on one of their devices).
    RoomRead {
        user: UserId,
        room: RoomId,
        read_seq: Seq,
        /// Unread and mention counts after the marker when it was stored.
        #[serde(default)]
        unread: Option<u32>,
        #[serde(default)]
        mentions: Option<u32>,
    },
    /// `user` set their notification level in `room`.
    RoomNotify {
        user: UserId,
        room: RoomId,
        notify: crate::model::NotifyLevel,
    },
    /// `user` stopped being a member of `room`.
    RoomRemoved {
        user: UserId,
        room: RoomId,
    },
    /// The session token with this SHA-256 (hex) was revoked; close its connections.
    SessionRevoked {
        user: UserId,
        token_hash: String,
    },
    /// `user` was invited to a private room.
    RoomInvited {
        user: UserId,
        invite: Invite,
    },
    /// An admin deactivated `user`: close every connection of theirs (code 4010).
    UserDeactivated {
        user: UserId,
    },
}

impl BusEvent {
    pub fn topic(&self) -> Topic {
        match self {
            BusEvent::Message { message } => Topic::Room(message.room),
            BusEvent::MemberJoined { room, .. }
            | BusEvent::MemberLeft { room, .. }
            | BusEvent::Typing { room, .. } => Topic::Room(*room),
            BusEvent::Presence { .. } => Topic::Presence,
            BusEvent::RoomAdded { user, .. }
            | BusEvent::RoomRead { user, .. }
            | BusEvent::RoomNotify { user, .. }
            | BusEvent::RoomRemoved { user, .. }
            | BusEvent::SessionRevoked { user, .. }
            | BusEvent::RoomInvited { user, .. }
            | BusEvent::UserDeactivated { user } => Topic::User(*user),
        }
    }
}

/// The receiving side of a broker: the node. Must not block.
pub trait BusHandler: Send + Sync {
    fn on_event(&self, event: BusEvent);
    /// The broker may have missed message events of these rooms (it just subscribed to them,
    /// it reconnected after an outage, or another node left, perhaps between storing and
    /// publishing a message): the node catches its sessions up from the store.
    /// Must not block. Default: nothing (a broker that never misses events never calls it).
    fn on_missed(&self, rooms: Vec<RoomId>) {
        let _ = rooms;
    }
    /// The broker was cut off and is connected again: every event published meanwhile is
    /// lost, per-user ones too (rooms added or removed on another node, read markers, revoked
    /// tokens). The node re-reads its users' state from the store. Must not block. Default:
    /// nothing (a broker that is never cut off never calls it).
    fn on_reconnected(&self) {}
    /// An event took `lag` from its publication (on any node) to its arrival here, as far as
    /// the broker can tell (node clocks may differ a little). Must not block. Default:
    /// nothing (the in-process broker has no transit to report).
    fn on_lag(&self, lag: std::time::Duration) {
        let _ = lag;
    }
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Where received events go. Set once, by the node that owns this broker.
    fn set_handler(&self, handler: Weak<dyn BusHandler>);
    /// Sends an event to every node subscribed to its topic (this one included).
    async fn publish(&self, event: BusEvent) -> Result<(), BrokerError>;
    /// Start receiving a topic's events. Non-blocking; calls are applied in order. An event
    /// this node publishes after `subscribe` returns comes back to it (a backend whose
    /// subscriptions take effect later makes such a publish wait for it, within its timeout):
    /// a room created here and joined at once must show the join to its creator.
    fn subscribe(&self, topic: Topic);
    /// Stop receiving a topic's events.
    fn unsubscribe(&self, topic: Topic);
    /// This node now has a connection of `user`; true if the user was offline everywhere.
    async fn presence_up(&self, user: &User) -> Result<bool, BrokerError>;
    /// This node has no connection of `user` left; true if the user is now offline everywhere.
    async fn presence_down(&self, user: &User) -> Result<bool, BrokerError>;
    /// Everyone online on any node.
    async fn online_users(&self) -> Result<Vec<User>, BrokerError>;
    /// Stops background work and withdraws this node's presence (its users go offline
    /// unless connected elsewhere). Called once, when the server stops. Default: nothing.
    async fn shutdown(&self) {}
}

/// The in-process broker: one node, events handed straight back to it.
#[derive(Default)]
pub struct LocalBroker {
    handler: OnceLock<Weak<dyn BusHandler>>,
    online: Mutex<HashMap<UserId, User>>,
}

impl LocalBroker {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Broker for LocalBroker {
    fn set_handler(&self, handler: Weak<dyn BusHandler>) {
        let _ = self.handler.set(handler);
    }

    async fn publish(&self, event: BusEvent) -> Result<(), BrokerError> {
        if let Some(handler) = self.handler.get().and_then(Weak::upgrade) {
            handler.on_event(event);
        }
        Ok(())
    }

    fn subscribe(&self, _topic: Topic) {}

    fn unsubscribe(&self, _topic: Topic) {}

    async fn presence_up(&self, user: &User) -> Result<bool, BrokerError> {
        let mut online = self
            .online
            .lock()
            .map_err(|_| BrokerError::Backend("poisoned".into()))?;
        Ok(online.insert(user.id, user.clone()).is_none())
    }

    async fn presence_down(&self, user: &User) -> Result<bool, BrokerError> {
        let mut online = self
            .online
            .lock()
            .map_err(|_| BrokerError::Backend("poisoned".into()))?;
        Ok(online.remove(&user.id).is_some())
    }

    async fn online_users(&self) -> Result<Vec<User>, BrokerError> {
        let online = self
            .online
            .lock()
            .map_err(|_| BrokerError::Backend("poisoned".into()))?;
        let mut users: Vec<User> = online.values().cloned().collect();
        users.sort_by_key(|u| u.name.to_lowercase());
        Ok(users)
    }
}
