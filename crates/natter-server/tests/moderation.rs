//! Private rooms, room settings, roles and moderation over real sockets (native `/ws`), as
//! docs/protocol.md section 4 ("Roles and moderation") says: every room event is an entry of
//! the room's stream, so a client that was offline ends, after `resume`, in the state of one
//! that stayed online; every request is checked against the documented rank rules (the
//! authorization matrix below); a kicked member stops receiving at once; a deactivated
//! account is closed with 4010 and cannot sign in. CI runs this suite again on PostgreSQL +
//! Redis (`NATTER_TEST_DATABASE`, `NATTER_TEST_BROKER`); `cluster.rs` runs the matrix's
//! cross-node rules over two nodes.

use natter_testkit::stream::{history_view, View};
use natter_testkit::{room_with, unique, Client, TestServer};
use serde_json::{json, Value};

fn id(c: &Client) -> i64 {
    c.id()
}

fn seq(v: &Value) -> i64 {
    v["seq"].as_i64().expect("seq")
}

/// A room request that stores a room event: returns the entry.
async fn event(c: &mut Client, kind: &str, mut data: Value) -> Value {
    data["client_id"] = unique("m").into();
    let reply = c.ok(kind, data).await;
    assert_eq!(reply["duplicate"], false, "{kind}");
    assert!(reply["entry"].is_object(), "{kind} stored nothing: {reply}");
    reply["entry"].clone()
}

/// The code a room request fails with (a fresh `client_id` added).
async fn refused(c: &mut Client, kind: &str, mut data: Value) -> String {
    if data.get("client_id").is_none() {
        data["client_id"] = unique("m").into();
    }
    c.fails(kind, data).await
}

#[tokio::test]
async fn room_events_resume_into_the_state_of_an_online_client() {
    let server = TestServer::start().await;
    let _admin = server.user("admin").await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    let mut dave = server.user("dave").await;
    let mut erin = server.user("erin").await;
    let room = room_with(&mut ana, &mut [&mut bob, &mut carol, &mut dave]).await;
    let first = ana.say(room, "zero").await;
    let mut online = View::default();
    let mut offline = View::default();
    online.follow(&mut ana, room, seq(&first)).await;
    offline.follow(&mut carol, room, seq(&first)).await;
    // The two saw different joins before `first` (ana all three, carol dave's).
    online.from_here();
    offline.from_here();
    let carol_token = carol.token.clone();
    drop(carol);

    event(
        &mut ana,
        "room.update",
        json!({"room": room, "topic": "Ship it on Friday", "description": "Release talk"}),
    )
    .await;
    event(
        &mut ana,
        "room.role",
        json!({"room": room, "user": bob.name(), "role": "moderator"}),
    )
    .await;
    let muted = event(
        &mut bob,
        "room.mute",
        json!({"room": room, "user": dave.name(), "minutes": 5}),
    )
    .await;
    assert_eq!(muted["change"]["op"], "mute");
    assert_eq!(muted["sender"]["id"], id(&bob));
    let code = dave
        .fails(
            "message.send",
            json!({"room": room, "body": "let me speak", "client_id": unique("c")}),
        )
        .await;
    assert_eq!(code, "muted");
    let ban = event(
        &mut bob,
        "room.ban",
        json!({"room": room, "user": dave.name(), "reason": "spam"}),
    )
    .await;
    // dave sees his ban, then leaves the room on every connection.
    let seen = dave
        .event_where("room_event", |e| e["change"]["op"] == "ban")
        .await;
    assert_eq!(seen["change"]["reason"], "spam");
    assert_eq!(dave.event("room_removed").await["room"], room);
    assert_eq!(
        dave.fails("room.join", json!({"room": room})).await,
        "banned"
    );
    event(
        &mut ana,
        "room.update",
        json!({"room": room, "name": unique("renamed")}),
    )
    .await;
    // A newcomer joins, speaks and leaves: two room events around the message.
    erin.ok("room.join", json!({"room": room})).await;
    let hello = erin.say(room, "hi all").await;
    erin.ok("room.leave", json!({"room": room})).await;
    let left = erin
        .event_where("room_event", |e| e["change"]["op"] == "leave")
        .await;
    assert_eq!(left["sender"]["id"], id(&erin));
    assert_eq!(seq(&left), seq(&hello) + 1);
    let last = ana.say(room, "after the storm").await;
    assert!(seq(&last) > seq(&ban));
    online.follow(&mut ana, room, seq(&last)).await;

    let mut carol = Client::connect(
        server.addr,
        &carol_token,
        Some(json!({ room.to_string(): offline.last_seq })),
    )
    .await;
    offline.follow(&mut carol, room, seq(&last)).await;
    assert_eq!(offline, online, "resumed and online views differ");
    assert_eq!(online.room.topic, "Ship it on Friday");
    assert_eq!(
        online.room.roles.get(&id(&bob)).map(String::as_str),
        Some("moderator")
    );
    assert!(online.room.banned.contains(&id(&dave)));
    assert_eq!(online.room.members.get(&id(&dave)), Some(&false));
    assert_eq!(online.room.members.get(&id(&erin)), Some(&false));
    assert_eq!(online.timeline()[&seq(&hello)].body, "hi all");
    // A reload shows the same: `history` with `events` has every room event the online
    // client saw, in order, among the same messages.
    let current = history_view(&mut carol, room).await;
    assert_eq!(current.events_after(seq(&first)), online.events);
    assert_eq!(current.timeline(), online.timeline());
    assert!(online.events.iter().any(|(_, op)| op == "ban"));

    // The server's own state agrees with what the stream built.
    let joined = carol.ok("room.join", json!({"room": room})).await["room"].clone();
    assert_eq!(joined["topic"], "Ship it on Friday");
    assert_eq!(joined["description"], "Release talk");
    assert_eq!(
        Some(joined["name"].as_str().expect("name").to_string()),
        online.room.name
    );
    let bans = bob.ok("room.bans", json!({"room": room})).await["bans"].clone();
    assert_eq!(bans.as_array().map(Vec::len), Some(1));
    assert_eq!(bans[0]["user"]["id"], id(&dave));
    assert_eq!(bans[0]["by"]["id"], id(&bob));
    let members = ana.ok("room.members", json!({"room": room})).await["members"].clone();
    assert!(!members
        .as_array()
        .expect("members")
        .iter()
        .any(|m| m["user"]["id"] == id(&dave)));

    // A retry of a room event is stored once.
    let cid = unique("m");
    let data = json!({"room": room, "user": dave.name(), "client_id": cid});
    let unbanned = ana.ok("room.unban", data.clone()).await;
    let again = ana.ok("room.unban", data).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["entry"]["seq"], unbanned["entry"]["seq"]);
    dave.ok("room.join", json!({"room": room})).await;
}

