//! The native WebSocket transport at `/ws`: JSON text frames as in docs/protocol.md.
//!
//! It owns the HTTP upgrade (RFC 6455 handshake) and the session loop; the frame codec is
//! [`super::wsframe`]. One task per connection on one unsplit socket: it reads frames and
//! answers them through the core's `Connection`, and writes what the session's `Outbox`
//! yields, every ready frame in one vectored write. A write that stalls longer than
//! `write_timeout` drops the connection. Pipelined `message.send`s run concurrently (up to
//! `MAX_IN_FLIGHT`, so they share group commits); any other request waits for those before
//! it. Replies leave in request order. There is no timer per connection: the node's
//! keepalive sweep makes the outbox yield `Keepalive`, and the loop pings or, if the client
//! has been silent for 2.5 keepalive periods, closes with 1001.
//!
//! Memory: an idle connection holds no read or write buffer. Reads go into a per-thread
//! scratch buffer and are decoded at once; only an incomplete frame is kept. Writes send
//! each frame's 2-10 byte header and its payload `Bytes` (for an event, the same bytes
//! every recipient gets) straight to `writev`, and keep nothing once written.//!
//! Files: [`handshake`] (the upgrade), [`socket`] (reads, writes, close), [`pump`] (the auth
//! phase and the session loop), [`relay`] (relay mode's plain WebSocket at `/`, on the same
//! socket).

mod handshake;
mod pump;
mod relay;
mod sio;
mod socket;

use crate::config::Config;
pub use handshake::upgrade;
use hyper::upgrade::OnUpgrade;
use natter_core::{Connection, Node};
use pump::{authenticate, pump, Native};
pub use relay::root;
pub use sio::upgrade as socketio_upgrade;
pub use socket::Io;
use socket::MAX_BATCH;
use socket::{Out, Socket};
use std::future::Future;
use std::sync::Arc;
use tokio_util::task::TaskTracker;

/// One connection's task: waits for hyper to hand the connection over, then serves it on the
/// raw `TcpStream` (with any bytes hyper read past the request); another I/O type is served
/// through hyper's upgraded stream instead.
///
/// Memory: this future is what an idle connection costs. An async fn keeps its arguments for
/// its whole life next to the locals they are moved into, so this is a plain fn returning an
/// `async move` block (which uses what it captured in place), the connection's state is built
/// once in it (`Live`), and everything below borrows that with one pointer.
#[allow(clippy::manual_async_fn)] // on purpose: see above (an async fn is 32 bytes larger)
fn connection(
    on_upgrade: OnUpgrade,
    node: Arc<Node>,
    config: Arc<Config>,
    tasks: TaskTracker,
) -> impl Future<Output = ()> + Send {
    async move {
        let Some(upgraded) = upgraded(on_upgrade).await else {
            return;
        };
        let socket = match Socket::from_upgraded(upgraded, &config) {
            Ok(socket) => socket,
            Err(other) => {
                // Its own task: awaiting it in this match would keep the match's value (as
                // big as a socket) in this future for every connection.
                tracing::debug!("upgraded I/O is not a TcpStream; serving through hyper");
                tasks.spawn(serve_owned(Connection::new(node), *other));
                return;
            }
        };
        let mut live = Live {
            conn: Connection::new(node),
            socket,
        };
        serve(&mut live).await;
    }
}

/// The connection hyper hands over once the `101` is sent (None, logged, if it fails).
async fn upgraded(on_upgrade: OnUpgrade) -> Option<hyper::upgrade::Upgraded> {
    match on_upgrade.await {
        Ok(upgraded) => Some(upgraded),
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            None
        }
    }
}

/// One connection's state, from the upgrade on.
struct Live<S> {
    conn: Connection,
    socket: Socket<S>,
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Send a close frame with this code, then close.
    Close(u16),
    /// The client sent a close frame (with this code, if any): echo it, then close.
    Echo(Option<u16>),
    /// The socket failed, ended or stalled: just drop it.
    Drop,
}

