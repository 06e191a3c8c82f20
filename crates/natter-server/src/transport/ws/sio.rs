//! Socket.IO sockets on WebSocket from the start (`/socket.io/?EIO=4&transport=websocket`,
//! no `sid`: what `transports: ["websocket"]` clients open), served on the `/ws` connection
//! loop instead of socketioxide (ADR 0029): the same socket, pump, pipelining and write
//! batching, speaking Engine.IO v4 / Socket.IO v5 packets ([`SocketIo`], the
//! [`Dialect`](super::pump::Dialect)). Each broadcast is encoded into its Socket.IO packet once,
//! by its first recipient here, and shared (`EncodedEvent::alt_frame`). Long-polling, and
//! polling upgraded to WebSocket, stay with socketioxide (`transport::socketio`); the contract
//! (docs/socketio.md) is the same on both.
//!
//! The handshake: Engine.IO's `open` goes out at once; the client's `CONNECT` to `/` carries
//! the `auth` payload, which the core's auth phase decides. Accepted: `40{"sid"}` and the
//! `auth` event. Refused: `44{"message": "code: message"}`, and the connection waits for
//! another `CONNECT` until `auth_timeout` (as socketioxide does). Heartbeats are the node's
//! keepalive sweep: `2` every period, the announced `pingTimeout` the silence after which it
//! closes.

use super::pump::{pump, send_or_drop, Dialect, PreAuth, Read};
use super::*;
use crate::transport::socketio::{auth_request, refusal_text, wire, CloseEvent, Counted};
use crate::AppState;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use natter_core::protocol::Reply;
use natter_core::{close, AuthStep, ChatError, EncodedEvent, Outbox};
use std::sync::Arc;

/// The upgrade of a Socket.IO WebSocket opened without a session id.
pub fn upgrade(state: AppState, req: Request) -> Response {
    handshake::accept(req, |on_upgrade| {
        let counted = Counted::new(&state.metrics);
        let task = connection(
            on_upgrade,
            state.node.clone(),
            state.config.clone(),
            Box::new((state.tasks.clone(), counted)),
        );
        tokio::spawn(state.tasks.track_future(task));
    })
}

/// One socket's task (see `super::connection` for why it is a plain fn and builds its state
/// once, lending it below: this future is what an idle socket costs).
#[allow(clippy::manual_async_fn)]
fn connection(
    on_upgrade: OnUpgrade,
    node: Arc<Node>,
    config: Arc<Config>,
    // Boxed: one pointer in every socket's future keeps it in tokio's 640-byte task cell.
    rest: Box<(TaskTracker, Counted)>,
) -> impl Future<Output = ()> + Send {
    async move {
        let Some(upgraded) = upgraded(on_upgrade).await else {
            return;
        };
        let socket = match Socket::from_upgraded(upgraded, &config) {
            Ok(socket) => socket,
            Err(other) => {
                let (tasks, counted) = *rest;
                // Its own task, as on `/ws`: awaiting it in this match would keep the match's
                // value (as big as a socket) in every socket's future.
                tasks.spawn(async move {
                    let mut live = Live {
                        conn: Connection::new(node),
                        socket: *other,
                    };
                    serve(&mut live, &config).await;
                    drop(counted);
                });
                return;
            }
        };
        let mut live = Live {
            conn: Connection::new(node),
            socket,
        };
        serve(&mut live, &config).await;
        // After the connection: up before the core's count, down after it.
        drop(rest);
    }
}

async fn serve<S: Io>(live: &mut Live<S>, config: &Config) {
    // Engine.IO has one packet limit for the connection's life (docs/socketio.md section 5).
    live.socket.set_frame_limit(config.max_frame_bytes);
    let end = session(live, config).await;
    live.conn.end();
    Box::pin(live.socket.finish(end)).await;
}

async fn session<S: Io>(live: &mut Live<S>, config: &Config) -> End {
    let mut outbox = match Box::pin(handshake(live, config)).await {
        Ok(outbox) => outbox,
        Err(end) => return end,
    };
    tracing::debug!(
        user = live.conn.user().map(|u| u.name.as_str()),
        "socket.io session started"
    );
    let end = pump::<S, SocketIo>(live, &mut outbox).await;
    tracing::debug!(?end, "socket.io session ended");
    match end {
        End::Close(code) => Box::pin(server_disconnect(&mut live.socket, code)).await,
        other => other,
    }
}

/// As over socketioxide, a close the server decides is told as the `close` event, then the
/// disconnect (the client's `io server disconnect`, after which it does not reconnect by
/// itself); then the WebSocket closes normally.
async fn server_disconnect<S: Io>(socket: &mut Socket<S>, code: u16) -> End {
    let packets = [
        Out::text(wire::event("close", &CloseEvent::new(code))),
        Out::text(wire::disconnect()),
    ];
    if socket.send(&packets).await {
        End::Close(close::NORMAL)
    } else {
        End::Drop
    }
}