/// Joins and leaves are room events (`join`, `leave`), entries of the stream like messages:
/// stored with the membership change, seen live and replayed by `resume`, never stored twice (joining
/// a room one is in, leaving one one is not in), refused for the banned, and not written to
/// the audit log (no one acted on anyone else).
#[tokio::test]
async fn joins_and_leaves_are_entries_of_the_rooms_stream() {
    let server = TestServer::start().await;
    let mut admin = server.user("admin").await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    let room = room_with(&mut ana, &mut []).await;

    let joined = bob.ok("room.join", json!({"room": room})).await["room"].clone();
    let entry = ana.event_where("room_event", |e| e["room"] == room).await;
    assert_eq!(entry["change"]["op"], "join");
    assert_eq!(entry["change"]["user"]["id"], id(&bob));
    assert_eq!(entry["sender"]["id"], id(&bob));
    assert_eq!(entry["body"], "");
    // The joiner's room already counts its own join; `member_joined` follows the entry.
    assert_eq!(joined["last_seq"], entry["seq"]);
    let notice = ana
        .event_where("member_joined", |e| {
            e["room"] == room && e["user"]["id"] == id(&bob)
        })
        .await;
    assert_eq!(notice["member_count"], 2);

    // Joining again stores nothing: the room's last seq stays.
    let again = bob.ok("room.join", json!({"room": room})).await["room"].clone();
    assert_eq!(again["last_seq"], entry["seq"]);
    let said = bob.say(room, "hello").await;
    assert_eq!(seq(&said), seq(&entry) + 1);

    bob.ok("room.leave", json!({"room": room})).await;
    let left = ana.event_where("room_event", |e| e["room"] == room).await;
    assert_eq!(left["change"]["op"], "leave");
    assert_eq!(left["change"]["user"]["id"], id(&bob));
    assert_eq!(seq(&left), seq(&said) + 1);
    // The leaver's own connection sees its leave before `room_removed`.
    let own = bob
        .event_where("room_event", |e| {
            e["room"] == room && e["change"]["op"] == "leave"
        })
        .await;
    assert_eq!(own["seq"], left["seq"]);
    assert_eq!(bob.event("room_removed").await["room"], room);
    assert_eq!(
        bob.fails("room.leave", json!({"room": room})).await,
        "not_member"
    );

    // A banned user's join is refused and stores nothing.
    carol.ok("room.join", json!({"room": room})).await;
    let ban = event(
        &mut ana,
        "room.ban",
        json!({"room": room, "user": carol.name()}),
    )
    .await;
    assert_eq!(
        carol.fails("room.join", json!({"room": room})).await,
        "banned"
    );
    let last = ana.say(room, "after").await;
    assert_eq!(seq(&last), seq(&ban) + 1);

    // A resume from the start replays them, in order, as entries.
    let mut replay = View::default();
    let mut again = Client::connect(
        server.addr,
        &ana.token,
        Some(json!({ room.to_string(): 0 })),
    )
    .await;
    replay.follow(&mut again, room, seq(&last)).await;
    let members = [(id(&bob), false), (id(&carol), false)];
    assert_eq!(replay.room.members, members.into_iter().collect());
    assert!(replay.room.banned.contains(&id(&carol)));
    let bodies: Vec<String> = replay.timeline().into_values().map(|m| m.body).collect();
    assert_eq!(bodies, ["hello", "after"]);
    // Only the ban is in the audit log.
    let audit = admin.ok("admin.audit", json!({})).await["entries"].clone();
    let actions: Vec<&str> = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter(|a| a["room"] == room)
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(actions, ["ban"]);
}

