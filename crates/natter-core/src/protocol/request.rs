//! Client requests: their arguments, the `Request` enum, and the native frame parser (with a
//! fast path for `message.send`, the hot path). Over 500 lines with its tests, which pin the
//! fast path to the general one (about half of the file).

use super::MAX_REF_CHARS;
use crate::error::{ChatError, ErrorCode};
use crate::model::{NotifyLevel, RoomId, SearchOrder, Seq};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// `auth` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthArgs {
    pub token: String,
    /// Room id (string key) -> last seq seen.
    #[serde(default)]
    pub resume: BTreeMap<String, i64>,
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

/// `room.list` arguments: all optional, so a request without `data` asks for the first page
/// of every public room.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RoomListArgs {
    /// Only public rooms whose name contains this, case-insensitively (at most
    /// `MAX_ROOM_QUERY_CHARS`; empty: every room).
    #[serde(default)]
    pub query: Option<String>,
    /// The previous page's `next`: this page starts after it.
    #[serde(default)]
    pub after: Option<String>,
    /// Public rooms on the page, 1 to `MAX_ROOM_PAGE` (default `DEFAULT_ROOM_PAGE`).
    #[serde(default)]
    pub limit: Option<u32>,
    /// List archived rooms (only those) instead of active ones.
    #[serde(default)]
    pub archived: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NameArg {
    pub name: String,
}

/// `room.create` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct RoomCreateArgs {
    pub name: String,
    /// Invite-only, invisible to non-members.
    #[serde(default)]
    pub private: bool,
}

/// `group.open` arguments: the other people, by name.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupArgs {
    pub users: Vec<String>,
}

/// `room.invite` and `group.add` arguments: whom, by name.
#[derive(Debug, Clone, Deserialize)]
pub struct InviteArgs {
    pub room: RoomId,
    pub user: String,
}

/// `room.update` arguments: the settings to change (at least one).
#[derive(Debug, Clone, Deserialize)]
pub struct RoomUpdateArgs {
    pub room: RoomId,
    pub client_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
}

/// `room.kick`, `room.ban`, `room.unban`, `room.mute`, `room.unmute` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct ModerateArgs {
    pub room: RoomId,
    /// The member's name.
    pub user: String,
    pub client_id: String,
    /// `room.kick`, `room.ban`: shown to the room (at most `MAX_REASON_CHARS`).
    #[serde(default)]
    pub reason: Option<String>,
    /// `room.mute`: for how long, 1 to `MAX_MUTE_MINUTES`.
    #[serde(default)]
    pub minutes: Option<u32>,
}

/// `room.role` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct RoleArgs {
    pub room: RoomId,
    pub user: String,
    pub role: crate::model::RoomRole,
    pub client_id: String,
}

/// `profile.update` arguments: what to change.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProfileArgs {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// A file id (one of the user's image uploads), or null to remove the avatar (absent:
    /// unchanged; `Some(Value::Null)` is a null given).
    #[serde(default, deserialize_with = "given")]
    pub avatar: Option<Value>,
}

/// A field that is there, null included (serde reads a null `Option` as absent).
fn given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `admin.audit` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditArgs {
    /// The previous page's `next`.
    #[serde(default)]
    pub before: Option<i64>,
    /// 1 to `MAX_AUDIT_PAGE` (default `DEFAULT_AUDIT_PAGE`).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `admin.set_admin` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct SetAdminArgs {
    pub user: String,
    pub admin: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserNameArg {
    pub user: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SendArgs {
    pub room: RoomId,
    pub body: String,
    pub client_id: String,
    /// A thread reply to the message with this seq.
    #[serde(default)]
    pub thread: Option<Seq>,
    /// With `thread`: also show the reply in the room's timeline.
    #[serde(default)]
    pub also_room: bool,
    /// Uploads to attach (the sender's own, at most `MAX_FILES_PER_MESSAGE`).
    #[serde(default)]
    pub files: Vec<crate::files::FileId>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HistoryArgs {
    pub room: RoomId,
    pub before: Option<Seq>,
    pub after: Option<Seq>,
    /// The page around this message (it included), half older and half newer.
    #[serde(default)]
    pub around: Option<Seq>,
    /// The replies of this message's thread instead of the room's timeline.
    #[serde(default)]
    pub thread: Option<Seq>,
    pub limit: Option<u32>,
    /// The room's room events (joins, leaves, moderation, settings) in the page too.
    #[serde(default)]
    pub events: bool,
}

/// `message.edit` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct EditArgs {
    pub room: RoomId,
    pub seq: Seq,
    pub body: String,
    pub client_id: String,
}

/// `message.delete` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteArgs {
    pub room: RoomId,
    pub seq: Seq,
    pub client_id: String,
}

/// `reaction.add` and `reaction.remove` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct ReactArgs {
    pub room: RoomId,
    pub seq: Seq,
    pub emoji: String,
    pub client_id: String,
}