/// `serve` for what it owns (the rare case of I/O that is not a `TcpStream`).
async fn serve_owned<S: Io>(conn: Connection, socket: Socket<S>) {
    let mut live = Live { conn, socket };
    serve(&mut live).await
}

async fn serve<S: Io>(live: &mut Live<S>) {
    let end = session(live).await;
    // The session is over for the core (presence, rooms) before the close handshake.
    live.conn.end();
    Box::pin(live.socket.finish(end)).await;
}

/// Authentication, then the loop. Authentication is boxed, as are the other rare and large
/// steps (a barrier request, the close): the task of an idle connection holds only the
/// loop's waiting state.
async fn session<S: Io>(live: &mut Live<S>) -> End {
    let authenticating = authenticate(&mut live.conn, &mut live.socket);
    let mut outbox = match Box::pin(authenticating).await {
        Ok(outbox) => outbox,
        Err(end) => return end,
    };
    tracing::debug!(
        user = live.conn.user().map(|u| u.name.as_str()),
        "session started"
    );
    let end = pump::<S, Native>(live, &mut outbox).await;
    tracing::debug!(
        user = live.conn.user().map(|u| u.name.as_str()),
        ?end,
        "session ended"
    );
    end
}

#[cfg(test)]
mod tests {
    use super::socket::{gather_slices, FEW_IO_SLICES};
    use super::*;
    use bytes::Bytes;
    use natter_core::Outbox;
    use std::io::IoSlice;
    use tokio::net::TcpStream;

    /// The size of the future a function returns, without calling it.
    fn future_size<A, B, C, F: Future>(_: impl Fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    fn future_size4<A, B, C, D, F: Future>(_: impl Fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn gathered_slices_are_the_unwritten_bytes_in_order() {
        let frames: Vec<Out> = (0..20)
            .map(|n| Out::text(Bytes::from(format!("frame {n}"))))
            .collect();
        let all: Vec<u8> = frames
            .iter()
            .flat_map(|f| [f.header.as_slice(), &f.payload[..]].concat())
            .collect();
        for offset in [0, 1, 2, 5, 8] {
            let mut slices = vec![IoSlice::new(&[]); 2 * frames.len()];
            let count = gather_slices(&frames, offset, &mut slices);
            let got: Vec<u8> = slices[..count].iter().flat_map(|s| s.to_vec()).collect();
            assert_eq!(got, all[offset..], "offset {offset}");
        }
        // A short array takes what fits, from the start.
        let mut few = [IoSlice::new(&[]); FEW_IO_SLICES];
        assert_eq!(gather_slices(&frames, 0, &mut few), FEW_IO_SLICES);
        let got: Vec<u8> = few.iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(got, all[..got.len()]);
        let whole: usize = frames[..FEW_IO_SLICES / 2].iter().map(Out::len).sum();
        assert_eq!(got.len(), whole);
    }

    /// Every idle connection is one task holding this future: keep it small. (Tokio puts
    /// it in a cell aligned to 128 bytes, with ~120 bytes of its own: up to 528 keeps the
    /// cell at 640 bytes; it was 1.5 KiB before the state was built once and lent.)
    #[test]
    fn a_connection_task_is_small() {
        let task = future_size4(connection);
        fn pump_s(l: &'static mut Live<TcpStream>, o: &'static mut Outbox, _: ()) -> impl Future {
            pump::<TcpStream, Native>(l, o)
        }
        fn outbox_s(o: &'static mut Outbox, _: (), _: ()) -> impl Future {
            o.next()
        }
        println!(
            "connection task {task} bytes: pump {}, socket {}, connection {}, outbox {} (waiting {})",
            future_size(pump_s),
            std::mem::size_of::<Socket<TcpStream>>(),
            std::mem::size_of::<Connection>(),
            std::mem::size_of::<Outbox>(),
            future_size(outbox_s),
        );
        // Debug builds lay out tokio's `TcpStream` 8 bytes larger; the bound is for release.
        let bound = if cfg!(debug_assertions) { 536 } else { 528 };
        assert!(
            task <= bound,
            "the connection task's future is {task} bytes"
        );
    }
}
