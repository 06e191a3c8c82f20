//! One WebSocket connection to the server under test: open it, sign in (native `auth` or the
//! Socket.IO handshake), make setup requests one at a time, then `start` it: a writer task fed
//! by a channel and a reader task that checks and times every delivery.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::check::{ReceiverCheck, SenderRooms};
use crate::clock;
use crate::error::BenchError;
use crate::payload;
use crate::proto::{self, natter_sio, socketio, Incoming, Request};
use crate::stats::Latency;
use crate::target::{RoomRef, Target, TargetKind};

type WsStream = WebSocketStream<TcpStream>;

/// Frames a connection's writer may hold before a publisher waits (backpressure).
const WRITE_QUEUE: usize = 4096;

/// tungstenite zero-fills its read buffer on every read: its 128 KiB default made memset
/// the load generator's top cost per delivery. Frames here are small.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 4 * 1024;

/// A connection in its setup phase: requests are made one at a time and awaited.
pub struct Conn {
    ws: WsStream,
    kind: TargetKind,
    /// The next request reference to use.
    next_ref: u64,
    timeout: Duration,
}

/// The data of a successful setup reply.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetupReply {
    pub room_id: Option<i64>,
}

impl Conn {
    /// Connects and signs in (`token` is required for Natter targets).
    pub async fn open(
        target: &Target,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<Conn, BenchError> {
        let ws = tokio::time::timeout(timeout, async {
            let tcp = TcpStream::connect(&target.host_port).await?;
            tcp.set_nodelay(true)?;
            let (ws, _response) = tokio_tungstenite::client_async_with_config(
                target.ws_url(),
                tcp,
                Some(ws_config()),
            )
            .await?;
            Ok::<_, BenchError>(ws)
        })
        .await
        .map_err(|_| BenchError::Timeout(format!("connecting to {}", target.ws_url())))??;
        let mut conn = Conn {
            ws,
            kind: target.kind,
            next_ref: 1,
            timeout,
        };
        tokio::time::timeout(timeout, conn.handshake(token))
            .await
            .map_err(|_| BenchError::Timeout("signing in".into()))??;
        Ok(conn)
    }

    async fn handshake(&mut self, token: Option<&str>) -> Result<(), BenchError> {
        match self.kind {
            TargetKind::Natter => {
                let token =
                    token.ok_or_else(|| BenchError::Config("natter needs a token".into()))?;
                self.request(Request::Auth { token }).await.map(|_| ())
            }
            TargetKind::NatterSio | TargetKind::SioPeer => {
                self.wait_for(|i| matches!(i, Incoming::EngineOpen)).await?;
                let auth = token.map(natter_sio::auth_json);
                let connect = socketio::encode_connect(auth.as_deref());
                self.ws.send(Message::Text(connect.into())).await?;
                self.wait_for(|i| matches!(i, Incoming::SioConnected))
                    .await
                    .map(|_| ())
            }
            TargetKind::WsPeer => Ok(()),
        }
    }

    /// Reads frames (answering Engine.IO pings) until `want` accepts one.
    async fn wait_for(
        &mut self,
        mut want: impl FnMut(&Incoming<'_>) -> bool,
    ) -> Result<SetupReply, BenchError> {
        loop {
            let frame = match self.ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(close))) => {
                    return Err(BenchError::Protocol(format!("closed by server: {close:?}")))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Err(BenchError::Protocol("connection ended".into())),
            };
            let incoming = proto::parse(self.kind, frame.as_str());
            if want(&incoming) {
                return match incoming {
                    Incoming::Reply {
                        outcome: Ok(data), ..
                    } => Ok(SetupReply {
                        room_id: data.room_id,
                    }),
                    Incoming::Reply {
                        outcome: Err(e), ..
                    } => Err(BenchError::Refused {
                        request: "request".into(),
                        code: e.code,
                        message: e.message,
                    }),
                    _ => Ok(SetupReply::default()),
                };
            }
            match incoming {
                Incoming::EnginePing => {
                    self.ws.send(Message::Text(socketio::PONG.into())).await?;
                }
                Incoming::SioConnectError(e) => {
                    return Err(BenchError::Refused {
                        request: "socket.io connect".into(),
                        code: "connect_error".into(),
                        message: e,
                    })
                }
                _ => {}
            }
        }
    }

    /// Sends `request` and waits for its reply.
    pub async fn request(&mut self, request: Request<'_>) -> Result<SetupReply, BenchError> {
        let reference = self.next_ref;
        self.next_ref += 1;
        let frame = proto::encode(self.kind, request, reference).ok_or_else(|| {
            BenchError::Config(format!("{} has no request {request:?}", self.kind))
        })?;
        self.ws.send(Message::Text(frame.into())).await?;
        let timeout = self.timeout;
        tokio::time::timeout(
            timeout,
            self.wait_for(|i| matches!(i, Incoming::Reply { reference: r, .. } if *r == reference)),
        )
        .await
        .map_err(|_| BenchError::Timeout(format!("reply to {request:?}")))?
        .map_err(|e| match e {
            BenchError::Refused { code, message, .. } => BenchError::Refused {
                request: format!("{request:?}"),
                code,
                message,
            },
            other => other,
        })
    }

    /// Hands the connection to a writer task and a reader task.
    pub fn start(self, ctx: ReceiverCtx) -> LiveConn {
        let (sink, stream) = self.ws.split();
        let (writer, rx) = mpsc::channel(WRITE_QUEUE);
        let state = Arc::new(Mutex::new(RecvState::new(
            ctx.rooms.iter().map(|r| r.key).collect(),
            ctx.sender_rooms.clone(),
        )));
        let writer_task = tokio::spawn(write_loop(sink, rx));
        let reader = tokio::spawn(read_loop(
            stream,
            self.kind,
            ctx,
            Arc::clone(&state),
            writer.clone(),
        ));
        LiveConn {
            writer,
            state,
            next_ref: self.next_ref,
            reader,
            writer_task,
        }
    }
}

