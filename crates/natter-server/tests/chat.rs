//! End-to-end chat behaviour over real sockets: messages, rooms, DMs, history, presence,
//! typing, join/leave, duplicates and the HTTP accounts API.
//!
//! Over 500 lines on purpose: each file under tests/ is its own binary that links the whole
//! server, so suites are grouped by subject, not split by size (CI time, issue 16).

use natter_testkit::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn two_users_chat_both_ways() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;

    let sent = ana.say(room, "hello bob").await;
    assert_eq!(sent["seq"], 2, "after bob's join, the room's entry 1");
    assert_eq!(sent["sender"]["name"], ana.name());
    assert!(sent["ts"].as_i64().expect("ts") > 1_700_000_000_000);
    let got = bob.event_where("message", |m| m["room"] == room).await;
    assert_eq!(got, sent, "bob gets exactly what was stored");
    // The sender's own connection gets the event too.
    assert_eq!(
        ana.event_where("message", |m| m["room"] == room).await,
        sent
    );

    let reply = bob.say(room, "hi ana").await;
    assert_eq!(reply["seq"], 3);
    let got = ana.event_where("message", |m| m["room"] == room).await;
    assert_eq!(got["body"], "hi ana");
    assert_eq!(got["sender"]["id"], bob.id());
}

#[tokio::test]
async fn a_user_in_another_room_receives_nothing() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut eve = server.user("eve").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let elsewhere = room_with(&mut eve, &mut []).await;

    ana.say(room, "private to this room").await;
    bob.event_where("message", |m| m["room"] == room).await;
    eve.no_event("message", Duration::from_millis(300)).await;
    // Eve cannot read it either.
    assert_eq!(
        eve.fails("history", json!({"room": room})).await,
        "not_member"
    );
    // Eve's own room still works.
    eve.say(elsewhere, "mine").await;
    assert_eq!(eve.event("message").await["room"], elsewhere);
}

#[tokio::test]
async fn direct_messages_are_private_to_the_pair() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut eve = server.user("eve").await;

    let dm = ana.ok("dm.open", json!({"user": bob.name()})).await["room"].clone();
    assert_eq!(dm["kind"], "dm");
    assert_eq!(dm["peer"]["name"], bob.name());
    let dm_id = dm["id"].as_i64().expect("id");
    let added = bob.event("room_added").await;
    assert_eq!(added["room"]["id"], dm_id);
    assert_eq!(
        added["room"]["peer"]["name"],
        ana.name(),
        "bob sees ana as the peer"
    );
    // Opening again (either side, any case) gives the same room.
    let again = bob
        .ok("dm.open", json!({"user": ana.name().to_uppercase()}))
        .await;
    assert_eq!(again["room"]["id"], dm_id);

    let secret = ana.say(dm_id, "just between us").await;
    assert_eq!(
        bob.event_where("message", |m| m["room"] == dm_id).await,
        secret
    );

    // Eve sees nothing and can do nothing with it; the room looks like it does not exist.
    eve.no_event("message", Duration::from_millis(300)).await;
    for (kind, data) in [
        ("history", json!({"room": dm_id})),
        (
            "message.send",
            json!({"room": dm_id, "body": "x", "client_id": "e1"}),
        ),
        ("room.join", json!({"room": dm_id})),
        ("room.members", json!({"room": dm_id})),
        ("typing", json!({"room": dm_id, "active": true})),
    ] {
        assert_eq!(eve.fails(kind, data).await, "unknown_room", "{kind}");
    }
    let listed = eve.ok("room.list", json!({})).await;
    assert!(
        !listed["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .any(|r| r["id"] == dm_id),
        "eve's room list must not show the DM"
    );
    assert_eq!(
        ana.fails("room.leave", json!({"room": dm_id})).await,
        "forbidden"
    );
    assert_eq!(
        ana.fails("dm.open", json!({"user": ana.name()})).await,
        "invalid_request"
    );
    assert_eq!(
        ana.fails("dm.open", json!({"user": "nobody-here"})).await,
        "unknown_user"
    );
}

