//! The native WebSocket transport at `/ws`: JSON text frames as in docs/protocol.md.
//!
//! One task per connection: it reads frames and answers them through the core's
//! `Connection`, and writes what the session's `Outbox` yields, draining whatever is ready
//! into one flush. A write that stalls longer than `write_timeout` drops the connection.
//! Pipelined `message.send`s run concurrently (up to `MAX_IN_FLIGHT`, so they share group
//! commits); any other request waits for those before it. Replies leave in request order.

use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use natter_core::protocol::{encode_error, encode_ok, parse_frame, Request};
use natter_core::{close, ChatError, Connection, ErrorCode, Outbox, OutboxItem};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::{timeout, Instant};
use tracing::Instrument;

/// How often the server pings an idle connection.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A connection silent (not even a pong) this long is closed.
const IDLE_LIMIT: Duration = Duration::from_secs(75);

/// Per-connection read buffer (tungstenite's default is 128 KiB).
const READ_BUFFER: usize = 4 * 1024;
/// Bytes gathered before a write is forced (frames between flushes are batched anyway).
const WRITE_BUFFER: usize = 16 * 1024;

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let max = state.config.max_frame_bytes;
    // Small per-connection buffers keep idle connections cheap; writes still batch (the
    // write buffer grows past its target size until a flush).
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| {
            let tracker = state.tasks.clone();
            let span = tracing::info_span!("ws", conn = next_conn_id());
            tracker.track_future(serve(socket, state).instrument(span))
        })
}

fn next_conn_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn text(bytes: Bytes) -> Message {
    match Utf8Bytes::try_from(bytes) {
        Ok(t) => Message::Text(t),
        Err(_) => Message::Text(Utf8Bytes::from_static("{}")),
    }
}

fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

pub(crate) fn close_reason(code: u16) -> &'static str {
    match code {
        close::GOING_AWAY => "server going away",
        close::UNAUTHENTICATED => "not authenticated",
        close::REVOKED => "session revoked",
        close::SLOW_CONSUMER => "slow consumer: outbound queue full",
        close::TOO_BIG => "frame too large",
        close::INTERNAL => "internal error",
        _ => "",
    }
}

struct Writer {
    sink: Sink,
    write_timeout: Duration,
}

impl Writer {
    /// Sends one frame; false if the socket is gone or stalled.
    async fn send(&mut self, message: Message) -> bool {
        matches!(
            timeout(self.write_timeout, self.sink.send(message)).await,
            Ok(Ok(()))
        )
    }

    async fn close(&mut self, code: u16) {
        let frame = close_frame(code, close_reason(code));
        let _ = timeout(Duration::from_secs(1), self.sink.send(frame)).await;
    }

    /// Writes a reply, the other replies already done and the events ready, then flushes
    /// once (one syscall for a burst of pipelined sends and their events).
    async fn replies(
        &mut self,
        first: Bytes,
        in_flight: &mut FuturesOrdered<PendingReply>,
        outbox: &mut Outbox,
    ) -> bool {
        let write = async {
            self.sink.feed(text(first)).await?;
            while let Some(Some(reply)) = in_flight.next().now_or_never() {
                self.sink.feed(text(reply)).await?;
            }
            let mut batched = 0;
            while batched < 256 {
                let Some(event) = outbox.try_next() else {
                    break;
                };
                self.sink.feed(text(event.frame.clone())).await?;
                batched += 1;
            }
            self.sink.flush().await
        };
        matches!(timeout(self.write_timeout, write).await, Ok(Ok(())))
    }

    /// Writes an event and everything else ready behind it, then flushes once.
    async fn events(&mut self, first: Bytes, outbox: &mut Outbox) -> bool {
        let write = async {
            self.sink.feed(text(first)).await?;
            let mut batched = 0;
            while batched < 256 {
                let Some(event) = outbox.try_next() else {
                    break;
                };
                self.sink.feed(text(event.frame.clone())).await?;
                batched += 1;
            }
            self.sink.flush().await
        };
        matches!(timeout(self.write_timeout, write).await, Ok(Ok(())))
    }
}

async fn serve(socket: WebSocket, state: AppState) {
    let (sink, mut stream) = socket.split();
    let mut writer = Writer {
        sink,
        write_timeout: state.config.write_timeout,
    };
    let mut conn = Connection::new(state.node.clone());
    let Some(mut outbox) = authenticate(&mut conn, &mut stream, &mut writer, &state).await else {
        return;
    };
    let user = conn.user().map(|u| u.name.clone()).unwrap_or_default();
    tracing::debug!(%user, "session started");
    let code = pump(&mut conn, &mut outbox, &mut stream, &mut writer).await;
    if let Some(code) = code {
        writer.close(code).await;
    }
    tracing::debug!(%user, ?code, "session ended");
}

