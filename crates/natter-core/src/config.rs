//! The core's settings, and the one place their defaults and allowed values live:
//! [`defaults`] holds every default value and [`ranges`] the values each setting accepts;
//! `CoreConfig::default` and the server's configuration (flags, environment, file, `--help`,
//! README table) all read them from there.

use std::ops::RangeInclusive;
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
    /// What happens to a deleted account's messages: `keep` (shown from "deleted user") or
    /// `remove` (each deleted, as its author would).
    pub const DELETED_ACCOUNT_MESSAGES: &str = "keep";
    pub const KEEPALIVE_MS: u64 = 30_000;
    pub const RESUME_LIMIT: u64 = 1000;
    pub const PRESENCE_BACKLOG: usize = 4096;
    pub const AUTH_TIMEOUT_SECS: u64 = 10;
    /// Password hashes (sign-up, sign-in) that may wait for one of the two running slots;
    /// about 1.5 s of argon2id work on two cores.
    pub const HASH_QUEUE: usize = 64;
    /// A session unused this long is expired; each use restarts the window.
    pub const SESSION_TTL_DAYS: u64 = 30;
    /// A guest inactive this long is expired and their name freed.
    pub const GUEST_TTL_HOURS: u64 = 24;
    /// How often the node sweeps expired sessions and guests.
    pub const SESSION_SWEEP_MS: u64 = 60_000;
    pub const MAX_ROOMS_PER_USER: u32 = 100;
    pub const ROOM_CREATE_PER_MINUTE: u32 = 10;
    /// Searches one user may make per minute: a person searches a few times a minute at
    /// most; a script that loops is slowed to what the database can take beside chat.
    pub const SEARCH_PER_MINUTE: u32 = 60;
    /// Bots one registered user may own (docs/api.md).
    pub const MAX_BOTS_PER_USER: u32 = 10;
    /// Requests one API token (or a session token on the HTTP API) may make per minute.
    pub const API_PER_MINUTE: u32 = 600;
    /// Password hashes one client address may have waiting; two let a person retry a typo.
    pub const HASH_WAITING_PER_ADDRESS: usize = 2;
    /// The longest a password hash waits for a slot before it is refused: a flood's waiters
    /// get a 429 in bounded time rather than holding their requests open.
    pub const HASH_WAIT_MS: u64 = 5000;
    /// Distinct emoji one message may carry (each from any number of people).
    pub const MAX_REACTIONS_PER_MESSAGE: u32 = 20;
    /// The largest upload, in bytes (25 MiB).
    pub const MAX_UPLOAD_BYTES: u64 = 25 * 1024 * 1024;
    /// Bytes of uploads one user may keep (1 GiB).
    pub const UPLOAD_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;
    /// The most pixels an uploaded image may decode to (width x height).
    pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;
}

/// The values each setting the server exposes accepts, in the units of [`defaults`]. The
/// server refuses to start with a value outside them; it does not clamp.
pub mod ranges {
    use super::RangeInclusive;