#[tokio::test]
async fn retried_send_is_stored_once() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;

    let send = json!({"room": room, "body": "once", "client_id": "retry-1"});
    let first = ana.ok("message.send", send.clone()).await;
    assert_eq!(first["duplicate"], false);
    let second = ana.ok("message.send", send.clone()).await;
    assert_eq!(second["duplicate"], true);
    assert_eq!(
        second["message"], first["message"],
        "the retry gets the original"
    );
    // A retry from another connection of the same user is deduplicated too.
    let mut ana2 = Client::connect(server.addr, &ana.token, None).await;
    let third = ana2.ok("message.send", send).await;
    assert_eq!(third["message"]["id"], first["message"]["id"]);

    bob.event_where("message", |m| m["room"] == room).await;
    bob.no_event("message", Duration::from_millis(300)).await;
    let history = bob.ok("history", json!({"room": room})).await;
    assert_eq!(history["messages"].as_array().expect("messages").len(), 1);
    // The same client id from another user is a different message.
    let bobs = bob
        .ok(
            "message.send",
            json!({"room": room, "body": "mine", "client_id": "retry-1"}),
        )
        .await;
    assert_eq!(bobs["duplicate"], false);
    assert_eq!(
        bobs["message"]["seq"], 3,
        "after bob's join (1) and ana's message (2)"
    );
}

#[tokio::test]
async fn history_pages_by_sequence() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let room = room_with(&mut ana, &mut []).await;
    for i in 1..=25 {
        ana.say(room, &format!("m{i}")).await;
    }
    let seqs = |v: &serde_json::Value| seqs(v["messages"].as_array().expect("messages"));
    let newest = ana.ok("history", json!({"room": room, "limit": 10})).await;
    assert_eq!(seqs(&newest), (16..=25).collect::<Vec<_>>());
    assert_eq!(newest["has_more"], true);
    let older = ana
        .ok("history", json!({"room": room, "before": 16, "limit": 10}))
        .await;
    assert_eq!(seqs(&older), (6..=15).collect::<Vec<_>>());
    let oldest = ana
        .ok("history", json!({"room": room, "before": 6, "limit": 10}))
        .await;
    assert_eq!(seqs(&oldest), (1..=5).collect::<Vec<_>>());
    assert_eq!(oldest["has_more"], false);
    let since = ana.ok("history", json!({"room": room, "after": 20})).await;
    assert_eq!(seqs(&since), (21..=25).collect::<Vec<_>>());
    assert_eq!(since["has_more"], false);
    let page = ana
        .ok("history", json!({"room": room, "after": 0, "limit": 7}))
        .await;
    assert_eq!(seqs(&page), (1..=7).collect::<Vec<_>>());
    assert_eq!(page["has_more"], true);
    assert_eq!(
        ana.fails("history", json!({"room": room, "limit": 101}))
            .await,
        "invalid_request"
    );
    assert_eq!(
        ana.fails("history", json!({"room": room, "limit": 0}))
            .await,
        "invalid_request"
    );
    assert_eq!(
        ana.fails("history", json!({"room": room, "before": 3, "after": 1}))
            .await,
        "invalid_request"
    );
}

