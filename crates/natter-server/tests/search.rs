//! `search` end to end over real sockets and `GET /api/search`: only what the searcher may
//! read (their rooms and DMs; public rooms when asked; never someone else's DM), never a
//! deleted text, an edited message by its current text, CJK substrings, filters, pages.
//! CI runs it again on PostgreSQL + Redis.

use natter_testkit::{room_with, unique, Client, TestServer};
use serde_json::{json, Value};

fn bodies(reply: &Value) -> Vec<String> {
    reply["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["message"]["body"].as_str().expect("body").to_string())
        .collect()
}

/// `GET url` with `token` as the bearer.
async fn get_as(url: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

async fn edit(c: &mut Client, room: i64, seq: &Value, body: &str) {
    c.ok(
        "message.edit",
        json!({"room": room, "seq": seq, "body": body, "client_id": unique("e")}),
    )
    .await;
}

#[tokio::test]
async fn search_finds_what_the_searcher_may_read_and_nothing_else() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut eve = server.user("eve").await;
    let shared = room_with(&mut ana, &mut [&mut bob]).await;
    let bobs = room_with(&mut bob, &mut []).await;
    let word = unique("zebra").replace('-', "");
    ana.say(shared, &format!("the {word} release is out")).await;
    let gone = bob.say(shared, &format!("{word} secret plans")).await;
    bob.ok(
        "message.delete",
        json!({"room": shared, "seq": gone["seq"], "client_id": unique("d")}),
    )
    .await;
    let old = bob.say(shared, "an old text").await;
    edit(&mut bob, shared, &old["seq"], &format!("now about {word}")).await;
    bob.say(bobs, &format!("{word} in bob's own room")).await;
    let dm = bob.ok("dm.open", json!({"user": eve.name()})).await["room"]["id"].clone();
    bob.say(
        dm.as_i64().expect("dm"),
        &format!("{word} between bob and eve"),
    )
    .await;
    ana.say(shared, "東京で会いましょう").await;

    let found = ana.ok("search", json!({"query": word})).await;
    assert_eq!(
        bodies(&found),
        vec![
            format!("now about {word}"),
            format!("the {word} release is out")
        ],
        "newest first; the edit's text; not the deleted one, not bob's room, not a DM of others"
    );
    let hit: String = found["results"][0]["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .filter(|p| p["hit"] == true)
        .map(|p| p["text"].as_str().expect("text"))
        .collect();
    assert_eq!(hit, word, "the hit is marked");
    assert_eq!(found["results"][0]["room"]["id"], shared);
    let public = ana
        .ok("search", json!({"query": word, "public": true}))
        .await;
    assert_eq!(
        bodies(&public).len(),
        3,
        "bob's public room too, still no DM"
    );
    assert!(
        ana.ok("search", json!({"query": "old text"})).await["results"]
            .as_array()
            .expect("r")
            .is_empty()
    );
    let cjk = ana.ok("search", json!({"query": "会い"})).await;
    assert_eq!(bodies(&cjk), vec!["東京で会いましょう"]);
    let from = ana
        .ok(
            "search",
            json!({"query": format!("{word} from:{}", bob.name())}),
        )
        .await;
    assert_eq!(bodies(&from), vec![format!("now about {word}")]);
    let eve_finds = eve.ok("search", json!({"query": word})).await;
    assert_eq!(
        bodies(&eve_finds),
        vec![format!("{word} between bob and eve")],
        "her own DM"
    );
    assert_eq!(
        ana.fails("search", json!({"query": "from:nobody-at-all"}))
            .await,
        "unknown_user"
    );
    assert_eq!(
        ana.fails("search", json!({"query": "x in:no-such-room"}))
            .await,
        "unknown_room"
    );
    assert_eq!(
        ana.fails("search", json!({"query": "\"open"})).await,
        "invalid_request"
    );
    assert_eq!(
        ana.fails("search", json!({"query": "  "})).await,
        "invalid_request"
    );

    // Pages: one result at a time, by cursor, none twice.
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = ana
            .ok(
                "search",
                json!({"query": word, "limit": 1, "cursor": cursor}),
            )
            .await;
        seen.extend(bodies(&page));
        cursor = page["next"].clone();
        if cursor.is_null() || seen.len() > 5 {
            break;
        }
    }
    assert_eq!(seen.len(), 2);

    // The same over HTTP, for bots.
    let url = server.http(&format!("/api/search?query={word}&limit=5"));
    let r = get_as(&url, &ana.token).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(bodies(&body), bodies(&found));
    let r = reqwest::get(&url).await.expect("req");
    assert_eq!(r.status(), 401);
    let r = get_as(&server.http("/api/search?query=x&limit=500"), &ana.token).await;
    assert_eq!(r.status(), 400);
}

/// `search_per_minute` is one bucket per user over `search` and `GET /api/search` together:
/// with 2, the third search in the minute is refused with `rate_limited` and when to come back,
/// on the socket and (429 with `Retry-After`) over HTTP; another user is not affected.
#[tokio::test]
async fn searches_per_user_are_limited_on_every_path() {
    let server = TestServer::start_with(|s| s.search_per_minute = Some(2)).await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    ana.ok("search", json!({"query": "anything"})).await;
    let url = server.http("/api/search?query=anything");
    let r = get_as(&url, &ana.token).await;
    assert_eq!(r.status(), 200, "the second search, over HTTP");
    let (code, refused) = ana
        .request("search", json!({"query": "anything"}))
        .await
        .expect_err("the third search");
    assert_eq!(code, "rate_limited", "{refused}");
    let wait = refused["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(wait > 20_000 && wait <= 30_000, "{wait}");
    let r = get_as(&url, &ana.token).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some(), "Retry-After");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Bob has his own bucket.
    bob.ok("search", json!({"query": "anything"})).await;
}
