//! The HTTP API for scripts and bots (docs/api.md) over real sockets: bots and their tokens,
//! room scope, revocation, idempotent posting, history pages, webhooks seen live and on
//! resume by `/ws` clients, the core's rules (bans, mutes) applied to bots, and a revocation
//! seen by another node of the same database (with `NATTER_TEST_POSTGRES`).

use natter_server::Settings;
use natter_testkit::*;
use reqwest::{Client as Http, Response, StatusCode};
use serde_json::{json, Value};

fn http() -> Http {
    Http::new()
}

async fn body(resp: Response) -> Value {
    resp.json().await.unwrap_or(Value::Null)
}

/// Sends `method path` with `token` and an optional JSON body; returns status and body.
async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    json_body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http().request(method, server.http(path)).bearer_auth(token);
    if let Some(b) = json_body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    (status, body(resp).await)
}

async fn post(server: &TestServer, path: &str, token: &str, b: Value) -> (StatusCode, Value) {
    call(server, reqwest::Method::POST, path, token, Some(b)).await
}

async fn get(server: &TestServer, path: &str, token: &str) -> (StatusCode, Value) {
    call(server, reqwest::Method::GET, path, token, None).await
}

async fn delete(server: &TestServer, path: &str, token: &str) -> (StatusCode, Value) {
    call(server, reqwest::Method::DELETE, path, token, None).await
}

/// Makes a bot of `owner`'s; returns (id, name).
async fn make_bot(server: &TestServer, owner: &str) -> (i64, String) {
    let name = unique("bot");
    let (status, b) = post(server, "/api/bots", owner, json!({"name": name})).await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    (b["bot"]["id"].as_i64().expect("bot id"), name)
}

