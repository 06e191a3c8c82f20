//! Natter's configuration: one struct, filled from (lowest to highest priority) built-in
//! defaults, an optional TOML file (`--config`), `NATTER_*` environment variables and flags.
//! The README's configuration table is checked against this file by a test.

use clap::Parser;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Every setting, each optional so layers can be merged. Field docs are the `--help` text.
#[derive(Debug, Clone, Default, Parser, Deserialize)]
#[command(name = "natter", version, about = "Natter: a real-time chat server")]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// TOML file with any of these settings (names as the flags, with `_` for `-`).
    #[arg(long, env = "NATTER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port.
    #[arg(long, env = "NATTER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database [default: ./natter-data].
    #[arg(long, env = "NATTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Storage: `sqlite:PATH` or `postgres://user[:password]@host[:port]/db` (several nodes
    /// share one PostgreSQL database; it is created if missing) [default: sqlite:<data-dir>/natter.db].
    #[arg(long, env = "NATTER_DATABASE")]
    pub database: Option<String>,
    /// PostgreSQL connections per node [default: 16].
    #[arg(long, env = "NATTER_DATABASE_POOL")]
    pub database_pool: Option<usize>,
    /// Event broker between nodes: `local` (in-process, one node) or `redis://host[:port][/db]`
    /// [default: local].
    #[arg(long, env = "NATTER_BROKER")]
    pub broker: Option<String>,
    /// Prefix of every Redis channel and key, so clusters can share a Redis [default: natter:].
    #[arg(long, env = "NATTER_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// How often a node refreshes its presence heartbeat in Redis, in ms [default: 1000].
    #[arg(long, env = "NATTER_PRESENCE_HEARTBEAT_MS")]
    pub presence_heartbeat_ms: Option<u64>,
    /// A node silent this long is dead and its users go offline, in ms [default: 5000].
    #[arg(long, env = "NATTER_PRESENCE_EXPIRY_MS")]
    pub presence_expiry_ms: Option<u64>,
    /// SQLite durability: `full` (fsync every commit) or `normal` [default: full].
    #[arg(long, env = "NATTER_SQLITE_SYNCHRONOUS")]
    pub sqlite_synchronous: Option<String>,
    /// Serve the web client from this directory instead of the embedded copy.
    #[arg(long, env = "NATTER_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Allow nickname-only guests (`POST /api/guest`) [default: false].
    #[arg(long, env = "NATTER_ALLOW_GUESTS", num_args = 0..=1, default_missing_value = "true")]
    pub allow_guests: Option<bool>,
    /// Longest message, in characters [default: 4000].
    #[arg(long, env = "NATTER_MAX_MESSAGE_CHARS")]
    pub max_message_chars: Option<usize>,
    /// Largest WebSocket frame, in bytes [default: 65536].
    #[arg(long, env = "NATTER_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Requests per second per connection [default: 20].
    #[arg(long, env = "NATTER_RATE_PER_SEC")]
    pub rate_per_sec: Option<f64>,
    /// Requests a connection may burst [default: 40].
    #[arg(long, env = "NATTER_RATE_BURST")]
    pub rate_burst: Option<f64>,
    /// Outbound frames queued per connection before it is closed with 4008 [default: 1024].
    #[arg(long, env = "NATTER_OUTBOUND_QUEUE")]
    pub outbound_queue: Option<usize>,
    /// The most messages a reconnecting client's `resume` replays per room; further behind, the
    /// room is reset and the client loads its history instead [default: 1000].
    #[arg(long, env = "NATTER_RESUME_LIMIT")]
    pub resume_limit: Option<u64>,
    /// Presence changes kept per server for connections that have not read them yet; a
    /// connection further behind gets `presence_reset` (who is online now) [default: 4096].
    #[arg(long, env = "NATTER_PRESENCE_BACKLOG")]
    pub presence_backlog: Option<usize>,
    /// A socket write that takes longer than this drops the connection, in ms [default: 10000].
    #[arg(long, env = "NATTER_WRITE_TIMEOUT_MS")]
    pub write_timeout_ms: Option<u64>,
    /// Typing state ends by itself after this many ms [default: 6000].
    #[arg(long, env = "NATTER_TYPING_EXPIRY_MS")]
    pub typing_expiry_ms: Option<u64>,
    /// The server pings every WebSocket connection this often, in ms, and closes one silent
    /// for 2.5 times as long [default: 30000].
    #[arg(long, env = "NATTER_KEEPALIVE_MS")]
    pub keepalive_ms: Option<u64>,
    /// Seconds a new connection has to authenticate [default: 10].
    #[arg(long, env = "NATTER_AUTH_TIMEOUT_SECS")]
    pub auth_timeout_secs: Option<u64>,
    /// Log filter, as RUST_LOG [default: info].
    #[arg(long, env = "NATTER_LOG")]
    pub log: Option<String>,
    /// Log format: `text` or `json` [default: text].
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
    /// Flags and environment, with the TOML file (if any) beneath them.
    pub fn load() -> Result<Settings, String> {
        let cli = Settings::parse();
        cli.with_file()
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

    /// Applies defaults and checks values.
    pub fn resolve(self) -> Result<Config, String> {
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| PathBuf::from("natter-data"));
        let database = match self.database.as_deref() {
            None => Database::Sqlite(data_dir.join("natter.db")),
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
        let broker = match self.broker.as_deref() {
            None | Some("local") => BrokerKind::Local,
            Some(url) if url.starts_with("redis://") => BrokerKind::Redis(url.to_string()),
            Some(_) => return Err("unsupported --broker (use local or redis://...)".to_string()),
        };
        let presence_heartbeat = match self.presence_heartbeat_ms {
            Some(ms) => Duration::from_millis(ms.max(10)),
            None => natter_redis::DEFAULT_HEARTBEAT,
        };
        let presence_expiry = self
            .presence_expiry_ms
            .map_or(natter_redis::DEFAULT_EXPIRY, Duration::from_millis);
        if presence_expiry <= presence_heartbeat {
            return Err("--presence-expiry-ms must be longer than --presence-heartbeat-ms".into());
        }
        let sqlite_synchronous = self
            .sqlite_synchronous
            .as_deref()
            .unwrap_or("full")
            .parse()?;
        let log_json = match self.log_format.as_deref().unwrap_or("text") {
            "text" => false,
            "json" => true,
            other => return Err(format!("--log-format must be text or json, not {other}")),
        };
        let positive = |name: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(v)
            } else {
                Err(format!("--{name} must be positive"))
            }
        };
        Ok(Config {
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            database,
            database_pool: self
                .database_pool
                .unwrap_or(natter_store_sql::postgres::DEFAULT_POOL_SIZE)
                .max(1),
            broker,
            redis_prefix: self
                .redis_prefix
                .unwrap_or_else(|| natter_redis::DEFAULT_PREFIX.into()),
            presence_heartbeat,
            presence_expiry,
            sqlite_synchronous,
            web_dir: self.web_dir,
            allow_guests: self.allow_guests.unwrap_or(false),
            max_message_chars: self.max_message_chars.unwrap_or(4000).max(1),
            max_frame_bytes: self.max_frame_bytes.unwrap_or(64 * 1024).max(1024),
            rate_per_sec: positive("rate-per-sec", self.rate_per_sec.unwrap_or(20.0))?,
            rate_burst: positive("rate-burst", self.rate_burst.unwrap_or(40.0))?,
            outbound_queue: self.outbound_queue.unwrap_or(1024).max(1),
            resume_limit: self.resume_limit.unwrap_or(1000),
            presence_backlog: self
                .presence_backlog
                .unwrap_or(natter_core::presence::PRESENCE_BACKLOG)
                .max(1),
            write_timeout: Duration::from_millis(self.write_timeout_ms.unwrap_or(10_000).max(1)),
            typing_expiry: Duration::from_millis(self.typing_expiry_ms.unwrap_or(6000).max(1)),
            keepalive: Duration::from_millis(self.keepalive_ms.unwrap_or(30_000).max(10)),
            auth_timeout: Duration::from_secs(self.auth_timeout_secs.unwrap_or(10).max(1)),
            log: self.log.unwrap_or_else(|| "info".into()),
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
    fn rejects_unknown_file_keys_and_bad_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("natter.toml");
        std::fs::write(&file, "no_such_setting = 1\n").expect("write");
        let cli = Settings::try_parse_from(["natter", "--config", file.to_str().expect("utf8")])
            .expect("parse");
        assert!(cli.with_file().is_err());
        let bad = Settings::try_parse_from(["natter", "--rate-per-sec", "0"]).expect("parse");
        assert!(bad.resolve().is_err());
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

    /// The README documents every setting, by flag and environment variable.
    #[test]
    fn readme_table_lists_every_setting() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md");
        for arg in Settings::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            assert!(
                readme.contains(&format!("`--{long}`")),
                "README lacks --{long}"
            );
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                assert!(readme.contains(&format!("`{env}`")), "README lacks {env}");
            }
        }
    }
}
