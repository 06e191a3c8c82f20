//! How Natter's protocol maps onto Socket.IO (the `/socket.io/` endpoint): one place to
//! adjust if docs/socketio.md says otherwise.
//!
//! - auth: the handshake's `auth` object, `40{"token":"...","presence":false}` (see `conn`);
//!   the server then sends an `auth` event (the native auth reply), ignored here;
//! - request `T` with data `D`: event `42<id>["T",D]`; the reply is the ack
//!   `43<id>[{"ok":true,"data":..}]` or `43<id>[{"ok":false,"error":{"code",..}}]`;
//! - server event `T` with data `D`: `42["T",D]`, so a delivery is `42["message",Message]`.

use serde::Deserialize;

use super::socketio::{self, Packet, SioKind};
use super::{json_room, json_str, ErrorInfo, Incoming, NatterData, Request};

/// The Socket.IO `auth` object for a token (load connections want no presence events).
pub fn auth_json(token: &str) -> String {
    format!(r#"{{"token":{},"presence":false}}"#, json_str(token))
}

pub fn encode(request: Request<'_>, reference: u64) -> Option<String> {
    let (name, data) = match request {
        Request::Auth { .. } | Request::Edit { .. } | Request::React { .. } => return None,
        Request::CreateRoom { name } => {
            ("room.create", format!(r#"{{"name":{}}}"#, json_str(name)))
        }
        Request::Join { room } => ("room.join", format!(r#"{{"room":{}}}"#, json_room(room))),
        Request::Send {
            room,
            body,
            client_id,
        } => (
            "message.send",
            format!(
                r#"{{"room":{},"body":"{body}","client_id":"{client_id}"}}"#,
                json_room(room)
            ),
        ),
    };
    Some(socketio::encode_event(name, &data, Some(reference)))
}

#[derive(Deserialize)]
struct Ack<'a> {
    #[serde(default)]
    ok: bool,
    #[serde(default, borrow)]
    data: Option<NatterData<'a>>,
    #[serde(default)]
    error: Option<ErrorInfo>,
}

pub fn parse(frame: &str) -> Incoming<'_> {
    match socketio::decode(frame) {
        Packet::Open => Incoming::EngineOpen,
        Packet::Ping => Incoming::EnginePing,
        Packet::Sio(p) => match p.kind {
            SioKind::Connect => Incoming::SioConnected,
            SioKind::ConnectError => Incoming::SioConnectError(p.payload.to_string()),
            SioKind::Event => match socketio::event_named(p.payload, "message") {
                Some(rest) => {
                    let json = rest.strip_suffix(']').unwrap_or(rest);
                    match serde_json::from_str::<NatterData<'_>>(json) {
                        Ok(data) => data.into_delivery(),
                        Err(e) => Incoming::Malformed(format!("{e}: {frame:.120}")),
                    }
                }
                None => Incoming::Other,
            },
            SioKind::Ack => {
                let Some(reference) = p.ack_id else {
                    return Incoming::Malformed(format!("ack without id: {frame:.120}"));
                };
                match serde_json::from_str::<(Ack<'_>,)>(p.payload) {
                    Ok((ack,)) if ack.ok => Incoming::Reply {
                        reference,
                        outcome: Ok(ack.data.unwrap_or_default().into_reply()),
                    },
                    Ok((ack,)) => Incoming::Reply {
                        reference,
                        outcome: Err(ack.error.unwrap_or_default()),
                    },
                    Err(e) => Incoming::Malformed(format!("{e}: {frame:.120}")),
                }
            }
            _ => Incoming::Other,
        },
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ParsedRoom;
    use crate::target::{RoomRef, WireRoom};

    #[test]
    fn maps_requests_to_events_with_acks() {
        let room = RoomRef {
            key: 0,
            wire: WireRoom::Id(3),
        };
        assert_eq!(
            encode(Request::Join { room: &room }, 4).as_deref(),
            Some(r#"424["room.join",{"room":3}]"#)
        );
        assert_eq!(
            encode(
                Request::Send {
                    room: &room,
                    body: "b",
                    client_id: "c"
                },
                5
            )
            .as_deref(),
            Some(r#"425["message.send",{"room":3,"body":"b","client_id":"c"}]"#)
        );
        assert_eq!(encode(Request::Auth { token: "t" }, 1), None);
    }

    #[test]
    fn parses_messages_and_acks() {
        let ev = r#"42["message",{"id":1,"room":3,"seq":8,"sender":{"id":1,"name":"a","guest":false},"body":"x","ts":1,"client_id":"c"}]"#;
        assert_eq!(
            parse(ev),
            Incoming::Delivery {
                room: Some(ParsedRoom::Id(3)),
                seq: Some(8),
                body: Some("x".into())
            }
        );
        match parse(r#"437[{"ok":false,"error":{"code":"not_member","message":"no"}}]"#) {
            Incoming::Reply {
                reference: 7,
                outcome: Err(e),
            } => assert_eq!(e.code, "not_member"),
            other => panic!("{other:?}"),
        }
        match parse(r#"438[{"ok":true,"data":{"room":{"id":11,"name":"r"}}}]"#) {
            Incoming::Reply {
                reference: 8,
                outcome: Ok(d),
            } => assert_eq!(d.room_id, Some(11)),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse("2"), Incoming::EnginePing);
        assert_eq!(parse(r#"40{"sid":"s"}"#), Incoming::SioConnected);
    }
}
