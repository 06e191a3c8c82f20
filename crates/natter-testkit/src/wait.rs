//! Waiting without sleeping blindly: how long a test waits for what it expects soon, polling
//! for a condition, and waiting for a child process to listen on its port.

use std::net::SocketAddr;
use std::process::Child;
use std::time::Duration;

/// How long a test waits for something it expects to happen soon.
pub const WAIT: Duration = Duration::from_secs(10);

/// Waits until `ready` holds, polling; panics with `what` after [`WAIT`].
pub async fn eventually(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ready().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A loopback port nobody listens on right now.
pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("spare port")
        .port()
}

/// Waits until something accepts TCP connections on `addr`; Err if `child` exits first or it
/// takes longer than [`WAIT`].
pub async fn wait_for_listener(
    addr: SocketAddr,
    what: &str,
    child: &mut Child,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited before listening: {status}"));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{what} did not listen on {addr}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw WebSocket client's stream (tests that speak a protocol frame by frame).
pub type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame of a raw WebSocket, within [`WAIT`] (pings and pongs are skipped:
/// tungstenite answers pings itself); panics on anything else.
pub async fn next_text(ws: &mut RawWs) -> String {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a text frame in time")
            .expect("open")
            .expect("frame");
        match frame {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("not a text frame: {other:?}"),
        }
    }
}
