//! Replies: the typed `data` of every success reply (one type per request, docs/protocol.md
//! section 4), and the encoders of the native `ok` and `error` frames. A reply is built as
//! one of these types, never as loose JSON, so a misspelt field does not compile.

use crate::error::ChatError;
use crate::model::{
    AuditEntry, Ban, Invite, MemberView, Message, NotifyLevel, RoomId, RoomKind, RoomView, Seq,
    User, Version,
};
use bytes::Bytes;
use serde::Serialize;
use std::collections::BTreeMap;

/// The `data` of a success reply, one variant per shape; serialized as the bare object.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// `auth`.
    Auth(Box<AuthReply>),
    /// `room.list`.
    Rooms(RoomsReply),
    /// `room.create`, `room.join`, `dm.open`.
    Room(RoomReply),
    /// `room.members`.
    Members(MembersReply),
    /// `room.read`: the marker now stored.
    Read(ReadMarker),
    /// `message.send`.
    Sent(SentReply),
    /// `message.edit`, `message.delete`, `reaction.add`, `reaction.remove`.
    Changed(ChangeReply),
    /// `message.edits`.
    Versions(VersionsReply),
    /// `room.notify`.
    Notify(NotifyReply),
    /// `search`.
    Search(SearchReply),
    /// `history`.
    History(HistoryReply),
    /// `presence.list`.
    Online(OnlineReply),
    /// `invite.list`.
    Invites(InvitesReply),
    /// `room.bans`.
    Bans(BansReply),
    /// `admin.audit`.
    Audit(AuditReply),
    /// `profile.get`, `profile.update`.
    Profile(ProfileReply),
    /// `room.leave`, `typing`, `ping`: `{}`.
    Empty(Empty),
}

/// `{}`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Empty {}

/// The `auth` reply.
#[derive(Debug, Clone, Serialize)]
pub struct AuthReply {
    pub user: User,
    /// The rooms the user is a member of (public rooms and DMs).
    pub rooms: Vec<RoomView>,
    /// The user's read marker per room (room id as a string key); rooms never marked are absent.
    pub read: BTreeMap<RoomId, Seq>,
    /// Rooms of `resume` too far behind to replay: the client reloads their history.
    pub reset: Vec<RoomId>,
    /// Everyone online anywhere on the server.
    pub online: Vec<User>,
    pub limits: Limits,
}

/// The limits a client should keep to (the `auth` reply's `limits`).
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub max_message_chars: usize,
    pub max_frame_bytes: usize,
    pub rate_per_sec: f64,
    pub rate_burst: f64,
}

/// The `room.list` reply: one page of public rooms (by name), and on the first page the
/// user's DMs after them.
#[derive(Debug, Clone, Serialize)]
pub struct RoomsReply {
    pub rooms: Vec<RoomView>,
    /// The `after` of the next page; null on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomReply {
    pub room: RoomView,
}

#[derive(Debug, Clone, Serialize)]
pub struct MembersReply {
    /// Sorted by name.
    pub members: Vec<MemberView>,
}

/// A user's read marker in a room (the `room.read` reply and the `room_read` event).
#[derive(Debug, Clone, Serialize)]
pub struct ReadMarker {
    pub room: RoomId,
    pub read_seq: Seq,
    /// Unread messages after the marker when it was stored (as in `Room.unread`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<u32>,
    /// Of those, the ones that mention the user (as in `Room.mentions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mentions: Option<u32>,
}

/// The reply to a change (`message.edit`, `message.delete`, `reaction.add/remove`).
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReply {
    /// The stored entry (the one stored before, for a retry); null when a reaction was
    /// already as asked and nothing was stored.
    pub entry: Option<Message>,
    /// Whether this `client_id` was stored before.
    pub duplicate: bool,
}

/// `message.edits`: every text the message has had, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct VersionsReply {
    pub versions: Vec<Version>,
}

/// `search`: one page of results, best first (in the order asked).
#[derive(Debug, Clone, Serialize)]
pub struct SearchReply {
    pub results: Vec<SearchResult>,
    /// The cursor of the next page; null on the last.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    /// In its current state.
    pub message: Message,
    pub room: RoomRef,
    /// The text in runs, hits marked (concatenated: `message.body`).
    pub parts: Vec<TextPart>,
}

/// A room as a search result names it.
#[derive(Debug, Clone, Serialize)]
pub struct RoomRef {
    pub id: RoomId,
    pub name: String,
    pub kind: RoomKind,
    /// For a DM: the other person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<User>,
}

/// A run of text, a search hit or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextPart {
    pub text: String,
    pub hit: bool,
}

/// `room.notify` (and the `room_notify` event): the level now stored.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyReply {
    pub room: RoomId,
    pub notify: NotifyLevel,
}

#[derive(Debug, Clone, Serialize)]
pub struct SentReply {
    pub message: Message,
    /// Whether this `client_id` was stored before (the original message is returned).
    pub duplicate: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryReply {
    /// In ascending `seq`.
    pub messages: Vec<Message>,
    /// Whether more messages exist in the direction asked (with `around`: older ones).
    pub has_more: bool,
    /// With `around`: whether newer messages exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_newer: Option<bool>,
    /// With `thread`: the thread's first message, in its current state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<Message>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OnlineReply {
    pub online: Vec<User>,
}

/// `profile.get` and `profile.update`: a user's profile.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileReply {
    pub profile: MemberView,
}

/// `invite.list`: the user's pending invitations, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct InvitesReply {
    pub invites: Vec<Invite>,
}

/// `room.bans`: the room's bans, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct BansReply {
    pub bans: Vec<Ban>,
}

/// `admin.audit`: one page of the audit log, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReply {
    pub entries: Vec<AuditEntry>,
    /// The `before` of the next (older) page; null on the last.
    pub next: Option<i64>,
}

impl From<AuthReply> for Reply {
    fn from(r: AuthReply) -> Reply {
        Reply::Auth(Box::new(r))
    }
}

macro_rules! into_reply {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for Reply {
            fn from(r: $ty) -> Reply {
                Reply::$variant(r)
            }
        })*
    };
}
into_reply!(
    Rooms(RoomsReply),
    Room(RoomReply),
    Members(MembersReply),
    Read(ReadMarker),
    Sent(SentReply),
    Changed(ChangeReply),
    Versions(VersionsReply),
    Notify(NotifyReply),
    Search(SearchReply),
    History(HistoryReply),
    Online(OnlineReply),
    Invites(InvitesReply),
    Bans(BansReply),
    Audit(AuditReply),
    Profile(ProfileReply),
    Empty(Empty),
);

#[derive(Serialize)]
struct OkFrame<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ref")]
    reference: &'a str,
    data: &'a T,
}

/// The `error` object of an error reply (also the Socket.IO ack's `error`).
#[derive(Debug, Serialize)]
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
pub fn encode_ok(reference: &str, data: &Reply) -> Bytes {
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
