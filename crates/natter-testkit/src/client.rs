//! The client side of docs/protocol.md over real sockets: registering over the HTTP accounts
//! API, and a client that speaks the JSON frames of `/ws` (requests with refs, replies,
//! events kept for later, close codes).

use crate::names::unique;
use crate::wait::WAIT;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Registers a new user with a unique name (from `prefix`) through the server at `addr`;
/// returns (token, user).
pub async fn register(addr: SocketAddr, prefix: &str) -> (String, Value) {
    let name = unique(prefix);
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/register"))
        .json(&json!({"username": name, "password": "correct horse"}))
        .send()
        .await
        .expect("register request");
    assert_eq!(resp.status(), 201, "register {name}");
    let body: Value = resp.json().await.expect("json");
    (
        body["token"].as_str().expect("token").to_string(),
        body["user"].clone(),
    )
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A protocol client over a real WebSocket.
pub struct Client {
    pub ws: Ws,
    pub token: String,
    pub user: Value,
    /// The `auth` reply's data.
    pub welcome: Value,
    /// Events read while waiting for replies.
    pub events: VecDeque<Value>,
    next_ref: u64,
}

/// A request's failure: (code, whole error object).
pub type Failure = (String, Value);

impl Client {
    /// Registers a new user through the server at `addr` and connects them.
    pub async fn new_user(addr: SocketAddr, prefix: &str) -> Client {
        let (token, user) = register(addr, prefix).await;
        let mut c = Client::connect(addr, &token, None).await;
        c.user = user;
        c
    }

    /// Opens `/ws` without authenticating.
    pub async fn open(addr: SocketAddr) -> Ws {
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), None, true)
                .await
                .expect("ws connect");
        ws
    }

    /// Connects and authenticates (with `resume` if given); panics if auth fails.
    pub async fn connect(addr: SocketAddr, token: &str, resume: Option<Value>) -> Client {
        Self::try_connect(addr, token, resume, true)
            .await
            .expect("auth")
    }

    /// Opens `/ws` over a socket with a tiny receive buffer (to stall quickly when unread).
    pub async fn open_small_buffer(addr: SocketAddr) -> Ws {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        let stream = socket.connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("ws handshake");
        ws
    }

    pub async fn try_connect(
        addr: SocketAddr,
        token: &str,
        resume: Option<Value>,
        presence: bool,
    ) -> Result<Client, Failure> {
        Self::auth(Self::open(addr).await, token, resume, presence).await
    }

    /// Authenticates an opened socket.
    pub async fn auth(
        ws: Ws,
        token: &str,
        resume: Option<Value>,
        presence: bool,
    ) -> Result<Client, Failure> {
        let mut c = Client {
            ws,
            token: token.to_string(),
            user: Value::Null,
            welcome: Value::Null,
            events: VecDeque::new(),
            next_ref: 0,
        };
        let mut data = json!({"token": token, "presence": presence});
        if let Some(r) = resume {
            data["resume"] = r;
        }
        let welcome = c.request("auth", data).await?;
        c.user = welcome["user"].clone();
        c.welcome = welcome;
        Ok(c)
    }

    pub fn id(&self) -> i64 {
        self.user["id"].as_i64().expect("user id")
    }

    pub fn name(&self) -> String {
        self.user["name"].as_str().expect("name").to_string()
    }

    pub async fn send_raw(&mut self, frame: Message) {
        self.ws.send(frame).await.expect("send");
    }

    /// Reads the next frame as JSON (text frames), within `WAIT`.
    pub async fn read(&mut self) -> Value {
        self.read_within(WAIT).await.expect("a frame in time")
    }

    /// Reads the next JSON frame within `wait`; None on timeout. Panics on close.
    pub async fn read_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let frame = match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => return None,
                Ok(f) => f,
            };
            match frame {
                Some(Ok(Message::Text(t))) => {
                    return Some(serde_json::from_str(t.as_str()).expect("server sends JSON"))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Sends a request frame and returns its ref.
    pub async fn send_request(&mut self, kind: &str, data: Value) -> String {
        self.next_ref += 1;
        let r = self.next_ref.to_string();
        let frame = json!({"type": kind, "ref": r, "data": data});
        self.send_raw(Message::Text(frame.to_string().into())).await;
        r
    }

    /// Waits for the reply to `r`, keeping events for later.
    pub async fn reply(&mut self, r: &str) -> Result<Value, Failure> {
        loop {
            let frame = self.read().await;
            match frame["type"].as_str() {
                Some("ok") if frame["ref"] == r => return Ok(frame["data"].clone()),
                Some("error") if frame["ref"] == r => {
                    let code = frame["error"]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    return Err((code, frame["error"].clone()));
                }
                Some("ok") | Some("error") => panic!("reply to another ref: {frame}"),
                _ => self.events.push_back(frame),
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub async fn request(&mut self, kind: &str, data: Value) -> Result<Value, Failure> {
        let r = self.send_request(kind, data).await;
        self.reply(&r).await
    }

    /// A request that must succeed.
    pub async fn ok(&mut self, kind: &str, data: Value) -> Value {
        match self.request(kind, data.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{kind} {data} failed: {e:?}"),
        }
    }

    /// A request that must fail; returns the error code.
    pub async fn fails(&mut self, kind: &str, data: Value) -> String {
        match self.request(kind, data.clone()).await {
            Ok(v) => panic!("{kind} {data} should fail, got {v}"),
            Err((code, _)) => code,
        }
    }

    /// Sends a message; returns the stored message.
    pub async fn say(&mut self, room: i64, body: &str) -> Value {
        let cid = unique("c");
        self.ok(
            "message.send",
            json!({"room": room, "body": body, "client_id": cid}),
        )
        .await["message"]
            .clone()
    }

    /// The next event of `kind` (matching `pred`), skipping others; panics after `WAIT`.
    pub async fn event_where(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.try_event_where(kind, WAIT, pred)
            .await
            .unwrap_or_else(|| panic!("no `{kind}` event in time; buffered: {:?}", self.events))
    }

    pub async fn event(&mut self, kind: &str) -> Value {
        self.event_where(kind, |_| true).await
    }

    /// Like `event_where`, None after `wait`. Non-matching events stay buffered.
    pub async fn try_event_where(
        &mut self,
        kind: &str,
        wait: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(i) = self
            .events
            .iter()
            .position(|e| e["type"] == kind && pred(&e["data"]))
        {
            return self.events.remove(i).map(|e| e["data"].clone());
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.read_within(left).await?;
            if frame["type"] == kind && pred(&frame["data"]) {
                return Some(frame["data"].clone());
            }
            self.events.push_back(frame);
        }
    }

    /// Collects `message` events of `room` until `count` have arrived (panics after WAIT).
    pub async fn messages(&mut self, room: i64, count: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < count {
            out.push(self.event_where("message", |m| m["room"] == room).await);
        }
        out
    }

    /// Asserts no event of `kind` arrives within `wait`.
    pub async fn no_event(&mut self, kind: &str, wait: Duration) {
        self.no_event_where(kind, wait, |_| true).await
    }

    /// Asserts no event of `kind` matching `pred` arrives within `wait`.
    pub async fn no_event_where(
        &mut self,
        kind: &str,
        wait: Duration,
        pred: impl Fn(&Value) -> bool,
    ) {
        if let Some(e) = self.try_event_where(kind, wait, pred).await {
            panic!("unexpected `{kind}` event: {e}");
        }
    }

    /// The next reply frame (`ok` or `error`), keeping events for later.
    pub async fn next_reply(&mut self) -> Value {
        loop {
            let frame = self.read().await;
            if frame["type"] == "ok" || frame["type"] == "error" {
                return frame;
            }
            self.events.push_back(frame);
        }
    }

    /// Waits for the server to close the socket; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        closed(&mut self.ws).await
    }
}

/// Reads until the server closes; returns its close code (None: no close frame).
pub async fn closed(ws: &mut Ws) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("server did not close in time"),
            Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

pub fn code(c: CloseCode) -> u16 {
    u16::from(c)
}

/// The seqs of messages (as events or history carry them), in their order.
pub fn seqs(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect()
}

/// The id of the `general` room as a client sees it.
pub fn general(c: &Client) -> i64 {
    c.welcome["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["name"] == "general")
        .expect("general room")["id"]
        .as_i64()
        .expect("id")
}

/// Creates a uniquely named room with `owner` and joins `others` to it; returns its id.
pub async fn room_with(owner: &mut Client, others: &mut [&mut Client]) -> i64 {
    let name = unique("r");
    let room = owner.ok("room.create", json!({"name": name})).await["room"]["id"]
        .as_i64()
        .expect("room id");
    for c in others.iter_mut() {
        c.ok("room.join", json!({"room": room})).await;
    }
    room
}
