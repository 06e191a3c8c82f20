//! Errors at the core's boundaries. Every client-visible variant maps to one error code of
//! docs/protocol.md (section 8); internal details are logged, never sent to clients.

use serde::Serialize;

/// The error codes of docs/protocol.md, section 8 (WebSocket) and section 1 (HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    InvalidRequest,
    BinaryUnsupported,
    Unauthenticated,
    AlreadyAuthenticated,
    RateLimited,
    EmptyMessage,
    MessageTooLong,
    UnknownRoom,
    NotMember,
    Forbidden,
    InvalidName,
    NameTaken,
    UnknownUser,
    Internal,
    // HTTP API only
    InvalidUsername,
    WeakPassword,
    InvalidCredentials,
    GuestsDisabled,
    /// No such API endpoint.
    NotFound,
    /// HTTP: a known path, another method (405).
    MethodNotAllowed,
    /// HTTP: a request body that is not `Content-Type: application/json` (415).
    UnsupportedMediaType,
    /// The request body did not arrive in time (HTTP 408).
    RequestTimeout,
    /// A per-user quota is used up (rooms created: `max_rooms_per_user`).
    LimitReached,
    /// No message with that seq in the room (or the seq is an edit, delete or reaction).
    UnknownMessage,
    /// The message was deleted: it cannot be edited, reacted to or replied to.
    MessageDeleted,
    /// A thread reply to a thread reply (threads are one level deep).
    InvalidThread,
    /// A reaction that is not a single emoji.
    InvalidEmoji,
    /// The message carries the most distinct reactions it may.
    TooManyReactions,
    /// `message.send` names a file that is not the sender's own upload (or no file at all).
    UnknownFile,
    /// HTTP: an upload over `--max-upload-bytes` (413).
    FileTooLarge,
    /// HTTP: an upload that would take its user over `--upload-quota-bytes` (413).
    QuotaExceeded,
    /// HTTP: an image that cannot be decoded within bounds (corrupt, or too many pixels).
    InvalidImage,
    /// A join by a user banned from the room.
    Banned,
    /// A send, edit or reaction by a member muted in the room (`retry_after_ms`: until when).
    Muted,
    /// A send, edit, reaction or invitation in an archived room (read-only).
    RoomArchived,
    /// Sign-in to an account an admin deactivated.
    AccountDeactivated,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::BinaryUnsupported => "binary_unsupported",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::AlreadyAuthenticated => "already_authenticated",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::EmptyMessage => "empty_message",
            ErrorCode::MessageTooLong => "message_too_long",
            ErrorCode::UnknownRoom => "unknown_room",
            ErrorCode::NotMember => "not_member",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::UnknownUser => "unknown_user",
            ErrorCode::Internal => "internal",
            ErrorCode::InvalidUsername => "invalid_username",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::GuestsDisabled => "guests_disabled",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::LimitReached => "limit_reached",
            ErrorCode::UnknownMessage => "unknown_message",
            ErrorCode::MessageDeleted => "message_deleted",
            ErrorCode::InvalidThread => "invalid_thread",
            ErrorCode::InvalidEmoji => "invalid_emoji",
            ErrorCode::TooManyReactions => "too_many_reactions",
            ErrorCode::UnknownFile => "unknown_file",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::InvalidImage => "invalid_image",
            ErrorCode::Banned => "banned",
            ErrorCode::Muted => "muted",
            ErrorCode::RoomArchived => "room_archived",
            ErrorCode::AccountDeactivated => "account_deactivated",
        }
    }
}

/// An error a client request ends in.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ChatError {
    pub code: ErrorCode,
    /// Human-readable, safe to show to the client.
    pub message: String,
    /// For `rate_limited`: when the next request will be accepted.
    pub retry_after_ms: Option<u64>,
}

