//! The Socket.IO v4 transport at `/socket.io/` (Engine.IO v4 over WebSocket or HTTP
//! long-polling, served by socketioxide): the requests and events of docs/protocol.md mapped
//! onto Socket.IO's handshake `auth`, events and acknowledgements, as docs/socketio.md says.
//!
//! It holds no chat logic. Like the native adapter, each socket drives one core `Connection`
//! and pumps its `Outbox`:
//! - the namespace's connect middleware authenticates with the handshake's `auth` (a refusal
//!   becomes a `connect_error`) and registers the request handler and the disconnect handler
//!   before the client is told it is connected, so no early request is lost;
//! - the request handler runs in socketioxide's read path and only queues each event, in
//!   arrival order, for the socket's task;
//! - the socket's task (started by the connect handler) owns the `Connection` and the
//!   `Outbox`: it answers requests one at a time (acknowledgements carry the replies) and
//!   emits events, their `data` JSON passed through as encoded by the core.

use crate::AppState;
use axum::extract::OriginalUri;
use natter_core::protocol::{AuthReply, ErrorBody, Reply};
use natter_core::{close, AuthStep, ChatError, Connection, EncodedEvent, ErrorCode, Request};
use natter_core::{Outbox, OutboxItem};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value as Json;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts, MessageHandler, Value as Payload};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;
use socketioxide::{ParserError, SendError, SocketError, SocketIo};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Events written in one go before the socket's task looks at requests again.
const EVENT_BATCH: usize = 256;
/// How often a write into a full socket buffer is retried (until `write_timeout`).
const FULL_RETRY: Duration = Duration::from_millis(5);
/// The `retry_after_ms` of a request refused because the socket's request queue is full.
const OVERFLOW_RETRY_MS: u64 = 1000;

/// tungstenite's read buffer per Socket.IO WebSocket (engineioxide's default is 4 KiB, kept
/// for the socket's life). Requests are small; a larger frame is read in several chunks.
/// Idle connections, `natter-bench idle --target natter-sio`: 3.7 KiB less each with 512.
const WS_READ_BUFFER: usize = 1024;
/// Where socketioxide answers (given to it in `layer`, and matched by `own_request_head`).
const SOCKET_IO_PATH: &str = "/socket.io";

/// Gives a Socket.IO request a head of its own, for the router to run before `layer`. hyper
/// parses a request's URI and header values as slices of the connection's read buffer (8-16
/// KiB), and engineioxide keeps the head of the request that opened a socket for the socket's
/// whole life, so every idle Socket.IO connection held that buffer: 16 KiB of its 44
/// (heaptrack of `natter-bench idle --target natter-sio`). With copies of the URI, the header
/// values and the router's `OriginalUri`, the buffer goes when the upgrade is done. Other
/// requests pass untouched.
pub async fn own_request_head(req: axum::extract::Request) -> axum::extract::Request {
    let for_socket_io = req
        .uri()
        .path()
        .strip_prefix(SOCKET_IO_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if !for_socket_io {
        return req;
    }
    let (mut head, body) = req.into_parts();
    let mut headers = axum::http::HeaderMap::with_capacity(head.headers.len());
    for (name, value) in &head.headers {
        // hyper copies header names already (or uses static ones); only values are slices.
        let mut copy =
            axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or(value.clone());
        copy.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), copy);
    }
    head.headers = headers;
    if let Ok(uri) = axum::http::Uri::from_maybe_shared(bytes::Bytes::copy_from_slice(
        head.uri.to_string().as_bytes(),
    )) {
        // The router's copy of the URI (kept in the extensions) is a slice of the buffer too.
        if let Some(original) = head.extensions.get_mut::<OriginalUri>() {
            *original = OriginalUri(uri.clone());
        }
        head.uri = uri;
    }
    axum::extract::Request::from_parts(head, body)
}

/// The Socket.IO layer for the HTTP router: it answers `/socket.io/` and passes every other
/// request through.
pub fn layer(state: &AppState) -> SocketIoLayer {
    let config = &state.config;
    let frame = config.max_frame_bytes;
    let (layer, io) = SocketIo::builder()
        .max_payload(u64::try_from(frame).unwrap_or(u64::MAX))
        .ws_max_message_size(frame)
        .ws_max_frame_size(frame)
        .req_path(SOCKET_IO_PATH)
        .max_buffer_size(config.outbound_queue)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .connect_timeout(state.node.config().auth_timeout)
        .build_layer();
    let on_connect = {
        let state = state.clone();
        move |socket: SocketRef| {
            let state = state.clone();
            async move { start(socket, &state) }
        }
    };
    let authenticate = {
        let state = state.clone();
        move |socket: SocketRef, TryData(auth): TryData<Json>| {
            let state = state.clone();
            async move { authenticate(socket, auth, state).await }
        }
    };
    io.ns("/", on_connect.with(authenticate));
    layer
}

