//! Relay mode (ADR 0026): tutorial-style chat clients that know nothing of Natter's protocol
//! (a Socket.IO `socket.emit("chat message", text)`, a plain WebSocket's text frames) as
//! ordinary guests whose events are ordinary messages. This module owns the mapping both
//! ways and the connection steps; transports only move the frames.
//!
//! - A relay connection is a [`Connection`] signed in as a new guest ([`Connection::relay_guest`],
//!   nickname `guest-XXXX`, no presence) and joined to public rooms by name
//!   ([`Connection::relay_join`]); authorization, rate limits, durability and order are the
//!   core's, as for any other connection.
//! - An event becomes a `message.send` ([`send_request`]): a string payload is the body as it
//!   is, any other JSON payload its JSON text; the event name and which of the two it was ride
//!   in the message's `client_id` (`relay:t:<16 hex>:<event>` or `relay:j:...`), so nothing
//!   changes in the stored schema and a native client sees a normal message.
//! - A stored message becomes an event again ([`relayed`]): under its relay event name, or
//!   [`DEFAULT_EVENT`] (`chat message`) with its text for a message that did not come through
//!   relay mode.

use crate::connection::Connection;
use crate::error::{ChatError, ErrorCode};
use crate::model::{Message, RoomId, Seq, UserId};
use crate::protocol::{
    AuthArgs, EncodedEvent, Reply, Request, RoomArg, RoomCreateArgs, SendArgs, MAX_CLIENT_ID_CHARS,
};
use crate::session::Outbox;
use serde_json::Value;

/// The event a message that did not come through relay mode arrives as (the Socket.IO
/// tutorial's own event name).
pub const DEFAULT_EVENT: &str = "chat message";
/// The longest relay event name, in characters (it is kept in the 64-character `client_id`).
pub const MAX_EVENT_CHARS: usize = 32;
/// Event names a relay client may not use: Socket.IO's reserved ones, and the names Natter's
/// Socket.IO adapter itself emits or handles (`join`, `error`, `close`, `auth`).
pub const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
    "join",
    "error",
    "close",
    "auth",
];

/// The `client_id` prefix of a relayed message.
const MARK: &str = "relay:";
/// Hex digits of the random part of a relayed message's `client_id`.
const NONCE_DIGITS: usize = 16;
/// Tries at a free four-digit guest name before a longer one is taken.
const SHORT_NAME_TRIES: usize = 4;

/// A stored message as a relay client receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Relayed {
    pub room: RoomId,
    pub seq: Seq,
    /// The sender's name.
    pub sender: String,
    /// The event name to emit it under.
    pub event: String,
    /// The event's argument: the text, or the JSON an event carried.
    pub payload: Value,
    /// The message text as stored (a plain WebSocket relay shows this).
    pub body: String,
    /// What the copies of one relay event in several rooms share (sender and `client_id`);
    /// None for a message that did not come through relay mode.
    pub copy_key: Option<(UserId, String)>,
}

/// Checks a relay event name: 1 to [`MAX_EVENT_CHARS`] characters, no control characters,
/// not one of [`RESERVED_EVENTS`].
pub fn check_event(name: &str) -> Result<(), ChatError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_EVENT_CHARS || name.chars().any(char::is_control) {
        return Err(ChatError::invalid(format!(
            "a relay event name is 1 to {MAX_EVENT_CHARS} characters, no control characters"
        )));
    }
    if RESERVED_EVENTS.contains(&name) {
        return Err(ChatError::invalid(format!(
            "`{name}` is a reserved event name"
        )));
    }
    Ok(())
}

/// One relay event, ready to be stored in any number of rooms: the same body and `client_id`
/// in each (so a client in several of them can tell the copies apart from new events).
#[derive(Debug, Clone)]
pub struct RelaySend {
    body: String,
    client_id: String,
}

