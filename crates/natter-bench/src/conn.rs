//! One WebSocket connection to the server under test: open it, sign in (native `auth` or the
//! Socket.IO handshake), make setup requests one at a time, then `start` it: a writer task fed
//! by a channel and a reader task that checks and times every delivery. The WebSocket client
//! is the bench's own (`crate::ws`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use crate::check::{ReceiverCheck, SenderRooms};
use crate::clock;
use crate::error::BenchError;
use crate::nodes::{NodeIndex, SplitLatency};
use crate::payload;
use crate::proto::{self, natter_sio, socketio, Incoming, Request};
use crate::stats::Latency;
use crate::target::{RoomRef, Target, TargetKind};
use crate::ws::{self, Frame, FrameReader, Masks, Outgoing};

/// Frames a connection's writer may hold before a publisher waits (backpressure).
const WRITE_QUEUE: usize = 4096;

/// Frames the writer takes from its queue for one write.
const WRITE_BATCH: usize = 64;

/// Seeds the mask keys of each connection differently.
static CONNECTIONS_OPENED: AtomicU64 = AtomicU64::new(0);

/// A connection in its setup phase: requests are made one at a time and awaited.
pub struct Conn {
    io: TcpStream,
    frames: FrameReader,
    masks: Masks,
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
        let seed = CONNECTIONS_OPENED
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ clock::now_ns();
        let (io, leftover) = tokio::time::timeout(timeout, async {
            let mut tcp = TcpStream::connect(&target.host_port).await?;
            tcp.set_nodelay(true)?;
            let leftover =
                ws::handshake(&mut tcp, &target.host_port, target.kind.ws_path(), seed).await?;
            Ok::<_, BenchError>((tcp, leftover))
        })
        .await
        .map_err(|_| BenchError::Timeout(format!("connecting to {}", target.ws_url())))??;
        let mut conn = Conn {
            io,
            frames: FrameReader::new(&leftover),
            masks: Masks::new(seed.rotate_left(17)),
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
            TargetKind::Natter | TargetKind::Floor => {
                let token =
                    token.ok_or_else(|| BenchError::Config("natter needs a token".into()))?;
                self.request(Request::Auth { token }).await.map(|_| ())
            }
            TargetKind::NatterSio | TargetKind::SioPeer => {
                self.wait_for(|i| matches!(i, Incoming::EngineOpen)).await?;
                let auth = token.map(natter_sio::auth_json);
                let connect = socketio::encode_connect(auth.as_deref());
                self.send(Outgoing::Text(connect)).await?;
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
            let frame = match self.frames.next(&mut self.io).await? {
                Frame::Text(text) => text,
                Frame::Close(close) => {
                    return Err(BenchError::Protocol(format!("closed by server: {close:?}")))
                }
                Frame::Ping(data) => {
                    let pong = Outgoing::Pong(data.to_vec());
                    self.send(pong).await?;
                    continue;
                }
                Frame::Binary(_) | Frame::Pong => continue,
            };
            let incoming = proto::parse(self.kind, frame);
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
                    let pong = Outgoing::Text(socketio::PONG.into());
                    send_frame(&mut self.io, &mut self.masks, pong).await?;
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
        self.send(Outgoing::Text(frame)).await?;
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

    async fn send(&mut self, frame: Outgoing) -> Result<(), BenchError> {
        send_frame(&mut self.io, &mut self.masks, frame).await
    }

    /// Hands the connection to a writer task and a reader task.
    pub fn start(self, ctx: ReceiverCtx) -> LiveConn {
        let (read_half, write_half) = self.io.into_split();
        let (writer, rx) = mpsc::channel(WRITE_QUEUE);
        let state = Arc::new(Mutex::new(RecvState::new(
            ctx.rooms.iter().map(|r| r.key).collect(),
            ctx.sender_rooms.clone(),
        )));
        let writer_task = tokio::spawn(write_loop(write_half, self.masks, rx));
        let reader = tokio::spawn(read_loop(
            read_half,
            self.frames,
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
    /// The node this connection is on (0 with one server).
    pub node: NodeIndex,
    /// Each sender's node, by sender index; empty with one server (no split then).
    pub sender_nodes: Arc<Vec<NodeIndex>>,
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
    /// Several nodes: the same latencies, split by the sender's node.
    pub node_latency: Option<SplitLatency>,
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
    /// The seqs of this connection's latest sent messages (from `message.send` replies),
    /// newest last: what its edits and reactions target.
    pub recent_seqs: VecDeque<u64>,
}

/// How many of its latest messages' seqs a connection keeps.
pub const RECENT_SEQS: usize = 16;

impl RecvState {
    fn new(rooms: Vec<u32>, sender_rooms: SenderRooms) -> Self {
        RecvState {
            check: ReceiverCheck::new(rooms, sender_rooms),
            latency: None,
            node_latency: None,
            ack_latency: None,
            replies_ok: 0,
            replies_err: 0,
            error_codes: BTreeMap::new(),
            malformed: 0,
            closed: None,
            recent_seqs: VecDeque::new(),
        }
    }
}

/// A started connection.
pub struct LiveConn {
    /// Frames to send.
    pub writer: mpsc::Sender<Outgoing>,
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
        let _ = self.writer.try_send(Outgoing::Close);
        drop(self.writer);
        let _ = tokio::time::timeout(wait, self.writer_task).await;
        if tokio::time::timeout(wait, self.reader).await.is_err() {
            // Reader still running (server did not close): the task is dropped with the runtime.
        }
    }
}

async fn send_frame(
    io: &mut TcpStream,
    masks: &mut Masks,
    frame: Outgoing,
) -> Result<(), BenchError> {
    let mut bytes = Vec::new();
    ws::encode_frame(&frame, masks.next_mask(), &mut bytes);
    io.write_all(&bytes).await?;
    Ok(())
}

/// Writes what the queue holds, up to [`WRITE_BATCH`] frames in one write, until the queue
/// closes (then a close frame) or a close frame was sent.
async fn write_loop(mut io: OwnedWriteHalf, mut masks: Masks, mut rx: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut bytes = Vec::with_capacity(4096);
    loop {
        if rx.recv_many(&mut batch, WRITE_BATCH).await == 0 {
            batch.push(Outgoing::Close);
        }
        bytes.clear();
        let mut closing = false;
        for frame in batch.drain(..) {
            closing |= frame == Outgoing::Close;
            ws::encode_frame(&frame, masks.next_mask(), &mut bytes);
            if closing {
                break;
            }
        }
        if io.write_all(&bytes).await.is_err() || closing {
            return;
        }
    }
}

async fn read_loop(
    mut io: OwnedReadHalf,
    mut frames: FrameReader,
    kind: TargetKind,
    ctx: ReceiverCtx,
    state: Arc<Mutex<RecvState>>,
    writer: mpsc::Sender<Outgoing>,
) {
    let end = loop {
        let frame = match frames.next(&mut io).await {
            Ok(Frame::Text(text)) => text,
            Ok(Frame::Close(close)) => {
                break match close {
                    Some((code, reason)) => format!("closed by server: {code} {reason}"),
                    None => "closed by server".to_string(),
                }
            }
            Ok(Frame::Ping(data)) => {
                let _ = writer.try_send(Outgoing::Pong(data.to_vec()));
                continue;
            }
            Ok(Frame::Binary(_) | Frame::Pong) => continue,
            Err(end) => break end.to_string(),
        };
        let now = clock::now_ns();
        let incoming = proto::parse(kind, frame);
        if matches!(incoming, Incoming::EnginePing) {
            let _ = writer.try_send(Outgoing::Text(socketio::PONG.into()));
            continue;
        }
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        record(&mut st, &ctx, incoming, now);
    };
    ctx.shared.closed.fetch_add(1, Ordering::Relaxed);
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    st.closed = Some(end);
}

/// Records a delivery's latency, and with several nodes, on which side of the split it falls.
fn time_delivery(st: &mut RecvState, ctx: &ReceiverCtx, stamp: payload::Stamp, now: u64) {
    let ns = now.saturating_sub(stamp.sent_ns);
    st.latency.get_or_insert_with(Latency::new).record_ns(ns);
    if !ctx.sender_nodes.is_empty() {
        let sender = ctx.sender_nodes.get(stamp.sender as usize).copied();
        st.node_latency
            .get_or_insert_with(SplitLatency::default)
            .record_ns(ctx.node, sender, ns);
    }
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
            time_delivery(st, ctx, stamp, now);
        }
        Incoming::Change {
            room,
            seq,
            body,
            client_id,
        } => {
            // An edit's body carries the stamp; every change the bench makes also carries it in
            // its client_id (a reaction has no body), so latency is send -> receive for all.
            let stamp = body
                .as_deref()
                .and_then(payload::decode)
                .or_else(|| client_id.as_deref().and_then(payload::decode));
            let Some(stamp) = stamp else {
                st.check.on_unparsable();
                return;
            };
            let key = room
                .and_then(|r| ctx.rooms.iter().find(|x| r.matches(&x.wire)))
                .map_or(u32::MAX, |x| x.key);
            if st.check.on_change(key, seq, stamp) {
                ctx.shared.delivered.fetch_add(1, Ordering::Relaxed);
            }
            time_delivery(st, ctx, stamp, now);
        }
        Incoming::Reply { outcome, .. } => {
            ctx.shared.replies.fetch_add(1, Ordering::Relaxed);
            if let Some(window) = &ctx.window {
                window.add_permits(1);
            }
            match outcome {
                Ok(data) => {
                    st.replies_ok += 1;
                    if let Some(seq) = data.message_seq {
                        if st.recent_seqs.len() == RECENT_SEQS {
                            st.recent_seqs.pop_front();
                        }
                        st.recent_seqs.push_back(seq);
                    }
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
