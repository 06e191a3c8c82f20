//! Natter's configuration: one struct, filled from (lowest to highest priority) built-in
//! defaults, an optional TOML file (`--config`), `NATTER_*` environment variables and flags.
//! Every default lives in [`defaults`] and every numeric setting's allowed values in
//! [`ranges`] (the core's own are re-exported from `natter_core::config`): `resolve` reads
//! them, `--help` shows them (from [`documented`]), and tests check the README's
//! configuration table against them. A value outside its range is refused, whichever layer
//! it came from, never clamped.
//!
//! Files: `defaults_doc.rs` (defaults, ranges and how they are documented), this file (the
//! settings, their layers and `resolve`), `tests.rs`. This file is long (~700 lines) because
//! it holds every setting three times in a row (flag with its doc, resolved field, `resolve`
//! line): splitting those apart would put one setting in three files.

mod defaults_doc;
#[cfg(test)]
mod tests;

use defaults_doc::allowed;
pub use defaults_doc::{defaults, documented, ranges, SettingDoc};

use clap::{CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;
use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

/// `value`, or `default` when unset, if `range` holds it; else an error naming the flag, the
/// value and the range (e.g. `--rate-burst 0 is out of range: allowed 1 to 1000000`), whether
/// the value came from a flag, the environment or the file. NaN is in no range.
fn bounded<T: PartialOrd + Display>(
    flag: &str,
    value: Option<T>,
    default: T,
    range: &RangeInclusive<T>,
) -> Result<T, String> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "--{flag} {value} is out of range: allowed {}",
            allowed(range)
        ))
    }
}

