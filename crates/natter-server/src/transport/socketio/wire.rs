//! Engine.IO v4 and Socket.IO v5 text packets, for sockets on WebSocket from the start, which
//! Natter serves on its own connection loop (ADR 0029; `transport::ws::sio`). Each WebSocket
//! text frame is one Engine.IO packet: a type digit, then its data; a message packet (`4`)
//! carries one Socket.IO packet: a type digit, an optional `/namespace,`, an optional
//! acknowledgement id, then JSON. Binary attachments are not supported (refused as
//! `binary_unsupported`, as over socketioxide).

pub(crate) use super::requests::binary as binary_refusal;
use super::requests::parse_text;
use super::writer::{error_event, failure, success};
use bytes::Bytes;
use natter_core::protocol::Reply;
use natter_core::{ChatError, Request};
use serde::Serialize;
use serde_json::Value as Json;

/// One text frame from a client, read.
#[derive(Debug, PartialEq)]
pub(crate) enum Packet<'a> {
    /// Socket.IO `CONNECT` to a namespace, with its `auth` payload (if any).
    Connect {
        namespace: &'a str,
        auth: Option<&'a str>,
    },
    /// Socket.IO `EVENT` in the main namespace: the JSON array `[name, args...]`.
    Event { ack: Option<u64>, args: &'a str },
    /// Socket.IO `BINARY_EVENT` in the main namespace (refused).
    BinaryEvent { ack: Option<u64> },
    /// Socket.IO `DISCONNECT` from the main namespace, or Engine.IO `close`.
    Disconnect,
    /// Anything else: Engine.IO `pong` and `noop`, acknowledgements, packets of another
    /// namespace, what cannot be read (as socketioxide, nothing is answered).
    Other,
}

/// Reads one WebSocket text frame.
pub(crate) fn read(text: &str) -> Packet<'_> {
    let Some(rest) = text.strip_prefix('4') else {
        return match text {
            // Engine.IO `close`.
            "1" => Packet::Disconnect,
            _ => Packet::Other,
        };
    };
    let mut chars = rest.chars();
    let kind = chars.next();
    let body = chars.as_str();
    match kind {
        Some('0') => {
            let (namespace, data) = namespace(body);
            let auth = (!data.is_empty()).then_some(data);
            Packet::Connect { namespace, auth }
        }
        Some('1') if namespace(body).0 == "/" => Packet::Disconnect,
        Some('2') => match main_namespace(body) {
            Some(data) => {
                let (ack, args) = ack_id(data);
                Packet::Event { ack, args }
            }
            None => Packet::Other,
        },
        Some('5') => {
            // `<attachments>-` first.
            let Some((_, data)) = body.split_once('-') else {
                return Packet::Other;
            };
            match main_namespace(data) {
                Some(data) => Packet::BinaryEvent {
                    ack: ack_id(data).0,
                },
                None => Packet::Other,
            }
        }
        _ => Packet::Other,
    }
}

/// Splits `/namespace,rest` (or `rest`, in the main namespace `/`).
fn namespace(body: &str) -> (&str, &str) {
    if !body.starts_with('/') {
        return ("/", body);
    }
    match body.split_once(',') {
        Some((namespace, rest)) => (namespace, rest),
        None => (body, ""),
    }
}

/// The rest of a packet of the main namespace; None for another namespace.
fn main_namespace(body: &str) -> Option<&str> {
    let (namespace, rest) = namespace(body);
    (namespace == "/").then_some(rest)
}

/// Splits a leading acknowledgement id off a packet's data.
fn ack_id(data: &str) -> (Option<u64>, &str) {
    let digits = data.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return (None, data);
    }
    match data[..digits].parse() {
        Ok(id) => (Some(id), &data[digits..]),
        // More digits than an id can have: not JSON either; the parse of the rest says so.
        Err(_) => (None, data),
    }
}

/// A request read from an event: its name, and the request or why it is refused.
pub(crate) fn request(args: &str) -> (String, Result<Request, ChatError>) {
    match parse_text(args) {
        Ok((name, request)) => (name, Ok(request)),
        Err((name, e)) => (name, Err(e)),
    }
}

