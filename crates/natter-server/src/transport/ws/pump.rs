//! The session loop: the `/ws` auth phase (driven by the core's `Connection::before_auth`),
//! then requests (pipelined sends, barriers for the rest, replies in request order) and the
//! outbox's events, written in batches. The loop is the same for every dialect spoken on this
//! socket ([`Dialect`]): native JSON frames, or Socket.IO packets (`super::sio`).

use super::super::wsframe::{opcode, Frame};
use super::*;
use bytes::Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use natter_core::protocol::{encode_error, encode_ok, parse_frame, Reply, Request as ChatRequest};
use natter_core::{
    close, AuthStep, ChatError, Connection, EncodedEvent, ErrorCode, KeepaliveStep, Outbox,
    OutboxItem,
};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use tokio::time::Instant;

/// The auth phase: frames go to the core's `Connection::before_auth`, which decides what each
/// gets (anything but a valid `auth` is refused and closes; a binary frame too). Until it
/// succeeds the socket's frame limit is the pre-auth one; then it is raised to
/// `max_frame_bytes`. A server that begins to stop closes the connection with 1001.
/// Returns the outbox, or how the connection ends.
pub(super) async fn authenticate<S: Io>(
    conn: &mut Connection,
    socket: &mut Socket<S>,
) -> Result<Outbox, End> {
    let mut waiting = PreAuth::new(conn, close::UNAUTHENTICATED);
    let frame = waiting.next(socket).await?;
    let (reference, request) = match frame {
        Some(text) => match parse_frame(&text) {
            Ok((reference, request)) => (Some(reference), Ok(request)),
            Err(e) => (e.reference, Err(e.error)),
        },
        None => (None, Err(binary_refusal())),
    };
    match conn.before_auth(request).await {
        AuthStep::Done(reply, outbox) => {
            socket.set_frame_limit(conn.max_frame_bytes());
            let reference = reference.unwrap_or_default();
            send_or_drop(socket, encode_ok(&reference, &Reply::Auth(reply))).await?;
            Ok(outbox)
        }
        AuthStep::Refused { error, close } => {
            send_or_drop(socket, encode_error(reference.as_deref(), &error)).await?;
            Err(End::Close(close))
        }
    }
}

/// Waiting for a connection's first words, before it is authenticated: until the
/// connection's `auth_timeout` (then it ends with the given close code) or the server begins
/// to stop (then 1001). Pings are answered; a close is echoed.
pub(super) struct PreAuth {
    deadline: Instant,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    timeout_code: u16,
}

impl PreAuth {
    pub(super) fn new(conn: &Connection, timeout_code: u16) -> PreAuth {
        PreAuth {
            deadline: Instant::now() + conn.auth_timeout(),
            shutdown: Box::pin(conn.shutdown()),
            timeout_code,
        }
    }

    /// The next text frame (`Some`) or binary frame (`None`), or how the connection ends.
    pub(super) async fn next<S: Io>(
        &mut self,
        socket: &mut Socket<S>,
    ) -> Result<Option<String>, End> {
        loop {
            let frame = tokio::select! {
                biased;
                () = &mut self.shutdown => return Err(End::Close(close::GOING_AWAY)),
                frame = tokio::time::timeout_at(self.deadline, socket.next()) => match frame {
                    Err(_) => return Err(End::Close(self.timeout_code)),
                    Ok(frame) => frame?,
                },
            };
            match frame {
                Frame::Text(text) => return Ok(Some(text)),
                Frame::Binary => return Ok(None),
                Frame::Close(code) => return Err(End::Echo(code)),
                Frame::Ping(payload) => pong(socket, payload).await?,
                Frame::Pong => {}
            }
        }
    }
}

/// Sends a text frame; a failed write ends the connection.
pub(super) async fn send_or_drop<S: Io>(socket: &mut Socket<S>, payload: Bytes) -> Result<(), End> {
    if socket.send_text(payload).await {
        Ok(())
    } else {
        Err(End::Drop)
    }
}

pub(super) async fn pong<S: Io>(socket: &mut Socket<S>, payload: Vec<u8>) -> Result<(), End> {
    if socket
        .send(&[Out::new(opcode::PONG, Bytes::from(payload))])
        .await
    {
        Ok(())
    } else {
        Err(End::Drop)
    }
}

pub(super) fn binary_refusal() -> ChatError {
    ChatError::new(
        ErrorCode::BinaryUnsupported,
        "binary frames are not supported; send JSON text frames",
    )
}

pub(super) fn binary_error() -> Bytes {
    encode_error(None, &binary_refusal())
}