/// Every setting, each optional so layers can be merged. Field docs are the `--help` text;
/// `Settings::cli` appends each default and range to it from [`documented`].
#[derive(Debug, Clone, Default, Parser, Deserialize)]
#[command(name = "natter", version, about = "Natter: a real-time chat server")]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// What to do: nothing (serve) or an operator's command (`crate::admin`). Not a setting:
    /// not in the file, not layered.
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<crate::admin::Command>,
    /// TOML file with any of these settings (names as the flags, with `_` for `-`).
    #[arg(long, env = "NATTER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "NATTER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database.
    #[arg(long, env = "NATTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Storage: `sqlite:PATH` or `postgres://user[:password]@host[:port]/db` (several nodes
    /// share one PostgreSQL database; it is created if missing).
    #[arg(long, env = "NATTER_DATABASE")]
    pub database: Option<String>,
    /// PostgreSQL connections per node.
    #[arg(long, env = "NATTER_DATABASE_POOL")]
    pub database_pool: Option<usize>,
    /// Event broker between nodes: `local` (in-process, one node) or `redis://host[:port][/db]`.
    #[arg(long, env = "NATTER_BROKER")]
    pub broker: Option<String>,
    /// Prefix of every Redis channel and key, so clusters can share a Redis.
    #[arg(long, env = "NATTER_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// How often a node refreshes its presence heartbeat in Redis, in ms.
    #[arg(long, env = "NATTER_PRESENCE_HEARTBEAT_MS")]
    pub presence_heartbeat_ms: Option<u64>,
    /// A node silent this long is dead and its users go offline, in ms; longer than the
    /// heartbeat.
    #[arg(long, env = "NATTER_PRESENCE_EXPIRY_MS")]
    pub presence_expiry_ms: Option<u64>,
    /// SQLite durability: `full` (fsync every commit) or `normal`.
    #[arg(long, env = "NATTER_SQLITE_SYNCHRONOUS")]
    pub sqlite_synchronous: Option<String>,
    /// Serve the web client from this directory instead of the embedded copy.
    #[arg(long, env = "NATTER_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Allow nickname-only guests (`POST /api/guest`).
    #[arg(long, env = "NATTER_ALLOW_GUESTS", num_args = 0..=1, default_missing_value = "true")]
    pub allow_guests: Option<bool>,
    /// Relay mode: Socket.IO sockets without a token and plain WebSockets at `/` become
    /// guests whose events are stored and relayed as messages (docs/socketio.md, "Relay
    /// mode"). Needs `--allow-guests`.
    #[arg(long, env = "NATTER_RELAY", num_args = 0..=1, default_missing_value = "true")]
    pub relay: Option<bool>,
    /// The public room relay connections start in (made if absent).
    #[arg(long, env = "NATTER_RELAY_ROOM")]
    pub relay_room: Option<String>,
    /// What an account deleted by its owner leaves: `keep` its messages (shown from "deleted
    /// user") or `remove` them.
    #[arg(long, env = "NATTER_DELETED_ACCOUNT_MESSAGES")]
    pub deleted_account_messages: Option<String>,
    /// Longest message, in characters.
    #[arg(long, env = "NATTER_MAX_MESSAGE_CHARS")]
    pub max_message_chars: Option<usize>,
    /// Largest WebSocket frame, in bytes.
    #[arg(long, env = "NATTER_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Requests per second per connection.
    #[arg(long, env = "NATTER_RATE_PER_SEC")]
    pub rate_per_sec: Option<f64>,
    /// Requests a connection may burst.
    #[arg(long, env = "NATTER_RATE_BURST")]
    pub rate_burst: Option<f64>,
    /// Outbound frames queued per connection before it is closed with 4008.
    #[arg(long, env = "NATTER_OUTBOUND_QUEUE")]
    pub outbound_queue: Option<usize>,
    /// The most messages a reconnecting client's `resume` replays per room; further behind, the
    /// room is reset and the client loads its history instead.
    #[arg(long, env = "NATTER_RESUME_LIMIT")]
    pub resume_limit: Option<u64>,
    /// Presence changes kept per server for connections that have not read them yet; a
    /// connection further behind gets `presence_reset` (who is online now).
    #[arg(long, env = "NATTER_PRESENCE_BACKLOG")]
    pub presence_backlog: Option<usize>,
    /// A socket write that takes longer than this drops the connection, in ms.
    #[arg(long, env = "NATTER_WRITE_TIMEOUT_MS")]
    pub write_timeout_ms: Option<u64>,
    /// Typing state ends by itself after this many ms.
    #[arg(long, env = "NATTER_TYPING_EXPIRY_MS")]
    pub typing_expiry_ms: Option<u64>,
    /// The server pings every WebSocket connection this often, in ms, and closes one silent
    /// for 2.5 times as long.
    #[arg(long, env = "NATTER_KEEPALIVE_MS")]
    pub keepalive_ms: Option<u64>,
    /// Seconds a new connection has to authenticate.
    #[arg(long, env = "NATTER_AUTH_TIMEOUT_SECS")]
    pub auth_timeout_secs: Option<u64>,
    /// Log filter, as RUST_LOG.
    #[arg(long, env = "NATTER_LOG")]
    pub log: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "NATTER_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Largest WebSocket frame before the connection has authenticated, in bytes (at most
    /// `--max-frame-bytes`); larger closes with 1009 before it is read.
    #[arg(long, env = "NATTER_MAX_PREAUTH_FRAME_BYTES")]
    pub max_preauth_frame_bytes: Option<usize>,
    /// Password hashes (sign-up, sign-in) that may wait for a hashing slot, served fewest
    /// recent hashes per client address first; past this they are refused at once with 429
    /// `rate_limited`.
    #[arg(long, env = "NATTER_HASH_QUEUE")]
    pub hash_queue: Option<usize>,
    /// Sign-ins (`POST /api/login`) per minute from one client address (IPv6: one /64).
    #[arg(long, env = "NATTER_LOGIN_PER_MINUTE_PER_ADDRESS")]
    pub login_per_minute_per_address: Option<u32>,
    /// Sign-ins per minute for one username, from any address.
    #[arg(long, env = "NATTER_LOGIN_PER_MINUTE_PER_USER")]
    pub login_per_minute_per_user: Option<u32>,
    /// Sign-ups (`POST /api/register`) per hour from one client address.
    #[arg(long, env = "NATTER_REGISTER_PER_HOUR_PER_ADDRESS")]
    pub register_per_hour_per_address: Option<u32>,
    /// Guests created (`POST /api/guest`) per hour from one client address.
    #[arg(long, env = "NATTER_GUEST_PER_HOUR_PER_ADDRESS")]
    pub guest_per_hour_per_address: Option<u32>,
    /// Addresses (or usernames) each account limit remembers; past it the idle ones are
    /// forgotten first, then the least recently seen.
    #[arg(long, env = "NATTER_LIMITER_TABLE_SIZE")]
    pub limiter_table_size: Option<usize>,
    /// Reverse proxies whose `X-Forwarded-For` is believed: comma-separated IPs or CIDRs
    /// (`10.0.0.0/8, ::1`).
    #[arg(long, env = "NATTER_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Time an HTTP connection has to send a request's head, from its first byte (or from
    /// the connection's start), in ms; then it is closed.
    #[arg(long, env = "NATTER_HTTP_HEADER_TIMEOUT_MS")]
    pub http_header_timeout_ms: Option<u64>,
    /// Time a keep-alive HTTP connection may wait for its next request, in ms.
    #[arg(long, env = "NATTER_HTTP_IDLE_TIMEOUT_MS")]
    pub http_idle_timeout_ms: Option<u64>,
    /// Time a JSON endpoint waits for the whole request body, in ms (then 408).
    #[arg(long, env = "NATTER_HTTP_BODY_TIMEOUT_MS")]
    pub http_body_timeout_ms: Option<u64>,
    /// A session (sign-in token) unused this many days expires; each use restarts the window.
    #[arg(long, env = "NATTER_SESSION_TTL_DAYS")]
    pub session_ttl_days: Option<u64>,
    /// A guest inactive this many hours expires: signed out, name freed.
    #[arg(long, env = "NATTER_GUEST_TTL_HOURS")]
    pub guest_ttl_hours: Option<u64>,
    /// How often expired sessions and guests are swept, in ms.
    #[arg(long, env = "NATTER_SESSION_SWEEP_MS")]
    pub session_sweep_ms: Option<u64>,
    /// Public rooms one user may create, ever; past it `room.create` fails with
    /// `limit_reached`.
    #[arg(long, env = "NATTER_MAX_ROOMS_PER_USER")]
    pub max_rooms_per_user: Option<u32>,
    /// Rooms one user may create per minute on one server (a bucket of this many, refilled
    /// over a minute); past it `room.create` fails with `rate_limited`.
    #[arg(long, env = "NATTER_ROOM_CREATE_PER_MINUTE")]
    pub room_create_per_minute: Option<u32>,
    /// Searches (`search` and `GET /api/search`) one user may make per minute on one server
    /// (a bucket of this many, refilled over a minute); past it they fail with `rate_limited`.
    #[arg(long, env = "NATTER_SEARCH_PER_MINUTE")]
    pub search_per_minute: Option<u32>,
    /// Bots one registered user may own (`POST /api/bots`); past it, 409 `limit_reached`.
    #[arg(long, env = "NATTER_MAX_BOTS_PER_USER")]
    pub max_bots_per_user: Option<u32>,
    /// Requests one API token, webhook or session token may make per minute on the HTTP API
    /// for scripts and bots (`GET /api/rooms`, `/api/rooms/{id}/messages`, `/hooks/...`; a bucket of this many, refilled
    /// over a minute); past it, 429 `rate_limited`.
    #[arg(long, env = "NATTER_API_PER_MINUTE")]
    pub api_per_minute: Option<u32>,
    /// Password hashes one client address (IPv6: one /64) may have waiting for a hashing
    /// slot; more are refused at once with 429 `rate_limited`.
    #[arg(long, env = "NATTER_HASH_WAITING_PER_ADDRESS")]
    pub hash_waiting_per_address: Option<usize>,
    /// The longest a password hash waits for a hashing slot, in milliseconds; then it is
    /// refused with 429 `rate_limited`.
    #[arg(long, env = "NATTER_HASH_WAIT_MS")]
    pub hash_wait_ms: Option<u64>,
    /// Different emoji one message may carry (each from any number of people); one more is
    /// refused with `too_many_reactions`.
    #[arg(long, env = "NATTER_MAX_REACTIONS_PER_MESSAGE")]
    pub max_reactions_per_message: Option<u32>,
    /// The largest upload, in bytes; a larger one is refused while it streams in (413
    /// `file_too_large`, nothing kept, the connection closed).
    #[arg(long, env = "NATTER_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// Bytes of uploads one user may keep; past it an upload is refused (413
    /// `quota_exceeded`).
    #[arg(long, env = "NATTER_UPLOAD_QUOTA_BYTES")]
    pub upload_quota_bytes: Option<u64>,
    /// The most pixels (width x height) an uploaded image may have; a larger one is refused
    /// (400 `invalid_image`) before it is decoded.
    #[arg(long, env = "NATTER_MAX_IMAGE_PIXELS")]
    pub max_image_pixels: Option<u64>,
    /// Serve Prometheus metrics at `GET /metrics` (`--metrics false` turns them off).
    #[arg(long, env = "NATTER_METRICS", num_args = 0..=1, default_missing_value = "true")]
    pub metrics: Option<bool>,
    /// Serve `/metrics` on this address instead of `--listen` (then the main address answers
    /// it with 404): a private address, since the counts tell how busy the server is.
    #[arg(long, env = "NATTER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// The settings an operator's command (`natter admin`, `natter backup`) reads: which store,
