//! Durability and delivery under stress: restarts, resume, slow consumers, graceful
//! shutdown, and many concurrent senders.
//!
//! Over 500 lines on purpose: each file under tests/ is its own binary that links the whole
//! server, so suites are grouped by subject, not split by size (CI time, issue 16).

use natter_testkit::*;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

#[tokio::test]
async fn history_accounts_and_membership_survive_a_restart() {
    let mut server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(ana.say(room, &format!("before restart {i}")).await);
    }
    let ana_token = ana.token.clone();
    drop((ana, bob));
    server.restart_with(|_| {}).await;

    let mut ana = Client::connect(server.addr, &ana_token, None).await;
    let rooms = ana.welcome["rooms"].as_array().expect("rooms").clone();
    let r = rooms
        .iter()
        .find(|r| r["id"] == room)
        .expect("membership survived");
    assert_eq!(
        (r["last_seq"].as_i64(), r["member_count"].as_i64()),
        (Some(21), Some(2)),
        "bob's join (entry 1) and 20 messages"
    );
    let history = ana.ok("history", json!({"room": room, "limit": 100})).await;
    assert_eq!(history["messages"].as_array().expect("messages"), &sent);
    // Login (password hash) survived too, and sequence numbers continue.
    let name = ana.name();
    let r = reqwest::Client::new()
        .post(server.http("/api/login"))
        .json(&json!({"username": name, "password": "correct horse"}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    assert_eq!(ana.say(room, "after").await["seq"], 22);
}

#[tokio::test]
async fn resume_delivers_exactly_the_missed_messages() {
    let server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    for i in 1..=5 {
        ana.say(room, &format!("seen {i}")).await;
    }
    let seen = bob.messages(room, 5).await;
    // Entry 1 is bob's join: the messages are 2 to 6.
    assert_eq!(seen.last().expect("last")["seq"], 6);
    let bob_token = bob.token.clone();
    drop(bob);

    for i in 6..=300 {
        ana.say(room, &format!("missed {i}")).await;
    }
    let mut bob = Client::connect(
        server.addr,
        &bob_token,
        Some(json!({ room.to_string(): 6 })),
    )
    .await;
    // Live messages sent while the catch-up is running must not duplicate or reorder it.
    let sender = tokio::spawn(async move {
        for i in 301..=320 {
            ana.say(room, &format!("live {i}")).await;
        }
        ana
    });
    let got = bob.messages(room, 315).await;
    let seqs = seqs(&got);
    assert_eq!(
        seqs,
        (7..=321).collect::<Vec<_>>(),
        "exactly the missed ones, then live, in order"
    );
    bob.no_event("message", Duration::from_millis(300)).await;
    sender.await.expect("sender");
    assert_eq!(bob.welcome["reset"], json!([]), "within the resume limit");
}

/// A client further behind than `resume_limit` in a room gets that room in `reset` and no
/// replay of it (other rooms resume as usual); live messages follow.
#[tokio::test]
async fn a_client_too_far_behind_gets_the_room_reset_not_replayed() {
    let server = TestServer::start_with(|s| s.resume_limit = Some(10)).await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let busy = room_with(&mut ana, &mut [&mut bob]).await;
    let quiet = room_with(&mut ana, &mut [&mut bob]).await;
    ana.say(busy, "seen").await;
    ana.say(quiet, "seen").await;
    bob.messages(busy, 1).await;
    bob.messages(quiet, 1).await;
    let bob_token = bob.token.clone();
    drop(bob);

    for i in 0..11 {
        ana.say(busy, &format!("missed {i}")).await;
    }
    ana.say(quiet, "missed").await;
    // Each room's entry 1 is bob's join; "seen" is 2.
    let resume = json!({ busy.to_string(): 2, quiet.to_string(): 2 });
    let mut bob = Client::connect(server.addr, &bob_token, Some(resume)).await;
    assert_eq!(bob.welcome["reset"], json!([busy]));
    let replayed = bob.messages(quiet, 1).await;
    assert_eq!(
        replayed[0]["seq"], 3,
        "the room within the limit is replayed"
    );
    bob.no_event_where("message", Duration::from_millis(300), |m| m["room"] == busy)
        .await;
    // Its past is there for `history`; its present arrives live.
    let history = bob.ok("history", json!({"room": busy, "limit": 5})).await;
    assert_eq!(history["messages"][4]["seq"], 13);
    ana.say(busy, "live").await;
    let live = bob.event_where("message", |m| m["room"] == busy).await;
    assert_eq!(live["seq"], 14);
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_without_delaying_others_and_resumes_without_loss() {
    const SENDS: usize = 1500;
    let server = TestServer::start_with(|s| {
        s.outbound_queue = Some(64);
        s.write_timeout_ms = Some(500);
        s.sqlite_synchronous = Some("normal".into());
        // It resumes from far behind: replayed, not reset.
        s.resume_limit = Some(10 * SENDS as u64);
    })
    .await;
    let mut ana = server.user("ana").await;
    let mut bob = server.user("bob").await;
    let (slow_token, _) = server.register("slow").await;
    let ws = Client::open_small_buffer(server.addr).await;
    let mut slow = Client::auth(ws, &slow_token, None, false)
        .await
        .expect("auth");
    let room = room_with(&mut ana, &mut [&mut bob, &mut slow]).await;

    // `slow` stops reading. Ana sends large messages fast; Bob keeps up.
    let body = "y".repeat(3000);
    let started = std::time::Instant::now();
    let mut longest = Duration::ZERO;
    for i in 0..SENDS {
        let t = std::time::Instant::now();
        let m = ana.say(room, &format!("{i} {body}")).await;
        let got = bob.event_where("message", |e| e["room"] == room).await;
        assert_eq!(got["seq"], m["seq"]);
        longest = longest.max(t.elapsed());
    }
    assert!(
        longest < Duration::from_secs(3),
        "a send+delivery took {longest:?} while a consumer was stalled"
    );
    let elapsed = started.elapsed();
    // The stalled connection was dropped (it may or may not see the 4008 frame behind the
    // data it never read).
    let code = slow.closed().await;
    assert!(matches!(code, Some(4008) | None), "closed with {code:?}");
    // It resumes from what it had and gets everything, once, in order.
    let mut slow = Client::connect(
        server.addr,
        &slow_token,
        Some(json!({ room.to_string(): 0 })),
    )
    .await;
    let got = slow.messages(room, SENDS).await;
    let seqs = seqs(&got);
    // After bob's and slow's joins (entries 1 and 2).
    assert_eq!(seqs, (3..SENDS as i64 + 3).collect::<Vec<_>>());
    eprintln!("{SENDS} sends with a stalled consumer took {elapsed:?}; longest {longest:?}");
}

#[tokio::test]
async fn graceful_shutdown_says_going_away_and_keeps_acknowledged_messages() {
    let mut server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let room = room_with(&mut ana, &mut []).await;
    let last = ana.say(room, "last words").await;
    server.stop().await;
    assert_eq!(ana.closed().await, Some(1001));
    server.restart_with(|_| {}).await;
    let mut again = Client::connect(server.addr, &ana.token, None).await;
    let h = again.ok("history", json!({"room": room})).await;
    assert_eq!(h["messages"][0], last);
}

/// Shutdown tells every socket 1001 at once, authenticated or still waiting for `auth`, and
/// keeps answering HTTP while it drains: `/healthz` says 503 (not a refused connection) while
/// the sockets it told to go are still open (the test holds them, which holds the drain), and
/// a socket opened during the drain is told 1001 too. Then it stops without waiting out the
/// drain timeout (5 s).
#[tokio::test]
async fn shutdown_closes_every_socket_with_1001_and_health_says_503_while_draining() {
    let mut server = TestServer::start().await;
    let mut ana = server.user("ana").await;
    let mut waiting = Client::open(server.addr).await;
    let http = reqwest::Client::new();
    let health = http
        .get(server.http("/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);

    let started = std::time::Instant::now();
    server.begin_stop();
    assert_eq!(closed(&mut waiting).await, Some(1001), "unauthenticated");
    assert_eq!(ana.closed().await, Some(1001), "authenticated");
    let told = started.elapsed();
    assert!(told < Duration::from_secs(2), "told to go after {told:?}");

    // Both sockets are still held open by this test: the server is draining.
    let health = http
        .get(server.http("/healthz"))
        .send()
        .await
        .expect("health answers while draining");
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = health.json().await.expect("json");
    assert_eq!(body, json!({"status": "shutting_down"}));
    let mut late = Client::open(server.addr).await;
    assert_eq!(closed(&mut late).await, Some(1001), "opened while draining");

    drop((ana, waiting, late));
    server.stop().await;
    let stopped = started.elapsed();
    assert!(
        stopped < Duration::from_secs(4),
        "stopped after {stopped:?}"
    );
    assert!(
        http.get(server.http("/healthz")).send().await.is_err(),
        "the listener is closed once drained"
    );
}

/// 10 clients each send 1,000 messages concurrently into one room: every member receives
/// every message exactly once, in sequence order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_clients_times_a_thousand_messages_arrive_once_in_order() {
    const CLIENTS: usize = 10;
    const EACH: usize = 1000;
    const WINDOW: usize = 32;
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        clients.push(server.user(&format!("load{i}")).await);
    }
    let (first, rest) = clients.split_first_mut().expect("clients");
    let mut others: Vec<&mut Client> = rest.iter_mut().collect();
    let room = room_with(first, &mut others).await;

    let mut tasks = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            use futures_util::{SinkExt, StreamExt};
            use tokio_tungstenite::tungstenite::Message;
            let mut sent = 0usize;
            let mut acked = 0usize;
            let mut received: Vec<(i64, String)> = Vec::with_capacity(CLIENTS * EACH);
            // Events that arrived while waiting for earlier replies.
            for e in c.events.drain(..) {
                if e["type"] == "message" && e["data"]["room"] == room {
                    received.push((e["data"]["seq"].as_i64().expect("seq"), e["data"]["body"].as_str().expect("b").to_string()));
                }
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while acked < EACH || received.len() < CLIENTS * EACH {
                while sent < EACH && sent - acked < WINDOW {
                    let frame = json!({"type": "message.send", "ref": format!("s{sent}"),
                        "data": {"room": room, "body": format!("{i}:{sent}"), "client_id": format!("{i}-{sent}")}});
                    c.ws.send(Message::Text(frame.to_string().into())).await.expect("send");
                    sent += 1;
                }
                let frame = tokio::time::timeout_at(deadline, c.ws.next())
                    .await
                    .unwrap_or_else(|_| panic!("client {i}: stuck at acked {acked}, received {}", received.len()))
                    .expect("open")
                    .expect("frame");
                let Message::Text(t) = frame else { continue };
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
                match v["type"].as_str() {
                    Some("ok") => acked += 1,
                    Some("error") => panic!("client {i}: {v}"),
                    Some("message") => received.push((
                        v["data"]["seq"].as_i64().expect("seq"),
                        v["data"]["body"].as_str().expect("body").to_string(),
                    )),
                    _ => {}
                }
            }
            received
        }));
    }
    let mut expected_bodies: Vec<String> = (0..CLIENTS)
        .flat_map(|i| (0..EACH).map(move |n| format!("{i}:{n}")))
        .collect();
    expected_bodies.sort();
    let mut order_seen: Option<Vec<String>> = None;
    for t in tasks {
        let received = t.await.expect("client task");
        let seqs: Vec<i64> = received.iter().map(|(s, _)| *s).collect();
        // After the joins of the nine clients but the room's creator.
        let joins = CLIENTS as i64 - 1;
        assert_eq!(
            seqs,
            (joins + 1..=joins + (CLIENTS * EACH) as i64).collect::<Vec<_>>(),
            "every seq once, in order"
        );
        let bodies: Vec<String> = received.iter().map(|(_, b)| b.clone()).collect();
        let mut sorted = bodies.clone();
        sorted.sort();
        assert_eq!(sorted, expected_bodies, "every message exactly once");
        // Per sender, its messages arrive in the order it sent them.
        let mut next: HashMap<&str, usize> = HashMap::new();
        for b in &bodies {
            let (who, n) = b.split_once(':').expect("body");
            let n: usize = n.parse().expect("n");
            let want = next.entry(who).or_insert(0);
            assert_eq!(n, *want, "sender {who} out of order");
            *want += 1;
        }
        // Everyone saw the same order.
        match &order_seen {
            None => order_seen = Some(bodies),
            Some(o) => assert_eq!(o, &bodies),
        }
    }
}

