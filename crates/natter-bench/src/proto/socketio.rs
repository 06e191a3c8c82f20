//! Engine.IO v4 / Socket.IO v4 packets over a WebSocket (no polling, no binary): just what a
//! load generator needs, written out so its cost is known.
//!
//! Engine.IO: `0{..}` open, `1` close, `2` ping (answer `3`), `3` pong, `4<socket.io packet>`.
//! Socket.IO: `0` connect (`40{auth}` / `40{"sid":..}`), `1` disconnect, `2` event
//! (`42<ack id>["name",data]`), `3` ack (`43<id>[args]`), `4` connect error.

/// A decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    Open,
    Close,
    Ping,
    Pong,
    Sio(SioPacket<'a>),
    /// Anything else (upgrade/noop packets, binary attachments).
    Unknown,
}

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioKind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

/// A Socket.IO packet inside an Engine.IO message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SioPacket<'a> {
    pub kind: SioKind,
    /// Namespace, `/` when absent.
    pub namespace: &'a str,
    pub ack_id: Option<u64>,
    /// The JSON that follows (may be empty).
    pub payload: &'a str,
}

/// The pong answering an Engine.IO ping.
pub const PONG: &str = "3";

pub fn decode(frame: &str) -> Packet<'_> {
    let mut chars = frame.chars();
    match chars.next() {
        Some('0') => Packet::Open,
        Some('1') => Packet::Close,
        Some('2') => Packet::Ping,
        Some('3') => Packet::Pong,
        Some('4') => decode_sio(&frame[1..]).map_or(Packet::Unknown, Packet::Sio),
        _ => Packet::Unknown,
    }
}

fn decode_sio(s: &str) -> Option<SioPacket<'_>> {
    let kind = match s.as_bytes().first()? {
        b'0' => SioKind::Connect,
        b'1' => SioKind::Disconnect,
        b'2' => SioKind::Event,
        b'3' => SioKind::Ack,
        b'4' => SioKind::ConnectError,
        b'5' => SioKind::BinaryEvent,
        b'6' => SioKind::BinaryAck,
        _ => return None,
    };
    let mut rest = &s[1..];
    if matches!(kind, SioKind::BinaryEvent | SioKind::BinaryAck) {
        // `<attachments>-` precedes the rest; skip it.
        let dash = rest.find('-')?;
        rest = &rest[dash + 1..];
    }
    let mut namespace = "/";
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        namespace = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = if digits > 0 {
        rest[..digits].parse().ok()
    } else {
        None
    };
    Some(SioPacket {
        kind,
        namespace,
        ack_id,
        payload: &rest[digits..],
    })
}

/// `42<ack id>["name",<data json>]` on the default namespace.
pub fn encode_event(name: &str, data_json: &str, ack_id: Option<u64>) -> String {
    match ack_id {
        Some(id) => format!(r#"42{id}["{name}",{data_json}]"#),
        None => format!(r#"42["{name}",{data_json}]"#),
    }
}

/// `40` or `40{auth json}`: connect to the default namespace.
pub fn encode_connect(auth_json: Option<&str>) -> String {
    match auth_json {
        Some(auth) => format!("40{auth}"),
        None => "40".to_string(),
    }
}

/// If `payload` is an event array named `name` (`["name",...`), the rest after the name.
pub fn event_named<'a>(payload: &'a str, name: &str) -> Option<&'a str> {
    let rest = payload.strip_prefix("[\"")?.strip_prefix(name)?;
    rest.strip_prefix("\",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_engine_and_socket_packets() {
        assert_eq!(decode(r#"0{"sid":"x","pingInterval":25000}"#), Packet::Open);
        assert_eq!(decode("2"), Packet::Ping);
        assert_eq!(
            decode(r#"40{"sid":"abc"}"#),
            Packet::Sio(SioPacket {
                kind: SioKind::Connect,
                namespace: "/",
                ack_id: None,
                payload: r#"{"sid":"abc"}"#
            })
        );
        assert_eq!(
            decode(r#"4312[{"ok":true}]"#),
            Packet::Sio(SioPacket {
                kind: SioKind::Ack,
                namespace: "/",
                ack_id: Some(12),
                payload: r#"[{"ok":true}]"#
            })
        );
        assert_eq!(
            decode(r#"42/chat,7["a",1]"#),
            Packet::Sio(SioPacket {
                kind: SioKind::Event,
                namespace: "/chat",
                ack_id: Some(7),
                payload: r#"["a",1]"#
            })
        );
    }

    #[test]
    fn encodes_events_and_connect() {
        assert_eq!(
            encode_event("join", "\"r1\"", Some(3)),
            r#"423["join","r1"]"#
        );
        assert_eq!(encode_event("chat", "{}", None), r#"42["chat",{}]"#);
        assert_eq!(encode_connect(None), "40");
        assert_eq!(
            encode_connect(Some(r#"{"token":"t"}"#)),
            r#"40{"token":"t"}"#
        );
        assert_eq!(
            event_named(r#"["chat",{"a":1}]"#, "chat"),
            Some(r#"{"a":1}]"#)
        );
        assert_eq!(event_named(r#"["chatty",1]"#, "chat"), None);
    }
}
