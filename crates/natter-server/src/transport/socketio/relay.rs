//! Relay mode on Socket.IO (ADR 0026; docs/socketio.md, "Relay mode"): a socket that connects
//! without a token is a new guest in the relay room, and speaks the tutorial's protocol
//! instead of Natter's requests:
//! - `join` with a room name joins that public room (made if absent: `room.create`'s rules);
//! - any other event `[name, payload]` is stored as a message in each of the socket's rooms
//!   (`natter_core::relay::send_request`);
//! - each message of those rooms comes back as the event it was sent as (a message from any
//!   other client as `chat message` with its text), the sender's own included, in each room's
//!   order, and an event stored in several of the socket's rooms once; nothing else
//!   (presence, typing, membership) is sent.
//!
//! An acknowledgement, when asked for, is `{"ok": true, "data": ...}` or `{"ok": false,
//! "error": ...}` as for requests; a refusal without one is an `error` event.

use super::requests::Incoming;
use super::writer::{error_event, failure, Writer};
use super::{Counted, Refusal};
use crate::AppState;
use natter_core::protocol::Reply;
use natter_core::relay::{relayed, RelaySend};
use natter_core::{ChatError, Connection, EncodedEvent, Outbox, RoomId, Seq, UserId};
use serde::Serialize;
use serde_json::Value as Json;
use socketioxide::extract::SocketRef;
use socketioxide::handler::Value as Payload;

/// Relay events a socket remembers having emitted, to emit an event stored in several of its
/// rooms once (its copies arrive close together: they are stored one after the other).
const RECENT_COPIES: usize = 64;

/// A relay socket's session state: the rooms it talks and listens in, and the relay events
/// it emitted last.
pub(super) struct RelayRooms {
    rooms: Vec<RoomId>,
    recent: std::collections::VecDeque<(UserId, String)>,
}

impl RelayRooms {
    fn new(room: RoomId) -> RelayRooms {
        RelayRooms {
            rooms: vec![room],
            recent: Default::default(),
        }
    }

    /// Whether to emit `message`: one of this socket's rooms, and no copy emitted before.
    fn first_copy(&mut self, message: &natter_core::relay::Relayed) -> bool {
        if !self.rooms.contains(&message.room) {
            return false;
        }
        let Some(key) = &message.copy_key else {
            return true;
        };
        if self.recent.contains(key) {
            return false;
        }
        if self.recent.len() == RECENT_COPIES {
            self.recent.pop_front();
        }
        self.recent.push_back(key.clone());
        true
    }
}

/// Signs a token-less socket in as a relay guest (counted against the guest limit of its
/// address). Returns its connection, outbox and the rooms it starts in.
pub(super) async fn sign_in(
    socket: &SocketRef,
    state: &AppState,
) -> Result<(Connection, Counted, Outbox, RelayRooms), Refusal> {
    let parts = socket.req_parts();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let addr = crate::http::client::client_ip(peer, &parts.headers, &state.config.trusted_proxies);
    state.limits.guest(addr).map_err(Refusal)?;
    let label = crate::http::api::device_label(&parts.headers);
    let counted = Counted::new(&state.metrics);
    let mut conn = Connection::new(state.node.clone());
    let (outbox, room) = conn
        .relay_guest(&state.config.relay_room, &label)
        .await
        .map_err(|e| {
            tracing::debug!(code = e.code.as_str(), "socket.io relay guest refused");
            Refusal(e)
        })?;
    Ok((conn, counted, outbox, RelayRooms::new(room)))
}

/// Where one relayed event was stored.
#[derive(Serialize)]
struct Stored {
    room: RoomId,
    seq: Seq,
}

/// A relay acknowledgement's `data`.
#[derive(Serialize)]
#[serde(untagged)]
enum RelayData {
    /// `join`: the room joined.
    Joined { room: RoomId },
    /// Any other event: where it was stored, one entry per room.
    Sent { messages: Vec<Stored> },
}

#[derive(Serialize)]
struct RelayAck {
    ok: bool,
    data: RelayData,
}