/// Starts the real `natter` binary on port 0 in `dir`; returns it and the address it printed.
async fn spawn_binary(dir: &std::path::Path) -> (tokio::process::Child, std::net::SocketAddr) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["--listen", "127.0.0.1:0", "--log", "warn", "--data-dir"])
        .arg(dir)
        // The memory test signs up 24 users from one address (tests/abuse.rs tests the limit).
        .args(["--register-per-hour-per-address", "1000000"])
        .args([
            "--hash-waiting-per-address",
            "100000",
            "--hash-wait-ms",
            "600000",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn natter");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(WAIT, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("prints its address in time")
        .expect("read");
    let addr = line
        .trim()
        .strip_prefix("natter listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");
    (child, addr)
}

/// The real binary: prints its address, and on SIGTERM tells clients 1001 and exits 0.
#[tokio::test]
async fn the_binary_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = spawn_binary(dir.path()).await;
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/register"))
        .json(&json!({"username": unique("sig"), "password": "correct horse"}))
        .send()
        .await
        .expect("register");
    let token = resp.json::<serde_json::Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let mut client = Client::connect(addr, &token, None).await;
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    assert_eq!(client.closed().await, Some(1001));
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert!(exit.success(), "exit status {exit:?}");
    assert!(dir.path().join("natter.db").exists());
}