#[tokio::test]
async fn private_rooms_are_invisible_to_non_members_and_joined_by_invitation() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut eve = server.user("eve").await;
    let name = unique("secret");
    let created = ana
        .ok("room.create", json!({"name": name, "private": true}))
        .await["room"]
        .clone();
    assert_eq!(created["kind"], "private");
    assert_eq!(created["role"], "owner");
    let room = created["id"].as_i64().expect("id");
    ana.say(room, "the launch is on the 9th").await;

    // eve learns nothing: not listed, not searchable, every request is `unknown_room`.
    let list = eve.ok("room.list", json!({"query": name})).await;
    assert_eq!(list["rooms"], json!([]));
    let found = eve
        .ok("search", json!({"query": "launch", "public": true}))
        .await;
    assert_eq!(found["results"], json!([]));
    for (kind, data) in [
        ("room.join", json!({"room": room})),
        ("room.members", json!({"room": room})),
        ("history", json!({"room": room})),
        ("room.bans", json!({"room": room})),
        ("room.invite", json!({"room": room, "user": bob.name()})),
        (
            "message.send",
            json!({"room": room, "body": "hi", "client_id": unique("c")}),
        ),
    ] {
        assert_eq!(eve.fails(kind, data).await, "unknown_room", "{kind}");
    }
    assert_eq!(
        refused(
            &mut eve,
            "room.kick",
            json!({"room": room, "user": ana.name()})
        )
        .await,
        "unknown_room"
    );
    // Its name is not taken: not for a private room, not for a public one.
    eve.ok("room.create", json!({"name": name, "private": true}))
        .await;
    eve.ok("room.create", json!({"name": name})).await;

    // bob is invited, sees it, and joins.
    ana.ok("room.invite", json!({"room": room, "user": bob.name()}))
        .await;
    let invited = bob.event("room_invited").await;
    assert_eq!(invited["room"], room);
    assert_eq!(invited["name"], name.as_str());
    assert_eq!(invited["by"]["id"], id(&ana));
    let pending = bob.ok("invite.list", json!({})).await["invites"].clone();
    assert_eq!(pending[0]["room"], room);
    let joined = bob.ok("room.join", json!({"room": room})).await["room"].clone();
    assert_eq!(joined["role"], "member");
    assert_eq!(bob.ok("invite.list", json!({})).await["invites"], json!([]));
    let history = bob.ok("history", json!({"room": room})).await;
    assert_eq!(history["messages"][0]["body"], "the launch is on the 9th");
    let mine = bob.ok("room.list", json!({"query": name})).await["rooms"].clone();
    assert!(mine
        .as_array()
        .expect("rooms")
        .iter()
        .any(|r| r["id"] == room && r["kind"] == "private"));

    // eve, invited, declines: then she is a stranger again.
    bob.ok("room.invite", json!({"room": room, "user": eve.name()}))
        .await;
    eve.event("room_invited").await;
    eve.ok("invite.decline", json!({"room": room})).await;
    assert_eq!(
        eve.fails("room.join", json!({"room": room})).await,
        "unknown_room"
    );
    assert_eq!(
        eve.fails("invite.decline", json!({"room": room})).await,
        "unknown_room"
    );
    // Leaving takes a new invitation to come back.
    bob.ok("room.leave", json!({"room": room})).await;
    assert_eq!(
        bob.fails("room.join", json!({"room": room})).await,
        "unknown_room"
    );
    assert_eq!(
        ana.fails(
            "room.invite",
            json!({"room": general(&ana), "user": bob.name()})
        )
        .await,
        "invalid_request"
    );
}

fn general(c: &Client) -> i64 {
    natter_testkit::general(c)
}

