//! The core's settings, and the one place their defaults live: [`defaults`] holds every
//! default value, `CoreConfig::default` and the server's configuration (flags, environment,
//! file, README table) all read them from there.

use std::time::Duration;

/// Every default of the core's settings, in the units the server's flags use.
pub mod defaults {
    pub const MAX_MESSAGE_CHARS: usize = 4000;
    pub const MAX_FRAME_BYTES: usize = 64 * 1024;
    pub const RATE_PER_SEC: f64 = 20.0;
    pub const RATE_BURST: f64 = 40.0;
    pub const OUTBOUND_QUEUE: usize = 1024;
    pub const TYPING_EXPIRY_MS: u64 = 6000;
    pub const TYPING_THROTTLE_MS: u64 = 2000;
    pub const GAP_WAIT_MS: u64 = 100;
    pub const ALLOW_GUESTS: bool = false;
    pub const KEEPALIVE_MS: u64 = 30_000;
    pub const RESUME_LIMIT: u64 = 1000;
    pub const PRESENCE_BACKLOG: usize = 4096;
    pub const AUTH_TIMEOUT_SECS: u64 = 10;
}

/// The core's settings (the server's configuration fills them).
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Longest message body, in Unicode scalar values.
    pub max_message_chars: usize,
    /// Largest frame a transport accepts (reported to clients in `auth`).
    pub max_frame_bytes: usize,
    /// Requests per second per connection (token bucket refill).
    pub rate_per_sec: f64,
    /// Requests a connection may make at once (token bucket size).
    pub rate_burst: f64,
    /// Frames queued per connection before it is closed as a slow consumer.
    pub outbound_queue: usize,
    /// A typing state ends by itself after this long without `active: true`.
    pub typing_expiry: Duration,
    /// Repeated `active: true` are forwarded at most this often.
    pub typing_throttle: Duration,
    /// How long a node waits for a missing seq before sessions fill it from the store.
    pub gap_wait: Duration,
    /// Whether nickname-only guests may join.
    pub allow_guests: bool,
    /// How often every session's outbox yields `OutboxItem::Keepalive` (one sweep over the
    /// node's sessions, not a timer per connection); transports ping and check for silence.
    pub keepalive: Duration,
    /// The most messages `auth.resume` replays in one room; a client further behind gets the
    /// room in the reply's `reset` instead (and loads `history`).
    pub resume_limit: u64,
    /// Presence changes the node keeps for sessions that have not read them; a session
    /// further behind gets a `presence_reset` (who is online now) instead.
    pub presence_backlog: usize,
    /// Time a new connection has to authenticate before it is closed with 4001.
    pub auth_timeout: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            max_message_chars: defaults::MAX_MESSAGE_CHARS,
            max_frame_bytes: defaults::MAX_FRAME_BYTES,
            rate_per_sec: defaults::RATE_PER_SEC,
            rate_burst: defaults::RATE_BURST,
            outbound_queue: defaults::OUTBOUND_QUEUE,
            typing_expiry: Duration::from_millis(defaults::TYPING_EXPIRY_MS),
            typing_throttle: Duration::from_millis(defaults::TYPING_THROTTLE_MS),
            gap_wait: Duration::from_millis(defaults::GAP_WAIT_MS),
            allow_guests: defaults::ALLOW_GUESTS,
            keepalive: Duration::from_millis(defaults::KEEPALIVE_MS),
            resume_limit: defaults::RESUME_LIMIT,
            presence_backlog: defaults::PRESENCE_BACKLOG,
            auth_timeout: Duration::from_secs(defaults::AUTH_TIMEOUT_SECS),
        }
    }
}
