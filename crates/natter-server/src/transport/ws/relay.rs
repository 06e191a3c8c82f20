//! The relay WebSocket at `/` (relay mode, ADR 0026; docs/protocol.md, "The relay WebSocket
//! at `/`"): the plain WebSocket tutorial client, `new WebSocket("ws://host:port/")`, which
//! sends bare text and shows whatever text arrives.
//!
//! The connection is a new guest in the relay room (the core's `Connection::relay_guest`);
//! each text frame is a message from it in that room (through `Connection::request`, so the
//! rate limit and the room's rules apply), and each message of that room arrives as one text
//! frame `name: text`, in the room's order. A refused text gets one frame `! code: message`
//! (no name can start with `!`). It runs on the `/ws` socket ([`Socket`]): the same codec,
//! write timeout, keepalive and close handshake; only the framing of messages differs.

use super::super::wsframe::{opcode, Frame};
use super::handshake::{check_handshake, has_token, switching_protocols, Refusal};
use super::*;
use crate::http::api::ApiError;
use crate::http::client::ClientAddr;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use natter_core::relay::{relayed, send_request, DEFAULT_EVENT};
use natter_core::{ChatError, KeepaliveStep, Outbox, OutboxItem, RoomId};
use pump::{binary_refusal, pong};
use serde_json::Value;
use socket::Out;
use tokio::time::Instant;

/// `GET /`: the web client's page, or, with `Upgrade: websocket`, the relay WebSocket (in
/// relay mode; otherwise refused with 400 `invalid_request`). Each relay connection is a new
/// guest, so it counts against `--guest-per-hour-per-address` (429 past it).
pub async fn root(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    mut req: Request,
) -> Response {
    if !has_token(req.headers(), header::UPGRADE, "websocket") {
        let uri = req.uri().clone();
        let headers = req.headers().clone();
        return crate::http::web::serve(State(state), uri, headers).await;
    }
    if !state.config.relay {
        return Refusal::new(
            StatusCode::BAD_REQUEST,
            "a WebSocket at `/` needs relay mode (`--relay`); Natter's protocol is at /ws",
        )
        .into_response();
    }
    let accept = match check_handshake(req.version(), req.headers()) {
        Ok(accept) => accept,
        Err(refusal) => return refusal.into_response(),
    };
    if req
        .extensions()
        .get::<hyper::upgrade::OnUpgrade>()
        .is_none()
    {
        return Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded",
        )
        .into_response();
    }
    if let Err(e) = state.limits.guest(addr) {
        return ApiError::from(e).into_response();
    }
    let label = crate::http::api::device_label(req.headers());
    // The guest is signed in and in the relay room before the `101`: every message stored
    // after the client's `open` reaches it (they wait in its outbox until the loop runs).
    let mut conn = Connection::new(state.node.clone());
    let (outbox, room) = match conn.relay_guest(&state.config.relay_room, &label).await {
        Ok(signed_in) => signed_in,
        Err(e) => {
            tracing::debug!(code = e.code.as_str(), "relay guest refused");
            return ApiError::from(e).into_response();
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let guest = Guest { conn, outbox, room };
    let task = connection(on_upgrade, state.clone(), guest);
    tokio::spawn(state.tasks.track_future(task));
    switching_protocols(&accept)
}

/// A relay connection's guest, signed in before the upgrade.
struct Guest {
    conn: Connection,
    outbox: Outbox,
    room: RoomId,
}

/// One relay connection's task (rare and not kept small like `/ws`'s: relay is opt-in).
/// If the upgrade fails, dropping the guest's connection ends its session.
async fn connection(on_upgrade: OnUpgrade, state: AppState, guest: Guest) {
    let Some(upgraded) = upgraded(on_upgrade).await else {
        return;
    };
    match Socket::from_upgraded(upgraded, &state.config) {
        Ok(socket) => serve(guest, socket).await,
        Err(other) => serve(guest, *other).await,
    }
}

async fn serve<S: Io>(mut guest: Guest, mut socket: Socket<S>) {
    socket.set_frame_limit(guest.conn.max_frame_bytes());
    tracing::debug!(
        user = guest.conn.user().map(|u| u.name.as_str()),
        "relay session started"
    );
    let end = session(&mut guest, &mut socket).await;
    guest.conn.end();
    Box::pin(socket.finish(end)).await;
}

/// A refusal as the one text frame a relay client is told: `! code: message`.
fn refusal_line(e: &ChatError) -> Bytes {
    Bytes::from(format!("! {}: {}", e.code.as_str(), e.message))
}

/// The loop: text frames in, lines out. Returns how the connection ends.
async fn session<S: Io>(guest: &mut Guest, socket: &mut Socket<S>) -> End {
    let Guest { conn, outbox, room } = guest;
    let room = *room;
    let mut heard = Instant::now();
    loop {
        let woke = tokio::select! {
            frame = socket.next() => Woke::Frame(frame),
            item = outbox.next() => Woke::Outbox(item),
        };
        let mut batch: Vec<Out> = Vec::new();
        match woke {
            Woke::Frame(Err(end)) => return end,
            Woke::Frame(Ok(frame)) => {
                heard = Instant::now();
                match frame {
                    Frame::Text(text) => {
                        if let Err(e) = say(conn, room, text).await {
                            batch.push(Out::text(refusal_line(&e)));
                        }
                    }
                    Frame::Binary => batch.push(Out::text(refusal_line(&binary_refusal()))),
                    Frame::Close(code) => return End::Echo(code),
                    Frame::Ping(payload) => {
                        if let Err(end) = pong(socket, payload).await {
                            return end;
                        }
                    }
                    Frame::Pong => {}
                }
            }
            Woke::Outbox(OutboxItem::Event(event)) => {
                line(&event, room, &mut batch);
                while batch.len() < socket::MAX_BATCH {
                    let Some(event) = outbox.try_next() else {
                        break;
                    };
                    line(&event, room, &mut batch);
                }
            }
            Woke::Outbox(OutboxItem::Close(code)) => return End::Close(code),
            Woke::Outbox(OutboxItem::Keepalive) => match conn.keepalive(heard.elapsed()) {
                KeepaliveStep::Close(code) => return End::Close(code),
                KeepaliveStep::Ping => batch.push(Out::new(opcode::PING, Bytes::new())),
            },
        }
        if !batch.is_empty() && !socket.send(&batch).await {
            return End::Drop;
        }
    }
}

/// What woke the relay loop.
enum Woke {
    Frame(Result<Frame, End>),
    Outbox(OutboxItem),
}

/// Stores one text frame as the guest's message in the relay room.
async fn say(conn: &mut Connection, room: RoomId, text: String) -> Result<(), ChatError> {
    let request = send_request(room, DEFAULT_EVENT, &Value::String(text))?;
    conn.request(request).await.map(|_| ())
}

/// A message of the relay room as its text line, `name: text`; other events are not shown.
fn line(event: &natter_core::EncodedEvent, room: RoomId, batch: &mut Vec<Out>) {
    let Some(message) = relayed(event) else {
        return;
    };
    if message.room != room {
        return;
    }
    batch.push(Out::text(Bytes::from(format!(
        "{}: {}",
        message.sender, message.body
    ))));
}
