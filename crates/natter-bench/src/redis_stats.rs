//! Redis traffic of a measured step (`--redis`): `INFO stats commandstats` read before and
//! after over a tiny RESP client of our own (one command, one bulk-string reply), and the
//! difference per stored message: bytes into and out of Redis, and commands by name.
//!
//! The counters are the whole Redis server's (every database, every client), so anything
//! else using that Redis during the step is counted too. The bench's own two `INFO` requests
//! are taken out: the second request is in the "after" input count, the first reply in the
//! "after" output count (Redis counts a reply's bytes when it writes them, after the command
//! has read its counters), and `cmdstat_info` is left out of the commands.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::error::BenchError;

/// The request sent, as RESP: `INFO stats commandstats`.
const INFO_REQUEST: &[u8] = b"*3\r\n$4\r\nINFO\r\n$5\r\nstats\r\n$12\r\ncommandstats\r\n";

/// The largest `INFO` reply accepted.
const MAX_REPLY: usize = 1 << 20;

/// `host:port` of a `redis://host[:port][/db]` URL (the database index does not matter:
/// the counters are server-wide). A password in the URL is not supported.
pub fn host_port(url: &str) -> Result<String, BenchError> {
    let rest = url.strip_prefix("redis://").ok_or_else(|| {
        BenchError::Config(format!("--redis {url}: expected redis://host[:port]"))
    })?;
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.is_empty() || authority.contains('@') {
        return Err(BenchError::Config(format!(
            "--redis {url}: expected redis://host[:port][/db], no password"
        )));
    }
    Ok(if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:6379")
    })
}

/// One reading of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisInfo {
    /// `total_net_input_bytes`: bytes Redis read from its clients.
    pub net_input_bytes: u64,
    /// `total_net_output_bytes`: bytes Redis wrote to its clients.
    pub net_output_bytes: u64,
    /// `cmdstat_<name>:calls=N`, by command name.
    pub calls: BTreeMap<String, u64>,
    /// Bytes of the reply this reading came in (taken out of the next reading's output).
    pub reply_bytes: u64,
}

/// Parses the text of an `INFO stats commandstats` reply.
pub fn parse_info(text: &str) -> Result<RedisInfo, BenchError> {
    let mut info = RedisInfo::default();
    let (mut input, mut output) = (None, None);
    for line in text.lines() {
        let Some((key, value)) = line.trim_end().split_once(':') else {
            continue; // "# Stats", blank lines
        };
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| BenchError::Protocol(format!("redis INFO: {key}:{value}")))
        };
        match key {
            "total_net_input_bytes" => input = Some(number()?),
            "total_net_output_bytes" => output = Some(number()?),
            _ => {
                if let Some(name) = key.strip_prefix("cmdstat_") {
                    let calls = value
                        .split(',')
                        .find_map(|kv| kv.strip_prefix("calls="))
                        .and_then(|n| n.parse::<u64>().ok())
                        .ok_or_else(|| {
                            BenchError::Protocol(format!("redis INFO: no calls in {line}"))
                        })?;
                    info.calls.insert(name.to_string(), calls);
                }
            }
        }
    }
    match (input, output) {
        (Some(i), Some(o)) => {
            info.net_input_bytes = i;
            info.net_output_bytes = o;
            Ok(info)
        }
        _ => Err(BenchError::Protocol(
            "redis INFO without total_net_input_bytes/total_net_output_bytes".into(),
        )),
    }
}

/// Reads the counters from the Redis at `host_port`.
pub async fn read(host_port: &str, timeout: Duration) -> Result<RedisInfo, BenchError> {
    tokio::time::timeout(timeout, async {
        let mut tcp = TcpStream::connect(host_port).await?;
        tcp.write_all(INFO_REQUEST).await?;
        let mut reader = BufReader::new(tcp);
        let mut header = String::new();
        reader.read_line(&mut header).await?;
        let len = match header.trim_end().strip_prefix('$') {
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_REPLY)
                .ok_or_else(|| BenchError::Protocol(format!("redis INFO reply: {header:?}")))?,
            None => {
                return Err(BenchError::Protocol(format!(
                    "redis INFO reply: {}",
                    header.trim_end()
                )))
            }
        };
        let mut body = vec![0u8; len + 2];
        reader.read_exact(&mut body).await?;
        body.truncate(len);
        let text = String::from_utf8(body)
            .map_err(|_| BenchError::Protocol("redis INFO reply is not UTF-8".into()))?;
        let mut info = parse_info(&text)?;
        info.reply_bytes = (header.len() + len + 2) as u64;
        Ok(info)
    })
    .await
    .map_err(|_| BenchError::Timeout(format!("redis INFO from {host_port}")))?
}

/// Redis traffic over a step, in all and per stored message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisTraffic {
    /// Messages (and changes) the servers acknowledged as stored during the step.
    pub messages: u64,
    /// Bytes Redis read from its clients (the nodes' commands, their payloads included).
    pub bytes_in: u64,
    /// Bytes Redis wrote to its clients (replies, and every pub/sub message to every
    /// subscribed node).
    pub bytes_out: u64,
    pub bytes_in_per_message: Option<f64>,
    pub bytes_out_per_message: Option<f64>,
    /// Commands executed, all names together (the bench's `INFO` left out).
    pub commands: u64,
    pub commands_per_message: Option<f64>,
    /// `PUBLISH` calls per stored message.
    pub publish_per_message: Option<f64>,
    /// Calls per command name during the step.
    pub calls: BTreeMap<String, u64>,
}

