//! Plain data of the chat domain: ids, users, rooms and messages, as stored and as sent.
//!
//! Ids are newtypes so a room id can never be passed where a user id is expected; they
//! serialize as bare JSON integers, as docs/protocol.md says.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user account (registered or guest).
    UserId
);
id_type!(
    /// A room: public or a direct-message pair.
    RoomId
);
id_type!(
    /// A message, unique across the server.
    MessageId
);
id_type!(
    /// A message's position in its room: 1, 2, 3, ... with no gaps.
    Seq
);

impl Seq {
    pub const ZERO: Seq = Seq(0);
    /// The seq after this one; `Seq(i64::MAX)` stays (a client may name any seq, such as
    /// `history`'s `around`, and no room reaches it).
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }
}

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A user as others see them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    /// The name as spelled at sign-up (uniqueness is case-insensitive).
    pub name: String,
    pub guest: bool,
    /// A bot account (issue 21): on the wire only when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bot: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    #[default]
    Public,
    Dm,
    /// Invite-only: invisible to non-members; its name is not unique (rooms are told apart
    /// by id), so a non-member cannot even learn that a name is used.
    Private,
    /// A group DM: 3 to 8 people, named by its members; no roles, no settings.
    Group,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Public => "public",
            RoomKind::Dm => "dm",
            RoomKind::Private => "private",
            RoomKind::Group => "group",
        }
    }
    /// A direct conversation (a DM or a group DM): members only, named by its members, no
    /// roles or settings.
    pub fn is_direct(self) -> bool {
        matches!(self, RoomKind::Dm | RoomKind::Group)
    }
    pub fn parse(s: &str) -> Option<RoomKind> {
        match s {
            "public" => Some(RoomKind::Public),
            "dm" => Some(RoomKind::Dm),
            "private" => Some(RoomKind::Private),
            "group" => Some(RoomKind::Group),
            _ => None,
        }
    }
}

/// A member's role in a room. Owners and moderators moderate; an owner also sets roles and
/// archives. Ordered by authority: a moderator may act only on members of a lower role.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RoomRole {
    #[default]
    Member,
    Moderator,
    Owner,
}

impl RoomRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomRole::Member => "member",
            RoomRole::Moderator => "moderator",
            RoomRole::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<RoomRole> {
        match s {
            "member" => Some(RoomRole::Member),
            "moderator" => Some(RoomRole::Moderator),
            "owner" => Some(RoomRole::Owner),
            _ => None,
        }
    }
}

/// A user's standing in one room: what authorization reads (`Store::standing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    pub member: bool,
    /// `Member` for a non-member too.
    pub role: RoomRole,
    /// Muted until then (ms since the epoch), if a mute was set and not lifted.
    pub muted_until: Option<Millis>,
    pub banned: bool,
    /// Invited and not yet joined (private rooms).
    pub invited: bool,
}

/// A user's server-wide flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserFlags {
    /// A server admin: may moderate every room, grant admin, deactivate accounts, read the
    /// audit log.
    pub admin: bool,
    /// Deactivated by an admin: cannot sign in; sessions are gone.
    pub deactivated: bool,
}

/// A user's profile as stored: what they say of themselves, and when they were last active.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub user: User,
    /// Shown instead of the name where set (the name stays unique and is what `@` mentions).
    pub display_name: String,
    /// A line of their own ("on holiday until Monday").
    pub status: String,
    /// Their avatar: one of their own image uploads.
    pub avatar: Option<crate::files::FileId>,
    /// Their last recorded activity (a session's use, written at most once a minute).
    pub last_active: Millis,
    /// Whether the user is a bot (`Store::bot`), read with the profile so that a member list
    /// costs one query, not one per member.
    pub bot: bool,
}

/// What `profile.update` changes (None: leave as it is; `avatar: Some(None)` removes it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub status: Option<String>,
    pub avatar: Option<Option<crate::files::FileId>>,
}

/// A ban as listed by `room.bans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    pub user: User,
    pub by: User,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub ts: Millis,
}

/// A pending invitation to a private room (`invite.list`, the `room_invited` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub room: RoomId,
    /// The room's name (shown to the invitee only).
    pub name: String,
    pub by: User,
    pub ts: Millis,
}