/// A message by room and seq (`message.edits`).
#[derive(Debug, Clone, Deserialize)]
pub struct MessageArg {
    pub room: RoomId,
    pub seq: Seq,
}

/// `search` arguments (also the query of `GET /api/search`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchArgs {
    /// The query (`natter_core::search`'s syntax).
    pub query: String,
    /// Also public rooms the searcher is not in.
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub order: SearchOrder,
    /// Results per page, 1 to `MAX_SEARCH_LIMIT` (default `DEFAULT_SEARCH_LIMIT`).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The previous page's `next`.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `room.notify` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct NotifyArgs {
    pub room: RoomId,
    pub level: NotifyLevel,
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
    RoomList(RoomListArgs),
    RoomCreate(RoomCreateArgs),
    RoomJoin(RoomArg),
    RoomLeave(RoomArg),
    RoomMembers(RoomArg),
    RoomRead(ReadArgs),
    DmOpen(UserNameArg),
    MessageSend(SendArgs),
    MessageEdit(EditArgs),
    MessageDelete(DeleteArgs),
    MessageEdits(MessageArg),
    ReactionAdd(ReactArgs),
    ReactionRemove(ReactArgs),
    History(HistoryArgs),
    RoomNotify(NotifyArgs),
    Search(SearchArgs),
    Typing(TypingArgs),
    PresenceList,
    Ping,
    RoomInvite(InviteArgs),
    ProfileGet(UserNameArg),
    ProfileUpdate(ProfileArgs),
    GroupOpen(GroupArgs),
    GroupAdd(InviteArgs),
    InviteList,
    InviteDecline(RoomArg),
    RoomUpdate(RoomUpdateArgs),
    RoomKick(ModerateArgs),
    RoomBan(ModerateArgs),
    RoomUnban(ModerateArgs),
    RoomMute(ModerateArgs),
    RoomUnmute(ModerateArgs),
    RoomRole(RoleArgs),
    RoomBans(RoomArg),
    AdminAudit(AuditArgs),
    AdminSetAdmin(SetAdminArgs),
    AdminDeactivate(UserNameArg),
}

fn args<T: DeserializeOwned>(data: Option<&Value>) -> Result<T, ChatError> {
    let empty = Value::Object(Default::default());
    let data = data.unwrap_or(&empty);
    T::deserialize(data).map_err(|e| ChatError::invalid(format!("bad data: {e}")))
}

impl Request {
    /// Parses a request from its name and `data` object (absent `data` means `{}`). An
    /// unknown name is `unknown_type` whatever its `data`: the name is checked first.
    pub fn parse(kind: &str, data: Option<&Value>) -> Result<Request, ChatError> {
        if !Self::NAMES.contains(&kind) {
            return Err(Self::unknown(kind));
        }
        if let Some(d) = data {
            if !d.is_object() && !d.is_null() {
                return Err(ChatError::invalid("`data` must be an object"));
            }
        }
        let data = data.filter(|d| !d.is_null());
        Ok(match kind {
            "auth" => Request::Auth(args(data)?),
            "room.list" => Request::RoomList(args(data)?),
            "room.create" => Request::RoomCreate(args(data)?),
            "room.join" => Request::RoomJoin(args(data)?),
            "room.leave" => Request::RoomLeave(args(data)?),
            "room.members" => Request::RoomMembers(args(data)?),
            "room.read" => Request::RoomRead(args(data)?),
            "dm.open" => Request::DmOpen(args(data)?),
            "message.send" => Request::MessageSend(args(data)?),
            "message.edit" => Request::MessageEdit(args(data)?),
            "message.delete" => Request::MessageDelete(args(data)?),
            "message.edits" => Request::MessageEdits(args(data)?),
            "reaction.add" => Request::ReactionAdd(args(data)?),
            "reaction.remove" => Request::ReactionRemove(args(data)?),
            "history" => Request::History(args(data)?),
            "room.notify" => Request::RoomNotify(args(data)?),
            "search" => Request::Search(args(data)?),
            "typing" => Request::Typing(args(data)?),
            "presence.list" => Request::PresenceList,
            "ping" => Request::Ping,
            "room.invite" => Request::RoomInvite(args(data)?),
            "group.open" => Request::GroupOpen(args(data)?),
            "profile.get" => Request::ProfileGet(args(data)?),
            "profile.update" => Request::ProfileUpdate(args(data)?),
            "group.add" => Request::GroupAdd(args(data)?),
            "invite.list" => Request::InviteList,
            "invite.decline" => Request::InviteDecline(args(data)?),
            "room.update" => Request::RoomUpdate(args(data)?),
            "room.kick" => Request::RoomKick(args(data)?),
            "room.ban" => Request::RoomBan(args(data)?),
            "room.unban" => Request::RoomUnban(args(data)?),
            "room.mute" => Request::RoomMute(args(data)?),
            "room.unmute" => Request::RoomUnmute(args(data)?),
            "room.role" => Request::RoomRole(args(data)?),
            "room.bans" => Request::RoomBans(args(data)?),
            "admin.audit" => Request::AdminAudit(args(data)?),
            "admin.set_admin" => Request::AdminSetAdmin(args(data)?),
            "admin.deactivate" => Request::AdminDeactivate(args(data)?),
            other => return Err(Self::unknown(other)),
        })
    }

