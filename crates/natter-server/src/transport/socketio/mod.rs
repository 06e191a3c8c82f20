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
//!   `Outbox`: it answers requests (sends pipelined as on `/ws`; acknowledgements carry the
//!   replies, in request order) and emits events, their `data` JSON passed through as encoded by the core.
//!
//! In relay mode (`--relay`) a socket that connects without a token is a guest speaking the
//! Socket.IO tutorial's protocol instead ([`relay`]); one with a token is unchanged.
//!
//! Files: [`head`] (the request head copy), [`requests`] (reading and queueing requests),
//! [`writer`] (writes, acknowledgements, typed ack/error/close frames), [`relay`] (relay
//! mode's events), [`flush`] (a disconnected polling client is waited for); the handshake and
//! the socket's task are here.

mod flush;
mod head;
mod relay;
mod requests;
#[cfg(test)]
mod tests;
pub(crate) mod wire;
mod writer;

pub use flush::PollFlushes;
pub use head::own_request_head;
/// The event parser, public only for the fuzz target of the Socket.IO packet path (fuzz/).
#[doc(hidden)]
pub use requests::parse as parse_event;

/// The WebSocket path's packet reader (ADR 0029), public only for the same fuzz target: a
/// text frame's event, read as a request (None for a packet that is no event).
#[doc(hidden)]
pub fn read_ws_event(text: &str) -> Option<(String, Result<Request, ChatError>)> {
    match wire::read(text) {
        wire::Packet::Event { args, .. } => Some(wire::request(args)),
        _ => None,
    }
}
use requests::{parse, Incoming, Requests};
pub(crate) use writer::CloseEvent;
use writer::{error_event, failure, success, Writer};

use crate::metrics::ServerMetrics;
use crate::AppState;
use natter_core::protocol::{AuthReply, Reply};
use natter_core::{AuthStep, ChatError, Connection, ErrorCode, Request};
use natter_core::{Outbox, OutboxItem};
use serde_json::Value as Json;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{ParserError, SocketIo};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
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

/// The Socket.IO layer for the HTTP router: it answers `/socket.io/` and passes every other
/// request through.
pub fn layer(state: &AppState) -> SocketIoLayer {
    let config = &state.config;
    let frame = config.max_frame_bytes;
    // The same heartbeat as sockets on the native loop (`ws::sio`): the node's keepalive.
    let period = state.node.config().keepalive;
    let (layer, io) = SocketIo::builder()
        .ping_interval(period)
        .ping_timeout(period * 3 / 2)
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
    state.metrics.set_socket_io(io);
    layer
}

/// Middleware, outside [`layer`]: a Socket.IO WebSocket opened without a session id (a
/// client on `transports: ["websocket"]`) is served on Natter's own connection loop
/// (`transport::ws::sio`, ADR 0029); everything else goes on to socketioxide (long-polling,
/// polling upgraded to WebSocket, and every socket in relay mode).
pub async fn direct(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !state.config.relay && opens_websocket(&req) {
        return crate::transport::ws::socketio_upgrade(state, req);
    }
    next.run(req).await
}

/// `GET /socket.io/?EIO=4&transport=websocket` with `Upgrade: websocket` and no `sid`.
fn opens_websocket(req: &axum::extract::Request) -> bool {
    let path = req.uri().path();
    if path != "/socket.io/" && path != SOCKET_IO_PATH {
        return false;
    }
    let upgrade = req
        .headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade || req.method() != axum::http::Method::GET {
        return false;
    }
    let (mut eio4, mut websocket, mut sid) = (false, false, false);
    for pair in req.uri().query().unwrap_or("").split('&') {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("EIO", "4") => eio4 = true,
            ("transport", "websocket") => websocket = true,
            ("sid", _) => sid = true,
            _ => {}
        }
    }
    eio4 && websocket && !sid
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
        f.write_str(&refusal_text(&self.0))
    }
}

