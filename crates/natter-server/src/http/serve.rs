//! The accept loop: serves each TCP connection with hyper (HTTP/1.1, HTTP/2 with prior
//! knowledge, upgrades to `/ws`), hands the handlers the peer's address, and holds every
//! connection to two timers (docs/protocol.md section 1):
//!
//! - **header**: a request's head must be complete within `http_header_timeout` of its first
//!   byte (for the first request, of the connection's start). A slowloris client that
//!   trickles a header is closed then.
//! - **idle**: between requests, a keep-alive connection may wait `http_idle_timeout` for the
//!   next request's first byte.
//!
//! While a request is being answered (from its head until its response's body is written)
//! neither timer runs; the JSON endpoints bound the body themselves (`http_body_timeout`),
//! and an upgraded connection leaves this loop. A timer that fires drops the connection
//! (the socket is closed, with no response). Each connection's clock is a small shared
//! state that the socket's reads, the service and the response body move along, and one
//! watchdog future that sleeps until the current deadline.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// The connection timers' settings.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Waiting for a request's head, since this instant (its first byte, or the start).
    Head(Instant),
    /// Between requests, since the last response was written.
    Idle(Instant),
    /// This many requests are being answered (HTTP/2 may have several).
    Busy(usize),
}

/// One connection's clock, shared by its socket, its service and its watchdog.
#[derive(Debug)]
struct Clock {
    phase: Mutex<Phase>,
    /// Wakes the watchdog when the phase changes.
    changed: Notify,
}

impl Clock {
    fn new() -> Arc<Clock> {
        Arc::new(Clock {
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
        })
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        let next = f(*phase);
        if next != *phase {
            *phase = next;
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: between requests, a request has begun.
    fn read(&self) {
        self.update(|p| match p {
            Phase::Idle(_) => Phase::Head(Instant::now()),
            other => other,
        });
    }

    /// The service was called: a request is being answered until the guard is dropped.
    fn begin(self: &Arc<Self>) -> Answering {
        self.update(|p| match p {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        Answering(self.clone())
    }

    /// Which timer fires first, and when; `None` while busy.
    fn deadline(&self, t: Timeouts) -> Option<(Instant, &'static str)> {
        match self.phase() {
            Phase::Head(since) => Some((since + t.header, "header read timeout")),
            Phase::Idle(since) => Some((since + t.idle, "idle timeout")),
            Phase::Busy(_) => None,
        }
    }

    /// Resolves when the connection has overrun a timer, with the timer's name.
    async fn expired(&self, t: Timeouts) -> &'static str {
        loop {
            let changed = self.changed.notified();
            match self.deadline(t) {
                None => changed.await,
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
            }
        }
    }
}

/// A request being answered; dropped when its response body has been written (or the
/// request was abandoned).
struct Answering(Arc<Clock>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.update(|p| match p {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// A response body that holds its request's [`Answering`] until it is written.
struct Answered {
    body: Body,
    _answering: Answering,
}

impl hyper::body::Body for Answered {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The TCP stream as hyper sees it: reads move the connection's clock along. The `/ws`
/// upgrade takes the `TcpStream` back out ([`Watched::into_tcp`]).
pub struct Watched {
    tcp: TcpStream,
    clock: Arc<Clock>,
}

impl Watched {
    /// The stream itself, once hyper has handed the connection over.
    pub fn into_tcp(self) -> TcpStream {
        self.tcp
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, asks every
/// connection to finish (idle ones close at once) and waits for them.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let stopping = CancellationToken::new();
    let stop = stopping.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    let connections = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, mostly: wait rather than spin (as axum does).
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            _ = stopping.cancelled() => break,
        };
        // Small frames (replies, events) must not wait on Nagle's algorithm.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        connections.spawn(connection(
            tcp,
            peer,
            app.clone(),
            timeouts,
            stopping.clone(),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    stopping: CancellationToken,
) {
    let clock = Clock::new();
    let io = TokioIo::new(Watched {
        tcp,
        clock: clock.clone(),
    });
    let service_clock = clock.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let answering = service_clock.begin();
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move {
            let response = match app.call(req.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, std::convert::Infallible>(response.map(|body| Answered {
                body,
                _answering: answering,
            }))
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    // CONNECT protocol needed for HTTP/2 websockets (as axum::serve sets it).
    builder.http2().enable_connect_protocol();
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            why = clock.expired(timeouts) => {
                tracing::debug!(%peer, why, "closing an HTTP connection");
                return;
            }
            _ = stopping.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header: Duration::from_secs(1),
        idle: Duration::from_secs(5),
    };

    #[tokio::test(start_paused = true)]
    async fn the_header_timer_runs_from_the_start_and_from_a_first_byte() {
        let clock = Clock::new();
        let start = Instant::now();
        assert_eq!(clock.expired(T).await, "header read timeout");
        assert_eq!(start.elapsed(), T.header);
        // A request answered, then idle; a first byte starts the header timer again.
        drop(clock.begin());
        let idle = Instant::now();
        tokio::time::advance(Duration::from_secs(3)).await;
        clock.read();
        assert_eq!(clock.expired(T).await, "header read timeout");
        assert_eq!(idle.elapsed(), Duration::from_secs(3) + T.header);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_and_busy() {
        let clock = Clock::new();
        let answering = clock.begin();
        let waiting = tokio::time::timeout(Duration::from_secs(600), clock.expired(T)).await;
        assert!(
            waiting.is_err(),
            "no timer runs while a request is answered"
        );
        let second = clock.begin();
        drop(answering);
        assert_eq!(clock.phase(), Phase::Busy(1));
        drop(second);
        let idle = Instant::now();
        assert_eq!(clock.expired(T).await, "idle timeout");
        assert_eq!(idle.elapsed(), T.idle);
    }
}
