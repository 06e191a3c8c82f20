//! The operator's commands end to end (docs/deployment.md, "Administration" and "Backups"):
//! `natter admin` beside a running server, on SQLite and on PostgreSQL (`NATTER_TEST_POSTGRES`,
//! a visible skip without it, a failure under `NATTER_REQUIRE_SERVICES=1`): accounts made or
//! reset there sign in over HTTP with the sign-up's rules and errors, and the listings agree
//! with what clients did. `natter backup` of a SQLite server under write load from several
//! WebSocket clients: the copy opens in a fresh server with every message acknowledged before
//! the backup began, at its seq, and its uploads. The built binary's exit codes and output.

use clap::FromArgMatches;
use natter_server::admin::{execute, OpsError};
use natter_server::Settings;
use natter_testkit::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Runs `natter ARGS` (an operator's command, parsed as the binary parses it) in process,
/// against the store `settings` name; its stdout, or its error.
async fn natter(settings: &Settings, args: &[&str]) -> Result<String, OpsError> {
    let matches = Settings::cli()
        .try_get_matches_from(std::iter::once("natter").chain(args.iter().copied()))
        .expect("the command parses");
    let parsed = Settings::from_arg_matches(&matches).expect("settings");
    let command = parsed.command.expect("a command");
    let config = settings.clone().resolve().expect("config");
    let mut out = Vec::new();
    execute(&command, &config, &mut out).await?;
    Ok(String::from_utf8(out).expect("utf-8"))
}

/// `natter ARGS --json`, parsed.
async fn natter_json(settings: &Settings, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = natter(settings, &args)
        .await
        .unwrap_or_else(|e| panic!("natter {args:?}: {e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The code and message a refused command gives.
async fn refusal(settings: &Settings, args: &[&str]) -> (String, String) {
    match natter(settings, args).await {
        Err(OpsError::Refused(e)) => (e.code.as_str().to_string(), e.message),
        other => panic!("natter {args:?} should be refused, got {other:?}"),
    }
}

/// POST a JSON body, with an optional token: (status, body).
async fn post(server: &TestServer, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(server.http(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("post");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn login(server: &TestServer, name: &str, password: &str) -> (u16, Value) {
    post(
        server,
        "/api/login",
        None,
        json!({"username": name, "password": password}),
    )
    .await
}

async fn me(server: &TestServer, token: &str) -> u16 {
    reqwest::Client::new()
        .get(server.http("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("me")
        .status()
        .as_u16()
}

/// Test settings for a server in `dir` on SQLite, whatever `NATTER_TEST_DATABASE` says.
fn sqlite_settings(dir: &Path) -> Settings {
    Settings {
        database: None,
        ..settings(dir)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_commands_on_sqlite() {
    let tmp = tempfile::tempdir().expect("tempdir");
    admin_commands(sqlite_settings(tmp.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_commands_on_postgres() {
    let Some(scratch) = ScratchDatabase::for_test("admin_commands_on_postgres", "natter_t_ops")
    else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    admin_commands(Settings {
        database: Some(scratch.url.clone()),
        ..settings(tmp.path())
    })
    .await;
    scratch.drop().await;
}

/// Everything `natter admin` does, beside a running server on the store `s` names.
async fn admin_commands(s: Settings) {
    let s = Settings {
        allow_guests: Some(true),
        ..s
    };
    // Before the first start: the first account (it creates the database).
    let first = unique("op");
    let made = natter_json(&s, &["admin", "create-user", &first]).await;
    assert_eq!(made["user"]["name"], first.as_str());
    assert_eq!(made["user"]["guest"], false);
    let first_password = made["password"].as_str().expect("a generated password");
    assert!(first_password.len() >= 16, "{first_password}");

    let mut server = TestServer::spawn(s.clone(), None).await;
    let (status, body) = login(&server, &first, first_password).await;
    assert_eq!(
        status, 200,
        "the created account signs in over HTTP: {body}"
    );
    let first_token = body["token"].as_str().expect("token").to_string();

    // While it runs, with a password given, in text.
    let second = unique("op");
    let out = natter(
        &s,
        &[
            "admin",
            "create-user",
            &second,
            "--password",
            "hunter2hunter2",
        ],
    )
    .await
    .expect("create-user");
    assert!(
        out.starts_with(&format!("created user {second} (id ")),
        "{out}"
    );
    assert!(
        !out.contains("password"),
        "no password printed when given: {out}"
    );
    let (status, body) = login(&server, &second, "hunter2hunter2").await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    let mut second_ws = Client::connect(server.addr, &token, None).await;
    let general = general(&second_ws);

    // The sign-up's rules, and its very errors.
    for (name, password) in [
        ("no spaces", "long enough"),
        (second.as_str(), "short"),
        (&second.to_uppercase(), "long enough"),
    ] {
        let (code, message) =
            refusal(&s, &["admin", "create-user", name, "--password", password]).await;
        let (status, body) = post(
            &server,
            "/api/register",
            None,
            json!({"username": name, "password": password}),
        )
        .await;
        assert!(status >= 400, "{name} {password}: {status}");
        assert_eq!(
            (code.as_str(), message.as_str()),
            (
                body["error"]["code"].as_str().expect("code"),
                body["error"]["message"].as_str().expect("message")
            ),
            "the same error as a sign-up of {name:?} / {password:?}"
        );
    }

    // Listings agree with what clients did.
    let (status, guest) = post(
        &server,
        "/api/guest",
        None,
        json!({"nickname": unique("g")}),
    )
    .await;
    assert_eq!(status, 201, "{guest}");
    second_ws.say(general, "hello").await;
    let users = natter_json(&s, &["admin", "list-users"]).await;
    let users = users.as_array().expect("array");
    let row = |name: &str| {
        users
            .iter()
            .find(|u| u["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed in {users:?}"))
            .clone()
    };
    assert_eq!(row(&second)["guest"], false);
    assert_eq!(
        row(guest["user"]["name"].as_str().expect("name"))["guest"],
        true
    );
    assert!(row(&first)["created_at"].as_i64().expect("created") > 0);
    assert!(row(&first)["last_active"].as_i64() >= row(&first)["created_at"].as_i64());
    let text = natter(&s, &["admin", "list-users"]).await.expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["name", "id", "guest", "created", "last_active"]
    );
    assert_eq!(
        lines.len(),
        users.len() + 1,
        "a header and a line per user: {text}"
    );

    let rooms = natter_json(&s, &["admin", "list-rooms"]).await;
    let general_row = rooms
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["id"] == general)
        .expect("general listed")
        .clone();
    assert_eq!(general_row["name"], "general");
    assert_eq!(general_row["kind"], "public");
    assert_eq!(
        general_row["members"], 3,
        "both accounts and the guest joined it"
    );
    assert!(general_row["last_seq"].as_i64().expect("seq") >= 1);

    let stats = natter_json(&s, &["admin", "stats"]).await;
    assert_eq!(
        (stats["users"].as_u64(), stats["guests"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(stats["rooms"], 1);
    assert_eq!(stats["messages"], 1);
    assert_eq!(stats["sessions"], 3, "two sign-ins and a guest");
    let text = natter(&s, &["admin", "stats"]).await.expect("text");
    assert!(text.lines().any(|l| l == "messages 1"), "{text}");

    // A reset: the old token and password stop working, the new password signs in.
    let reset = natter_json(&s, &["admin", "reset-password", &first]).await;
    let new_password = reset["password"].as_str().expect("a generated password");
    assert_ne!(new_password, first_password);
    assert_eq!(reset["sessions_deleted"], 1);
    assert_eq!(
        me(&server, &first_token).await,
        401,
        "the old token is refused"
    );
    assert_eq!(login(&server, &first, first_password).await.0, 401);
    assert_eq!(login(&server, &first, new_password).await.0, 200);

    // A socket open on the server when its session is deleted stays open until it reconnects
    // (what the command says it does); then the old token is refused.
    let reset = natter(
        &s,
        &[
            "admin",
            "reset-password",
            &second,
            "--password",
            "correct horse battery",
        ],
    )
    .await
    .expect("reset");
    assert!(reset.contains("1 sessions deleted"), "{reset}");
    assert!(reset.contains("stays open until it reconnects"), "{reset}");
    second_ws.say(general, "still here").await;
    let again = Client::try_connect(server.addr, &token, None, true).await;
    assert_eq!(again.err().map(|e| e.0).as_deref(), Some("unauthenticated"));

    // Errors of a reset.
    let (code, _) = refusal(&s, &["admin", "reset-password", &unique("nobody")]).await;
    assert_eq!(code, "unknown_user");
    let (code, _) = refusal(
        &s,
        &[
            "admin",
            "reset-password",
            guest["user"]["name"].as_str().expect("name"),
        ],
    )
    .await;
    assert_eq!(code, "invalid_request", "guests have no password");
    let (code, _) = refusal(
        &s,
        &["admin", "reset-password", &first, "--password", "short"],
    )
    .await;
    assert_eq!(code, "weak_password");
    // A bot has no password (it signs in with API tokens); the operator cannot give it one.
    let (_, body) = login(&server, &first, new_password).await;
    let owner = body["token"].as_str().expect("token").to_string();
    let bot = unique("opbot");
    let (status, made) = post(&server, "/api/bots", Some(&owner), json!({"name": bot})).await;
    assert_eq!(status, 201, "{made}");
    let (code, message) = refusal(&s, &["admin", "reset-password", &bot]).await;
    assert_eq!(code, "invalid_request", "{message}");
    assert_eq!(
        login(&server, &bot, "correct horse battery").await.0,
        401,
        "still no password"
    );

    // Admins: the first account of a new server is one; the command line grants and takes
    // back, and the running server honours it at the next request.
    let (_, body) = login(&server, &first, new_password).await;
    let mut first_ws =
        Client::connect(server.addr, body["token"].as_str().expect("token"), None).await;
    first_ws.ok("admin.audit", json!({})).await;
    let mut second_ws =
        Client::connect(server.addr, &login_token(&server, &second).await, None).await;
    assert_eq!(second_ws.fails("admin.audit", json!({})).await, "forbidden");
    let granted = natter(&s, &["admin", "grant-admin", &second])
        .await
        .expect("grant");
    assert!(granted.contains("is an admin"), "{granted}");
    second_ws.ok("admin.audit", json!({})).await;
    natter(&s, &["admin", "revoke-admin", &second])
        .await
        .expect("revoke");
    assert_eq!(second_ws.fails("admin.audit", json!({})).await, "forbidden");
    let (code, _) = refusal(&s, &["admin", "grant-admin", &unique("nobody")]).await;
    assert_eq!(code, "unknown_user");
    // Deactivation: sessions gone, sign-in refused, the audit log says who.
    let gone = natter_json(&s, &["admin", "deactivate", &second]).await;
    assert_eq!(gone["sessions_deleted"], 1);
    let (status, body) = login(&server, &second, "correct horse battery").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("account_deactivated"))
    );
    let log = first_ws.ok("admin.audit", json!({"limit": 3})).await["entries"].clone();
    let actions: Vec<&str> = log
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["deactivate", "unadmin", "admin"]);
    assert_eq!(log[0]["detail"], r#"{"by":"natter admin"}"#);
    server.stop().await;
}

async fn login_token(server: &TestServer, name: &str) -> String {
    let (status, body) = login(server, name, "correct horse battery").await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_string()
}

/// The server's view of a room: seq -> body of every message, paged with `history`.
async fn timeline(client: &mut Client, room: i64) -> BTreeMap<i64, String> {
    let mut seen = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = client
            .ok(
                "history",
                json!({"room": room, "after": after, "limit": 100}),
            )
            .await;
        for m in page["messages"].as_array().expect("messages") {
            let seq = m["seq"].as_i64().expect("seq");
            seen.insert(seq, m["body"].as_str().expect("body").to_string());
            after = seq;
        }
        if page["has_more"] != true {
            return seen;
        }
    }
}

/// Messages acknowledged to the senders: (seq, body), in the order the acks arrived.
type Acks = Arc<Mutex<Vec<(i64, String)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_under_write_load_restores_every_acknowledged_message() {
    const SENDERS: usize = 4;
    let tmp = tempfile::tempdir().expect("tempdir");
    let live_settings = sqlite_settings(&tmp.path().join("live"));
    let mut server = TestServer::spawn(live_settings.clone(), None).await;
    let mut owner = server.user("own").await;
    let mut senders = Vec::new();
    for _ in 1..SENDERS {
        senders.push(server.user("snd").await);
    }
    let room = room_with(&mut owner, &mut senders.iter_mut().collect::<Vec<_>>()).await;

    // An upload on a message, so the backup has a blob to carry.
    let upload = reqwest::Client::new()
        .post(server.http("/api/files?name=notes.txt"))
        .bearer_auth(&owner.token)
        .body("the notes, kept")
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 201);
    let file: Value = upload.json().await.expect("json");
    let file_id = file["file"]["id"].as_str().expect("id").to_string();
    let owner_token = owner.token.clone();
    owner
        .ok(
            "message.send",
            json!({"room": room, "body": "see file", "client_id": "f1", "files": [file_id]}),
        )
        .await;
    senders.push(owner);

    // Every sender sends one message after another until told to stop.
    let acks: Acks = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (n, mut client) in senders.into_iter().enumerate() {
        let (acks, stop) = (acks.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                let body = format!("sender {n} message {i}");
                let sent = client.say(room, &body).await;
                let seq = sent["seq"].as_i64().expect("seq");
                acks.lock().expect("acks").push((seq, body));
                i += 1;
            }
        }));
    }
    // A few hundred acknowledged first, so the backup copies a room that is busy.
    let count = || acks.lock().expect("acks").len();
    eventually("300 messages acknowledged", async || count() >= 300).await;

    let backup_dir = tmp.path().join("backup");
    let before: Vec<(i64, String)> = acks.lock().expect("acks").clone();
    let path = backup_dir.to_str().expect("utf-8 path");
    let report = natter(&live_settings, &["backup", path])
        .await
        .expect("backup");
    let during = count() - before.len();
    eventually("more messages acknowledged after the backup", async || {
        count() > before.len() + during
    })
    .await;
    stop.store(true, Ordering::Release);
    for task in tasks {
        task.await.expect("sender");
    }
    assert!(report.contains("and 1 upload blobs"), "{report}");
    eprintln!(
        "backup under load: {} acknowledged before it began, {during} while it ran, {} in all",
        before.len(),
        count()
    );

    // The copy is a sound database and a data directory a fresh server serves.
    let problems = natter_store_sql::sqlite_backup::integrity_check(&backup_dir.join("natter.db"))
        .expect("integrity check");
    assert_eq!(problems, ["ok"]);
    let mut restored = TestServer::spawn(sqlite_settings(&backup_dir), None).await;
    let mut reader = Client::connect(restored.addr, &owner_token, None).await;
    let kept = timeline(&mut reader, room).await;
    for (seq, body) in &before {
        assert_eq!(
            kept.get(seq),
            Some(body),
            "message {seq}, acknowledged before the backup began, is in it"
        );
    }
    // Nothing else: every message in the copy is one the live server stored, at its seq, and
    // the copy's timeline has no gap.
    let live: BTreeMap<i64, String> = acks.lock().expect("acks").iter().cloned().collect();
    for (seq, body) in &kept {
        if body != "see file" {
            assert_eq!(live.get(seq), Some(body), "message {seq} of the copy");
        }
    }
    // The timeline holds messages only: it starts after the senders' joins.
    let seqs: Vec<i64> = kept.keys().copied().collect();
    let first = SENDERS as i64;
    assert_eq!(
        seqs,
        (first..first + seqs.len() as i64).collect::<Vec<_>>(),
        "no gap"
    );

    // The upload came along.
    let download = reqwest::Client::new()
        .get(restored.http(&format!("/api/files/{file_id}")))
        .bearer_auth(&owner_token)
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), 200);
    assert_eq!(download.text().await.expect("body"), "the notes, kept");

    // A second backup to the same path is refused; with --force it replaces it.
    let refused = natter(&live_settings, &["backup", path]).await;
    assert!(
        matches!(refused, Err(OpsError::Usage(ref m)) if m.contains("--force")),
        "{refused:?}"
    );
    restored.stop().await;
    natter(&live_settings, &["backup", path, "--force"])
        .await
        .expect("forced backup");
    assert_eq!(
        natter_store_sql::sqlite_backup::integrity_check(&backup_dir.join("natter.db"))
            .expect("integrity check"),
        ["ok"]
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary directories left: {leftovers:?}"
    );
    server.stop().await;
}

/// The built binary: `--help` lists the commands, a refusal exits 1 with the error on
/// stderr, a backup that cannot apply exits 2, and PostgreSQL gets the pg_dump advice with
/// no password in it.
#[test]
fn the_binary_runs_operators_commands() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
            .args(args)
            .env_remove("NATTER_DATABASE")
            .env_remove("NATTER_DATA_DIR")
            .env_remove("NATTER_CONFIG")
            .output()
            .expect("run natter")
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let help = run(&["--help"]);
    assert!(help.status.success());
    for command in ["serve", "admin", "backup"] {
        assert!(
            text(&help.stdout).contains(&format!("  {command} ")),
            "{}",
            text(&help.stdout)
        );
    }
    let data_dir = data.to_str().expect("utf-8");
    let made = run(&["admin", "create-user", "ana", "--data-dir", data_dir]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    assert!(text(&made.stdout).contains("password: "));
    assert!(
        text(&made.stderr).is_empty(),
        "nothing logged: {}",
        text(&made.stderr)
    );

    let refused = run(&["admin", "create-user", "ANA", "--data-dir", data_dir]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        text(&refused.stderr).trim(),
        "natter: name_taken: that name is taken"
    );

    let missing = run(&["admin", "stats", "--data-dir", &format!("{data_dir}-typo")]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "no database there: {}",
        text(&missing.stderr)
    );

    let backup = tmp.path().join("copy");
    let copy = backup.to_str().expect("utf-8");
    let ok = run(&["backup", copy, "--data-dir", data_dir]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let again = run(&["backup", copy, "--data-dir", data_dir]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("--force"));
    let listed = run(&["admin", "list-users", "--data-dir", copy]);
    assert!(text(&listed.stdout).lines().any(|l| l.starts_with("ana ")));

    let pg = run(&[
        "backup",
        "dump.pgc",
        "--database",
        "postgres://natter:s3cret@db/chat",
    ]);
    assert_eq!(pg.status.code(), Some(2));
    let advice = text(&pg.stdout);
    assert!(
        advice.contains("pg_dump --format=custom --file=dump.pgc 'postgres://natter@db/chat'"),
        "{advice}"
    );
    assert!(!advice.contains("s3cret") && !text(&pg.stderr).contains("s3cret"));
}
