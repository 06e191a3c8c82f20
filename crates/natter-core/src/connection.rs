//! One client connection, from before authentication to its end, whatever the transport.
//! This is the connection's state machine; transports only translate frames to and from it:
//!
//! 1. **Awaiting auth** ([`Connection::before_auth`]): the first request (or the error of a
//!    frame that was not one) gets an [`AuthStep`]: authenticated, or refused with an error
//!    reply and a close code. Anything but a valid `auth` is refused and closes the
//!    connection (`close::UNAUTHENTICATED`; `close::INTERNAL` when the server failed); nothing
//!    before authentication is answered and kept open. No `auth` within
//!    [`Connection::auth_timeout`] closes it with `close::UNAUTHENTICATED` too, and a server
//!    shutting down ([`Connection::shutdown`]) with `close::GOING_AWAY`.
//! 2. **Open** ([`Connection::start`], [`Connection::request`]): rate-limited requests; the
//!    session's `Outbox` yields events, and `Close(code)` when the core ends the session
//!    (revoked, slow consumer, shutdown). At each keepalive sweep [`Connection::keepalive`]
//!    says whether to ping or to close a silent client (`close::GOING_AWAY`).
//! 3. **Ended** ([`Connection::end`], or drop): the session leaves its rooms and presence.

use crate::error::{ChatError, ErrorCode};
use crate::metrics::RateLimitKind;
use crate::model::User;
use crate::node::Node;
use crate::protocol::*;
use crate::ratelimit::TokenBucket;
use crate::session::{Outbox, SessionHandle};
use std::sync::Arc;
use std::time::Duration;

/// What the auth phase makes of one request that came before authentication.
pub enum AuthStep {
    /// Authenticated: answer the `auth` with this reply, then pump the outbox.
    Done(Box<AuthReply>, Outbox),
    /// Answer with `error`, then close the connection with `close`.
    Refused { error: ChatError, close: u16 },
}

/// What to do at a keepalive sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveStep {
    /// Ping the client (transports whose framing has pings).
    Ping,
    /// The client has been silent too long: close with this code.
    Close(u16),
}

/// A client silent for this many keepalive periods is closed at the next sweep (2.5).
const SILENT_PERIODS_X2: u32 = 5;

/// One client connection, from before authentication to its end. Dropping it ends the
/// session (presence, typing, hub membership).
pub struct Connection {
    node: Arc<Node>,
    session: Option<Arc<SessionHandle>>,
    bucket: TokenBucket,
}

impl Connection {
    /// A connection, counted in the node's open connections until it is dropped.
    pub fn new(node: Arc<Node>) -> Connection {
        let bucket = TokenBucket::new(node.config().rate_burst);
        node.metrics().connections.inc();
        Connection {
            node,
            session: None,
            bucket,
        }
    }

    /// The node this connection belongs to (for the core's own connection steps).
    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    pub fn is_authenticated(&self) -> bool {
        self.session.is_some()
    }

    pub fn user(&self) -> Option<&User> {
        self.session.as_ref().map(|s| &s.user)
    }

    /// How long a new connection has to authenticate; then it is closed with
    /// `close::UNAUTHENTICATED`.
    pub fn auth_timeout(&self) -> Duration {
        self.node.config().auth_timeout
    }

    /// The auth phase: one request before authentication, or the error of a frame that could
    /// not be read as a request. Every refusal closes the connection: a frame that is not a
    /// request (not JSON, bad JSON, a binary frame), a request other than `auth` and an `auth`
    /// that fails close with `close::UNAUTHENTICATED`; an `auth` the server failed to handle
    /// (`internal`, or `rate_limited` when the store is saturated) with `close::INTERNAL`, so
    /// the client reconnects rather than signs in again.
    pub async fn before_auth(&mut self, request: Result<Request, ChatError>) -> AuthStep {
        let args = match request {
            Ok(Request::Auth(args)) => args,
            Ok(_) => {
                return AuthStep::Refused {
                    error: ChatError::new(ErrorCode::Unauthenticated, "send `auth` first"),
                    close: close::UNAUTHENTICATED,
                }
            }
            Err(error) => {
                return AuthStep::Refused {
                    error,
                    close: close::UNAUTHENTICATED,
                }
            }
        };
        match self.authenticate(args).await {
            Ok((reply, outbox)) => AuthStep::Done(Box::new(reply), outbox),
            Err(error) => {
                let close = match error.code {
                    ErrorCode::Internal | ErrorCode::RateLimited => close::INTERNAL,
                    _ => close::UNAUTHENTICATED,
                };
                AuthStep::Refused { error, close }
            }
        }
    }