#[tokio::test]
async fn presence_counts_every_tab() {
    let server = TestServer::start().await;
    let mut watcher = server.user("watch").await;
    let (token, user) = server.register("tabs").await;
    let uid = user["id"].clone();

    let mut tab1 = Client::connect(server.addr, &token, None).await;
    let online = watcher
        .event_where("presence", |p| p["user"]["id"] == uid)
        .await;
    assert_eq!(online["online"], true);
    assert!(tab1.welcome["online"]
        .as_array()
        .expect("online")
        .iter()
        .any(|u| u["id"] == uid));

    let tab2 = Client::connect(server.addr, &token, None).await;
    let listed = watcher.ok("presence.list", json!({})).await;
    assert!(listed["online"]
        .as_array()
        .expect("online")
        .iter()
        .any(|u| u["id"] == uid));

    // Closing one tab keeps the user online.
    drop(tab2);
    watcher
        .no_event_where("presence", Duration::from_millis(500), |p| {
            p["user"]["id"] == uid
        })
        .await;
    let listed = watcher.ok("presence.list", json!({})).await;
    assert!(listed["online"]
        .as_array()
        .expect("online")
        .iter()
        .any(|u| u["id"] == uid));

    // Closing the last one takes them offline, for everyone.
    tab1.ws.close(None).await.expect("close");
    let offline = watcher
        .event_where("presence", |p| p["user"]["id"] == uid)
        .await;
    assert_eq!(offline["online"], false);
    let listed = watcher.ok("presence.list", json!({})).await;
    assert!(!listed["online"]
        .as_array()
        .expect("online")
        .iter()
        .any(|u| u["id"] == uid));
    // room.members shows it per room.
    let general_id = general(&watcher);
    let members = watcher
        .ok("room.members", json!({"room": general_id}))
        .await;
    let me = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["user"]["id"] == watcher.id())
        .expect("watcher is a member of general")
        .clone();
    assert_eq!(me["online"], true);
    let them = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["user"]["id"] == uid)
        .expect("tabs user is a member")
        .clone();
    assert_eq!(them["online"], false);
}

#[tokio::test]
async fn a_connection_can_opt_out_of_presence() {
    let server = TestServer::start().await;
    let (token, _) = server.register("quiet").await;
    let mut quiet = Client::try_connect(server.addr, &token, None, false)
        .await
        .expect("auth");
    let _other = server.user("loud").await;
    quiet.no_event("presence", Duration::from_millis(400)).await;
}

#[tokio::test]
async fn typing_starts_stops_and_expires() {
    let server = TestServer::start_with(|s| s.typing_expiry_ms = Some(600)).await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;

    ana.ok("typing", json!({"room": room, "active": true}))
        .await;
    let t = bob.event("typing").await;
    assert_eq!(
        (t["room"].as_i64(), t["active"].as_bool()),
        (Some(room), Some(true))
    );
    assert_eq!(t["user"]["id"], ana.id());
    // The typist's own connection is not told.
    ana.no_event("typing", Duration::from_millis(200)).await;
    // A repeat within the throttle window is not forwarded.
    ana.ok("typing", json!({"room": room, "active": true}))
        .await;
    ana.ok("typing", json!({"room": room, "active": false}))
        .await;
    let t = bob.event("typing").await;
    assert_eq!(
        t["active"], false,
        "stop is forwarded, the repeated start is not"
    );

    // No stop: the server ends it after the expiry.
    ana.ok("typing", json!({"room": room, "active": true}))
        .await;
    assert_eq!(bob.event("typing").await["active"], true);
    let started = std::time::Instant::now();
    let t = bob.event("typing").await;
    assert_eq!(t["active"], false);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "expired too early: {waited:?}"
    );

    // Sending a message ends typing too.
    ana.ok("typing", json!({"room": room, "active": true}))
        .await;
    assert_eq!(bob.event("typing").await["active"], true);
    ana.say(room, "done typing").await;
    assert_eq!(bob.event("typing").await["active"], false);
}

