//! Edits, deletes, reactions, thread replies and mentions over real sockets (native `/ws`):
//! every change is an entry of the room's stream, so a client that was offline ends, after
//! `resume`, in exactly the state of one that stayed online, and both match `history`.
//! Authorization and bad input get their documented errors and store nothing. CI runs this
//! suite again on PostgreSQL + Redis (`NATTER_TEST_DATABASE`, `NATTER_TEST_BROKER`).

use natter_testkit::stream::{history_view, View};
use natter_testkit::{room_with, unique, Client, TestServer};
use serde_json::{json, Value};

fn seq(v: &Value) -> i64 {
    v["seq"].as_i64().expect("seq")
}

/// A change request that must be stored: returns its entry.
async fn change(c: &mut Client, kind: &str, mut data: Value) -> Value {
    data["client_id"] = unique("x").into();
    let reply = c.ok(kind, data).await;
    assert_eq!(reply["duplicate"], false, "{kind}");
    reply["entry"].clone()
}

async fn send(c: &mut Client, room: i64, body: &str, extra: Value) -> Value {
    let mut data = json!({"room": room, "body": body, "client_id": unique("c")});
    if let Value::Object(more) = extra {
        for (k, v) in more {
            data[k] = v;
        }
    }
    c.ok("message.send", data).await["message"].clone()
}

#[tokio::test]
async fn an_offline_client_resumes_into_the_state_of_an_online_one() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    let room = room_with(&mut ana, &mut [&mut bob, &mut carol]).await;
    // ana's second tab stays online too.
    let mut ana2 = Client::connect(server.addr, &ana.token, None).await;
    let zero = ana.say(room, "zero").await;
    let mut online = View::default();
    let mut tab = View::default();
    let mut offline = View::default();
    online.follow(&mut ana, room, seq(&zero)).await;
    tab.follow(&mut ana2, room, seq(&zero)).await;
    offline.follow(&mut carol, room, seq(&zero)).await;
    let carol_token = carol.token.clone();
    drop(carol);

    let bob_name = bob.name();
    let m1 = send(&mut ana, room, &format!("helo @{bob_name}"), json!({})).await;
    let m2 = bob.say(room, "second").await;
    change(
        &mut ana,
        "message.edit",
        json!({"room": room, "seq": seq(&m1), "body": format!("hello @{bob_name}")}),
    )
    .await;
    change(
        &mut bob,
        "reaction.add",
        json!({"room": room, "seq": seq(&m1), "emoji": "👍"}),
    )
    .await;
    change(
        &mut ana,
        "reaction.add",
        json!({"room": room, "seq": seq(&m1), "emoji": "👍"}),
    )
    .await;
    change(
        &mut ana,
        "reaction.add",
        json!({"room": room, "seq": seq(&m2), "emoji": "🎉"}),
    )
    .await;
    change(
        &mut ana,
        "reaction.remove",
        json!({"room": room, "seq": seq(&m2), "emoji": "🎉"}),
    )
    .await;
    change(
        &mut ana,
        "reaction.add",
        json!({"room": room, "seq": seq(&m2), "emoji": "👀"}),
    )
    .await;
    let r1 = send(&mut bob, room, "in the thread", json!({"thread": seq(&m1)})).await;
    assert_eq!(r1["replies"], 1);
    let r2 = send(
        &mut ana,
        room,
        "also to the room",
        json!({"thread": seq(&m1), "also_room": true}),
    )
    .await;
    assert_eq!(r2["replies"], 2);
    let m3 = bob.say(room, "oops, wrong room").await;
    change(
        &mut bob,
        "message.delete",
        json!({"room": room, "seq": seq(&m3)}),
    )
    .await;
    change(
        &mut ana,
        "message.edit",
        json!({"room": room, "seq": seq(&zero), "body": "zero, edited"}),
    )
    .await;
    change(
        &mut bob,
        "message.delete",
        json!({"room": room, "seq": seq(&m2)}),
    )
    .await;
    let last = change(
        &mut bob,
        "reaction.add",
        json!({"room": room, "seq": seq(&r1), "emoji": "✅"}),
    )
    .await;
    let last = seq(&last);

    online.follow(&mut ana, room, last).await;
    tab.follow(&mut ana2, room, last).await;
    let mut carol = Client::connect(
        server.addr,
        &carol_token,
        Some(json!({room.to_string(): seq(&zero)})),
    )
    .await;
    offline.follow(&mut carol, room, last).await;

    assert_eq!(
        offline.timeline(),
        online.timeline(),
        "resumed = stayed online"
    );
    assert_eq!(offline.thread(seq(&m1)), online.thread(seq(&m1)));
    assert_eq!(tab.timeline(), online.timeline(), "both tabs agree");
    let current = history_view(&mut carol, room).await;
    assert_eq!(current.timeline(), online.timeline(), "and match history");
    assert_eq!(current.thread(seq(&m1)), online.thread(seq(&m1)));

    let shown = online.timeline();
    let first = &shown[&seq(&m1)];
    assert_eq!(first.body, format!("hello @{bob_name}"));
    assert!(first.edited_at.is_some());
    assert_eq!(first.reactions.len(), 1);
    assert_eq!(first.reactions[0].1.len(), 2, "bob and ana reacted 👍");
    assert_eq!(first.replies, 2);
    assert_eq!(first.mentions, vec![bob.id()]);
    assert!(shown[&seq(&m2)].deleted && shown[&seq(&m2)].reactions.is_empty());
    assert!(
        shown.contains_key(&seq(&r2)) && !shown.contains_key(&seq(&r1)),
        "only also_room replies in the room"
    );
    assert_eq!(
        shown[&seq(&zero)].body,
        "zero, edited",
        "an edit of a message seen before going offline"
    );
    assert_eq!(shown[&seq(&m3)].body, "", "no trace of a deleted text");
}