    /// The largest frame an authenticated connection may send (`max_frame_bytes`).
    pub fn max_frame_bytes(&self) -> usize {
        self.node.config().max_frame_bytes
    }

    /// Resolves when the server begins to shut down. A transport waiting for `auth` closes
    /// the connection then with `close::GOING_AWAY` (an authenticated one's outbox yields
    /// that close by itself).
    pub fn shutdown(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.node.stopping()
    }

    /// The keepalive's period (a ping each), and how long a client may stay silent before
    /// [`Connection::keepalive`] closes it (2.5 periods): what a transport that announces
    /// its heartbeat (Socket.IO's `pingInterval`, `pingTimeout`) tells its clients.
    pub fn heartbeat(&self) -> (Duration, Duration) {
        let period = self.node.config().keepalive;
        (period, period * SILENT_PERIODS_X2 / 2)
    }

    /// At a keepalive sweep, given how long the client has been silent (sent nothing, not
    /// even a pong): ping it, or close it if it has been silent for 2.5 keepalive periods.
    pub fn keepalive(&self, silent_for: Duration) -> KeepaliveStep {
        let (_, limit) = self.heartbeat();
        if silent_for > limit {
            KeepaliveStep::Close(close::GOING_AWAY)
        } else {
            KeepaliveStep::Ping
        }
    }

    /// Authenticates with `auth` arguments; on success returns the reply data and the
    /// session's outbox, which the transport pumps from then on.
    pub async fn authenticate(&mut self, args: AuthArgs) -> Result<(AuthReply, Outbox), ChatError> {
        if self.session.is_some() {
            return Err(ChatError::new(
                ErrorCode::AlreadyAuthenticated,
                "this connection is already authenticated",
            ));
        }
        let (handle, outbox, data) = self.node.authenticate(args).await?;
        // A session registered while the server began to stop may have missed `close_all`
        // (which cancels first, then closes what it finds): close it here.
        if self.node.is_stopping() {
            handle.close(close::GOING_AWAY);
        }
        self.session = Some(handle);
        Ok((data, outbox))
    }

    /// Handles a request of an authenticated connection (rate-limited).
    pub async fn request(&mut self, request: Request) -> Result<Reply, ChatError> {
        match self.start(request) {
            Ok(work) => work.await,
            Err(e) => Err(e),
        }
    }

    /// Admits a request (authentication and rate limit are checked now) and returns its work
    /// as a future that borrows nothing, so a transport can keep several in flight.
    pub fn start(
        &mut self,
        request: Request,
    ) -> Result<
        impl std::future::Future<Output = Result<Reply, ChatError>> + Send + 'static,
        ChatError,
    > {
        let Some(session) = self.session.clone() else {
            return Err(ChatError::new(
                ErrorCode::Unauthenticated,
                "send `auth` first",
            ));
        };
        if let Err(wait) = self.bucket.take(
            self.node.config().rate_per_sec,
            self.node.config().rate_burst,
        ) {
            self.node
                .metrics()
                .rate_limited(RateLimitKind::Request)
                .inc();
            return Err(ChatError::rate_limited(
                "too many requests, slow down",
                wait,
            ));
        }
        let node = self.node.clone();
        Ok(async move { node.dispatch(&session, request).await })
    }

    /// Whether `request` may run while earlier requests of this connection are still in
    /// flight. Only sends qualify, and only on a store that keeps the order in which appends
    /// were issued (so a client's pipelined messages keep their order). Everything else waits
    /// for the requests before it, so a `room.join` is done before the send behind it starts.
    /// A send with an `@` waits too: resolving its mentions reads the room's members before
    /// the append, and a send issued after it could reach the store first.
    pub fn may_pipeline(&self, request: &Request) -> bool {
        matches!(request, Request::MessageSend(send) if !send.body.contains('@'))
            && self.node.store().keeps_issue_order()
    }
}

impl Connection {
    /// Ends the session (as dropping the connection does): its rooms and presence are
    /// released now, though the transport may still be closing the socket.
    pub fn end(&mut self) {
        if let Some(session) = self.session.take() {
            session.close(close::NORMAL);
            self.node.end_session(session);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.end();
        self.node.metrics().connections.dec();
    }
}