#[tokio::test]
async fn rooms_can_be_created_joined_listed_and_left() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let name = unique("club");
    let room = ana.ok("room.create", json!({"name": name})).await["room"].clone();
    assert_eq!(
        (room["member_count"].as_i64(), room["joined"].as_bool()),
        (Some(1), Some(true))
    );
    let id = room["id"].as_i64().expect("id");
    assert_eq!(
        ana.fails("room.create", json!({"name": name.to_uppercase()}))
            .await,
        "name_taken"
    );
    assert_eq!(
        ana.fails("room.create", json!({"name": "bad name!"})).await,
        "invalid_name"
    );
    assert_eq!(
        ana.fails("room.create", json!({"name": ""})).await,
        "invalid_name"
    );

    let listed = bob.ok("room.list", json!({})).await;
    let seen = listed["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["id"] == id)
        .cloned();
    assert_eq!(seen.expect("listed")["joined"], false);

    let joined = bob.ok("room.join", json!({"room": id})).await;
    assert_eq!(joined["room"]["member_count"], 2);
    let bob_id = bob.id();
    let j = ana
        .event_where("member_joined", |e| {
            e["room"] == id && e["user"]["id"] == bob_id
        })
        .await;
    assert_eq!(j["member_count"], 2);
    // Joining twice is fine and tells nobody.
    bob.ok("room.join", json!({"room": id})).await;
    ana.no_event_where("member_joined", Duration::from_millis(200), |e| {
        e["room"] == id && e["user"]["id"] == bob_id
    })
    .await;
    // Bob's other connection learns it is in the room too.
    let mut bob2 = Client::connect(server.addr, &bob.token, None).await;
    let members = bob2.ok("room.members", json!({"room": id})).await;
    assert_eq!(members["members"].as_array().expect("members").len(), 2);

    bob.ok("room.leave", json!({"room": id})).await;
    let l = ana.event_where("member_left", |e| e["room"] == id).await;
    assert_eq!(
        (l["user"]["id"].as_i64(), l["member_count"].as_i64()),
        (Some(bob.id()), Some(1))
    );
    assert_eq!(bob2.event("room_removed").await["room"], id);
    // Bob no longer gets the room's messages, and cannot post.
    ana.say(id, "bob is gone").await;
    bob2.no_event_where("message", Duration::from_millis(300), |m| m["room"] == id)
        .await;
    assert_eq!(
        bob.fails(
            "message.send",
            json!({"room": id, "body": "x", "client_id": "b"})
        )
        .await,
        "not_member"
    );
    assert_eq!(
        bob.fails("room.leave", json!({"room": id})).await,
        "not_member"
    );
    assert_eq!(
        bob.fails("room.join", json!({"room": 999_999})).await,
        "unknown_room"
    );
}

#[tokio::test]
async fn new_accounts_are_in_general_and_others_see_them_join() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let general_id = general(&ana);
    let bob = server.user("bob").await;
    let j = ana
        .event_where("member_joined", |e| {
            e["room"] == general_id && e["user"]["id"] == bob.id()
        })
        .await;
    assert!(j["member_count"].as_i64().expect("count") >= 2);
    assert_eq!(general(&bob), general_id);
}

