//! Socket.IO compatibility (`/socket.io/`, docs/socketio.md), end to end against a server
//! started in-process on port 0.
//!
//! Two layers:
//! - Always run: Engine.IO v4 long-polling spoken by hand over HTTP (the packets of the
//!   Socket.IO spec, nothing more) for the handshake, acknowledgements, cross-transport
//!   delivery, server-side closes and shutdown; and a check that the examples in
//!   docs/socketio.md are the files the client suites run.
//! - With real clients nobody here wrote: the official `socket.io-client` (Node, suite in
//!   tests/socketio/) when `NATTER_SIO_NODE=1`, and `python-socketio` (suite in
//!   tests/socketio-py/) when `NATTER_SIO_PYTHON=1`. Without the variable they print a skip
//!   line and pass (unless `NATTER_REQUIRE_SERVICES=1`: then they fail); with it, a missing
//!   install fails. `NATTER_SIO_PYTHON_BIN` picks the interpreter (default `python3`).
//!
//! The server comes from natter-testkit (so `NATTER_TEST_DATABASE`/`NATTER_TEST_BROKER` apply).

use natter_testkit::{flag_enabled, TestServer, WAIT};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The longest a client suite may run.
const SUITE_LIMIT: Duration = Duration::from_secs(300);

/// A Socket.IO client over Engine.IO v4 long-polling, by hand: just enough packets to test.
struct Polling {
    http: reqwest::Client,
    url: String,
    /// Packets read but not yet taken.
    packets: VecDeque<String>,
    /// Acknowledgement ids.
    next_ack: u64,
}

impl Polling {
    /// The Engine.IO handshake (`0{"sid",...}`), before any namespace connect.
    async fn open(server: &TestServer) -> Polling {
        let http = reqwest::Client::new();
        let base = server.http("/socket.io/?EIO=4&transport=polling");
        let open = http.get(&base).send().await.expect("handshake");
        assert_eq!(open.status(), 200);
        let body = open.text().await.expect("body");
        let handshake: Value =
            serde_json::from_str(body.strip_prefix('0').expect("open packet")).expect("json");
        let sid = handshake["sid"].as_str().expect("sid");
        Polling {
            http,
            url: format!("{base}&sid={sid}"),
            packets: VecDeque::new(),
            next_ack: 0,
        }
    }