fn next_conn_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A refused handshake: its text is the `connect_error`'s `message`, `"<code>: <message>"`.
#[derive(Debug)]
struct Refusal(ChatError);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.code.as_str(), self.0.message)
    }
}

/// One socket's session between its authentication and its task's start.
struct Session {
    conn: Connection,
    outbox: Outbox,
    /// The `auth` reply data, the socket's first event (taken when sent).
    welcome: Option<Box<AuthReply>>,
    /// Requests in arrival order.
    inbox: mpsc::Receiver<Incoming>,
    /// Cancelled when the socket disconnects.
    gone: CancellationToken,
}

/// Hands the session from the middleware to the connect handler (socket extensions must be
/// `Clone`).
#[derive(Clone)]
struct Pending(Arc<Mutex<Option<Session>>>);

/// One event the client emitted: a request.
struct Incoming {
    socket: Arc<Socket<LocalAdapter>>,
    payload: Payload,
    /// Present when the client wants an acknowledgement.
    ack_id: Option<i64>,
}

/// The handshake's `auth` payload as the native `auth` request.
fn auth_request(auth: Result<Json, ParserError>) -> Result<Request, ChatError> {
    let missing = || {
        ChatError::new(
            ErrorCode::Unauthenticated,
            "give the session token in the handshake: auth: {token}",
        )
    };
    let auth = auth.map_err(|_| missing())?;
    if auth.get("token").is_none() {
        return Err(missing());
    }
    Request::parse("auth", Some(&auth))
}

/// The connect middleware: authenticates, and makes the socket ready to take requests.
async fn authenticate(
    socket: SocketRef,
    auth: Result<Json, ParserError>,
    state: AppState,
) -> Result<(), Refusal> {
    let mut conn = Connection::new(state.node.clone());
    // The core's auth phase decides; any refusal ends the handshake (a `connect_error`).
    let (welcome, outbox) = match conn.before_auth(auth_request(auth)).await {
        AuthStep::Done(welcome, outbox) => (welcome, outbox),
        AuthStep::Refused { error, .. } => {
            tracing::debug!(code = error.code.as_str(), "socket.io handshake refused");
            return Err(Refusal(error));
        }
    };
    // Requests beyond the rate limit's burst are refused anyway; a deeper queue only holds
    // what the token bucket would turn away.
    let depth = (state.config.rate_burst.ceil() as usize).saturating_add(16);
    let (requests, inbox) = mpsc::channel(depth);
    let gone = CancellationToken::new();
    socket.on_fallback(Requests { queue: requests });
    let on_gone = gone.clone();
    socket.on_disconnect(move || {
        let on_gone = on_gone.clone();
        async move { on_gone.cancel() }
    });
    let session = Session {
        conn,
        outbox,
        welcome: Some(welcome),
        inbox,
        gone,
    };
    socket
        .extensions
        .insert(Pending(Arc::new(Mutex::new(Some(session)))));
    Ok(())
}

/// The connect handler: the client knows it is connected; start the socket's task.
fn start(socket: SocketRef, state: &AppState) {
    let session = socket
        .extensions
        .remove::<Pending>()
        .and_then(|p| p.0.lock().ok().and_then(|mut s| s.take()));
    let Some(session) = session else {
        tracing::error!("socket.io connect without a session");
        return;
    };
    let user = session
        .conn
        .user()
        .map(|u| u.name.clone())
        .unwrap_or_default();
    let span = tracing::info_span!("sio", conn = next_conn_id(), %user);
    let writer = Writer {
        socket,
        write_timeout: state.config.write_timeout,
        gone: session.gone.clone(),
    };
    state.tasks.spawn(serve(writer, session).instrument(span));
}

/// The request handler: every event the client emits is a request, queued in order.
#[derive(Clone)]
struct Requests {
    queue: mpsc::Sender<Incoming>,
}

/// Names `Requests`' implementation of socketioxide's handler trait.
struct RequestsHandler;

impl MessageHandler<LocalAdapter, RequestsHandler> for Requests {
    fn call(&self, socket: Arc<Socket<LocalAdapter>>, payload: Payload, ack_id: Option<i64>) {
        let incoming = Incoming {
            socket,
            payload,
            ack_id,
        };
        if let Err(mpsc::error::TrySendError::Full(incoming)) = self.queue.try_send(incoming) {
            refuse_overflow(incoming);
        }
    }
}