/// Requests of one connection in flight at once (pipelined sends); beyond this the socket
/// is not read until replies go out, so TCP pushes back on the client.
pub(super) const MAX_IN_FLIGHT: usize = 64;

/// A reply being worked out; replies leave in request order. An empty one is nothing to send
/// (a Socket.IO request without an acknowledgement that succeeded).
pub(super) type PendingReply = Pin<Box<dyn Future<Output = Bytes> + Send>>;

/// How one connection's text frames read and its answers and events are written: the
/// native protocol ([`Native`]) or Socket.IO packets (`super::sio::SocketIo`). Everything
/// else (pipelining, barriers, batching, keepalive) is the loop's, the same for both.
pub(super) trait Dialect: 'static {
    /// What a request's answer needs besides its result (native: the frame's `ref`).
    type Ref: Send + Sync + 'static;
    /// Reads one text frame.
    fn read(text: &str) -> Read<Self::Ref>;
    /// The answer to a request; empty when there is nothing to send.
    fn answer(reference: &Self::Ref, result: Result<Reply, ChatError>) -> Bytes;
    /// What a binary frame gets (None: ignored).
    fn binary() -> Option<Bytes>;
    /// An event's frame (the same bytes for every recipient).
    fn event(event: &EncodedEvent) -> Bytes;
    /// The keepalive's ping.
    fn ping() -> Out;
}

/// What one text frame is.
pub(super) enum Read<R> {
    /// A request.
    Request(R, ChatRequest),
    /// No request: send this answer (after those in flight).
    Answer(Bytes),
    /// The client ends the session (Socket.IO's disconnect): close, as if it had.
    End,
    /// Nothing to do (a heartbeat's answer, a packet that asks nothing).
    Nothing,
}

/// The native protocol of docs/protocol.md: `{"type", "ref", "data"}` frames.
pub(super) struct Native;

impl Dialect for Native {
    type Ref = String;

    fn read(text: &str) -> Read<String> {
        match parse_frame(text) {
            Ok((reference, request)) => Read::Request(reference, request),
            Err(e) => Read::Answer(encode_error(e.reference.as_deref(), &e.error)),
        }
    }

    fn answer(reference: &String, result: Result<Reply, ChatError>) -> Bytes {
        reply_bytes(reference, result)
    }

    fn binary() -> Option<Bytes> {
        Some(binary_error())
    }

    fn event(event: &EncodedEvent) -> Bytes {
        event.frame.clone()
    }

    fn ping() -> Out {
        Out::new(opcode::PING, Bytes::new())
    }
}

pub(super) fn reply_bytes(reference: &str, result: Result<Reply, ChatError>) -> Bytes {
    match result {
        Ok(data) => encode_ok(reference, &data),
        Err(e) => encode_error(Some(reference), &e),
    }
}

/// What one incoming frame asks of the loop.
pub(super) enum Incoming<R> {
    /// Send this reply (after those in flight).
    Reply(Bytes),
    /// Start this request alongside those in flight.
    Pipelined(PendingReply),
    /// Finish everything in flight, then run this request alone.
    Barrier(R, ChatRequest),
    /// Answer a ping.
    Pong(Vec<u8>),
    /// The connection is over.
    End(End),
    Ignore,
}

pub(super) fn classify<D: Dialect>(conn: &mut Connection, frame: Frame) -> Incoming<D::Ref> {
    let text = match frame {
        Frame::Text(t) => t,
        Frame::Binary => return D::binary().map_or(Incoming::Ignore, Incoming::Reply),
        Frame::Close(code) => return Incoming::End(End::Echo(code)),
        Frame::Ping(payload) => return Incoming::Pong(payload),
        Frame::Pong => return Incoming::Ignore,
    };
    match D::read(&text) {
        Read::Answer(bytes) => Incoming::Reply(bytes),
        Read::End => Incoming::End(End::Echo(None)),
        Read::Nothing => Incoming::Ignore,
        Read::Request(reference, request) if conn.may_pipeline(&request) => {
            match conn.start(request) {
                Ok(work) => {
                    Incoming::Pipelined(Box::pin(async move { D::answer(&reference, work.await) }))
                }
                Err(e) => Incoming::Reply(D::answer(&reference, Err(e))),
            }
        }
        Read::Request(reference, request) => Incoming::Barrier(reference, request),
    }
}

/// Appends the events ready in the outbox (up to the batch bound) to `batch`.
pub(super) fn take_ready_events<D: Dialect>(outbox: &mut Outbox, batch: &mut Vec<Out>) {
    while batch.len() < MAX_BATCH {
        let Some(event) = outbox.try_next() else {
            break;
        };
        batch.push(Out::text(D::event(&event)));
    }
}

