//! The native WebSocket transport at `/ws`: JSON text frames as in docs/protocol.md.
//!
//! It owns the HTTP upgrade (RFC 6455 handshake) and the session loop; the frame codec is
//! [`super::wsframe`]. One task per connection on one unsplit socket: it reads frames and
//! answers them through the core's `Connection`, and writes what the session's `Outbox`
//! yields, every ready frame in one vectored write. A write that stalls longer than
//! `write_timeout` drops the connection. Pipelined `message.send`s run concurrently (up to
//! `MAX_IN_FLIGHT`, so they share group commits); any other request waits for those before
//! it. Replies leave in request order. There is no timer per connection: the node's
//! keepalive sweep makes the outbox yield `Keepalive`, and the loop pings or, if the client
//! has been silent for 2.5 keepalive periods, closes with 1001.
//!
//! Memory: an idle connection holds no read or write buffer. Reads go into a per-thread
//! scratch buffer and are decoded at once; only an incomplete frame is kept. Writes send
//! each frame's 2-10 byte header and its payload `Bytes` (for an event, the same bytes
//! every recipient gets) straight to `writev`, and keep nothing once written.

use super::wsframe::{self, opcode, DecodeError, Decoder, Frame, ServerHeader};
use crate::config::Config;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::future::Either;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use natter_core::protocol::{encode_error, encode_ok, parse_frame, Reply, Request as ChatRequest};
use natter_core::{
    close, AuthStep, ChatError, Connection, ErrorCode, KeepaliveStep, Node, Outbox, OutboxItem,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_util::task::TaskTracker;

/// How long the close handshake may take (sending our close, then hearing the client's).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The per-thread buffer every connection reads into.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Frames gathered into one write at most (events beyond wait for the next round).
const MAX_BATCH: usize = 256;
/// Buffers handed to one `writev` (two per frame, so a whole batch; under IOV_MAX).
const MAX_IO_SLICES: usize = 2 * MAX_BATCH;
/// Buffers a write gathers on the stack; more go in a vector.
const FEW_IO_SLICES: usize = 16;

/// Points `slices` at the frames' unwritten bytes (headers and payloads, skipping `offset`
/// bytes already written of the first frame); returns how many it filled.
fn gather_slices<'a>(frames: &'a [Out], offset: usize, slices: &mut [IoSlice<'a>]) -> usize {
    let mut count = 0;
    let mut skip = offset;
    for out in frames {
        for part in [out.header.as_slice(), &out.payload[..]] {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            if count == slices.len() {
                return count;
            }
            slices[count] = IoSlice::new(&part[skip..]);
            count += 1;
            skip = 0;
        }
    }
    count
}

thread_local! {
    /// Where connections on this thread read into; what is read is decoded before the read
    /// returns, so nothing here outlives one poll.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
}

/// Runs `f` on this thread's scratch buffer (a small stack buffer if it is in use).
fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut [0u8; 2048]),
    })
}