#[tokio::test]
async fn a_kicked_member_stops_receiving_at_once() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    let room = room_with(&mut ana, &mut [&mut bob, &mut carol]).await;
    let mut bob2 = Client::connect(server.addr, &bob.token, None).await;
    let kick = event(
        &mut ana,
        "room.kick",
        json!({"room": room, "user": bob.name(), "reason": "off topic"}),
    )
    .await;
    for b in [&mut bob, &mut bob2] {
        let seen = b
            .event_where("room_event", |e| e["change"]["op"] == "kick")
            .await;
        assert_eq!(seen["seq"], kick["seq"]);
        assert_eq!(b.event("room_removed").await["room"], room);
    }
    let after = ana.say(room, "bob cannot see this").await;
    carol
        .event_where("message", |m| m["seq"] == after["seq"])
        .await;
    // A ping's reply comes after anything queued for bob before it.
    bob.ok("ping", json!({})).await;
    assert!(
        !bob.events
            .iter()
            .any(|e| e["type"] == "message" && e["data"]["room"] == room),
        "a kicked member got a message of the room"
    );
    assert_eq!(
        bob.fails(
            "message.send",
            json!({"room": room, "body": "hey", "client_id": unique("c")})
        )
        .await,
        "not_member"
    );
    // Unlike a ban, a kick lets him back in.
    bob.ok("room.join", json!({"room": room})).await;
}

#[tokio::test]
async fn mutes_and_archives_make_a_room_read_only() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let target = bob.say(room, "before").await;
    event(
        &mut ana,
        "room.mute",
        json!({"room": room, "user": bob.name(), "minutes": 10}),
    )
    .await;
    bob.event_where("room_event", |e| e["change"]["op"] == "mute")
        .await;
    let (code, error) = bob
        .request(
            "message.send",
            json!({"room": room, "body": "hey", "client_id": unique("c")}),
        )
        .await
        .expect_err("muted");
    assert_eq!(code, "muted");
    let wait = error["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(wait > 9 * 60_000 && wait <= 10 * 60_000, "{wait}");
    // A new connection learns the mute from its rooms, and the members list gives roles.
    let again = Client::connect(server.addr, &bob.token, None).await;
    let mine = again.welcome["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["id"] == room)
        .cloned()
        .expect("room");
    assert!(mine["muted_until"].as_i64().expect("muted_until") > 0);
    assert_eq!(mine["role"], "member");
    let members = ana.ok("room.members", json!({"room": room})).await["members"].clone();
    let roles: Vec<&str> = members
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["role"].as_str().unwrap_or_default())
        .collect();
    assert!(
        roles.contains(&"owner") && roles.contains(&"member"),
        "{roles:?}"
    );
    for (kind, data) in [
        (
            "message.edit",
            json!({"room": room, "seq": seq(&target), "body": "edited"}),
        ),
        (
            "reaction.add",
            json!({"room": room, "seq": seq(&target), "emoji": "👍"}),
        ),
    ] {
        assert_eq!(refused(&mut bob, kind, data).await, "muted", "{kind}");
    }
    // A muted member may still delete his own message.
    event(
        &mut bob,
        "message.delete",
        json!({"room": room, "seq": seq(&target)}),
    )
    .await;
    event(
        &mut ana,
        "room.unmute",
        json!({"room": room, "user": bob.name()}),
    )
    .await;
    bob.event_where("room_event", |e| e["change"]["op"] == "unmute")
        .await;
    let kept = bob.say(room, "archive me").await;

    // Archived: read-only for everyone, out of the default list, still searchable.
    event(
        &mut ana,
        "room.update",
        json!({"room": room, "archived": true}),
    )
    .await;
    bob.event_where("room_event", |e| e["change"]["archived"] == true)
        .await;
    for c in [&mut ana, &mut bob] {
        assert_eq!(
            c.fails(
                "message.send",
                json!({"room": room, "body": "hey", "client_id": unique("c")})
            )
            .await,
            "room_archived"
        );
    }
    let active = bob.ok("room.list", json!({})).await["rooms"].clone();
    assert!(!active
        .as_array()
        .expect("rooms")
        .iter()
        .any(|r| r["id"] == room));
    let archived = bob.ok("room.list", json!({"archived": true})).await["rooms"].clone();
    assert!(archived
        .as_array()
        .expect("rooms")
        .iter()
        .any(|r| r["id"] == room && r["archived"] == true));
    let found = bob.ok("search", json!({"query": "archive"})).await["results"].clone();
    assert_eq!(found[0]["message"]["seq"], kept["seq"]);
    // Only an owner archives; unarchiving opens it again.
    event(
        &mut ana,
        "room.role",
        json!({"room": room, "user": bob.name(), "role": "moderator"}),
    )
    .await;
    assert_eq!(
        refused(
            &mut bob,
            "room.update",
            json!({"room": room, "archived": false})
        )
        .await,
        "forbidden"
    );
    event(
        &mut ana,
        "room.update",
        json!({"room": room, "archived": false}),
    )
    .await;
    bob.event_where("room_event", |e| e["change"]["archived"] == false)
        .await;
    bob.say(room, "open again").await;
}

