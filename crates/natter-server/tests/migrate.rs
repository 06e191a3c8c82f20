//! `natter migrate` end to end (docs/deployment.md, "Moving from SQLite to PostgreSQL"): a
//! SQLite server with rooms, DMs, a group, a private room with an invitation, edits,
//! reactions, a thread, mentions, a delete, moderation events, read markers, notification
//! levels, a profile and uploads is stopped and copied onto a fresh PostgreSQL database
//! (`NATTER_TEST_POSTGRES`; a visible skip without it, a failure under
//! `NATTER_REQUIRE_SERVICES=1`). A server on the copy takes the old tokens and passwords, a
//! client that was offline resumes with exactly the entries it missed (no gap, no
//! duplicate) into the state of one that stayed online, new entries get the next seqs, new
//! accounts and rooms new ids, and uploads download byte for byte. A copy interrupted after
//! every possible number of writes and run again ends identical, table by table, to an
//! uninterrupted one; a target holding other data is refused; the source is never written.

use clap::FromArgMatches;
use natter_server::admin::{execute, OpsError};
use natter_server::Settings;
use natter_testkit::stream::View;
use natter_testkit::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

/// A SQLite server whatever the suite's environment says (the copy's source).
fn on_sqlite(s: &mut Settings) {
    s.database = None;
    s.broker = None;
    s.redis_prefix = None;
}

/// Runs `natter ARGS` as the binary parses it, in process; its stdout, or its error.
async fn natter(args: &[&str]) -> Result<String, OpsError> {
    let matches = Settings::cli()
        .try_get_matches_from(std::iter::once("natter").chain(args.iter().copied()))
        .expect("the command parses");
    let parsed = Settings::from_arg_matches(&matches).expect("settings");
    let command = parsed.command.expect("a command");
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = settings(tmp.path()).resolve().expect("config");
    let mut out = Vec::new();
    execute(&command, &config, &mut out).await?;
    Ok(String::from_utf8(out).expect("utf-8"))
}

/// `natter migrate --from sqlite:DIR --to URL [extra...]`.
async fn migrate(dir: &Path, url: &str, extra: &[&str]) -> Result<String, OpsError> {
    let from = format!("sqlite:{}", dir.display());
    let mut args = vec!["migrate", "--from", &from, "--to", url];
    args.extend_from_slice(extra);
    natter(&args).await
}