/// Sign-ups hash passwords with argon2id (19 MiB each): the binary must give that memory
/// back (it once kept ~650 MB after 100 sign-ups), and hashes run a few at a time.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn sign_up_bursts_do_not_leave_memory_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, addr) = spawn_binary(dir.path()).await;
    let pid = child.id().expect("pid");
    let mut tasks = Vec::new();
    for batch in 0..6 {
        for i in 0..4 {
            tasks.push(tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .post(format!("http://{addr}/api/register"))
                    .json(&json!({"username": unique(&format!("m{batch}x{i}")), "password": "correct horse"}))
                    .send()
                    .await
                    .expect("register");
                assert_eq!(r.status(), 201);
            }));
        }
    }
    for t in tasks {
        t.await.expect("task");
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    assert!(rss_kb < 120 * 1024, "RSS after 24 sign-ups: {rss_kb} kB");
}

#[tokio::test]
async fn a_sign_in_storm_does_not_cut_off_a_stalled_presence_watcher() {
    // Far more presence changes than the watcher's queue holds or its socket buffers take
    // while it reads nothing. Presence is read from the node's feed, not queued per watcher:
    // it is not cut off, and gets every change in order once it reads again.
    const GUESTS: usize = 400;
    let server = TestServer::start_with(|s| {
        s.outbound_queue = Some(16);
        s.allow_guests = Some(true);
    })
    .await;
    let (token, _) = server.register("watch").await;
    let ws = Client::open_small_buffer(server.addr).await;
    let mut watcher = Client::auth(ws, &token, None, true).await.expect("auth");

    // They all come online at once, then all go again.
    let guests = guests_online_at_once(&server, "storm", GUESTS).await;
    let expected: Vec<i64> = guests.iter().map(Client::id).collect();
    drop(guests);

    // (The watcher's own `online` comes first; only the guests' changes are counted.)
    let mut seen: HashMap<i64, Vec<bool>> = HashMap::new();
    let mut changes = 0;
    while changes < 2 * GUESTS {
        let p = watcher.event("presence").await;
        let id = p["user"]["id"].as_i64().expect("user id");
        if expected.contains(&id) {
            seen.entry(id)
                .or_default()
                .push(p["online"].as_bool().expect("online"));
            changes += 1;
        }
    }
    for id in expected {
        assert_eq!(
            seen.get(&id).map(Vec::as_slice),
            Some(&[true, false][..]),
            "guest {id}: online then offline, once each"
        );
    }
    // Still connected and served.
    watcher.ok("ping", json!({})).await;
}