    /// The `unknown_type` error for a request name (shown cut to 40 characters).
    fn unknown(kind: &str) -> ChatError {
        let shown: String = kind.chars().take(40).collect();
        ChatError::new(
            ErrorCode::UnknownType,
            format!("unknown request type `{shown}`"),
        )
    }

    /// Every request name, in the order of docs/protocol.md section 4.
    pub const NAMES: &'static [&'static str] = &[
        "auth",
        "room.list",
        "room.create",
        "room.join",
        "room.leave",
        "room.members",
        "room.read",
        "dm.open",
        "message.send",
        "message.edit",
        "message.delete",
        "message.edits",
        "reaction.add",
        "reaction.remove",
        "history",
        "room.notify",
        "search",
        "typing",
        "presence.list",
        "ping",
        "room.invite",
        "group.open",
        "group.add",
        "profile.get",
        "profile.update",
        "invite.list",
        "invite.decline",
        "room.update",
        "room.kick",
        "room.ban",
        "room.unban",
        "room.mute",
        "room.unmute",
        "room.role",
        "room.bans",
        "admin.audit",
        "admin.set_admin",
        "admin.deactivate",
    ];

    /// The request's `type` (the Socket.IO event name too).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Auth(_) => "auth",
            Request::RoomList(_) => "room.list",
            Request::RoomCreate(_) => "room.create",
            Request::RoomJoin(_) => "room.join",
            Request::RoomLeave(_) => "room.leave",
            Request::RoomMembers(_) => "room.members",
            Request::RoomRead(_) => "room.read",
            Request::DmOpen(_) => "dm.open",
            Request::MessageSend(_) => "message.send",
            Request::MessageEdit(_) => "message.edit",
            Request::MessageDelete(_) => "message.delete",
            Request::MessageEdits(_) => "message.edits",
            Request::ReactionAdd(_) => "reaction.add",
            Request::ReactionRemove(_) => "reaction.remove",
            Request::History(_) => "history",
            Request::RoomNotify(_) => "room.notify",
            Request::Search(_) => "search",
            Request::Typing(_) => "typing",
            Request::PresenceList => "presence.list",
            Request::Ping => "ping",
            Request::RoomInvite(_) => "room.invite",
            Request::GroupOpen(_) => "group.open",
            Request::ProfileGet(_) => "profile.get",
            Request::ProfileUpdate(_) => "profile.update",
            Request::GroupAdd(_) => "group.add",
            Request::InviteList => "invite.list",
            Request::InviteDecline(_) => "invite.decline",
            Request::RoomUpdate(_) => "room.update",
            Request::RoomKick(_) => "room.kick",
            Request::RoomBan(_) => "room.ban",
            Request::RoomUnban(_) => "room.unban",
            Request::RoomMute(_) => "room.mute",
            Request::RoomUnmute(_) => "room.unmute",
            Request::RoomRole(_) => "room.role",
            Request::RoomBans(_) => "room.bans",
            Request::AdminAudit(_) => "admin.audit",
            Request::AdminSetAdmin(_) => "admin.set_admin",
            Request::AdminDeactivate(_) => "admin.deactivate",
        }
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

