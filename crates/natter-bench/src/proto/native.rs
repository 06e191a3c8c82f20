//! Natter's native protocol on `/ws`: `{"type","ref","data"}` requests, `ok`/`error` replies
//! carrying the `ref`, and `{"type":"message","data":Message}` events (docs/protocol.md).

use std::borrow::Cow;

use serde::Deserialize;

use super::{json_room, json_str, ErrorInfo, Incoming, NatterData, Request};

/// Encodes a request with `ref` = the decimal `reference`.
pub fn encode(request: Request<'_>, reference: u64) -> Option<String> {
    Some(match request {
        Request::Auth { token } => format!(
            r#"{{"type":"auth","ref":"{reference}","data":{{"token":{},"presence":false}}}}"#,
            json_str(token)
        ),
        Request::CreateRoom { name } => format!(
            r#"{{"type":"room.create","ref":"{reference}","data":{{"name":{}}}}}"#,
            json_str(name)
        ),
        Request::Join { room } => format!(
            r#"{{"type":"room.join","ref":"{reference}","data":{{"room":{}}}}}"#,
            json_room(room)
        ),
        // Bodies and client ids are the bench's own ASCII: no escaping needed (hot path).
        Request::Send {
            room,
            body,
            client_id,
        } => format!(
            r#"{{"type":"message.send","ref":"{reference}","data":{{"room":{},"body":"{body}","client_id":"{client_id}"}}}}"#,
            json_room(room)
        ),
        Request::Edit {
            room,
            seq,
            body,
            client_id,
        } => format!(
            r#"{{"type":"message.edit","ref":"{reference}","data":{{"room":{},"seq":{seq},"body":"{body}","client_id":"{client_id}"}}}}"#,
            json_room(room)
        ),
        Request::React {
            room,
            seq,
            emoji,
            add,
            client_id,
        } => format!(
            r#"{{"type":"{}","ref":"{reference}","data":{{"room":{},"seq":{seq},"emoji":{},"client_id":"{client_id}"}}}}"#,
            if add {
                "reaction.add"
            } else {
                "reaction.remove"
            },
            json_room(room),
            json_str(emoji)
        ),
    })
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "ref", default, borrow)]
    reference: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<NatterData<'a>>,
    #[serde(default)]
    error: Option<ErrorInfo>,
}

/// Parses a frame: `message` events by the scanner in `scan` where it can, the rest by serde.
pub fn parse(frame: &str) -> Incoming<'_> {
    super::scan::message_event(frame).unwrap_or_else(|| parse_with_serde(frame))
}

/// Parses any frame with serde (the reference the scanner is tested against).
pub(crate) fn parse_with_serde(frame: &str) -> Incoming<'_> {
    let parsed: Frame<'_> = match serde_json::from_str(frame) {
        Ok(f) => f,
        Err(e) => return Incoming::Malformed(format!("{e}: {frame:.120}")),
    };
    match parsed.kind.as_ref() {
        "message" => parsed.data.unwrap_or_default().into_delivery(),
        "message_edited" | "message_deleted" | "reaction" => {
            parsed.data.unwrap_or_default().into_change()
        }
        "ok" | "error" => {
            let Some(reference) = parsed.reference.and_then(|r| r.parse().ok()) else {
                return Incoming::Malformed(format!("reply without numeric ref: {frame:.120}"));
            };
            let outcome = if parsed.kind == "ok" {
                Ok(parsed.data.unwrap_or_default().into_reply())
            } else {
                Err(parsed.error.unwrap_or_default())
            };
            Incoming::Reply { reference, outcome }
        }
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ParsedRoom, ReplyData};
    use crate::target::{RoomRef, WireRoom};

    #[test]
    fn encodes_requests_as_documented() {
        let room = RoomRef {
            key: 0,
            wire: WireRoom::Id(5),
        };
        let send = encode(
            Request::Send {
                room: &room,
                body: "hi",
                client_id: "c-1",
            },
            7,
        )
        .expect("send");
        let v: serde_json::Value = serde_json::from_str(&send).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"type":"message.send","ref":"7","data":{"room":5,"body":"hi","client_id":"c-1"}})
        );
        let auth = encode(Request::Auth { token: "T\"" }, 1).expect("auth");
        let v: serde_json::Value = serde_json::from_str(&auth).expect("json");
        assert_eq!(v["data"]["token"], "T\"");
        assert_eq!(v["data"]["presence"], false);
    }

    #[test]
    fn parses_events_and_replies() {
        let ev = r#"{"type":"message","data":{"id":907,"room":1,"seq":42,"sender":{"id":12,"name":"ana","guest":false},"body":"hello","ts":1,"client_id":"c"}}"#;
        assert_eq!(
            parse(ev),
            Incoming::Delivery {
                room: Some(ParsedRoom::Id(1)),
                seq: Some(42),
                body: Some("hello".into())
            }
        );
        let ok = r#"{"type":"ok","ref":"3","data":{"room":{"id":9,"name":"x","kind":"public","member_count":1,"last_seq":0,"joined":true}}}"#;
        assert_eq!(
            parse(ok),
            Incoming::Reply {
                reference: 3,
                outcome: Ok(ReplyData {
                    room_id: Some(9),
                    message_body: None,
                    message_seq: None
                })
            }
        );
        let sent = r#"{"type":"ok","ref":"4","data":{"message":{"id":1,"room":1,"seq":1,"body":"b","ts":1},"duplicate":false}}"#;
        match parse(sent) {
            Incoming::Reply {
                outcome: Ok(data), ..
            } => {
                assert_eq!(data.message_body.as_deref(), Some("b"));
                assert_eq!(data.message_seq, Some(1));
            }
            other => panic!("{other:?}"),
        }
        let err = r#"{"type":"error","ref":"5","error":{"code":"rate_limited","message":"slow down","retry_after_ms":50}}"#;
        match parse(err) {
            Incoming::Reply {
                reference: 5,
                outcome: Err(e),
            } => assert_eq!(e.code, "rate_limited"),
            other => panic!("{other:?}"),
        }
        let presence = r#"{"type":"member_joined","data":{"room":1,"user":{"id":1,"name":"a","guest":false},"member_count":2}}"#;
        assert_eq!(parse(presence), Incoming::Other);
        let edited = r#"{"type":"message_edited","data":{"id":9,"room":1,"seq":43,"sender":{"id":12,"name":"ana","guest":false},"body":"new","ts":2,"client_id":"e-1","change":{"op":"edit","target":42}}}"#;
        assert_eq!(
            parse(edited),
            Incoming::Change {
                room: Some(ParsedRoom::Id(1)),
                seq: Some(43),
                body: Some("new".into()),
                client_id: Some("e-1".into())
            }
        );
        let reaction = r#"{"type":"reaction","data":{"id":10,"room":1,"seq":44,"sender":{"id":12,"name":"ana","guest":false},"body":"","ts":3,"client_id":"r-1","change":{"op":"react","target":42,"emoji":"\ud83d\udc4d","add":true}}}"#;
        assert!(matches!(
            parse(reaction),
            Incoming::Change { seq: Some(44), client_id: Some(c), .. } if c == "r-1"
        ));
        assert!(matches!(parse("nope"), Incoming::Malformed(_)));
    }
}
