//! Room limits end to end over `/ws` (issue 17, point 4): the rooms one user may create
//! (`max_rooms_per_user`, counted in the store, so it holds across a restart), the per-user
//! creation rate (`room_create_per_minute`), and `room.list` pages with a name filter.

use natter_testkit::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use tokio_tungstenite::tungstenite::Message;

fn names(page: &Value) -> Vec<String> {
    page["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter(|r| r["kind"] == "public")
        .map(|r| r["name"].as_str().expect("name").to_string())
        .collect()
}

fn dm_count(page: &Value) -> usize {
    page["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter(|r| r["kind"] == "dm")
        .count()
}

/// Walks every page of `query` (`limit` each); returns the pages' public room names.
async fn walk(c: &mut Client, query: &str, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut data = json!({"query": query, "limit": limit});
        if let Some(a) = &after {
            data["after"] = json!(a);
        }
        let page = c.ok("room.list", data).await;
        pages.push(names(&page));
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => {
                assert!(page["next"].is_null(), "next is a string or null: {page}");
                return pages;
            }
        }
        assert!(pages.len() < 20, "the pages never end");
    }
}

#[tokio::test]
async fn a_user_may_create_only_max_rooms_per_user_rooms_even_after_a_restart() {
    let mut server = TestServer::start_with(|s| s.max_rooms_per_user = Some(3)).await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    for i in 0..3 {
        ana.ok("room.create", json!({"name": format!("cap-ana-{i}")}))
            .await;
    }
    let (code, error) = ana
        .request("room.create", json!({"name": "cap-ana-3"}))
        .await
        .expect_err("the fourth room is refused");
    assert_eq!(code, "limit_reached", "{error}");
    assert!(error["message"].as_str().expect("message").contains('3'));
    assert!(
        error.get("retry_after_ms").is_none(),
        "waiting does not help"
    );
    // The cap is per user; a name taken is still told as such.
    assert_eq!(
        bob.fails("room.create", json!({"name": "CAP-ANA-0"})).await,
        "name_taken"
    );
    let bobs = bob.ok("room.create", json!({"name": "cap-bob"})).await;
    assert_eq!(bobs["room"]["name"], "cap-bob");
    // Joining rooms is not creating them.
    let id = bobs["room"]["id"].as_i64().expect("id");
    ana.ok("room.join", json!({"room": id})).await;

    // Counted in the store: a restart does not reset it.
    let token = ana.token.clone();
    drop(ana);
    server
        .restart_with(|s| s.max_rooms_per_user = Some(3))
        .await;
    let mut ana = Client::connect(server.addr, &token, None).await;
    assert_eq!(
        ana.fails("room.create", json!({"name": "cap-ana-4"})).await,
        "limit_reached"
    );
    // A higher cap lets her go on.
    drop(ana);
    server
        .restart_with(|s| s.max_rooms_per_user = Some(4))
        .await;
    let mut ana = Client::connect(server.addr, &token, None).await;
    ana.ok("room.create", json!({"name": "cap-ana-4"})).await;
    assert_eq!(
        ana.fails("room.create", json!({"name": "cap-ana-5"})).await,
        "limit_reached"
    );
}

#[tokio::test]
async fn room_creation_is_rate_limited_per_user_across_connections() {
    let server = TestServer::start_with(|s| s.room_create_per_minute = Some(2)).await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    ana.ok("room.create", json!({"name": "fast-1"})).await;
    // A second connection of the same user shares her bucket.
    let mut ana_phone = Client::connect(server.addr, &ana.token.clone(), None).await;
    ana_phone.ok("room.create", json!({"name": "fast-2"})).await;
    for c in [&mut ana, &mut ana_phone] {
        let (code, error) = c
            .request("room.create", json!({"name": "fast-3"}))
            .await
            .expect_err("the third creation within a minute is refused");
        assert_eq!(code, "rate_limited", "{error}");
        let wait = error["retry_after_ms"].as_u64().expect("retry_after_ms");
        // 2 per minute: one token every 30 s, and almost none has come back yet.
        assert!((25_000..=30_000).contains(&wait), "retry_after_ms {wait}");
    }
    // Nothing was created, other requests go on, and other users are not slowed.
    let listed = ana.ok("room.list", json!({"query": "fast-"})).await;
    assert_eq!(names(&listed), vec!["fast-1", "fast-2"]);
    ana.ok("ping", json!({})).await;
    for i in 1..=2 {
        bob.ok("room.create", json!({"name": format!("bob-{i}")}))
            .await;
    }
}