/// A request beyond the queue is answered at once with `rate_limited` (best effort).
fn refuse_overflow(mut incoming: Incoming) {
    let mut e = ChatError::new(ErrorCode::RateLimited, "too many requests, slow down");
    e.retry_after_ms = Some(OVERFLOW_RETRY_MS);
    let sent = match incoming.ack_id {
        Some(_) => {
            let Ok(ack) = AckSender::from_message_parts(
                &incoming.socket,
                &mut incoming.payload,
                &incoming.ack_id,
            );
            ack.send(&failure(&e))
        }
        None => {
            let event = event_name(&incoming.payload);
            incoming.socket.emit("error", &error_event(&event, &e))
        }
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "could not refuse an overflowing request");
    }
}

/// An acknowledgement (docs/socketio.md): `{"ok": true, "data": ..}` or
/// `{"ok": false, "error": {"code", "message", "retry_after_ms"?}}`.
#[derive(Serialize)]
#[serde(untagged)]
enum Ack<'a> {
    Success { ok: bool, data: &'a Reply },
    Failure { ok: bool, error: ErrorBody<'a> },
}

fn success(data: &Reply) -> Ack<'_> {
    Ack::Success { ok: true, data }
}

fn failure(e: &ChatError) -> Ack<'_> {
    Ack::Failure {
        ok: false,
        error: ErrorBody::from(e),
    }
}

/// The `error` event for a failed request that had no acknowledgement callback.
#[derive(Serialize)]
struct ErrorEvent<'a> {
    /// The request's event name (empty when it could not be read).
    event: &'a str,
    error: ErrorBody<'a>,
}

fn error_event<'a>(event: &'a str, e: &'a ChatError) -> ErrorEvent<'a> {
    ErrorEvent {
        event,
        error: ErrorBody::from(e),
    }
}

/// The `close` event sent before the server disconnects a socket (native: the close frame).
#[derive(Serialize)]
struct CloseEvent {
    code: u16,
    reason: &'static str,
}

/// The event's name, for error events (empty when it cannot be read).
fn event_name(payload: &Payload) -> String {
    payload
        .as_str()
        .and_then(|text| serde_json::from_str::<Vec<Json>>(text).ok())
        .and_then(|args| args.first().and_then(Json::as_str).map(String::from))
        .unwrap_or_default()
}

/// Reads a request from an event `[name, data?]`. On failure, also returns the event name.
fn parse(payload: &Payload) -> Result<(String, Request), (String, ChatError)> {
    let binary = || {
        ChatError::new(
            ErrorCode::BinaryUnsupported,
            "binary data is not supported; send JSON",
        )
    };
    let (text, attachments) = match payload {
        Payload::Str(text, attachments) => (text, attachments),
        Payload::Bytes(_) => return Err((String::new(), binary())),
    };
    let mut args: Vec<Json> = serde_json::from_str(text.as_str()).map_err(|e| {
        (
            String::new(),
            ChatError::new(ErrorCode::BadJson, e.to_string()),
        )
    })?;
    let name = match args.first() {
        Some(Json::String(name)) => name.clone(),
        _ => {
            let e = ChatError::invalid("the event name must be a string");
            return Err((String::new(), e));
        }
    };
    if attachments.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err((name, binary()));
    }
    if args.len() > 2 {
        let e = ChatError::invalid("a request takes one data argument (an object)");
        return Err((name, e));
    }
    let data = if args.len() == 2 { args.pop() } else { None };
    match Request::parse(&name, data.as_ref()) {
        Ok(request) => Ok((name, request)),
        Err(e) => Err((name, e)),
    }
}

/// Writes into one socket. socketioxide buffers up to `max_buffer_size` packets per socket;
/// when that is full, a write is retried until `write_timeout`, then the socket is dropped
/// (as a stalled native write is).
struct Writer {
    socket: SocketRef,
    write_timeout: Duration,
    gone: CancellationToken,
}