/// One line of the audit log: who did what, where, to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub ts: Millis,
    pub actor: User,
    /// What was done: a room event's `op` (`kick`, `ban`, ...), `delete` (a moderator
    /// deleting another's message), `admin`, `unadmin` or `deactivate`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<User>,
    /// Details as JSON text (the room event, or the deleted message's seq).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// An audit line to record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAudit {
    pub ts: Millis,
    pub actor: UserId,
    pub action: String,
    pub room: Option<RoomId>,
    pub target: Option<UserId>,
    pub detail: String,
}

/// A room as stored: what every viewer shares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: RoomId,
    /// The public name; `"dm"` for direct-message rooms.
    pub name: String,
    pub kind: RoomKind,
    pub member_count: u32,
    /// The newest message's seq (0 when empty).
    pub last_seq: Seq,
    /// One line shown in the room's header (empty: none).
    pub topic: String,
    /// A longer text about the room (empty: none).
    pub description: String,
    /// Read-only, left out of `room.list` unless asked for; still searchable.
    pub archived: bool,
}

/// A room as one user sees it (the `Room` object of docs/protocol.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomView {
    pub id: RoomId,
    pub name: String,
    pub kind: RoomKind,
    pub member_count: u32,
    pub last_seq: Seq,
    pub joined: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub archived: bool,
    /// The viewer's role, for a member of a public or private room.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<RoomRole>,
    /// The viewer is muted here until then (where `role` is given, and the mute is set).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub muted_until: Option<Millis>,
    /// For a DM: the other person.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peer: Option<User>,
    /// For a group DM: the other members, by name.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub peers: Vec<User>,
    /// For a member, where the room's own state is given (`auth`, `room_added`): unread
    /// messages after their read marker (at most `MAX_UNREAD_COUNT`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unread: Option<u32>,
    /// Of those, the ones that mention them (every one, in a DM).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mentions: Option<u32>,
    /// Their notification level for the room.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub notify: Option<NotifyLevel>,
}

/// Unread and mention counts stop at this (a room read long ago shows "1000+").
pub const MAX_UNREAD_COUNT: u32 = 1000;

/// The event name of a room event (a stream entry about the room, not a message in it).
pub const ROOM_EVENT: &str = "room_event";

/// How a member wants to be notified of a room's messages (stored per member, follows the
/// user to every device). DMs count every message as a mention.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyLevel {
    All,
    #[default]
    Mentions,
    None,
}

impl NotifyLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyLevel::All => "all",
            NotifyLevel::Mentions => "mentions",
            NotifyLevel::None => "none",
        }
    }
    pub fn parse(s: &str) -> Option<NotifyLevel> {
        match s {
            "all" => Some(NotifyLevel::All),
            "mentions" => Some(NotifyLevel::Mentions),
            "none" => Some(NotifyLevel::None),
            _ => None,
        }
    }
}

/// A member's own state in a room: read marker, counts after it, notification level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberState {
    pub room: RoomId,
    pub read_seq: Seq,
    pub unread: u32,
    pub mentions: u32,
    pub notify: NotifyLevel,
    pub role: RoomRole,
    /// Muted in the room until then, if a mute was set and not lifted.
    pub muted_until: Option<Millis>,
}