#[tokio::test]
async fn http_accounts_api() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let name = unique("acct");
    let post =
        |path: &str, body: serde_json::Value| http.post(server.http(path)).json(&body).send();
    let r = post(
        "/api/register",
        json!({"username": name, "password": "correct horse"}),
    )
    .await
    .expect("req");
    assert_eq!(r.status(), 201);
    let token = r.json::<serde_json::Value>().await.expect("json")["token"]
        .as_str()
        .expect("t")
        .to_string();
    assert_eq!(token.len(), 43);

    let r = post(
        "/api/register",
        json!({"username": name.to_uppercase(), "password": "another one"}),
    )
    .await
    .expect("req");
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["error"]["code"],
        "name_taken"
    );
    let r = post(
        "/api/register",
        json!({"username": "no spaces allowed", "password": "correct horse"}),
    )
    .await
    .expect("req");
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["error"]["code"],
        "invalid_username"
    );
    let r = post(
        "/api/register",
        json!({"username": unique("w"), "password": "short"}),
    )
    .await
    .expect("req");
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["error"]["code"],
        "weak_password"
    );
    let r = http
        .post(server.http("/api/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["error"]["code"],
        "invalid_request"
    );

    let r = post(
        "/api/login",
        json!({"username": name, "password": "wrong horse"}),
    )
    .await
    .expect("req");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["error"]["code"],
        "invalid_credentials"
    );
    let r = post(
        "/api/login",
        json!({"username": "nobody-at-all", "password": "wrong horse"}),
    )
    .await
    .expect("req");
    assert_eq!(r.status(), 401);
    let r = post(
        "/api/login",
        json!({"username": name.to_uppercase(), "password": "correct horse"}),
    )
    .await
    .expect("req");
    assert_eq!(r.status(), 200, "names are case-insensitive");
    let second = r.json::<serde_json::Value>().await.expect("json")["token"]
        .as_str()
        .expect("t")
        .to_string();

    let me = http
        .get(server.http("/api/me"))
        .bearer_auth(&second)
        .send()
        .await
        .expect("req");
    assert_eq!(
        me.json::<serde_json::Value>().await.expect("json")["user"]["name"],
        name
    );

    // Signing out revokes that token and closes its live connections with 4003.
    let mut live = Client::connect(server.addr, &second, None).await;
    let r = http
        .post(server.http("/api/logout"))
        .bearer_auth(&second)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 204);
    assert_eq!(live.closed().await, Some(4003));
    let r = http
        .get(server.http("/api/me"))
        .bearer_auth(&second)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 401);
    let err = Client::try_connect(server.addr, &second, None, true)
        .await
        .err()
        .expect("revoked");
    assert_eq!(err.0, "unauthenticated");
    // The first token still works.
    Client::connect(server.addr, &token, None).await;

    let config = config_of(&server).await;
    assert_eq!(config["allow_guests"], false);
    assert_eq!(config["max_message_chars"], 4000);
    assert_eq!(config["max_upload_bytes"], 25 * 1024 * 1024);
    for path in ["/api/nope", "/api/me/extra"] {
        let r = http.get(server.http(path)).send().await.expect("req");
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.expect("a JSON error, not the web page");
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    let r = post("/api/guest", json!({"nickname": unique("g")}))
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["error"]["code"],
        "guests_disabled"
    );

    let health = http.get(server.http("/healthz")).send().await.expect("req");
    assert_eq!(health.status(), 200);
    let csp = http.get(server.http("/")).send().await.expect("req");
    let policy = csp.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(policy.contains("script-src 'self'"), "{policy}");
}

