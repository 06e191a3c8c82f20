//! Requests: socketioxide's handler queues each event the client emits, in order, for the
//! socket's task; reading a request from an event `[name, data?]`.

use super::writer::{error_event, failure};
use super::OVERFLOW_RETRY_MS;
use crate::metrics::ServerMetrics;
use natter_core::{ChatError, ErrorCode, Request};
use serde_json::Value as Json;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::AckSender;
use socketioxide::handler::{FromMessageParts, MessageHandler, Value as Payload};
use socketioxide::socket::Socket;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One event the client emitted: a request.
pub(super) struct Incoming {
    pub(super) socket: Arc<Socket<LocalAdapter>>,
    pub(super) payload: Payload,
    /// Present when the client wants an acknowledgement.
    pub(super) ack_id: Option<i64>,
}

/// The request handler: every event the client emits is a request, queued in order.
#[derive(Clone)]
pub(super) struct Requests {
    pub(super) queue: mpsc::Sender<Incoming>,
    /// Where refusals of a full queue are counted (`/metrics`).
    pub(super) metrics: Arc<ServerMetrics>,
}

/// Names `Requests`' implementation of socketioxide's handler trait.
pub(super) struct RequestsHandler;

impl MessageHandler<LocalAdapter, RequestsHandler> for Requests {
    fn call(&self, socket: Arc<Socket<LocalAdapter>>, payload: Payload, ack_id: Option<i64>) {
        let incoming = Incoming {
            socket,
            payload,
            ack_id,
        };
        if let Err(mpsc::error::TrySendError::Full(incoming)) = self.queue.try_send(incoming) {
            self.metrics.socketio_queue_refused.inc();
            refuse_overflow(incoming);
        }
    }
}

/// A request beyond the queue is answered at once with `rate_limited` (best effort).
pub(super) fn refuse_overflow(mut incoming: Incoming) {
    let mut e = ChatError::new(ErrorCode::RateLimited, "too many requests, slow down");
    e.retry_after_ms = Some(OVERFLOW_RETRY_MS);
    let sent = match incoming.ack_id {
        Some(_) => {
            let Ok(ack) = AckSender::from_message_parts(
                &incoming.socket,
                &mut incoming.payload,
                &incoming.ack_id,
            );
            ack.send(&failure(&e))
        }
        None => {
            let event = event_name(&incoming.payload);
            incoming.socket.emit("error", &error_event(&event, &e))
        }
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "could not refuse an overflowing request");
    }
}

/// The event's name, for error events (empty when it cannot be read).
pub(super) fn event_name(payload: &Payload) -> String {
    payload
        .as_str()
        .and_then(|text| serde_json::from_str::<Vec<Json>>(text).ok())
        .and_then(|args| args.first().and_then(Json::as_str).map(String::from))
        .unwrap_or_default()
}

/// Reads an event `[name, args...]`: its name and its arguments (JSON text, no binary
/// attachments). On failure, also returns the event name when it could be read.
pub(super) fn event_args(payload: &Payload) -> Result<(String, Vec<Json>), (String, ChatError)> {
    let (text, attachments) = match payload {
        Payload::Str(text, attachments) => (text, attachments),
        Payload::Bytes(_) => return Err((String::new(), binary())),
    };
    let (name, args) = text_args(text.as_str())?;
    if attachments.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err((name, binary()));
    }
    Ok((name, args))
}

/// The refusal of binary data (attachments, binary packets).
pub(crate) fn binary() -> ChatError {
    ChatError::new(
        ErrorCode::BinaryUnsupported,
        "binary data is not supported; send JSON",
    )
}

/// Reads an event's JSON array `[name, args...]`: its name and its arguments.
pub(crate) fn text_args(text: &str) -> Result<(String, Vec<Json>), (String, ChatError)> {
    let mut args: Vec<Json> = serde_json::from_str(text).map_err(|e| {
        (
            String::new(),
            ChatError::new(ErrorCode::BadJson, e.to_string()),
        )
    })?;
    let name = match args.first() {
        Some(Json::String(name)) => name.clone(),
        _ => {
            let e = ChatError::invalid("the event name must be a string");
            return Err((String::new(), e));
        }
    };
    args.remove(0);
    Ok((name, args))
}

/// Reads a request from an event `[name, data?]`. On failure, also returns the event name.
pub fn parse(payload: &Payload) -> Result<(String, Request), (String, ChatError)> {
    let (name, args) = event_args(payload)?;
    request(name, args)
}

/// Reads a request from an event's JSON array `[name, data?]`.
pub(crate) fn parse_text(text: &str) -> Result<(String, Request), (String, ChatError)> {
    let (name, args) = text_args(text)?;
    request(name, args)
}

fn request(name: String, mut args: Vec<Json>) -> Result<(String, Request), (String, ChatError)> {
    if args.len() > 1 {
        let e = ChatError::invalid("a request takes one data argument (an object)");
        return Err((name, e));
    }
    let data = args.pop();
    match Request::parse(&name, data.as_ref()) {
        Ok(request) => Ok((name, request)),
        Err(e) => Err((name, e)),
    }
}
