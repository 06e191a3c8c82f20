//! `GET /metrics` end to end: clients on real sockets (`/ws` and Socket.IO long-polling) chat,
//! get refused by rate limits and stall; scrapes over HTTP show every counter moved by
//! exactly what happened, in text that parses as the Prometheus exposition format. Also
//! `--metrics-listen` (served apart, the main address 404s) and `--metrics false`.
//!
//! The server comes from natter-testkit, so `NATTER_TEST_DATABASE`/`NATTER_TEST_BROKER` run
//! the same tests on PostgreSQL and Redis.

use natter_testkit::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// A scrape: each sample (`name{label="value",...}` with labels sorted) and its value.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    /// The sample of `name` with exactly these labels; panics if absent.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = sample_key(
            name,
            labels.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        *self
            .0
            .get(&key)
            .unwrap_or_else(|| panic!("no sample {key} in {:#?}", self.0))
    }

    /// As `get`, 0 when absent (a route and status not seen yet).
    fn get_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = sample_key(
            name,
            labels.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        self.0.get(&key).copied().unwrap_or(0.0)
    }
}

fn sample_key(name: &str, labels: impl Iterator<Item = (String, String)>) -> String {
    let mut labels: Vec<(String, String)> = labels.collect();
    labels.sort();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `label="value",...` (the text between braces) as pairs, unescaping values; Err on bad
/// syntax.
fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        labels.push((name.to_string(), value));
        rest = &after[end + 1..];
        rest = match rest.strip_prefix(',') {
            Some(more) => more,
            None if rest.is_empty() => rest,
            None => return Err(format!("junk after a label: {rest:?}")),
        };
    }
    Ok(labels)
}

/// Parses the text exposition format strictly: every line is a `# HELP`, a `# TYPE` or a
/// sample; each family has one HELP and one TYPE, before its samples, with a known type;
/// sample names belong to a declared family (a histogram's `_bucket`, `_sum`, `_count`);
/// label and metric names are legal; values are floats; no sample appears twice; counters
/// end in `_total`; histogram buckets are cumulative and end with `le="+Inf"` = `_count`.
fn parse(text: &str) -> Scrape {
    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped: HashMap<String, bool> = HashMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_metric_name(name), "HELP of a bad name: {line}");
            assert!(!help.trim().is_empty(), "empty HELP: {line}");
            assert!(
                helped.insert(name.into(), true).is_none(),
                "two HELPs: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_metric_name(name), "TYPE of a bad name: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "unknown type: {line}"
            );
            assert!(helped.contains_key(name), "TYPE before HELP: {line}");
            if kind == "counter" {
                assert!(
                    name.ends_with("_total"),
                    "a counter not named _total: {line}"
                );
            }
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "two TYPEs: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line: {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("sample: series value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("labels end with }");
                (
                    name,
                    parse_labels(labels).unwrap_or_else(|e| panic!("{e}: {line}")),
                )
            }
            None => (series, Vec::new()),
        };
        assert!(is_metric_name(name), "bad metric name: {line}");
        let family = types.get(name).map(|_| name).or_else(|| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find(|f| types.get(*f).is_some_and(|t| t == "histogram"))
        });
        assert!(family.is_some(), "a sample before its TYPE: {line}");
        let key = sample_key(name, labels.into_iter());
        assert!(samples.insert(key, value).is_none(), "sample twice: {line}");
    }
    let scrape = Scrape(samples);
    for (family, _) in types.iter().filter(|(_, t)| *t == "histogram") {
        let bucket = format!("{family}_bucket{{le=");
        let buckets: Vec<f64> = scrape
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(&bucket))
            .map(|(_, v)| *v)
            .collect();
        assert!(!buckets.is_empty(), "{family} has no buckets");
        let inf = scrape.get(&format!("{family}_bucket"), &[("le", "+Inf")]);
        let count = scrape.get(&format!("{family}_count"), &[]);
        assert_eq!(inf, count, "{family}: +Inf bucket = count");
        assert!(
            buckets.iter().all(|b| *b <= inf),
            "{family}: buckets are cumulative"
        );
        scrape.get(&format!("{family}_sum"), &[]);
    }
    scrape
}

