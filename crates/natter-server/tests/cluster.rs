//! Natter as a cluster: real `natter` processes on loopback ports sharing one PostgreSQL and
//! one Redis, behind nginx configured with deploy/nginx/natter.conf. Messages, presence,
//! typing and membership cross nodes; a node killed with SIGKILL mid-traffic loses nothing and
//! duplicates nothing; a Redis restart loses nothing either.
//!
//! Needs `NATTER_TEST_POSTGRES` (a `postgres://` URL; each test makes and drops its own
//! database), `NATTER_TEST_REDIS` (a `redis://` URL; each test uses its own key prefix, and the
//! restart test its own `redis-server` on a spare port) and `NATTER_TEST_NGINX` (the nginx
//! binary). Prints a skip without them, and fails instead when `NATTER_REQUIRE_SERVICES=1`.
//! The `natter` binary is this crate's (or `NATTER_BIN`), copied first so that a concurrent
//! build cannot replace it mid-test.
//!
//! Over 500 lines on purpose: each file under tests/ is its own binary that links the whole
//! server, so suites are grouped by subject, not split by size (CI time, issue 16).

use futures_util::{SinkExt, StreamExt};
use natter_testkit::{
    register, room_with, seqs, spare_port, unique, wait_for_listener, Client, OwnRedis,
    ScratchDatabase, NGINX, POSTGRES, REDIS, WAIT,
};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Presence settings of the test nodes: a dead node's users go offline within ~2 s.
const HEARTBEAT_MS: u64 = 200;
const EXPIRY_MS: u64 = 1500;

struct Services {
    postgres: String,
    redis: String,
    nginx: String,
}

fn services(test: &str) -> Option<Services> {
    let mut values = natter_testkit::services(test, &[POSTGRES, REDIS, NGINX])?.into_iter();
    Some(Services {
        postgres: values.next()?,
        redis: values.next()?,
        nginx: values.next()?,
    })
}

/// A running child process, SIGKILLed when dropped.
struct Proc {
    addr: SocketAddr,
    child: Option<Child>,
}

impl Proc {
    /// SIGTERM, then waits (bounded) for a graceful exit; SIGKILL if it takes too long.
    async fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
    }

    /// SIGKILL: no shutdown, no goodbye.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The natter binary, copied into `dir`.
fn natter_binary(dir: &Path) -> PathBuf {
    let built = std::env::var("NATTER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_natter").into());
    let copy = dir.join("natter");
    std::fs::copy(&built, &copy).expect("copy the natter binary");
    copy
}

/// Starts a binary that this process copied. Another test's `fork` can still hold the
/// copy's write descriptor for the moment until its child `exec`s, and `exec` then fails with
/// "Text file busy" (ETXTBSY): that passes, so it is retried (bounded).
fn spawn_copied_binary(command: &mut Command) -> Child {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            spawned => return spawned.expect("start natter"),
        }
    }
}

/// Nodes sharing a fresh database and a Redis prefix, and nginx in front of them.
struct Cluster {
    tmp: tempfile::TempDir,
    bin: PathBuf,
    database: ScratchDatabase,
    redis: String,
    prefix: String,
    nodes: Vec<Proc>,
    nginx: Option<Proc>,
}