/// A frame's envelope, borrowed from the text: the fast path for `message.send`. No other
/// field: serde skips an unknown field's value without checking all of it (a lone surrogate
/// in a string, a number out of range), where the general path refuses the frame as not
/// JSON, so frames with other fields take the general path (found by fuzzing).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "ref", borrow)]
    reference: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// `message.send`'s arguments and no other field, for the fast path (see [`Envelope`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExactSendArgs {
    room: RoomId,
    body: String,
    client_id: String,
}

/// Parses a well-formed `message.send` straight into its arguments, without building a
/// `Value` tree first (the hot path: every chat message). Anything else, and anything this
/// path does not accept, returns None and goes through [`parse_frame`]'s general path, which
/// gives the same result for what this accepts and the documented errors for the rest.
/// Public only for the fuzz target that checks that agreement (fuzz/): not an API.
#[doc(hidden)]
pub fn parse_send_fast(text: &str) -> Option<(String, Request)> {
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
    let args: ExactSendArgs = serde_json::from_str(data).ok()?;
    let args = SendArgs {
        room: args.room,
        body: args.body,
        client_id: args.client_id,
        thread: None,
        also_room: false,
        files: Vec::new(),
    };
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
/// Public only for the fuzz target that checks the fast path against it (fuzz/).
#[doc(hidden)]
pub fn parse_frame_general(text: &str) -> Result<(String, Request), FrameError> {
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

    /// An unknown name is `unknown_type` whatever its `data` (it was `invalid_request` for a
    /// string: a tutorial client's `socket.emit("chat message", "hi")`, issue 21).
    #[test]
    fn an_unknown_type_is_unknown_whatever_its_data() {
        for data in [
            serde_json::json!("hi"),
            serde_json::json!(5),
            serde_json::json!([1]),
            serde_json::json!({}),
        ] {
            let e = Request::parse("chat message", Some(&data)).expect_err("unknown");
            assert_eq!(e.code, ErrorCode::UnknownType, "{data}");
        }
        let e = Request::parse("ping", Some(&serde_json::json!("hi"))).expect_err("known");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    /// Regression (fuzz/ request_parser): a send with a lone surrogate or an out-of-range
    /// number in a field the fast path would have skipped is refused as not JSON, as any
    /// other frame with them is.
    #[test]
    fn sends_with_bad_json_in_unknown_fields_are_bad_json() {
        for frame in [
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"},"r\udbdaef":1}"#,
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c","x":1e400}}"#,
        ] {
            let e = parse_frame(frame).expect_err("not JSON");
            assert_eq!(e.error.code, ErrorCode::BadJson, "{frame}");
        }
    }

    /// Regression (fuzz/ request_parser, CI): two parses of one `auth` must be equal, also in
    /// their Debug form, which the fuzzer's oracle compares; `resume` was a HashMap, whose
    /// order differs between instances.
    #[test]
    fn an_auth_parses_the_same_every_time() {
        let frame = r#"{"type":"auth","ref":"a","data":{"token":"t","resume":{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8}}}"#;
        let first = format!("{:?}", parse_frame(frame).map(|(_, r)| r).ok());
        for _ in 0..8 {
            assert_eq!(
                format!("{:?}", parse_frame_general(frame).map(|(_, r)| r).ok()),
                first
            );
        }
    }

    /// The fast path for sends must agree with the general path on everything it accepts,
    /// and leave everything else (with its documented error) to the general path.
    #[test]
    fn the_send_fast_path_agrees_with_the_general_path() {
        let frames = [
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"}}"#,
            r#"  { "data" : { "client_id" : "c", "body" : "h\u00e9 \"q\"", "room" : 12 } , "ref" : "r\n", "type" : "message.send" } "#,
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"},"extra": [1, {"x": null}]}"#,
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c","extra":true}}"#,
            // Found by fuzzing (fuzz/ request_parser): values the fast path skipped unchecked
            // in unknown fields, which the general path refuses as not JSON.
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"},"r\udbdaef":1}"#,
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"},"x":"\ud800"}"#,
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c"},"x":1e400}"#,
            r#"{"type":"message.send","ref":"7","data":{"room":1,"body":"hi","client_id":"c","x":"\udc00"}}"#,
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
}