#[tokio::test]
async fn changes_are_authorized_and_bad_input_stores_nothing() {
    let server = TestServer::start_with(|s| s.max_reactions_per_message = Some(2)).await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut eve = server.user("eve").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let m = ana.say(room, "mine").await;
    let at = |s: i64| json!({"room": room, "seq": s, "client_id": unique("x")});
    let with = |s: i64, k: &str, v: Value| {
        let mut d = at(s);
        d[k] = v;
        d
    };
    // Someone else's message: bob may react, not edit or delete.
    assert_eq!(
        bob.fails("message.edit", with(seq(&m), "body", "hacked".into()))
            .await,
        "forbidden"
    );
    assert_eq!(bob.fails("message.delete", at(seq(&m))).await, "forbidden");
    // A non-member: nothing at all.
    for (kind, data) in [
        ("message.edit", with(seq(&m), "body", "x".into())),
        ("reaction.add", with(seq(&m), "emoji", "👍".into())),
        ("message.edits", json!({"room": room, "seq": seq(&m)})),
        ("history", json!({"room": room, "thread": seq(&m)})),
        (
            "message.send",
            json!({"room": room, "body": "x", "client_id": "e1", "thread": seq(&m)}),
        ),
    ] {
        assert_eq!(eve.fails(kind, data).await, "not_member", "{kind}");
    }
    // Bad input.
    for emoji in ["", "thumbs", ":+1:", "👍👍", "<img src=x onerror=alert(1)>"] {
        assert_eq!(
            ana.fails("reaction.add", with(seq(&m), "emoji", emoji.into()))
                .await,
            "invalid_emoji",
            "{emoji}"
        );
    }
    let long = "x".repeat(4001);
    assert_eq!(
        ana.fails("message.edit", with(seq(&m), "body", long.into()))
            .await,
        "message_too_long"
    );
    assert_eq!(
        ana.fails("message.edit", with(seq(&m), "body", "  ".into()))
            .await,
        "empty_message"
    );
    assert_eq!(
        ana.fails("message.edit", with(999, "body", "x".into()))
            .await,
        "unknown_message"
    );
    let reply = send(&mut bob, room, "reply", json!({"thread": seq(&m)})).await;
    let nested =
        json!({"room": room, "body": "x", "client_id": unique("c"), "thread": seq(&reply)});
    assert_eq!(ana.fails("message.send", nested).await, "invalid_thread");
    assert_eq!(
        ana.fails("history", json!({"room": room, "thread": seq(&reply)}))
            .await,
        "invalid_thread"
    );
    let alone = json!({"room": room, "body": "x", "client_id": unique("c"), "also_room": true});
    assert_eq!(ana.fails("message.send", alone).await, "invalid_request");
    // A reaction flood: two different emoji at most, more of the same are fine.
    change(
        &mut ana,
        "reaction.add",
        with(seq(&m), "emoji", "👍".into()),
    )
    .await;
    change(
        &mut ana,
        "reaction.add",
        with(seq(&m), "emoji", "🎉".into()),
    )
    .await;
    assert_eq!(
        bob.fails("reaction.add", with(seq(&m), "emoji", "🚀".into()))
            .await,
        "too_many_reactions"
    );
    change(
        &mut bob,
        "reaction.add",
        with(seq(&m), "emoji", "👍".into()),
    )
    .await;
    let again = ana
        .ok("reaction.add", with(seq(&m), "emoji", "👍".into()))
        .await;
    assert_eq!(again["entry"], Value::Null, "already so: nothing stored");
    // A change entry is not a message; a retry is stored once.
    let edit_data = with(seq(&m), "body", "mine, edited".into());
    let edit = ana.ok("message.edit", edit_data.clone()).await;
    let retry = ana.ok("message.edit", edit_data).await;
    assert_eq!(retry["duplicate"], true);
    assert_eq!(retry["entry"], edit["entry"]);
    assert_eq!(
        ana.fails(
            "reaction.add",
            with(seq(&edit["entry"]), "emoji", "👍".into())
        )
        .await,
        "unknown_message"
    );
    change(&mut ana, "message.delete", at(seq(&m))).await;
    for (kind, data) in [
        ("message.edit", with(seq(&m), "body", "back".into())),
        ("message.delete", at(seq(&m))),
        ("reaction.add", with(seq(&m), "emoji", "👍".into())),
        ("message.edits", json!({"room": room, "seq": seq(&m)})),
        (
            "message.send",
            json!({"room": room, "body": "x", "client_id": unique("c"), "thread": seq(&m)}),
        ),
    ] {
        assert_eq!(ana.fails(kind, data).await, "message_deleted", "{kind}");
    }
    // Nothing refused took a seq: the next message follows the last stored entry.
    let history = ana.ok("history", json!({"room": room})).await;
    let next = ana.say(room, "after all that").await;
    // After m: the reply, three reactions, the edit, the delete; then this message.
    let stored_entries = 1 + 3 + 1 + 1 + 1;
    assert_eq!(
        seq(&next),
        seq(&m) + stored_entries,
        "refusals spent no seq: {history}"
    );
}