impl Cluster {
    async fn start(services: &Services, redis: &str, nodes: usize) -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut cluster = Cluster {
            bin: natter_binary(tmp.path()),
            tmp,
            database: ScratchDatabase::new(&services.postgres, "natter_cluster"),
            redis: redis.to_string(),
            prefix: format!("{}:", unique("natter-cluster")),
            nodes: Vec::new(),
            nginx: None,
        };
        for i in 0..nodes {
            let node = cluster.spawn_node(i).await;
            cluster.nodes.push(node);
        }
        cluster.nginx = Some(cluster.spawn_nginx(&services.nginx).await);
        cluster
    }

    async fn spawn_node(&self, i: usize) -> Proc {
        let addr = SocketAddr::from(([127, 0, 0, 1], spare_port()));
        let dir = self.tmp.path().join(format!("node{i}"));
        std::fs::create_dir_all(&dir).expect("node dir");
        let log = std::fs::File::create(dir.join("natter.log")).expect("log file");
        let mut command = Command::new(&self.bin);
        command
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&dir)
            .args(["--database", &self.database.url])
            .args(["--broker", &self.redis])
            .args(["--redis-prefix", &self.prefix])
            .args(["--presence-heartbeat-ms", &HEARTBEAT_MS.to_string()])
            .args(["--presence-expiry-ms", &EXPIRY_MS.to_string()])
            .args(["--rate-per-sec", "100000", "--rate-burst", "100000"])
            .args(["--register-per-hour-per-address", "1000000"])
            .args(["--login-per-minute-per-address", "1000000"])
            .args([
                "--hash-waiting-per-address",
                "100000",
                "--hash-wait-ms",
                "600000",
            ])
            .args(["--log", "warn,natter_redis=info"])
            .stdout(Stdio::null())
            .stderr(log);
        let mut child = spawn_copied_binary(&mut command);
        let what = format!("natter (log: {})", dir.join("natter.log").display());
        if let Err(e) = wait_for_listener(addr, &what, &mut child).await {
            let log = std::fs::read_to_string(dir.join("natter.log")).unwrap_or_default();
            panic!("{e}\n{log}");
        }
        Proc {
            addr,
            child: Some(child),
        }
    }

    /// nginx with deploy/nginx/natter.conf, pointed at our nodes.
    async fn spawn_nginx(&self, nginx: &str) -> Proc {
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/nginx/natter.conf"
        ))
        .expect("deploy/nginx/natter.conf");
        let addr = SocketAddr::from(([127, 0, 0, 1], spare_port()));
        let servers: String = self
            .nodes
            .iter()
            .map(|n| format!("    server {} max_fails=1 fail_timeout=5s;\n", n.addr))
            .collect();
        let mut site = String::new();
        let mut servers_written = false;
        for line in template.lines() {
            if line.trim_start().starts_with("server 127.0.0.1:") {
                if !servers_written {
                    site.push_str(&servers);
                    servers_written = true;
                }
                continue;
            }
            if line.trim() == "listen 80;" {
                site.push_str(&format!("    listen {addr};\n"));
                continue;
            }
            site.push_str(line);
            site.push('\n');
        }
        assert!(servers_written, "the template's upstream lists servers");
        let dir = self.tmp.path().join("nginx");
        std::fs::create_dir_all(&dir).expect("nginx dir");
        std::fs::write(dir.join("natter.conf"), site).expect("write site");
        let d = dir.display();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               include {d}/natter.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        if let Err(e) = wait_for_listener(addr, "nginx", &mut child).await {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            panic!("{e}\n{log}");
        }
        Proc {
            addr,
            child: Some(child),
        }
    }

    fn node(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr
    }

    fn proxy(&self) -> SocketAddr {
        self.nginx.as_ref().expect("nginx").addr
    }

    /// Registers a user through `addr`; returns (token, user).
    async fn register(&self, addr: SocketAddr, prefix: &str) -> (String, Value) {
        register(addr, prefix).await
    }

    /// Registers and connects a user on `addr`.
    async fn user(&self, addr: SocketAddr, prefix: &str) -> Client {
        Client::new_user(addr, prefix).await
    }

    /// Stops everything (nodes gracefully, so they leave Redis tidy) and drops the database.
    async fn finish(mut self) {
        self.nginx.take();
        for node in &mut self.nodes {
            node.stop().await;
        }
        self.database.drop().await;
    }
}