/// Reads a relay event `[name, payload]`. On failure, also returns the event name.
fn parse(payload: &Payload) -> Result<(String, Json), (String, ChatError)> {
    let (name, mut args) = super::requests::event_args(payload)?;
    if args.len() != 1 {
        let e = ChatError::invalid("a relay event carries one argument (any JSON)");
        return Err((name, e));
    }
    let data = args.pop().unwrap_or(Json::Null);
    Ok((name, data))
}

/// Handles one relay event: `join`, or a message for each of the socket's rooms. False if the
/// socket is gone.
pub(super) async fn answer(
    conn: &mut Connection,
    writer: &Writer,
    mut incoming: Incoming,
    rooms: &mut RelayRooms,
) -> bool {
    let (name, result) = match parse(&incoming.payload) {
        Ok((name, data)) => {
            let result = if name == "join" {
                join(conn, rooms, &data).await
            } else {
                send(conn, rooms, &name, &data).await
            };
            (name, result)
        }
        Err((name, e)) => (name, Err(e)),
    };
    match (incoming.ack_id, result) {
        (Some(_), Ok(data)) => {
            writer
                .ack(&mut incoming, &RelayAck { ok: true, data })
                .await
        }
        (Some(_), Err(e)) => writer.ack(&mut incoming, &failure(&e)).await,
        (None, Ok(_)) => true,
        (None, Err(e)) => writer.emit("error", &error_event(&name, &e)).await,
    }
}

async fn join(
    conn: &mut Connection,
    rooms: &mut RelayRooms,
    data: &Json,
) -> Result<RelayData, ChatError> {
    let Json::String(name) = data else {
        return Err(ChatError::invalid("`join` takes a room name (a string)"));
    };
    let room = conn.relay_join(name).await?;
    if !rooms.rooms.contains(&room) {
        rooms.rooms.push(room);
    }
    Ok(RelayData::Joined { room })
}

async fn send(
    conn: &mut Connection,
    rooms: &RelayRooms,
    name: &str,
    data: &Json,
) -> Result<RelayData, ChatError> {
    let event = RelaySend::new(name, data)?;
    let mut messages = Vec::with_capacity(rooms.rooms.len());
    for room in &rooms.rooms {
        if let Reply::Sent(sent) = conn.request(event.request(*room)).await? {
            messages.push(Stored {
                room: sent.message.room,
                seq: sent.message.seq,
            });
        }
    }
    Ok(RelayData::Sent { messages })
}

/// Writes a core event, and whatever else is ready behind it, as relay events: the messages
/// of the socket's rooms, each under its event name. False if the socket is gone.
pub(super) async fn events(
    writer: &Writer,
    first: &EncodedEvent,
    outbox: &mut Outbox,
    rooms: &mut RelayRooms,
) -> bool {
    if !event(writer, first, rooms).await {
        return false;
    }
    for _ in 0..super::EVENT_BATCH {
        let Some(next) = outbox.try_next() else {
            break;
        };
        if !event(writer, &next, rooms).await {
            return false;
        }
    }
    true
}

async fn event(writer: &Writer, event: &EncodedEvent, rooms: &mut RelayRooms) -> bool {
    match relayed(event) {
        Some(message) if rooms.first_copy(&message) => {
            writer.emit(&message.event, &message.payload).await
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::ErrorCode;

    fn payload(text: &str) -> Payload {
        Payload::Str(text.to_string().into(), None)
    }

    #[test]
    fn reads_relay_events() {
        let (name, data) = parse(&payload(r#"["chat message","hi"]"#)).expect("parses");
        assert_eq!((name.as_str(), data), ("chat message", Json::from("hi")));
        let (name, data) = parse(&payload(r#"["move",{"x":1}]"#)).expect("parses");
        assert_eq!(name, "move");
        assert_eq!(data["x"], 1);
        let (name, e) = parse(&payload(r#"["typing"]"#)).expect_err("no argument");
        assert_eq!(name, "typing");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let (_, e) = parse(&payload(r#"["a",1,2]"#)).expect_err("two arguments");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let (_, e) = parse(&payload(r#"[1,"x"]"#)).expect_err("name not a string");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }
}