/// and logging.
const COMMAND_SETTINGS: &[&str] = &[
    "config",
    "data-dir",
    "database",
    "database-pool",
    "sqlite-synchronous",
    "log",
    "log-format",
];

/// Fills every unset field of `self` from `lower`.
macro_rules! layer {
    ($upper:expr, $lower:expr, $($field:ident),*) => {
        $( if $upper.$field.is_none() { $upper.$field = $lower.$field.take(); } )*
    };
}

/// Where messages are stored.
#[derive(Clone, PartialEq)]
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            // The URL may hold a password.
            Database::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

/// How events travel between nodes.
#[derive(Clone, PartialEq)]
pub enum BrokerKind {
    /// In-process: one node.
    Local,
    /// A `redis://` URL.
    Redis(String),
}

impl std::fmt::Debug for BrokerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrokerKind::Local => f.write_str("Local"),
            BrokerKind::Redis(_) => f.write_str("Redis(..)"),
        }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Database,
    /// PostgreSQL connections per node.
    pub database_pool: usize,
    pub broker: BrokerKind,
    /// Prefix of Redis channels and keys.
    pub redis_prefix: String,
    /// How often a node refreshes its presence heartbeat (Redis broker).
    pub presence_heartbeat: Duration,
    /// A node silent this long is dead; its users go offline (Redis broker).
    pub presence_expiry: Duration,
    pub sqlite_synchronous: natter_store_sql::Synchronous,
    pub web_dir: Option<PathBuf>,
    pub allow_guests: bool,
    /// Relay mode (`--relay`): tutorial clients as guests.
    pub relay: bool,
    /// The public room relay connections start in.
    pub relay_room: String,
    /// `--deleted-account-messages remove`.
    pub remove_deleted_accounts_messages: bool,
    pub max_message_chars: usize,
    pub max_frame_bytes: usize,
    pub rate_per_sec: f64,
    pub rate_burst: f64,
    pub outbound_queue: usize,
    pub resume_limit: u64,
    pub presence_backlog: usize,
    pub write_timeout: Duration,
    pub typing_expiry: Duration,
    pub keepalive: Duration,
    pub auth_timeout: Duration,
    pub session_ttl: Duration,
    pub guest_ttl: Duration,
    pub session_sweep: Duration,
    /// The clock session and guest expiry read (not a setting: tests move it forward).
    pub clock: natter_core::Clock,
    pub log: String,
    pub log_json: bool,
    /// The frame limit of a `/ws` connection until it has authenticated (the smaller of this
    /// and `max_frame_bytes` applies).
    pub max_preauth_frame_bytes: usize,
    /// Password hashes that may wait for a hashing slot.
    pub hash_queue: usize,
    /// Account endpoint limits (docs/protocol.md section 1), each a count per period.
    pub login_per_minute_per_address: u32,
    pub login_per_minute_per_user: u32,
    pub register_per_hour_per_address: u32,
    pub guest_per_hour_per_address: u32,
    /// Keys (addresses, usernames) each account limit remembers at most.
    pub limiter_table_size: usize,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::http::client::IpNet>,
    /// A request head must arrive in this long (from its first byte, or the connection's
    /// start).
    pub http_header_timeout: Duration,
    /// A keep-alive connection waits this long for its next request.
    pub http_idle_timeout: Duration,
    /// A JSON endpoint waits this long for the request body.
    pub http_body_timeout: Duration,
    pub max_rooms_per_user: u32,
    pub room_create_per_minute: u32,
    pub search_per_minute: u32,
    pub max_bots_per_user: u32,
    pub api_per_minute: u32,
    /// Password hashes one client address may have waiting.
    pub hash_waiting_per_address: usize,
    /// The longest a password hash waits for a slot.
    pub hash_wait: Duration,
    pub max_reactions_per_message: u32,
    pub max_upload_bytes: u64,
    pub upload_quota_bytes: u64,
    pub max_image_pixels: u64,
    /// Whether `/metrics` is served.
    pub metrics: bool,
    /// Where `/metrics` is served instead of `listen` (None: on `listen`).
    pub metrics_listen: Option<SocketAddr>,
}