#[tokio::test]
async fn a_watcher_too_far_behind_the_presence_feed_gets_who_is_online_and_stays() {
    // A server that keeps only 4 presence changes, and a watcher that reads nothing: its
    // socket is filled first with large messages (loopback buffers take a megabyte or more),
    // then 300 guests come online. It falls behind what the server keeps. It is not closed;
    // it gets a `presence_reset` (everyone online) and the changes after it, and a client
    // applying them in order ends at the truth, as it does again when the guests leave.
    const GUESTS: usize = 300;
    const FILLER: usize = 800;
    let server = TestServer::start_with(|s| {
        s.presence_backlog = Some(4);
        s.allow_guests = Some(true);
        s.outbound_queue = Some(4096);
        s.rate_per_sec = Some(100_000.0);
        s.rate_burst = Some(100_000.0);
        s.write_timeout_ms = Some(120_000);
    })
    .await;
    let mut talker = server.user("talk").await;
    let (token, _) = server.register("watch").await;
    let ws = Client::open_small_buffer(server.addr).await;
    let mut watcher = Client::auth(ws, &token, None, true).await.expect("auth");
    let me = watcher.id();
    let room = room_with(&mut talker, &mut [&mut watcher]).await;
    let body = "z".repeat(3900);
    for i in 0..FILLER {
        talker.say(room, &format!("{i} {body}")).await;
    }

    let guests = guests_online_at_once(&server, "crowd", GUESTS).await;
    let mut everyone: Vec<i64> = guests.iter().map(Client::id).collect();
    everyone.extend([me, talker.id()]);
    everyone.sort_unstable();

    // Apply presence as a client does until the view is the truth.
    let mut online: BTreeSet<i64> = [me, talker.id()].into();
    let mut resets = 0;
    let mut filler = 0;
    while online.iter().copied().collect::<Vec<_>>() != everyone {
        let frame = watcher.read().await;
        filler += usize::from(frame["type"] == "message");
        resets += usize::from(apply_presence(&mut online, &frame));
    }
    assert!(
        resets >= 1,
        "the watcher fell hundreds of changes behind a backlog of 4"
    );

    drop(guests);
    while online.len() != 2 {
        let frame = watcher.read().await;
        filler += usize::from(frame["type"] == "message");
        apply_presence(&mut online, &frame);
    }
    // Nothing else was lost on the way (presence may overtake queued messages; the rest of
    // them follow), and the connection is still served.
    while filler < FILLER {
        let frame = watcher.read().await;
        filler += usize::from(frame["type"] == "message");
        apply_presence(&mut online, &frame);
    }
    assert_eq!(online, BTreeSet::from([me, talker.id()]));
    watcher.ok("ping", json!({})).await;
}