/// Waits for a presence event about `user`.
async fn presence_of(c: &mut Client, user: i64, online: bool) {
    c.event_where("presence", |d| {
        d["user"]["id"] == user && d["online"] == online
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_messages_presence_typing_and_membership() {
    let Some(services) = services("three_nodes_share_messages_presence_typing_and_membership")
    else {
        return;
    };
    let cluster = Cluster::start(&services, &services.redis, 3).await;
    let mut ana = cluster.user(cluster.node(0), "ana").await;
    let mut bob = cluster.user(cluster.node(1), "bob").await;
    presence_of(&mut ana, bob.id(), true).await;
    let mut cid = cluster.user(cluster.node(2), "cid").await;
    presence_of(&mut ana, cid.id(), true).await;
    presence_of(&mut bob, cid.id(), true).await;
    let online = ana.ok("presence.list", json!({})).await;
    let online: HashSet<i64> = online["online"]
        .as_array()
        .expect("online")
        .iter()
        .map(|u| u["id"].as_i64().expect("id"))
        .collect();
    assert!([ana.id(), bob.id(), cid.id()]
        .iter()
        .all(|id| online.contains(id)));

    // Membership crosses nodes.
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    ana.event_where("member_joined", |d| {
        d["room"] == room && d["user"]["id"] == bob.id()
    })
    .await;
    cid.ok("room.join", json!({"room": room})).await;
    for c in [&mut ana, &mut bob] {
        // The join is a stream entry (2: bob's is 1), then `member_joined`.
        let joined = c
            .event_where("room_event", |d| {
                d["room"] == room
                    && d["change"]["op"] == "join"
                    && d["change"]["user"]["id"] == cid.id()
            })
            .await;
        assert_eq!(joined["seq"], 2);
        c.event_where("member_joined", |d| {
            d["room"] == room && d["user"]["id"] == cid.id()
        })
        .await;
    }
    let members = ana.ok("room.members", json!({"room": room})).await;
    assert_eq!(members["members"].as_array().expect("members").len(), 3);
    assert!(members["members"]
        .as_array()
        .expect("members")
        .iter()
        .all(|m| m["online"] == true));

    // Typing crosses nodes, and not back to the typist.
    bob.ok("typing", json!({"room": room, "active": true}))
        .await;
    for c in [&mut ana, &mut cid] {
        let t = c.event_where("typing", |d| d["room"] == room).await;
        assert_eq!(t["user"]["id"], bob.id());
        assert_eq!(t["active"], true);
    }
    bob.no_event("typing", Duration::from_millis(200)).await;

    // Concurrent senders on every node: every member gets every message once, in seq order.
    const PER_SENDER: usize = 25;
    let mut senders = Vec::new();
    for (i, c) in [ana, bob, cid].into_iter().enumerate() {
        senders.push(tokio::spawn(async move {
            let mut c = c;
            for n in 0..PER_SENDER {
                c.say(room, &format!("from {i} #{n}")).await;
            }
            c
        }));
    }
    let mut clients = Vec::new();
    for s in senders {
        clients.push(s.await.expect("sender"));
    }
    let total = 3 * PER_SENDER;
    for c in &mut clients {
        let got = c.messages(room, total).await;
        let seqs = seqs(&got);
        assert_eq!(
            seqs,
            (3..total as i64 + 3).collect::<Vec<_>>(),
            "{}: in order, once",
            c.name()
        );
        c.no_event_where("message", Duration::from_millis(300), |m| m["room"] == room)
            .await;
    }
    let [mut ana, mut bob, mut cid]: [Client; 3] = clients.try_into().ok().expect("three");

    // Leaving crosses nodes; so does going offline.
    cid.ok("room.leave", json!({"room": room})).await;
    for c in [&mut ana, &mut bob] {
        c.event_where("member_left", |d| {
            d["room"] == room && d["user"]["id"] == cid.id()
        })
        .await;
    }
    let bob_id = bob.id();
    drop(bob);
    presence_of(&mut ana, bob_id, false).await;
    presence_of(&mut cid, bob_id, false).await;
    drop((ana, cid));
    cluster.finish().await;
}

/// A client that keeps sending and receiving across disconnects: it reconnects through the
/// proxy, resumes from the last seq it saw, and resends an unanswered send with the same
/// client id. It checks as it goes that the room's entries (messages, and the joins of the
/// others) arrive in seq order with no gap and no duplicate.
struct Chatter {
    name: String,
    token: String,
    room: i64,
    /// (seq, client_id of a message; None for a room event) of every entry received, in
    /// arrival order.
    received: Vec<(i64, Option<String>)>,
    reconnects: usize,
}

impl Chatter {
    fn last_seq(&self) -> i64 {
        self.received.last().map_or(0, |m| m.0)
    }

    /// Sends `sends` messages (one in flight at a time, `pace` apart) and runs until every one
    /// is acknowledged and `total` messages have arrived. The first connection goes to
    /// `first`, every later one to `proxy`.
    async fn run(
        mut self,
        first: SocketAddr,
        proxy: SocketAddr,
        sends: usize,
        total: i64,
        pace: Duration,
        acked: Arc<AtomicUsize>,
    ) -> Chatter {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut addr = first;
        let mut next = 0usize;
        loop {
            assert!(Instant::now() < deadline, "{}: did not finish", self.name);
            match self
                .session(addr, &mut next, sends, total, pace, &acked)
                .await
            {
                Ok(()) => return self,
                Err(why) => {
                    self.reconnects += 1;
                    assert!(
                        self.reconnects < 50,
                        "{}: too many reconnects ({why})",
                        self.name
                    );
                    addr = proxy;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// One connection's life; Err when it broke.
    async fn session(
        &mut self,
        addr: SocketAddr,
        next: &mut usize,
        sends: usize,
        total: i64,
        pace: Duration,
        acked: &AtomicUsize,
    ) -> Result<(), String> {
        let url = format!("ws://{addr}/ws");
        let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        let auth = json!({"type": "auth", "ref": "auth", "data": {
            "token": self.token, "presence": false,
            "resume": {self.room.to_string(): self.last_seq()},
        }});
        ws.send(Message::Text(auth.to_string().into()))
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut authed = false;
        let mut in_flight: Option<String> = None;
        let mut next_send = tokio::time::Instant::now();
        loop {
            if authed && *next >= sends && in_flight.is_none() && self.last_seq() >= total {
                return Ok(());
            }
            if authed
                && in_flight.is_none()
                && *next < sends
                && tokio::time::Instant::now() >= next_send
            {
                let client_id = format!("{}-{}", self.name, *next);
                let frame = json!({"type": "message.send", "ref": client_id, "data": {
                    "room": self.room, "body": format!("hello {client_id}"), "client_id": client_id,
                }});
                ws.send(Message::Text(frame.to_string().into()))
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                in_flight = Some(client_id);
            }
            let wait = if in_flight.is_none() && *next < sends {
                next_send
                    .saturating_duration_since(tokio::time::Instant::now())
                    .max(Duration::from_millis(1))
            } else {
                WAIT
            };
            let frame = match tokio::time::timeout(wait, ws.next()).await {
                Err(_) if in_flight.is_none() && *next < sends => continue,
                Err(_) => {
                    return Err(format!(
                        "nothing for {wait:?} (last seq {})",
                        self.last_seq()
                    ))
                }
                Ok(None) => return Err("closed".into()),
                Ok(Some(Err(e))) => return Err(format!("read: {e}")),
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(Message::Close(_)))) => return Err("close frame".into()),
                Ok(Some(Ok(_))) => continue,
            };
            let frame: Value = serde_json::from_str(frame.as_str()).map_err(|e| e.to_string())?;
            match frame["type"].as_str() {
                Some("ok") if frame["ref"] == "auth" => authed = true,
                Some("error") if frame["ref"] == "auth" => {
                    return Err(format!("auth failed: {frame}"));
                }
                Some("ok") => {
                    let done = in_flight.take();
                    assert_eq!(
                        frame["ref"].as_str(),
                        done.as_deref(),
                        "{}: reply",
                        self.name
                    );
                    *next += 1;
                    acked.fetch_add(1, Ordering::Relaxed);
                    next_send = tokio::time::Instant::now() + pace;
                }
                Some("error") => {
                    // A failed send (a node losing its database or broker): retry it as is.
                    assert_eq!(frame["error"]["code"], "internal", "{}: {frame}", self.name);
                    in_flight = None;
                    next_send = tokio::time::Instant::now() + pace;
                }
                Some(kind @ ("message" | "room_event")) => {
                    let m = &frame["data"];
                    if m["room"] != self.room {
                        continue;
                    }
                    let seq = m["seq"].as_i64().expect("seq");
                    assert_eq!(
                        seq,
                        self.last_seq() + 1,
                        "{}: entries in order, none missing, none twice",
                        self.name
                    );
                    let client_id = m["client_id"].as_str().expect("client_id").to_string();
                    self.received
                        .push((seq, (kind == "message").then_some(client_id)));
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_traffic_loses_and_duplicates_nothing() {
    let Some(services) = services("a_node_killed_mid_traffic_loses_and_duplicates_nothing") else {
        return;
    };
    let mut cluster = Cluster::start(&services, &services.redis, 3).await;
    let mut owner = cluster.user(cluster.node(1), "owner").await;
    let room_name = unique("kill");
    let room = owner.ok("room.create", json!({"name": room_name})).await["room"]["id"]
        .as_i64()
        .expect("room");
    // Someone on the doomed node who will not come back, and a watcher elsewhere.
    let mut watcher = cluster.user(cluster.node(2), "watch").await;
    let mut zed = cluster.user(cluster.node(0), "zed").await;
    zed.ok("room.join", json!({"room": room})).await;
    presence_of(&mut watcher, zed.id(), true).await;

    const CHATTERS: usize = 6;
    const SENDS: usize = 30;
    // The room's entries: zed's join, each chatter's join, every send.
    let total = 1 + CHATTERS as i64 + (CHATTERS * SENDS) as i64;
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..CHATTERS {
        let (token, user) = cluster.register(cluster.proxy(), &format!("ch{i}_")).await;
        let mut joiner = Client::connect(cluster.proxy(), &token, None).await;
        joiner.ok("room.join", json!({"room": room})).await;
        drop(joiner);
        let chatter = Chatter {
            name: user["name"].as_str().expect("name").to_string(),
            token,
            room,
            received: Vec::new(),
            reconnects: 0,
        };
        // Two chatters start on each node; after a break they come back through nginx.
        let first = cluster.node(i % 3);
        let proxy = cluster.proxy();
        let acked = acked.clone();
        tasks.push(tokio::spawn(chatter.run(
            first,
            proxy,
            SENDS,
            total,
            Duration::from_millis(15),
            acked,
        )));
    }
    // Mid-traffic: SIGKILL node 0.
    let deadline = Instant::now() + WAIT * 3;
    while acked.load(Ordering::Relaxed) < CHATTERS * SENDS / 3 {
        assert!(Instant::now() < deadline, "traffic did not flow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed = Instant::now();
    cluster.nodes[0].kill();
    let acked_at_kill = acked.load(Ordering::Relaxed);

    // The dead node's users go offline for everyone, within the expiry and a heartbeat.
    let zed_id = zed.id();
    drop(zed);
    presence_of(&mut watcher, zed_id, false).await;
    let offline_after = killed.elapsed();
    assert!(
        offline_after < Duration::from_millis(EXPIRY_MS + 4 * HEARTBEAT_MS + 1000),
        "offline after {offline_after:?}"
    );

    let mut chatters = Vec::new();
    for task in tasks {
        chatters.push(task.await.expect("chatter"));
    }
    let sent: HashSet<String> = chatters
        .iter()
        .flat_map(|c| (0..SENDS).map(move |n| format!("{}-{n}", c.name)))
        .collect();
    for c in &chatters {
        let seqs: Vec<i64> = c.received.iter().map(|m| m.0).collect();
        assert_eq!(
            seqs,
            (1..=total).collect::<Vec<_>>(),
            "{}: every seq once",
            c.name
        );
        let ids: HashSet<String> = c.received.iter().filter_map(|m| m.1.clone()).collect();
        assert_eq!(ids, sent, "{}: every send arrived, each once", c.name);
    }
    // The store holds each send once.
    let stored = owner
        .ok("history", json!({"room": room, "after": 0, "limit": 100}))
        .await;
    let mut stored_ids: Vec<String> = stored["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["client_id"].as_str().expect("client_id").to_string())
        .collect();
    let more = owner
        .ok("history", json!({"room": room, "after": 100, "limit": 100}))
        .await;
    stored_ids.extend(
        more["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["client_id"].as_str().expect("client_id").to_string()),
    );
    assert_eq!(stored_ids.len(), total as usize, "stored once each");
    let reconnected: usize = chatters.iter().map(|c| c.reconnects).sum();
    assert!(reconnected >= 2, "the doomed node's chatters reconnected");
    eprintln!(
        "kill test: {total} messages, {acked_at_kill} acknowledged before the kill, \
         {reconnected} reconnects, dead node's user offline after {offline_after:?}"
    );
    drop((owner, watcher));
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_no_message() {
    let Some(services) = services("a_redis_restart_loses_no_message") else {
        return;
    };
    let mut redis = OwnRedis::start().await;
    let cluster = Cluster::start(&services, &redis.url(), 2).await;
    let mut ana = cluster.user(cluster.node(0), "ana").await;
    let mut bob = cluster.user(cluster.node(1), "bob").await;
    let room = room_with(&mut ana, &mut [&mut bob]).await;
    ana.say(room, "before").await;
    for c in [&mut ana, &mut bob] {
        assert_eq!(c.messages(room, 1).await[0]["seq"], 2, "after bob's join");
    }

    redis.kill();
    // Sends still succeed: they are stored; their live delivery is lost with Redis.
    let mut during = HashMap::new();
    for n in 0..3 {
        let m = ana.say(room, &format!("during {n}")).await;
        during.insert(m["seq"].as_i64().expect("seq"), m["client_id"].clone());
    }
    // Entry 1 is bob's join, 2 "before"; the three sent during the outage are 3 to 5.
    let mut bob_seq = 2;
    // Bob may see none of them yet; he must not see them out of order.
    while let Some(m) = bob
        .try_event_where("message", Duration::from_millis(200), |m| m["room"] == room)
        .await
    {
        bob_seq += 1;
        assert_eq!(m["seq"], bob_seq);
    }
    redis.spawn().await;

    // The nodes reconnect and catch their sessions up from the store.
    for (c, start) in [(&mut bob, bob_seq), (&mut ana, 2)] {
        let missed = 5 - start;
        let got = c.messages(room, missed as usize).await;
        let seqs = seqs(&got);
        assert_eq!(
            seqs,
            ((start + 1)..=5).collect::<Vec<_>>(),
            "{}: recovered",
            c.name()
        );
    }
    // And delivery goes on live.
    let after = ana.say(room, "after").await;
    assert_eq!(after["seq"], 6);
    bob.event_where("message", |m| m["seq"] == 6).await;
    bob.no_event_where("message", Duration::from_millis(300), |m| m["room"] == room)
        .await;
    drop((ana, bob));
    cluster.finish().await;
}

/// What is decided on one node while Redis is down reaches the user's connections on the
/// other node once it is back: a room joined (its messages then arrive there too), a read
/// marker moved, a token revoked (its connection is closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_no_membership_marker_or_revocation() {
    let Some(services) = services("a_redis_restart_loses_no_membership_marker_or_revocation")
    else {
        return;
    };
    let mut redis = OwnRedis::start().await;
    let cluster = Cluster::start(&services, &redis.url(), 2).await;
    let (token, user) = cluster.register(cluster.node(0), "ana").await;
    let mut here = Client::connect(cluster.node(0), &token, None).await;
    here.user = user.clone();
    let mut there = Client::connect(cluster.node(1), &token, None).await;
    there.user = user;
    let second_token = {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/api/login", cluster.node(1)))
            .json(&json!({"username": here.name(), "password": "correct horse"}))
            .send()
            .await
            .expect("login");
        let body: Value = resp.json().await.expect("json");
        body["token"].as_str().expect("token").to_string()
    };
    let mut doomed = Client::connect(cluster.node(1), &second_token, None).await;
    let mut bob = cluster.user(cluster.node(0), "bob").await;
    let room = unique("r");
    let room = bob.ok("room.create", json!({"name": room})).await["room"]["id"]
        .as_i64()
        .expect("room id");
    bob.say(room, "first").await;

    redis.kill();
    here.ok("room.join", json!({"room": room})).await;
    let read = here.ok("room.read", json!({"room": room, "seq": 1})).await;
    assert_eq!(read["read_seq"], 1);
    let logout = reqwest::Client::new()
        .post(format!("http://{}/api/logout", cluster.node(0)))
        .bearer_auth(&second_token)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 204);
    redis.spawn().await;

    // The other node learns all three from the store once the broker is back.
    let added = there
        .event_where("room_added", |d| d["room"]["id"] == room)
        .await;
    assert_eq!(added["room"]["last_seq"], 2, "\"first\", then ana's join");
    there
        .event_where("room_read", |d| d["room"] == room && d["read_seq"] == 1)
        .await;
    assert_eq!(
        doomed.closed().await,
        Some(4003),
        "the revoked token's connection"
    );
    // And the room's messages now reach both of ana's connections.
    bob.say(room, "after the outage").await;
    for c in [&mut here, &mut there] {
        let m = c
            .event_where("message", |m| m["room"] == room && m["seq"] == 3)
            .await;
        assert_eq!(m["body"], "after the outage", "{}", c.name());
    }
    drop((here, there, bob));
    cluster.finish().await;
}

/// A password change on one node revokes the user's other sessions on every node: a socket
/// on another node closes with 4003, the caller's socket stays, and the revoked token is
/// refused by every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_revokes_sessions_on_every_node() {
    let Some(services) = services("a_password_change_revokes_sessions_on_every_node") else {
        return;
    };
    let cluster = Cluster::start(&services, &services.redis, 2).await;
    let (mine, user) = cluster.register(cluster.node(0), "pwc").await;
    let name = user["name"].as_str().expect("name");
    let http = reqwest::Client::new();
    let login = http
        .post(format!("http://{}/api/login", cluster.node(1)))
        .json(&json!({"username": name, "password": "correct horse"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let body: Value = login.json().await.expect("json");
    let other = body["token"].as_str().expect("token").to_string();
    let mut mine_live = Client::connect(cluster.node(0), &mine, None).await;
    let mut other_live = Client::connect(cluster.node(1), &other, None).await;

    let changed = http
        .post(format!("http://{}/api/password", cluster.node(0)))
        .bearer_auth(&mine)
        .json(&json!({"old_password": "correct horse", "new_password": "battery staple"}))
        .send()
        .await
        .expect("password");
    assert_eq!(changed.status(), 204);
    assert_eq!(other_live.closed().await, Some(4003));
    mine_live.ok("ping", json!({})).await;
    for node in [cluster.node(0), cluster.node(1)] {
        let me = http
            .get(format!("http://{node}/api/me"))
            .bearer_auth(&other)
            .send()
            .await
            .expect("me");
        assert_eq!(me.status(), 401, "node {node}");
    }
    drop(mine_live);
    cluster.finish().await;
}

/// Edits, deletes, reactions, thread replies, joins and leaves made through one node reach a
/// client on the other live, and a client that was offline resumes on the other node into the same state,
/// which is also what `history` says (PostgreSQL + Redis, two nodes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_changes_cross_nodes_and_resume_on_another() {
    use natter_testkit::stream::{history_view, View};
    let Some(services) = services("stream_changes_cross_nodes_and_resume_on_another") else {
        return;
    };
    let cluster = Cluster::start(&services, &services.redis, 2).await;
    let mut ana = cluster.user(cluster.node(0), "ana").await;
    let mut bob = cluster.user(cluster.node(1), "bob").await;
    let (carol_token, _) = cluster.register(cluster.node(0), "carol").await;
    let mut carol = Client::connect(cluster.node(0), &carol_token, None).await;
    let room = room_with(&mut ana, &mut [&mut bob, &mut carol]).await;
    let seq = |v: &Value| v["seq"].as_i64().expect("seq");
    let first = ana.say(room, "first").await;
    let (mut online, mut offline) = (View::default(), View::default());
    online.follow(&mut bob, room, seq(&first)).await;
    offline.follow(&mut carol, room, seq(&first)).await;
    online.from_here();
    offline.from_here();
    drop(carol);

    let entry = |reply: Value| reply["entry"].clone();
    let edit = entry(
        ana.ok(
            "message.edit",
            json!({"room": room, "seq": seq(&first), "body": "first, edited", "client_id": unique("e")}),
        )
        .await,
    );
    let liked = entry(
        ana.ok(
            "reaction.add",
            json!({"room": room, "seq": seq(&first), "emoji": "👍", "client_id": unique("r")}),
        )
        .await,
    );
    assert!(seq(&liked) > seq(&edit));
    let reply = ana
        .ok(
            "message.send",
            json!({"room": room, "body": "in a thread", "client_id": unique("c"), "thread": seq(&first)}),
        )
        .await["message"]
        .clone();
    let doomed = ana.say(room, "doomed").await;
    // Joins and leaves are stream entries: one through node 0, while carol is away.
    let mut dave = cluster.user(cluster.node(0), "dave").await;
    dave.ok("room.join", json!({"room": room})).await;
    dave.ok("room.leave", json!({"room": room})).await;
    let last = entry(
        ana.ok(
            "message.delete",
            json!({"room": room, "seq": seq(&doomed), "client_id": unique("d")}),
        )
        .await,
    );
    online.follow(&mut bob, room, seq(&last)).await;
    let mut carol = Client::connect(
        cluster.node(1),
        &carol_token,
        Some(json!({room.to_string(): seq(&first)})),
    )
    .await;
    offline.follow(&mut carol, room, seq(&last)).await;
    assert_eq!(offline.timeline(), online.timeline());
    assert_eq!(offline.thread(seq(&first)), online.thread(seq(&first)));
    assert_eq!(offline.room, online.room);
    assert_eq!(online.room.members.get(&dave.id()), Some(&false));
    let current = history_view(&mut carol, room).await;
    assert_eq!(current.timeline(), online.timeline());
    assert_eq!(current.thread(seq(&first)), online.thread(seq(&first)));
    // dave's join and leave, read back by `history` with `events` on the other node.
    assert_eq!(current.events_after(seq(&first)), online.events);
    assert_eq!(online.events.len(), 2, "{:?}", online.events);
    let shown = online.timeline();
    assert_eq!(shown[&seq(&first)].body, "first, edited");
    assert_eq!(shown[&seq(&first)].replies, 1);
    assert_eq!(shown[&seq(&first)].reactions.len(), 1);
    assert!(shown[&seq(&doomed)].deleted);
    assert_eq!(online.thread(seq(&first)).len(), 1);
    assert_eq!(seq(&reply), seq(&liked) + 1);
    cluster.finish().await;
}

/// Moderation across nodes (PostgreSQL + Redis, two nodes): a mute made through one node
/// stops sends on the other once its room event arrives there (the node's rule cache is
/// forgotten by it), a kick takes the member out of the room on every node at once, an
/// invitation and a deactivation reach the other node, and room events resume on another
/// node into the online state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_holds_across_nodes() {
    use natter_testkit::stream::View;
    let Some(services) = services("moderation_holds_across_nodes") else {
        return;
    };
    let cluster = Cluster::start(&services, &services.redis, 2).await;
    let mut admin = cluster.user(cluster.node(0), "admin").await;
    let mut ana = cluster.user(cluster.node(0), "ana").await;
    let mut bob = cluster.user(cluster.node(1), "bob").await;
    let mut bob_elsewhere = Client::connect(cluster.node(0), &bob.token, None).await;
    let mut carol = cluster.user(cluster.node(1), "carol").await;
    let (dave_token, _) = cluster.register(cluster.node(0), "dave").await;
    let mut dave = Client::connect(cluster.node(0), &dave_token, None).await;
    let room = room_with(&mut ana, &mut [&mut bob, &mut carol, &mut dave]).await;
    let seq = |v: &Value| v["seq"].as_i64().expect("seq");
    let entry = |reply: Value| reply["entry"].clone();
    // bob's node has his rules cached after a send.
    let warm = bob.say(room, "hello").await;
    let (mut online, mut offline) = (View::default(), View::default());
    online.follow(&mut carol, room, seq(&warm)).await;
    offline.follow(&mut dave, room, seq(&warm)).await;
    online.from_here();
    offline.from_here();
    drop(dave);

    let mute = entry(
        ana.ok(
            "room.mute",
            json!({"room": room, "user": bob.name(), "minutes": 5, "client_id": unique("m")}),
        )
        .await,
    );
    bob.event_where("room_event", |e| e["seq"] == mute["seq"])
        .await;
    let code = bob
        .fails(
            "message.send",
            json!({"room": room, "body": "muted?", "client_id": unique("c")}),
        )
        .await;
    assert_eq!(code, "muted", "node 1 honours a mute made on node 0");
    let unmute = entry(
        ana.ok(
            "room.unmute",
            json!({"room": room, "user": bob.name(), "client_id": unique("m")}),
        )
        .await,
    );
    bob.event_where("room_event", |e| e["seq"] == unmute["seq"])
        .await;
    bob.say(room, "free again").await;
    let topic = entry(
        ana.ok(
            "room.update",
            json!({"room": room, "topic": "cluster talk", "client_id": unique("m")}),
        )
        .await,
    );

    let kick = entry(
        ana.ok(
            "room.kick",
            json!({"room": room, "user": bob.name(), "client_id": unique("m")}),
        )
        .await,
    );
    assert!(seq(&kick) > seq(&topic));
    for b in [&mut bob, &mut bob_elsewhere] {
        b.event_where("room_event", |e| e["seq"] == kick["seq"])
            .await;
        assert_eq!(b.event("room_removed").await["room"], room);
    }
    let after = ana.say(room, "bob is gone").await;
    online.follow(&mut carol, room, seq(&after)).await;
    for b in [&mut bob, &mut bob_elsewhere] {
        b.ok("ping", json!({})).await;
        assert!(
            !b.events
                .iter()
                .any(|e| e["type"] == "message" && e["data"]["seq"] == after["seq"]),
            "a kicked member got a message on some node"
        );
    }
    // dave resumes on the other node into carol's state.
    let mut dave = Client::connect(
        cluster.node(1),
        &dave_token,
        Some(json!({room.to_string(): offline.last_seq})),
    )
    .await;
    offline.follow(&mut dave, room, seq(&after)).await;
    assert_eq!(offline, online);
    assert_eq!(online.room.topic, "cluster talk");
    assert_eq!(online.room.removed, vec![bob.id()]);

    // An invitation made on node 0 reaches bob on node 1.
    let private = ana
        .ok("room.create", json!({"name": unique("p"), "private": true}))
        .await["room"]["id"]
        .as_i64()
        .expect("room");
    ana.ok("room.invite", json!({"room": private, "user": bob.name()}))
        .await;
    assert_eq!(bob.event("room_invited").await["room"], private);
    // A deactivation on node 0 closes carol's connection on node 1 with 4010.
    admin
        .ok("admin.deactivate", json!({"user": carol.name()}))
        .await;
    assert_eq!(carol.closed().await, Some(4010));
    cluster.finish().await;
}