impl ChatError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ChatError {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
    /// A post by a member muted until `until`, at `now`.
    pub fn muted(until: i64, now: i64) -> Self {
        ChatError {
            retry_after_ms: Some(until.saturating_sub(now).max(0) as u64),
            ..Self::new(ErrorCode::Muted, "you are muted in this room")
        }
    }
    /// A post in an archived room.
    pub fn archived() -> Self {
        Self::new(
            ErrorCode::RoomArchived,
            "this room is archived: it is read-only",
        )
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn unknown_room(room: crate::RoomId) -> Self {
        Self::new(ErrorCode::UnknownRoom, format!("no room {room}"))
    }
    pub fn not_member(room: crate::RoomId) -> Self {
        Self::new(
            ErrorCode::NotMember,
            format!("you are not a member of room {room}"),
        )
    }
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error, try again")
    }
    /// `rate_limited`, saying in how many milliseconds to try again.
    pub fn rate_limited(message: impl Into<String>, retry_after_ms: u64) -> Self {
        ChatError {
            retry_after_ms: Some(retry_after_ms),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (a name taken).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// The backend failed (I/O, connection, corruption).
    #[error("storage backend: {0}")]
    Backend(String),
    /// The store is saturated (SQLite: its write queue is full; PostgreSQL: every pooled
    /// connection is taken and too many queries wait for one): nothing was done; retry shortly.
    #[error("the store is busy: too many writes or queries are waiting")]
    Busy,
    /// A change or thread reply the stream's state does not allow; nothing was stored.
    #[error("refused: {0:?}")]
    Refused(Refusal),
}

/// Why a store refused a change or a thread reply (checked in the same transaction that
/// would have stored it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No message with that seq in the room (or that seq is a change entry).
    UnknownMessage,
    /// The target was deleted.
    Deleted,
    /// A thread reply's parent is itself a thread reply.
    InvalidThread,
    /// A reaction beyond `max_reactions` distinct emoji.
    TooManyReactions,
    /// A message names a file that is not its sender's upload.
    UnknownFile,
    /// A room event about a user who is not a member (mute, role, kick).
    NotMember,
    /// A join by a user banned from the room.
    Banned,
    /// A post by a member muted until then (ms since the epoch).
    Muted(i64),
    /// A post in an archived room.
    Archived,
}

/// A broker failure.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker backend: {0}")]
    Backend(String),
}

/// How long a client is asked to wait when the store is saturated (`StoreError::Busy`).
const STORE_BUSY_RETRY_MS: u64 = 200;

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Refused(r) = e {
            return match r {
                Refusal::UnknownMessage => {
                    ChatError::new(ErrorCode::UnknownMessage, "no such message in this room")
                }
                Refusal::Deleted => {
                    ChatError::new(ErrorCode::MessageDeleted, "that message was deleted")
                }
                Refusal::InvalidThread => ChatError::new(
                    ErrorCode::InvalidThread,
                    "reply in the thread of the message this reply belongs to",
                ),
                Refusal::TooManyReactions => ChatError::new(
                    ErrorCode::TooManyReactions,
                    "this message has as many different reactions as it may",
                ),
                Refusal::UnknownFile => ChatError::new(
                    ErrorCode::UnknownFile,
                    "a file of this message is not one you uploaded (or it was removed)",
                ),
                Refusal::NotMember => ChatError::new(
                    ErrorCode::NotMember,
                    "that user is not a member of this room",
                ),
                Refusal::Banned => {
                    ChatError::new(ErrorCode::Banned, "you are banned from this room")
                }
                Refusal::Muted(until) => ChatError::muted(until, crate::model::now_millis()),
                Refusal::Archived => ChatError::archived(),
            };
        }
        if let StoreError::Busy = e {
            // Back-pressure, not a failure: the client is told to slow down, as by its own
            // rate limit (and clients already retry `rate_limited` by themselves).
            tracing::debug!("store busy: asking the client to retry");
            return ChatError::rate_limited(
                "the server is saturated, try again shortly",
                STORE_BUSY_RETRY_MS,
            );
        }
        tracing::error!(error = %e, "store error");
        ChatError::internal()
    }
}

impl From<BrokerError> for ChatError {
    fn from(e: BrokerError) -> Self {
        tracing::error!(error = %e, "broker error");
        ChatError::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_store_asks_the_client_to_retry_and_other_failures_are_internal() {
        let busy = ChatError::from(StoreError::Busy);
        assert_eq!(busy.code.as_str(), "rate_limited");
        assert_eq!(busy.retry_after_ms, Some(STORE_BUSY_RETRY_MS));
        let failed = ChatError::from(StoreError::Backend("disk".into()));
        assert_eq!(failed.code.as_str(), "internal");
        assert_eq!(failed.retry_after_ms, None);
    }
}
