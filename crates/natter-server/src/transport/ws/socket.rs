//! The socket under a `/ws` connection: frame reads into a per-thread scratch buffer, and
//! vectored writes of shared frame payloads with a write timeout; the close handshake.

use super::super::wsframe::{self, opcode, DecodeError, Decoder, Frame, ServerHeader};
use super::*;
use crate::config::Config;
use crate::http::serve::Watched;
use bytes::Bytes;
use futures_util::future::Either;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use natter_core::close;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long the close handshake may take (sending our close, then hearing the client's).
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The per-thread buffer every connection reads into.
pub(super) const SCRATCH_BYTES: usize = 64 * 1024;
/// Frames gathered into one write at most (events beyond wait for the next round).
pub(super) const MAX_BATCH: usize = 256;
/// Buffers handed to one `writev` (two per frame, so a whole batch; under IOV_MAX).
pub(super) const MAX_IO_SLICES: usize = 2 * MAX_BATCH;
/// Buffers a write gathers on the stack; more go in a vector.
pub(super) const FEW_IO_SLICES: usize = 16;

/// Points `slices` at the frames' unwritten bytes (headers and payloads, skipping `offset`
/// bytes already written of the first frame); returns how many it filled.
pub(super) fn gather_slices<'a>(
    frames: &'a [Out],
    offset: usize,
    slices: &mut [IoSlice<'a>],
) -> usize {
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
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut [0u8; 2048]),
    })
}

/// The byte streams a session can run on: the raw `TcpStream` (the normal case) or, should
/// hyper hand over another transport, its upgraded I/O.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// One outgoing frame: its header and its payload, shared, never copied.
pub(super) struct Out {
    pub(super) header: ServerHeader,
    pub(super) payload: Bytes,
}

impl Out {
    pub(super) fn new(op: u8, payload: Bytes) -> Out {
        Out {
            header: ServerHeader::new(op, payload.len()),
            payload,
        }
    }

    pub(super) fn text(payload: Bytes) -> Out {
        Out::new(opcode::TEXT, payload)
    }

    pub(super) fn len(&self) -> usize {
        self.header.as_slice().len() + self.payload.len()
    }
}

/// One connection's socket: the stream, the decoder's state and frames decoded but not yet
/// handled. Reading is cancel-safe (a read is decoded within the poll that made it).
pub(super) struct Socket<S> {
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
pub(super) type HyperSocket = Socket<TokioIo<Upgraded>>;

impl Socket<TcpStream> {
    /// The raw `TcpStream` back from hyper, with any bytes it read past the request decoded;
    /// other I/O stays on hyper's stream. Not async on purpose: nothing of hyper's (its
    /// upgrade parts, its read buffer) may stay in the connection's future.
    pub(super) fn from_upgraded(
        upgraded: Upgraded,
        config: &Config,
    ) -> Result<Self, Box<HyperSocket>> {
        match hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<Watched>>(upgraded) {
            Ok(parts) => {
                let mut socket = Socket::new(parts.io.into_inner().into_tcp(), config);
                socket.decode(&parts.read_buf);
                Ok(socket)
            }
            Err(upgraded) => Err(Box::new(Socket::new(TokioIo::new(upgraded), config))),
        }
    }
}

impl<S: Io> Socket<S> {
    /// A socket that has not authenticated: frames over `max_preauth_frame_bytes` (or
    /// `max_frame_bytes`, if smaller) close it with 1009 until [`Socket::set_frame_limit`].
    pub(super) fn new(io: S, config: &Config) -> Socket<S> {
        Socket {
            io,
            decoder: Decoder::new(config.max_preauth_frame_bytes.min(config.max_frame_bytes)),
            pending: VecDeque::new(),
            broken: None,
            write_timeout_ms: u32::try_from(config.write_timeout.as_millis()).unwrap_or(u32::MAX),
        }
    }

    /// The largest frame (or fragmented message) accepted from now on.
    pub(super) fn set_frame_limit(&mut self, bytes: usize) {
        self.decoder.set_max_message(bytes);
    }

    pub(super) fn decode(&mut self, bytes: &[u8]) {
        if let Err(e) = self.decoder.feed(bytes, &mut self.pending) {
            if let DecodeError::Protocol(why) = e {
                tracing::debug!(why, "protocol error");
            }
            self.broken = Some(End::Close(e.close_code()));
        }
    }

    /// The next whole frame from the client, or how the connection ends.
    pub(super) fn next(&mut self) -> impl Future<Output = Result<Frame, End>> + '_ {
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
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
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
    pub(super) fn send<'a>(
        &'a mut self,
        frames: &'a [Out],
    ) -> impl Future<Output = bool> + Send + 'a {
        let limit = Duration::from_millis(u64::from(self.write_timeout_ms));
        self.write_within(frames, limit)
    }

    /// Writes frames; false if the socket failed or the write took longer than `limit`.
    /// The usual case, a socket with room, is written at once, when this is called, without
    /// a timer; only a full socket sets up the (boxed) timed wait. So the future every
    /// connection's task holds while writing is a flag or a pointer.
    pub(super) fn write_within<'a>(
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

    pub(super) async fn send_text(&mut self, payload: Bytes) -> bool {
        self.send(&[Out::text(payload)]).await
    }

    /// Writes `frames` from `at` (the frame being written, and the bytes of it already out)
    /// with vectored writes until done or the socket is full.
    pub(super) fn poll_write(
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
    pub(super) async fn finish(&mut self, end: End) {
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
    pub(super) fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
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