/// `count` guests (nicknames from `prefix`), signed up one by one, then connected all at once
/// (without presence events of their own).
async fn guests_online_at_once(server: &TestServer, prefix: &str, count: usize) -> Vec<Client> {
    let http = reqwest::Client::new();
    let mut tokens = Vec::new();
    for _ in 0..count {
        let body: serde_json::Value = http
            .post(server.http("/api/guest"))
            .json(&json!({ "nickname": unique(prefix) }))
            .send()
            .await
            .expect("guest request")
            .json()
            .await
            .expect("guest json");
        tokens.push(body["token"].as_str().expect("token").to_string());
    }
    let guests = futures_util::future::join_all(
        tokens
            .iter()
            .map(|token| Client::try_connect(server.addr, token, None, false)),
    )
    .await;
    guests.into_iter().map(|g| g.expect("guest auth")).collect()
}

/// Applies a `presence` or `presence_reset` event to who is online, as a client does; true for
/// a reset.
fn apply_presence(online: &mut BTreeSet<i64>, frame: &serde_json::Value) -> bool {
    let data = &frame["data"];
    match frame["type"].as_str() {
        Some("presence_reset") => {
            *online = data["online"]
                .as_array()
                .expect("online list")
                .iter()
                .map(|u| u["id"].as_i64().expect("user id"))
                .collect();
            true
        }
        Some("presence") => {
            let id = data["user"]["id"].as_i64().expect("user id");
            if data["online"].as_bool().expect("online") {
                online.insert(id);
            } else {
                online.remove(&id);
            }
            false
        }
        _ => false,
    }
}