/// Engine.IO's `open` packet: the connection's id, heartbeat and the largest packet.
pub(crate) fn open(
    sid: &str,
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: usize,
) -> Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Open<'a> {
        sid: &'a str,
        upgrades: [&'a str; 0],
        ping_interval: u64,
        ping_timeout: u64,
        max_payload: usize,
    }
    let open = Open {
        sid,
        upgrades: [],
        ping_interval: ping_interval_ms,
        ping_timeout: ping_timeout_ms,
        max_payload,
    };
    packet("0", &open)
}

/// Socket.IO `CONNECT` answered: the socket's id in the main namespace.
pub(crate) fn connected(sid: &str) -> Bytes {
    #[derive(Serialize)]
    struct Connected<'a> {
        sid: &'a str,
    }
    packet("40", &Connected { sid })
}

/// Socket.IO `CONNECT_ERROR` for `namespace`: the client's `connect_error` with `message`.
pub(crate) fn connect_error(namespace: &str, message: &str) -> Bytes {
    #[derive(Serialize)]
    struct Refused<'a> {
        message: &'a str,
    }
    let head = if namespace == "/" {
        "44".to_string()
    } else {
        format!("44{namespace},")
    };
    packet(&head, &Refused { message })
}

/// Socket.IO `DISCONNECT` of the main namespace (the client's `io server disconnect`).
pub(crate) fn disconnect() -> Bytes {
    Bytes::from_static(b"41")
}

/// Engine.IO's `ping` (the client answers `3`).
pub(crate) fn ping() -> Bytes {
    Bytes::from_static(b"2")
}

/// An event `42["name",data]` with `data` already JSON: the same bytes for every recipient.
pub(crate) fn event_raw(name: &str, data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + name.len() + 8);
    frame.extend_from_slice(b"42[");
    // Event names are the contract's (`message`, `presence`...), but quote them properly.
    if serde_json::to_writer(&mut frame, name).is_err() {
        frame.extend_from_slice(b"\"\"");
    }
    frame.push(b',');
    frame.extend_from_slice(data);
    frame.push(b']');
    Bytes::from(frame)
}

/// An event `42["name",data]`.
pub(crate) fn event<T: Serialize + ?Sized>(name: &str, data: &T) -> Bytes {
    match serde_json::to_vec(data) {
        Ok(json) => event_raw(name, &json),
        Err(e) => {
            tracing::error!(error = %e, "socket.io encoding failed");
            event_raw(name, b"null")
        }
    }
}

/// The answer to a request (docs/socketio.md section 2): the acknowledgement `43<id>[ack]`
/// when it has an id, else an `error` event for a failure, else nothing (empty).
pub(crate) fn answer(ack: Option<u64>, name: &str, result: Result<Reply, ChatError>) -> Bytes {
    match (ack, result) {
        (Some(id), Ok(data)) => ack_packet(id, &success(&data)),
        (Some(id), Err(e)) => ack_packet(id, &failure(&e)),
        (None, Ok(_)) => Bytes::new(),
        (None, Err(e)) => event("error", &error_event(name, &e)),
    }
}

fn ack_packet<T: Serialize>(id: u64, ack: &T) -> Bytes {
    let mut frame = format!("43{id}[").into_bytes();
    if serde_json::to_writer(&mut frame, ack).is_err() {
        frame.extend_from_slice(b"null");
    }
    frame.push(b']');
    Bytes::from(frame)
}

/// `head` followed by `data`'s JSON.
fn packet<T: Serialize>(head: &str, data: &T) -> Bytes {
    let mut frame = head.as_bytes().to_vec();
    if serde_json::to_writer(&mut frame, data).is_err() {
        frame.extend_from_slice(b"{}");
    }
    Bytes::from(frame)
}

