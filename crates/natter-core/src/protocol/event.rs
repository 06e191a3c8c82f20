//! Server events (docs/protocol.md section 5): their payloads, the `Event` enum that names
//! them, and `EncodedEvent`, an event serialized once and shared by every recipient.

use super::reply::{NotifyReply, ReadMarker};
use crate::model::{Invite, Message, RoomId, RoomView, Seq, User};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;

/// Every server event. Serialized, an `Event` is its native frame `{"type", "data"}`.
#[derive(Debug, Clone)]
pub enum Event {
    /// Every stream entry: `message`, `message_edited`, `message_deleted`, `reaction`
    /// (named by `Message::event_name`).
    Message(Message),
    MemberJoined(MemberEvent),
    MemberLeft(MemberEvent),
    Typing(TypingEvent),
    Presence(PresenceEvent),
    PresenceReset(PresenceResetEvent),
    RoomAdded(RoomAddedEvent),
    RoomRemoved(RoomRemovedEvent),
    RoomRead(ReadMarker),
    RoomNotify(NotifyReply),
    /// An invitation to a private room, to the invitee's connections.
    RoomInvited(Invite),
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("type", self.name())?;
        match self {
            Event::Message(d) => map.serialize_entry("data", d)?,
            Event::MemberJoined(d) | Event::MemberLeft(d) => map.serialize_entry("data", d)?,
            Event::Typing(d) => map.serialize_entry("data", d)?,
            Event::Presence(d) => map.serialize_entry("data", d)?,
            Event::PresenceReset(d) => map.serialize_entry("data", d)?,
            Event::RoomAdded(d) => map.serialize_entry("data", d)?,
            Event::RoomRemoved(d) => map.serialize_entry("data", d)?,
            Event::RoomRead(d) => map.serialize_entry("data", d)?,
            Event::RoomNotify(d) => map.serialize_entry("data", d)?,
            Event::RoomInvited(d) => map.serialize_entry("data", d)?,
        }
        map.end()
    }
}

impl Event {
    pub const MESSAGE: &'static str = "message";

    /// The event's `type` (the Socket.IO event name too).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Message(m) => m.event_name(),
            Event::MemberJoined(_) => "member_joined",
            Event::MemberLeft(_) => "member_left",
            Event::Typing(_) => "typing",
            Event::Presence(_) => "presence",
            Event::PresenceReset(_) => "presence_reset",
            Event::RoomAdded(_) => "room_added",
            Event::RoomRemoved(_) => "room_removed",
            Event::RoomRead(_) => "room_read",
            Event::RoomNotify(_) => "room_notify",
            Event::RoomInvited(_) => "room_invited",
        }
    }

    /// Serializes the event once, for every recipient.
    pub fn encode(&self) -> Arc<EncodedEvent> {
        let name = self.name();
        match self {
            Event::Message(m) => EncodedEvent::message(m),
            Event::MemberJoined(d) | Event::MemberLeft(d) => EncodedEvent::new(name, d),
            Event::Typing(d) => EncodedEvent::new(name, d),
            Event::Presence(d) => EncodedEvent::new(name, d),
            Event::PresenceReset(d) => EncodedEvent::new(name, d),
            Event::RoomAdded(d) => EncodedEvent::new(name, d),
            Event::RoomRemoved(d) => EncodedEvent::new(name, d),
            Event::RoomRead(d) => EncodedEvent::new(name, d),
            Event::RoomNotify(d) => EncodedEvent::new(name, d),
            Event::RoomInvited(d) => EncodedEvent::new(name, d),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberEvent {
    pub room: RoomId,
    pub user: User,
    pub member_count: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypingEvent {
    pub room: RoomId,
    pub user: User,
    pub active: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PresenceEvent {
    pub user: User,
    pub online: bool,
}

/// Everyone online, for a connection that fell behind the presence feed.
#[derive(Debug, Clone, Serialize)]
pub struct PresenceResetEvent {
    pub online: Vec<User>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomAddedEvent {
    pub room: RoomView,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomRemovedEvent {
    pub room: RoomId,
}

/// An event serialized once and shared by every recipient (habit 8: encode once).
#[derive(Debug)]
pub struct EncodedEvent {
    /// The event name (`message`, `presence`, ...).
    pub name: &'static str,
    /// For a `message`: its room and seq, so each connection can keep order.
    pub room_seq: Option<(RoomId, Seq)>,
    /// The JSON of `data` alone (what Socket.IO sends as the event argument).
    pub data: Bytes,
    /// The whole native frame `{"type":name,"data":..}`.
    pub frame: Bytes,
    /// Another transport's frame of this event (Socket.IO's packet), made by the first of
    /// its connections that sends it and shared by the rest: a broadcast is encoded once
    /// per transport, not once per recipient.
    pub alt_frame: std::sync::OnceLock<Bytes>,
}

impl EncodedEvent {
    /// Encodes `data` under `name`: for tests that need arbitrary payloads. The server's own
    /// events are built as [`Event`]s (`Event::encode`), so their names and fields are the
    /// contract's.
    pub fn new<T: Serialize>(name: &'static str, data: &T) -> Arc<EncodedEvent> {
        let data = serde_json::to_vec(data).unwrap_or_else(|_| b"null".to_vec());
        let mut frame = Vec::with_capacity(data.len() + name.len() + 20);
        frame.extend_from_slice(b"{\"type\":\"");
        frame.extend_from_slice(name.as_bytes());
        frame.extend_from_slice(b"\",\"data\":");
        frame.extend_from_slice(&data);
        frame.push(b'}');
        Arc::new(EncodedEvent {
            name,
            room_seq: None,
            data: Bytes::from(data),
            frame: Bytes::from(frame),
            alt_frame: std::sync::OnceLock::new(),
        })
    }

    /// A stream entry's event: `message` (the hot path: no `Event` to build first), or
    /// `message_edited`, `message_deleted`, `reaction` for a change.
    pub fn message(message: &Message) -> Arc<EncodedEvent> {
        let mut event = EncodedEvent::new(message.event_name(), message);
        if let Some(e) = Arc::get_mut(&mut event) {
            e.room_seq = Some((message.room, message.seq));
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_event_is_its_serialized_event() {
        let event = Event::RoomRemoved(RoomRemovedEvent { room: RoomId(5) });
        let encoded = event.encode();
        assert_eq!(encoded.name, "room_removed");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&encoded.frame).ok(),
            serde_json::to_value(&event).ok()
        );
    }

    #[test]
    fn event_frame_wraps_data_once() {
        let e = EncodedEvent::new("presence", &serde_json::json!({"online": true}));
        assert_eq!(
            &e.frame[..],
            br#"{"type":"presence","data":{"online":true}}"#
        );
        assert_eq!(&e.data[..], br#"{"online":true}"#);
    }
}
