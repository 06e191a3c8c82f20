//! Bot accounts, API tokens and incoming webhooks as plain data (docs/api.md).
//!
//! A bot is a user row with no password, owned by the registered user who made it. A bot
//! has API tokens (`Authorization: Bearer nbt_...`), each optionally scoped to a list of
//! rooms; a room's incoming webhook is a token of its own bot whose secret is in the hook's
//! URL (`/hooks/nwh_...`). Like session tokens, API tokens and hook secrets are stored only
//! as their SHA-256 (`crate::accounts::token_hash`): they are shown once, at creation.

use crate::model::{Millis, RoomId, User, UserId};
use serde::{Deserialize, Serialize};

/// Where an API token's text starts: tells it from a session token at a glance.
pub const API_TOKEN_PREFIX: &str = "nbt_";
/// Where a webhook secret's text starts.
pub const HOOK_SECRET_PREFIX: &str = "nwh_";
/// Longest name of a token or a webhook, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 64;
/// The most rooms one token's scope may list.
pub const MAX_TOKEN_ROOMS: usize = 100;

/// An API token's or a webhook's id (public; the token itself is never stored).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TokenId(pub i64);

impl std::fmt::Display for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A bot account as stored: its user and who owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bot {
    pub user: User,
    /// The registered user who made it (and manages it, with the server admins).
    pub owner: UserId,
    pub created_at: Millis,
}

/// An API token or a webhook as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: TokenId,
    /// The bot it acts as.
    pub bot: UserId,
    pub name: String,
    /// The rooms it may act in; empty: every room the bot is a member of.
    pub rooms: Vec<RoomId>,
    /// For a webhook: its room (the token then works only at `/hooks/...`).
    pub hook_room: Option<RoomId>,
    /// Who made it.
    pub created_by: UserId,
    pub created_at: Millis,
    /// The last recorded use (written at most once a minute).
    pub last_used_at: Option<Millis>,
}

/// An API token or webhook to store.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub bot: UserId,
    pub name: String,
    /// SHA-256 of the token (`crate::accounts::token_hash`).
    pub token_hash: Vec<u8>,
    pub rooms: Vec<RoomId>,
    pub hook_room: Option<RoomId>,
    pub created_by: UserId,
    pub created_at: Millis,
}

/// Which tokens `Store::api_tokens` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokensOf {
    /// A bot's API tokens (not its webhooks).
    Bot(UserId),
    /// A room's webhooks.
    Hooks(RoomId),
}

/// The rooms of a token's scope as stored: ids joined by commas ("" for none).
pub fn rooms_to_text(rooms: &[RoomId]) -> String {
    rooms
        .iter()
        .map(|r| r.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The rooms of a token's scope from their stored text (ids that do not parse are skipped).
pub fn rooms_from_text(text: &str) -> Vec<RoomId> {
    text.split(',')
        .filter_map(|s| s.trim().parse::<i64>().ok())
        .map(RoomId)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_text() {
        let rooms = vec![RoomId(3), RoomId(12)];
        assert_eq!(rooms_to_text(&rooms), "3,12");
        assert_eq!(rooms_from_text("3,12"), rooms);
        assert!(rooms_from_text("").is_empty());
    }
}
