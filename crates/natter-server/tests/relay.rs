//! Relay mode's plain WebSocket at `/` (docs/protocol.md, "The relay WebSocket at `/`";
//! ADR 0026), end to end over real sockets: text frames in, `name: text` lines out, the same
//! messages a native client sees, durable across a restart; and `/` when relay mode is off.

use futures_util::SinkExt;
use natter_testkit::{general, TestServer};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws = natter_testkit::RawWs;

async fn relay_server() -> TestServer {
    TestServer::start_with(|s| {
        s.relay = Some(true);
        s.allow_guests = Some(true);
    })
    .await
}

/// The tutorial client: `new WebSocket("ws://host:port/")`.
async fn tutorial(server: &TestServer) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", server.addr))
        .await
        .expect("relay websocket");
    ws
}

/// The next text frame.
async fn line(ws: &mut Ws) -> String {
    natter_testkit::next_text(ws).await
}

async fn say(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_frames_are_messages_and_messages_are_lines() {
    let mut server = relay_server().await;
    let mut native = server.user("nat").await;
    let room = general(&native);
    let mut a = tutorial(&server).await;
    let mut b = tutorial(&server).await;

    say(&mut a, "hello").await;
    let seen = native
        .event_where("message", |m| m["body"] == "hello")
        .await;
    let sender = seen["sender"]["name"].as_str().expect("sender").to_string();
    assert!(sender.starts_with("guest-"), "{sender}");
    assert_eq!(seen["sender"]["guest"], true);
    let expected = format!("{sender}: hello");
    assert_eq!(line(&mut a).await, expected, "the sender sees its own line");
    assert_eq!(line(&mut b).await, expected);

    // Many lines from one tab arrive in order everywhere, interleaved with a native client's.
    for n in 0..20 {
        say(&mut b, &format!("b{n}")).await;
    }
    let said = native.say(room, "from native").await;
    let native_line = format!(
        "{}: from native",
        said["sender"]["name"].as_str().expect("name")
    );
    for ws in [&mut a, &mut b] {
        let mut got = Vec::new();
        while got.len() < 21 {
            got.push(line(ws).await);
        }
        let bs: Vec<&String> = got.iter().filter(|l| l.contains(": b")).collect();
        let numbers: Vec<String> = bs
            .iter()
            .map(|l| l.rsplit_once(": ").expect("line").1.to_string())
            .collect();
        let wanted: Vec<String> = (0..20).map(|n| format!("b{n}")).collect();
        assert_eq!(numbers, wanted, "in order");
        assert!(got.contains(&native_line), "{got:?}");
    }

    // A refused text is told to its sender only.
    say(&mut a, "   ").await;
    let refused = line(&mut a).await;
    assert!(refused.starts_with("! empty_message: "), "{refused}");

    // Durable: after a restart, history has what the relay clients said.
    drop(a);
    drop(b);
    server
        .restart_with(|s| {
            s.relay = Some(true);
            s.allow_guests = Some(true);
        })
        .await;
    let mut after = server.user("later").await;
    let page = after
        .ok("history", json!({"room": room, "limit": 100}))
        .await;
    let bodies: Vec<&str> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert!(bodies.contains(&"hello"), "{bodies:?}");
    assert!(bodies.contains(&"b19"), "{bodies:?}");
    // And a relay client that joins now sees what is said from now on.
    let mut c = tutorial(&server).await;
    // Its own line back says it is in the room.
    say(&mut c, "back").await;
    assert!(line(&mut c).await.ends_with(": back"));
    after.say(room, "welcome back").await;
    let welcome = line(&mut c).await;
    assert!(welcome.ends_with(": welcome back"), "{welcome}");
}

/// Each relay connection is a new guest, counted per address: past the limit the upgrade is
/// refused with `429` and the JSON error body, before any WebSocket opens; a guest that was
/// let in is in the room when its socket opens (a message said right then reaches it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_are_in_the_room_when_open_and_limited_per_address() {
    let server = TestServer::start_with(|s| {
        s.relay = Some(true);
        s.allow_guests = Some(true);
        s.guest_per_hour_per_address = Some(1);
    })
    .await;
    let mut native = server.user("nat").await;
    let room = general(&native);
    let mut first = tutorial(&server).await;
    native.say(room, "right away").await;
    assert!(line(&mut first).await.ends_with(": right away"));
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/", server.addr))
        .await
        .expect_err("the second guest from one address is refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("not an HTTP refusal: {refused:?}");
    };
    assert_eq!(response.status(), 429);
    let body: serde_json::Value =
        serde_json::from_slice(response.body().as_deref().expect("a body")).expect("JSON");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_room_is_a_setting_and_lines_come_only_from_it() {
    let server = TestServer::start_with(|s| {
        s.relay = Some(true);
        s.allow_guests = Some(true);
        s.relay_room = Some("lobby".into());
    })
    .await;
    let mut native = server.user("nat").await;
    let mut ws = tutorial(&server).await;
    say(&mut ws, "in the lobby").await;
    let first = line(&mut ws).await;
    assert!(first.ends_with(": in the lobby"), "{first}");
    // The native user finds the lobby by name and joins it.
    let rooms = native.ok("room.list", json!({"query": "lobby"})).await;
    let lobby = rooms["rooms"][0]["id"].as_i64().expect("lobby made");
    native.ok("room.join", json!({"room": lobby})).await;
    let page = native.ok("history", json!({"room": lobby})).await;
    assert_eq!(page["messages"][0]["body"], "in the lobby");
    // general's messages are not relayed to the lobby's client.
    native.say(general(&native), "in general").await;
    native.say(lobby, "in the lobby too").await;
    let next = line(&mut ws).await;
    assert!(next.ends_with(": in the lobby too"), "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_without_relay_is_the_web_page_and_refuses_websockets() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let page = http.get(server.http("/")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/html")));

    let request = format!("ws://{}/", server.addr)
        .into_client_request()
        .expect("request");
    let refused = tokio_tungstenite::connect_async(request)
        .await
        .expect_err("refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("not an HTTP refusal: {refused:?}");
    };
    assert_eq!(response.status(), 400);
    let body: serde_json::Value =
        serde_json::from_slice(response.body().as_deref().unwrap_or(b"{}")).expect("json");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_needs_guests() {
    let settings = natter_server::Settings {
        relay: Some(true),
        ..natter_server::Settings::default()
    };
    let e = settings.resolve().expect_err("refused");
    assert!(e.contains("--allow-guests"), "{e}");
    let settings = natter_server::Settings {
        relay: Some(true),
        allow_guests: Some(true),
        relay_room: Some("no spaces".into()),
        ..natter_server::Settings::default()
    };
    let e = settings.resolve().expect_err("refused");
    assert!(e.contains("--relay-room"), "{e}");
    let defaults = natter_server::Config::defaults();
    assert!(!defaults.relay, "off by default");
    assert_eq!(defaults.relay_room, "general");
}

/// In relay mode a tutorial page from another origin may use long-polling: `/socket.io/`
/// answers with `Access-Control-Allow-Origin: *`; without relay mode it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_mode_lets_pages_of_any_origin_poll() {
    let handshake = |server: &TestServer| {
        reqwest::Client::new()
            .get(server.http("/socket.io/?EIO=4&transport=polling"))
            .header("origin", "http://tutorial.example")
            .send()
    };
    let relay = relay_server().await;
    let answer = handshake(&relay).await.expect("handshake");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["access-control-allow-origin"], "*");
    let plain = TestServer::start().await;
    let answer = handshake(&plain).await.expect("handshake");
    assert_eq!(answer.status(), 200);
    assert!(answer
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
