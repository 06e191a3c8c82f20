//! The native WebSocket transport at `/ws`: JSON text frames as in docs/protocol.md.
//!
//! One task per connection: it reads frames and answers them through the core's
//! `Connection`, and writes what the session's `Outbox` yields, draining whatever is ready
//! into one flush. A write that stalls longer than `write_timeout` drops the connection.

use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use natter_core::protocol::{encode_error, encode_ok, parse_frame, Request};
use natter_core::{close, ChatError, Connection, ErrorCode, Outbox, OutboxItem};
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

fn close_reason(code: u16) -> &'static str {
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

/// The authenticated loop. Returns the close code to send, if any.
async fn pump(
    conn: &mut Connection,
    outbox: &mut Outbox,
    stream: &mut Stream,
    writer: &mut Writer,
) -> Option<u16> {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            frame = stream.next() => {
                heard = Instant::now();
                let reply = match frame {
                    None => return None,
                    Some(Err(e)) => {
                        return if is_too_big(&e) { Some(close::TOO_BIG) } else { None };
                    }
                    Some(Ok(Message::Text(t))) => answer(conn, t.as_str()).await,
                    Some(Ok(Message::Binary(_))) => binary_error(),
                    Some(Ok(Message::Close(_))) => return None,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                };
                if !writer.send(text(reply)).await {
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

/// Answers one text frame of an authenticated connection.
async fn answer(conn: &mut Connection, frame: &str) -> Bytes {
    match parse_frame(frame) {
        Err(e) => encode_error(e.reference.as_deref(), &e.error),
        Ok((reference, request)) => match conn.request(request).await {
            Ok(data) => encode_ok(&reference, &data),
            Err(e) => encode_error(Some(&reference), &e),
        },
    }
}
