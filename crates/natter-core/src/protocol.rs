//! The wire contract in one place: client requests, replies, server events, close codes.
//! Mirrors docs/protocol.md; transports (native `/ws`, Socket.IO) only move these bytes.

use crate::error::{ChatError, ErrorCode};
use crate::model::{Message, RoomId, RoomView, Seq, User};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// WebSocket close codes (docs/protocol.md section 7).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const UNAUTHENTICATED: u16 = 4001;
    pub const REVOKED: u16 = 4003;
    pub const SLOW_CONSUMER: u16 = 4008;
}

/// The longest `ref` a client may send.
pub const MAX_REF_CHARS: usize = 64;
/// The longest `client_id` of a send.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// The largest history page.
pub const MAX_HISTORY_LIMIT: u32 = 100;
pub const DEFAULT_HISTORY_LIMIT: u32 = 50;

/// `auth` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthArgs {
    pub token: String,
    /// Room id (string key) -> last seq seen.
    #[serde(default)]
    pub resume: HashMap<String, i64>,
    /// Whether to receive presence events.
    #[serde(default = "default_true")]
    pub presence: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct RoomArg {
    pub room: RoomId,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NameArg {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserNameArg {
    pub user: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SendArgs {
    pub room: RoomId,
    pub body: String,
    pub client_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HistoryArgs {
    pub room: RoomId,
    pub before: Option<Seq>,
    pub after: Option<Seq>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReadArgs {
    pub room: RoomId,
    pub seq: Seq,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TypingArgs {
    pub room: RoomId,
    pub active: bool,
}

/// A client request, parsed and typed.
#[derive(Debug, Clone)]
pub enum Request {
    Auth(AuthArgs),
    RoomList,
    RoomCreate(NameArg),
    RoomJoin(RoomArg),
    RoomLeave(RoomArg),
    RoomMembers(RoomArg),
    RoomRead(ReadArgs),
    DmOpen(UserNameArg),
    MessageSend(SendArgs),
    History(HistoryArgs),
    Typing(TypingArgs),
    PresenceList,
    Ping,
}

fn args<T: DeserializeOwned>(data: Option<&Value>) -> Result<T, ChatError> {
    let empty = Value::Object(Default::default());
    let data = data.unwrap_or(&empty);
    T::deserialize(data).map_err(|e| ChatError::invalid(format!("bad data: {e}")))
}

impl Request {
    /// Parses a request from its name and `data` object (absent `data` means `{}`).
    pub fn parse(kind: &str, data: Option<&Value>) -> Result<Request, ChatError> {
        if let Some(d) = data {
            if !d.is_object() && !d.is_null() {
                return Err(ChatError::invalid("`data` must be an object"));
            }
        }
        let data = data.filter(|d| !d.is_null());
        Ok(match kind {
            "auth" => Request::Auth(args(data)?),
            "room.list" => Request::RoomList,
            "room.create" => Request::RoomCreate(args(data)?),
            "room.join" => Request::RoomJoin(args(data)?),
            "room.leave" => Request::RoomLeave(args(data)?),
            "room.members" => Request::RoomMembers(args(data)?),
            "room.read" => Request::RoomRead(args(data)?),
            "dm.open" => Request::DmOpen(args(data)?),
            "message.send" => Request::MessageSend(args(data)?),
            "history" => Request::History(args(data)?),
            "typing" => Request::Typing(args(data)?),
            "presence.list" => Request::PresenceList,
            "ping" => Request::Ping,
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(ChatError::new(
                    ErrorCode::UnknownType,
                    format!("unknown request type `{shown}`"),
                ));
            }
        })
    }

    /// Whether this request counts against the rate limit (all do but `auth`).
    pub fn is_auth(&self) -> bool {
        matches!(self, Request::Auth(_))
    }
}

/// A native frame that failed to parse: the error and the `ref` to answer with, if any.
#[derive(Debug)]
pub struct FrameError {
    pub reference: Option<String>,
    pub error: ChatError,
}

/// A frame's envelope, borrowed from the text: the fast path for `message.send`.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "ref", borrow)]
    reference: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// Parses a well-formed `message.send` straight into its arguments, without building a
/// `Value` tree first (the hot path: every chat message). Anything else, and anything this
/// path does not accept, returns None and goes through [`parse_frame`]'s general path, which
/// gives the same result for what this accepts and the documented errors for the rest.
fn parse_send_fast(text: &str) -> Option<(String, Request)> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let envelope: Envelope<'_> = serde_json::from_str(text).ok()?;
    if envelope.kind.as_deref()? != "message.send" {
        return None;
    }
    let reference = envelope.reference?;
    if reference.is_empty() || reference.chars().count() > MAX_REF_CHARS {
        return None;
    }
    let data = envelope.data?.get();
    if !data.trim_start().starts_with('{') {
        return None;
    }
    let args: SendArgs = serde_json::from_str(data).ok()?;
    Some((reference.into_owned(), Request::MessageSend(args)))
}

/// Parses one native text frame: `{"type", "ref", "data"}`.
pub fn parse_frame(text: &str) -> Result<(String, Request), FrameError> {
    if let Some(parsed) = parse_send_fast(text) {
        return Ok(parsed);
    }
    parse_frame_general(text)
}

/// Parses any frame through a `Value`, with the documented error for each way it can fail.
fn parse_frame_general(text: &str) -> Result<(String, Request), FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FrameError {
        reference: None,
        error: ChatError::new(ErrorCode::BadJson, format!("not JSON: {e}")),
    })?;
    let Value::Object(mut obj) = value else {
        return Err(FrameError {
            reference: None,
            error: ChatError::new(ErrorCode::BadJson, "a frame must be a JSON object"),
        });
    };
    let reference = match obj.get("ref") {
        Some(Value::String(r)) if !r.is_empty() && r.chars().count() <= MAX_REF_CHARS => r.clone(),
        _ => {
            return Err(FrameError {
                reference: None,
                error: ChatError::invalid("`ref` must be a string of 1 to 64 characters"),
            })
        }
    };
    let fail = |error| FrameError {
        reference: Some(reference.clone()),
        error,
    };
    let kind = match obj.get("type") {
        Some(Value::String(t)) => t.clone(),
        _ => return Err(fail(ChatError::invalid("`type` must be a string"))),
    };
    let data = obj.remove("data");
    let request = Request::parse(&kind, data.as_ref()).map_err(fail)?;
    Ok((reference, request))
}

#[derive(Serialize)]
struct OkFrame<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ref")]
    reference: &'a str,
    data: &'a T,
}

/// The `error` object of an error reply (also the Socket.IO ack's `error`).
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub code: &'static str,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl<'a> From<&'a ChatError> for ErrorBody<'a> {
    fn from(e: &'a ChatError) -> Self {
        ErrorBody {
            code: e.code.as_str(),
            message: &e.message,
            retry_after_ms: e.retry_after_ms,
        }
    }
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ref")]
    reference: Option<&'a str>,
    error: ErrorBody<'a>,
}

/// `{"type":"ok","ref":..,"data":..}`
pub fn encode_ok(reference: &str, data: &Value) -> Bytes {
    let frame = OkFrame {
        kind: "ok",
        reference,
        data,
    };
    Bytes::from(serde_json::to_vec(&frame).unwrap_or_default())
}

/// `{"type":"error","ref":..,"error":{"code","message"}}`
pub fn encode_error(reference: Option<&str>, error: &ChatError) -> Bytes {
    let frame = ErrorFrame {
        kind: "error",
        reference,
        error: error.into(),
    };
    Bytes::from(serde_json::to_vec(&frame).unwrap_or_default())
}

/// Event payloads (docs/protocol.md section 5).
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

/// A user's read marker in a room (the `room.read` reply and the `room_read` event).
#[derive(Debug, Clone, Serialize)]
pub struct RoomReadEvent {
    pub room: RoomId,
    pub read_seq: Seq,
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
}

impl EncodedEvent {
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
        })
    }

    pub fn message(message: &Message) -> Arc<EncodedEvent> {
        let mut event = EncodedEvent::new("message", message);
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
    fn parses_a_send() {
        let (r, req) = parse_frame(
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"}}"#,
        )
        .expect("parses");
        assert_eq!(r, "7");
        match req {
            Request::MessageSend(a) => {
                assert_eq!(a.room, RoomId(1));
                assert_eq!(a.body, "hi");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn classifies_bad_frames() {
        let e = parse_frame("{nope").expect_err("bad json");
        assert_eq!(e.error.code, ErrorCode::BadJson);
        assert!(e.reference.is_none());
        let e = parse_frame("[1]").expect_err("not object");
        assert_eq!(e.error.code, ErrorCode::BadJson);
        let e = parse_frame(r#"{"type":"ping"}"#).expect_err("no ref");
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        let e = parse_frame(r#"{"type":"fly","ref":"1"}"#).expect_err("unknown");
        assert_eq!(e.error.code, ErrorCode::UnknownType);
        assert_eq!(e.reference.as_deref(), Some("1"));
        let e = parse_frame(r#"{"type":"message.send","ref":"1","data":{"room":"x"}}"#)
            .expect_err("wrong type");
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        let e = parse_frame(r#"{"type":"message.send","ref":"1","data":{"room":1}}"#)
            .expect_err("missing");
        assert!(e.error.message.contains("missing field"));
    }

    /// The fast path for sends must agree with the general path on everything it accepts,
    /// and leave everything else (with its documented error) to the general path.
    #[test]
    fn the_send_fast_path_agrees_with_the_general_path() {
        let frames = [
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"}}"#,
            r#"  { "data" : { "client_id" : "c", "body" : "h\u00e9 \"q\"", "room" : 12 } , "ref" : "r\n", "type" : "message.send", "extra": [1, {"x": null}] } "#,
            r#"{"type":"message.send","ref":"7","ref":"8","data":{"room":1,"body":"hi","client_id":"c"}}"#,
            r#"{"type":"message.send","ref":"7","data":{"room":1,"room":2,"body":"hi","client_id":"c"}}"#,
            r#"{"type":"message.send","ref":7,"data":{"room":1,"body":"hi","client_id":"c"}}"#,
            r#"{"type":"message.send","ref":"","data":{"room":1,"body":"hi","client_id":"c"}}"#,
            r#"{"type":"message.send","ref":null,"data":{"room":1,"body":"hi","client_id":"c"}}"#,
            r#"{"type":"message.send","ref":"7","data":{"room":"1","body":"hi","client_id":"c"}}"#,
            r#"{"type":"message.send","ref":"7","data":{"room":1.5,"body":"hi","client_id":"c"}}"#,
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi"}}"#,
            r#"{"type":"message.send","ref":"7","data":[1,2]}"#,
            r#"{"type":"message.send","ref":"7","data":null}"#,
            r#"{"type":"message.send","ref":"7"}"#,
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"}} x"#,
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"}"#,
            r#"{"type":"message.sent","ref":"7","data":{"room":1,"body":"hi","client_id":"c"}}"#,
            r#"[{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"}}]"#,
            r#"{"type":"typing","ref":"7","data":{"room":1,"active":true}}"#,
        ];
        let long_ref = format!(
            r#"{{"type":"message.send","ref":"{}","data":{{"room":1,"body":"hi","client_id":"c"}}}}"#,
            "x".repeat(MAX_REF_CHARS + 1)
        );
        let show = |r: &Result<(String, Request), FrameError>| match r {
            Ok((reference, request)) => format!("ok {reference} {request:?}"),
            Err(e) => format!(
                "err {:?} {:?} {}",
                e.reference, e.error.code, e.error.message
            ),
        };
        let mut fast_taken = 0;
        for frame in frames.iter().copied().chain([long_ref.as_str()]) {
            let general = parse_frame_general(frame);
            if let Some(fast) = parse_send_fast(frame) {
                fast_taken += 1;
                assert_eq!(show(&Ok(fast)), show(&general), "frame {frame}");
            }
            assert_eq!(show(&parse_frame(frame)), show(&general), "frame {frame}");
        }
        assert_eq!(
            fast_taken, 2,
            "the two well-formed sends take the fast path"
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
