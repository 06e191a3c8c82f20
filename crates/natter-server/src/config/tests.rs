//! Configuration tests: layering, defaults against the README and `--help`, ranges refused.
//! Long (~630 lines) because it holds one bounds row per setting; one file keeps them with
//! the table they check.

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
    assert_eq!(
        node.trusted_proxies.len(),
        2,
        "nginx's X-Forwarded-For is believed"
    );
    assert!(single.trusted_proxies.is_empty());
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
    assert_eq!(
        config.max_preauth_frame_bytes,
        defaults::MAX_PREAUTH_FRAME_BYTES
    );
    assert_eq!(config.metrics, defaults::METRICS);
    assert_eq!(config.metrics_listen, None);
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
    Bounds {
        flag: "max-preauth-frame-bytes",
        outside: ["255", "16777217"],
        min: "256",
        max: "16777216",
        with: &[],
    },
    Bounds {
        flag: "hash-queue",
        outside: ["0", "100001"],
        min: "1",
        max: "100000",
        with: &[],
    },
    Bounds {
        flag: "login-per-minute-per-address",
        outside: ["0", "1000001"],
        min: "1",
        max: "1000000",
        with: &[],
    },
    Bounds {
        flag: "max-rooms-per-user",
        outside: ["0", "1000001"],
        min: "1",
        max: "1000000",
        with: &[],
    },
    Bounds {
        flag: "login-per-minute-per-user",
        outside: ["0", "1000001"],
        min: "1",
        max: "1000000",
        with: &[],
    },
    Bounds {
        flag: "room-create-per-minute",
        outside: ["0", "1000001"],
        min: "1",
        max: "1000000",
        with: &[],
    },
    Bounds {
        flag: "search-per-minute",
        outside: ["0", "1000001"],
        min: "1",
        max: "1000000",
        with: &[],
    },
    Bounds {
        flag: "max-bots-per-user",
        outside: ["0", "10001"],
        min: "1",
        max: "10000",
        with: &[],
    },
    Bounds {
        flag: "api-per-minute",
        outside: ["0", "1000001"],
        min: "1",
        max: "1000000",
        with: &[],
    },
    Bounds {
        flag: "register-per-hour-per-address",
        outside: ["0", "1000001"],
        min: "1",
        max: "1000000",
        with: &[],
    },
    Bounds {
        flag: "guest-per-hour-per-address",
        outside: ["0", "1000001"],
        min: "1",
        max: "1000000",
        with: &[],
    },
    Bounds {
        flag: "limiter-table-size",
        outside: ["15", "10000001"],
        min: "16",
        max: "10000000",
        with: &[],
    },
    Bounds {
        flag: "http-header-timeout-ms",
        outside: ["99", "3600001"],
        min: "100",
        max: "3600000",
        with: &[],
    },
    Bounds {
        flag: "http-idle-timeout-ms",
        outside: ["99", "3600001"],
        min: "100",
        max: "3600000",
        with: &[],
    },
    Bounds {
        flag: "http-body-timeout-ms",
        outside: ["99", "3600001"],
        min: "100",
        max: "3600000",
        with: &[],
    },
    Bounds {
        flag: "session-ttl-days",
        outside: ["0", "3651"],
        min: "1",
        max: "3650",
        with: &[],
    },
    Bounds {
        flag: "guest-ttl-hours",
        outside: ["0", "8761"],
        min: "1",
        max: "8760",
        with: &[],
    },
    Bounds {
        flag: "session-sweep-ms",
        outside: ["99", "3600001"],
        min: "100",
        max: "3600000",
        with: &[],
    },
    Bounds {
        flag: "hash-waiting-per-address",
        outside: ["0", "100001"],
        min: "1",
        max: "100000",
        with: &[],
    },
    Bounds {
        flag: "hash-wait-ms",
        outside: ["99", "600001"],
        min: "100",
        max: "600000",
        with: &[],
    },
    Bounds {
        flag: "max-reactions-per-message",
        outside: ["0", "1001"],
        min: "1",
        max: "1000",
        with: &[],
    },
    Bounds {
        flag: "max-upload-bytes",
        outside: ["1023", "4294967297"],
        min: "1024",
        max: "4294967296",
        with: &[],
    },
    Bounds {
        flag: "upload-quota-bytes",
        outside: ["1023", "1099511627777"],
        min: "1024",
        max: "1099511627776",
        with: &[],
    },
    Bounds {
        flag: "max-image-pixels",
        outside: ["9999", "400000001"],
        min: "10000",
        max: "400000000",
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

/// `natter serve ARGS` is `natter ARGS`, every setting included; operator's commands take
/// the store settings after them too.
#[test]
fn serve_is_an_alias_and_commands_take_the_store_settings() {
    let parse = |args: &[&str]| {
        let args = Settings::serve_args(args.iter().map(std::ffi::OsString::from));
        let matches = Settings::cli().try_get_matches_from(args).expect("parses");
        Settings::from_arg_matches(&matches).expect("settings")
    };
    let plain = parse(&["natter", "--max-message-chars", "10"]);
    let served = parse(&["natter", "serve", "--max-message-chars", "10"]);
    assert!(plain.command.is_none() && served.command.is_none());
    assert_eq!(served.max_message_chars, Some(10));
    let admin = parse(&["natter", "admin", "stats", "--data-dir", "/srv/n", "--json"]);
    assert!(matches!(admin.command, Some(crate::admin::Command::Admin(ref a)) if a.json));
    assert_eq!(
        admin.data_dir.as_deref(),
        Some(std::path::Path::new("/srv/n"))
    );
    let serving_flag_after_admin =
        Settings::cli().try_get_matches_from(["natter", "admin", "stats", "--listen", "0.0.0.0:1"]);
    assert!(
        serving_flag_after_admin.is_err(),
        "serving settings belong to serving"
    );
}

/// `--metrics` takes a value or none (on); `--metrics-listen` takes an address.
#[test]
fn metrics_flags_parse() {
    let off = resolve_args(&["--metrics", "false"]).expect("resolve");
    assert!(!off.metrics);
    let on = resolve_args(&["--metrics"]).expect("resolve");
    assert!(on.metrics);
    let apart = resolve_args(&["--metrics-listen", "127.0.0.1:9090"]).expect("resolve");
    assert_eq!(
        apart.metrics_listen,
        Some("127.0.0.1:9090".parse().expect("addr"))
    );
    assert!(Settings::try_parse_from(["natter", "--metrics-listen", "nowhere"]).is_err());
}