/// 120 rooms (and `general`, and a DM): pages of 50, 50, 20 in name order with no room twice
/// and none missed; the filter is a case-insensitive substring; limits out of bounds are
/// `invalid_request`; a request with no data is the first page.
#[tokio::test]
async fn room_list_pages_through_120_rooms_by_name_with_a_filter() {
    let server = TestServer::start_with(|s| s.max_rooms_per_user = Some(1000)).await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    // Created out of name order, in mixed case.
    let mut created = Vec::new();
    for i in (0..120).rev() {
        let name = if i % 3 == 0 {
            format!("Room-{i:03}")
        } else {
            format!("room-{i:03}")
        };
        ana.ok("room.create", json!({"name": name})).await;
        created.push(name);
    }
    bob.ok("room.create", json!({"name": "x_y"})).await;
    bob.ok("room.create", json!({"name": "xzy"})).await;
    bob.ok("dm.open", json!({"user": ana.name()})).await;
    created.sort_by_key(|n| n.to_lowercase());

    // Filtered to the 120: 50, 50, 20, in order, each once.
    let pages = walk(&mut bob, "ROOM-", 50).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![50, 50, 20]
    );
    let all: Vec<String> = pages.concat();
    assert_eq!(all, created, "every room once, in name order");
    assert_eq!(
        all.iter().collect::<HashSet<_>>().len(),
        120,
        "no duplicates"
    );
    for pair in pages.windows(2) {
        assert!(
            pair[0].last().map(|s| s.to_lowercase()) < pair[1].first().map(|s| s.to_lowercase()),
            "each page starts after the last"
        );
    }

    // The first page carries the DMs (not counted in `limit`); later pages do not.
    let first = bob.ok("room.list", json!({"limit": 10})).await;
    assert_eq!(names(&first).len(), 10);
    assert_eq!(dm_count(&first), 1, "bob's DM with ana on the first page");
    let next = first["next"].as_str().expect("next").to_string();
    let second = bob
        .ok("room.list", json!({"limit": 10, "after": next}))
        .await;
    assert_eq!(dm_count(&second), 0, "DMs only on the first page");
    assert!(names(&second)[0].to_lowercase() > names(&first)[9].to_lowercase());
    // With a query, only DMs whose peer's name matches.
    let other = bob.ok("room.list", json!({"query": "room-"})).await;
    assert_eq!(dm_count(&other), 0);
    let peer = bob
        .ok("room.list", json!({"query": ana.name().to_uppercase()}))
        .await;
    assert_eq!(dm_count(&peer), 1);

    // `joined` as each user stands.
    let anas = ana.ok("room.list", json!({"query": "room-00"})).await;
    assert_eq!(names(&anas).len(), 10);
    assert!(anas["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .all(|r| r["joined"] == true));
    let bobs = bob.ok("room.list", json!({"query": "room-00"})).await;
    assert!(bobs["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .all(|r| r["joined"] == false));

    // The filter is a substring, case-insensitive, `_` a plain character.
    assert_eq!(
        names(&bob.ok("room.list", json!({"query": "OM-11"})).await),
        vec![
            "room-110", "Room-111", "room-112", "room-113", "Room-114", "room-115", "room-116",
            "Room-117", "room-118", "room-119"
        ]
    );
    assert_eq!(
        names(&bob.ok("room.list", json!({"query": "x_y"})).await),
        vec!["x_y"]
    );
    let none = bob.ok("room.list", json!({"query": "nothing-here"})).await;
    assert_eq!(names(&none), Vec::<String>::new());
    assert!(none["next"].is_null());

    // Limits: 1 to 100.
    let hundred = bob.ok("room.list", json!({"limit": 100})).await;
    assert_eq!(names(&hundred).len(), 100);
    let one = bob.ok("room.list", json!({"limit": 1})).await;
    assert_eq!(names(&one), vec!["general"]);
    for bad in [
        json!({"limit": 0}),
        json!({"limit": 101}),
        json!({"limit": -1}),
        json!({"limit": "5"}),
        json!({"query": "q".repeat(33)}),
        json!({"after": "a".repeat(65)}),
        json!({"after": 7}),
    ] {
        assert_eq!(
            bob.fails("room.list", bad.clone()).await,
            "invalid_request",
            "{bad}"
        );
    }

    // Every room, unfiltered: `general`, the 120 and two more, 50 a page.
    let everything = walk(&mut bob, "", 50).await;
    assert_eq!(
        everything.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![50, 50, 23]
    );
}

/// A client from before pages (no `data` at all, or `data: null`) gets the first page: 50
/// public rooms in name order, its DMs, and a `next`.
#[tokio::test]
async fn room_list_without_data_is_the_first_page() {
    let server = TestServer::start_with(|s| s.max_rooms_per_user = Some(1000)).await;
    let mut ana = server.user("ana").await;
    let bob = server.user("bob").await;
    for i in 0..60 {
        ana.ok("room.create", json!({"name": format!("old-{i:02}")}))
            .await;
    }
    ana.ok("dm.open", json!({"user": bob.name()})).await;
    ana.send_raw(Message::Text(r#"{"type":"room.list","ref":"bare"}"#.into()))
        .await;
    let bare = ana.reply("bare").await.expect("ok");
    let null = ana.ok("room.list", Value::Null).await;
    for page in [&bare, &null] {
        let listed = names(page);
        assert_eq!(listed.len(), 50);
        assert_eq!(listed[0], "general");
        assert_eq!(listed[1], "old-00");
        assert_eq!(listed[49], "old-48");
        assert_eq!(dm_count(page), 1);
        assert_eq!(page["next"], "old-48");
    }
    let rest = ana
        .ok("room.list", json!({"after": bare["next"].clone()}))
        .await;
    assert_eq!(names(&rest).len(), 11);
    assert_eq!(names(&rest)[0], "old-49");
    assert!(rest["next"].is_null());
}

/// Six connections of one user asking at once, one room below the cap: exactly one room is
/// created, the others are refused (the count and the creation are one step on a node).
#[tokio::test]
async fn creations_at_once_from_many_connections_do_not_pass_the_cap() {
    let server = TestServer::start_with(|s| s.max_rooms_per_user = Some(2)).await;
    let mut ana = server.user("ana").await;
    ana.ok("room.create", json!({"name": "race-0"})).await;
    let mut phones = Vec::new();
    for _ in 0..6 {
        phones.push(Client::connect(server.addr, &ana.token.clone(), None).await);
    }
    let mut refs = Vec::new();
    for (i, phone) in phones.iter_mut().enumerate() {
        refs.push(
            phone
                .send_request("room.create", json!({"name": format!("race-{}", i + 1)}))
                .await,
        );
    }
    let mut created = 0;
    for (phone, r) in phones.iter_mut().zip(&refs) {
        match phone.reply(r).await {
            Ok(_) => created += 1,
            Err((code, error)) => assert_eq!(code, "limit_reached", "{error}"),
        }
    }
    assert_eq!(created, 1, "one room below the cap: one creation");
    let listed = ana.ok("room.list", json!({"query": "race-"})).await;
    assert_eq!(names(&listed).len(), 2);
}
