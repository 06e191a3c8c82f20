//! The defaults and allowed ranges of every setting, and how `--help` and the README show
//! them ([`documented`]).

use std::fmt::Display;
use std::ops::RangeInclusive;

/// Every default of the server's settings, in the units of their flags: the core's from
/// `natter_core::config::defaults`, the Redis and PostgreSQL ones named from their crates.
pub mod defaults {
    pub use natter_core::config::defaults::*;
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

    pub const LISTEN: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 8080));
    pub const DATA_DIR: &str = "./natter-data";
    /// The SQLite file in the data directory when `--database` is not given.
    pub const SQLITE_FILE: &str = "natter.db";
    pub const DATABASE_POOL: usize = natter_store_sql::postgres::DEFAULT_POOL_SIZE;
    pub const BROKER: &str = "local";
    pub const REDIS_PREFIX: &str = natter_redis::DEFAULT_PREFIX;
    pub const PRESENCE_HEARTBEAT_MS: u64 = natter_redis::DEFAULT_HEARTBEAT.as_millis() as u64;
    pub const PRESENCE_EXPIRY_MS: u64 = natter_redis::DEFAULT_EXPIRY.as_millis() as u64;
    pub const SQLITE_SYNCHRONOUS: &str = "full";
    pub const WRITE_TIMEOUT_MS: u64 = 10_000;
    pub const LOG: &str = "info";
    pub const LOG_FORMAT: &str = "text";
    /// An `auth` frame is a token and a resume map: 4 KiB holds one for ~250 rooms.
    pub const MAX_PREAUTH_FRAME_BYTES: usize = 4096;
    /// Ten guesses a minute at one account, from anywhere; a person mistyping is not hurt.
    pub const LOGIN_PER_MINUTE_PER_USER: u32 = 10;
    /// Thirty sign-ins a minute from one address (a household or office behind one NAT).
    pub const LOGIN_PER_MINUTE_PER_ADDRESS: u32 = 30;
    pub const REGISTER_PER_HOUR_PER_ADDRESS: u32 = 10;
    pub const GUEST_PER_HOUR_PER_ADDRESS: u32 = 30;
    /// About 6 MiB per limit when full (an entry is under 100 bytes).
    pub const LIMITER_TABLE_SIZE: usize = 65_536;
    /// None: `X-Forwarded-For` is ignored.
    pub const TRUSTED_PROXIES: &str = "";
    pub const HTTP_HEADER_TIMEOUT_MS: u64 = 10_000;
    pub const HTTP_IDLE_TIMEOUT_MS: u64 = 60_000;
    pub const HTTP_BODY_TIMEOUT_MS: u64 = 10_000;
    /// Relay mode is off: tutorial clients are refused until an operator opts in.
    pub const RELAY: bool = false;
    pub const RELAY_ROOM: &str = "general";
    /// `/metrics` is served (on `--listen` unless `--metrics-listen` names another address).
    pub const METRICS: bool = true;
}

/// The values each numeric setting accepts, in the units of its flag: the core's from
/// `natter_core::config::ranges`, the server's here.
pub mod ranges {
    pub use natter_core::config::ranges::*;
    use std::ops::RangeInclusive;

    /// Keep nodes x pool below PostgreSQL's `max_connections`.
    pub const DATABASE_POOL: RangeInclusive<usize> = 1..=1024;
    pub const PRESENCE_HEARTBEAT_MS: RangeInclusive<u64> = 10..=60_000;
    /// It must also be longer than the heartbeat.
    pub const PRESENCE_EXPIRY_MS: RangeInclusive<u64> = 20..=600_000;
    pub const WRITE_TIMEOUT_MS: RangeInclusive<u64> = 100..=3_600_000;
    pub const AUTH_TIMEOUT_SECS: RangeInclusive<u64> = 1..=3600;
    pub const MAX_PREAUTH_FRAME_BYTES: RangeInclusive<usize> = 256..=16 * 1024 * 1024;
    /// Every account limit (sign-ins, sign-ups, guests per period): at least one.
    pub const ACCOUNT_LIMIT: RangeInclusive<u32> = 1..=1_000_000;
    /// Below 16 the table would forget attackers at once; 10M entries is about 1 GiB.
    pub const LIMITER_TABLE_SIZE: RangeInclusive<usize> = 16..=10_000_000;
    /// The header, idle and body timeouts: 100 ms to an hour.
    pub const HTTP_TIMEOUT_MS: RangeInclusive<u64> = 100..=3_600_000;
}

