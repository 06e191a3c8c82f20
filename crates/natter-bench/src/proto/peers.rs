//! The two Node.js peers' protocols (bench/peers/): rooms by name, no accounts, no acks on
//! `chat` (a broadcast to the room, sender included).
//!
//! - Socket.IO peer: `42<id>["join","room"]` (acked `43<id>[{"ok":true}]`),
//!   `42["chat",{"room":..,"body":..}]` in both directions.
//! - plain `ws` peer: `{"type":"join","room":..,"ref":..}` -> `{"type":"joined","room":..,"ref":..}`,
//!   `{"type":"chat","room":..,"body":..}` in both directions.

use std::borrow::Cow;

use serde::Deserialize;

use super::socketio::{self, Packet, SioKind};
use super::{json_room, ErrorInfo, Incoming, ReplyData, Request, RoomField};

pub fn encode_sio(request: Request<'_>, reference: u64) -> Option<String> {
    match request {
        Request::Auth { .. }
        | Request::CreateRoom { .. }
        | Request::Edit { .. }
        | Request::React { .. } => None,
        Request::Join { room } => Some(socketio::encode_event(
            "join",
            &json_room(room),
            Some(reference),
        )),
        Request::Send { room, body, .. } => Some(socketio::encode_event(
            "chat",
            &format!(r#"{{"room":{},"body":"{body}"}}"#, json_room(room)),
            None,
        )),
    }
}

pub fn encode_ws(request: Request<'_>, reference: u64) -> Option<String> {
    match request {
        Request::Auth { .. }
        | Request::CreateRoom { .. }
        | Request::Edit { .. }
        | Request::React { .. } => None,
        Request::Join { room } => Some(format!(
            r#"{{"type":"join","room":{},"ref":"{reference}"}}"#,
            json_room(room)
        )),
        Request::Send { room, body, .. } => Some(format!(
            r#"{{"type":"chat","room":{},"body":"{body}"}}"#,
            json_room(room)
        )),
    }
}

#[derive(Deserialize)]
struct Chat<'a> {
    #[serde(default, borrow)]
    room: Option<RoomField<'a>>,
    #[serde(default, borrow)]
    body: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Ack {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    error: Option<ErrorInfo>,
}

fn delivery(chat: Chat<'_>) -> Incoming<'_> {
    Incoming::Delivery {
        room: chat.room.map(|r| r.0),
        seq: None,
        body: chat.body,
    }
}

pub fn parse_sio(frame: &str) -> Incoming<'_> {
    match socketio::decode(frame) {
        Packet::Open => Incoming::EngineOpen,
        Packet::Ping => Incoming::EnginePing,
        Packet::Sio(p) => match p.kind {
            SioKind::Connect => Incoming::SioConnected,
            SioKind::ConnectError => Incoming::SioConnectError(p.payload.to_string()),
            SioKind::Event => match socketio::event_named(p.payload, "chat") {
                Some(rest) => {
                    match serde_json::from_str::<Chat<'_>>(rest.strip_suffix(']').unwrap_or(rest)) {
                        Ok(chat) => delivery(chat),
                        Err(e) => Incoming::Malformed(format!("{e}: {frame:.120}")),
                    }
                }
                None => Incoming::Other,
            },
            SioKind::Ack => match (p.ack_id, serde_json::from_str::<(Ack,)>(p.payload)) {
                (Some(reference), Ok((ack,))) => Incoming::Reply {
                    reference,
                    outcome: if ack.ok {
                        Ok(ReplyData::default())
                    } else {
                        Err(ack.error.unwrap_or_default())
                    },
                },
                _ => Incoming::Malformed(format!("bad ack: {frame:.120}")),
            },
            _ => Incoming::Other,
        },
        _ => Incoming::Other,
    }
}

#[derive(Deserialize)]
struct WsFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "ref", default, borrow)]
    reference: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    room: Option<RoomField<'a>>,
    #[serde(default, borrow)]
    body: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<ErrorInfo>,
}

pub fn parse_ws(frame: &str) -> Incoming<'_> {
    let parsed: WsFrame<'_> = match serde_json::from_str(frame) {
        Ok(f) => f,
        Err(e) => return Incoming::Malformed(format!("{e}: {frame:.120}")),
    };
    match parsed.kind.as_ref() {
        "chat" => delivery(Chat {
            room: parsed.room,
            body: parsed.body,
        }),
        "joined" | "error" => match parsed.reference.and_then(|r| r.parse().ok()) {
            Some(reference) => Incoming::Reply {
                reference,
                outcome: if parsed.kind == "joined" {
                    Ok(ReplyData::default())
                } else {
                    Err(parsed.error.unwrap_or_default())
                },
            },
            None => Incoming::Other,
        },
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ParsedRoom;
    use crate::target::{RoomRef, WireRoom};

    fn room() -> RoomRef {
        RoomRef {
            key: 0,
            wire: WireRoom::Name("r1".into()),
        }
    }

    #[test]
    fn sio_peer_frames() {
        let r = room();
        assert_eq!(
            encode_sio(Request::Join { room: &r }, 2).as_deref(),
            Some(r#"422["join","r1"]"#)
        );
        let send = Request::Send {
            room: &r,
            body: "b",
            client_id: "c",
        };
        assert_eq!(
            encode_sio(send, 3).as_deref(),
            Some(r#"42["chat",{"room":"r1","body":"b"}]"#)
        );
        assert_eq!(
            parse_sio(r#"42["chat",{"room":"r1","body":"b"}]"#),
            Incoming::Delivery {
                room: Some(ParsedRoom::Name("r1".into())),
                seq: None,
                body: Some("b".into())
            }
        );
        assert!(matches!(
            parse_sio(r#"432[{"ok":true}]"#),
            Incoming::Reply {
                reference: 2,
                outcome: Ok(_)
            }
        ));
    }

    #[test]
    fn ws_peer_frames() {
        let r = room();
        assert_eq!(
            encode_ws(Request::Join { room: &r }, 4).as_deref(),
            Some(r#"{"type":"join","room":"r1","ref":"4"}"#)
        );
        assert!(matches!(
            parse_ws(r#"{"type":"joined","room":"r1","ref":"4"}"#),
            Incoming::Reply {
                reference: 4,
                outcome: Ok(_)
            }
        ));
        assert_eq!(
            parse_ws(r#"{"type":"chat","room":"r1","body":"b"}"#),
            Incoming::Delivery {
                room: Some(ParsedRoom::Name("r1".into())),
                seq: None,
                body: Some("b".into())
            }
        );
    }
}