/// Scrapes `http://addr/metrics`, checks the response and parses it.
async fn scrape(addr: SocketAddr) -> Scrape {
    let resp = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse(&resp.text().await.expect("body"))
}

/// The growth of a sample from `before` to `after`.
fn grew(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.get_or_zero(name, labels) - before.get_or_zero(name, labels)
}

async fn login(addr: SocketAddr, username: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/api/login"))
        .json(&json!({"username": username, "password": "correct horse"}))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_exactly_what_clients_did() {
    let server = TestServer::start_with(|s| {
        s.room_create_per_minute = Some(1);
        s.login_per_minute_per_user = Some(1);
    })
    .await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;

    let before = scrape(server.addr).await;
    let ws = [("transport", "ws")];
    assert_eq!(before.get("natter_connections", &ws), 2.0);
    assert_eq!(before.get("natter_sessions", &[]), 2.0);
    assert_eq!(before.get("natter_presence_online_users", &[]), 2.0);
    // "general" (everyone joins it) and Ana's room.
    assert_eq!(before.get("natter_rooms_active", &[]), 2.0);
    assert_eq!(before.get("natter_typing_active", &[]), 0.0);
    let upgrades = [("route", "/ws"), ("status", "101")];
    assert_eq!(before.get("natter_http_requests_total", &upgrades), 2.0);
    let registered = [("route", "/api/register"), ("status", "201")];
    assert_eq!(before.get("natter_http_requests_total", &registered), 2.0);

    // Three messages and one sent twice: four stored, each delivered to both sessions once.
    ana.say(room, "one").await;
    ana.say(room, "two").await;
    bob.say(room, "three").await;
    let again = json!({"room": room, "body": "four", "client_id": "the-same"});
    ana.ok("message.send", again.clone()).await;
    let duplicate = ana.ok("message.send", again).await;
    assert_eq!(duplicate["duplicate"], true);
    assert_eq!(ana.messages(room, 4).await.len(), 4);
    assert_eq!(bob.messages(room, 4).await.len(), 4);

    // Ana types: Bob sees it, and the node holds one typing state.
    ana.ok("typing", json!({"room": room, "active": true}))
        .await;
    bob.event_where("typing", |t| t["room"] == room).await;

    // Refusals: a second room within the minute, a second sign-in as Bob.
    assert_eq!(
        ana.fails("room.create", json!({"name": unique("r")})).await,
        "rate_limited"
    );
    let bob_name = bob.name();
    assert_eq!(login(server.addr, &bob_name).await, 200);
    assert_eq!(login(server.addr, &bob_name).await, 429);

    let after = scrape(server.addr).await;
    let moved = |name: &str, labels: &[(&str, &str)]| grew(&before, &after, name, labels);
    assert_eq!(moved("natter_messages_stored_total", &[]), 4.0);
    assert_eq!(moved("natter_deliveries_total", &[]), 8.0);
    assert_eq!(
        moved("natter_store_append_seconds_count", &[]),
        5.0,
        "every append is timed, the duplicate's too"
    );
    assert!(moved("natter_store_append_seconds_sum", &[]) > 0.0);
    // Redis stamps what it carries (five sends and a typing event at least); in-process
    // there is no transit to measure.
    let lag = moved("natter_broker_lag_seconds_count", &[]);
    if std::env::var("NATTER_TEST_BROKER").is_ok() {
        assert!(lag >= 6.0, "{lag} events timed");
    } else {
        assert_eq!(lag, 0.0);
    }
    assert_eq!(after.get("natter_typing_active", &[]), 1.0);
    // SQLite's WAL has the migrations and these messages in it; PostgreSQL's WAL is the
    // database server's, so no such gauge.
    let wal = after
        .0
        .get(&sample_key("natter_store_wal_bytes", std::iter::empty()));
    if std::env::var("NATTER_TEST_DATABASE").is_ok() {
        assert_eq!(wal, None);
    } else {
        assert!(wal.is_some_and(|&bytes| bytes > 0.0), "{wal:?}");
    }
    let kind = |k| [("kind", k)];
    assert_eq!(
        moved("natter_rate_limited_total", &kind("room_create")),
        1.0
    );
    assert_eq!(moved("natter_rate_limited_total", &kind("login_user")), 1.0);
    for other in [
        "request",
        "search",
        "password_hash",
        "login_address",
        "socketio_queue",
    ] {
        assert_eq!(
            moved("natter_rate_limited_total", &kind(other)),
            0.0,
            "{other}"
        );
    }
    let http = |route, status| [("route", route), ("status", status)];
    let requests = "natter_http_requests_total";
    assert_eq!(moved(requests, &http("/api/login", "200")), 1.0);
    assert_eq!(moved(requests, &http("/api/login", "429")), 1.0);
    assert_eq!(
        moved(requests, &http("/metrics", "200")),
        1.0,
        "the first scrape"
    );
    assert_eq!(moved("natter_slow_consumer_closes_total", &[]), 0.0);
    // Only route templates are labels, never raw paths.
    assert!(
        after
            .0
            .keys()
            .filter(|k| k.starts_with(requests))
            .all(|k| !k.contains(&bob_name)),
        "{after:?}"
    );

    // Bob leaves: his connection, session and presence go.
    drop(bob);
    eventually("bob's connection is gone", async || {
        let now = scrape(server.addr).await;
        now.get("natter_connections", &ws) == 1.0
            && now.get("natter_sessions", &[]) == 1.0
            && now.get("natter_presence_online_users", &[]) == 1.0
    })
    .await;
}

/// Engine.IO v4 long-polling by hand: handshake, namespace connect with a token, and the
/// `auth` event that says the session is up.
async fn socketio_polling_session(server: &TestServer, token: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::new();
    let base = server.http("/socket.io/?EIO=4&transport=polling");
    let open = http.get(&base).send().await.expect("handshake");
    let body = open.text().await.expect("body");
    let handshake: Value =
        serde_json::from_str(body.strip_prefix('0').expect("open packet")).expect("json");
    let url = format!("{base}&sid={}", handshake["sid"].as_str().expect("sid"));
    let connect = http
        .post(&url)
        .body(format!("40{}", json!({ "token": token })))
        .send()
        .await
        .expect("connect");
    assert_eq!(connect.status(), 200);
    let mut seen = String::new();
    while !seen.contains("42[\"auth\"") {
        let poll = tokio::time::timeout(WAIT, http.get(&url).send())
            .await
            .expect("a packet in time")
            .expect("poll");
        seen.push_str(&poll.text().await.expect("body"));
    }
    (http, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_counted_by_transport() {
    let server = TestServer::start().await;
    let _ana = server.user("ana").await;
    let (token, _) = server.register("sio").await;
    let _sio = socketio_polling_session(&server, &token).await;
    // An open `/ws` that has not authenticated is a connection, not a session.
    let _waiting = Client::open(server.addr).await;

    eventually("the unauthenticated socket is counted", async || {
        scrape(server.addr)
            .await
            .get("natter_connections", &[("transport", "ws")])
            == 2.0
    })
    .await;
    let now = scrape(server.addr).await;
    let transport = |t| [("transport", t)];
    assert_eq!(
        now.get("natter_connections", &transport("socketio_polling")),
        1.0
    );
    assert_eq!(
        now.get("natter_connections", &transport("socketio_websocket")),
        0.0
    );
    assert_eq!(now.get("natter_sessions", &[]), 2.0);
    assert!(
        now.get_or_zero(
            "natter_http_requests_total",
            &[("route", "/socket.io/"), ("status", "200")]
        ) >= 3.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_close_is_counted_once() {
    let server = TestServer::start_with(|s| {
        s.outbound_queue = Some(16);
        // Long enough that the queue overflows (4008) before a stalled write is given up on.
        s.write_timeout_ms = Some(2000);
        s.max_message_chars = Some(20_000);
        s.sqlite_synchronous = Some("normal".into());
    })
    .await;
    let mut ana = server.user("ana").await;
    let (slow_token, _) = server.register("slow").await;
    let stalled = Client::open_small_buffer(server.addr).await;
    let mut slow = Client::auth(stalled, &slow_token, None, false)
        .await
        .expect("auth");
    let room = room_with(&mut ana, &mut [&mut slow]).await;

    // `slow` reads nothing more; Ana sends large messages until its queue overflows.
    let body = "z".repeat(20_000);
    let closes = "natter_slow_consumer_closes_total";
    let mut sent = 0;
    while scrape(server.addr).await.get(closes, &[]) == 0.0 {
        assert!(sent < 2000, "the stalled session was never closed");
        for _ in 0..20 {
            ana.say(room, &body).await;
            sent += 1;
        }
    }
    assert_eq!(scrape(server.addr).await.get(closes, &[]), 1.0);
    // Ana, who reads, is not cut off: she still chats.
    ana.say(room, "still here").await;
    assert_eq!(scrape(server.addr).await.get(closes, &[]), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_serves_them_apart_and_the_main_address_404s() {
    let port = spare_port();
    let apart: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let server = TestServer::start_with(|s| s.metrics_listen = Some(apart)).await;
    let _ana = server.user("ana").await;

    let metrics = scrape(apart).await;
    assert_eq!(metrics.get("natter_sessions", &[]), 1.0);
    let main = reqwest::get(server.http("/metrics")).await.expect("get");
    assert_eq!(main.status(), 404);
    // The 404 on the main address is counted there; the apart scrape under its own route.
    let again = scrape(apart).await;
    let http = |status| [("route", "/metrics"), ("status", status)];
    assert_eq!(again.get("natter_http_requests_total", &http("404")), 1.0);
    assert_eq!(again.get("natter_http_requests_total", &http("200")), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let server = TestServer::start_with(|s| s.metrics = Some(false)).await;
    let resp = reqwest::get(server.http("/metrics")).await.expect("get");
    assert_eq!(resp.status(), 404);
}

#[test]
fn the_parser_refuses_what_prometheus_would() {
    for bad in [
        "natter_x 1\n",                                             // no TYPE
        "# HELP a_total A.\n# TYPE a_total counter\na_total one\n", // not a number
        "# HELP a A.\n# TYPE a counter\na 1\n",                     // counter not _total
        "# HELP a A.\n# TYPE a gauge\na{1x=\"v\"} 1\n",             // bad label name
        "# HELP a A.\n# TYPE a gauge\na{k=\"v} 1\n",                // unterminated value
        "# HELP a A.\n# TYPE a gauge\na 1\na 2\n",                  // a sample twice
    ] {
        let parsed = std::panic::catch_unwind(|| parse(bad));
        assert!(parsed.is_err(), "accepted: {bad:?}");
    }
    let good = "# HELP a A.\n# TYPE a gauge\na{k=\"q\\\"\\\\\"} 1.5\n";
    assert_eq!(parse(good).get("a", &[("k", "q\"\\")]), 1.5);
}

/// deploy/grafana-natter.json is valid JSON whose queries name only metrics a server serves
/// (on PostgreSQL, all but the SQLite-only ones).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_uses_served_metric_names() {
    let path = format!(
        "{}/../../deploy/grafana-natter.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("json");
    let server = TestServer::start().await;
    // One HTTP response first, so that every family has a sample.
    let health = reqwest::get(server.http("/healthz")).await.expect("get");
    assert_eq!(health.status(), 200);
    let served = scrape(server.addr).await;
    let mut names = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(at) = rest.find("natter_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                names.push(name);
            }
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    // Served on SQLite only: on PostgreSQL the panel is empty, as it should be.
    let sqlite_only = ["natter_store_wal_bytes"];
    let on_postgres = std::env::var("NATTER_TEST_DATABASE").is_ok();
    for name in names {
        if on_postgres && sqlite_only.contains(&name.as_str()) {
            continue;
        }
        let prefix = format!("{name}{{");
        assert!(
            served.0.keys().any(|k| k.starts_with(&prefix)),
            "the dashboard queries {name}, which the server does not serve"
        );
    }
}