impl Writer {
    /// Runs `write` until it goes through; false if the socket is gone or stalled.
    async fn retry(&self, mut write: impl FnMut() -> Result<(), SendError>) -> bool {
        let deadline = Instant::now() + self.write_timeout;
        loop {
            match write() {
                Ok(()) => return true,
                Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                    if Instant::now() >= deadline {
                        tracing::debug!("socket.io write stalled");
                        return false;
                    }
                    tokio::select! {
                        _ = self.gone.cancelled() => return false,
                        _ = tokio::time::sleep(FULL_RETRY) => {}
                    }
                }
                Err(SendError::Socket(SocketError::Closed)) => return false,
                Err(SendError::Serialize(e)) => {
                    tracing::error!(error = %e, "socket.io encoding failed");
                    return true;
                }
            }
        }
    }

    async fn emit<T: Serialize + ?Sized>(&self, name: &str, data: &T) -> bool {
        self.retry(|| self.socket.emit(name, data)).await
    }

    /// Emits a core event, its data JSON as the core encoded it.
    async fn event(&self, event: &EncodedEvent) -> bool {
        let data: &RawValue = match serde_json::from_slice(&event.data) {
            Ok(data) => data,
            Err(e) => {
                tracing::error!(error = %e, event = event.name, "event data is not JSON");
                return true;
            }
        };
        self.retry(|| self.socket.emit(event.name, data)).await
    }

    /// Writes an event and whatever else is ready behind it.
    async fn events(&self, first: &EncodedEvent, outbox: &mut Outbox) -> bool {
        if !self.event(first).await {
            return false;
        }
        for _ in 0..EVENT_BATCH {
            let Some(event) = outbox.try_next() else {
                break;
            };
            if !self.event(&event).await {
                return false;
            }
        }
        true
    }

    async fn ack(&self, incoming: &mut Incoming, reply: &Ack<'_>) -> bool {
        let socket = incoming.socket.clone();
        self.retry(|| {
            let Ok(ack) =
                AckSender::from_message_parts(&socket, &mut incoming.payload, &incoming.ack_id);
            ack.send(reply)
        })
        .await
    }

    /// Tells the client why, then disconnects it (native: a close frame with `code`).
    async fn close(&self, code: u16) {
        let reason = close::reason(code);
        self.emit("close", &CloseEvent { code, reason }).await;
        self.disconnect().await;
    }

    /// Disconnects the socket, waiting for room in its buffer as long as the client is there.
    async fn disconnect(&self) {
        loop {
            match self.socket.clone().disconnect() {
                Err(SocketError::InternalChannelFull) => {}
                Ok(()) | Err(SocketError::Closed) => return,
            }
            tokio::select! {
                _ = self.gone.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
}

/// The socket's task: the `auth` reply, then requests and events until the socket goes.
async fn serve(writer: Writer, mut session: Session) {
    tracing::debug!("session started");
    // The welcome (with the list of who is online) is sent and freed here: held for the
    // socket's life it cost every connection the size of that list.
    let welcomed = match session.welcome.take() {
        Some(welcome) => writer.emit("auth", &Reply::Auth(welcome)).await,
        None => true,
    };
    let code = if welcomed {
        pump(&writer, &mut session).await
    } else {
        None
    };
    match code {
        Some(code) => writer.close(code).await,
        None if !session.gone.is_cancelled() => writer.disconnect().await,
        None => {}
    }
    tracing::debug!(?code, "session ended");
}

/// The authenticated loop. Returns the close code to send, if any.
async fn pump(writer: &Writer, session: &mut Session) -> Option<u16> {
    let Session {
        conn,
        outbox,
        inbox,
        gone,
        ..
    } = session;
    loop {
        tokio::select! {
            _ = gone.cancelled() => return None,
            incoming = inbox.recv() => {
                let incoming = incoming?;
                if !answer(conn, writer, incoming).await {
                    return None;
                }
            }
            item = outbox.next() => match item {
                OutboxItem::Event(event) => {
                    if !writer.events(&event, outbox).await {
                        return None;
                    }
                }
                OutboxItem::Close(code) => return Some(code),
                // Engine.IO pings the client itself (pingInterval / pingTimeout).
                OutboxItem::Keepalive => {}
            },
        }
    }
}

/// Answers one request: through its acknowledgement, or, when it has none, with an `error`
/// event if it failed. False if the socket is gone.
async fn answer(conn: &mut Connection, writer: &Writer, mut incoming: Incoming) -> bool {
    let (name, result) = match parse(&incoming.payload) {
        Ok((name, request)) => (name, conn.request(request).await),
        Err((name, e)) => (name, Err(e)),
    };
    match (incoming.ack_id, result) {
        (Some(_), Ok(data)) => writer.ack(&mut incoming, &success(&data)).await,
        (Some(_), Err(e)) => writer.ack(&mut incoming, &failure(&e)).await,
        (None, Ok(_)) => true,
        (None, Err(e)) => writer.emit("error", &error_event(&name, &e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Uri};
    use natter_core::protocol::AuthArgs;
    use serde_json::json;
    use socketioxide::handler::Value as Payload;

    /// Whether `bytes` lie inside `buffer` (share its allocation).
    fn inside(buffer: &bytes::Bytes, bytes: &[u8]) -> bool {
        let range = buffer.as_ptr_range();
        range.contains(&bytes.as_ptr())
    }

    /// A request head as hyper makes it, every part a slice of one read buffer: the Socket.IO
    /// adapter's copy holds nothing of that buffer; any other request is left as it is.
    #[tokio::test]
    async fn a_socket_io_request_keeps_nothing_of_the_read_buffer() {
        let text =
            "/socket.io/?EIO=4&transport=websocket dGhlIHNhbXBsZSBub25jZQ== websocket /api/me";
        let mut buffer = bytes::BytesMut::with_capacity(16 * 1024);
        buffer.extend_from_slice(text.as_bytes());
        let buffer = buffer.freeze();
        let slice = |word: &str| {
            let start = text.find(word).expect("word");
            buffer.slice(start..start + word.len())
        };
        let request = |path: &str| {
            let uri = Uri::from_maybe_shared(slice(path)).expect("uri");
            let mut request = axum::extract::Request::new(axum::body::Body::empty());
            *request.uri_mut() = uri.clone();
            request.extensions_mut().insert(OriginalUri(uri));
            for (name, word) in [
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("upgrade", "websocket"),
            ] {
                let value = HeaderValue::from_maybe_shared(slice(word)).expect("value");
                request.headers_mut().insert(name, value);
            }
            request
        };
        let sliced = |request: &axum::extract::Request| {
            let original = request.extensions().get::<OriginalUri>().expect("original");
            let mut parts = vec![
                inside(&buffer, request.uri().path().as_bytes()),
                inside(&buffer, original.0.path().as_bytes()),
            ];
            parts.extend(
                request
                    .headers()
                    .values()
                    .map(|v| inside(&buffer, v.as_bytes())),
            );
            parts
        };

        let before = request("/socket.io/?EIO=4&transport=websocket");
        assert_eq!(
            sliced(&before),
            [true; 4],
            "the test's request is built of slices"
        );
        let after = own_request_head(before).await;
        assert_eq!(sliced(&after), [false; 4], "nothing of the buffer is kept");
        assert_eq!(after.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(
            after.headers()["sec-websocket-key"],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert_eq!(after.headers()["upgrade"], "websocket");

        let other = own_request_head(request("/socket.io/?EIO=4")).await;
        assert_eq!(
            sliced(&other),
            [false; 4],
            "a polling request is copied too"
        );
        let api = own_request_head(request("/api/me")).await;
        assert_eq!(sliced(&api), [true; 4], "other requests pass untouched");
    }

    fn payload(text: &str) -> Payload {
        Payload::Str(text.to_string().into(), None)
    }

    #[test]
    fn reads_requests_from_events() {
        let (name, request) = parse(&payload(
            r#"["message.send",{"room":1,"body":"hi","client_id":"c"}]"#,
        ))
        .expect("parses");
        assert_eq!(name, "message.send");
        assert!(matches!(request, Request::MessageSend(_)));
        let (_, request) = parse(&payload(r#"["room.list"]"#)).expect("no data");
        assert!(matches!(request, Request::RoomList));
    }

    #[test]
    fn refuses_bad_events() {
        let (name, e) = parse(&payload(r#"["message.send","hello"]"#)).expect_err("not object");
        assert_eq!(name, "message.send");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let (_, e) = parse(&payload(r#"["fly",{}]"#)).expect_err("unknown");
        assert_eq!(e.code, ErrorCode::UnknownType);
        let (_, e) = parse(&payload(r#"["ping",{},{}]"#)).expect_err("two args");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let (_, e) = parse(&payload(r#"["message.send",{"room":1}]"#)).expect_err("missing");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    fn auth_args(auth: Result<Json, ParserError>) -> Result<AuthArgs, ChatError> {
        match auth_request(auth)? {
            Request::Auth(args) => Ok(args),
            other => panic!("not an auth request: {other:?}"),
        }
    }

    #[test]
    fn handshake_auth_is_the_auth_request() {
        let e = auth_args(Ok(json!({}))).expect_err("no token");
        assert_eq!(e.code, ErrorCode::Unauthenticated);
        let args = auth_args(Ok(
            json!({"token": "t", "resume": {"1": 4}, "presence": false}),
        ))
        .expect("parses");
        assert_eq!(args.resume.get("1"), Some(&4));
        assert!(!args.presence);
        let e = auth_args(Ok(json!({"token": 5}))).expect_err("bad type");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let shown = Refusal(ChatError::new(ErrorCode::Unauthenticated, "invalid token"));
        assert_eq!(shown.to_string(), "unauthenticated: invalid token");
    }
}