/// What a stream entry does to an earlier message of its room (docs/protocol.md section 6):
/// absent on a message itself. `target` is the changed message's seq.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// The entry's `body` is the target's new text (empty once the target is deleted).
    Edit {
        target: Seq,
    },
    /// The target's text is gone; it stays as a tombstone.
    Delete {
        target: Seq,
    },
    /// The entry's sender added (or removed) `emoji` on the target.
    React {
        target: Seq,
        emoji: String,
        add: bool,
    },
    /// Membership (event `room_event`), by the member themself (the entry's sender): `user`
    /// became a member (joined a public room, accepted an invitation, a new account joining
    /// `general`, a bot added by its owner).
    Join {
        user: User,
    },
    /// `user` is no longer a member: left the room, a guest expired, or the account was
    /// deleted (its name then "deleted user").
    Leave {
        user: User,
    },
    /// Room events (event `room_event`), each by a moderator, owner or admin (the entry's
    /// sender): `user` was removed from the room (they may join again).
    Kick {
        user: User,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// `user` was removed and may not join again until unbanned.
    Ban {
        user: User,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    Unban {
        user: User,
    },
    /// `user` may not send, react or edit in the room until `until`.
    Mute {
        user: User,
        until: Millis,
    },
    Unmute {
        user: User,
    },
    /// `user`'s role is now `role`.
    Role {
        user: User,
        role: RoomRole,
    },
    /// The room's settings changed: only the fields given.
    Settings {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        archived: Option<bool>,
    },
}

impl Change {
    /// The message an edit, delete or reaction changes; None for a room event.
    pub fn target(&self) -> Option<Seq> {
        match self {
            Change::Edit { target } | Change::Delete { target } | Change::React { target, .. } => {
                Some(*target)
            }
            _ => None,
        }
    }
    /// Whether this is a room event (no target message).
    pub fn is_room_event(&self) -> bool {
        self.target().is_none()
    }
    /// Whether this is a member joining or leaving of their own accord (not audited: no one
    /// acted on anyone else).
    pub fn is_membership(&self) -> bool {
        matches!(self, Change::Join { .. } | Change::Leave { .. })
    }
    /// The `op` name on the wire (also the audit log's action).
    pub fn op(&self) -> &'static str {
        match self {
            Change::Edit { .. } => "edit",
            Change::Delete { .. } => "delete",
            Change::React { .. } => "react",
            Change::Join { .. } => "join",
            Change::Leave { .. } => "leave",
            Change::Kick { .. } => "kick",
            Change::Ban { .. } => "ban",
            Change::Unban { .. } => "unban",
            Change::Mute { .. } => "mute",
            Change::Unmute { .. } => "unmute",
            Change::Role { .. } => "role",
            Change::Settings { .. } => "settings",
        }
    }
    /// The member a room event is about.
    pub fn subject(&self) -> Option<&User> {
        match self {
            Change::Join { user }
            | Change::Leave { user }
            | Change::Kick { user, .. }
            | Change::Ban { user, .. }
            | Change::Unban { user }
            | Change::Mute { user, .. }
            | Change::Unmute { user }
            | Change::Role { user, .. } => Some(user),
            _ => None,
        }
    }
}

/// One emoji on a message and who put it there (in the order they did).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub users: Vec<User>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An entry of a room's ordered stream: a message, or (with `change`) an edit, delete or
/// reaction of an earlier one. The optional fields are left out of the JSON when empty, so a
/// plain message reads as it always has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub room: RoomId,
    pub seq: Seq,
    pub sender: User,
    pub body: String,
    /// Server acceptance time, ms since the epoch.
    pub ts: Millis,
    /// The sender's id for this send, used to store retries once.
    pub client_id: String,
    /// On a change entry: what it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// On a thread reply: the seq of the message it replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<Seq>,
    /// On a thread reply: also shown in the room's own timeline.
    #[serde(default, skip_serializing_if = "is_false")]
    pub also_room: bool,
    /// Users mentioned by `@name` (members of the room when it was sent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// `@room`: everyone in the room is mentioned.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mentions_room: bool,
    /// When the text was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Millis>,
    /// A tombstone: the text was deleted (`body` is empty).
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// Reactions, by first use (current state: in `history` and `message.get`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// On a thread's first message: its reply count. On a reply: its thread's reply count
    /// once it was stored (so a client can take the largest it has seen).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replies: u32,
    /// On a thread's first message: when the newest reply came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reply_ts: Option<Millis>,
    /// Files it carries, in the order sent (none once it is deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::files::FileInfo>,
}

impl Message {
    /// The event name of this entry: `message`, `message_edited`, `message_deleted` or
    /// `reaction`.
    pub fn event_name(&self) -> &'static str {
        match self.change {
            None => "message",
            Some(Change::Edit { .. }) => "message_edited",
            Some(Change::Delete { .. }) => "message_deleted",
            Some(Change::React { .. }) => "reaction",
            Some(_) => ROOM_EVENT,
        }
    }
    /// Whether this entry shows in the room's own timeline (a message not only in a thread).
    pub fn in_timeline(&self) -> bool {
        self.change.is_none() && (self.thread.is_none() || self.also_room)
    }
}