impl RelaySend {
    /// A relay event `name` with `payload`. A string payload is the body as it is; any other
    /// (number, object, array, boolean, null) its JSON text.
    pub fn new(event: &str, payload: &Value) -> Result<RelaySend, ChatError> {
        check_event(event)?;
        let (form, body) = match payload {
            Value::String(text) => ('t', text.clone()),
            other => ('j', other.to_string()),
        };
        let nonce: u64 = rand::random();
        let client_id = format!(
            "{MARK}{form}:{nonce:0width$x}:{event}",
            width = NONCE_DIGITS
        );
        debug_assert!(client_id.chars().count() <= MAX_CLIENT_ID_CHARS);
        Ok(RelaySend { body, client_id })
    }

    /// Its `message.send` in `room`.
    pub fn request(&self, room: RoomId) -> Request {
        Request::MessageSend(SendArgs {
            room,
            body: self.body.clone(),
            client_id: self.client_id.clone(),
            ..SendArgs::default()
        })
    }
}

/// The `message.send` for one relay event in one room (see [`RelaySend::new`]).
pub fn send_request(room: RoomId, event: &str, payload: &Value) -> Result<Request, ChatError> {
    Ok(RelaySend::new(event, payload)?.request(room))
}

/// The event name and payload a stored message is relayed as.
pub fn event_of(message: &Message) -> (String, Value) {
    let plain = || {
        (
            DEFAULT_EVENT.to_string(),
            Value::String(message.body.clone()),
        )
    };
    let Some(rest) = message.client_id.strip_prefix(MARK) else {
        return plain();
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(form), Some(nonce), Some(event)) = (parts.next(), parts.next(), parts.next()) else {
        return plain();
    };
    if nonce.len() != NONCE_DIGITS || check_event(event).is_err() {
        return plain();
    }
    let payload = match form {
        "t" => Value::String(message.body.clone()),
        "j" => match serde_json::from_str(&message.body) {
            Ok(value) => value,
            Err(_) => Value::String(message.body.clone()),
        },
        _ => return plain(),
    };
    (event.to_string(), payload)
}

/// A core event as relay clients get it: a new message in a room's timeline. Everything else
/// (changes, thread-only replies, presence, typing, membership) is not relayed.
pub fn relayed(event: &EncodedEvent) -> Option<Relayed> {
    if event.name != "message" {
        return None;
    }
    let (room, seq) = event.room_seq?;
    let message: Message = serde_json::from_slice(&event.data).ok()?;
    if !message.in_timeline() || message.deleted {
        return None;
    }
    let (name, payload) = event_of(&message);
    let copy_key = message
        .client_id
        .starts_with(MARK)
        .then(|| (message.sender.id, message.client_id.clone()));
    Some(Relayed {
        room,
        seq,
        sender: message.sender.name,
        event: name,
        payload,
        body: message.body,
        copy_key,
    })
}

impl Connection {
    /// Relay mode: signs this connection in as a new guest (`guest-` and four hex digits,
    /// eight when those are taken), without presence, and joins it to the public room
    /// `room` (made if absent; the server's own, like `general`). `label` names the device.
    /// Returns the session's outbox and the room. Refused (`guests_disabled`) when guests
    /// are not allowed.
    pub async fn relay_guest(
        &mut self,
        room: &str,
        label: &str,
    ) -> Result<(Outbox, RoomId), ChatError> {
        let node = self.node().clone();
        let mut tries = 0;
        let signed = loop {
            let nickname = if tries < SHORT_NAME_TRIES {
                format!("guest-{:04x}", rand::random::<u16>())
            } else {
                format!("guest-{:08x}", rand::random::<u32>())
            };
            tries += 1;
            match node.register_guest(&nickname, label).await {
                Ok(signed) => break signed,
                Err(e) if e.code == ErrorCode::NameTaken && tries <= SHORT_NAME_TRIES => {}
                Err(e) => return Err(e),
            }
        };
        let args = AuthArgs {
            token: signed.token,
            resume: Default::default(),
            presence: false,
        };
        let (_welcome, outbox) = self.authenticate(args).await?;
        let id = node.store().ensure_public_room(room).await?.id;
        self.request(Request::RoomJoin(RoomArg { room: id }))
            .await?;
        Ok((outbox, id))
    }