fn seq(entry: &Value) -> i64 {
    entry["seq"].as_i64().expect("seq")
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

/// A PNG of `w` x `h` (it gets a thumbnail: a second blob).
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

async fn upload(server: &TestServer, token: &str, name: &str, bytes: Vec<u8>) -> Value {
    let r = reqwest::Client::new()
        .post(server.http(&format!("/api/files?name={name}")))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["file"].clone()
}

async fn download(server: &TestServer, token: &str, path: &str) -> (u16, Vec<u8>) {
    let r = reqwest::Client::new()
        .get(server.http(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    let status = r.status().as_u16();
    (status, r.bytes().await.expect("body").to_vec())
}

/// A room change (edit, reaction, moderation...) with a fresh client_id; its stream entry.
async fn change(c: &mut Client, kind: &str, mut data: Value) -> Value {
    data["client_id"] = unique("m").into();
    c.ok(kind, data).await["entry"].clone()
}

/// What the source server left, as the test needs it after the copy.
struct Before {
    room: i64,
    dm: i64,
    /// The last seq bob saw in `room` before he went away, and his token.
    bob_seen: i64,
    bob_token: String,
    ana_token: String,
    ana_name: String,
    /// The last entries of `room` and `dm`.
    room_last: i64,
    dm_last: i64,
    /// `room` as ana, online throughout, saw it.
    online: View,
    bob_view: View,
    /// (file id, bytes) of each upload, and a thumbnail path.
    files: Vec<(String, Vec<u8>)>,
    thumb: String,
    max_user_id: i64,
    max_room_id: i64,
    /// A bot's room, its API token (scoped to it) and the message it posted there.
    bot_room: i64,
    bot_token: String,
    bot_message: Value,
}

/// A bot of `owner`'s in a room of its own, with a token scoped to it and one message posted
/// through the HTTP API: (room, token, the stored message).
async fn bot_with_token(server: &TestServer, owner: &mut Client) -> (i64, String, Value) {
    let room = id(&owner
        .ok("room.create", json!({"name": unique("bots")}))
        .await["room"]);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, token: &str, body: Value| {
        http.request(method, server.http(&path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let bot = call(
        reqwest::Method::POST,
        "/api/bots".into(),
        &owner.token,
        json!({"name": unique("ci")}),
    )
    .await
    .expect("bot");
    assert_eq!(bot.status(), 201);
    let bot: Value = bot.json().await.expect("bot json");
    let (bot_id, bot_name) = (id(&bot["bot"]), bot["bot"]["name"].clone());
    let added = call(
        reqwest::Method::POST,
        format!("/api/rooms/{room}/members"),
        &owner.token,
        json!({"user": bot_name}),
    )
    .await
    .expect("add the bot");
    assert_eq!(added.status(), 200);
    let token = call(
        reqwest::Method::POST,
        format!("/api/bots/{bot_id}/tokens"),
        &owner.token,
        json!({"name": "deploy", "rooms": [room]}),
    )
    .await
    .expect("token");
    assert_eq!(token.status(), 201);
    let token: Value = token.json().await.expect("token json");
    let token = token["token"].as_str().expect("the token").to_string();
    let posted = call(
        reqwest::Method::POST,
        format!("/api/rooms/{room}/messages"),
        &token,
        json!({"body": "deployed 1.4", "client_id": "deploy-1.4"}),
    )
    .await
    .expect("post");
    assert_eq!(posted.status(), 201);
    let posted: Value = posted.json().await.expect("post json");
    (room, token, posted["message"].clone())
}

/// Fills a SQLite server with one of everything the schema holds; stops it.
async fn fill(server: &mut TestServer) -> Before {
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    let mut dave = server.user("dave").await;
    let (bot_room, bot_token, bot_message) = bot_with_token(server, &mut ana).await;
    let room = room_with(&mut ana, &mut [&mut bob, &mut carol, &mut dave]).await;
    let first = ana.say(room, &format!("hello @{}", bob.name())).await;
    let mut online = View::default();
    let mut bob_view = View::default();
    online.follow(&mut ana, room, seq(&first)).await;
    bob_view.follow(&mut bob, room, seq(&first)).await;
    online.from_here();
    bob_view.from_here();
    let bytes = png(64, 48);
    let picture = upload(server, &ana.token, "shot.png", bytes.clone()).await;
    let text = b"plain notes".to_vec();
    let notes = upload(server, &ana.token, "notes.txt", text.clone()).await;
    let data = json!({"room": room, "body": "two files", "client_id": unique("c"),
                      "files": [picture["id"], notes["id"]]});
    let with_files = ana.ok("message.send", data).await["message"].clone();
    online.follow(&mut ana, room, seq(&with_files)).await;
    bob_view.follow(&mut bob, room, seq(&with_files)).await;
    let bob_seen = bob_view.last_seq;
    let bob_token = bob.token.clone();
    let (bob_name, bob_id) = (bob.name(), bob.id());
    drop(bob);

    // While bob is away: every kind of entry, and the rows beside the stream.
    change(
        &mut ana,
        "message.edit",
        json!({"room": room, "seq": seq(&first), "body": "hello, all"}),
    )
    .await;
    change(
        &mut carol,
        "reaction.add",
        json!({"room": room, "seq": seq(&first), "emoji": "👍"}),
    )
    .await;
    change(
        &mut dave,
        "reaction.add",
        json!({"room": room, "seq": seq(&first), "emoji": "🎉"}),
    )
    .await;
    let reply = json!({"room": room, "body": "a reply @room", "client_id": unique("c"),
                       "thread": seq(&first), "also_room": true});
    carol.ok("message.send", reply).await;
    let doomed = carol.say(room, "soon gone").await;
    change(
        &mut carol,
        "message.delete",
        json!({"room": room, "seq": seq(&doomed)}),
    )
    .await;
    change(
        &mut ana,
        "room.update",
        json!({"room": room, "topic": "moving to postgres"}),
    )
    .await;
    change(
        &mut ana,
        "room.role",
        json!({"room": room, "user": carol.name(), "role": "moderator"}),
    )
    .await;
    change(
        &mut carol,
        "room.mute",
        json!({"room": room, "user": dave.name(), "minutes": 30}),
    )
    .await;
    change(
        &mut ana,
        "room.ban",
        json!({"room": room, "user": dave.name(), "reason": "spam"}),
    )
    .await;
    carol
        .ok("room.notify", json!({"room": room, "level": "all"}))
        .await;
    let last = ana.say(room, "last words on sqlite").await;
    carol
        .ok("room.read", json!({"room": room, "seq": seq(&last)}))
        .await;
    online.follow(&mut ana, room, seq(&last)).await;

    let dm = ana.ok("dm.open", json!({"user": bob_name})).await["room"]["id"]
        .as_i64()
        .expect("dm id");
    ana.say(dm, "psst").await;
    let dm_last = ana.say(dm, "still there?").await;
    let group = ana
        .ok("group.open", json!({"users": [bob_name, carol.name()]}))
        .await["room"]["id"]
        .as_i64()
        .expect("group id");
    ana.say(group, "group hello").await;
    let private = ana
        .ok(
            "room.create",
            json!({"name": unique("secret"), "private": true}),
        )
        .await["room"]["id"]
        .as_i64()
        .expect("private id");
    ana.ok("room.invite", json!({"room": private, "user": bob_name}))
        .await;
    ana.ok(
        "profile.update",
        json!({"display_name": "Ana L.", "status": "migrating", "avatar": picture["id"]}),
    )
    .await;
    let thumb = picture["thumb_url"]
        .as_str()
        .expect("a thumbnail")
        .to_string();
    let (ana_token, ana_name) = (ana.token.clone(), ana.name());
    let max_user_id = [ana.id(), bob_id, carol.id(), dave.id()]
        .into_iter()
        .max()
        .unwrap_or(0);
    drop((ana, carol, dave));
    server.stop().await;
    Before {
        room,
        dm,
        bob_seen,
        bob_token,
        ana_token,
        ana_name,
        room_last: seq(&last),
        dm_last: seq(&dm_last),
        online,
        bob_view,
        files: vec![
            (picture["id"].as_str().expect("id").into(), bytes),
            (notes["id"].as_str().expect("id").into(), text),
        ],
        thumb,
        max_user_id,
        max_room_id: private,
        bot_room,
        bot_token,
        bot_message,
    }
}

/// A server on the PostgreSQL database at `url`, in a fresh data dir of its own.
async fn server_on(url: &str, tmp: &tempfile::TempDir) -> TestServer {
    node_on(url, tmp, None).await
}

/// A node on the PostgreSQL database at `url`; with `redis` (broker URL, key prefix), one
/// node of a cluster sharing that broker.
async fn node_on(url: &str, tmp: &tempfile::TempDir, redis: Option<(&str, &str)>) -> TestServer {
    let mut s = settings(tmp.path());
    s.database = Some(url.to_string());
    s.broker = redis.map(|(broker, _)| broker.to_string());
    s.redis_prefix = redis.map(|(_, prefix)| prefix.to_string());
    TestServer::spawn(s, None).await
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read the source database")
}

/// The names in a directory, sorted.
fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn clients_resume_on_the_postgres_copy_without_gap_or_duplicate() {
    let test = "clients_resume_on_the_postgres_copy_without_gap_or_duplicate";
    let Some(target) = ScratchDatabase::for_test(test, "natter_migrate") else {
        return;
    };
    let mut source = TestServer::start_with(on_sqlite).await;
    let before = fill(&mut source).await;
    let db_file = source.data_dir.join("natter.db");
    let unchanged = file_bytes(&db_file);
    let entries = dir_entries(&source.data_dir);

    let out = migrate(&source.data_dir, &target.url, &[])
        .await
        .expect("migrate");
    eprintln!("{out}");
    assert!(out.contains("verified: every count matches"), "{out}");
    assert!(out.contains("messages"), "{out}");
    assert_eq!(file_bytes(&db_file), unchanged, "the source is not written");
    assert_eq!(
        dir_entries(&source.data_dir),
        entries,
        "nothing made beside it"
    );

    // With Redis (CI), two nodes on the copy, as a cluster: bob resumes on one, ana comes
    // back on the other and her next message reaches bob through the broker.
    let tmp = tempfile::tempdir().expect("tempdir");
    let tmp_b = tempfile::tempdir().expect("tempdir");
    let redis = std::env::var("NATTER_TEST_REDIS").ok();
    let prefix = unique_redis_prefix();
    let cluster = redis.as_deref().map(|broker| (broker, prefix.as_str()));
    let server = node_on(&target.url, &tmp, cluster).await;
    let other = match cluster {
        Some(cluster) => Some(node_on(&target.url, &tmp_b, Some(cluster)).await),
        None => None,
    };
    let ana_addr = other.as_ref().map_or(server.addr, |node| node.addr);
    // bob comes back with his old token and the last seq he saw.
    let resume = json!({ before.room.to_string(): before.bob_seen });
    let mut bob = Client::connect(server.addr, &before.bob_token, Some(resume)).await;
    let mut seen = Vec::new();
    let mut bob_view = before.bob_view.clone();
    while bob_view.last_seq < before.room_last {
        let frame = bob.read().await;
        let kind = frame["type"].as_str().unwrap_or_default().to_string();
        if frame["data"]["room"] == before.room && bob_view.apply(&kind, &frame["data"]) {
            seen.push(frame["data"]["seq"].as_i64().expect("seq"));
        }
    }
    let expected: Vec<i64> = (before.bob_seen + 1..=before.room_last).collect();
    assert_eq!(
        seen, expected,
        "exactly the entries bob missed, in order, once"
    );
    assert_eq!(
        bob_view, before.online,
        "bob ends in the state of a client that stayed"
    );
    assert_eq!(bob_view.room.topic, "moving to postgres");

    // New entries get the next seqs, in the room and in the DM.
    let mut ana = Client::connect(ana_addr, &before.ana_token, None).await;
    let next = ana.say(before.room, "first words on postgres").await;
    assert_eq!(seq(&next), before.room_last + 1);
    let got = bob
        .event_where("message", |m| m["room"] == before.room)
        .await;
    assert_eq!(seq(&got), before.room_last + 1);
    bob.no_event_where("message", Duration::from_millis(300), |m| {
        m["room"] == before.room && m["seq"].as_i64() <= Some(before.room_last)
    })
    .await;
    assert_eq!(
        seq(&ana.say(before.dm, "on postgres now").await),
        before.dm_last + 1
    );

    // Uploads: same ids, same bytes, thumbnails too.
    for (file, bytes) in &before.files {
        let (status, body) =
            download(&server, &before.bob_token, &format!("/api/files/{file}")).await;
        assert_eq!(
            (status, &body == bytes),
            (200, true),
            "{file} downloads as uploaded"
        );
    }
    let (status, thumb) = download(&server, &before.ana_token, &before.thumb).await;
    assert!(status == 200 && !thumb.is_empty(), "thumbnail: {status}");

    // The bot's token still works, within its scope; its message is there, and a retry of
    // it is still a duplicate.
    let http = reqwest::Client::new();
    let history = http
        .get(server.http(&format!("/api/rooms/{}/messages", before.bot_room)))
        .bearer_auth(&before.bot_token)
        .send()
        .await
        .expect("history");
    assert_eq!(history.status(), 200);
    let history: Value = history.json().await.expect("history json");
    assert_eq!(history["messages"], json!([before.bot_message]));
    let again = http
        .post(server.http(&format!("/api/rooms/{}/messages", before.bot_room)))
        .bearer_auth(&before.bot_token)
        .json(&json!({"body": "deployed 1.4", "client_id": "deploy-1.4"}))
        .send()
        .await
        .expect("retry");
    assert_eq!(
        again.status(),
        200,
        "a retry of a copied message is a duplicate"
    );
    let outside = http
        .get(server.http(&format!("/api/rooms/{}/messages", before.room)))
        .bearer_auth(&before.bot_token)
        .send()
        .await
        .expect("outside the scope");
    assert_eq!(outside.status(), 403, "the token's scope was copied");

    // The old password signs in; new accounts and rooms get new ids.
    let login = reqwest::Client::new()
        .post(server.http("/api/login"))
        .json(&json!({"username": before.ana_name, "password": "correct horse"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let newcomer = server.user("newcomer").await;
    assert!(newcomer.id() > before.max_user_id, "a new user id");
    let created = ana
        .ok("room.create", json!({"name": unique("fresh")}))
        .await;
    assert!(id(&created["room"]) > before.max_room_id, "a new room id");

    // Running it again on the finished copy changes nothing: the new rows make it differ.
    drop((ana, bob, newcomer));
    let mut server = server;
    server.stop().await;
    if let Some(mut other) = other {
        other.stop().await;
    }
    match migrate(&source.data_dir, &target.url, &[]).await {
        Err(OpsError::Failed(why)) => assert!(why.contains("does not match"), "{why}"),
        other => panic!("a copy the nodes wrote to since no longer verifies: {other:?}"),
    }
    target.drop().await;
}

/// Every copied table's rows on a PostgreSQL database, in a canonical order.
async fn contents(url: &str) -> BTreeMap<String, String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(conn);
    let mut all = BTreeMap::new();
    for (table, columns) in natter_store_sql::copy::copied_tables() {
        let cols = columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT COALESCE(string_agg(r::text, E'\\n' ORDER BY r::text), '')
             FROM (SELECT {cols} FROM \"{table}\") r"
        );
        let text: String = client.query_one(&sql, &[]).await.expect(&sql).get(0);
        all.insert(table.to_string(), text);
    }
    let blobs: String = client
        .query_one(
            "SELECT COALESCE(string_agg(hash || ':' || n || ':' || md5(data), ',' ORDER BY hash, n), '')
             FROM file_chunks",
            &[],
        )
        .await
        .expect("chunks")
        .get(0);
    all.insert("file_chunks".into(), blobs);
    drop(client);
    let _ = driver.await;
    all
}

#[tokio::test]
async fn an_interrupted_copy_resumes_to_the_same_result() {
    let test = "an_interrupted_copy_resumes_to_the_same_result";
    let Some(whole) = ScratchDatabase::for_test(test, "natter_migrate_whole") else {
        return;
    };
    let Some(pieces) = ScratchDatabase::for_test(test, "natter_migrate_pieces") else {
        return;
    };
    let mut source = TestServer::start_with(on_sqlite).await;
    fill(&mut source).await;
    let out = migrate(&source.data_dir, &whole.url, &["--batch-rows", "3"])
        .await
        .expect("whole");
    assert!(out.contains("verified"), "{out}");
    // Interrupted after 1 committed write, resumed and interrupted again after 2 more, and
    // so on: every run continues where the last stopped, until one finishes.
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs < 500, "the copy never finishes");
        let stop = (runs % 3 + 1).to_string();
        match migrate(
            &source.data_dir,
            &pieces.url,
            &["--batch-rows", "3", "--stop-after", &stop],
        )
        .await
        {
            Ok(out) => {
                assert!(out.contains("verified"), "{out}");
                assert!(out.contains("continued an interrupted copy"), "{out}");
                break;
            }
            Err(OpsError::Failed(why)) => assert!(why.contains("interrupted"), "{why}"),
            Err(other) => panic!("run {runs}: {other:?}"),
        }
    }
    eprintln!("the copy finished on run {runs}");
    assert!(runs > 10, "the copy was interrupted {runs} times");
    let (a, b) = (contents(&whole.url).await, contents(&pieces.url).await);
    for (table, rows) in &a {
        assert!(
            !rows.is_empty() || table == "invites" || table == "bans",
            "{table} is filled"
        );
        assert_eq!(
            Some(rows),
            b.get(table),
            "{table} differs between the two copies"
        );
    }
    let json = migrate(&source.data_dir, &pieces.url, &["--json"])
        .await
        .expect("again");
    let report: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["verified"], true);
    assert_eq!(report["tables"]["messages"]["copied_now"], 0, "{report}");
    assert_eq!(
        report["tables"]["messages"]["source"],
        report["tables"]["messages"]["target"]
    );
    whole.drop().await;
    pieces.drop().await;
}

#[tokio::test]
async fn a_target_with_other_data_is_refused() {
    let test = "a_target_with_other_data_is_refused";
    let Some(foreign) = ScratchDatabase::for_test(test, "natter_migrate_foreign") else {
        return;
    };
    let Some(other_copy) = ScratchDatabase::for_test(test, "natter_migrate_other") else {
        return;
    };
    let mut source = TestServer::start_with(on_sqlite).await;
    source.user("ana").await;
    source.stop().await;
    // A database a PostgreSQL node already uses.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut node = server_on(&foreign.url, &tmp).await;
    node.user("zed").await;
    node.stop().await;
    match migrate(&source.data_dir, &foreign.url, &[]).await {
        Err(e @ OpsError::Usage(_)) => {
            assert!(e.to_string().contains("not empty"), "{e}");
            assert_eq!(e.exit_code(), 2);
        }
        other => panic!("a used database is refused: {other:?}"),
    }
    // The built binary says so on stderr and exits with 2.
    let from = format!("sqlite:{}", source.data_dir.display());
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["migrate", "--from", &from, "--to", &foreign.url])
        .output()
        .await
        .expect("run natter");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("natter: the target database is not empty"),
        "{stderr}"
    );
    // A copy of another installation.
    let mut elsewhere = TestServer::start_with(on_sqlite).await;
    elsewhere.user("bo").await;
    elsewhere.stop().await;
    migrate(&elsewhere.data_dir, &other_copy.url, &[])
        .await
        .expect("copy");
    match migrate(&source.data_dir, &other_copy.url, &[]).await {
        Err(OpsError::Usage(why)) => assert!(why.contains("another SQLite database"), "{why}"),
        other => panic!("a copy of another source is refused: {other:?}"),
    }
    // Not a SQLite installation, not a PostgreSQL URL.
    let empty = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        migrate(empty.path(), &other_copy.url, &[]).await,
        Err(OpsError::Usage(_))
    ));
    assert!(matches!(
        migrate(&source.data_dir, "mysql://x", &[]).await,
        Err(OpsError::Usage(_))
    ));
    foreign.drop().await;
    other_copy.drop().await;
}

/// The copy names every table and column the schema has, on both backends: a migration
/// that adds one fails here until `natter_store_sql::copy` copies it.
#[tokio::test]
async fn the_copy_knows_every_table_and_column() {
    let test = "the_copy_knows_every_table_and_column";
    let Some(target) = ScratchDatabase::for_test(test, "natter_migrate_schema") else {
        return;
    };
    let mut source = TestServer::start_with(on_sqlite).await;
    source.stop().await;
    let (lite, pg) =
        natter_store_sql::copy::schemas_for_test(&source.data_dir.join("natter.db"), &target.url)
            .await
            .expect("schemas");
    let copied: BTreeMap<String, Vec<String>> = natter_store_sql::copy::copied_tables()
        .into_iter()
        .map(|(t, cs)| (t.to_string(), cs.into_iter().map(String::from).collect()))
        .collect();
    let sorted = |m: &BTreeMap<String, Vec<String>>| -> BTreeMap<String, Vec<String>> {
        m.iter()
            .map(|(t, cs)| {
                let mut cs = cs.clone();
                cs.sort();
                (t.clone(), cs)
            })
            .collect()
    };
    assert_eq!(
        sorted(&lite),
        sorted(&copied),
        "SQLite's tables and columns"
    );
    assert_eq!(
        sorted(&pg),
        sorted(&copied),
        "PostgreSQL's tables and columns"
    );
    target.drop().await;
}

/// A source whose server still runs (its write-ahead log beside it) is read through the log,
/// with a warning that says to stop the server.
#[tokio::test]
async fn a_running_source_is_copied_as_it_stands_with_a_warning() {
    let test = "a_running_source_is_copied_as_it_stands_with_a_warning";
    let Some(target) = ScratchDatabase::for_test(test, "natter_migrate_live") else {
        return;
    };
    let mut source = TestServer::start_with(on_sqlite).await;
    let mut ana = source.user("ana").await;
    let room = general(&ana);
    let said = ana.say(room, "in the log").await;
    let out = migrate(&source.data_dir, &target.url, &["--json"])
        .await
        .expect("migrate");
    let report: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["source_wal"], true, "{report}");
    assert_eq!(report["verified"], true, "{report}");
    assert!(
        report["tables"]["messages"]["target"].as_i64() >= Some(1),
        "{report}"
    );
    let text = migrate(&source.data_dir, &target.url, &[])
        .await
        .expect("again");
    assert!(
        text.contains("warning: the SQLite database has a write-ahead log"),
        "{text}"
    );
    drop(ana);
    source.stop().await;
    let (client, conn) = tokio_postgres::connect(&target.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT body FROM messages WHERE room_id = $1 AND seq = $2",
            &[&room, &seq(&said)],
        )
        .await
        .expect("the message acknowledged before the copy is in it");
    assert_eq!(row.get::<_, String>(0), "in the log");
    drop(client);
    let _ = driver.await;
    target.drop().await;
}