/// A refused handshake's `connect_error` `message`: `"<code>: <message>"`.
pub(crate) fn refusal_text(e: &ChatError) -> String {
    format!("{}: {}", e.code.as_str(), e.message)
}

/// Counts a Socket.IO connection in `ServerMetrics::socketio_connections` while it lives.
pub(crate) struct Counted(Arc<ServerMetrics>);

impl Counted {
    pub(crate) fn new(metrics: &Arc<ServerMetrics>) -> Counted {
        metrics.socketio_connections.inc();
        Counted(metrics.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.socketio_connections.dec();
    }
}

/// One socket's session between its authentication and its task's start.
struct Session {
    conn: Connection,
    /// After `conn`, so dropped after it: this count (subtracted from the core's to give
    /// `/ws`'s) is up before the core's and down after it, and never counts a Socket.IO
    /// connection as a `/ws` one.
    _counted: Counted,
    outbox: Outbox,
    /// The `auth` reply data, the socket's first event (taken when sent).
    welcome: Option<Box<AuthReply>>,
    /// Requests in arrival order.
    inbox: mpsc::Receiver<Incoming>,
    /// Cancelled when the socket disconnects.
    gone: CancellationToken,
    /// A relay socket's rooms (None: the full protocol).
    relay: Option<relay::RelayRooms>,
}

/// Hands the session from the middleware to the connect handler (socket extensions must be
/// `Clone`).
#[derive(Clone)]
struct Pending(Arc<Mutex<Option<Session>>>);

/// The handshake's `auth` payload as the native `auth` request.
pub(crate) fn auth_request<E>(auth: Result<Json, E>) -> Result<Request, ChatError> {
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

/// Whether the handshake's `auth` names a token (without one, relay mode applies if on).
fn has_token(auth: &Result<Json, ParserError>) -> bool {
    auth.as_ref().is_ok_and(|auth| auth.get("token").is_some())
}

/// The connect middleware: authenticates (or, in relay mode without a token, signs a guest
/// in), and makes the socket ready to take requests.
async fn authenticate(
    socket: SocketRef,
    auth: Result<Json, ParserError>,
    state: AppState,
) -> Result<(), Refusal> {
    let (conn, counted, outbox, welcome, relay) = if state.config.relay && !has_token(&auth) {
        let (conn, counted, outbox, rooms) = relay::sign_in(&socket, &state).await?;
        (conn, counted, outbox, None, Some(rooms))
    } else {
        let counted = Counted::new(&state.metrics);
        let mut conn = Connection::new(state.node.clone());
        // The core's auth phase decides; any refusal ends the handshake (a `connect_error`).
        let (welcome, outbox) = match conn.before_auth(auth_request(auth)).await {
            AuthStep::Done(welcome, outbox) => (welcome, outbox),
            AuthStep::Refused { error, .. } => {
                tracing::debug!(code = error.code.as_str(), "socket.io handshake refused");
                return Err(Refusal(error));
            }
        };
        (conn, counted, outbox, Some(welcome), None)
    };
    // Requests beyond the rate limit's burst are refused anyway; a deeper queue only holds
    // what the token bucket would turn away.
    let depth = (state.config.rate_burst.ceil() as usize).saturating_add(16);
    let (requests, inbox) = mpsc::channel(depth);
    let gone = CancellationToken::new();
    socket.on_fallback(Requests {
        queue: requests,
        metrics: state.metrics.clone(),
    });
    let on_gone = gone.clone();
    socket.on_disconnect(move || {
        let on_gone = on_gone.clone();
        async move { on_gone.cancel() }
    });
    let session = Session {
        conn,
        _counted: counted,
        outbox,
        welcome,
        inbox,
        gone,
        relay,
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
        flushes: state.poll_flushes.clone(),
    };
    state.tasks.spawn(serve(writer, session).instrument(span));
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
///
/// Requests are pipelined as on `/ws` (docs/socketio.md section 2): a `message.send` that may
/// run alongside others (`Connection::may_pipeline`) starts at once, up to [`MAX_IN_FLIGHT`];
/// any other request first waits for those in flight. Acknowledgements leave in request
/// order, each with its own id; the store keeps the sends in the order they came.
async fn pump(writer: &Writer, session: &mut Session) -> Option<u16> {
    let Session {
        conn,
        outbox,
        inbox,
        gone,
        relay,
        ..
    } = session;
    let mut in_flight = InFlight::default();
    loop {
        tokio::select! {
            _ = gone.cancelled() => return None,
            done = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(done) = done {
                    if !done.send(writer).await {
                        return None;
                    }
                }
            }
            incoming = inbox.recv(), if in_flight.len() < MAX_IN_FLIGHT => {
                let incoming = incoming?;
                let answered = match relay {
                    Some(rooms) => relay::answer(conn, writer, incoming, rooms).await,
                    None => take(conn, writer, incoming, &mut in_flight).await,
                };
                if !answered {
                    return None;
                }
            }
            item = outbox.next() => match item {
                OutboxItem::Event(event) => {
                    let written = match relay {
                        Some(rooms) => relay::events(writer, &event, outbox, rooms).await,
                        None => writer.events(&event, outbox).await,
                    };
                    if !written {
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

/// Requests of one socket worked on at once at most, as on `/ws`; past it the socket's
/// request queue is not read until acknowledgements have gone out.
const MAX_IN_FLIGHT: usize = 64;

/// A request worked out: what its answer needs.
struct Answered {
    incoming: Incoming,
    name: String,
    result: Result<Reply, ChatError>,
}

impl Answered {
    /// Sends the answer: the acknowledgement, or an `error` event for a failure without one.
    async fn send(mut self, writer: &Writer) -> bool {
        match (self.incoming.ack_id, self.result) {
            (Some(_), Ok(data)) => writer.ack(&mut self.incoming, &success(&data)).await,
            (Some(_), Err(e)) => writer.ack(&mut self.incoming, &failure(&e)).await,
            (None, Ok(_)) => true,
            (None, Err(e)) => writer.emit("error", &error_event(&self.name, &e)).await,
        }
    }
}

type Working = std::pin::Pin<Box<dyn std::future::Future<Output = Answered> + Send>>;

/// Answers being worked out, in request order (the queue exists only while one is).
#[derive(Default)]
struct InFlight(Option<Box<futures_util::stream::FuturesOrdered<Working>>>);

impl InFlight {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |queue| queue.len())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_back(&mut self, work: Working) {
        self.0.get_or_insert_with(Default::default).push_back(work);
    }

    /// The next answer in request order; None when nothing is in flight. Cancel-safe.
    async fn next(&mut self) -> Option<Answered> {
        use futures_util::StreamExt;
        let queue = self.0.as_mut()?;
        let answered = queue.next().await;
        if queue.is_empty() {
            self.0 = None;
        }
        answered
    }
}

/// Takes one request: starts it beside those in flight, or (any other request) answers
/// those in flight first and then it alone. False if the socket is gone.
async fn take(
    conn: &mut Connection,
    writer: &Writer,
    incoming: Incoming,
    in_flight: &mut InFlight,
) -> bool {
    match parse(&incoming.payload) {
        Ok((name, request)) if conn.may_pipeline(&request) => {
            let work: Working = match conn.start(request) {
                Ok(work) => Box::pin(async move {
                    let result = work.await;
                    Answered {
                        incoming,
                        name,
                        result,
                    }
                }),
                Err(e) => Box::pin(std::future::ready(Answered {
                    incoming,
                    name,
                    result: Err(e),
                })),
            };
            in_flight.push_back(work);
            true
        }
        parsed => {
            while let Some(done) = in_flight.next().await {
                if !done.send(writer).await {
                    return false;
                }
            }
            let (name, result) = match parsed {
                Ok((name, request)) => (name, conn.request(request).await),
                Err((name, e)) => (name, Err(e)),
            };
            Answered {
                incoming,
                name,
                result,
            }
            .send(writer)
            .await
        }
    }
}