    /// Relay mode: joins the public room named `name`, creating it (owned by this guest, as
    /// `room.create` would) if there is none. Both are requests of this connection, so its
    /// rate limit, bans and the room-creation limits apply.
    pub async fn relay_join(&mut self, name: &str) -> Result<RoomId, ChatError> {
        for _ in 0..2 {
            if let Some(room) = self.node().public_room_named(name).await? {
                let reply = self.request(Request::RoomJoin(RoomArg { room })).await?;
                return Ok(room_of(&reply).unwrap_or(room));
            }
            let create = Request::RoomCreate(RoomCreateArgs {
                name: name.to_string(),
                private: false,
            });
            match self.request(create).await {
                Ok(reply) => {
                    if let Some(room) = room_of(&reply) {
                        return Ok(room);
                    }
                }
                // Made meanwhile by someone else: join it.
                Err(e) if e.code == ErrorCode::NameTaken => {}
                Err(e) => return Err(e),
            }
        }
        Err(ChatError::new(
            ErrorCode::NotFound,
            format!("no public room `{name}`"),
        ))
    }
}

fn room_of(reply: &Reply) -> Option<RoomId> {
    match reply {
        Reply::Room(r) => Some(r.room.id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::User;
    use serde_json::json;

    fn stored(request: Request) -> Message {
        let Request::MessageSend(args) = request else {
            panic!("not a send");
        };
        Message {
            room: args.room,
            seq: Seq(3),
            sender: User {
                id: UserId(1),
                name: "guest-00aa".into(),
                bot: false,
                guest: true,
            },
            body: args.body,
            client_id: args.client_id,
            ..Message::default()
        }
    }

    #[test]
    fn events_round_trip_through_stored_messages() {
        for (event, payload, body) in [
            ("chat message", json!("hello"), "hello"),
            ("chat message", json!("42"), "42"),
            ("score", json!(42), "42"),
            ("move", json!({"x": 1, "y": [2, 3]}), r#"{"x":1,"y":[2,3]}"#),
            ("list", json!([1, "a"]), r#"[1,"a"]"#),
            ("a:b:c", json!(null), "null"),
        ] {
            let request = send_request(RoomId(7), event, &payload).expect("sends");
            let message = stored(request);
            assert_eq!(message.body, body, "{event}");
            assert!(message.client_id.chars().count() <= MAX_CLIENT_ID_CHARS);
            assert_eq!(event_of(&message), (event.to_string(), payload), "{event}");
            let encoded = EncodedEvent::message(&message);
            let relayed = relayed(&encoded).expect("relayed");
            assert_eq!(relayed.room, RoomId(7));
            assert_eq!(relayed.sender, "guest-00aa");
            assert_eq!(relayed.event, event);
        }
    }

    #[test]
    fn a_native_message_is_a_chat_message() {
        let message = Message {
            body: "hi".into(),
            client_id: "c-1".into(),
            ..Message::default()
        };
        assert_eq!(event_of(&message), ("chat message".into(), json!("hi")));
        // A client_id that only looks like a relay one.
        for client_id in [
            "relay:",
            "relay:x:0123456789abcdef:e",
            "relay:t:12:e",
            "relay:t:0123456789abcdef:connect",
        ] {
            let message = Message {
                body: "hi".into(),
                client_id: client_id.into(),
                ..Message::default()
            };
            assert_eq!(event_of(&message).0, "chat message", "{client_id}");
        }
    }

    #[test]
    fn bad_event_names_are_refused() {
        for name in ["", "connect", "disconnect", "join", "x\n", &"e".repeat(33)] {
            let e = send_request(RoomId(1), name, &json!("hi")).expect_err(name);
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{name:?}");
        }
        assert!(send_request(RoomId(1), &"e".repeat(32), &json!("hi")).is_ok());
    }
}