/// `GET /api/config` of a server.
async fn config_of(server: &TestServer) -> serde_json::Value {
    reqwest::get(server.http("/api/config"))
        .await
        .expect("req")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn guests_can_chat_when_allowed() {
    let server = TestServer::start_with(|s| {
        s.allow_guests = Some(true);
        s.max_message_chars = Some(500);
    })
    .await;
    let config = config_of(&server).await;
    assert_eq!(config["allow_guests"], true);
    assert_eq!(config["max_message_chars"], 500);
    let nick = unique("guest");
    let r = reqwest::Client::new()
        .post(server.http("/api/guest"))
        .json(&json!({"nickname": nick}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["user"]["guest"], true);
    let mut guest =
        Client::connect(server.addr, body["token"].as_str().expect("token"), None).await;
    let general_id = general(&guest);
    let m = guest.say(general_id, "hi from a guest").await;
    assert_eq!(m["sender"]["guest"], true);
}

/// Requests sent back to back without waiting: sends run concurrently yet keep their order,
/// a join completes before the send behind it, and replies come back in request order.
#[tokio::test]
async fn pipelined_requests_keep_their_order() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut []).await;
    let join = bob.send_request("room.join", json!({"room": room})).await;
    let mut refs = vec![join];
    // Every seventh mentions someone: resolving it reads the members before the append.
    for i in 0..50 {
        let body = if i % 7 == 3 {
            format!("p{i} @{}", ana.name())
        } else {
            format!("p{i}")
        };
        let data = json!({"room": room, "body": body, "client_id": format!("p{i}")});
        refs.push(bob.send_request("message.send", data).await);
    }
    refs.push(
        bob.send_request("history", json!({"room": room, "limit": 100}))
            .await,
    );
    let mut replies = Vec::new();
    for _ in 0..refs.len() {
        replies.push(bob.next_reply().await);
    }
    let got: Vec<&str> = replies
        .iter()
        .map(|r| r["ref"].as_str().expect("ref"))
        .collect();
    assert_eq!(
        got,
        refs.iter().map(String::as_str).collect::<Vec<_>>(),
        "replies in request order"
    );
    assert!(replies.iter().all(|r| r["type"] == "ok"), "{replies:?}");
    let seqs: Vec<i64> = replies[1..51]
        .iter()
        .map(|r| r["data"]["message"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (2..=51).collect::<Vec<_>>(),
        "stored in the order sent (after bob's join, entry 1)"
    );
    let history = &replies[51]["data"]["messages"];
    assert_eq!(
        history.as_array().expect("messages").len(),
        50,
        "history ran after the sends"
    );
}

/// Read markers are the user's, on every device: `room.read` moves the marker forward only and
/// never past the newest message, every connection of the user hears of it (no one else
/// does), and a new connection finds it in its `auth` reply.
#[tokio::test]
async fn read_markers_are_shared_by_a_users_devices() {
    let server = TestServer::start().await;
    let (token, _) = server.register("reader").await;
    let mut phone = Client::connect(server.addr, &token, None).await;
    let mut laptop = Client::connect(server.addr, &token, None).await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut bob, &mut [&mut phone]).await;
    // Entry 1 is the phone's join; the messages are 2, 3 and 4.
    for i in 0..3 {
        bob.say(room, &format!("m{i}")).await;
    }
    assert_eq!(phone.welcome["read"], json!({}), "nothing read yet");

    let reply = phone.ok("room.read", json!({"room": room, "seq": 3})).await;
    let marker = json!({"room": room, "read_seq": 3, "unread": 1, "mentions": 0});
    assert_eq!(reply, marker, "with the count left after it");
    for device in [&mut phone, &mut laptop] {
        let event = device.event_where("room_read", |d| d["room"] == room).await;
        assert_eq!(event, marker);
    }
    bob.no_event("room_read", Duration::from_millis(200)).await;

    let back = laptop
        .ok("room.read", json!({"room": room, "seq": 1}))
        .await;
    assert_eq!(back["read_seq"], 3, "a marker never moves back");
    let past = laptop
        .ok("room.read", json!({"room": room, "seq": 99}))
        .await;
    assert_eq!(past["read_seq"], 4, "nor past the newest message");
    phone.event_where("room_read", |d| d["read_seq"] == 4).await;

    let tablet = Client::connect(server.addr, &token, None).await;
    assert_eq!(tablet.welcome["read"], json!({ room.to_string(): 4 }));

    let general = general(&bob);
    let mut outsider = server.user("out").await;
    outsider.ok("room.leave", json!({"room": general})).await;
    assert_eq!(
        outsider
            .fails("room.read", json!({"room": general, "seq": 1}))
            .await,
        "not_member"
    );
    assert_eq!(
        outsider
            .fails("room.read", json!({"room": 999_999, "seq": 1}))
            .await,
        "unknown_room"
    );
    assert_eq!(
        outsider.fails("room.read", json!({"room": room})).await,
        "invalid_request"
    );
}