#[tokio::test]
async fn moderators_delete_messages_of_lower_roles_and_the_audit_log_keeps_it() {
    let server = TestServer::start().await;
    let mut admin = server.user("admin").await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    let room = room_with(&mut ana, &mut [&mut bob, &mut carol, &mut admin]).await;
    event(
        &mut ana,
        "room.role",
        json!({"room": room, "user": bob.name(), "role": "moderator"}),
    )
    .await;
    let spam = carol.say(room, "buy now").await;
    let owners = ana.say(room, "owner's words").await;
    // A member deletes only his own; a moderator a member's, not an owner's.
    assert_eq!(
        refused(
            &mut carol,
            "message.delete",
            json!({"room": room, "seq": seq(&owners)})
        )
        .await,
        "forbidden"
    );
    assert_eq!(
        refused(
            &mut bob,
            "message.delete",
            json!({"room": room, "seq": seq(&owners)})
        )
        .await,
        "forbidden"
    );
    let deleted = event(
        &mut bob,
        "message.delete",
        json!({"room": room, "seq": seq(&spam)}),
    )
    .await;
    assert_eq!(deleted["change"]["target"], spam["seq"]);
    // The admin may delete the owner's.
    event(
        &mut admin,
        "message.delete",
        json!({"room": room, "seq": seq(&owners)}),
    )
    .await;

    let log = admin.ok("admin.audit", json!({"limit": 10})).await;
    let entries = log["entries"].as_array().expect("entries").clone();
    let actions: Vec<(&str, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default(),
                e["actor"]["id"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("delete", id(&admin)),
            ("delete", id(&bob)),
            ("role", id(&ana))
        ],
        "newest first"
    );
    assert_eq!(entries[1]["target"]["id"], id(&carol));
    assert_eq!(entries[1]["room"], room);
    assert_eq!(
        serde_json::from_str::<Value>(entries[1]["detail"].as_str().expect("detail"))
            .expect("json"),
        json!({"seq": seq(&spam)})
    );
    let older = admin.ok("admin.audit", json!({"limit": 2})).await["next"].clone();
    let page = admin
        .ok("admin.audit", json!({"limit": 2, "before": older}))
        .await;
    assert_eq!(page["entries"][0]["action"], "role");
    assert_eq!(ana.fails("admin.audit", json!({})).await, "forbidden");
}

