//! The `/ws` session on I/O that is not a `TcpStream`: served over a Unix socket, hyper's
//! upgraded stream cannot be taken apart into a `TcpStream`, and the session must run on the
//! upgraded stream itself with the same behaviour.

use futures_util::{SinkExt, StreamExt};
use natter_core::{LocalBroker, MemoryStore, Node};
use natter_server::{http, AppState, Settings};
use natter_testkit::WAIT;
use serde_json::{json, Value};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::net::{UnixListener, UnixStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::task::TaskTracker;

async fn next_json(ws: &mut tokio_tungstenite::WebSocketStream<UnixStream>) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = frame {
            return serde_json::from_str(t.as_str()).expect("json");
        }
    }
}

#[tokio::test]
async fn a_session_runs_on_a_unix_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Settings {
        data_dir: Some(dir.path().to_path_buf()),
        log: Some("warn".into()),
        ..Settings::default()
    }
    .resolve()
    .expect("config");
    let node = Node::start(
        Arc::new(MemoryStore::default()),
        Arc::new(LocalBroker::new()),
        config.core(),
    )
    .await
    .expect("node");
    let signed_in = node
        .register(
            std::net::Ipv4Addr::LOCALHOST.into(),
            "unix",
            "correct horse",
            "test",
        )
        .await
        .expect("register");
    let store: Arc<dyn natter_core::Store> = node.store().clone();
    let blobs = Arc::new(natter_store_sql::DirFileStore::new(
        dir.path().join("files"),
    ));
    let files = http::files::Files::open(&store, blobs, dir.path())
        .await
        .expect("files");
    let state = AppState {
        files: Arc::new(files),
        node,
        limits: Arc::new(http::limits::AccountLimits::new(&config)),
        config: Arc::new(config),
        tasks: TaskTracker::new(),
        shutting_down: Arc::new(AtomicBool::new(false)),
        metrics: Arc::default(),
        poll_flushes: Arc::default(),
    };
    let path = dir.path().join("natter.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    tokio::spawn(async move {
        let _ = axum::serve(listener, http::router(state)).await;
    });

    let stream = UnixStream::connect(&path).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async("ws://localhost/ws", stream)
        .await
        .expect("handshake");
    let auth = json!({"type": "auth", "ref": "1", "data": {"token": signed_in.token}});
    ws.send(Message::Text(auth.to_string().into()))
        .await
        .expect("send");
    let ok = next_json(&mut ws).await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let room = ok["data"]["rooms"][0]["id"].as_i64().expect("general");
    let send = json!({"type": "message.send", "ref": "2", "data": {"room": room, "body": "over unix", "client_id": "u1"}});
    ws.send(Message::Text(send.to_string().into()))
        .await
        .expect("send");
    let mut saw_event = false;
    let mut saw_reply = false;
    while !(saw_event && saw_reply) {
        let frame = next_json(&mut ws).await;
        saw_event |= frame["type"] == "message" && frame["data"]["body"] == "over unix";
        saw_reply |= frame["ref"] == "2" && frame["type"] == "ok";
    }
    ws.send(Message::Ping(b"p".to_vec().into()))
        .await
        .expect("ping");
    // tungstenite answers our frames' pongs itself; the server's pong arrives as a frame.
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("frame");
        if let Message::Pong(p) = frame {
            assert_eq!(&p[..], b"p");
            break;
        }
    }
    ws.close(None).await.expect("close");
}
