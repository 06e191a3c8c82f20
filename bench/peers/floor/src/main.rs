//! `natter-floor`: the physical floor for Natter's benchmarks (issue 22). A server that does
//! only the socket work Natter's native protocol needs per delivery, and nothing else: the
//! same frames on the wire (a `message` event and an `ok` ack per send, the same JSON shapes),
//! the same framing code (`natter_server::transport::wsframe`), the same write batching (one
//! `writev` for every frame ready, up to 256), the same runtime and allocator. No storage, no
//! accounts worth the name, no rate limits, no presence, no idempotency: what Natter costs
//! above this server is the price of its chat logic and durability.
//!
//! `natter-floor [PORT]` listens on 127.0.0.1 (port 0: any) and prints
//! `natter-floor listening on http://ADDR`, as bench/run expects. It answers
//! `POST /api/register`, `POST /api/login` (any name; the token names the user) and `GET /ws`;
//! on `/ws`: `auth`, `room.create`, `room.join`, `message.send`.
//!
//! Modules: [`http`] (the request head, the two account routes, the upgrade), [`ws`] (one
//! connection's loop: frames in, replies and events out in batches), [`rooms`] (rooms, seqs,
//! members; a send encodes its event once for every member).

mod http;
mod rooms;
mod ws;

use std::sync::Arc;
use tokio::net::TcpListener;

/// The same allocator as `natter` (see its main.rs), so memory and CPU compare like for like.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("usage: natter-floor [PORT]");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("natter-floor: cannot listen: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("natter-floor listening on http://{addr}"),
        Err(e) => eprintln!("natter-floor: {e}"),
    }
    let state = Arc::new(rooms::State::default());
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait for one to free up, as natter does.
                eprintln!("natter-floor: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(http::serve(tcp, state.clone()));
    }
}
