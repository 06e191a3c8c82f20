//! The wire protocols the load generator speaks, behind one small interface: encode a
//! [`Request`] for a [`TargetKind`], and parse any frame into an [`Incoming`].
//!
//! - `native`: Natter's JSON frames on `/ws` (docs/protocol.md).
//! - `socketio`: the Engine.IO v4 / Socket.IO v4 packet codec (no library).
//! - `natter_sio`: how Natter's requests and events map onto Socket.IO events.
//! - `peers`: the events of the two Node.js peers (Socket.IO `join`/`chat`, plain-ws JSON).
//! - `scan`: the fast path for Natter's `message` events (a validating scanner, serde's
//!   answers).

pub mod native;
pub mod natter_sio;
pub mod peers;
mod scan;
pub mod socketio;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::target::{RoomRef, TargetKind, WireRoom};

/// Something the load generator asks of a server.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// Sign the connection in (Natter native only; Socket.IO uses the handshake).
    Auth {
        token: &'a str,
    },
    /// Create a room by name (Natter only); the reply carries its id.
    CreateRoom {
        name: &'a str,
    },
    Join {
        room: &'a RoomRef,
    },
    /// Publish `body`; Natter targets also get `client_id` and answer with a reply.
    Send {
        room: &'a RoomRef,
        body: &'a str,
        client_id: &'a str,
    },
    /// Natter only: `message.edit` of message `seq` (one of the sender's own).
    Edit {
        room: &'a RoomRef,
        seq: u64,
        body: &'a str,
        client_id: &'a str,
    },
    /// Natter only: `reaction.add` (`add`) or `reaction.remove` on message `seq`.
    React {
        room: &'a RoomRef,
        seq: u64,
        emoji: &'a str,
        add: bool,
        client_id: &'a str,
    },
}

/// A room as a frame names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedRoom<'a> {
    Id(i64),
    Name(Cow<'a, str>),
}

impl ParsedRoom<'_> {
    pub fn matches(&self, wire: &WireRoom) -> bool {
        match (self, wire) {
            (ParsedRoom::Id(a), WireRoom::Id(b)) => a == b,
            (ParsedRoom::Name(a), WireRoom::Name(b)) => a == b,
            _ => false,
        }
    }
}

/// The error a server gave for a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorInfo {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// What a successful reply carried that the bench uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyData<'a> {
    /// The room of `room.create`/`room.join` replies (`data.room.id`).
    pub room_id: Option<i64>,
    /// The body of the message a `message.send` reply echoes (`data.message.body`).
    pub message_body: Option<Cow<'a, str>>,
    /// The seq of the message a `message.send` reply echoes (`data.message.seq`).
    pub message_seq: Option<u64>,
}

/// One frame from the server, as far as the bench cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A chat message delivered to this connection.
    Delivery {
        room: Option<ParsedRoom<'a>>,
        /// Natter's per-room sequence number; the peers have none.
        seq: Option<u64>,
        body: Option<Cow<'a, str>>,
    },
    /// A change entry of a room's stream delivered to this connection (Natter's
    /// `message_edited`, `reaction`, `message_deleted`): it has its own `seq`. The bench's
    /// stamp is in the body (edits) or the `client_id` (every change the bench makes).
    Change {
        room: Option<ParsedRoom<'a>>,
        seq: Option<u64>,
        body: Option<Cow<'a, str>>,
        client_id: Option<Cow<'a, str>>,
    },
    /// The reply to request `reference`.
    Reply {
        reference: u64,
        outcome: Result<ReplyData<'a>, ErrorInfo>,
    },
    /// Engine.IO open packet (`0{...}`).
    EngineOpen,
    /// Engine.IO ping (`2`): answer with a pong (`3`) or be dropped.
    EnginePing,
    /// Socket.IO namespace connected (`40{...}`).
    SioConnected,
    /// Socket.IO connection refused (`44{...}`).
    SioConnectError(String),
    /// A reply or event the bench does not need (presence, member_joined, ...).
    Other,
    /// A frame that did not parse.
    Malformed(String),
}

