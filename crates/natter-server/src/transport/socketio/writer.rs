//! Writing into one socket: events, acknowledgements and the typed frames of docs/socketio.md
//! (`{"ok", "data"}` / `{"ok", "error"}` acks, the `error` and `close` events).

use super::requests::Incoming;
use super::{EVENT_BATCH, FULL_RETRY};
use natter_core::protocol::{ErrorBody, Reply};
use natter_core::Outbox;
use natter_core::{close, ChatError, EncodedEvent};
use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::FromMessageParts;
use socketioxide::{SendError, SocketError, TransportType};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// An acknowledgement (docs/socketio.md): `{"ok": true, "data": ..}` or
/// `{"ok": false, "error": {"code", "message", "retry_after_ms"?}}`.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Ack<'a> {
    Success { ok: bool, data: &'a Reply },
    Failure { ok: bool, error: ErrorBody<'a> },
}

pub(super) fn success(data: &Reply) -> Ack<'_> {
    Ack::Success { ok: true, data }
}

pub(super) fn failure(e: &ChatError) -> Ack<'_> {
    Ack::Failure {
        ok: false,
        error: ErrorBody::from(e),
    }
}

/// The `error` event for a failed request that had no acknowledgement callback.
#[derive(Serialize)]
pub(super) struct ErrorEvent<'a> {
    /// The request's event name (empty when it could not be read).
    event: &'a str,
    error: ErrorBody<'a>,
}

pub(super) fn error_event<'a>(event: &'a str, e: &'a ChatError) -> ErrorEvent<'a> {
    ErrorEvent {
        event,
        error: ErrorBody::from(e),
    }
}

/// The `close` event sent before the server disconnects a socket (native: the close frame).
#[derive(Serialize)]
pub(crate) struct CloseEvent {
    code: u16,
    reason: &'static str,
}

impl CloseEvent {
    pub(crate) fn new(code: u16) -> CloseEvent {
        CloseEvent {
            code,
            reason: close::reason(code),
        }
    }
}

/// Writes into one socket. socketioxide buffers up to `max_buffer_size` packets per socket;
/// when that is full, a write is retried until `write_timeout`, then the socket is dropped
/// (as a stalled native write is).
pub(super) struct Writer {
    pub(super) socket: SocketRef,
    pub(super) write_timeout: Duration,
    pub(super) gone: CancellationToken,
    /// Where a disconnected polling socket waits for its client (see [`super::flush`]).
    pub(super) flushes: std::sync::Arc<super::PollFlushes>,
}

impl Writer {
    /// Runs `write` until it goes through; false if the socket is gone or stalled.
    pub(super) async fn retry(&self, mut write: impl FnMut() -> Result<(), SendError>) -> bool {
        let deadline = Instant::now() + self.write_timeout;
        loop {
            match write() {
                Ok(()) => return true,
                Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                    if Instant::now() >= deadline {
                        tracing::debug!("socket.io write stalled");
                        return false;
                    }
                    tokio::select! {
                        _ = self.gone.cancelled() => return false,
                        _ = tokio::time::sleep(FULL_RETRY) => {}
                    }
                }
                Err(SendError::Socket(SocketError::Closed)) => return false,
                Err(SendError::Serialize(e)) => {
                    tracing::error!(error = %e, "socket.io encoding failed");
                    return true;
                }
            }
        }
    }

    pub(super) async fn emit<T: Serialize + ?Sized>(&self, name: &str, data: &T) -> bool {
        self.retry(|| self.socket.emit(name, data)).await
    }

    /// Emits a core event, its data JSON as the core encoded it.
    pub(super) async fn event(&self, event: &EncodedEvent) -> bool {
        let data: &RawValue = match serde_json::from_slice(&event.data) {
            Ok(data) => data,
            Err(e) => {
                tracing::error!(error = %e, event = event.name, "event data is not JSON");
                return true;
            }
        };
        self.retry(|| self.socket.emit(event.name, data)).await
    }

    /// Writes an event and whatever else is ready behind it.
    pub(super) async fn events(&self, first: &EncodedEvent, outbox: &mut Outbox) -> bool {
        if !self.event(first).await {
            return false;
        }
        for _ in 0..EVENT_BATCH {
            let Some(event) = outbox.try_next() else {
                break;
            };
            if !self.event(&event).await {
                return false;
            }
        }
        true
    }

    pub(super) async fn ack<T: Serialize>(&self, incoming: &mut Incoming, reply: &T) -> bool {
        let socket = incoming.socket.clone();
        self.retry(|| {
            let Ok(ack) =
                AckSender::from_message_parts(&socket, &mut incoming.payload, &incoming.ack_id);
            ack.send(reply)
        })
        .await
    }

    /// Tells the client why, then disconnects it (native: a close frame with `code`). Over
    /// long-polling, waits (at most `FLUSH_WAIT`) for the client to come for those packets,
    /// so that a server shutting down still answers that request.
    pub(super) async fn close(&self, code: u16) {
        let polling = self.socket.transport_type() == TransportType::Polling;
        let sid = self.socket.id.to_string();
        let heard = polling.then(|| self.flushes.watch(sid.clone()));
        self.emit("close", &CloseEvent::new(code)).await;
        self.disconnect().await;
        if let Some(heard) = heard {
            if tokio::time::timeout(super::flush::FLUSH_WAIT, heard.notified())
                .await
                .is_err()
            {
                tracing::debug!("a disconnected polling client did not come back");
            }
            self.flushes.forget(&sid);
        }
    }

    /// Disconnects the socket, waiting for room in its buffer as long as the client is there.
    pub(super) async fn disconnect(&self) {
        loop {
            match self.socket.clone().disconnect() {
                Err(SocketError::InternalChannelFull) => {}
                Ok(()) | Err(SocketError::Closed) => return,
            }
            tokio::select! {
                _ = self.gone.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
}