/// Reads a `CONNECT`'s `auth` payload: JSON, or the error socketioxide's extractor would give.
pub(crate) fn auth_payload(auth: Option<&str>) -> Result<Json, ()> {
    match auth {
        Some(text) => serde_json::from_str(text).map_err(|_| ()),
        None => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_read_as_the_protocol_says() {
        assert_eq!(
            read(r#"40{"token":"t"}"#),
            Packet::Connect {
                namespace: "/",
                auth: Some(r#"{"token":"t"}"#)
            }
        );
        assert_eq!(
            read("40"),
            Packet::Connect {
                namespace: "/",
                auth: None
            }
        );
        assert_eq!(
            read(r#"40/admin,{"a":1}"#),
            Packet::Connect {
                namespace: "/admin",
                auth: Some(r#"{"a":1}"#)
            }
        );
        assert_eq!(
            read(r#"4212["message.send",{}]"#),
            Packet::Event {
                ack: Some(12),
                args: r#"["message.send",{}]"#
            }
        );
        assert_eq!(
            read(r#"42["typing"]"#),
            Packet::Event {
                ack: None,
                args: r#"["typing"]"#
            }
        );
        assert_eq!(
            read(r#"42/,7["x"]"#),
            Packet::Event {
                ack: Some(7),
                args: r#"["x"]"#
            }
        );
        assert_eq!(read(r#"42/admin,["x"]"#), Packet::Other);
        assert_eq!(
            read(r#"451-3["up",{"_placeholder":true,"num":0}]"#),
            Packet::BinaryEvent { ack: Some(3) }
        );
        assert_eq!(read("41"), Packet::Disconnect);
        assert_eq!(read("1"), Packet::Disconnect);
        assert_eq!(read("41/admin,"), Packet::Other);
        for other in ["3", "6", "2", "", "4", "43[1]", "99", "4é", "42"] {
            assert_ne!(read(other), Packet::Disconnect, "{other}");
        }
        // An id too long for u64 is left to the JSON parse, which refuses it.
        assert_eq!(
            read("4299999999999999999999[1]"),
            Packet::Event {
                ack: None,
                args: "99999999999999999999[1]"
            }
        );
    }

    #[test]
    fn requests_and_answers_are_socket_io_packets() {
        let (name, request) = request(r#"["message.send",{"room":1,"body":"hi","client_id":"c"}]"#);
        assert_eq!(name, "message.send");
        assert!(request.is_ok());
        let (name, refused) = request_of_bad();
        assert_eq!(name, "");
        assert_eq!(refused.code.as_str(), "bad_json");
        let e = ChatError::new(natter_core::ErrorCode::NotFound, "no such room");
        let acked = answer(Some(5), "room.join", Err(e.clone()));
        let text = std::str::from_utf8(&acked).expect("utf-8");
        assert!(text.starts_with("435[{"), "{text}");
        let json: Json = serde_json::from_str(&text[3..]).expect("json");
        assert_eq!(json[0]["ok"], false);
        assert_eq!(json[0]["error"]["code"], "not_found");
        let evented = answer(None, "room.join", Err(e));
        let text = std::str::from_utf8(&evented).expect("utf-8");
        let json: Json = serde_json::from_str(&text[2..]).expect("json");
        assert_eq!(json[0], "error");
        assert_eq!(json[1]["event"], "room.join");
        assert!(answer(
            None,
            "typing",
            Ok(Reply::Empty(natter_core::protocol::Empty {}))
        )
        .is_empty());
        assert_eq!(
            &event_raw("message", b"{\"a\":1}")[..],
            br#"42["message",{"a":1}]"#
        );
        assert_eq!(&connected("abc")[..], br#"40{"sid":"abc"}"#);
        assert_eq!(
            &connect_error("/x", "Invalid namespace")[..],
            br#"44/x,{"message":"Invalid namespace"}"#
        );
        let open = open("s", 30000, 45000, 65536);
        assert_eq!(
            &open[..],
            br#"0{"sid":"s","upgrades":[],"pingInterval":30000,"pingTimeout":45000,"maxPayload":65536}"#
        );
    }

    fn request_of_bad() -> (String, ChatError) {
        let (name, result) = request("[not json");
        (name, result.expect_err("refused"))
    }
}