/// A token for the bot, scoped to `rooms`.
async fn make_token(server: &TestServer, owner: &str, bot: i64, rooms: &[i64]) -> String {
    let (status, b) = post(
        server,
        &format!("/api/bots/{bot}/tokens"),
        owner,
        json!({"name": "ci", "rooms": rooms}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let token = b["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("nbt_"));
    token
}

async fn add_to_room(server: &TestServer, owner: &str, room: i64, bot: &str) {
    let (status, b) = post(
        server,
        &format!("/api/rooms/{room}/members"),
        owner,
        json!({"user": bot}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
}

async fn say(
    server: &TestServer,
    token: &str,
    room: i64,
    text: &str,
    id: &str,
) -> (StatusCode, Value) {
    post(
        server,
        &format!("/api/rooms/{room}/messages"),
        token,
        json!({"body": text, "client_id": id}),
    )
    .await
}

#[tokio::test]
async fn a_token_acts_only_in_the_rooms_of_its_scope() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let inside = room_with(&mut ana, &mut []).await;
    let outside = room_with(&mut ana, &mut []).await;
    let (bot, name) = make_bot(&server, &ana.token).await;
    add_to_room(&server, &ana.token, inside, &name).await;
    add_to_room(&server, &ana.token, outside, &name).await;
    let token = make_token(&server, &ana.token, bot, &[inside]).await;

    let (status, rooms) = get(&server, "/api/rooms", &token).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = rooms["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, vec![inside], "only the scope's rooms are listed");

    let (status, sent) = say(&server, &token, inside, "hello from a bot", "b1").await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["message"]["sender"]["name"], name.as_str());
    assert_eq!(sent["message"]["sender"]["bot"], true);
    let live = ana.event_where("message", |m| m["client_id"] == "b1").await;
    assert_eq!(live["body"], "hello from a bot");
    // Its messages say it is a bot, live and in history; a person's say nothing of it.
    assert_eq!(live["sender"]["bot"], true);
    let history = ana.ok("history", json!({"room": inside})).await["messages"].clone();
    let stored = history
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["client_id"] == "b1")
        .cloned()
        .expect("stored");
    assert_eq!(stored["sender"]["bot"], true);
    let mine = ana.say(inside, "and from a person").await;
    assert!(mine["sender"].get("bot").is_none(), "{mine}");

    let (status, refused) = say(&server, &token, outside, "no", "b2").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "forbidden");
    let (status, _) = get(&server, &format!("/api/rooms/{outside}/messages"), &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A room the bot is not in: the core's `not_member` (403); one that does not exist: 404.
    let elsewhere = room_with(&mut ana, &mut []).await;
    let all_rooms = make_token(&server, &ana.token, bot, &[]).await;
    let (status, refused) = say(&server, &all_rooms, elsewhere, "no", "b3").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "not_member");
    let (status, refused) = say(&server, &all_rooms, 999_999, "no", "b4").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    assert_eq!(refused["error"]["code"], "unknown_room");

    // The bot is not "online" for having posted.
    let online = ana.ok("presence.list", json!({})).await;
    assert!(
        !online["online"]
            .as_array()
            .expect("online")
            .iter()
            .any(|u| u["id"] == bot),
        "{online}"
    );
    // Its profile says it is a bot, and so does the member list (a person's says not).
    let profile = ana.ok("profile.get", json!({"user": name})).await;
    assert_eq!(profile["profile"]["bot"], true, "{profile}");
    let members = ana.ok("room.members", json!({"room": inside})).await;
    let bots: Vec<(i64, bool)> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            let id = m["user"]["id"].as_i64().expect("id");
            (id, m["bot"] == true)
        })
        .collect();
    assert!(bots.contains(&(bot, true)), "{members}");
    assert!(bots.contains(&(ana.id(), false)), "{members}");
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let room = room_with(&mut ana, &mut []).await;
    let (bot, name) = make_bot(&server, &ana.token).await;
    add_to_room(&server, &ana.token, room, &name).await;
    let token = make_token(&server, &ana.token, bot, &[]).await;
    let (status, _) = say(&server, &token, room, "one", "r1").await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, list) = get(&server, &format!("/api/bots/{bot}/tokens"), &ana.token).await;
    assert_eq!(status, StatusCode::OK);
    let tokens = list["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].get("token").is_none(), "a token is shown once");
    assert!(tokens[0]["last_used_at"].is_i64(), "its use is recorded");
    let tid = tokens[0]["id"].as_i64().expect("tid");
    let (status, _) = delete(
        &server,
        &format!("/api/bots/{bot}/tokens/{tid}"),
        &ana.token,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, refused) = say(&server, &token, room, "two", "r2").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["error"]["code"], "unauthenticated");
    let (status, _) = get(&server, "/api/rooms", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Revoking it again: 404.
    let (status, _) = delete(
        &server,
        &format!("/api/bots/{bot}/tokens/{tid}"),
        &ana.token,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn posting_is_idempotent_by_client_id_and_history_pages() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let room = room_with(&mut ana, &mut []).await;
    let (bot, name) = make_bot(&server, &ana.token).await;
    add_to_room(&server, &ana.token, room, &name).await;
    let token = make_token(&server, &ana.token, bot, &[room]).await;

    let (first, a) = say(&server, &token, room, "once", "same").await;
    let (again, b) = say(&server, &token, room, "once", "same").await;
    assert_eq!(first, StatusCode::CREATED);
    assert_eq!(again, StatusCode::OK, "a repeat returns the stored message");
    assert_eq!(a["message"]["seq"], b["message"]["seq"]);
    assert_eq!(b["duplicate"], true);

    for i in 0..4 {
        let (status, _) = say(&server, &token, room, &format!("m{i}"), &format!("m{i}")).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, page) = get(
        &server,
        &format!("/api/rooms/{room}/messages?limit=2"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let newest = page["messages"].as_array().expect("messages");
    assert_eq!(newest.len(), 2);
    assert_eq!(page["has_more"], true);
    assert_eq!(newest[1]["body"], "m3");
    let before = newest[0]["seq"].as_i64().expect("seq");
    let (_, older) = get(
        &server,
        &format!("/api/rooms/{room}/messages?limit=100&before={before}"),
        &token,
    )
    .await;
    let bodies: Vec<&str> = older["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        bodies,
        vec!["once", "m0", "m1"],
        "one `once`: the repeat stored nothing"
    );
    assert_eq!(older["has_more"], false);
    let (status, bad) = get(
        &server,
        &format!("/api/rooms/{room}/messages?limit=0"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["code"], "invalid_request");

    // A person's session token works too (no scope).
    let (status, mine) = say(&server, &ana.token, room, "as ana", "a1").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(mine["message"]["sender"]["id"], ana.id());
}

#[tokio::test]
async fn only_owners_manage_their_bots_and_guests_have_none() {
    let server = TestServer::start_with(|s| {
        s.allow_guests = Some(true);
        s.max_bots_per_user = Some(2);
    })
    .await;
    let (ana, _) = server.register("ana").await;
    let (bob, _) = server.register("bob").await;
    let (bot, _) = make_bot(&server, &ana).await;

    let (status, refused) = post(
        &server,
        &format!("/api/bots/{bot}/tokens"),
        &bob,
        json!({"name": "mine now"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "forbidden");
    let (status, _) = delete(&server, &format!("/api/bots/{bot}"), &bob).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, listed) = get(&server, "/api/bots", &bob).await;
    assert_eq!(listed["bots"], json!([]));
    let (status, _) = post(
        &server,
        "/api/bots/424242/tokens",
        &ana,
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A bot's token does not manage bots.
    let token = make_token(&server, &ana, bot, &[]).await;
    let (status, _) = post(&server, "/api/bots", &token, json!({"name": unique("b")})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The limit per owner.
    make_bot(&server, &ana).await;
    let (status, refused) = post(&server, "/api/bots", &ana, json!({"name": unique("b")})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["code"], "limit_reached");

    let guest: Value = http()
        .post(server.http("/api/guest"))
        .json(&json!({"nickname": unique("g")}))
        .send()
        .await
        .expect("guest")
        .json()
        .await
        .expect("json");
    let guest = guest["token"].as_str().expect("token");
    let (status, refused) = post(&server, "/api/bots", guest, json!({"name": unique("b")})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "forbidden");

    // Deleting a bot revokes its tokens.
    let (status, _) = delete(&server, &format!("/api/bots/{bot}"), &ana).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = get(&server, "/api/rooms", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_banned_or_muted_bot_gets_the_cores_errors() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let room = room_with(&mut ana, &mut []).await;
    let (bot, name) = make_bot(&server, &ana.token).await;
    add_to_room(&server, &ana.token, room, &name).await;
    let token = make_token(&server, &ana.token, bot, &[]).await;

    ana.ok(
        "room.mute",
        json!({"room": room, "user": name, "client_id": "m", "minutes": 5}),
    )
    .await;
    let (status, refused) = say(&server, &token, room, "hush", "x1").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "muted");

    ana.ok(
        "room.ban",
        json!({"room": room, "user": name, "client_id": "b"}),
    )
    .await;
    let (status, refused) = say(&server, &token, room, "hello?", "x2").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "not_member");
    // Nor can its owner add it back.
    let (status, refused) = post(
        &server,
        &format!("/api/rooms/{room}/members"),
        &ana.token,
        json!({"user": name}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "banned");
}

#[tokio::test]
async fn a_webhook_posts_live_once_per_key_until_deleted() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;

    // Only the room's owners and moderators manage its webhooks.
    let (status, _) = post(
        &server,
        &format!("/api/rooms/{room}/webhooks"),
        &bob.token,
        json!({"name": "CI"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, hook) = post(
        &server,
        &format!("/api/rooms/{room}/webhooks"),
        &ana.token,
        json!({"name": "CI"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let url = hook["url"].as_str().expect("url").to_string();
    assert!(url.starts_with("/hooks/nwh_"), "{url}");

    // Live, Slack's JSON.
    let resp = http()
        .post(server.http(&url))
        .json(&json!({"text": "build passed", "username": "ignored"}))
        .send()
        .await
        .expect("hook");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let live = bob
        .event_where("message", |m| m["body"] == "build passed")
        .await;
    let seq = live["seq"].as_i64().expect("seq");

    // Slack's form variant, with an idempotency key, twice: one message.
    let mut seqs = Vec::new();
    for expected in [StatusCode::CREATED, StatusCode::OK] {
        let resp = http()
            .post(server.http(&url))
            .header("Idempotency-Key", "deploy-7")
            .form(&[("payload", r#"{"text": "deployed"}"#)])
            .send()
            .await
            .expect("hook form");
        assert_eq!(resp.status(), expected);
        seqs.push(body(resp).await["message"]["seq"].clone());
    }
    assert_eq!(seqs[0], seqs[1]);
    assert_eq!(seqs[0], seq + 1);
    bob.event_where("message", |m| m["body"] == "deployed")
        .await;
    // Not JSON, not a form: 415.
    let resp = http()
        .post(server.http(&url))
        .header("content-type", "text/plain")
        .body("text")
        .send()
        .await
        .expect("hook");
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Wrong secret: 404.
    let resp = http()
        .post(server.http("/hooks/nwh_not-a-secret"))
        .json(&json!({"text": "x"}))
        .send()
        .await
        .expect("hook");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Listed (no secret), deleted: its URL is dead.
    let (_, list) = get(&server, &format!("/api/rooms/{room}/webhooks"), &ana.token).await;
    let hooks = list["webhooks"].as_array().expect("webhooks");
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].get("url").is_none());
    let hid = hooks[0]["id"].as_i64().expect("id");
    let (status, _) = delete(
        &server,
        &format!("/api/rooms/{room}/webhooks/{hid}"),
        &ana.token,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let resp = http()
        .post(server.http(&url))
        .json(&json!({"text": "x"}))
        .send()
        .await
        .expect("hook");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn webhook_posts_reach_a_client_that_resumes() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let (bob_token, _) = server.register("bob").await;
    let mut bob = Client::connect(server.addr, &bob_token, None).await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let (_, hook) = post(
        &server,
        &format!("/api/rooms/{room}/webhooks"),
        &ana.token,
        json!({"name": "alerts"}),
    )
    .await;
    let url = hook["url"].as_str().expect("url").to_string();
    let hook_post = |text: &'static str| {
        let url = server.http(&url);
        async move {
            http()
                .post(url)
                .json(&json!({"text": text}))
                .send()
                .await
                .expect("hook")
                .status()
        }
    };
    assert_eq!(hook_post("first").await, StatusCode::CREATED);
    let first = bob.event_where("message", |m| m["body"] == "first").await;
    let seen = first["seq"].as_i64().expect("seq");
    bob.ws.close(None).await.expect("close");
    drop(bob);

    assert_eq!(hook_post("while away").await, StatusCode::CREATED);
    let mut bob = Client::connect(
        server.addr,
        &bob_token,
        Some(json!({ room.to_string(): seen })),
    )
    .await;
    let replayed = bob.event_where("message", |m| m["room"] == room).await;
    assert_eq!(replayed["body"], "while away");
    assert_eq!(replayed["seq"], seen + 1);
}

#[tokio::test]
async fn the_api_is_rate_limited_per_token() {
    let server = TestServer::start_with(|s| s.api_per_minute = Some(2)).await;
    let (ana, _) = server.register("ana").await;
    let (bot, _) = make_bot(&server, &ana).await;
    let token = make_token(&server, &ana, bot, &[]).await;
    let other = make_token(&server, &ana, bot, &[]).await;
    for _ in 0..2 {
        let (status, _) = get(&server, "/api/rooms", &token).await;
        assert_eq!(status, StatusCode::OK);
    }
    let resp = http()
        .get(server.http("/api/rooms"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    let refused = body(resp).await;
    assert_eq!(refused["error"]["code"], "rate_limited");
    assert!(refused["error"]["retry_after_ms"]
        .as_u64()
        .is_some_and(|ms| ms > 0));
    let (status, _) = get(&server, "/api/rooms", &other).await;
    assert_eq!(status, StatusCode::OK, "each token has its own bucket");
}

/// Two nodes on one PostgreSQL database and no shared broker: a token revoked through one is
/// refused by the other at its next request (tokens are looked up in the store every time;
/// no event has to reach the other node).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_token_is_refused_on_every_node() {
    let Some(scratch) =
        ScratchDatabase::for_test("a_revoked_token_is_refused_on_every_node", "natter_t_bots")
    else {
        return;
    };
    let node = |url: String| async move {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = Settings {
            database: Some(url),
            broker: None,
            redis_prefix: None,
            ..settings(tmp.path())
        };
        (TestServer::spawn(s, None).await, tmp)
    };
    let (mut one, _dir_one) = node(scratch.url.clone()).await;
    let (mut two, _dir_two) = node(scratch.url.clone()).await;
    let (ana, _) = one.register("ana").await;
    let (bot, _) = make_bot(&one, &ana).await;
    let token = make_token(&one, &ana, bot, &[]).await;
    let (status, _) = get(&two, "/api/rooms", &token).await;
    assert_eq!(status, StatusCode::OK, "the other node knows the token");
    let (_, list) = get(&one, &format!("/api/bots/{bot}/tokens"), &ana).await;
    let tid = list["tokens"][0]["id"].as_i64().expect("tid");
    let (status, _) = delete(&one, &format!("/api/bots/{bot}/tokens/{tid}"), &ana).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = get(&two, "/api/rooms", &token).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "refused by the other node at once"
    );
    one.stop().await;
    two.stop().await;
    scratch.drop().await;
}
