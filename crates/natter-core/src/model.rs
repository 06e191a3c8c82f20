//! Plain data of the chat domain: ids, users, rooms and messages, as stored and as sent.
//!
//! Ids are newtypes so a room id can never be passed where a user id is expected; they
//! serialize as bare JSON integers, as docs/protocol.md says.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    /// The name as spelled at sign-up (uniqueness is case-insensitive).
    pub name: String,
    pub guest: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    Public,
    Dm,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Public => "public",
            RoomKind::Dm => "dm",
        }
    }
}

/// A room as stored: what every viewer shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: RoomId,
    /// The public name; `"dm"` for direct-message rooms.
    pub name: String,
    pub kind: RoomKind,
    pub member_count: u32,
    /// The newest message's seq (0 when empty).
    pub last_seq: Seq,
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
    /// For a DM: the other person.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peer: Option<User>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// A message about to be stored; the store assigns id and seq.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room: RoomId,
    pub sender: User,
    pub body: String,
    pub client_id: String,
    pub ts: Millis,
}

/// The result of appending: the stored message, and whether it was stored before
/// (a retry with the same client id).
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: Message,
    pub duplicate: bool,
}

/// A room member with their presence.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub user: User,
    pub online: bool,
}