/// What `--help` and the README show of a setting that has a default.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingDoc {
    /// The flag, without `--`.
    pub flag: &'static str,
    /// The default, as shown.
    pub default: String,
    /// A numeric setting's allowed values, as `MIN to MAX`.
    pub allowed: Option<String>,
}

/// Every setting with a default (all but `--config` and `--web-dir`), rendered from
/// [`defaults`] and [`ranges`].
pub fn documented() -> Vec<SettingDoc> {
    fn plain(flag: &'static str, default: impl Display) -> SettingDoc {
        SettingDoc {
            flag,
            default: default.to_string(),
            allowed: None,
        }
    }
    fn numeric<T: Display>(
        flag: &'static str,
        default: T,
        range: &RangeInclusive<T>,
    ) -> SettingDoc {
        SettingDoc {
            flag,
            default: default.to_string(),
            allowed: Some(allowed(range)),
        }
    }
    use defaults as d;
    use ranges as r;
    vec![
        plain("listen", d::LISTEN),
        plain("data-dir", d::DATA_DIR),
        plain("database", format!("sqlite:<data-dir>/{}", d::SQLITE_FILE)),
        numeric("database-pool", d::DATABASE_POOL, &r::DATABASE_POOL),
        plain("broker", d::BROKER),
        plain("redis-prefix", d::REDIS_PREFIX),
        numeric(
            "presence-heartbeat-ms",
            d::PRESENCE_HEARTBEAT_MS,
            &r::PRESENCE_HEARTBEAT_MS,
        ),
        numeric(
            "presence-expiry-ms",
            d::PRESENCE_EXPIRY_MS,
            &r::PRESENCE_EXPIRY_MS,
        ),
        plain("sqlite-synchronous", d::SQLITE_SYNCHRONOUS),
        plain("allow-guests", d::ALLOW_GUESTS),
        plain("relay", d::RELAY),
        plain("relay-room", d::RELAY_ROOM),
        plain("deleted-account-messages", d::DELETED_ACCOUNT_MESSAGES),
        numeric(
            "max-message-chars",
            d::MAX_MESSAGE_CHARS,
            &r::MAX_MESSAGE_CHARS,
        ),
        numeric("max-frame-bytes", d::MAX_FRAME_BYTES, &r::MAX_FRAME_BYTES),
        numeric("rate-per-sec", d::RATE_PER_SEC, &r::RATE_PER_SEC),
        numeric("rate-burst", d::RATE_BURST, &r::RATE_BURST),
        numeric("outbound-queue", d::OUTBOUND_QUEUE, &r::OUTBOUND_QUEUE),
        numeric("resume-limit", d::RESUME_LIMIT, &r::RESUME_LIMIT),
        numeric(
            "presence-backlog",
            d::PRESENCE_BACKLOG,
            &r::PRESENCE_BACKLOG,
        ),
        numeric(
            "write-timeout-ms",
            d::WRITE_TIMEOUT_MS,
            &r::WRITE_TIMEOUT_MS,
        ),
        numeric(
            "typing-expiry-ms",
            d::TYPING_EXPIRY_MS,
            &r::TYPING_EXPIRY_MS,
        ),
        numeric("keepalive-ms", d::KEEPALIVE_MS, &r::KEEPALIVE_MS),
        numeric(
            "auth-timeout-secs",
            d::AUTH_TIMEOUT_SECS,
            &r::AUTH_TIMEOUT_SECS,
        ),
        plain("log", d::LOG),
        plain("log-format", d::LOG_FORMAT),
        numeric(
            "max-preauth-frame-bytes",
            d::MAX_PREAUTH_FRAME_BYTES,
            &r::MAX_PREAUTH_FRAME_BYTES,
        ),
        numeric("hash-queue", d::HASH_QUEUE, &r::HASH_QUEUE),
        numeric(
            "login-per-minute-per-address",
            d::LOGIN_PER_MINUTE_PER_ADDRESS,
            &r::ACCOUNT_LIMIT,
        ),
        numeric(
            "login-per-minute-per-user",
            d::LOGIN_PER_MINUTE_PER_USER,
            &r::ACCOUNT_LIMIT,
        ),
        numeric(
            "register-per-hour-per-address",
            d::REGISTER_PER_HOUR_PER_ADDRESS,
            &r::ACCOUNT_LIMIT,
        ),
        numeric(
            "guest-per-hour-per-address",
            d::GUEST_PER_HOUR_PER_ADDRESS,
            &r::ACCOUNT_LIMIT,
        ),
        numeric(
            "limiter-table-size",
            d::LIMITER_TABLE_SIZE,
            &r::LIMITER_TABLE_SIZE,
        ),
        plain("trusted-proxies", "none"),
        numeric(
            "http-header-timeout-ms",
            d::HTTP_HEADER_TIMEOUT_MS,
            &r::HTTP_TIMEOUT_MS,
        ),
        numeric(
            "http-idle-timeout-ms",
            d::HTTP_IDLE_TIMEOUT_MS,
            &r::HTTP_TIMEOUT_MS,
        ),
        numeric(
            "http-body-timeout-ms",
            d::HTTP_BODY_TIMEOUT_MS,
            &r::HTTP_TIMEOUT_MS,
        ),
        numeric(
            "session-ttl-days",
            d::SESSION_TTL_DAYS,
            &r::SESSION_TTL_DAYS,
        ),
        numeric("guest-ttl-hours", d::GUEST_TTL_HOURS, &r::GUEST_TTL_HOURS),
        numeric(
            "session-sweep-ms",
            d::SESSION_SWEEP_MS,
            &r::SESSION_SWEEP_MS,
        ),
        numeric(
            "max-rooms-per-user",
            d::MAX_ROOMS_PER_USER,
            &r::MAX_ROOMS_PER_USER,
        ),
        numeric(
            "room-create-per-minute",
            d::ROOM_CREATE_PER_MINUTE,
            &r::ROOM_CREATE_PER_MINUTE,
        ),
        numeric(
            "search-per-minute",
            d::SEARCH_PER_MINUTE,
            &r::SEARCH_PER_MINUTE,
        ),
        numeric(
            "max-bots-per-user",
            d::MAX_BOTS_PER_USER,
            &r::MAX_BOTS_PER_USER,
        ),
        numeric("api-per-minute", d::API_PER_MINUTE, &r::API_PER_MINUTE),
        numeric(
            "hash-waiting-per-address",
            d::HASH_WAITING_PER_ADDRESS,
            &r::HASH_WAITING_PER_ADDRESS,
        ),
        numeric("hash-wait-ms", d::HASH_WAIT_MS, &r::HASH_WAIT_MS),
        numeric(
            "max-reactions-per-message",
            d::MAX_REACTIONS_PER_MESSAGE,
            &r::MAX_REACTIONS_PER_MESSAGE,
        ),
        numeric(
            "max-upload-bytes",
            d::MAX_UPLOAD_BYTES,
            &r::MAX_UPLOAD_BYTES,
        ),
        numeric(
            "upload-quota-bytes",
            d::UPLOAD_QUOTA_BYTES,
            &r::UPLOAD_QUOTA_BYTES,
        ),
        numeric(
            "max-image-pixels",
            d::MAX_IMAGE_PIXELS,
            &r::MAX_IMAGE_PIXELS,
        ),
        plain("metrics", d::METRICS),
        plain("metrics-listen", "none"),
    ]
}

/// A range as the error messages, `--help` and the README show it: `MIN to MAX`.
pub(super) fn allowed<T: Display>(range: &RangeInclusive<T>) -> String {
    format!("{} to {}", range.start(), range.end())
}
