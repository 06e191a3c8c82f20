//! How to reach Redis and how presence expires ([`RedisSettings`] and its defaults), and the
//! fixed timeouts and reconnection backoff the broker's connections use.

use std::time::Duration;

pub const DEFAULT_PREFIX: &str = "natter:";
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(5);

/// Longest wait for a Redis connection to open, or a command to answer.
pub(crate) const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection backoff of the subscriber: from the first to the last delay, doubling.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(50);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often the subscriber checks its connection with a PING.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(5);

/// How to reach Redis and how presence expires.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host[:port][/db]`.
    pub url: String,
    /// Prepended to every channel and key.
    pub prefix: String,
    /// How often a node refreshes its heartbeat key (and reaps dead nodes).
    pub heartbeat: Duration,
    /// A node whose heartbeat key is this old is dead: its users go offline.
    pub expiry: Duration,
}

impl RedisSettings {
    pub fn new(url: impl Into<String>) -> RedisSettings {
        RedisSettings {
            url: url.into(),
            prefix: DEFAULT_PREFIX.into(),
            heartbeat: DEFAULT_HEARTBEAT,
            expiry: DEFAULT_EXPIRY,
        }
    }
}
