//! Natter's configuration: one struct, filled from (lowest to highest priority) built-in
//! defaults, an optional TOML file (`--config`), `NATTER_*` environment variables and flags.
//! Every default lives in [`defaults`] and every numeric setting's allowed values in
//! [`ranges`] (the core's own are re-exported from `natter_core::config`): `resolve` reads
//! them, `--help` shows them (from [`documented`]), and tests check the README's
//! configuration table against them. A value outside its range is refused, whichever layer
//! it came from, never clamped.

use clap::{CommandFactory, FromArgMatches, Parser};
use serde::Deserialize;
use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

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
    ]
}

/// A range as the error messages, `--help` and the README show it: `MIN to MAX`.
fn allowed<T: Display>(range: &RangeInclusive<T>) -> String {
    format!("{} to {}", range.start(), range.end())
}

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
}

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
    pub log: String,
    pub log_json: bool,
}

impl Settings {
    /// Flags and environment, with the TOML file (if any) beneath them. Exits, as clap does,
    /// on `--help`, `--version` or a flag that does not parse.
    pub fn load() -> Result<Settings, String> {
        let matches = Settings::cli().get_matches();
        let cli = Settings::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.with_file()
    }

    /// The command line: the derived one, with each setting's default and allowed values
    /// appended to its help from [`documented`], so `--help` cannot disagree with them.
    pub fn cli() -> clap::Command {
        let docs = documented();
        Settings::command().mut_args(|arg| {
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
            log_format
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
        let log_json = match self.log_format.as_deref().unwrap_or(d::LOG_FORMAT) {
            "text" => false,
            "json" => true,
            other => return Err(format!("--log-format must be text or json, not {other}")),
        };
        let millis = |flag, value, default, range| {
            bounded(flag, value, default, range).map(Duration::from_millis)
        };
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
            allow_guests: self.allow_guests.unwrap_or(d::ALLOW_GUESTS),
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
            log: self.log.unwrap_or_else(|| d::LOG.into()),
            log_json,
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
            auth_timeout: self.auth_timeout,
            ..natter_core::CoreConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn layers_flags_over_file_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("natter.toml");
        std::fs::write(
            &file,
            "rate_burst = 7\nmax_message_chars = 10\nlisten = \"127.0.0.1:9999\"\n",
        )
        .expect("write");
        let cli = Settings::try_parse_from([
            "natter",
            "--config",
            file.to_str().expect("utf8"),
            "--max-message-chars",
            "20",
        ])
        .expect("parse");
        let config = cli.with_file().expect("file").resolve().expect("resolve");
        assert_eq!(config.max_message_chars, 20, "flag beats file");
        assert_eq!(config.rate_burst, 7.0, "file beats default");
        assert_eq!(config.rate_per_sec, 20.0, "default");
        assert_eq!(config.listen.port(), 9999);
    }

    #[test]
    fn rejects_unknown_file_keys_and_bad_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("natter.toml");
        std::fs::write(&file, "no_such_setting = 1\n").expect("write");
        let cli = Settings::try_parse_from(["natter", "--config", file.to_str().expect("utf8")])
            .expect("parse");
        assert!(cli.with_file().is_err());
        assert!(resolve_args(&["--log-format", "xml"]).is_err());
        assert!(resolve_args(&["--sqlite-synchronous", "off"]).is_err());
    }

    /// The example configurations in deploy/ are valid and mean what they say.
    #[test]
    fn deploy_examples_resolve() {
        let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
        let load = |file: &str| {
            let cli = Settings::try_parse_from(["natter", "--config", &format!("{deploy}/{file}")])
                .expect("parse");
            cli.with_file().expect(file).resolve().expect(file)
        };
        let single = load("natter.toml");
        assert!(matches!(single.database, Database::Sqlite(_)));
        assert_eq!(single.broker, BrokerKind::Local);
        let node = load("natter-cluster.toml");
        assert!(matches!(node.database, Database::Postgres(_)));
        assert!(matches!(node.broker, BrokerKind::Redis(_)));
        assert_eq!(node.presence_expiry, Duration::from_secs(5));
    }

    #[test]
    fn cluster_urls_and_presence_settings_are_checked() {
        let parse = |args: &[&str]| {
            let mut all = vec!["natter"];
            all.extend_from_slice(args);
            Settings::try_parse_from(all).expect("parse").resolve()
        };
        let c = parse(&[
            "--database",
            "postgresql://u@h/db",
            "--broker",
            "redis://h:1",
        ])
        .expect("valid");
        assert_eq!(c.database, Database::Postgres("postgresql://u@h/db".into()));
        assert_eq!(c.broker, BrokerKind::Redis("redis://h:1".into()));
        assert_eq!(c.redis_prefix, "natter:");
        assert!(parse(&["--broker", "nats://h"]).is_err());
        assert!(parse(&["--database", "mysql://h"]).is_err());
        assert!(parse(&[
            "--presence-heartbeat-ms",
            "500",
            "--presence-expiry-ms",
            "500"
        ])
        .is_err());
        // URLs may hold passwords: they stay out of Debug output (and so out of logs).
        let secret = parse(&["--database", "postgres://u:hunter2@h/db"]).expect("valid");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    /// A flag's row of a Markdown table (`| `--flag` | ...`), as its trimmed cells.
    fn table_rows(markdown: &str) -> std::collections::HashMap<String, Vec<String>> {
        markdown
            .lines()
            .filter(|line| line.starts_with("| `--"))
            .map(|line| {
                let cells: Vec<String> = line
                    .trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect();
                (cells[0].trim_matches('`').to_string(), cells)
            })
            .collect()
    }

    fn doc_file(path: &str) -> String {
        let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&full).expect(path)
    }

    /// The README documents every setting, by flag and environment variable, with the default
    /// and the allowed range that `defaults` and `ranges` hold.
    #[test]
    fn readme_table_matches_every_setting() {
        let rows = table_rows(&doc_file("README.md"));
        let docs = documented();
        for arg in Settings::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            let row = rows
                .get(&format!("--{long}"))
                .unwrap_or_else(|| panic!("README lacks --{long}"));
            if let Some(env) = arg.get_env() {
                let env = format!("`{}`", env.to_string_lossy());
                assert_eq!(row[1], env, "README's environment variable of --{long}");
            }
            let Some(doc) = docs.iter().find(|d| d.flag == long) else {
                assert!(
                    long == "config" || long == "web-dir",
                    "--{long} has no entry in documented()"
                );
                continue;
            };
            assert_eq!(
                row[2],
                format!("`{}`", doc.default),
                "README's default of --{long}"
            );
            if let Some(allowed) = &doc.allowed {
                assert_eq!(&row[3], allowed, "README's allowed values of --{long}");
            }
        }
    }