/// Run-wide counters the drain logic waits on.
#[derive(Debug, Default)]
pub struct Shared {
    /// Distinct message deliveries received (duplicates not counted).
    pub delivered: AtomicU64,
    /// Replies received (ok or error).
    pub replies: AtomicU64,
    /// Connections that ended (closed by the server, or failed).
    pub closed: AtomicU64,
}

/// What a reader needs to know about its connection.
#[derive(Clone)]
pub struct ReceiverCtx {
    /// The rooms this connection joined.
    pub rooms: Vec<RoomRef>,
    pub sender_rooms: SenderRooms,
    pub shared: Arc<Shared>,
    /// In window mode: one permit returned per reply.
    pub window: Option<Arc<Semaphore>>,
}

/// Everything one connection's reader records.
#[derive(Debug)]
pub struct RecvState {
    pub check: ReceiverCheck,
    /// Delivery latency (send -> receive); allocated on first delivery.
    pub latency: Option<Latency>,
    /// Reply latency of this connection's own sends (send -> ack).
    pub ack_latency: Option<Latency>,
    pub replies_ok: u64,
    pub replies_err: u64,
    /// Error replies by code.
    pub error_codes: BTreeMap<String, u64>,
    /// Frames that did not parse.
    pub malformed: u64,
    /// Why the connection ended, if it did.
    pub closed: Option<String>,
}

impl RecvState {
    fn new(rooms: Vec<u32>, sender_rooms: SenderRooms) -> Self {
        RecvState {
            check: ReceiverCheck::new(rooms, sender_rooms),
            latency: None,
            ack_latency: None,
            replies_ok: 0,
            replies_err: 0,
            error_codes: BTreeMap::new(),
            malformed: 0,
            closed: None,
        }
    }
}

/// A started connection.
pub struct LiveConn {
    /// Frames to send.
    pub writer: mpsc::Sender<Message>,
    pub state: Arc<Mutex<RecvState>>,
    /// The next request reference for this connection's sends.
    pub next_ref: u64,
    reader: JoinHandle<()>,
    writer_task: JoinHandle<()>,
}

impl LiveConn {
    /// The reader's state (a poisoned lock still holds valid counters).
    pub fn lock(&self) -> MutexGuard<'_, RecvState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the connection and waits (bounded) for both tasks.
    pub async fn close(self, wait: Duration) {
        let _ = self.writer.try_send(Message::Close(None));
        drop(self.writer);
        let _ = tokio::time::timeout(wait, self.writer_task).await;
        if tokio::time::timeout(wait, self.reader).await.is_err() {
            // Reader still running (server did not close): the task is dropped with the runtime.
        }
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WsStream, Message>,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 64).await > 0 {
        let mut closing = false;
        for frame in batch.drain(..) {
            closing |= matches!(frame, Message::Close(_));
            if sink.feed(frame).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() || closing {
            return;
        }
    }
    let _ = sink.close().await;
}

async fn read_loop(
    mut stream: futures_util::stream::SplitStream<WsStream>,
    kind: TargetKind,
    ctx: ReceiverCtx,
    state: Arc<Mutex<RecvState>>,
    writer: mpsc::Sender<Message>,
) {
    let end = loop {
        let frame = match stream.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => {
                break match close {
                    Some(c) => format!("closed by server: {} {}", u16::from(c.code), c.reason),
                    None => "closed by server".to_string(),
                }
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => break format!("error: {e}"),
            None => break "connection ended".to_string(),
        };
        let now = clock::now_ns();
        let incoming = proto::parse(kind, frame.as_str());
        if matches!(incoming, Incoming::EnginePing) {
            let _ = writer.try_send(Message::Text(socketio::PONG.into()));
            continue;
        }
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        record(&mut st, &ctx, incoming, now);
    };
    ctx.shared.closed.fetch_add(1, Ordering::Relaxed);
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    st.closed = Some(end);
}

fn record(st: &mut RecvState, ctx: &ReceiverCtx, incoming: Incoming<'_>, now: u64) {
    match incoming {
        Incoming::Delivery { room, seq, body } => {
            let stamp = body.as_deref().and_then(payload::decode);
            let Some(stamp) = stamp else {
                st.check.on_unparsable();
                return;
            };
            let key = room
                .and_then(|r| ctx.rooms.iter().find(|x| r.matches(&x.wire)))
                .map_or(u32::MAX, |x| x.key);
            if st.check.on_delivery(key, seq, stamp) {
                ctx.shared.delivered.fetch_add(1, Ordering::Relaxed);
            }
            st.latency
                .get_or_insert_with(Latency::new)
                .record_ns(now.saturating_sub(stamp.sent_ns));
        }
        Incoming::Reply { outcome, .. } => {
            ctx.shared.replies.fetch_add(1, Ordering::Relaxed);
            if let Some(window) = &ctx.window {
                window.add_permits(1);
            }
            match outcome {
                Ok(data) => {
                    st.replies_ok += 1;
                    if let Some(stamp) = data.message_body.as_deref().and_then(payload::decode) {
                        st.ack_latency
                            .get_or_insert_with(Latency::new)
                            .record_ns(now.saturating_sub(stamp.sent_ns));
                    }
                }
                Err(e) => {
                    st.replies_err += 1;
                    *st.error_codes.entry(e.code).or_default() += 1;
                }
            }
        }
        Incoming::Malformed(_) => st.malformed += 1,
        _ => {}
    }
}