    /// Up to 100k characters (a message must still fit in a frame: see `MAX_FRAME_BYTES`).
    pub const MAX_MESSAGE_CHARS: RangeInclusive<usize> = 1..=100_000;
    /// 1 KiB (room for any request but a message) to 16 MiB.
    pub const MAX_FRAME_BYTES: RangeInclusive<usize> = 1024..=16 * 1024 * 1024;
    /// One request per 1000 s to a million per second; NaN and infinity are outside.
    pub const RATE_PER_SEC: RangeInclusive<f64> = 0.001..=1_000_000.0;
    /// At least one request, or a connection could never send anything.
    pub const RATE_BURST: RangeInclusive<f64> = 1.0..=1_000_000.0;
    /// Fewer than 16 frames closes connections on an ordinary burst of replies and events.
    pub const OUTBOUND_QUEUE: RangeInclusive<usize> = 16..=1_000_000;
    /// Below 100 ms the typing sweep (an eighth of this, at least 20 ms) cannot keep up.
    pub const TYPING_EXPIRY_MS: RangeInclusive<u64> = 100..=600_000;
    /// 100 ms to an hour; a connection silent 2.5 times this long is closed.
    pub const KEEPALIVE_MS: RangeInclusive<u64> = 100..=3_600_000;
    /// At least one message, or every resume would be a reset.
    pub const RESUME_LIMIT: RangeInclusive<u64> = 1..=1_000_000;
    /// One change kept at least (tests use a handful to force `presence_reset`).
    pub const PRESENCE_BACKLOG: RangeInclusive<usize> = 1..=1_000_000;
    /// At least one waiting; 100k waiting is minutes of argon2id work.
    pub const HASH_QUEUE: RangeInclusive<usize> = 1..=100_000;
    /// A day to ten years.
    pub const SESSION_TTL_DAYS: RangeInclusive<u64> = 1..=3650;
    /// An hour to a year.
    pub const GUEST_TTL_HOURS: RangeInclusive<u64> = 1..=8760;
    /// 100 ms (tests) to an hour.
    pub const SESSION_SWEEP_MS: RangeInclusive<u64> = 100..=3_600_000;
    /// At least one room, or a user could create none.
    pub const MAX_ROOMS_PER_USER: RangeInclusive<u32> = 1..=1_000_000;
    /// At least one creation a minute (the bucket holds this many, refilled over a minute).
    pub const ROOM_CREATE_PER_MINUTE: RangeInclusive<u32> = 1..=1_000_000;
    /// At least one search a minute (the bucket holds this many, refilled over a minute).
    pub const SEARCH_PER_MINUTE: RangeInclusive<u32> = 1..=1_000_000;
    pub const MAX_BOTS_PER_USER: RangeInclusive<u32> = 1..=10_000;
    pub const API_PER_MINUTE: RangeInclusive<u32> = 1..=1_000_000;
    /// At least one, at most the largest queue.
    pub const HASH_WAITING_PER_ADDRESS: RangeInclusive<usize> = 1..=100_000;
    /// 100 ms to ten minutes.
    pub const HASH_WAIT_MS: RangeInclusive<u64> = 100..=600_000;
    /// At least one, or nobody could react; a thousand is a wall of emoji.
    pub const MAX_REACTIONS_PER_MESSAGE: RangeInclusive<u32> = 1..=1000;
    /// 1 KiB to 4 GiB.
    pub const MAX_UPLOAD_BYTES: RangeInclusive<u64> = 1024..=4 * 1024 * 1024 * 1024;
    /// 1 KiB to 1 TiB.
    pub const UPLOAD_QUOTA_BYTES: RangeInclusive<u64> = 1024..=1024 * 1024 * 1024 * 1024;
    /// A 100 x 100 image at least; at most 400 megapixels (20000 x 20000).
    pub const MAX_IMAGE_PIXELS: RangeInclusive<u64> = 10_000..=400_000_000;
}