impl RedisTraffic {
    /// The difference of two readings, without the bench's own requests, over `messages`.
    pub fn between(before: &RedisInfo, after: &RedisInfo, messages: u64) -> RedisTraffic {
        let bytes_in = after
            .net_input_bytes
            .saturating_sub(before.net_input_bytes)
            .saturating_sub(INFO_REQUEST.len() as u64);
        let bytes_out = after
            .net_output_bytes
            .saturating_sub(before.net_output_bytes)
            .saturating_sub(before.reply_bytes);
        let calls: BTreeMap<String, u64> = after
            .calls
            .iter()
            .filter(|(name, _)| name.as_str() != "info")
            .map(|(name, n)| {
                let was = before.calls.get(name).copied().unwrap_or(0);
                (name.clone(), n.saturating_sub(was))
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let commands = calls.values().sum();
        let per = |n: u64| (messages > 0).then(|| n as f64 / messages as f64);
        RedisTraffic {
            messages,
            bytes_in,
            bytes_out,
            bytes_in_per_message: per(bytes_in),
            bytes_out_per_message: per(bytes_out),
            commands,
            commands_per_message: per(commands),
            publish_per_message: per(calls.get("publish").copied().unwrap_or(0)),
            calls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# Stats\r\ntotal_connections_received:12\r\n\
        total_commands_processed:500\r\ntotal_net_input_bytes:10000\r\n\
        total_net_output_bytes:40000\r\ntotal_net_repl_input_bytes:0\r\n\r\n\
        # Commandstats\r\n\
        cmdstat_publish:calls=100,usec=300,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=4,usec=90,usec_per_call=22.50,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_evalsha:calls=7,usec=70,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n";

    const AFTER: &str = "# Stats\r\ntotal_net_input_bytes:60000\r\n\
        total_net_output_bytes:190000\r\n\r\n# Commandstats\r\n\
        cmdstat_publish:calls=200,usec=600,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=5,usec=110,usec_per_call=22.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_evalsha:calls=9,usec=90,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_subscribe:calls=3,usec=9,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n";

    #[test]
    fn info_stats_and_commandstats_parse() {
        let info = parse_info(BEFORE).expect("parses");
        assert_eq!(info.net_input_bytes, 10_000);
        assert_eq!(info.net_output_bytes, 40_000);
        assert_eq!(info.calls.get("publish"), Some(&100));
        assert_eq!(info.calls.get("info"), Some(&4));
        assert_eq!(info.calls.len(), 3);
    }

    #[test]
    fn info_without_the_byte_counters_is_an_error() {
        assert!(parse_info("# Stats\r\ntotal_net_input_bytes:1\r\n").is_err());
        assert!(parse_info("total_net_input_bytes:x\r\ntotal_net_output_bytes:1\r\n").is_err());
        assert!(parse_info(
            "total_net_input_bytes:1\r\ntotal_net_output_bytes:1\r\ncmdstat_get:usec=1\r\n"
        )
        .is_err());
    }

    #[test]
    fn traffic_per_message_leaves_out_the_benchs_own_info() {
        let mut before = parse_info(BEFORE).expect("before");
        before.reply_bytes = 1_000;
        let after = parse_info(AFTER).expect("after");
        let t = RedisTraffic::between(&before, &after, 100);
        assert_eq!(t.bytes_in, 50_000 - INFO_REQUEST.len() as u64);
        assert_eq!(t.bytes_out, 149_000);
        assert_eq!(t.bytes_out_per_message, Some(1_490.0));
        assert_eq!(t.calls.get("info"), None);
        assert_eq!(t.calls.get("publish"), Some(&100));
        assert_eq!(
            t.calls.get("subscribe"),
            Some(&3),
            "new command names count"
        );
        assert_eq!(t.commands, 105);
        assert_eq!(t.commands_per_message, Some(1.05));
        assert_eq!(t.publish_per_message, Some(1.0));
        assert_eq!(
            RedisTraffic::between(&before, &after, 0).commands_per_message,
            None
        );
    }

    /// A one-shot server that reads the request and answers `reply`.
    async fn fake_redis(reply: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            if let Ok((mut tcp, _)) = listener.accept().await {
                let mut request = vec![0u8; INFO_REQUEST.len()];
                if tcp.read_exact(&mut request).await.is_ok() && request == INFO_REQUEST {
                    let _ = tcp.write_all(&reply).await;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_a_bulk_string_reply_and_its_size() {
        let reply = format!("${}\r\n{BEFORE}\r\n", BEFORE.len()).into_bytes();
        let addr = fake_redis(reply.clone()).await;
        let info = read(&addr, Duration::from_secs(5)).await.expect("read");
        assert_eq!(info.calls.get("publish"), Some(&100));
        assert_eq!(info.reply_bytes, reply.len() as u64);
    }

    #[tokio::test]
    async fn an_error_reply_is_an_error() {
        let addr = fake_redis(b"-NOAUTH Authentication required.\r\n".to_vec()).await;
        let err = read(&addr, Duration::from_secs(5))
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("NOAUTH"), "{err}");
    }

    #[test]
    fn redis_urls() {
        assert_eq!(
            host_port("redis://127.0.0.1:6379/3").ok().as_deref(),
            Some("127.0.0.1:6379")
        );
        assert_eq!(
            host_port("redis://localhost").ok().as_deref(),
            Some("localhost:6379")
        );
        assert!(host_port("http://127.0.0.1:6379").is_err());
        assert!(host_port("redis://:secret@127.0.0.1").is_err());
        assert!(host_port("redis:///0").is_err());
    }
}