/// What a cross-site form could post (a body that is not `application/json`) is refused with
/// 415 before anything is done: no account is created. JSON with a charset passes.
#[tokio::test]
async fn api_bodies_must_be_json() {
    let server = TestServer::start_with(|s| s.allow_guests = Some(true)).await;
    let http = reqwest::Client::new();
    let name = unique("form");
    let credentials = json!({"username": name, "password": "correct horse"}).to_string();
    for (path, content_type, body) in [
        ("/api/register", Some("text/plain"), credentials.clone()),
        (
            "/api/register",
            Some("text/plain;charset=UTF-8"),
            credentials.clone(),
        ),
        (
            "/api/register",
            Some("application/x-www-form-urlencoded"),
            credentials.clone(),
        ),
        (
            "/api/register",
            Some("multipart/form-data; boundary=x"),
            credentials.clone(),
        ),
        ("/api/register", None, credentials.clone()),
        ("/api/login", Some("text/plain"), credentials.clone()),
        (
            "/api/guest",
            Some("text/plain"),
            json!({"nickname": unique("g")}).to_string(),
        ),
    ] {
        let mut request = http.post(server.http(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let r = request.send().await.expect("req");
        assert_eq!(r.status(), 415, "{path} {content_type:?}");
        let body: serde_json::Value = r.json().await.expect("a JSON error");
        assert_eq!(body["error"]["code"], "unsupported_media_type", "{path}");
        assert!(body["error"]["message"].is_string());
    }
    // Nothing was created: the name is still free.
    let r = http
        .post(server.http("/api/register"))
        .header("content-type", "application/json; charset=utf-8")
        .body(credentials)
        .send()
        .await
        .expect("req");
    assert_eq!(
        r.status(),
        201,
        "JSON (with a charset) is accepted; the name was free"
    );
}

/// Every error has the JSON body `{"error": {"code", "message"}}`: a wrong method on a known
/// path (405, with `Allow`), a missing web file (404), a body too large for the server.
#[tokio::test]
async fn every_http_error_has_the_json_body() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let cases = [
        (
            reqwest::Method::GET,
            "/api/register",
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::DELETE,
            "/api/login",
            405,
            "method_not_allowed",
        ),
        (reqwest::Method::POST, "/api/me", 405, "method_not_allowed"),
        (reqwest::Method::POST, "/healthz", 405, "method_not_allowed"),
        (reqwest::Method::POST, "/ws", 405, "method_not_allowed"),
        (
            reqwest::Method::POST,
            "/index.html",
            405,
            "method_not_allowed",
        ),
        (reqwest::Method::GET, "/no-such-file.js", 404, "not_found"),
        (reqwest::Method::GET, "/api/nope", 404, "not_found"),
    ];
    for (method, path, status, code) in cases {
        let r = http
            .request(method.clone(), server.http(path))
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), status, "{method} {path}");
        if status == 405 {
            assert!(r.headers().contains_key("allow"), "{method} {path}: Allow");
        }
        let body: serde_json::Value = r.json().await.expect("a JSON error body");
        assert_eq!(body["error"]["code"], code, "{method} {path}");
        assert!(body["error"]["message"].is_string(), "{method} {path}");
    }
    let huge = format!("{{\"username\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let r = http
        .post(server.http("/api/login"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], "invalid_request");
}

/// `--web-dir` serves its files and symlinks that stay inside it, and answers 404 for a
/// path that resolves outside it, whether a file, a directory or a page-like name.
#[cfg(unix)]
#[tokio::test]
async fn web_dir_does_not_follow_symlinks_out_of_it() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.txt"), "top secret").expect("write");
    let web = tempfile::tempdir().expect("tempdir");
    std::fs::write(web.path().join("index.html"), "<p>app</p>").expect("write");
    std::fs::write(web.path().join("app.js"), "let app;").expect("write");
    symlink(web.path().join("app.js"), web.path().join("alias.js")).expect("symlink");
    symlink(
        outside.path().join("secret.txt"),
        web.path().join("leak.txt"),
    )
    .expect("symlink");
    symlink(outside.path().join("secret.txt"), web.path().join("leak")).expect("symlink");
    symlink(outside.path(), web.path().join("out")).expect("symlink");
    let dir = web.path().to_path_buf();
    let server = TestServer::start_with(|s| s.web_dir = Some(dir)).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(server.http(path)).send();
    for (path, body) in [
        ("/", "<p>app</p>"),
        ("/app.js", "let app;"),
        ("/alias.js", "let app;"),
        ("/r/5", "<p>app</p>"),
        ("/r/5/42", "<p>app</p>"),
    ] {
        let r = get(path).await.expect("req");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.text().await.expect("body"), body, "{path}");
    }
    // Any other page-like path gets the app with 404: it shows its not-found page.
    for path in ["/some/page", "/nonexistent", "/r/x"] {
        let r = get(path).await.expect("req");
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.text().await.expect("body"), "<p>app</p>", "{path}");
    }
    for path in ["/leak.txt", "/leak", "/out/secret.txt"] {
        let r = get(path).await.expect("req");
        assert_eq!(r.status(), 404, "{path}");
        let text = r.text().await.expect("body");
        assert!(!text.contains("top secret"), "{path}: {text}");
        let body: serde_json::Value = serde_json::from_str(&text).expect("a JSON error");
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
}
