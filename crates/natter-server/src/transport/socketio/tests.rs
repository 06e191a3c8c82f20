//! Unit tests of the Socket.IO adapter: the request head copy, reading requests, the handshake's
//! `auth`.

use super::*;
use axum::extract::OriginalUri;
use axum::http::{HeaderValue, Uri};
use natter_core::protocol::AuthArgs;
use serde_json::json;
use socketioxide::handler::Value as Payload;

/// Whether `bytes` lie inside `buffer` (share its allocation).
fn inside(buffer: &bytes::Bytes, bytes: &[u8]) -> bool {
    let range = buffer.as_ptr_range();
    range.contains(&bytes.as_ptr())
}

/// A request head as hyper makes it, every part a slice of one read buffer: the Socket.IO
/// adapter's copy holds nothing of that buffer; any other request is left as it is.
#[tokio::test]
async fn a_socket_io_request_keeps_nothing_of_the_read_buffer() {
    let text = "/socket.io/?EIO=4&transport=websocket dGhlIHNhbXBsZSBub25jZQ== websocket /api/me";
    let mut buffer = bytes::BytesMut::with_capacity(16 * 1024);
    buffer.extend_from_slice(text.as_bytes());
    let buffer = buffer.freeze();
    let slice = |word: &str| {
        let start = text.find(word).expect("word");
        buffer.slice(start..start + word.len())
    };
    let request = |path: &str| {
        let uri = Uri::from_maybe_shared(slice(path)).expect("uri");
        let mut request = axum::extract::Request::new(axum::body::Body::empty());
        *request.uri_mut() = uri.clone();
        request.extensions_mut().insert(OriginalUri(uri));
        for (name, word) in [
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("upgrade", "websocket"),
        ] {
            let value = HeaderValue::from_maybe_shared(slice(word)).expect("value");
            request.headers_mut().insert(name, value);
        }
        request
    };
    let sliced = |request: &axum::extract::Request| {
        let original = request.extensions().get::<OriginalUri>().expect("original");
        let mut parts = vec![
            inside(&buffer, request.uri().path().as_bytes()),
            inside(&buffer, original.0.path().as_bytes()),
        ];
        parts.extend(
            request
                .headers()
                .values()
                .map(|v| inside(&buffer, v.as_bytes())),
        );
        parts
    };

    let before = request("/socket.io/?EIO=4&transport=websocket");
    assert_eq!(
        sliced(&before),
        [true; 4],
        "the test's request is built of slices"
    );
    let after = own_request_head(before).await;
    assert_eq!(sliced(&after), [false; 4], "nothing of the buffer is kept");
    assert_eq!(after.uri(), "/socket.io/?EIO=4&transport=websocket");
    assert_eq!(
        after.headers()["sec-websocket-key"],
        "dGhlIHNhbXBsZSBub25jZQ=="
    );
    assert_eq!(after.headers()["upgrade"], "websocket");

    let other = own_request_head(request("/socket.io/?EIO=4")).await;
    assert_eq!(
        sliced(&other),
        [false; 4],
        "a polling request is copied too"
    );
    let api = own_request_head(request("/api/me")).await;
    assert_eq!(sliced(&api), [true; 4], "other requests pass untouched");
}

fn payload(text: &str) -> Payload {
    Payload::Str(text.to_string().into(), None)
}

#[test]
fn reads_requests_from_events() {
    let (name, request) = parse(&payload(
        r#"["message.send",{"room":1,"body":"hi","client_id":"c"}]"#,
    ))
    .expect("parses");
    assert_eq!(name, "message.send");
    assert!(matches!(request, Request::MessageSend(_)));
    let (_, request) = parse(&payload(r#"["room.list"]"#)).expect("no data");
    assert!(matches!(request, Request::RoomList(_)));
}

#[test]
fn refuses_bad_events() {
    let (name, e) = parse(&payload(r#"["message.send","hello"]"#)).expect_err("not object");
    assert_eq!(name, "message.send");
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    let (_, e) = parse(&payload(r#"["fly",{}]"#)).expect_err("unknown");
    assert_eq!(e.code, ErrorCode::UnknownType);
    let (_, e) = parse(&payload(r#"["ping",{},{}]"#)).expect_err("two args");
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    let (_, e) = parse(&payload(r#"["message.send",{"room":1}]"#)).expect_err("missing");
    assert_eq!(e.code, ErrorCode::InvalidRequest);
}

fn auth_args(auth: Result<Json, ParserError>) -> Result<AuthArgs, ChatError> {
    match auth_request(auth)? {
        Request::Auth(args) => Ok(args),
        other => panic!("not an auth request: {other:?}"),
    }
}

#[test]
fn handshake_auth_is_the_auth_request() {
    let e = auth_args(Ok(json!({}))).expect_err("no token");
    assert_eq!(e.code, ErrorCode::Unauthenticated);
    let args = auth_args(Ok(
        json!({"token": "t", "resume": {"1": 4}, "presence": false}),
    ))
    .expect("parses");
    assert_eq!(args.resume.get("1"), Some(&4));
    assert!(!args.presence);
    let e = auth_args(Ok(json!({"token": 5}))).expect_err("bad type");
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    let shown = Refusal(ChatError::new(ErrorCode::Unauthenticated, "invalid token"));
    assert_eq!(shown.to_string(), "unauthenticated: invalid token");
}