impl Settings {
    /// Flags and environment, with the TOML file (if any) beneath them. Exits, as clap does,
    /// on `--help`, `--version` or a flag that does not parse.
    pub fn load() -> Result<Settings, String> {
        let matches = Settings::cli().get_matches_from(Settings::serve_args(std::env::args_os()));
        let cli = Settings::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.with_file()
    }

    /// The command line with a leading `serve` dropped: `natter serve ARGS` is `natter ARGS`,
    /// every setting included (the `serve` subcommand itself takes only the few settings an
    /// operator's command shares; this keeps it a true alias).
    pub fn serve_args(
        args: impl IntoIterator<Item = std::ffi::OsString>,
    ) -> Vec<std::ffi::OsString> {
        let mut args: Vec<_> = args.into_iter().collect();
        if args.get(1).is_some_and(|a| a == "serve") {
            args.remove(1);
        }
        args
    }

    /// The command line: the derived one, with each setting's default and allowed values
    /// appended to its help from [`documented`], so `--help` cannot disagree with them. The
    /// settings that say which store to open (and how to log) are accepted after an
    /// operator's command too (`natter admin list-users --data-dir /srv/natter`).
    pub fn cli() -> clap::Command {
        let docs = documented();
        Settings::command().mut_args(|arg| {
            let arg = if arg
                .get_long()
                .is_some_and(|long| COMMAND_SETTINGS.contains(&long))
            {
                arg.global(true)
            } else {
                arg
            };
            let Some(doc) = docs.iter().find(|d| Some(d.flag) == arg.get_long()) else {
                return arg;
            };
            let mut help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            help.push_str(&format!(" [default: {}]", doc.default));
            if let Some(allowed) = &doc.allowed {
                help.push_str(&format!(" [allowed: {allowed}]"));
            }
            arg.help(help)
        })
    }