#[tokio::test]
async fn versions_history_around_and_thread_pages() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let room = room_with(&mut ana, &mut []).await;
    let mut seqs = Vec::new();
    for i in 1..=30 {
        seqs.push(seq(&ana.say(room, &format!("m{i}")).await));
    }
    let target = seqs[14];
    for body in ["m15 v2", "m15 v3"] {
        change(
            &mut ana,
            "message.edit",
            json!({"room": room, "seq": target, "body": body}),
        )
        .await;
    }
    let versions = ana
        .ok("message.edits", json!({"room": room, "seq": target}))
        .await;
    let bodies: Vec<&str> = versions["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["body"].as_str().expect("body"))
        .collect();
    assert_eq!(bodies, vec!["m15", "m15 v2", "m15 v3"]);
    let page = ana
        .ok(
            "history",
            json!({"room": room, "around": target, "limit": 10}),
        )
        .await;
    let got: Vec<i64> = page["messages"]
        .as_array()
        .expect("page")
        .iter()
        .map(seq)
        .collect();
    assert_eq!(got, seqs[10..20].to_vec(), "five older with it, five newer");
    assert_eq!(
        (page["has_more"].clone(), page["has_newer"].clone()),
        (json!(true), json!(true))
    );
    let edge = ana
        .ok(
            "history",
            json!({"room": room, "around": seqs[29], "limit": 10}),
        )
        .await;
    assert_eq!(edge["has_newer"], false);
    for i in 0..3 {
        send(
            &mut ana,
            room,
            &format!("reply {i}"),
            json!({"thread": seqs[0]}),
        )
        .await;
    }
    let thread = ana
        .ok(
            "history",
            json!({"room": room, "thread": seqs[0], "limit": 2}),
        )
        .await;
    assert_eq!(thread["parent"]["seq"], seqs[0]);
    assert_eq!(thread["parent"]["replies"], 3);
    assert_eq!(thread["has_more"], true);
    let bodies: Vec<&str> = thread["messages"]
        .as_array()
        .expect("replies")
        .iter()
        .map(|m| m["body"].as_str().expect("body"))
        .collect();
    assert_eq!(bodies, vec!["reply 1", "reply 2"]);
    let newest = ana.ok("history", json!({"room": room, "limit": 1})).await;
    assert_eq!(
        newest["messages"][0]["seq"], seqs[29],
        "thread replies are not in the timeline"
    );
    assert_eq!(
        ana.fails("history", json!({"room": room, "around": 3, "before": 9}))
            .await,
        "invalid_request"
    );
}

