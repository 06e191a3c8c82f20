//! Tiny chat servers for testing the load generator's checks: the plain-ws peer protocol or a
//! small subset of Natter's native protocol, with a fault switched in (loss, duplication,
//! reordering, seq gaps) that the checks must catch.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Which protocol the test server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    PlainWs,
    Native,
    /// Engine.IO v4 / Socket.IO v4 with the Socket.IO peer's `join`/`chat` events.
    SocketIo,
}

/// The fault the test server commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Drop every n-th delivery (counted over the whole server).
    DropEvery(u64),
    /// Send every n-th delivery twice.
    DuplicateEvery(u64),
    /// Each connection holds back every n-th frame and sends it five frames later.
    ReorderEvery(u64),
    /// Skip a seq number every n messages of a room (native only).
    SeqGapEvery(u64),
    /// Store edits and reactions (their entries take a seq) but deliver none of them: a
    /// server that loses change events (native only).
    DropChanges,
    /// Drop whole messages beyond this many per second (a token bucket holding a
    /// twentieth of a second's worth): a server with a known capacity, for the ramp.
    DropAboveRate(u32),
}

#[derive(Default)]
struct State {
    /// room -> outbound queues of its members.
    rooms: HashMap<String, Vec<mpsc::UnboundedSender<String>>>,
    /// room -> last seq (native).
    seqs: HashMap<String, u64>,
    next_room_id: i64,
    deliveries: u64,
    /// `DropAboveRate`'s bucket: tokens and when it was last refilled.
    bucket: Option<(f64, std::time::Instant)>,
}

/// Starts a server on a free loopback port; returns its address.
pub async fn start(dialect: Dialect, fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = Arc::new(Mutex::new(State::default()));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = Arc::clone(&state);
            tokio::spawn(serve(stream, dialect, fault, state));
        }
    });
    addr
}