    /// Layers the `--config` file (if named) beneath these settings.
    pub fn with_file(mut self) -> Result<Settings, String> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut file: Settings =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        layer!(
            self,
            file,
            listen,
            data_dir,
            database,
            database_pool,
            broker,
            redis_prefix,
            presence_heartbeat_ms,
            presence_expiry_ms,
            sqlite_synchronous,
            web_dir,
            allow_guests,
            relay,
            relay_room,
            deleted_account_messages,
            max_message_chars,
            max_frame_bytes,
            rate_per_sec,
            rate_burst,
            outbound_queue,
            resume_limit,
            presence_backlog,
            write_timeout_ms,
            typing_expiry_ms,
            keepalive_ms,
            auth_timeout_secs,
            log,
            log_format,
            max_preauth_frame_bytes,
            hash_queue,
            login_per_minute_per_address,
            login_per_minute_per_user,
            register_per_hour_per_address,
            guest_per_hour_per_address,
            limiter_table_size,
            trusted_proxies,
            http_header_timeout_ms,
            http_idle_timeout_ms,
            http_body_timeout_ms,
            session_ttl_days,
            guest_ttl_hours,
            session_sweep_ms,
            max_rooms_per_user,
            room_create_per_minute,
            search_per_minute,
            max_bots_per_user,
            api_per_minute,
            hash_waiting_per_address,
            hash_wait_ms,
            max_reactions_per_message,
            max_upload_bytes,
            upload_quota_bytes,
            max_image_pixels,
            metrics,
            metrics_listen
        );
        Ok(self)
    }

    /// Applies the defaults and refuses a value outside its range (see [`bounded`]).
    pub fn resolve(self) -> Result<Config, String> {
        use defaults as d;
        use ranges as r;
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from(d::DATA_DIR));
        let database = match self.database.as_deref() {
            None => Database::Sqlite(data_dir.join(d::SQLITE_FILE)),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(url.to_string())
            }
            Some(url) => match url.strip_prefix("sqlite:") {
                Some(path) if !path.is_empty() => Database::Sqlite(PathBuf::from(path)),
                _ => {
                    return Err(
                        "unsupported --database (use sqlite:PATH or postgres://...)".to_string()
                    )
                }
            },
        };
        let broker = match self.broker.as_deref().unwrap_or(d::BROKER) {
            "local" => BrokerKind::Local,
            url if url.starts_with("redis://") => BrokerKind::Redis(url.to_string()),
            _ => return Err("unsupported --broker (use local or redis://...)".to_string()),
        };
        let heartbeat_ms = bounded(
            "presence-heartbeat-ms",
            self.presence_heartbeat_ms,
            d::PRESENCE_HEARTBEAT_MS,
            &r::PRESENCE_HEARTBEAT_MS,
        )?;
        let expiry_ms = bounded(
            "presence-expiry-ms",
            self.presence_expiry_ms,
            d::PRESENCE_EXPIRY_MS,
            &r::PRESENCE_EXPIRY_MS,
        )?;
        if expiry_ms <= heartbeat_ms {
            return Err(format!(
                "--presence-expiry-ms {expiry_ms} must be longer than \
                 --presence-heartbeat-ms {heartbeat_ms}"
            ));
        }
        let sqlite_synchronous = self
            .sqlite_synchronous
            .as_deref()
            .unwrap_or(d::SQLITE_SYNCHRONOUS)
            .parse()?;
        let remove_deleted_accounts_messages = match self
            .deleted_account_messages
            .as_deref()
            .unwrap_or(d::DELETED_ACCOUNT_MESSAGES)
        {
            "keep" => false,
            "remove" => true,
            other => {
                return Err(format!(
                    "--deleted-account-messages must be keep or remove, not {other}"
                ))
            }
        };
        let log_json = match self.log_format.as_deref().unwrap_or(d::LOG_FORMAT) {
            "text" => false,
            "json" => true,
            other => return Err(format!("--log-format must be text or json, not {other}")),
        };
        let millis = |flag, value, default, range| {
            bounded(flag, value, default, range).map(Duration::from_millis)
        };
        let trusted_proxies = crate::http::client::parse_nets(
            self.trusted_proxies
                .as_deref()
                .unwrap_or(d::TRUSTED_PROXIES),
        )
        .map_err(|e| format!("--trusted-proxies: {e}"))?;
        let allow_guests = self.allow_guests.unwrap_or(d::ALLOW_GUESTS);
        let relay = self.relay.unwrap_or(d::RELAY);
        if relay && !allow_guests {
            return Err("--relay needs --allow-guests: relay clients are guests".to_string());
        }
        let relay_room = self.relay_room.unwrap_or_else(|| d::RELAY_ROOM.into());
        if !natter_core::accounts::valid_name(&relay_room) {
            return Err(format!(
                "--relay-room {relay_room:?} is not a room name (1-32 letters, digits, _ - .)"
            ));
        }
        Ok(Config {
            listen: self.listen.unwrap_or(d::LISTEN),
            data_dir,
            database,
            database_pool: bounded(
                "database-pool",
                self.database_pool,
                d::DATABASE_POOL,
                &r::DATABASE_POOL,
            )?,
            broker,
            redis_prefix: self.redis_prefix.unwrap_or_else(|| d::REDIS_PREFIX.into()),
            presence_heartbeat: Duration::from_millis(heartbeat_ms),
            presence_expiry: Duration::from_millis(expiry_ms),
            sqlite_synchronous,
            web_dir: self.web_dir,
            allow_guests,
            relay,
            relay_room,
            remove_deleted_accounts_messages,
            max_message_chars: bounded(
                "max-message-chars",
                self.max_message_chars,
                d::MAX_MESSAGE_CHARS,
                &r::MAX_MESSAGE_CHARS,
            )?,
            max_frame_bytes: bounded(
                "max-frame-bytes",
                self.max_frame_bytes,
                d::MAX_FRAME_BYTES,
                &r::MAX_FRAME_BYTES,
            )?,
            rate_per_sec: bounded(
                "rate-per-sec",
                self.rate_per_sec,
                d::RATE_PER_SEC,
                &r::RATE_PER_SEC,
            )?,
            rate_burst: bounded("rate-burst", self.rate_burst, d::RATE_BURST, &r::RATE_BURST)?,
            outbound_queue: bounded(
                "outbound-queue",
                self.outbound_queue,
                d::OUTBOUND_QUEUE,
                &r::OUTBOUND_QUEUE,
            )?,
            resume_limit: bounded(
                "resume-limit",
                self.resume_limit,
                d::RESUME_LIMIT,
                &r::RESUME_LIMIT,
            )?,
            presence_backlog: bounded(
                "presence-backlog",
                self.presence_backlog,
                d::PRESENCE_BACKLOG,
                &r::PRESENCE_BACKLOG,
            )?,
            write_timeout: millis(
                "write-timeout-ms",
                self.write_timeout_ms,
                d::WRITE_TIMEOUT_MS,
                &r::WRITE_TIMEOUT_MS,
            )?,
            typing_expiry: millis(
                "typing-expiry-ms",
                self.typing_expiry_ms,
                d::TYPING_EXPIRY_MS,
                &r::TYPING_EXPIRY_MS,
            )?,
            keepalive: millis(
                "keepalive-ms",
                self.keepalive_ms,
                d::KEEPALIVE_MS,
                &r::KEEPALIVE_MS,
            )?,
            auth_timeout: Duration::from_secs(bounded(
                "auth-timeout-secs",
                self.auth_timeout_secs,
                d::AUTH_TIMEOUT_SECS,
                &r::AUTH_TIMEOUT_SECS,
            )?),
            session_ttl: Duration::from_secs(
                bounded(
                    "session-ttl-days",
                    self.session_ttl_days,
                    d::SESSION_TTL_DAYS,
                    &r::SESSION_TTL_DAYS,
                )? * 86_400,
            ),
            guest_ttl: Duration::from_secs(
                bounded(
                    "guest-ttl-hours",
                    self.guest_ttl_hours,
                    d::GUEST_TTL_HOURS,
                    &r::GUEST_TTL_HOURS,
                )? * 3600,
            ),
            session_sweep: millis(
                "session-sweep-ms",
                self.session_sweep_ms,
                d::SESSION_SWEEP_MS,
                &r::SESSION_SWEEP_MS,
            )?,
            clock: natter_core::Clock::system(),
            log: self.log.unwrap_or_else(|| d::LOG.into()),
            log_json,
            max_preauth_frame_bytes: bounded(
                "max-preauth-frame-bytes",
                self.max_preauth_frame_bytes,
                d::MAX_PREAUTH_FRAME_BYTES,
                &r::MAX_PREAUTH_FRAME_BYTES,
            )?,
            hash_queue: bounded("hash-queue", self.hash_queue, d::HASH_QUEUE, &r::HASH_QUEUE)?,
            login_per_minute_per_address: bounded(
                "login-per-minute-per-address",
                self.login_per_minute_per_address,
                d::LOGIN_PER_MINUTE_PER_ADDRESS,
                &r::ACCOUNT_LIMIT,
            )?,
            login_per_minute_per_user: bounded(
                "login-per-minute-per-user",
                self.login_per_minute_per_user,
                d::LOGIN_PER_MINUTE_PER_USER,
                &r::ACCOUNT_LIMIT,
            )?,
            register_per_hour_per_address: bounded(
                "register-per-hour-per-address",
                self.register_per_hour_per_address,
                d::REGISTER_PER_HOUR_PER_ADDRESS,
                &r::ACCOUNT_LIMIT,
            )?,
            guest_per_hour_per_address: bounded(
                "guest-per-hour-per-address",
                self.guest_per_hour_per_address,
                d::GUEST_PER_HOUR_PER_ADDRESS,
                &r::ACCOUNT_LIMIT,
            )?,
            limiter_table_size: bounded(
                "limiter-table-size",
                self.limiter_table_size,
                d::LIMITER_TABLE_SIZE,
                &r::LIMITER_TABLE_SIZE,
            )?,
            trusted_proxies,
            http_header_timeout: millis(
                "http-header-timeout-ms",
                self.http_header_timeout_ms,
                d::HTTP_HEADER_TIMEOUT_MS,
                &r::HTTP_TIMEOUT_MS,
            )?,
            http_idle_timeout: millis(
                "http-idle-timeout-ms",
                self.http_idle_timeout_ms,
                d::HTTP_IDLE_TIMEOUT_MS,
                &r::HTTP_TIMEOUT_MS,
            )?,
            http_body_timeout: millis(
                "http-body-timeout-ms",
                self.http_body_timeout_ms,
                d::HTTP_BODY_TIMEOUT_MS,
                &r::HTTP_TIMEOUT_MS,
            )?,
            max_rooms_per_user: bounded(
                "max-rooms-per-user",
                self.max_rooms_per_user,
                d::MAX_ROOMS_PER_USER,
                &r::MAX_ROOMS_PER_USER,
            )?,
            room_create_per_minute: bounded(
                "room-create-per-minute",
                self.room_create_per_minute,
                d::ROOM_CREATE_PER_MINUTE,
                &r::ROOM_CREATE_PER_MINUTE,
            )?,
            search_per_minute: bounded(
                "search-per-minute",
                self.search_per_minute,
                d::SEARCH_PER_MINUTE,
                &r::SEARCH_PER_MINUTE,
            )?,
            max_bots_per_user: bounded(
                "max-bots-per-user",
                self.max_bots_per_user,
                d::MAX_BOTS_PER_USER,
                &r::MAX_BOTS_PER_USER,
            )?,
            api_per_minute: bounded(
                "api-per-minute",
                self.api_per_minute,
                d::API_PER_MINUTE,
                &r::API_PER_MINUTE,
            )?,
            hash_waiting_per_address: bounded(
                "hash-waiting-per-address",
                self.hash_waiting_per_address,
                d::HASH_WAITING_PER_ADDRESS,
                &r::HASH_WAITING_PER_ADDRESS,
            )?,
            hash_wait: millis(
                "hash-wait-ms",
                self.hash_wait_ms,
                d::HASH_WAIT_MS,
                &r::HASH_WAIT_MS,
            )?,
            max_reactions_per_message: bounded(
                "max-reactions-per-message",
                self.max_reactions_per_message,
                d::MAX_REACTIONS_PER_MESSAGE,
                &r::MAX_REACTIONS_PER_MESSAGE,
            )?,
            max_upload_bytes: bounded(
                "max-upload-bytes",
                self.max_upload_bytes,
                d::MAX_UPLOAD_BYTES,
                &r::MAX_UPLOAD_BYTES,
            )?,
            upload_quota_bytes: bounded(
                "upload-quota-bytes",
                self.upload_quota_bytes,
                d::UPLOAD_QUOTA_BYTES,
                &r::UPLOAD_QUOTA_BYTES,
            )?,
            max_image_pixels: bounded(
                "max-image-pixels",
                self.max_image_pixels,
                d::MAX_IMAGE_PIXELS,
                &r::MAX_IMAGE_PIXELS,
            )?,
            metrics: self.metrics.unwrap_or(d::METRICS),
            metrics_listen: self.metrics_listen,
        })
    }
}