#[tokio::test]
async fn a_deactivated_account_is_closed_and_cannot_sign_in() {
    let server = TestServer::start().await;
    let mut admin = server.user("admin").await;
    let mut ana = server.user("ana").await;
    let (bob_token, bob_user) = server.register("bob").await;
    let bob_name = bob_user["name"].as_str().expect("name").to_string();
    let mut bob = Client::connect(server.addr, &bob_token, None).await;
    let room = general(&ana);
    let said = bob.say(room, "I was here").await;

    assert_eq!(
        ana.fails("admin.deactivate", json!({"user": bob_name}))
            .await,
        "forbidden"
    );
    admin
        .ok("admin.deactivate", json!({"user": bob_name}))
        .await;
    assert_eq!(bob.closed().await, Some(4010));
    let login = reqwest::Client::new()
        .post(server.http("/api/login"))
        .json(&json!({"username": bob_name, "password": "correct horse"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 403);
    let body: Value = login.json().await.expect("json");
    assert_eq!(body["error"]["code"], "account_deactivated");
    let Err((failure, _)) = Client::try_connect(server.addr, &bob_token, None, true).await else {
        panic!("the old token still works");
    };
    assert_eq!(failure, "unauthenticated");
    // His messages stay, under his name.
    let history = ana.ok("history", json!({"room": room})).await;
    let kept = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["seq"] == said["seq"])
        .cloned()
        .expect("kept");
    assert_eq!(kept["sender"]["name"], bob_name.as_str());
    let audit = admin.ok("admin.audit", json!({})).await;
    assert_eq!(audit["entries"][0]["action"], "deactivate");
    // Admin grants go through the same door.
    admin
        .ok(
            "admin.set_admin",
            json!({"user": ana.name(), "admin": true}),
        )
        .await;
    ana.ok("admin.audit", json!({})).await;
    assert_eq!(
        ana.fails(
            "admin.set_admin",
            json!({"user": ana.name(), "admin": false})
        )
        .await,
        "invalid_request"
    );
}

/// Who may do what (docs/protocol.md section 4, "Roles and moderation"): each request, as
/// each role, gets the documented outcome, in a public and in a private room. Every allowed
/// action acts on a fresh member, so the rows do not depend on each other; denied ones act
/// on a bystander (they change nothing).
#[tokio::test]
async fn the_authorization_matrix_holds_for_every_role() {
    let server = TestServer::start().await;
    // With a networked broker (CI's PostgreSQL + Redis run), a second node shares the
    // database and Redis: every other person is connected there, so each rule is checked
    // across nodes too.
    let second = match std::env::var("NATTER_TEST_BROKER") {
        Ok(_) => Some(TestServer::spawn(natter_testkit::settings(&server.data_dir), None).await),
        Err(_) => None,
    };
    let node = |i: usize| match &second {
        Some(other) if i % 2 == 1 => other.addr,
        _ => server.addr,
    };
    const ROLES: [&str; 7] = [
        "admin",
        "owner",
        "moderator",
        "member",
        "outsider",
        "banned",
        "bystander",
    ];
    let mut people: Vec<(&str, Client)> = Vec::new();
    for (i, role) in ROLES.into_iter().enumerate() {
        let (token, user) = server.register(role).await;
        let mut client = Client::connect(node(i), &token, None).await;
        client.user = user;
        people.push((role, client));
    }
    let name_of = |people: &[(&str, Client)], role: &str| {
        people
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, c)| c.name())
            .expect("role")
    };
    const OWNER: usize = 1;
    for private in [false, true] {
        let room = people[OWNER]
            .1
            .ok(
                "room.create",
                json!({"name": unique("m"), "private": private}),
            )
            .await["room"]["id"]
            .as_i64()
            .expect("room");
        for role in ["moderator", "member", "banned", "bystander"] {
            let name = name_of(&people, role);
            if private {
                people[OWNER]
                    .1
                    .ok("room.invite", json!({"room": room, "user": name}))
                    .await;
            }
            let at = people.iter().position(|(r, _)| *r == role).expect("role");
            people[at].1.ok("room.join", json!({"room": room})).await;
        }
        let moderator = name_of(&people, "moderator");
        let banned = name_of(&people, "banned");
        event(
            &mut people[OWNER].1,
            "room.role",
            json!({"room": room, "user": moderator, "role": "moderator"}),
        )
        .await;
        event(
            &mut people[OWNER].1,
            "room.ban",
            json!({"room": room, "user": banned}),
        )
        .await;
        let bystander_at = ROLES
            .iter()
            .position(|r| *r == "bystander")
            .expect("bystander");
        let bystander_says = seq(&people[bystander_at]
            .1
            .say(room, "a bystander's words")
            .await);
        // A stranger to a private room (the banned too, once out of it) sees nothing.
        let hidden = if private { "unknown_room" } else { "forbidden" };
        let kind_of_room = if private { "private" } else { "public" };
        for at in 0..6 {
            let role = people[at].0;
            let expect = |allowed: &[&str]| {
                if allowed.contains(&role) {
                    "ok"
                } else if role == "outsider" || role == "banned" {
                    hidden
                } else {
                    "forbidden"
                }
            };
            let moderators: &[&str] = &["admin", "owner", "moderator"];
            let owners: &[&str] = &["admin", "owner"];
            // Deleting another's message: moderators and up; a member may not; one who is not
            // in the room is not a member (a stranger to a private room sees nothing).
            let delete_expect = if moderators.contains(&role) {
                "ok"
            } else if role == "member" {
                "forbidden"
            } else if private {
                "unknown_room"
            } else {
                "not_member"
            };
            // Invitations: any member of a private room; a public room takes none.
            let invite_expect = if !private {
                "invalid_request"
            } else if ["admin", "owner", "moderator", "member"].contains(&role) {
                "ok"
            } else {
                "unknown_room"
            };
            // (request, documented outcome for this role, acts on a member)
            let rows = [
                ("room.update", expect(moderators), false),
                ("room.kick", expect(moderators), true),
                ("room.ban", expect(moderators), true),
                ("room.mute", expect(moderators), true),
                ("room.role", expect(owners), true),
                ("room.bans", expect(moderators), false),
                ("archive", expect(owners), false),
                ("room.unban", expect(moderators), true),
                ("room.unmute", expect(moderators), true),
                ("message.delete", delete_expect, true),
                ("room.invite", invite_expect, true),
            ];
            for (kind, expected, on_member) in rows {
                // The target: a fresh user for an allowed action (a member, muted or banned
                // first as the action needs; not a member for an invitation), else the
                // bystander, whom a refusal leaves as he is.
                let mut seq_of_target = bystander_says;
                let target = if on_member && expected == "ok" {
                    let (token, user) = server.register("t").await;
                    let mut fresh = Client::connect(node(at + 1), &token, None).await;
                    fresh.user = user;
                    if kind != "room.invite" {
                        if private {
                            people[OWNER]
                                .1
                                .ok("room.invite", json!({"room": room, "user": fresh.name()}))
                                .await;
                        }
                        fresh.ok("room.join", json!({"room": room})).await;
                    }
                    let prepare = match kind {
                        "room.unban" => {
                            Some(("room.ban", json!({"room": room, "user": fresh.name()})))
                        }
                        "room.unmute" => Some((
                            "room.mute",
                            json!({"room": room, "user": fresh.name(), "minutes": 5}),
                        )),
                        _ => None,
                    };
                    if let Some((prep, data)) = prepare {
                        event(&mut people[OWNER].1, prep, data).await;
                    }
                    if kind == "message.delete" {
                        seq_of_target = seq(&fresh.say(room, "delete me").await);
                    }
                    fresh.name()
                } else if kind == "room.invite" {
                    name_of(&people, "outsider")
                } else {
                    name_of(&people, "bystander")
                };
                let (kind, mut data) = match kind {
                    "room.update" => (kind, json!({"room": room, "topic": unique("topic")})),
                    "archive" => ("room.update", json!({"room": room, "archived": false})),
                    "room.mute" => (kind, json!({"room": room, "user": target, "minutes": 1})),
                    "room.role" => (
                        kind,
                        json!({"room": room, "user": target, "role": "moderator"}),
                    ),
                    "room.bans" => (kind, json!({"room": room})),
                    "message.delete" => (kind, json!({"room": room, "seq": seq_of_target})),
                    _ => (kind, json!({"room": room, "user": target})),
                };
                if kind != "room.bans" && kind != "room.invite" {
                    data["client_id"] = unique("m").into();
                }
                let outcome = match people[at].1.request(kind, data.clone()).await {
                    Ok(_) => "ok".to_string(),
                    Err((code, _)) => code,
                };
                assert_eq!(
                    outcome, expected,
                    "{kind} as {role} in a {kind_of_room} room: {data}"
                );
            }
        }
        // A moderator acts only on lower ranks: not on the owner.
        let owner = name_of(&people, "owner");
        assert_eq!(
            refused(
                &mut people[2].1,
                "room.kick",
                json!({"room": room, "user": owner})
            )
            .await,
            "forbidden"
        );
        // The banned cannot come back; the outsider of a public room can.
        assert_eq!(
            people[5].1.fails("room.join", json!({"room": room})).await,
            if private { "unknown_room" } else { "banned" }
        );
        if !private {
            people[4].1.ok("room.join", json!({"room": room})).await;
        }
    }
    // Server-wide requests: admins only.
    let outsider = name_of(&people, "outsider");
    for (role, actor) in people[1..4].iter_mut() {
        for kind in ["admin.audit", "admin.set_admin", "admin.deactivate"] {
            let data = match kind {
                "admin.audit" => json!({}),
                "admin.set_admin" => json!({"user": outsider, "admin": true}),
                _ => json!({"user": outsider}),
            };
            assert_eq!(
                actor.fails(kind, data).await,
                "forbidden",
                "{kind} as {role}"
            );
        }
    }
    people[0].1.ok("admin.audit", json!({})).await;
}