/// Encodes `request` with reference `reference` for `kind`; `None` when the target has no
/// such request (auth on Socket.IO, room creation on the peers).
pub fn encode(kind: TargetKind, request: Request<'_>, reference: u64) -> Option<String> {
    match kind {
        TargetKind::Natter | TargetKind::Floor => native::encode(request, reference),
        TargetKind::NatterSio => natter_sio::encode(request, reference),
        TargetKind::SioPeer => peers::encode_sio(request, reference),
        TargetKind::WsPeer => peers::encode_ws(request, reference),
    }
}

/// Parses one text frame from a `kind` server.
pub fn parse(kind: TargetKind, frame: &str) -> Incoming<'_> {
    match kind {
        TargetKind::Natter | TargetKind::Floor => native::parse(frame),
        TargetKind::NatterSio => natter_sio::parse(frame),
        TargetKind::SioPeer => peers::parse_sio(frame),
        TargetKind::WsPeer => peers::parse_ws(frame),
    }
}

/// Whether a `Send` to `kind` is answered by a reply.
pub fn sends_are_acked(kind: TargetKind) -> bool {
    kind.is_natter()
}

/// JSON string literal for `s` (quotes and escapes included).
pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// JSON for a room handle: an id number or a name string.
pub fn json_room(room: &RoomRef) -> String {
    match &room.wire {
        WireRoom::Id(id) => id.to_string(),
        WireRoom::Name(name) => json_str(name),
    }
}

/// A `room` field that is an id, a name, or a Room object (`{"id": ..}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomField<'a>(pub ParsedRoom<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for RoomField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RoomVisitor;
        impl<'de> Visitor<'de> for RoomVisitor {
            type Value = RoomField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a room id, name or object")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RoomField(ParsedRoom::Id(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(|v| RoomField(ParsedRoom::Id(v)))
                    .map_err(E::custom)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RoomField(ParsedRoom::Name(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RoomField(ParsedRoom::Name(Cow::Owned(v.to_string()))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut id = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "id" {
                        id = Some(map.next_value::<i64>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                id.map(|id| RoomField(ParsedRoom::Id(id)))
                    .ok_or_else(|| de::Error::missing_field("id"))
            }
        }
        deserializer.deserialize_any(RoomVisitor)
    }
}

/// The parts of a Natter `data` object (message event, or a reply) the bench reads.
#[derive(Debug, Default, Deserialize)]
pub struct NatterData<'a> {
    #[serde(default, borrow)]
    pub room: Option<RoomField<'a>>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default, borrow)]
    pub body: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub client_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub message: Option<NatterMessage<'a>>,
}

/// `data.message` of a `message.send` reply.
#[derive(Debug, Default, Deserialize)]
pub struct NatterMessage<'a> {
    #[serde(default, borrow)]
    pub body: Option<Cow<'a, str>>,
    #[serde(default)]
    pub seq: Option<u64>,
}

impl<'a> NatterData<'a> {
    /// As a delivery (a `message` event's data).
    pub fn into_delivery(self) -> Incoming<'a> {
        Incoming::Delivery {
            room: self.room.map(|r| r.0),
            seq: self.seq,
            body: self.body,
        }
    }

    /// As a change entry (the data of `message_edited`, `reaction`, `message_deleted`).
    pub fn into_change(self) -> Incoming<'a> {
        Incoming::Change {
            room: self.room.map(|r| r.0),
            seq: self.seq,
            body: self.body,
            client_id: self.client_id,
        }
    }

    /// As a successful reply's data.
    pub fn into_reply(self) -> ReplyData<'a> {
        ReplyData {
            room_id: match self.room {
                Some(RoomField(ParsedRoom::Id(id))) => Some(id),
                _ => None,
            },
            message_seq: self.message.as_ref().and_then(|m| m.seq),
            message_body: self.message.and_then(|m| m.body),
        }
    }
}