    async fn post(&self, packet: &str) {
        let resp = self
            .http
            .post(&self.url)
            .body(packet.to_string())
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 200, "post {packet}");
    }

    /// Connects to the main namespace with this `auth` payload.
    async fn connect(&mut self, auth: Value) {
        self.post(&format!("40{auth}")).await;
    }

    /// The next Socket.IO packet (Engine.IO pings are answered and skipped).
    async fn next(&mut self) -> String {
        loop {
            if let Some(packet) = self.packets.pop_front() {
                match packet.as_str() {
                    "2" => self.post("3").await,
                    _ => {
                        return packet
                            .strip_prefix('4')
                            .unwrap_or_else(|| panic!("not a message: {packet}"))
                            .to_string()
                    }
                }
                continue;
            }
            let get = self.http.get(&self.url).send();
            let resp = tokio::time::timeout(WAIT, get)
                .await
                .expect("a packet in time")
                .expect("poll");
            assert_eq!(resp.status(), 200);
            let body = resp.text().await.expect("body");
            self.packets
                .extend(body.split('\u{1e}').map(str::to_string));
        }
    }

    /// Skips packets until the event `name`; returns its data.
    async fn event(&mut self, name: &str) -> Value {
        loop {
            let packet = self.next().await;
            if let Some(args) = packet.strip_prefix('2') {
                let args: Value = serde_json::from_str(args).expect("event json");
                if args[0] == name {
                    return args[1].clone();
                }
            }
        }
    }

    /// Emits `[name, data]` with an acknowledgement and waits for it. Packets before the
    /// acknowledgement are kept for later reads: events may arrive before or after it
    /// (docs/socketio.md section 2).
    async fn request(&mut self, name: &str, data: Value) -> Value {
        self.next_ack += 1;
        let id = self.next_ack;
        self.post(&format!("42{id}{}", json!([name, data]))).await;
        let prefix = format!("3{id}");
        let mut before = Vec::new();
        loop {
            let packet = self.next().await;
            if let Some(args) = packet.strip_prefix(&prefix) {
                let args: Value = serde_json::from_str(args).expect("ack json");
                for packet in before.into_iter().rev() {
                    self.packets.push_front(format!("4{packet}"));
                }
                return args[0].clone();
            }
            before.push(packet);
        }
    }

    /// Connects with a token and returns the `auth` event (the native `auth` reply data).
    async fn signed_in(server: &TestServer, token: &str) -> (Polling, Value) {
        let mut client = Polling::open(server).await;
        client.connect(json!({ "token": token })).await;
        let connected = client.next().await;
        assert!(connected.starts_with("0{"), "connect packet: {connected}");
        let welcome = client.event("auth").await;
        (client, welcome)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_handshake_authenticates_and_acknowledges() {
    let server = TestServer::start().await;
    let (token, user) = server.register("ana").await;
    let (mut client, welcome) = Polling::signed_in(&server, &token).await;
    assert_eq!(welcome["user"], user);
    assert_eq!(welcome["limits"]["max_message_chars"], 4000);
    let general = welcome["rooms"][0]["id"].clone();

    let reply = client
        .request(
            "message.send",
            json!({"room": general, "body": "hi", "client_id": "c-1"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["data"]["message"]["body"], "hi");
    assert_eq!(reply["data"]["duplicate"], false);
    let event = client.event("message").await;
    assert_eq!(
        event, reply["data"]["message"],
        "event = the stored message"
    );

    let reply = client.request("message.send", json!("hi")).await;
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["error"]["code"], "invalid_request");
    let reply = client.request("fly", json!({})).await;
    assert_eq!(reply["error"]["code"], "unknown_type");
    let reply = client.request("ping", json!({})).await;
    assert_eq!(reply, json!({"ok": true, "data": {}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_refuses_a_bad_token_with_a_connect_error() {
    let server = TestServer::start().await;
    for auth in [json!({"token": "not-a-token"}), json!({}), json!(null)] {
        let mut client = Polling::open(&server).await;
        if auth.is_null() {
            client.post("40").await;
        } else {
            client.connect(auth.clone()).await;
        }
        let packet = client.next().await;
        let error: Value = serde_json::from_str(
            packet
                .strip_prefix('4')
                .unwrap_or_else(|| panic!("connect_error for {auth}: {packet}")),
        )
        .expect("json");
        let message = error["message"].as_str().expect("message");
        assert!(message.starts_with("unauthenticated: "), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_between_native_and_socketio_clients() {
    let server = TestServer::start().await;
    let (ana_token, _) = server.register("ana").await;
    let (mut sio, welcome) = Polling::signed_in(&server, &ana_token).await;
    let general = welcome["rooms"][0]["id"].as_i64().expect("general");
    let mut native = server.user("bob").await;

    let sent = native.say(general, "from native").await;
    assert_eq!(sio.event("message").await, sent, "the same Message on both");
    assert_eq!(native.event("message").await, sent);

    let reply = sio
        .request(
            "message.send",
            json!({"room": general, "body": "from socket.io", "client_id": "s-1"}),
        )
        .await;
    assert_eq!(reply["ok"], true);
    let seen = native
        .event_where("message", |m| m["body"] == "from socket.io")
        .await;
    assert_eq!(seen, reply["data"]["message"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_gets_a_close_event_then_a_disconnect() {
    let server = TestServer::start().await;
    let (token, _) = server.register("ana").await;
    let (mut client, _) = Polling::signed_in(&server, &token).await;
    let resp = reqwest::Client::new()
        .post(server.http("/api/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 204);
    let close = client.event("close").await;
    assert_eq!(close["code"], 4003, "{close}");
    assert_eq!(client.next().await, "1", "then a namespace disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_socketio_sessions_with_1001() {
    let mut server = TestServer::start().await;
    let (token, _) = server.register("ana").await;
    let (mut client, _) = Polling::signed_in(&server, &token).await;
    let poll = tokio::spawn(async move {
        let close = client.event("close").await;
        (close, client.next().await)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stopped promptly"
    );
    let (close, disconnect) = poll.await.expect("poll task");
    assert_eq!(close["code"], 1001, "{close}");
    assert_eq!(
        disconnect, "1",
        "then the namespace disconnect, before HTTP went away"
    );
}

/// Outside relay mode an unknown event is `unknown_type` whatever its payload (a string was
/// `invalid_request`, issue 21).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_event_is_unknown_type_whatever_its_payload() {
    let server = TestServer::start().await;
    let (token, _) = server.register("ana").await;
    let (mut client, _) = Polling::signed_in(&server, &token).await;
    for payload in [json!("hi"), json!(5), json!([1]), json!({"text": "hi"})] {
        let reply = client.request("chat message", payload.clone()).await;
        assert_eq!(reply["error"]["code"], "unknown_type", "{payload}: {reply}");
    }
    // Without relay mode a socket without a token is refused.
    let mut anonymous = Polling::open(&server).await;
    anonymous.post("40").await;
    let refused = anonymous.next().await;
    assert!(refused.starts_with("4{"), "connect_error: {refused}");
}

/// Relay mode: a socket without a token is a guest in the relay room; its events are stored
/// and come back under their own names; one with a token speaks the full protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_mode_makes_a_socket_without_a_token_a_guest() {
    let server = TestServer::start_with(|s| {
        s.relay = Some(true);
        s.allow_guests = Some(true);
    })
    .await;
    let mut native = server.user("nat").await;
    let general = natter_testkit::general(&native);
    let mut relay = Polling::open(&server).await;
    relay.post("40").await;
    let connected = relay.next().await;
    assert!(connected.starts_with("0{"), "connect packet: {connected}");

    relay.post(r#"42["chat message","hi there"]"#).await;
    assert_eq!(relay.event("chat message").await, json!("hi there"));
    let stored = native
        .event_where("message", |m| m["body"] == "hi there")
        .await;
    assert_eq!(stored["room"], general);
    assert!(stored["sender"]["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("guest-")));

    // An object payload: stored as its JSON text, relayed back as the object.
    relay.post(r#"42["move",{"x":1,"y":[2,3]}]"#).await;
    assert_eq!(relay.event("move").await, json!({"x": 1, "y": [2, 3]}));
    native
        .event_where("message", |m| m["body"] == r#"{"x":1,"y":[2,3]}"#)
        .await;

    // A native message arrives as `chat message` with its text.
    native.say(general, "from native").await;
    assert_eq!(relay.event("chat message").await, json!("from native"));

    // `join` by name, with an acknowledgement; then sends go to both rooms.
    let reply = relay.request("join", json!("side")).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let side = reply["data"]["room"].as_i64().expect("room id");
    let reply = relay.request("chat message", json!("to both")).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let rooms: Vec<i64> = reply["data"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["room"].as_i64().expect("room"))
        .collect();
    assert_eq!(rooms, [general, side]);
    // A reserved name is refused.
    let reply = relay.request("disconnect", json!("x")).await;
    assert_eq!(reply["error"]["code"], "invalid_request", "{reply}");

    // A socket with a token is unchanged.
    let (token, _) = server.register("full").await;
    let (mut full, welcome) = Polling::signed_in(&server, &token).await;
    assert!(welcome["user"]["name"].is_string());
    let reply = full.request("chat message", json!("hi")).await;
    assert_eq!(reply["error"]["code"], "unknown_type");
}

// ----- the documented examples are the ones the suites run ------------------------------

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The code block of `docs/socketio.md` that follows the line `<!-- example: FILE -->`.
fn documented_block(doc: &str, file: &str) -> String {
    let marker = format!("<!-- example: {file} -->");
    let after = doc
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/socketio.md has no `{marker}`"))
        .1;
    let fence_start = after.find("```").expect("a code block");
    let body = &after[fence_start..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    body[..body.find("```").expect("closing fence")].to_string()
}

#[test]
fn documented_examples_are_the_tested_files() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/socketio.md")).expect("docs/socketio.md");
    for file in ["tests/socketio/example.mjs", "tests/socketio-py/example.py"] {
        let code = std::fs::read_to_string(root.join(file)).expect(file);
        assert_eq!(
            documented_block(&doc, file),
            code,
            "docs/socketio.md's example differs from {file}"
        );
    }
}

// ----- the official clients -------------------------------------------------------------

/// Runs a client suite against a fresh server; fails the test if it fails.
async fn run_suite(command: tokio::process::Command, what: &str) {
    // The native limits: the suites check that Socket.IO has the same ones.
    let server = TestServer::start_with(|s| {
        s.rate_per_sec = None;
        s.rate_burst = None;
    })
    .await;
    run_suite_on(&server, command, what).await;
}

/// Runs a client suite against `server`; fails the test if it fails.
async fn run_suite_on(server: &TestServer, mut command: tokio::process::Command, what: &str) {
    command
        .env("NATTER_URL", server.http(""))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {what} suite: {e}"));
    let output = tokio::time::timeout(SUITE_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the {what} suite ran over {SUITE_LIMIT:?}"))
        .expect("suite output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("----- {what} suite stdout -----\n{stdout}\n----- stderr -----\n{stderr}");
    assert!(
        output.status.success(),
        "the {what} suite failed: {}",
        output.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_socketio_client_suite() {
    if !flag_enabled("NATTER_SIO_NODE", "the socket.io-client (Node) suite") {
        return;
    }
    let dir = repo_root().join("tests/socketio");
    assert!(
        dir.join("node_modules/socket.io-client").is_dir(),
        "run `npm ci --prefix tests/socketio` first"
    );
    let mut command = tokio::process::Command::new("node");
    command.current_dir(&dir).args([
        "--test",
        "--test-reporter=spec",
        "--test-concurrency=1",
        "socketio.test.mjs",
    ]);
    run_suite(command, "Node").await;
}

/// The node suite's directory, with its packages installed.
fn node_suite_dir() -> PathBuf {
    let dir = repo_root().join("tests/socketio");
    assert!(
        dir.join("node_modules/socket.io-client").is_dir(),
        "run `npm ci --prefix tests/socketio` first"
    );
    dir
}

/// Relay mode with the unchanged Socket.IO tutorial client (tests/socketio/relay.test.mjs),
/// then a restart: what the tutorial clients said is still there, in the order they saw it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_relay_suite_and_durability() {
    if !flag_enabled("NATTER_SIO_NODE", "the socket.io-client (Node) relay suite") {
        return;
    }
    let relay = |s: &mut natter_server::Settings| {
        s.relay = Some(true);
        s.allow_guests = Some(true);
    };
    let mut server = TestServer::start_with(relay).await;
    let mark = natter_testkit::unique("mark");
    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(node_suite_dir())
        .env("NATTER_RELAY_MARK", &mark)
        .args([
            "--test",
            "--test-reporter=spec",
            "--test-concurrency=1",
            "relay.test.mjs",
        ]);
    run_suite_on(&server, command, "Node relay").await;

    server.restart_with(relay).await;
    let mut reader = server.user("reader").await;
    let general = natter_testkit::general(&reader);
    let page = reader
        .ok("history", json!({"room": general, "limit": 100}))
        .await;
    let said: Vec<String> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .filter(|b| b.starts_with(&format!("{mark} ")) && b.contains('.'))
        .map(str::to_string)
        .collect();
    assert_eq!(said.len(), 15, "the tutorial chat's 15 messages: {said:?}");
    for client in 0..3 {
        let own: Vec<&String> = said
            .iter()
            .filter(|b| b.starts_with(&format!("{mark} {client}.")))
            .collect();
        let wanted: Vec<String> = (0..5).map(|n| format!("{mark} {client}.{n}")).collect();
        assert_eq!(
            own,
            wanted.iter().collect::<Vec<_>>(),
            "client {client}'s order"
        );
    }
}

/// A graceful shutdown ends socket.io-client sessions with `io server disconnect` (after the
/// `close` event with 1001), over WebSocket and over long-polling alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_clients_see_io_server_disconnect_at_shutdown() {
    use tokio::io::AsyncBufReadExt;
    if !flag_enabled(
        "NATTER_SIO_NODE",
        "the socket.io-client (Node) shutdown check",
    ) {
        return;
    }
    let mut server = TestServer::start().await;
    let mut child = tokio::process::Command::new("node")
        .current_dir(node_suite_dir())
        .arg("shutdown.mjs")
        .env("NATTER_URL", server.http(""))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("ready in time")
        .expect("read");
    assert_eq!(ready.as_deref(), Some("ready"));
    server.stop().await;
    let report = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("a report in time")
        .expect("read")
        .expect("a report line");
    let report: Value = serde_json::from_str(&report).expect("json");
    for transport in ["websocket", "polling"] {
        assert_eq!(
            report["reasons"][transport], "io server disconnect",
            "{transport}: {report}"
        );
        assert_eq!(report["closes"][transport], 1001, "{transport}: {report}");
    }
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("node ends")
        .expect("status");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_client_suite() {
    if !flag_enabled("NATTER_SIO_PYTHON", "the python-socketio suite") {
        return;
    }
    let python = std::env::var("NATTER_SIO_PYTHON_BIN").unwrap_or_else(|_| "python3".into());
    let dir = repo_root().join("tests/socketio-py");
    let mut command = tokio::process::Command::new(python);
    command
        .current_dir(&dir)
        .args(["-m", "pytest", "-v", "-p", "no:cacheprovider"]);
    run_suite(command, "Python").await;
}

/// Like the native `auth` timeout: an Engine.IO connection that does not complete the Socket.IO
/// handshake within `auth_timeout_secs` is closed (so it cannot hold up a shutdown either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_connection_is_closed_after_auth_timeout() {
    let mut server = TestServer::start_with(|s| s.auth_timeout_secs = Some(1)).await;
    let client = Polling::open(&server).await;
    let started = std::time::Instant::now();
    let body = loop {
        let resp = client.http.get(&client.url).send().await.expect("poll");
        match resp.text().await.expect("body").as_str() {
            "2" => client.post("3").await, // an Engine.IO ping: pong
            body => break body.to_string(),
        }
    };
    assert_eq!(body, "1", "an Engine.IO close packet");
    assert!(started.elapsed() < Duration::from_secs(5));
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped promptly"
    );
}

/// At shutdown the server drains its sessions (and keeps answering HTTP meanwhile); an
/// Engine.IO connection that has not done the Socket.IO handshake is no session: it does not
/// hold the drain, even with a long-poll waiting (docs/socketio.md section 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_connection_does_not_hold_up_shutdown() {
    let mut server = TestServer::start().await;
    let waiting = Polling::open(&server).await;
    let poll = tokio::spawn(async move { waiting.http.get(&waiting.url).send().await });
    let started = std::time::Instant::now();
    server.stop().await;
    let stopped = started.elapsed();
    assert!(
        stopped < Duration::from_secs(3),
        "stopped after {stopped:?}"
    );
    poll.abort();
}
