//! RFC 6455 as the server speaks it on `/ws`, tested byte by byte over raw TCP sockets: the
//! handshake and its refusals, fragmented messages, control frames, the close handshake,
//! and every protocol violation closing with its documented code.

use natter_testkit::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

fn handshake_request(addr: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

fn text(value: &Value) -> Vec<u8> {
    frame(true, TEXT, value.to_string().as_bytes())
}

/// Reads the HTTP response head (up to the blank line).
async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut byte))
            .await
            .expect("response in time")
            .expect("read");
        assert_eq!(n, 1, "connection closed during the response: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("ascii head")
}

/// Opens `/ws` by hand, checking the 101 answer.
async fn open(server: &TestServer) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    tcp.write_all(handshake_request(server.addr, "").as_bytes())
        .await
        .expect("write");
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains(&format!(
            "sec-websocket-accept: {}",
            ACCEPT.to_ascii_lowercase()
        )),
        "{head}"
    );
    tcp
}

/// Reads one server frame: (fin, opcode, payload). Server frames must be unmasked.
async fn read_frame(tcp: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    tokio::time::timeout(WAIT, async {
        let mut head = [0u8; 2];
        tcp.read_exact(&mut head).await.expect("frame header");
        assert_eq!(head[1] & 0x80, 0, "server frames are unmasked");
        let len = match head[1] & 0x7F {
            126 => {
                let mut l = [0u8; 2];
                tcp.read_exact(&mut l).await.expect("len");
                u16::from_be_bytes(l) as usize
            }
            127 => {
                let mut l = [0u8; 8];
                tcp.read_exact(&mut l).await.expect("len");
                u64::from_be_bytes(l) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        tcp.read_exact(&mut payload).await.expect("payload");
        (head[0] & 0x80 != 0, head[0] & 0x0F, payload)
    })
    .await
    .expect("a frame in time")
}

/// Reads frames until a close; returns its code.
async fn read_close(tcp: &mut TcpStream) -> Option<u16> {
    loop {
        let (_, op, payload) = read_frame(tcp).await;
        if op == CLOSE {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

/// Reads frames until one of opcode `op` (events may come first); returns its payload.
async fn read_op(tcp: &mut TcpStream, op: u8) -> Vec<u8> {
    loop {
        let (fin, got, payload) = read_frame(tcp).await;
        assert!(fin);
        if got == op {
            return payload;
        }
    }
}

/// Reads text frames until one matches.
async fn read_json_where(tcp: &mut TcpStream, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let (fin, op, payload) = read_frame(tcp).await;
        assert!(fin);
        if op != TEXT {
            continue;
        }
        let value: Value = serde_json::from_slice(&payload).expect("json");
        if pred(&value) {
            return value;
        }
    }
}

/// Opens and authenticates by hand.
async fn signed_in(server: &TestServer) -> (TcpStream, i64) {
    let (token, _) = server.register("raw").await;
    let mut tcp = open(server).await;
    tcp.write_all(&text(
        &json!({"type": "auth", "ref": "a", "data": {"token": token}}),
    ))
    .await
    .expect("write");
    let ok = read_json_where(&mut tcp, |v| v["ref"] == "a").await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let room = ok["data"]["rooms"][0]["id"].as_i64().expect("general");
    (tcp, room)
}

/// The connection is over: EOF (or a reset) once the close has been read.
async fn ends(tcp: &mut TcpStream) {
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest))
        .await
        .expect("server closes the socket");
}

#[tokio::test]
async fn a_fragmented_message_is_reassembled_around_a_ping() {
    let server = TestServer::start().await;
    let (mut tcp, room) = signed_in(&server).await;
    let send = json!({"type": "message.send", "ref": "s", "data": {"room": room, "body": "in pieces", "client_id": "f1"}});
    let bytes = send.to_string().into_bytes();
    let (a, rest) = bytes.split_at(10);
    let (b, c) = rest.split_at(20);
    let mut wire = frame(false, TEXT, a);
    wire.extend(frame(true, PING, b"hey"));
    wire.extend(frame(false, 0x0, b));
    wire.extend(frame(true, 0x0, c));
    tcp.write_all(&wire).await.expect("write");
    assert_eq!(read_op(&mut tcp, PONG).await, b"hey");
    let reply = read_json_where(&mut tcp, |v| v["ref"] == "s").await;
    assert_eq!(reply["data"]["message"]["body"], "in pieces", "{reply}");
}

#[tokio::test]
async fn ping_gets_a_pong_with_its_payload_before_and_after_auth() {
    let server = TestServer::start().await;
    let mut tcp = open(&server).await;
    tcp.write_all(&frame(true, PING, b"early"))
        .await
        .expect("write");
    assert_eq!(read_frame(&mut tcp).await, (true, PONG, b"early".to_vec()));
    let (mut tcp, _) = signed_in(&server).await;
    tcp.write_all(&frame(true, PING, b"")).await.expect("write");
    assert_eq!(read_op(&mut tcp, PONG).await, Vec::<u8>::new());
    // A pong from the client is accepted silently.
    tcp.write_all(&frame(true, PONG, b"x"))
        .await
        .expect("write");
    tcp.write_all(&text(&json!({"type": "ping", "ref": "p"})))
        .await
        .expect("write");
    let reply = read_json_where(&mut tcp, |v| v["ref"] == "p").await;
    assert_eq!(reply["type"], "ok");
}

#[tokio::test]
async fn the_server_pings_and_closes_a_silent_connection_with_1001() {
    let server = TestServer::start_with(|s| s.keepalive_ms = Some(100)).await;
    let (mut tcp, _) = signed_in(&server).await;
    // A client that answers its pings stays, well past the silence limit (250 ms).
    let answering = std::time::Instant::now();
    let mut pings = 0;
    while answering.elapsed() < Duration::from_millis(900) {
        let (fin, op, payload) = read_frame(&mut tcp).await;
        assert!(fin);
        assert_ne!(op, CLOSE, "closed while answering pings");
        if op == PING {
            pings += 1;
            tcp.write_all(&frame(true, PONG, &payload))
                .await
                .expect("write");
        }
    }
    assert!(pings >= 4, "{pings} pings in 900 ms at a 100 ms keepalive");
    // Silent from now on: closed with 1001 at the first sweep after 250 ms.
    let silent = std::time::Instant::now();
    assert_eq!(read_close(&mut tcp).await, Some(1001));
    let after = silent.elapsed();
    assert!(
        after >= Duration::from_millis(150) && after < Duration::from_secs(3),
        "closed {after:?} after going silent"
    );
    ends(&mut tcp).await;
}

#[tokio::test]
async fn the_close_handshake_is_echoed() {
    let server = TestServer::start().await;
    let (mut tcp, _) = signed_in(&server).await;
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    tcp.write_all(&frame(true, CLOSE, &payload))
        .await
        .expect("write");
    assert_eq!(read_close(&mut tcp).await, Some(1000));
    ends(&mut tcp).await;
}

#[tokio::test]
async fn protocol_violations_close_with_their_codes() {
    let server = TestServer::start().await;
    let mut unmasked = vec![0x81, 2];
    unmasked.extend_from_slice(b"{}");
    let mut reserved_bits = frame(true, TEXT, b"{}");
    reserved_bits[0] |= 0x40;
    let long_ping = frame(true, PING, &[0u8; 126]);
    let stray_continuation = frame(true, 0x0, b"x");
    let bad_utf8 = frame(true, TEXT, &[b'"', 0xC3, 0x28, b'"']);
    for (name, wire, code) in [
        ("unmasked", unmasked, 1002),
        ("reserved bits", reserved_bits, 1002),
        ("reserved opcode", frame(true, 0x3, b"x"), 1002),
        ("control frame over 125 bytes", long_ping, 1002),
        ("continuation without a start", stray_continuation, 1002),
        ("invalid UTF-8", bad_utf8, 1007),
    ] {
        // Before and after auth alike.
        let mut fresh = open(&server).await;
        fresh.write_all(&wire).await.expect("write");
        assert_eq!(
            read_close(&mut fresh).await,
            Some(code),
            "{name} before auth"
        );
        let (mut tcp, _) = signed_in(&server).await;
        tcp.write_all(&wire).await.expect("write");
        assert_eq!(read_close(&mut tcp).await, Some(code), "{name}");
        ends(&mut tcp).await;
    }
}

#[tokio::test]
async fn a_fragmented_message_over_the_limit_closes_with_1009() {
    let server = TestServer::start_with(|s| s.max_frame_bytes = Some(4096)).await;
    let (mut tcp, _) = signed_in(&server).await;
    // Each fragment is small; together they are over the limit.
    let mut wire = frame(false, TEXT, &[b' '; 3000]);
    wire.extend(frame(true, 0x0, &[b' '; 3000]));
    tcp.write_all(&wire).await.expect("write");
    assert_eq!(read_close(&mut tcp).await, Some(1009));
    ends(&mut tcp).await;
}

/// Before `auth`, a frame's declared length over the pre-auth limit (4096 bytes by default)
/// closes the connection with 1009 from the header alone: the payload is never sent, so
/// the server cannot have waited for it or kept it. An `auth` of exactly 4096 bytes passes.
#[tokio::test]
async fn a_preauth_frame_over_4_kib_closes_with_1009_from_its_header() {
    let server = TestServer::start().await;
    let mut tcp = open(&server).await;
    let mut header = vec![0x80 | TEXT, 0x80 | 126];
    header.extend_from_slice(&4097u16.to_be_bytes());
    header.extend_from_slice(&MASK);
    tcp.write_all(&header).await.expect("write");
    assert_eq!(read_close(&mut tcp).await, Some(1009));
    ends(&mut tcp).await;

    let (token, _) = server.register("edge").await;
    let mut auth = json!({"type": "auth", "ref": "a", "data": {"token": token, "pad": ""}});
    let pad = 4096 - auth.to_string().len();
    auth["data"]["pad"] = json!("p".repeat(pad));
    assert_eq!(auth.to_string().len(), 4096);
    let mut tcp = open(&server).await;
    tcp.write_all(&text(&auth)).await.expect("write");
    let ok = read_json_where(&mut tcp, |v| v["ref"] == "a").await;
    assert_eq!(ok["type"], "ok", "{ok}");
    // Authenticated, the limit is `max_frame_bytes` (64 KiB).
    let big = json!({"type": "ping", "ref": "b", "data": {"pad": "q".repeat(30_000)}});
    tcp.write_all(&text(&big)).await.expect("write");
    let pong = read_json_where(&mut tcp, |v| v["ref"] == "b").await;
    assert_eq!(pong["type"], "ok", "{pong}");
}

/// Before `auth` a binary frame is refused like any frame that is no request: the error,
/// then close 4001.
#[tokio::test]
async fn a_binary_frame_before_auth_closes_with_4001() {
    let server = TestServer::start().await;
    let mut tcp = open(&server).await;
    tcp.write_all(&frame(true, BINARY, &[1, 2, 3]))
        .await
        .expect("write");
    let reply = read_json_where(&mut tcp, |v| v["type"] == "error").await;
    assert_eq!(reply["error"]["code"], "binary_unsupported");
    assert!(reply["ref"].is_null());
    assert_eq!(read_close(&mut tcp).await, Some(4001));
    ends(&mut tcp).await;
}

#[tokio::test]
async fn binary_frames_get_the_documented_error_and_the_connection_stays() {
    let server = TestServer::start().await;
    let (mut tcp, _) = signed_in(&server).await;
    tcp.write_all(&frame(true, BINARY, &[1, 2, 3]))
        .await
        .expect("write");
    let reply = read_json_where(&mut tcp, |v| v["type"] == "error").await;
    assert_eq!(reply["error"]["code"], "binary_unsupported");
    tcp.write_all(&text(&json!({"type": "ping", "ref": "p"})))
        .await
        .expect("write");
    read_json_where(&mut tcp, |v| v["ref"] == "p").await;
}

#[tokio::test]
async fn bytes_written_one_at_a_time_still_parse() {
    let server = TestServer::start().await;
    let (token, _) = server.register("slow").await;
    let mut tcp = open(&server).await;
    // A frame of about 200 bytes (16-bit length form), byte by byte.
    let wire = frame(
        true,
        TEXT,
        json!({"type": "ping", "ref": "pad", "data": {"x": "y".repeat(150)}})
            .to_string()
            .as_bytes(),
    );
    for byte in wire {
        tcp.write_all(&[byte]).await.expect("write");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    // The ping before auth is refused (4001) only after being parsed whole.
    let reply = read_json_where(&mut tcp, |v| v["ref"] == "pad").await;
    assert_eq!(reply["error"]["code"], "unauthenticated", "{reply}");
    assert_eq!(read_close(&mut tcp).await, Some(4001));

    // Now a good session, its frames trickled in byte by byte.
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut wire = handshake_request(server.addr, "").into_bytes();
    wire.extend(text(
        &json!({"type": "auth", "ref": "a", "data": {"token": token}}),
    ));
    wire.extend(text(&json!({"type": "ping", "ref": "b"})));
    for byte in wire {
        tcp.write_all(&[byte]).await.expect("write");
    }
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let ok = read_json_where(&mut tcp, |v| v["ref"] == "a").await;
    assert_eq!(ok["type"], "ok", "{ok}");
    read_json_where(&mut tcp, |v| v["ref"] == "b").await;
}

#[tokio::test]
async fn frames_sent_with_the_handshake_are_not_lost() {
    let server = TestServer::start().await;
    let (token, _) = server.register("eager").await;
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut wire = handshake_request(server.addr, "").into_bytes();
    wire.extend(text(
        &json!({"type": "auth", "ref": "a", "data": {"token": token}}),
    ));
    wire.extend(frame(false, TEXT, br#"{"type":"ping","#));
    // One write: hyper reads the frames along with the request.
    tcp.write_all(&wire).await.expect("write");
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let ok = read_json_where(&mut tcp, |v| v["ref"] == "a").await;
    assert_eq!(ok["type"], "ok", "{ok}");
    tcp.write_all(&frame(true, 0x0, br#""ref":"b"}"#))
        .await
        .expect("write");
    read_json_where(&mut tcp, |v| v["ref"] == "b").await;
}

#[tokio::test]
async fn bad_handshakes_get_clear_http_errors() {
    let server = TestServer::start().await;
    let cases = [
        ("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n".to_string(), 426),
        (
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .to_string(),
            400,
        ),
        (
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
                .to_string(),
            400,
        ),
        (
            format!(
                "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 8\r\n\r\n"
            ),
            426,
        ),
        (
            format!(
                "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\
                 Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ),
            400,
        ),
    ];
    for (request, status) in cases {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let head = read_head(&mut tcp).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:?} -> {head}"
        );
        if status == 426 {
            assert!(
                head.to_ascii_lowercase()
                    .contains("sec-websocket-version: 13"),
                "{head}"
            );
        }
    }
    // The same refusal over a normal HTTP client, with a JSON body.
    let response = reqwest::get(server.http("/ws")).await.expect("get");
    assert_eq!(response.status().as_u16(), 426);
    let body: Value = response.json().await.expect("json body");
    assert_eq!(body["error"]["code"], "invalid_request");
}