async fn serve(mut stream: TcpStream, dialect: Dialect, fault: Fault, state: Arc<Mutex<State>>) {
    let mut first = [0u8; 4];
    if stream.peek(&mut first).await.is_err() {
        return;
    }
    if &first == b"POST" {
        // The accounts API: any register/login succeeds with a fresh token.
        let mut buf = vec![0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let body = r#"{"token":"test-token","user":{"id":1,"name":"u","guest":false}}"#;
        let response = format!(
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        return;
    }
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    if dialect == Dialect::SocketIo {
        let open = r#"0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let _ = tx.send(open.to_string());
        // A ping straight away: the client must answer it (checked below).
        let _ = tx.send("2".to_string());
    }
    tokio::spawn(async move {
        // Reordering: a held-back frame and how many later frames go out before it. Five is
        // enough that one of them comes from the held frame's own sender.
        let mut held: Option<(String, u32)> = None;
        let mut n = 0u64;
        while let Some(frame) = rx.recv().await {
            n += 1;
            if let Fault::ReorderEvery(every) = fault {
                if n.is_multiple_of(every) && held.is_none() {
                    held = Some((frame, 5));
                    continue;
                }
            }
            if sink.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
            if let Some((late, left)) = held.take() {
                if left > 1 {
                    held = Some((late, left - 1));
                } else if sink.send(Message::Text(late.into())).await.is_err() {
                    return;
                }
            }
        }
    });
    while let Some(Ok(msg)) = source.next().await {
        let Message::Text(text) = msg else { continue };
        if dialect == Dialect::SocketIo {
            socket_io(text.as_str(), &tx, fault, &state);
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let reply = match dialect {
            Dialect::PlainWs => plain(&v, &tx, fault, &state),
            Dialect::Native => native(&v, &tx, fault, &state),
            Dialect::SocketIo => None,
        };
        if let Some(reply) = reply {
            let _ = tx.send(reply.to_string());
        }
    }
}

fn broadcast(state: &Mutex<State>, room: &str, frame: &str, fault: Fault) {
    let mut st = state.lock().expect("state");
    broadcast_locked(&mut st, room, frame, fault);
}

/// Queues `frame` to every member of `room` (with the fault applied).
fn broadcast_locked(st: &mut State, room: &str, frame: &str, fault: Fault) {
    if let Fault::DropAboveRate(limit) = fault {
        let limit = f64::from(limit);
        let now = std::time::Instant::now();
        let burst = (limit / 20.0).max(4.0);
        let (tokens, last) = st.bucket.get_or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * limit).min(burst);
        *last = now;
        if *tokens < 1.0 {
            return;
        }
        *tokens -= 1.0;
    }
    let members = st.rooms.get(room).cloned().unwrap_or_default();
    for member in members {
        st.deliveries += 1;
        let k = st.deliveries;
        match fault {
            Fault::DropEvery(n) if k.is_multiple_of(n) => continue,
            Fault::DuplicateEvery(n) if k.is_multiple_of(n) => {
                let _ = member.send(frame.to_string());
            }
            _ => {}
        }
        let _ = member.send(frame.to_string());
    }
}

fn join(state: &Mutex<State>, room: &str, tx: &mpsc::UnboundedSender<String>) {
    let mut st = state.lock().expect("state");
    st.rooms
        .entry(room.to_string())
        .or_default()
        .push(tx.clone());
}

fn plain(
    v: &Value,
    tx: &mpsc::UnboundedSender<String>,
    fault: Fault,
    state: &Mutex<State>,
) -> Option<Value> {
    let room = v["room"].as_str()?.to_string();
    match v["type"].as_str()? {
        "join" => {
            join(state, &room, tx);
            Some(json!({"type": "joined", "room": room, "ref": v["ref"]}))
        }
        "chat" => {
            let frame = json!({"type": "chat", "room": room, "body": v["body"]}).to_string();
            broadcast(state, &room, &frame, fault);
            None
        }
        _ => None,
    }
}

fn native(
    v: &Value,
    tx: &mpsc::UnboundedSender<String>,
    fault: Fault,
    state: &Mutex<State>,
) -> Option<Value> {
    let reference = v["ref"].clone();
    let ok = |data: Value| Some(json!({"type": "ok", "ref": reference, "data": data}));
    match v["type"].as_str()? {
        "auth" => ok(json!({"user": {"id": 1, "name": "u", "guest": false}, "rooms": []})),
        "room.create" => {
            let mut st = state.lock().expect("state");
            st.next_room_id += 1;
            let id = st.next_room_id;
            ok(json!({"room": {"id": id, "name": v["data"]["name"], "last_seq": 0}}))
        }
        "room.join" => {
            let id = v["data"]["room"].as_i64()?;
            join(state, &id.to_string(), tx);
            ok(json!({"room": {"id": id, "joined": true}}))
        }
        "message.send" => {
            let id = v["data"]["room"].as_i64()?;
            // Seq assignment and fan-out under one lock, so seq order is delivery order.
            let mut st = state.lock().expect("state");
            let seq = st.seqs.entry(id.to_string()).or_default();
            *seq += 1;
            if let Fault::SeqGapEvery(n) = fault {
                if (*seq).is_multiple_of(n) {
                    *seq += 1;
                }
            }
            let seq = *seq;
            let message = json!({"id": seq, "room": id, "seq": seq, "body": v["data"]["body"],
                "sender": {"id": 1, "name": "u", "guest": false}, "ts": 0,
                "client_id": v["data"]["client_id"]});
            let frame = json!({"type": "message", "data": message}).to_string();
            broadcast_locked(&mut st, &id.to_string(), &frame, fault);
            ok(json!({"message": message, "duplicate": false}))
        }
        kind @ ("message.edit" | "reaction.add" | "reaction.remove") => {
            // A change entry: the next seq of the room, delivered to every member.
            let id = v["data"]["room"].as_i64()?;
            let target = v["data"]["seq"].as_u64()?;
            let mut st = state.lock().expect("state");
            let seq = st.seqs.entry(id.to_string()).or_default();
            *seq += 1;
            let seq = *seq;
            let (event, change, body) = if kind == "message.edit" {
                let change = json!({"op": "edit", "target": target});
                ("message_edited", change, v["data"]["body"].clone())
            } else {
                let change = json!({"op": "react", "target": target,
                    "emoji": v["data"]["emoji"], "add": kind == "reaction.add"});
                ("reaction", change, json!(""))
            };
            let entry = json!({"id": 1_000_000 + seq, "room": id, "seq": seq, "body": body,
                "sender": {"id": 1, "name": "u", "guest": false}, "ts": 0,
                "client_id": v["data"]["client_id"], "change": change});
            if fault != Fault::DropChanges {
                let frame = json!({"type": event, "data": entry}).to_string();
                broadcast_locked(&mut st, &id.to_string(), &frame, fault);
            }
            ok(json!({"entry": entry, "duplicate": false}))
        }
        _ => ok(json!({})),
    }
}

/// Pongs answered by Socket.IO clients (a client that ignores pings would be dropped).
pub static PONGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn socket_io(frame: &str, tx: &mpsc::UnboundedSender<String>, fault: Fault, state: &Mutex<State>) {
    if frame == "3" {
        PONGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return;
    }
    if frame.starts_with("40") {
        let _ = tx.send(r#"40{"sid":"n"}"#.to_string());
        return;
    }
    let Some(rest) = frame.strip_prefix("42") else {
        return;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (ack, payload) = rest.split_at(digits);
    let Ok(Value::Array(args)) = serde_json::from_str::<Value>(payload) else {
        return;
    };
    match (args.first().and_then(Value::as_str), args.get(1)) {
        (Some("join"), Some(Value::String(room))) => {
            join(state, room, tx);
            if !ack.is_empty() {
                let _ = tx.send(format!(r#"43{ack}[{{"ok":true}}]"#));
            }
        }
        (Some("chat"), Some(msg)) => {
            let room = msg["room"].as_str().unwrap_or_default().to_string();
            let frame = format!(
                r#"42["chat",{}]"#,
                json!({"room": room, "body": msg["body"]})
            );
            broadcast(state, &room, &frame, fault);
        }
        _ => {}
    }
}