    /// docs/deployment.md repeats the cluster settings' defaults: they are the same.
    #[test]
    fn deployment_guide_shows_the_defaults() {
        let rows = table_rows(&doc_file("docs/deployment.md"));
        let docs = documented();
        for flag in [
            "database-pool",
            "redis-prefix",
            "presence-heartbeat-ms",
            "presence-expiry-ms",
        ] {
            let doc = docs.iter().find(|d| d.flag == flag).expect("documented");
            let row = rows.get(&format!("--{flag}")).expect(flag);
            assert_eq!(row[1], format!("`{}`", doc.default), "--{flag}");
        }
    }

    /// `--help` shows each default and range, generated from `documented()`; no field's doc
    /// comment carries a hand-written default that could drift.
    #[test]
    fn help_shows_each_default_and_range() {
        for arg in Settings::command().get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(!help.contains("[default:"), "hand-written default: {help}");
        }
        let cli = Settings::cli();
        for doc in documented() {
            let arg = cli
                .get_arguments()
                .find(|a| a.get_long() == Some(doc.flag))
                .unwrap_or_else(|| panic!("documented() names --{} which is no flag", doc.flag));
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(
                help.contains(&format!("[default: {}]", doc.default)),
                "{help}"
            );
            if let Some(allowed) = &doc.allowed {
                assert!(help.contains(&format!("[allowed: {allowed}]")), "{help}");
            }
        }
    }

    /// The defaults resolve to the constants, and the core's part to `CoreConfig::default`.
    #[test]
    fn defaults_come_from_the_constants() {
        let config = Config::defaults();
        assert_eq!(config.listen, defaults::LISTEN);
        assert_eq!(config.data_dir, PathBuf::from(defaults::DATA_DIR));
        assert_eq!(
            config.database,
            Database::Sqlite(PathBuf::from(defaults::DATA_DIR).join(defaults::SQLITE_FILE))
        );
        assert_eq!(config.database_pool, defaults::DATABASE_POOL);
        assert_eq!(config.broker, BrokerKind::Local);
        assert_eq!(config.redis_prefix, defaults::REDIS_PREFIX);
        assert_eq!(config.presence_heartbeat, natter_redis::DEFAULT_HEARTBEAT);
        assert_eq!(config.presence_expiry, natter_redis::DEFAULT_EXPIRY);
        assert_eq!(
            config.write_timeout,
            Duration::from_millis(defaults::WRITE_TIMEOUT_MS)
        );
        assert_eq!(
            config.auth_timeout,
            Duration::from_secs(defaults::AUTH_TIMEOUT_SECS)
        );
        assert_eq!(config.log, defaults::LOG);
        assert!(!config.log_json);
        let (core, expected) = (config.core(), natter_core::CoreConfig::default());
        assert_eq!(format!("{core:?}"), format!("{expected:?}"));
    }

    /// A numeric setting's range as the tests probe it.
    struct Bounds {
        flag: &'static str,
        /// Just below the range, and just above it.
        outside: [&'static str; 2],
        /// The range's edges.
        min: &'static str,
        max: &'static str,
        /// Other flags the edges need (the presence expiry must exceed the heartbeat).
        with: &'static [&'static str],
    }

    /// Every flag `documented()` gives a range must be here (`every_range_is_tested`).
    const BOUNDS: &[Bounds] = &[
        Bounds {
            flag: "database-pool",
            outside: ["0", "1025"],
            min: "1",
            max: "1024",
            with: &[],
        },
        Bounds {
            flag: "presence-heartbeat-ms",
            outside: ["9", "60001"],
            min: "10",
            max: "60000",
            with: &["--presence-expiry-ms", "600000"],
        },
        Bounds {
            flag: "presence-expiry-ms",
            outside: ["19", "600001"],
            min: "20",
            max: "600000",
            with: &["--presence-heartbeat-ms", "10"],
        },
        Bounds {
            flag: "max-message-chars",
            outside: ["0", "100001"],
            min: "1",
            max: "100000",
            with: &[],
        },
        Bounds {
            flag: "max-frame-bytes",
            outside: ["1023", "16777217"],
            min: "1024",
            max: "16777216",
            with: &[],
        },
        Bounds {
            flag: "rate-per-sec",
            outside: ["0", "1000001"],
            min: "0.001",
            max: "1000000",
            with: &[],
        },
        Bounds {
            flag: "rate-burst",
            outside: ["0", "1000001"],
            min: "1",
            max: "1000000",
            with: &[],
        },
        Bounds {
            flag: "outbound-queue",
            outside: ["15", "1000001"],
            min: "16",
            max: "1000000",
            with: &[],
        },
        Bounds {
            flag: "resume-limit",
            outside: ["0", "1000001"],
            min: "1",
            max: "1000000",
            with: &[],
        },
        Bounds {
            flag: "presence-backlog",
            outside: ["0", "1000001"],
            min: "1",
            max: "1000000",
            with: &[],
        },
        Bounds {
            flag: "write-timeout-ms",
            outside: ["99", "3600001"],
            min: "100",
            max: "3600000",
            with: &[],
        },
        Bounds {
            flag: "typing-expiry-ms",
            outside: ["99", "600001"],
            min: "100",
            max: "600000",
            with: &[],
        },
        Bounds {
            flag: "keepalive-ms",
            outside: ["99", "3600001"],
            min: "100",
            max: "3600000",
            with: &[],
        },
        Bounds {
            flag: "auth-timeout-secs",
            outside: ["0", "3601"],
            min: "1",
            max: "3600",
            with: &[],
        },
    ];

    fn resolve_args(args: &[&str]) -> Result<Config, String> {
        let mut all = vec!["natter"];
        all.extend_from_slice(args);
        Settings::try_parse_from(all).expect("parse").resolve()
    }

    #[test]
    fn every_range_is_tested() {
        for doc in documented() {
            if let Some(allowed) = doc.allowed {
                let row = BOUNDS.iter().find(|b| b.flag == doc.flag).expect(doc.flag);
                assert_eq!(
                    allowed,
                    format!("{} to {}", row.min, row.max),
                    "--{}",
                    doc.flag
                );
            }
        }
    }

    #[test]
    fn out_of_range_flags_are_refused_with_flag_value_and_range() {
        for Bounds {
            flag,
            outside,
            min,
            max,
            ..
        } in BOUNDS
        {
            for bad in *outside {
                let err = resolve_args(&[&format!("--{flag}"), bad]).expect_err(flag);
                assert_eq!(
                    err,
                    format!("--{flag} {bad} is out of range: allowed {min} to {max}")
                );
            }
        }
    }

    #[test]
    fn range_edges_are_accepted() {
        for Bounds {
            flag,
            min,
            max,
            with,
            ..
        } in BOUNDS
        {
            for edge in [*min, *max] {
                let flag_arg = format!("--{flag}");
                let mut args = vec![flag_arg.as_str(), edge];
                args.extend_from_slice(with);
                if let Err(e) = resolve_args(&args) {
                    panic!("--{flag} {edge}: {e}");
                }
            }
        }
    }

    #[test]
    fn rates_that_are_not_numbers_are_refused() {
        for bad in ["NaN", "inf", "-inf"] {
            let err = resolve_args(&[&format!("--rate-per-sec={bad}")]).expect_err(bad);
            assert!(err.starts_with("--rate-per-sec "), "{err}");
            assert!(
                err.ends_with("is out of range: allowed 0.001 to 1000000"),
                "{err}"
            );
        }
        assert!(resolve_args(&["--rate-burst=NaN"]).is_err());
    }

    #[test]
    fn presence_expiry_must_exceed_the_heartbeat() {
        let err = resolve_args(&[
            "--presence-heartbeat-ms",
            "500",
            "--presence-expiry-ms",
            "500",
        ])
        .expect_err("equal");
        assert_eq!(
            err,
            "--presence-expiry-ms 500 must be longer than --presence-heartbeat-ms 500"
        );
        assert!(resolve_args(&[
            "--presence-heartbeat-ms",
            "500",
            "--presence-expiry-ms",
            "501"
        ])
        .is_ok());
    }

    /// Values from the `--config` file meet the same ranges, with the same message.
    #[test]
    fn out_of_range_file_values_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("natter.toml");
        for Bounds {
            flag,
            outside,
            min,
            max,
            ..
        } in BOUNDS
        {
            for bad in *outside {
                let key = flag.replace('-', "_");
                std::fs::write(&file, format!("{key} = {bad}\n")).expect("write");
                let cli =
                    Settings::try_parse_from(["natter", "--config", file.to_str().expect("utf8")])
                        .expect("parse");
                let err = cli.with_file().expect("file").resolve().expect_err(flag);
                assert_eq!(
                    err,
                    format!("--{flag} {bad} is out of range: allowed {min} to {max}")
                );
            }
        }
    }

    /// A flag in range overrides an out-of-range file value (layering is per setting, and the
    /// range applies to the value that wins).
    #[test]
    fn the_winning_layer_is_the_one_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("natter.toml");
        std::fs::write(&file, "rate_burst = 0\n").expect("write");
        let cli = Settings::try_parse_from([
            "natter",
            "--config",
            file.to_str().expect("utf8"),
            "--rate-burst",
            "5",
        ])
        .expect("parse");
        let config = cli.with_file().expect("file").resolve().expect("resolve");
        assert_eq!(config.rate_burst, 5.0);
    }
}
