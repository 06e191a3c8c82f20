//! Socket.IO on WebSocket from the start (`transports: ["websocket"]`), which Natter serves on
//! its own connection loop (ADR 0029), spoken packet by packet over a real socket: the
//! handshake and its refusals, requests with and without acknowledgements, binary and other
//! namespaces, heartbeats, the close of a revoked session, and the auth timeout. The official
//! clients run over the same path in tests/socketio (Node) and tests/socketio-py.

use futures_util::{SinkExt, StreamExt};
use natter_testkit::{general, TestServer, WAIT};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws = natter_testkit::RawWs;

/// Opens `/socket.io/?EIO=4&transport=websocket` and reads Engine.IO's `open` packet.
async fn open(server: &TestServer) -> (Ws, Value) {
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
    let first = next(&mut ws).await;
    let open = first.strip_prefix('0').expect("an open packet");
    (ws, serde_json::from_str(open).expect("open JSON"))
}

/// The next text frame.
async fn next(ws: &mut Ws) -> String {
    natter_testkit::next_text(ws).await
}

/// The next packet that is not Engine.IO's ping (answered).
async fn packet(ws: &mut Ws) -> String {
    loop {
        let text = next(ws).await;
        if text == "2" {
            send(ws, "3").await;
            continue;
        }
        return text;
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

/// The JSON after a packet's head (`42`, `435`...).
fn body(packet: &str, head: &str) -> Value {
    let rest = packet
        .strip_prefix(head)
        .unwrap_or_else(|| panic!("{packet} does not start with {head}"));
    serde_json::from_str(rest).expect("packet JSON")
}

/// Connects to `/` with `auth` and returns the `auth` event's data.
async fn connect(ws: &mut Ws, auth: Value) -> Value {
    send(ws, &format!("40{auth}")).await;
    let connected = packet(ws).await;
    assert!(body(&connected, "40")["sid"].is_string(), "{connected}");
    let welcome = body(&packet(ws).await, "42");
    assert_eq!(welcome[0], "auth");
    welcome[1].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_socket_speaks_the_whole_contract() {
    let server = TestServer::start_with(|s| s.keepalive_ms = Some(30_000)).await;
    let (token, _) = server.register("ana").await;
    let (mut ws, open) = open(&server).await;
    // The heartbeat is the node's keepalive: a ping each period, closed after 2.5 silent.
    assert_eq!(open["pingInterval"], 30_000, "{open}");
    assert_eq!(open["pingTimeout"], 45_000, "{open}");
    assert_eq!(open["upgrades"], json!([]));
    assert_eq!(open["maxPayload"], 65_536);

    // Refusals are `connect_error`s and the connection waits for another try.
    send(&mut ws, r#"40{"token":"nope"}"#).await;
    let refused = body(&packet(&mut ws).await, "44");
    let message = refused["message"].as_str().expect("message");
    assert!(message.starts_with("unauthenticated: "), "{message}");
    send(&mut ws, "40").await;
    let refused = body(&packet(&mut ws).await, "44");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("auth: {token}")),
        "{refused}"
    );
    send(&mut ws, r#"40/admin,{"token":"x"}"#).await;
    assert_eq!(
        packet(&mut ws).await,
        r#"44/admin,{"message":"Invalid namespace"}"#
    );
    let welcome = connect(&mut ws, json!({ "token": token, "presence": false })).await;
    assert_eq!(
        welcome["user"]["name"]
            .as_str()
            .map(|n| n.starts_with("ana")),
        Some(true)
    );
    let room = welcome["rooms"][0]["id"].as_i64().expect("general");

    // A request with an acknowledgement: `43<id>[{ok, data}]`.
    send(
        &mut ws,
        &format!(r#"427["message.send",{{"room":{room},"body":"hi","client_id":"w-1"}}]"#),
    )
    .await;
    let mut saw_event = false;
    let acked = loop {
        let p = packet(&mut ws).await;
        if p.starts_with("42[\"message\"") {
            saw_event = true;
            continue;
        }
        break p;
    };
    let ack = body(&acked, "437");
    assert_eq!(ack[0]["ok"], true, "{ack}");
    let seq = ack[0]["data"]["message"]["seq"].as_i64().expect("seq");
    if !saw_event {
        let event = body(&packet(&mut ws).await, "42");
        assert_eq!(event[0], "message");
        assert_eq!(event[1]["seq"], seq);
    }

    // Without an acknowledgement: a failure is an `error` event; a success sends nothing.
    send(&mut ws, r#"42["room.join",{"room":999999}]"#).await;
    let error = body(&packet(&mut ws).await, "42");
    assert_eq!(error[0], "error");
    assert_eq!(error[1]["event"], "room.join");
    assert_eq!(error[1]["error"]["code"], "unknown_room", "{error}");
    // Bad JSON, an unknown event, binary data: documented codes.
    send(&mut ws, r#"421[not json"#).await;
    assert_eq!(
        body(&packet(&mut ws).await, "431")[0]["error"]["code"],
        "bad_json"
    );
    send(&mut ws, r#"422["chat message","hi"]"#).await;
    assert_eq!(
        body(&packet(&mut ws).await, "432")[0]["error"]["code"],
        "unknown_type"
    );
    send(
        &mut ws,
        r#"451-3["message.send",{"_placeholder":true,"num":0}]"#,
    )
    .await;
    ws.send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("attachment");
    assert_eq!(
        body(&packet(&mut ws).await, "433")[0]["error"]["code"],
        "binary_unsupported"
    );
    // Still served after all that; events of another namespace are ignored.
    send(&mut ws, r#"42/admin,5["room.list"]"#).await;
    send(&mut ws, r#"424["room.list"]"#).await;
    let rooms = body(&packet(&mut ws).await, "434");
    assert_eq!(rooms[0]["ok"], true, "{rooms}");

    // A revoked session: the `close` event, then the namespace disconnect.
    let resp = reqwest::Client::new()
        .post(server.http("/api/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 204);
    let close = body(&packet(&mut ws).await, "42");
    assert_eq!(close[0], "close");
    assert_eq!(close[1]["code"], 4003, "{close}");
    assert_eq!(packet(&mut ws).await, "41");
}

/// Engine.IO's heartbeat on the node's keepalive sweep: pings come each period; a client
/// that stops answering is closed after 2.5 silent periods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_the_keepalive() {
    let server = TestServer::start_with(|s| s.keepalive_ms = Some(200)).await;
    let (token, _) = server.register("ana").await;
    let (mut ws, open) = open(&server).await;
    assert_eq!(open["pingInterval"], 200);
    connect(&mut ws, json!({ "token": token, "presence": false })).await;
    for _ in 0..3 {
        assert_eq!(next(&mut ws).await, "2", "a ping");
        send(&mut ws, "3").await;
    }
    // Silent from now on: pings, then the close.
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => continue,
                Some(Ok(Message::Text(text))) => return Some(text.to_string()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("closed in time");
    // The keepalive closes with 1001, told as the `close` event first.
    let close = body(&ended.expect("the close event"), "42");
    assert_eq!(close[1]["code"], 1001, "{close}");
}

/// A messages said by a native client reaches Socket.IO WebSocket sockets as one packet,
/// encoded once for all of them; the socket's own disconnect ends it quietly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_every_websocket_socket() {
    let server = TestServer::start().await;
    let mut native = server.user("nat").await;
    let room = general(&native);
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let (token, _) = server.register("sio").await;
        let (mut ws, _) = open(&server).await;
        connect(&mut ws, json!({ "token": token, "presence": false })).await;
        sockets.push(ws);
    }
    let said = native.say(room, "to all").await;
    let mut packets = Vec::new();
    for ws in &mut sockets {
        let p = loop {
            let p = packet(ws).await;
            if p.starts_with("42[\"message\"") {
                break p;
            }
        };
        assert_eq!(body(&p, "42")[1], said);
        packets.push(p);
    }
    assert!(packets.windows(2).all(|w| w[0] == w[1]));
    // `41` from the client: the server closes without a `close` event.
    let mut ws = sockets.pop().expect("a socket");
    send(&mut ws, "41").await;
    let rest = tokio::time::timeout(WAIT, async {
        let mut texts = Vec::new();
        while let Some(Ok(frame)) = ws.next().await {
            if let Message::Text(text) = frame {
                texts.push(text.to_string());
            }
        }
        texts
    })
    .await
    .expect("closed");
    assert!(rest.iter().all(|t| !t.contains("\"close\"")), "{rest:?}");
}

/// As over long-polling: no `CONNECT` within `auth_timeout_secs` closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconnected_websocket_is_closed_after_auth_timeout() {
    let server = TestServer::start_with(|s| s.auth_timeout_secs = Some(1)).await;
    let (mut ws, _) = open(&server).await;
    let started = std::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "closed");
    assert!(started.elapsed() >= Duration::from_millis(900));
}