/// A message about to be stored; the store assigns id and seq.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub room: RoomId,
    pub sender: User,
    pub body: String,
    pub client_id: String,
    pub ts: Millis,
    /// A thread reply: the parent's seq. The store refuses (`Refusal::InvalidThread`) a
    /// parent that is a reply or a change, and `UnknownMessage` one that does not exist.
    pub thread: Option<Seq>,
    pub also_room: bool,
    pub mentions: Vec<UserId>,
    pub mentions_room: bool,
    /// Files to attach: each must be the sender's own upload, else the store refuses the
    /// message (`Refusal::UnknownFile`) and stores nothing.
    pub files: Vec<crate::files::FileId>,
    /// The node could not vouch that the sender may post here (its cache of mutes and
    /// archived rooms had no answer yet): the store checks in the append's own transaction
    /// and refuses a muted sender (`Refusal::Muted`) or an archived room
    /// (`Refusal::Archived`), so the check costs no await before the append (which would let
    /// pipelined sends overtake each other).
    pub check_rules: bool,
}

/// The result of appending: the stored message, and whether it was stored before
/// (a retry with the same client id).
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: Message,
    pub duplicate: bool,
}

/// A change to store as a new stream entry (see [`Change`]).
#[derive(Debug, Clone)]
pub struct NewChange {
    pub room: RoomId,
    pub sender: User,
    pub client_id: String,
    pub ts: Millis,
    pub change: Change,
    /// For an edit: the new text.
    pub body: String,
    /// For a reaction added: how many distinct emoji the target may carry at most.
    pub max_reactions: u32,
}

/// What `Store::change` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Stored as this new entry.
    Applied(Message),
    /// A retry: this (sender, room, client_id) was stored before, as this entry.
    Duplicate(Message),
    /// A reaction already in the state asked for: nothing stored.
    Unchanged,
}

/// Which messages a history page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The room's timeline: messages not in a thread, and replies sent `also_room`.
    Room,
    /// The room's timeline and its room events (joins, leaves, moderation, settings), as
    /// `history` with `events` reads it: what a client online all along has seen.
    RoomAndEvents,
    /// The replies of one thread (not its first message).
    Thread(Seq),
}

/// One version of a message's text (`message.edits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub body: String,
    pub ts: Millis,
}

/// A room member with their presence and profile (`room.members`), or a profile on its own
/// (`profile.get`, `profile.update`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemberView {
    pub user: User,
    pub online: bool,
    /// Shown instead of the name where set.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Their avatar image (a file any signed-in user may fetch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar: Option<crate::files::FileInfo>,
    /// For someone offline: their last activity (ms since the epoch, to the minute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Millis>,
    /// In `room.members` of a public or private room: their role there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<RoomRole>,
    /// True for a bot account (docs/api.md); absent for people.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
}

/// How search results are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchOrder {
    /// Newest first (by time, then id).
    #[default]
    Newest,
    /// Best match first (the store's rank), then newest.
    Relevance,
}

/// What a store searches for (`Store::search`): the rooms are already the ones the searcher
/// may read; every word must match (the store's word index, stemmed where it can) and every
/// substring must occur in the text (case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    pub rooms: Vec<RoomId>,
    /// Lower-cased words.
    pub words: Vec<String>,
    /// Lower-cased substrings (phrases, words of scripts without spaces).
    pub substrings: Vec<String>,
    pub from: Option<UserId>,
    /// Only messages with `ts >= after_ts`.
    pub after_ts: Option<Millis>,
    /// Only messages with `ts < before_ts`.
    pub before_ts: Option<Millis>,
    pub order: SearchOrder,
    pub limit: u32,
    /// Results before this (ts, id) in `Newest` order; results after the first `offset` in
    /// `Relevance` order.
    pub page: SearchPage,
}

/// Where a page of results starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SearchPage {
    #[default]
    First,
    /// Newest order: strictly older than this (ts, id).
    Before { ts: Millis, id: MessageId },
    /// Relevance order: skip this many.
    Offset(u32),
}