#[tokio::test]
async fn mentions_unread_counts_and_notify_levels_follow_the_user() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let ana_name = ana.name();
    let hi = bob.say(room, "hello").await;
    let mention = bob
        .say(room, &format!("@{} have a look", ana_name.to_uppercase()))
        .await;
    assert_eq!(
        mention["mentions"],
        json!([ana.id()]),
        "resolved case-insensitively"
    );
    let everyone = bob.say(room, "@room standup").await;
    assert_eq!(everyone["mentions_room"], true);
    let stranger = bob
        .say(room, "@nobody-here and an e-mail bob@example.org")
        .await;
    assert!(stranger.get("mentions").is_none() && stranger.get("mentions_room").is_none());
    send(
        &mut bob,
        room,
        &format!("@{ana_name} in a thread"),
        json!({"thread": seq(&hi)}),
    )
    .await;
    let dm = ana.ok("dm.open", json!({"user": bob.name()})).await["room"]["id"]
        .as_i64()
        .expect("dm");
    bob.event_where("room_added", |r| r["room"]["id"] == dm)
        .await;
    bob.say(dm, "psst").await;

    let mut tab = Client::connect(server.addr, &ana.token, None).await;
    let rooms = tab.welcome["rooms"].as_array().expect("rooms").clone();
    let counts = |id: i64| {
        let r = rooms.iter().find(|r| r["id"] == id).expect("room");
        (
            r["unread"].clone(),
            r["mentions"].clone(),
            r["notify"].clone(),
        )
    };
    assert_eq!(counts(room), (json!(4), json!(3), json!("mentions")));
    assert_eq!(
        counts(dm),
        (json!(1), json!(1), json!("mentions")),
        "a DM counts as a mention"
    );

    let read = tab
        .ok("room.read", json!({"room": room, "seq": seq(&mention)}))
        .await;
    assert_eq!(
        (read["unread"].clone(), read["mentions"].clone()),
        (json!(2), json!(2))
    );
    let seen = ana.event_where("room_read", |r| r["room"] == room).await;
    assert_eq!(seen["mentions"], 2, "the other tab hears the counts");

    let set = tab
        .ok("room.notify", json!({"room": room, "level": "all"}))
        .await;
    assert_eq!(set, json!({"room": room, "notify": "all"}));
    let heard = ana.event_where("room_notify", |r| r["room"] == room).await;
    assert_eq!(heard["notify"], "all");
    assert_eq!(
        tab.fails("room.notify", json!({"room": room, "level": "loud"}))
            .await,
        "invalid_request"
    );
    let later = Client::connect(server.addr, &ana.token, None).await;
    let r = later.welcome["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["id"] == room)
        .cloned()
        .expect("room");
    assert_eq!(r["notify"], "all", "kept on the server");
}
