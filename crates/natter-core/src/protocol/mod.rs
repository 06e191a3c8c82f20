//! The wire contract in one place: client requests, replies, server events, close codes and
//! limits, as docs/protocol.md describes them. Transports (native `/ws`, Socket.IO) only
//! translate these types to and from their frames; nothing else builds a reply or an event.
//!
//! - [`request`]: `Request` and its arguments, and the native frame parser.
//! - [`reply`]: `Reply`, the typed `data` of every success reply, and the reply encoders.
//! - [`event`]: `Event`, every server event, and `EncodedEvent` (an event encoded once).

pub mod event;
pub mod reply;
pub mod request;

pub use event::*;
pub use reply::*;
pub use request::*;

/// WebSocket close codes (docs/protocol.md section 7), and the reason sent with each.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const BAD_DATA: u16 = 1007;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const UNAUTHENTICATED: u16 = 4001;
    pub const REVOKED: u16 = 4003;
    pub const SLOW_CONSUMER: u16 = 4008;
    /// An admin deactivated the account.
    pub const DEACTIVATED: u16 = 4010;

    /// The reason text sent with a close code (empty for codes without one).
    pub fn reason(code: u16) -> &'static str {
        match code {
            GOING_AWAY => "server going away",
            UNAUTHENTICATED => "not authenticated",
            REVOKED => "session revoked",
            SLOW_CONSUMER => "slow consumer: outbound queue full",
            DEACTIVATED => "account deactivated",
            TOO_BIG => "frame too large",
            INTERNAL => "internal error",
            PROTOCOL_ERROR => "protocol error",
            BAD_DATA => "text frame is not UTF-8",
            _ => "",
        }
    }
}

/// The longest `ref` a client may send.
pub const MAX_REF_CHARS: usize = 64;
/// The longest `client_id` of a send.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// The largest history page.
pub const MAX_HISTORY_LIMIT: u32 = 100;
pub const DEFAULT_HISTORY_LIMIT: u32 = 50;
/// The largest `room.list` page (public rooms; DMs come on top, on the first page).
pub const MAX_ROOM_PAGE: u32 = 100;
pub const DEFAULT_ROOM_PAGE: u32 = 50;
/// The largest `search` page.
pub const MAX_SEARCH_LIMIT: u32 = 50;
pub const DEFAULT_SEARCH_LIMIT: u32 = 20;
/// The longest `room.list` query: no room name is longer.
pub const MAX_ROOM_QUERY_CHARS: usize = 32;
/// People in a group DM, the opener included.
pub const MIN_GROUP_MEMBERS: usize = 3;
pub const MAX_GROUP_MEMBERS: usize = 8;
/// A display name (`profile.update`), in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// A status line (`profile.update`), in characters.
pub const MAX_STATUS_CHARS: usize = 140;
/// A room's topic (`room.update`), in characters.
pub const MAX_TOPIC_CHARS: usize = 250;
/// A room's description (`room.update`), in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// A kick's or ban's reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// The longest mute (`room.mute`), in minutes: 30 days.
pub const MAX_MUTE_MINUTES: u32 = 43_200;
/// `admin.audit` page size.
pub const MAX_AUDIT_PAGE: u32 = 200;
pub const DEFAULT_AUDIT_PAGE: u32 = 50;
/// The longest `room.list` cursor (`after`) the server hands out and accepts.
pub const MAX_ROOM_CURSOR_CHARS: usize = 64;
