//! Bad input and abuse, each answered with its documented error or close code while the
//! connection (or at least everyone else's) keeps working.

use natter_testkit::*;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// After each bad frame the same connection still chats.
async fn still_works(c: &mut Client, room: i64) {
    let m = c.say(room, "still here").await;
    assert!(m["seq"].as_i64().expect("seq") >= 1);
}

#[tokio::test]
async fn bad_requests_get_documented_errors_and_the_connection_survives() {
    let server = TestServer::start_with(|s| s.max_message_chars = Some(50)).await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let other = room_with(&mut bob, &mut []).await;
    let dm = {
        let mut eve = server.user("eve").await;
        let name = bob.name();
        eve.ok("dm.open", json!({"user": name})).await["room"]["id"]
            .as_i64()
            .expect("id")
    };

    let send = |body: &str| json!({"room": room, "body": body, "client_id": unique("c")});
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("message.send", send(""), "empty_message"),
        ("message.send", send("   \n\t "), "empty_message"),
        ("message.send", send(&"x".repeat(51)), "message_too_long"),
        (
            "message.send",
            json!({"room": 987_654, "body": "x", "client_id": "a"}),
            "unknown_room",
        ),
        (
            "message.send",
            json!({"room": other, "body": "x", "client_id": "a"}),
            "not_member",
        ),
        (
            "message.send",
            json!({"room": dm, "body": "x", "client_id": "a"}),
            "unknown_room",
        ),
        (
            "message.send",
            json!({"room": room, "body": "x"}),
            "invalid_request",
        ),
        (
            "message.send",
            json!({"room": "general", "body": "x", "client_id": "a"}),
            "invalid_request",
        ),
        (
            "message.send",
            json!({"room": room, "body": 5, "client_id": "a"}),
            "invalid_request",
        ),
        (
            "message.send",
            json!({"room": room, "body": "x", "client_id": ""}),
            "invalid_request",
        ),
        (
            "message.send",
            json!({"room": room, "body": "x", "client_id": "x".repeat(65)}),
            "invalid_request",
        ),
        ("history", json!({"room": dm}), "unknown_room"),
        ("history", json!({}), "invalid_request"),
        (
            "typing",
            json!({"room": room, "active": "yes"}),
            "invalid_request",
        ),
        ("fly.away", json!({}), "unknown_type"),
        (
            "auth",
            json!({"token": ana.token.clone()}),
            "already_authenticated",
        ),
    ];
    for (kind, data, expected) in cases {
        let code = ana.fails(kind, data.clone()).await;
        assert_eq!(code, expected, "{kind} {data}");
    }
    // Exactly 50 characters (multi-byte ones count as one) is allowed.
    ana.say(room, &"é".repeat(50)).await;
    still_works(&mut ana, room).await;

    // Frames that are not requests at all.
    for (raw, expected) in [
        ("{this is not json", "bad_json"),
        ("[1,2,3]", "bad_json"),
        ("\"a string\"", "bad_json"),
        (r#"{"type":"ping"}"#, "invalid_request"),
        (r#"{"type":"ping","ref":7}"#, "invalid_request"),
        (r#"{"ref":"x"}"#, "invalid_request"),
        (
            r#"{"type":"message.send","ref":"d","data":[1]}"#,
            "invalid_request",
        ),
    ] {
        ana.send_raw(Message::Text(raw.into())).await;
        let reply = ana.next_reply().await;
        assert_eq!(reply["type"], "error", "{raw}");
        assert_eq!(reply["error"]["code"], expected, "{raw}");
        if expected == "bad_json" {
            assert!(reply["ref"].is_null());
        }
    }
    ana.send_raw(Message::Binary(vec![1u8, 2, 3].into())).await;
    let reply = ana.next_reply().await;
    assert_eq!(reply["error"]["code"], "binary_unsupported");
    assert!(reply["ref"].is_null());
    still_works(&mut ana, room).await;
    // Bob saw only the good messages.
    let got = bob.messages(room, 3).await;
    assert_eq!(seqs(&got), vec![2, 3, 4], "after bob's join, entry 1");

    // The extremes of a seq are answered, not a panic (schemathesis found `around` at
    // i64::MAX overflowing `Seq::next` through the HTTP API).
    for (field, seq) in [
        ("around", i64::MAX),
        ("around", i64::MIN),
        ("before", i64::MIN),
        ("after", i64::MAX),
    ] {
        let page = ana
            .ok("history", json!({"room": room, field: seq, "limit": 2}))
            .await;
        assert!(page["messages"].is_array(), "{field} {seq}: {page}");
    }
    let newest = ana
        .ok(
            "history",
            json!({"room": room, "around": i64::MAX, "limit": 2}),
        )
        .await;
    assert_eq!(
        seqs(newest["messages"].as_array().expect("messages")),
        vec![4]
    );
    still_works(&mut ana, room).await;
}

#[tokio::test]
async fn requests_before_auth_close_with_4001() {
    let server = TestServer::start().await;
    let mut ws = Client::open(server.addr).await;
    futures_util::SinkExt::send(
        &mut ws,
        Message::Text(r#"{"type":"room.list","ref":"1"}"#.into()),
    )
    .await
    .expect("send");
    let first = futures_util::StreamExt::next(&mut ws)
        .await
        .expect("frame")
        .expect("ok");
    let reply: serde_json::Value =
        serde_json::from_str(first.to_text().expect("text")).expect("json");
    assert_eq!(reply["error"]["code"], "unauthenticated");
    assert_eq!(reply["ref"], "1");
    assert_eq!(closed(&mut ws).await, Some(4001));

    // A bad token: error, then 4001.
    let err = Client::try_connect(server.addr, "not-a-token", None, true)
        .await
        .err()
        .expect("fails");
    assert_eq!(err.0, "unauthenticated");
}

/// Before `auth`, a frame that is no request at all is answered with its error and then
/// closes the connection with 4001, like any other refusal: nothing is answered and kept
/// open before authentication.
#[tokio::test]
async fn frames_that_are_no_request_before_auth_close_with_4001() {
    let server = TestServer::start().await;
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let deep_object = format!(
        r#"{{"type":"auth","ref":"d","data":{{"token":{}1{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: Vec<(Message, &str)> = vec![
        (Message::Text("{this is not json".into()), "bad_json"),
        (Message::Text("[1,2,3]".into()), "bad_json"),
        (Message::Text(deep.into()), "bad_json"),
        (Message::Text(deep_object.into()), "bad_json"),
        (
            Message::Text(r#"{"type":"ping"}"#.into()),
            "invalid_request",
        ),
        (
            Message::Text(r#"{"type":"fly","ref":"f"}"#.into()),
            "unknown_type",
        ),
        (
            Message::Text(r#"{"type":"auth","ref":"a","data":{}}"#.into()),
            "invalid_request",
        ),
        (
            Message::Binary(vec![1u8, 2, 3].into()),
            "binary_unsupported",
        ),
    ];
    for (frame, expected) in cases {
        let shown = format!("{frame:?}");
        let shown = &shown[..shown.len().min(60)];
        let mut ws = Client::open(server.addr).await;
        futures_util::SinkExt::send(&mut ws, frame)
            .await
            .expect("send");
        let first = futures_util::StreamExt::next(&mut ws)
            .await
            .expect("frame")
            .expect("ok");
        let reply: serde_json::Value =
            serde_json::from_str(first.to_text().expect("text")).expect("json");
        assert_eq!(reply["type"], "error", "{shown}");
        assert_eq!(reply["error"]["code"], expected, "{shown}");
        assert_eq!(closed(&mut ws).await, Some(4001), "{shown}");
    }
}

/// A frame over `max_preauth_frame_bytes` before `auth` closes with 1009; once
/// authenticated, the same frame is fine (up to `max_frame_bytes`).
#[tokio::test]
async fn a_large_frame_before_auth_closes_with_1009() {
    let server = TestServer::start_with(|s| s.max_preauth_frame_bytes = Some(1024)).await;
    let (token, _) = server.register("big").await;
    let padded = |kind: &str| {
        json!({"type": kind, "ref": "p", "data": {"token": token, "pad": "x".repeat(2000)}})
            .to_string()
    };
    let mut ws = Client::open(server.addr).await;
    futures_util::SinkExt::send(&mut ws, Message::Text(padded("auth").into()))
        .await
        .expect("send");
    assert_eq!(closed(&mut ws).await, Some(1009));

    let mut ana = Client::connect(server.addr, &token, None).await;
    let room = general(&ana);
    let body = "y".repeat(3000);
    assert_eq!(ana.say(room, &body).await["body"], body.as_str());
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_auth_timeout() {
    let server = TestServer::start_with(|s| s.auth_timeout_secs = Some(1)).await;
    let mut ws = Client::open(server.addr).await;
    assert_eq!(closed(&mut ws).await, Some(4001));
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_connection_with_1009() {
    let server = TestServer::start_with(|s| s.max_frame_bytes = Some(4096)).await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let huge = json!({"type": "message.send", "ref": "big", "data": {"room": room, "body": "x".repeat(10_000), "client_id": "big"}});
    ana.send_raw(Message::Text(huge.to_string().into())).await;
    assert_eq!(ana.closed().await, Some(1009));
    // Bob is unaffected.
    bob.say(room, "fine here").await;
    assert_eq!(bob.event("message").await["body"], "fine here");
}

#[tokio::test]
async fn floods_are_rate_limited_not_disconnected() {
    let server = TestServer::start_with(|s| {
        s.rate_per_sec = Some(5.0);
        s.rate_burst = Some(10.0);
    })
    .await;
    let mut ana = server.user("ana").await;
    let mut refs = Vec::new();
    for _ in 0..30 {
        refs.push(ana.send_request("ping", json!({})).await);
    }
    let mut ok = 0;
    let mut limited = 0;
    for r in refs {
        match ana.reply(&r).await {
            Ok(_) => ok += 1,
            Err((code, err)) => {
                assert_eq!(code, "rate_limited");
                assert!(err["retry_after_ms"].as_u64().expect("retry_after_ms") > 0);
                limited += 1;
            }
        }
    }
    assert!(
        (10..=12).contains(&ok),
        "burst of 10 (plus refill), got {ok}"
    );
    assert_eq!(ok + limited, 30);
    // After a pause the connection works again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    ana.ok("ping", json!({})).await;
}