/// Adds a reply to the batch unless it is empty (nothing to send).
fn push_reply(batch: &mut Vec<Out>, reply: Bytes) {
    if !reply.is_empty() {
        batch.push(Out::text(reply));
    }
}

/// The authenticated loop. Returns how the connection ends.
///
/// Each round waits for one thing (a frame, a finished reply, an event, a keepalive),
/// gathers what it makes ready to send, and writes that in one go. One write point and a
/// boxed barrier keep the state an idle connection's task holds small.
pub(super) async fn pump<S: Io, D: Dialect>(live: &mut Live<S>, outbox: &mut Outbox) -> End {
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
                    incoming::<S, D>(
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
                    push_reply(&mut batch, reply);
                    while let Some(Some(reply)) = in_flight.next().now_or_never() {
                        push_reply(&mut batch, reply);
                    }
                    take_ready_events::<D>(outbox, &mut batch);
                    Step::Write
                }
                Woke::Outbox(OutboxItem::Event(event)) => {
                    batch.push(Out::text(D::event(&event)));
                    take_ready_events::<D>(outbox, &mut batch);
                    Step::Write
                }
                Woke::Outbox(OutboxItem::Close(code)) => Step::End(End::Close(code)),
                Woke::Outbox(OutboxItem::Keepalive) => match live.conn.keepalive(heard.elapsed()) {
                    KeepaliveStep::Close(code) => Step::End(End::Close(code)),
                    KeepaliveStep::Ping => {
                        batch.push(D::ping());
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
pub(super) enum Woke {
    Frame(Result<Frame, End>),
    Reply(Bytes),
    Outbox(OutboxItem),
}

/// What the loop does next, besides writing the batch.
pub(super) enum Step<'a> {
    Write,
    End(End),
    /// A request that runs alone (boxed: rare, and large).
    Barrier(Pin<Box<dyn Future<Output = Result<(), End>> + Send + 'a>>),
}

/// Replies being worked out, in request order. The queue exists only while something is in
/// flight: an empty `FuturesOrdered` still holds ~150 bytes of heap, for every idle
/// connection.
#[derive(Default)]
pub(super) struct InFlight(Option<Box<FuturesOrdered<PendingReply>>>);

impl InFlight {
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |queue| queue.len())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn push_back(&mut self, work: PendingReply) {
        self.0
            .get_or_insert_with(|| Box::new(FuturesOrdered::new()))
            .push_back(work);
    }

    /// The next reply in request order; None when nothing is in flight. Cancel-safe.
    pub(super) fn next(&mut self) -> impl Future<Output = Option<Bytes>> + '_ {
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
pub(super) fn incoming<'a, S: Io, D: Dialect>(
    conn: &'a mut Connection,
    socket: &'a mut Socket<S>,
    in_flight: &'a mut InFlight,
    frame: Frame,
    batch: &mut Vec<Out>,
) -> Step<'a> {
    match classify::<D>(conn, frame) {
        Incoming::Ignore => {}
        Incoming::End(end) => return Step::End(end),
        Incoming::Pong(payload) => batch.push(Out::new(opcode::PONG, Bytes::from(payload))),
        Incoming::Reply(bytes) if in_flight.is_empty() => push_reply(batch, bytes),
        Incoming::Reply(bytes) => in_flight.push_back(Box::pin(async move { bytes })),
        Incoming::Pipelined(work) => in_flight.push_back(work),
        Incoming::Barrier(reference, request) => {
            return Step::Barrier(Box::pin(barrier::<S, D>(
                conn, socket, in_flight, reference, request,
            )));
        }
    }
    Step::Write
}

/// Sends every reply in flight, then runs `request` alone and sends its reply.
pub(super) async fn barrier<S: Io, D: Dialect>(
    conn: &mut Connection,
    socket: &mut Socket<S>,
    in_flight: &mut InFlight,
    reference: D::Ref,
    request: ChatRequest,
) -> Result<(), End> {
    while let Some(bytes) = in_flight.next().await {
        send_reply(socket, bytes).await?;
    }
    let reply = D::answer(&reference, conn.request(request).await);
    send_reply(socket, reply).await
}

/// Sends a reply unless it is empty; a failed write ends the connection.
async fn send_reply<S: Io>(socket: &mut Socket<S>, reply: Bytes) -> Result<(), End> {
    if reply.is_empty() {
        return Ok(());
    }
    send_or_drop(socket, reply).await
}