/// The byte streams a session can run on: the raw `TcpStream` (the normal case) or, should
/// hyper hand over another transport, its upgraded I/O.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// `GET /ws`: checks the handshake, answers 101 and starts the session once hyper hands over
/// the connection. A bad handshake gets a JSON error: 400, or 426 for a missing upgrade or
/// an unsupported `Sec-WebSocket-Version` (with `Sec-WebSocket-Version: 13`).
pub async fn upgrade(State(state): State<AppState>, mut req: Request) -> Response {
    let accept = match check_handshake(req.version(), req.headers()) {
        Ok(accept) => accept,
        Err(refusal) => return refusal.into_response(),
    };
    if req
        .extensions()
        .get::<hyper::upgrade::OnUpgrade>()
        .is_none()
    {
        return Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded",
        )
        .into_response();
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let task = connection(
        on_upgrade,
        state.node.clone(),
        state.config.clone(),
        state.tasks.clone(),
    );
    tokio::spawn(state.tasks.track_future(task));
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

/// A refused handshake.
struct Refusal {
    status: StatusCode,
    message: &'static str,
}

impl Refusal {
    fn new(status: StatusCode, message: &'static str) -> Refusal {
        Refusal { status, message }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({"error": {"code": "invalid_request", "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UPGRADE_REQUIRED {
            let headers = response.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

/// Checks an upgrade request (RFC 6455 section 4.2.1); returns `Sec-WebSocket-Accept`.
fn check_handshake(version: Version, headers: &HeaderMap) -> Result<String, Refusal> {
    if !has_token(headers, header::UPGRADE, "websocket") {
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: send `Upgrade: websocket`",
        ));
    }
    if version != Version::HTTP_11 {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "WebSocket upgrades need HTTP/1.1",
        ));
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "`Connection` header must include `upgrade`",
        ));
    }
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported `Sec-WebSocket-Version`: only 13 is spoken",
        ));
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(key) if wsframe::valid_key(key.as_bytes()) => Ok(wsframe::accept_key(key.as_bytes())),
        _ => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Key` missing or not base64 of 16 bytes",
        )),
    }
}

/// Whether a comma-separated header has `token` (case-insensitive) in any of its values.
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// One connection's task: waits for hyper to hand the connection over, then serves it on the
/// raw `TcpStream` (with any bytes hyper read past the request); another I/O type is served
/// through hyper's upgraded stream instead.
///
/// Memory: this future is what an idle connection costs. An async fn keeps its arguments for
/// its whole life next to the locals they are moved into, so this is a plain fn returning an
/// `async move` block (which uses what it captured in place), the connection's state is built
/// once in it (`Live`), and everything below borrows that with one pointer.
#[allow(clippy::manual_async_fn)] // on purpose: see above (an async fn is 32 bytes larger)
fn connection(
    on_upgrade: OnUpgrade,
    node: Arc<Node>,
    config: Arc<Config>,
    tasks: TaskTracker,
) -> impl Future<Output = ()> + Send {
    async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let socket = match Socket::from_upgraded(upgraded, &config) {
            Ok(socket) => socket,
            Err(other) => {
                // Its own task: awaiting it in this match would keep the match's value (as
                // big as a socket) in this future for every connection.
                tracing::debug!("upgraded I/O is not a TcpStream; serving through hyper");
                tasks.spawn(serve_owned(Connection::new(node), *other));
                return;
            }
        };
        let mut live = Live {
            conn: Connection::new(node),
            socket,
        };
        serve(&mut live).await;
    }
}

/// One connection's state, from the upgrade on.
struct Live<S> {
    conn: Connection,
    socket: Socket<S>,
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Send a close frame with this code, then close.
    Close(u16),
    /// The client sent a close frame (with this code, if any): echo it, then close.
    Echo(Option<u16>),
    /// The socket failed, ended or stalled: just drop it.
    Drop,
}

/// One outgoing frame: its header and its payload, shared, never copied.
struct Out {
    header: ServerHeader,
    payload: Bytes,
}

impl Out {
    fn new(op: u8, payload: Bytes) -> Out {
        Out {
            header: ServerHeader::new(op, payload.len()),
            payload,
        }
    }

    fn text(payload: Bytes) -> Out {
        Out::new(opcode::TEXT, payload)
    }

    fn len(&self) -> usize {
        self.header.as_slice().len() + self.payload.len()
    }
}

/// One connection's socket: the stream, the decoder's state and frames decoded but not yet
/// handled. Reading is cancel-safe (a read is decoded within the poll that made it).
struct Socket<S> {
    io: S,
    decoder: Decoder,
    /// Frames decoded and not yet handled (unallocated when empty).
    pending: VecDeque<Frame>,
    /// Set when reading is over: handle `pending`, then end like this.
    broken: Option<End>,
    /// (Milliseconds in a `u32`: every connection keeps one.)
    write_timeout_ms: u32,
}

/// The socket on hyper's upgraded stream, for I/O that is not a `TcpStream`.
type HyperSocket = Socket<TokioIo<Upgraded>>;

impl Socket<TcpStream> {
    /// The raw `TcpStream` back from hyper, with any bytes it read past the request decoded;
    /// other I/O stays on hyper's stream. Not async on purpose: nothing of hyper's (its
    /// upgrade parts, its read buffer) may stay in the connection's future.
    fn from_upgraded(upgraded: Upgraded, config: &Config) -> Result<Self, Box<HyperSocket>> {
        match hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<TcpStream>>(upgraded) {
            Ok(parts) => {
                let mut socket = Socket::new(parts.io.into_inner(), config);
                socket.decode(&parts.read_buf);
                Ok(socket)
            }
            Err(upgraded) => Err(Box::new(Socket::new(TokioIo::new(upgraded), config))),
        }
    }
}

impl<S: Io> Socket<S> {
    fn new(io: S, config: &Config) -> Socket<S> {
        Socket {
            io,
            decoder: Decoder::new(config.max_frame_bytes),
            pending: VecDeque::new(),
            broken: None,
            write_timeout_ms: u32::try_from(config.write_timeout.as_millis()).unwrap_or(u32::MAX),
        }
    }

    fn decode(&mut self, bytes: &[u8]) {
        if let Err(e) = self.decoder.feed(bytes, &mut self.pending) {
            if let DecodeError::Protocol(why) = e {
                tracing::debug!(why, "protocol error");
            }
            self.broken = Some(End::Close(e.close_code()));
        }
    }

    /// The next whole frame from the client, or how the connection ends.
    fn next(&mut self) -> impl Future<Output = Result<Frame, End>> + '_ {
        // A poll function rather than an async fn: the waiting future is one pointer.
        poll_fn(|cx| loop {
            if let Some(frame) = self.pending.pop_front() {
                if self.pending.is_empty() {
                    self.pending = VecDeque::new();
                }
                return Poll::Ready(Ok(frame));
            }
            if let Some(end) = self.broken {
                return Poll::Ready(Err(end));
            }
            std::task::ready!(self.poll_fill(cx));
        })
    }

    /// Reads until a frame is decoded or reading is over.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.pending.is_empty() && self.broken.is_none() {
            let read = with_scratch(|buf| {
                let mut buf = ReadBuf::new(buf);
                match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(_)) => Poll::Ready(false),
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(false),
                    Poll::Ready(Ok(())) => {
                        self.decode(buf.filled());
                        Poll::Ready(true)
                    }
                }
            });
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(false) => self.broken = Some(End::Drop),
                Poll::Ready(true) => {}
            }
        }
        Poll::Ready(())
    }

    /// Writes frames (one `writev` for as many as fit); false if the socket failed or
    /// stalled past `write_timeout`.
    fn send<'a>(&'a mut self, frames: &'a [Out]) -> impl Future<Output = bool> + Send + 'a {
        let limit = Duration::from_millis(u64::from(self.write_timeout_ms));
        self.write_within(frames, limit)
    }

    /// Writes frames; false if the socket failed or the write took longer than `limit`.
    /// The usual case, a socket with room, is written at once, when this is called, without
    /// a timer; only a full socket sets up the (boxed) timed wait. So the future every
    /// connection's task holds while writing is a flag or a pointer.
    fn write_within<'a>(
        &'a mut self,
        frames: &'a [Out],
        limit: Duration,
    ) -> impl Future<Output = bool> + Send + 'a {
        let mut at = (0, 0);
        let first = {
            let mut now = Context::from_waker(std::task::Waker::noop());
            self.poll_write(&mut now, frames, &mut at)
        };
        match first {
            Poll::Ready(done) => Either::Left(std::future::ready(done.is_ok())),
            Poll::Pending => Either::Right(Box::pin(async move {
                let rest = poll_fn(|cx| self.poll_write(cx, frames, &mut at));
                matches!(timeout(limit, rest).await, Ok(Ok(())))
            })),
        }
    }

    async fn send_text(&mut self, payload: Bytes) -> bool {
        self.send(&[Out::text(payload)]).await
    }

    /// Writes `frames` from `at` (the frame being written, and the bytes of it already out)
    /// with vectored writes until done or the socket is full.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        frames: &[Out],
        at: &mut (usize, usize),
    ) -> Poll<std::io::Result<()>> {
        let (frame, offset) = at;
        loop {
            let wanted = (2 * (frames.len() - *frame)).min(MAX_IO_SLICES);
            if wanted == 0 {
                return Pin::new(&mut self.io).poll_flush(cx);
            }
            // The usual write is a frame or two: its slices on the stack. (Filling an array
            // for a whole batch on every write cost 7% of the server's CPU in fanout.)
            let written = if wanted <= FEW_IO_SLICES {
                let mut slices = [IoSlice::new(&[]); FEW_IO_SLICES];
                let count = gather_slices(&frames[*frame..], *offset, &mut slices);
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count])
            } else {
                let mut slices = vec![IoSlice::new(&[]); wanted];
                let count = gather_slices(&frames[*frame..], *offset, &mut slices);
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count])
            };
            let mut written = match written {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => n,
            };
            while written > 0 {
                let left = frames[*frame].len() - *offset;
                if written >= left {
                    written -= left;
                    *frame += 1;
                    *offset = 0;
                } else {
                    *offset += written;
                    written = 0;
                }
            }
        }
    }

    /// Ends the connection: sends the close frame, half-closes, and reads what the client
    /// still sends until it closes too (so that closing does not reset the connection and
    /// destroy the close frame in flight).
    async fn finish(&mut self, end: End) {
        let payload = match end {
            End::Drop => return,
            End::Close(code) => wsframe::close_payload(code, close::reason(code)),
            End::Echo(Some(code)) => code.to_be_bytes().to_vec(),
            End::Echo(None) => Vec::new(),
        };
        let frame = Out::new(opcode::CLOSE, Bytes::from(payload));
        if !self.write_within(&[frame], CLOSE_TIMEOUT).await {
            return;
        }
        let drain = async {
            poll_fn(|cx| Pin::new(&mut self.io).poll_shutdown(cx)).await?;
            poll_fn(|cx| self.poll_discard(cx)).await
        };
        let _ = timeout(CLOSE_TIMEOUT, drain).await;
    }

    /// Reads and drops everything until the stream ends.
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        loop {
            let read = with_scratch(|buf| {
                let mut buf = ReadBuf::new(buf);
                match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) if !buf.filled().is_empty() => None,
                    other => Some(other),
                }
            });
            if let Some(done) = read {
                return done;
            }
        }
    }
}

/// `serve` for what it owns (the rare case of I/O that is not a `TcpStream`).
async fn serve_owned<S: Io>(conn: Connection, socket: Socket<S>) {
    let mut live = Live { conn, socket };
    serve(&mut live).await
}

async fn serve<S: Io>(live: &mut Live<S>) {
    let end = session(live).await;
    // The session is over for the core (presence, rooms) before the close handshake.
    live.conn.end();
    Box::pin(live.socket.finish(end)).await;
}

/// Authentication, then the loop. Authentication is boxed, as are the other rare and large
/// steps (a barrier request, the close): the task of an idle connection holds only the
/// loop's waiting state.
async fn session<S: Io>(live: &mut Live<S>) -> End {
    let authenticating = authenticate(&mut live.conn, &mut live.socket);
    let mut outbox = match Box::pin(authenticating).await {
        Ok(outbox) => outbox,
        Err(end) => return end,
    };
    tracing::debug!(
        user = live.conn.user().map(|u| u.name.as_str()),
        "session started"
    );
    let end = pump(live, &mut outbox).await;
    tracing::debug!(
        user = live.conn.user().map(|u| u.name.as_str()),
        ?end,
        "session ended"
    );
    end
}

/// The auth phase: frames go to the core's `Connection::before_auth`, which decides what each
/// gets. Returns the outbox, or how the connection ends.
async fn authenticate<S: Io>(conn: &mut Connection, socket: &mut Socket<S>) -> Result<Outbox, End> {
    let deadline = Instant::now() + conn.auth_timeout();
    loop {
        let frame = match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return Err(End::Close(close::UNAUTHENTICATED)),
            Ok(frame) => frame?,
        };
        let text = match frame {
            Frame::Text(t) => t,
            Frame::Binary => {
                send_or_drop(socket, binary_error()).await?;
                continue;
            }
            Frame::Close(code) => return Err(End::Echo(code)),
            Frame::Ping(payload) => {
                pong(socket, payload).await?;
                continue;
            }
            Frame::Pong => continue,
        };
        let (reference, request) = match parse_frame(&text) {
            Ok((reference, request)) => (Some(reference), Ok(request)),
            Err(e) => (e.reference, Err(e.error)),
        };
        match conn.before_auth(request).await {
            AuthStep::Done(reply, outbox) => {
                let reference = reference.unwrap_or_default();
                send_or_drop(socket, encode_ok(&reference, &Reply::Auth(reply))).await?;
                return Ok(outbox);
            }
            AuthStep::Refused { error, close } => {
                send_or_drop(socket, encode_error(reference.as_deref(), &error)).await?;
                if let Some(code) = close {
                    return Err(End::Close(code));
                }
            }
        }
    }
}

/// Sends a text frame; a failed write ends the connection.
async fn send_or_drop<S: Io>(socket: &mut Socket<S>, payload: Bytes) -> Result<(), End> {
    if socket.send_text(payload).await {
        Ok(())
    } else {
        Err(End::Drop)
    }
}

async fn pong<S: Io>(socket: &mut Socket<S>, payload: Vec<u8>) -> Result<(), End> {
    if socket
        .send(&[Out::new(opcode::PONG, Bytes::from(payload))])
        .await
    {
        Ok(())
    } else {
        Err(End::Drop)
    }
}

fn binary_error() -> Bytes {
    encode_error(
        None,
        &ChatError::new(
            ErrorCode::BinaryUnsupported,
            "binary frames are not supported; send JSON text frames",
        ),
    )
}

/// Requests of one connection in flight at once (pipelined sends); beyond this the socket
/// is not read until replies go out, so TCP pushes back on the client.
const MAX_IN_FLIGHT: usize = 64;

/// A reply being worked out; replies leave in request order.
type PendingReply = Pin<Box<dyn Future<Output = Bytes> + Send>>;

fn reply_bytes(reference: &str, result: Result<Reply, ChatError>) -> Bytes {
    match result {
        Ok(data) => encode_ok(reference, &data),
        Err(e) => encode_error(Some(reference), &e),
    }
}

/// What one incoming frame asks of the loop.
enum Incoming {
    /// Send this reply (after those in flight).
    Reply(Bytes),
    /// Start this request alongside those in flight.
    Pipelined(PendingReply),
    /// Finish everything in flight, then run this request alone.
    Barrier(String, ChatRequest),
    /// Answer a ping.
    Pong(Vec<u8>),
    /// The connection is over.
    End(End),
    Ignore,
}

fn classify(conn: &mut Connection, frame: Frame) -> Incoming {
    let text = match frame {
        Frame::Text(t) => t,
        Frame::Binary => return Incoming::Reply(binary_error()),
        Frame::Close(code) => return Incoming::End(End::Echo(code)),
        Frame::Ping(payload) => return Incoming::Pong(payload),
        Frame::Pong => return Incoming::Ignore,
    };
    match parse_frame(&text) {
        Err(e) => Incoming::Reply(encode_error(e.reference.as_deref(), &e.error)),
        Ok((reference, request)) if conn.may_pipeline(&request) => match conn.start(request) {
            Ok(work) => {
                Incoming::Pipelined(Box::pin(async move { reply_bytes(&reference, work.await) }))
            }
            Err(e) => Incoming::Reply(encode_error(Some(&reference), &e)),
        },
        Ok((reference, request)) => Incoming::Barrier(reference, request),
    }
}

/// Appends the events ready in the outbox (up to the batch bound) to `batch`.
fn take_ready_events(outbox: &mut Outbox, batch: &mut Vec<Out>) {
    while batch.len() < MAX_BATCH {
        let Some(event) = outbox.try_next() else {
            break;
        };
        batch.push(Out::text(event.frame.clone()));
    }
}

/// The authenticated loop. Returns how the connection ends.
///
/// Each round waits for one thing (a frame, a finished reply, an event, a keepalive),
/// gathers what it makes ready to send, and writes that in one go. One write point and a
/// boxed barrier keep the state an idle connection's task holds small.
async fn pump<S: Io>(live: &mut Live<S>, outbox: &mut Outbox) -> End {
    let mut heard = Instant::now();
    let mut in_flight = InFlight::default();
    loop {
        // Waiting holds only these three small futures; handling what woke the loop is
        // done after they are dropped.
        let woke = tokio::select! {
            frame = live.socket.next(), if in_flight.len() < MAX_IN_FLIGHT => Woke::Frame(frame),
            Some(reply) = in_flight.next(), if !in_flight.is_empty() => Woke::Reply(reply),
            item = outbox.next() => Woke::Outbox(item),
        };
        let mut batch: Vec<Out> = Vec::new();
        {
            let step: Step<'_> = match woke {
                Woke::Frame(Ok(frame)) => {
                    heard = Instant::now();
                    incoming(
                        &mut live.conn,
                        &mut live.socket,
                        &mut in_flight,
                        frame,
                        &mut batch,
                    )
                }
                Woke::Frame(Err(end)) => Step::End(end),
                Woke::Reply(reply) => {
                    // This reply, the others already done and the events ready: one write.
                    batch.push(Out::text(reply));
                    while let Some(Some(reply)) = in_flight.next().now_or_never() {
                        batch.push(Out::text(reply));
                    }
                    take_ready_events(outbox, &mut batch);
                    Step::Write
                }
                Woke::Outbox(OutboxItem::Event(event)) => {
                    batch.push(Out::text(event.frame.clone()));
                    take_ready_events(outbox, &mut batch);
                    Step::Write
                }
                Woke::Outbox(OutboxItem::Close(code)) => Step::End(End::Close(code)),
                Woke::Outbox(OutboxItem::Keepalive) => match live.conn.keepalive(heard.elapsed()) {
                    KeepaliveStep::Close(code) => Step::End(End::Close(code)),
                    KeepaliveStep::Ping => {
                        batch.push(Out::new(opcode::PING, Bytes::new()));
                        Step::Write
                    }
                },
            };
            match step {
                Step::Write => {}
                Step::End(end) => return end,
                Step::Barrier(barrier) => {
                    if let Err(end) = barrier.await {
                        return end;
                    }
                }
            }
        }
        if !batch.is_empty() && !live.socket.send(&batch).await {
            return End::Drop;
        }
    }
}

/// What woke the loop.
enum Woke {
    Frame(Result<Frame, End>),
    Reply(Bytes),
    Outbox(OutboxItem),
}

/// What the loop does next, besides writing the batch.
enum Step<'a> {
    Write,
    End(End),
    /// A request that runs alone (boxed: rare, and large).
    Barrier(Pin<Box<dyn Future<Output = Result<(), End>> + Send + 'a>>),
}

/// Replies being worked out, in request order. The queue exists only while something is in
/// flight: an empty `FuturesOrdered` still holds ~150 bytes of heap, for every idle
/// connection.
#[derive(Default)]
struct InFlight(Option<Box<FuturesOrdered<PendingReply>>>);

impl InFlight {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |queue| queue.len())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_back(&mut self, work: PendingReply) {
        self.0
            .get_or_insert_with(|| Box::new(FuturesOrdered::new()))
            .push_back(work);
    }

    /// The next reply in request order; None when nothing is in flight. Cancel-safe.
    fn next(&mut self) -> impl Future<Output = Option<Bytes>> + '_ {
        poll_fn(|cx| {
            let Some(queue) = self.0.as_mut() else {
                return Poll::Ready(None);
            };
            let reply = std::task::ready!(queue.poll_next_unpin(cx));
            if queue.is_empty() {
                self.0 = None;
            }
            Poll::Ready(reply)
        })
    }
}

/// Handles one frame: queues what it answers in `batch` (or starts it in `in_flight`).
fn incoming<'a, S: Io>(
    conn: &'a mut Connection,
    socket: &'a mut Socket<S>,
    in_flight: &'a mut InFlight,
    frame: Frame,
    batch: &mut Vec<Out>,
) -> Step<'a> {
    match classify(conn, frame) {
        Incoming::Ignore => {}
        Incoming::End(end) => return Step::End(end),
        Incoming::Pong(payload) => batch.push(Out::new(opcode::PONG, Bytes::from(payload))),
        Incoming::Reply(bytes) if in_flight.is_empty() => batch.push(Out::text(bytes)),
        Incoming::Reply(bytes) => in_flight.push_back(Box::pin(async move { bytes })),
        Incoming::Pipelined(work) => in_flight.push_back(work),
        Incoming::Barrier(reference, request) => {
            return Step::Barrier(Box::pin(barrier(
                conn, socket, in_flight, reference, request,
            )));
        }
    }
    Step::Write
}

/// Sends every reply in flight, then runs `request` alone and sends its reply.
async fn barrier<S: Io>(
    conn: &mut Connection,
    socket: &mut Socket<S>,
    in_flight: &mut InFlight,
    reference: String,
    request: ChatRequest,
) -> Result<(), End> {
    while let Some(bytes) = in_flight.next().await {
        send_or_drop(socket, bytes).await?;
    }
    let reply = reply_bytes(&reference, conn.request(request).await);
    send_or_drop(socket, reply).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future a function returns, without calling it.
    fn future_size<A, B, C, F: Future>(_: impl Fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    fn future_size4<A, B, C, D, F: Future>(_: impl Fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn gathered_slices_are_the_unwritten_bytes_in_order() {
        let frames: Vec<Out> = (0..20)
            .map(|n| Out::text(Bytes::from(format!("frame {n}"))))
            .collect();
        let all: Vec<u8> = frames
            .iter()
            .flat_map(|f| [f.header.as_slice(), &f.payload[..]].concat())
            .collect();
        for offset in [0, 1, 2, 5, 8] {
            let mut slices = vec![IoSlice::new(&[]); 2 * frames.len()];
            let count = gather_slices(&frames, offset, &mut slices);
            let got: Vec<u8> = slices[..count].iter().flat_map(|s| s.to_vec()).collect();
            assert_eq!(got, all[offset..], "offset {offset}");
        }
        // A short array takes what fits, from the start.
        let mut few = [IoSlice::new(&[]); FEW_IO_SLICES];
        assert_eq!(gather_slices(&frames, 0, &mut few), FEW_IO_SLICES);
        let got: Vec<u8> = few.iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(got, all[..got.len()]);
        let whole: usize = frames[..FEW_IO_SLICES / 2].iter().map(Out::len).sum();
        assert_eq!(got.len(), whole);
    }

    /// Every idle connection is one task holding this future: keep it small. (Tokio puts
    /// it in a cell aligned to 128 bytes, with ~120 bytes of its own: up to 528 keeps the
    /// cell at 640 bytes; it was 1.5 KiB before the state was built once and lent.)
    #[test]
    fn a_connection_task_is_small() {
        let task = future_size4(connection);
        fn pump_s(l: &'static mut Live<TcpStream>, o: &'static mut Outbox, _: ()) -> impl Future {
            pump(l, o)
        }
        fn outbox_s(o: &'static mut Outbox, _: (), _: ()) -> impl Future {
            o.next()
        }
        println!(
            "connection task {task} bytes: pump {}, socket {}, connection {}, outbox {} (waiting {})",
            future_size(pump_s),
            std::mem::size_of::<Socket<TcpStream>>(),
            std::mem::size_of::<Connection>(),
            std::mem::size_of::<Outbox>(),
            future_size(outbox_s),
        );
        // Debug builds lay out tokio's `TcpStream` 8 bytes larger; the bound is for release.
        let bound = if cfg!(debug_assertions) { 536 } else { 528 };
        assert!(
            task <= bound,
            "the connection task's future is {task} bytes"
        );
    }
}