impl Config {
    /// The defaults, as `natter` with no flags would run.
    pub fn defaults() -> Config {
        match Settings::default().resolve() {
            Ok(c) => c,
            Err(e) => unreachable!("defaults are valid: {e}"),
        }
    }

    /// The chat core's part of the configuration.
    pub fn core(&self) -> natter_core::CoreConfig {
        natter_core::CoreConfig {
            max_message_chars: self.max_message_chars,
            max_frame_bytes: self.max_frame_bytes,
            rate_per_sec: self.rate_per_sec,
            rate_burst: self.rate_burst,
            outbound_queue: self.outbound_queue,
            resume_limit: self.resume_limit,
            presence_backlog: self.presence_backlog,
            typing_expiry: self.typing_expiry,
            keepalive: self.keepalive,
            allow_guests: self.allow_guests,
            remove_deleted_accounts_messages: self.remove_deleted_accounts_messages,
            auth_timeout: self.auth_timeout,
            hash_queue: self.hash_queue,
            session_ttl: self.session_ttl,
            guest_ttl: self.guest_ttl,
            session_sweep: self.session_sweep,
            clock: self.clock.clone(),
            max_rooms_per_user: self.max_rooms_per_user,
            room_create_per_minute: self.room_create_per_minute,
            search_per_minute: self.search_per_minute,
            max_bots_per_user: self.max_bots_per_user,
            api_per_minute: self.api_per_minute,
            hash_waiting_per_key: self.hash_waiting_per_address,
            hash_wait: self.hash_wait,
            max_reactions_per_message: self.max_reactions_per_message,
            max_upload_bytes: self.max_upload_bytes,
            upload_quota_bytes: self.upload_quota_bytes,
            max_image_pixels: self.max_image_pixels,
            ..natter_core::CoreConfig::default()
        }
    }
}