#[tokio::test]
async fn group_dms_are_named_by_members_and_adding_someone_starts_a_new_one() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    let mut dave = server.user("dave").await;
    let opened = ana
        .ok("group.open", json!({"users": [bob.name(), carol.name()]}))
        .await["room"]
        .clone();
    assert_eq!(opened["kind"], "group");
    assert_eq!(opened["member_count"], 3);
    let peers: Vec<i64> = opened["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p["id"].as_i64().expect("id"))
        .collect();
    let mut expected = vec![id(&bob), id(&carol)];
    expected.sort_by_key(|i| {
        if *i == id(&bob) {
            bob.name().to_lowercase()
        } else {
            carol.name().to_lowercase()
        }
    });
    assert_eq!(peers, expected, "the others, by name");
    let group = opened["id"].as_i64().expect("id");
    for c in [&mut bob, &mut carol] {
        let added = c.event("room_added").await["room"].clone();
        assert_eq!(added["id"], group);
        assert_eq!(added["peers"].as_array().map(Vec::len), Some(2));
    }
    // The same people, in any order, get the same group.
    let again = carol
        .ok("group.open", json!({"users": [ana.name(), bob.name()]}))
        .await["room"]["id"]
        .clone();
    assert_eq!(again, group);
    let hello = bob.say(group, "hi both").await;
    let seen = ana.event_where("message", |m| m["room"] == group).await;
    assert_eq!(seen["seq"], hello["seq"]);
    // Every message counts as a mention, as in a DM; the group is in each member's rooms.
    let rooms = Client::connect(server.addr, &ana.token, None).await.welcome["rooms"].clone();
    let mine = rooms
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["id"] == group)
        .cloned()
        .expect("listed");
    assert_eq!(
        (mine["unread"].as_i64(), mine["mentions"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(mine["peers"].as_array().map(Vec::len), Some(2));
    // dave is a stranger to it.
    assert_eq!(
        dave.fails("history", json!({"room": group})).await,
        "unknown_room"
    );
    assert_eq!(
        dave.fails("room.join", json!({"room": group})).await,
        "unknown_room"
    );
    // Adding dave starts a new group of four; the old one goes on without him.
    let bigger = ana
        .ok("group.add", json!({"room": group, "user": dave.name()}))
        .await["room"]
        .clone();
    assert_ne!(bigger["id"], group);
    assert_eq!(bigger["member_count"], 4);
    let added = dave.event("room_added").await["room"].clone();
    assert_eq!(added["id"], bigger["id"]);
    let history = dave.ok("history", json!({"room": bigger["id"]})).await["messages"].clone();
    assert_eq!(history, json!([]), "nothing of the old group");
    // Limits and moderation: 3 to 8 people, no roles in a group.
    assert_eq!(
        ana.fails("group.open", json!({"users": [bob.name()]}))
            .await,
        "invalid_request"
    );
    let many: Vec<String> = (0..8).map(|i| format!("nobody{i}")).collect();
    assert_eq!(
        ana.fails("group.open", json!({"users": many})).await,
        "invalid_request"
    );
    assert_eq!(
        ana.fails("group.open", json!({"users": [bob.name(), "nobody-here"]}))
            .await,
        "unknown_user"
    );
    assert_eq!(
        refused(
            &mut ana,
            "room.kick",
            json!({"room": group, "user": bob.name()})
        )
        .await,
        "forbidden"
    );
    // Leaving: the others carry on; the same three make a new group.
    carol.ok("room.leave", json!({"room": group})).await;
    let reopened = ana
        .ok("group.open", json!({"users": [bob.name(), carol.name()]}))
        .await["room"]["id"]
        .clone();
    assert_ne!(reopened, group);
    bob.say(group, "still here").await;
}

async fn delete_account(server: &TestServer, token: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .delete(server.http("/api/account"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("delete")
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_account_exports_its_data_and_deletes_itself() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let kept = bob.say(room, "my words").await;
    bob.ok("profile.update", json!({"display_name": "Bob Stone"}))
        .await;

    let export = reqwest::Client::new()
        .get(server.http("/api/account/export"))
        .bearer_auth(&bob.token)
        .send()
        .await
        .expect("export");
    assert_eq!(export.status(), 200);
    assert!(export
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("attachment")));
    let data: Value = export.json().await.expect("json");
    assert_eq!(data["user"]["id"], id(&bob));
    assert_eq!(data["profile"]["display_name"], "Bob Stone");
    assert!(data["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .any(|r| r["id"] == room));
    let bodies: Vec<&str> = data["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies, ["my words"]);

    // The password is asked for, and a wrong one changes nothing.
    assert_eq!(
        delete_account(&server, &bob.token, json!({"password": "wrong"})).await,
        401
    );
    assert_eq!(
        delete_account(&server, &bob.token, json!({"password": "correct horse"})).await,
        204
    );
    assert_eq!(bob.closed().await, Some(4003));
    // The room's stream says so (a `leave` entry), then `member_left`.
    let entry = ana
        .event_where("room_event", |e| {
            e["room"] == room && e["change"]["op"] == "leave"
        })
        .await;
    assert_eq!(entry["change"]["user"]["name"], "deleted user");
    assert_eq!(entry["sender"]["id"], id(&bob));
    let left = ana.event_where("member_left", |e| e["room"] == room).await;
    assert_eq!(left["user"]["name"], "deleted user");
    // Its messages stay, from "deleted user"; its name is free again; it cannot sign in.
    let history = ana.ok("history", json!({"room": room})).await["messages"].clone();
    let shown = history
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["seq"] == kept["seq"])
        .cloned()
        .expect("kept");
    assert_eq!(shown["sender"]["name"], "deleted user");
    assert_eq!(shown["body"], "my words");
    let again = reqwest::Client::new()
        .post(server.http("/api/register"))
        .json(&json!({"username": bob.name(), "password": "correct horse"}))
        .send()
        .await
        .expect("register");
    assert_eq!(again.status(), 201, "the name is free");
    let profile = ana.ok("profile.get", json!({"user": bob.name()})).await["profile"].clone();
    assert_ne!(profile["user"]["id"], id(&bob), "a new account");
}

#[tokio::test]
async fn with_remove_a_deleted_accounts_messages_are_deleted_in_the_stream() {
    let server = TestServer::start_with(|s| {
        s.deleted_account_messages = Some("remove".into());
    })
    .await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let gone = bob.say(room, "soon gone").await;
    let mut online = View::default();
    online.follow(&mut ana, room, seq(&gone)).await;
    assert_eq!(
        delete_account(&server, &bob.token, json!({"password": "correct horse"})).await,
        204
    );
    let deleted = ana
        .event_where("message_deleted", |e| e["change"]["target"] == gone["seq"])
        .await;
    online.apply("message_deleted", &deleted);
    assert!(online.messages[&seq(&gone)].deleted);
    let history = ana.ok("history", json!({"room": room})).await["messages"].clone();
    let shown = history
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["seq"] == gone["seq"])
        .cloned()
        .expect("tombstone");
    assert_eq!(
        (shown["deleted"].as_bool(), shown["body"].as_str()),
        (Some(true), Some(""))
    );
}