/// Waits for a successful `auth`. Returns the outbox, or None when the connection ended.
async fn authenticate(
    conn: &mut Connection,
    stream: &mut Stream,
    writer: &mut Writer,
    state: &AppState,
) -> Option<Outbox> {
    let deadline = Instant::now() + state.config.auth_timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                writer.close(close::UNAUTHENTICATED).await;
                return None;
            }
            Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(frame))) => frame,
        };
        let text = match frame {
            Message::Text(t) => t,
            Message::Binary(_) => {
                writer.send(text(binary_error())).await;
                continue;
            }
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        match parse_frame(text.as_str()) {
            Err(e) => {
                if !writer
                    .send(self::text(encode_error(e.reference.as_deref(), &e.error)))
                    .await
                {
                    return None;
                }
            }
            Ok((reference, Request::Auth(args))) => match conn.authenticate(args).await {
                Ok((data, outbox)) => {
                    if !writer.send(self::text(encode_ok(&reference, &data))).await {
                        return None;
                    }
                    return Some(outbox);
                }
                Err(e) => {
                    writer
                        .send(self::text(encode_error(Some(&reference), &e)))
                        .await;
                    if e.code == ErrorCode::Unauthenticated {
                        writer.close(close::UNAUTHENTICATED).await;
                        return None;
                    }
                }
            },
            Ok((reference, _)) => {
                let e = ChatError::new(ErrorCode::Unauthenticated, "send `auth` first");
                writer
                    .send(self::text(encode_error(Some(&reference), &e)))
                    .await;
                writer.close(close::UNAUTHENTICATED).await;
                return None;
            }
        }
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

fn is_too_big(e: &axum::Error) -> bool {
    let text = e.to_string();
    text.contains("too long") || text.contains("too big") || text.contains("Space limit")
}

/// Requests of one connection in flight at once (pipelined sends); beyond this the socket
/// is not read until replies go out, so TCP pushes back on the client.
const MAX_IN_FLIGHT: usize = 64;

/// A reply being worked out; replies leave in request order.
type PendingReply = Pin<Box<dyn Future<Output = Bytes> + Send>>;

fn reply_bytes(reference: &str, result: Result<serde_json::Value, ChatError>) -> Bytes {
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
    Barrier(String, natter_core::Request),
    /// The connection is over (with a close code to send, if any).
    End(Option<u16>),
    Ignore,
}

fn classify(conn: &mut Connection, frame: Option<Result<Message, axum::Error>>) -> Incoming {
    let text = match frame {
        None => return Incoming::End(None),
        Some(Err(e)) => return Incoming::End(is_too_big(&e).then_some(close::TOO_BIG)),
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(Message::Binary(_))) => return Incoming::Reply(binary_error()),
        Some(Ok(Message::Close(_))) => return Incoming::End(None),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Incoming::Ignore,
    };
    match parse_frame(text.as_str()) {
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

/// The authenticated loop. Returns the close code to send, if any.
async fn pump(
    conn: &mut Connection,
    outbox: &mut Outbox,
    stream: &mut Stream,
    writer: &mut Writer,
) -> Option<u16> {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    let mut in_flight: FuturesOrdered<PendingReply> = FuturesOrdered::new();
    loop {
        tokio::select! {
            frame = stream.next(), if in_flight.len() < MAX_IN_FLIGHT => {
                heard = Instant::now();
                match classify(conn, frame) {
                    Incoming::Ignore => {}
                    Incoming::End(code) => return code,
                    Incoming::Reply(bytes) if in_flight.is_empty() => {
                        if !writer.send(text(bytes)).await {
                            return None;
                        }
                    }
                    Incoming::Reply(bytes) => in_flight.push_back(Box::pin(async move { bytes })),
                    Incoming::Pipelined(work) => in_flight.push_back(work),
                    Incoming::Barrier(reference, request) => {
                        while let Some(bytes) = in_flight.next().await {
                            if !writer.send(text(bytes)).await {
                                return None;
                            }
                        }
                        let reply = reply_bytes(&reference, conn.request(request).await);
                        if !writer.send(text(reply)).await {
                            return None;
                        }
                    }
                }
            }
            Some(reply) = in_flight.next(), if !in_flight.is_empty() => {
                if !writer.replies(reply, &mut in_flight, outbox).await {
                    return None;
                }
            }
            item = outbox.next() => match item {
                OutboxItem::Event(event) => {
                    if !writer.events(event.frame.clone(), outbox).await {
                        return None;
                    }
                }
                OutboxItem::Close(code) => return Some(code),
            },
            _ = ping.tick() => {
                if heard.elapsed() > IDLE_LIMIT {
                    return Some(close::GOING_AWAY);
                }
                if !writer.send(Message::Ping(Bytes::new())).await {
                    return None;
                }
            }
        }
    }
}