/// A random id for Engine.IO and Socket.IO (only ever echoed by the client).
fn new_sid() -> String {
    use base64::Engine;
    let bytes: [u8; 15] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Engine.IO's `open`, then Socket.IO's `CONNECT` with `auth`, decided by the core. Returns
/// the session's outbox, or how the connection ends.
async fn handshake<S: Io>(live: &mut Live<S>, config: &Config) -> Result<Outbox, End> {
    let Live { conn, socket } = live;
    let (period, silent) = conn.heartbeat();
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let open = wire::open(
        &new_sid(),
        millis(period),
        millis(silent.saturating_sub(period)),
        config.max_frame_bytes,
    );
    send_or_drop(socket, open).await?;
    // Before `CONNECT` there is nothing to tell the client (no close code in Socket.IO): at
    // shutdown or the deadline the connection just closes.
    let mut waiting = PreAuth::new(conn, close::NORMAL);
    loop {
        // Binary frames are attachments, and not read before `CONNECT`.
        let Some(text) = waiting.next(socket).await? else {
            continue;
        };
        let auth = match wire::read(&text) {
            wire::Packet::Connect {
                namespace: "/",
                auth,
            } => auth,
            wire::Packet::Connect { namespace, .. } => {
                let refused = wire::connect_error(namespace, "Invalid namespace");
                send_or_drop(socket, refused).await?;
                continue;
            }
            wire::Packet::Disconnect => return Err(End::Close(close::NORMAL)),
            _ => continue,
        };
        let request = auth_request(wire::auth_payload(auth));
        match conn.before_auth(request).await {
            AuthStep::Done(welcome, outbox) => {
                let welcome = wire::event("auth", &Reply::Auth(welcome));
                let accepted = [Out::text(wire::connected(&new_sid())), Out::text(welcome)];
                if !socket.send(&accepted).await {
                    return Err(End::Drop);
                }
                return Ok(outbox);
            }
            AuthStep::Refused { error, .. } => {
                tracing::debug!(code = error.code.as_str(), "socket.io handshake refused");
                let refused = wire::connect_error("/", &refusal_text(&error));
                send_or_drop(socket, refused).await?;
            }
        }
    }
}

/// Socket.IO packets on the `/ws` loop.
pub(super) struct SocketIo;

/// A Socket.IO request's answer needs its acknowledgement id and its event's name.
pub(super) struct SioRef {
    ack: Option<u64>,
    name: String,
}

impl Dialect for SocketIo {
    type Ref = SioRef;

    fn read(text: &str) -> Read<SioRef> {
        match wire::read(text) {
            wire::Packet::Event { ack, args } => {
                let (name, request) = wire::request(args);
                match request {
                    Ok(request) => Read::Request(SioRef { ack, name }, request),
                    Err(e) => Read::Answer(wire::answer(ack, &name, Err(e))),
                }
            }
            wire::Packet::BinaryEvent { ack } => {
                Read::Answer(wire::answer(ack, "", Err(wire::binary_refusal())))
            }
            wire::Packet::Disconnect => Read::End,
            // A second `CONNECT` of a connected socket is ignored, as by socketioxide.
            wire::Packet::Connect { .. } | wire::Packet::Other => Read::Nothing,
        }
    }

    fn answer(reference: &SioRef, result: Result<Reply, ChatError>) -> Bytes {
        wire::answer(reference.ack, &reference.name, result)
    }

    /// Binary frames are attachments of a binary event, refused when it was read.
    fn binary() -> Option<Bytes> {
        None
    }

    fn event(event: &EncodedEvent) -> Bytes {
        event
            .alt_frame
            .get_or_init(|| wire::event_raw(event.name, &event.data))
            .clone()
    }

    fn ping() -> Out {
        Out::text(wire::ping())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    /// Every idle Socket.IO socket on WebSocket is one task holding this future (as `/ws`'s
    /// `a_connection_task_is_small`): keep it in tokio's 1 KiB cell class.
    #[test]
    fn a_socket_task_is_small() {
        fn size<A, B, C, D, F: Future>(_: impl Fn(A, B, C, D) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        fn pump_s(l: &'static mut Live<TcpStream>, o: &'static mut Outbox) -> impl Future {
            pump::<TcpStream, SocketIo>(l, o)
        }
        fn pump_size<F: Future>(
            _: impl Fn(&'static mut Live<TcpStream>, &'static mut Outbox) -> F,
        ) -> usize {
            std::mem::size_of::<F>()
        }
        let task = size(connection);
        fn serve_s(l: &'static mut Live<TcpStream>, c: &'static Config) -> impl Future {
            serve(l, c)
        }
        fn session_s(l: &'static mut Live<TcpStream>, c: &'static Config) -> impl Future {
            session(l, c)
        }
        fn size2<F: Future>(
            _: impl Fn(&'static mut Live<TcpStream>, &'static Config) -> F,
        ) -> usize {
            std::mem::size_of::<F>()
        }
        println!(
            "socket.io task {task} bytes: serve {}, session {}, pump {}",
            size2(serve_s),
            size2(session_s),
            pump_size(pump_s)
        );
        // As `/ws`'s: debug builds lay out tokio's `TcpStream` 8 bytes larger.
        let bound = if cfg!(debug_assertions) { 536 } else { 528 };
        assert!(task <= bound, "the socket.io task's future is {task} bytes");
    }

    /// Every recipient of a broadcast gets the same bytes: the first encodes, the rest share.
    #[test]
    fn a_broadcast_is_encoded_once() {
        let event = EncodedEvent::new("message", &serde_json::json!({"a": 1}));
        let first = SocketIo::event(&event);
        let second = SocketIo::event(&event);
        assert_eq!(&first[..], br#"42["message",{"a":1}]"#);
        assert_eq!(first.as_ptr(), second.as_ptr(), "shared, not encoded again");
    }
}
