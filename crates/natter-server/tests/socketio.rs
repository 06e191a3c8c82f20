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
//!   line and pass; with it, a missing install fails. `NATTER_SIO_PYTHON_BIN` picks the
//!   interpreter (default `python3`).

use futures_util::{SinkExt, StreamExt};
use natter_server::{run, Settings};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);
/// The longest a client suite may run.
const SUITE_LIMIT: Duration = Duration::from_secs(300);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings {
            data_dir: Some(dir.path().to_path_buf()),
            sqlite_synchronous: Some("normal".into()),
            log: Some("warn".into()),
            ..Settings::default()
        };
        tweak(&mut settings);
        let config = settings.resolve().expect("config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run(config, listener, async move {
                let _ = stopped.await;
            })
            .await
            .expect("server run");
        });
        Server {
            addr,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops gracefully; panics unless it has within `limit`.
    async fn stop_within(&mut self, limit: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(limit, task)
                .await
                .expect("server stops in time")
                .expect("server task");
        }
    }

    /// Registers a user with a unique name; returns (token, user).
    async fn register(&self, prefix: &str) -> (String, Value) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!("{prefix}{}", N.fetch_add(1, Ordering::Relaxed));
        let resp = reqwest::Client::new()
            .post(format!("{}/api/register", self.url()))
            .json(&json!({"username": name, "password": "correct horse"}))
            .send()
            .await
            .expect("register");
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.expect("json");
        (
            body["token"].as_str().expect("token").into(),
            body["user"].clone(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

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
    async fn open(server: &Server) -> Polling {
        let http = reqwest::Client::new();
        let base = format!("{}/socket.io/?EIO=4&transport=polling", server.url());
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

    /// Emits `[name, data]` with an acknowledgement and waits for it.
    async fn request(&mut self, name: &str, data: Value) -> Value {
        self.next_ack += 1;
        let id = self.next_ack;
        self.post(&format!("42{id}{}", json!([name, data]))).await;
        let prefix = format!("3{id}");
        loop {
            let packet = self.next().await;
            if let Some(args) = packet.strip_prefix(&prefix) {
                let args: Value = serde_json::from_str(args).expect("ack json");
                return args[0].clone();
            }
        }
    }

    /// Connects with a token and returns the `auth` event (the native `auth` reply data).
    async fn signed_in(server: &Server, token: &str) -> (Polling, Value) {
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
    let server = Server::start().await;
    let (token, user) = server.register("ana").await;
    let (mut client, welcome) = Polling::signed_in(&server, &token).await;
    assert_eq!(welcome["user"], user);
    assert_eq!(welcome["limits"]["rate_burst"], 40.0);
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
    let server = Server::start().await;
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

/// A native `/ws` client, just enough to send and read.
async fn native(server: &Server, token: &str) -> NativeWs {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .expect("ws");
    let auth = json!({"type": "auth", "ref": "1", "data": {"token": token}});
    ws.send(Message::Text(auth.to_string().into()))
        .await
        .expect("send");
    let mut native = NativeWs { ws };
    let reply = native.frame_where(|f| f["ref"] == "1").await;
    assert_eq!(reply["type"], "ok", "{reply}");
    native
}

struct NativeWs {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl NativeWs {
    async fn frame_where(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("frame");
            if let Message::Text(text) = frame {
                let frame: Value = serde_json::from_str(text.as_str()).expect("json");
                if pred(&frame) {
                    return frame;
                }
            }
        }
    }

    async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("send");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_between_native_and_socketio_clients() {
    let server = Server::start().await;
    let (ana_token, _) = server.register("ana").await;
    let (bob_token, _) = server.register("bob").await;
    let (mut sio, welcome) = Polling::signed_in(&server, &ana_token).await;
    let general = welcome["rooms"][0]["id"].clone();
    let mut ws = native(&server, &bob_token).await;

    let data = json!({"room": general, "body": "from native", "client_id": "n-1"});
    ws.send(json!({"type": "message.send", "ref": "2", "data": data}))
        .await;
    let native_event = ws.frame_where(|f| f["type"] == "message").await;
    let sio_event = sio.event("message").await;
    assert_eq!(sio_event, native_event["data"], "same payload on both");
    assert_eq!(sio_event["body"], "from native");

    let reply = sio
        .request(
            "message.send",
            json!({"room": general, "body": "from socket.io", "client_id": "s-1"}),
        )
        .await;
    assert_eq!(reply["ok"], true);
    let native_event = ws
        .frame_where(|f| f["type"] == "message" && f["data"]["body"] == "from socket.io")
        .await;
    assert_eq!(native_event["data"], reply["data"]["message"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_gets_a_close_event_then_a_disconnect() {
    let server = Server::start().await;
    let (token, _) = server.register("ana").await;
    let (mut client, _) = Polling::signed_in(&server, &token).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/logout", server.url()))
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
    let mut server = Server::start().await;
    let (token, _) = server.register("ana").await;
    let (mut client, _) = Polling::signed_in(&server, &token).await;
    let poll = tokio::spawn(async move { client.event("close").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop_within(Duration::from_secs(8)).await;
    let close = poll.await.expect("poll task");
    assert_eq!(close["code"], 1001, "{close}");
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

/// Whether a client suite is enabled by `var`; prints why not.
fn enabled(var: &str, suite: &str) -> bool {
    match std::env::var(var).as_deref() {
        Ok("1") | Ok("true") => true,
        _ => {
            // Straight to stderr: libtest captures `eprintln!`, and a skip should show.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the {suite} Socket.IO client suite (set {var}=1 to run it)"
            );
            false
        }
    }
}

/// Runs a client suite against a fresh server; fails the test if it fails.
async fn run_suite(mut command: tokio::process::Command, what: &str) {
    let server = Server::start().await;
    command
        .env("NATTER_URL", server.url())
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
    if !enabled("NATTER_SIO_NODE", "Node (socket.io-client)") {
        return;
    }
    let dir = repo_root().join("tests/socketio");
    assert!(
        dir.join("node_modules/socket.io-client").is_dir(),
        "run `npm ci --prefix tests/socketio` first"
    );
    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(&dir)
        .args(["--test", "--test-reporter=spec", "--test-concurrency=1"]);
    run_suite(command, "Node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_client_suite() {
    if !enabled("NATTER_SIO_PYTHON", "Python (python-socketio)") {
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
    let mut server = Server::start_with(|s| s.auth_timeout_secs = Some(1)).await;
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
    server.stop_within(Duration::from_secs(5)).await;
}