/// A session's `last_used_at` (and its user's `last_active`) is written at most this often:
/// a use within a minute of the last recorded one costs no write.
pub const SESSION_TOUCH_INTERVAL: Duration = Duration::from_secs(60);

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
    /// Password hashes that may wait for a hashing slot; past this, sign-up and sign-in are
    /// refused at once with `rate_limited`.
    pub hash_queue: usize,
    /// A session unused this long no longer works (sliding: each use restarts it).
    pub session_ttl: Duration,
    /// A guest inactive this long is expired: sessions deleted, name freed.
    pub guest_ttl: Duration,
    /// How often the node deletes expired sessions and guests, and records that its open
    /// connections are in use.
    pub session_sweep: Duration,
    /// The clock expiry is measured by (tests move it forward).
    pub clock: crate::clock::Clock,
    /// Public rooms one user may create, ever (`room.create` then fails `limit_reached`).
    pub max_rooms_per_user: u32,
    /// Rooms one user may create per minute on one node: a token bucket that holds this
    /// many and refills at this rate over a minute (over it: `rate_limited`).
    pub room_create_per_minute: u32,
    /// Searches (`search`, `GET /api/search`) one user may make per minute on one node: a
    /// token bucket that holds this many and refills over a minute (over it: `rate_limited`).
    pub search_per_minute: u32,
    /// Bots one registered user may own (`POST /api/bots` then fails `limit_reached`).
    pub max_bots_per_user: u32,
    /// Requests one API token, webhook or session token may make per minute on the HTTP
    /// API for scripts and bots (`GET /api/rooms`, `/api/rooms/{id}/messages`, `/hooks/...`): a bucket of this many,
    /// refilled over a minute (over it: `rate_limited`).
    pub api_per_minute: u32,
    /// Password hashes one client key (address) may have waiting; more are refused at once.
    pub hash_waiting_per_key: usize,
    /// The longest a password hash waits for a slot; then it is refused (`rate_limited`).
    pub hash_wait: Duration,
    /// Distinct emoji one message may carry; one more is refused `too_many_reactions`.
    pub max_reactions_per_message: u32,
    /// The largest upload, in bytes (`file_too_large` past it).
    pub max_upload_bytes: u64,
    /// Bytes of uploads one user may keep (`quota_exceeded` past it).
    pub upload_quota_bytes: u64,
    /// The most pixels an uploaded image may have (`invalid_image` past it).
    pub max_image_pixels: u64,
    /// Whether an account deleted by its owner has its messages deleted too (else they stay,
    /// shown from "deleted user").
    pub remove_deleted_accounts_messages: bool,
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
            remove_deleted_accounts_messages: false,
            keepalive: Duration::from_millis(defaults::KEEPALIVE_MS),
            resume_limit: defaults::RESUME_LIMIT,
            presence_backlog: defaults::PRESENCE_BACKLOG,
            auth_timeout: Duration::from_secs(defaults::AUTH_TIMEOUT_SECS),
            hash_queue: defaults::HASH_QUEUE,
            session_ttl: Duration::from_secs(defaults::SESSION_TTL_DAYS * 86_400),
            guest_ttl: Duration::from_secs(defaults::GUEST_TTL_HOURS * 3600),
            session_sweep: Duration::from_millis(defaults::SESSION_SWEEP_MS),
            clock: crate::clock::Clock::system(),
            max_rooms_per_user: defaults::MAX_ROOMS_PER_USER,
            room_create_per_minute: defaults::ROOM_CREATE_PER_MINUTE,
            search_per_minute: defaults::SEARCH_PER_MINUTE,
            max_bots_per_user: defaults::MAX_BOTS_PER_USER,
            api_per_minute: defaults::API_PER_MINUTE,
            hash_waiting_per_key: defaults::HASH_WAITING_PER_ADDRESS,
            hash_wait: Duration::from_millis(defaults::HASH_WAIT_MS),
            max_reactions_per_message: defaults::MAX_REACTIONS_PER_MESSAGE,
            max_upload_bytes: defaults::MAX_UPLOAD_BYTES,
            upload_quota_bytes: defaults::UPLOAD_QUOTA_BYTES,
            max_image_pixels: defaults::MAX_IMAGE_PIXELS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{defaults, ranges};

    #[test]
    fn every_default_is_in_its_range() {
        assert!(ranges::MAX_MESSAGE_CHARS.contains(&defaults::MAX_MESSAGE_CHARS));
        assert!(ranges::MAX_FRAME_BYTES.contains(&defaults::MAX_FRAME_BYTES));
        assert!(ranges::RATE_PER_SEC.contains(&defaults::RATE_PER_SEC));
        assert!(ranges::RATE_BURST.contains(&defaults::RATE_BURST));
        assert!(ranges::OUTBOUND_QUEUE.contains(&defaults::OUTBOUND_QUEUE));
        assert!(ranges::TYPING_EXPIRY_MS.contains(&defaults::TYPING_EXPIRY_MS));
        assert!(ranges::KEEPALIVE_MS.contains(&defaults::KEEPALIVE_MS));
        assert!(ranges::RESUME_LIMIT.contains(&defaults::RESUME_LIMIT));
        assert!(ranges::PRESENCE_BACKLOG.contains(&defaults::PRESENCE_BACKLOG));
        assert!(ranges::HASH_QUEUE.contains(&defaults::HASH_QUEUE));
        assert!(ranges::SESSION_TTL_DAYS.contains(&defaults::SESSION_TTL_DAYS));
        assert!(ranges::GUEST_TTL_HOURS.contains(&defaults::GUEST_TTL_HOURS));
        assert!(ranges::SESSION_SWEEP_MS.contains(&defaults::SESSION_SWEEP_MS));
        assert!(ranges::MAX_ROOMS_PER_USER.contains(&defaults::MAX_ROOMS_PER_USER));
        assert!(ranges::ROOM_CREATE_PER_MINUTE.contains(&defaults::ROOM_CREATE_PER_MINUTE));
        assert!(ranges::SEARCH_PER_MINUTE.contains(&defaults::SEARCH_PER_MINUTE));
        assert!(ranges::MAX_BOTS_PER_USER.contains(&defaults::MAX_BOTS_PER_USER));
        assert!(ranges::API_PER_MINUTE.contains(&defaults::API_PER_MINUTE));
        assert!(ranges::HASH_WAITING_PER_ADDRESS.contains(&defaults::HASH_WAITING_PER_ADDRESS));
        assert!(ranges::HASH_WAIT_MS.contains(&defaults::HASH_WAIT_MS));
        assert!(ranges::MAX_UPLOAD_BYTES.contains(&defaults::MAX_UPLOAD_BYTES));
        assert!(ranges::UPLOAD_QUOTA_BYTES.contains(&defaults::UPLOAD_QUOTA_BYTES));
        assert!(ranges::MAX_IMAGE_PIXELS.contains(&defaults::MAX_IMAGE_PIXELS));
        assert!(ranges::MAX_REACTIONS_PER_MESSAGE.contains(&defaults::MAX_REACTIONS_PER_MESSAGE));
    }
}
