//! The broker contract, checked on the in-process broker and on Redis alike; then the Redis
//! broker's cluster behaviour on a real Redis: events cross between brokers (nodes), presence counts
//! nodes, a dead node's users go offline, a stopped node's users go offline at once, and a
//! Redis restart is survived (resubscribed, rooms caught up, presence registered again).
//!
//! Runs when `NATTER_TEST_REDIS` is a `redis://` URL (keys and channels get a per-test
//! prefix); the restart test starts its own `redis-server` on a spare loopback port. Prints a
//! skip otherwise, and fails instead when `NATTER_REQUIRE_SERVICES=1`.

use natter_core::broker::{Broker, BusEvent, BusHandler, Topic};
use natter_core::model::*;
use natter_redis::{RedisBroker, RedisSettings};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

fn redis_url(test: &str) -> Option<String> {
    match std::env::var("NATTER_TEST_REDIS") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("NATTER_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{test}: NATTER_REQUIRE_SERVICES=1 but NATTER_TEST_REDIS is not set");
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: set NATTER_TEST_REDIS=redis://... to run it"
            );
            None
        }
    }
}

fn unique_prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!(
        "natter-test:{}:{t}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a broker handed to its node.
#[derive(Debug)]
enum Seen {
    Event(BusEvent),
    Missed(Vec<RoomId>),
}

struct Recorder(mpsc::UnboundedSender<Seen>);

impl BusHandler for Recorder {
    fn on_event(&self, event: BusEvent) {
        let _ = self.0.send(Seen::Event(event));
    }
    fn on_missed(&self, rooms: Vec<RoomId>) {
        let _ = self.0.send(Seen::Missed(rooms));
    }
}

/// A broker with its recorder (the handler must outlive the broker's use of it).
struct TestNode {
    broker: RedisBroker,
    _handler: Arc<dyn BusHandler>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl TestNode {
    async fn start(url: &str, prefix: &str, heartbeat_ms: u64, expiry_ms: u64) -> TestNode {
        let broker = RedisBroker::connect(RedisSettings {
            url: url.to_string(),
            prefix: prefix.to_string(),
            heartbeat: Duration::from_millis(heartbeat_ms),
            expiry: Duration::from_millis(expiry_ms),
        })
        .await
        .expect("connect to redis");
        let (tx, seen) = mpsc::unbounded_channel();
        let handler: Arc<dyn BusHandler> = Arc::new(Recorder(tx));
        broker.set_handler(Arc::downgrade(&handler));
        TestNode {
            broker,
            _handler: handler,
            seen,
        }
    }

    /// Waits for something matching `want`, skipping the rest.
    async fn expect<T>(&mut self, what: &str, mut want: impl FnMut(&Seen) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let seen = tokio::time::timeout_at(deadline, self.seen.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("recorder open");
            if let Some(found) = want(&seen) {
                return found;
            }
        }
    }

    /// Subscribes to a room and waits until the subscription is in effect.
    async fn subscribe_room(&mut self, room: RoomId) {
        self.broker.subscribe(Topic::Room(room));
        self.expect("room subscription", |s| match s {
            Seen::Missed(rooms) if rooms.contains(&room) => Some(()),
            _ => None,
        })
        .await;
    }

    async fn expect_presence(&mut self, user: UserId, online: bool) {
        self.expect(&format!("presence {user} {online}"), |s| match s {
            Seen::Event(BusEvent::Presence { user: u, online: o })
                if u.id == user && *o == online =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    }
}

fn user(id: i64, name: &str) -> User {
    User {
        id: UserId(id),
        name: name.to_string(),
        guest: false,
    }
}

fn message(room: RoomId, seq: i64) -> BusEvent {
    BusEvent::Message {
        message: Message {
            id: MessageId(seq),
            room,
            seq: Seq(seq),
            sender: user(1, "ana"),
            body: format!("m{seq}"),
            ts: now_millis(),
            client_id: format!("c{seq}"),
        },
    }
}

async fn online_names(node: &TestNode) -> Vec<String> {
    node.broker
        .online_users()
        .await
        .expect("online")
        .into_iter()
        .map(|u| u.name)
        .collect()
}

/// The single-node contract every broker keeps (the in-process one and Redis): what is
/// published comes back to the node, presence counts the node's users, `online_users` is
/// sorted by name.
async fn single_node_contract(broker: Arc<dyn Broker>, seen: &mut mpsc::UnboundedReceiver<Seen>) {
    broker.subscribe(Topic::Presence);
    broker.subscribe(Topic::Room(RoomId(1)));
    broker.subscribe(Topic::User(UserId(9)));
    // Let the subscriptions settle (the in-process broker needs none; Redis says when).
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while tokio::time::timeout_at(deadline, seen.recv()).await.is_ok() {}
    let zoe = user(9, "zoe");
    let al = user(10, "Al");
    assert!(broker.presence_up(&zoe).await.expect("up"), "first: online");
    assert!(broker.presence_up(&al).await.expect("up"));
    let online: Vec<String> = broker
        .online_users()
        .await
        .expect("online")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(online, vec!["Al", "zoe"], "sorted case-insensitively");
    broker
        .publish(message(RoomId(1), 1))
        .await
        .expect("publish");
    broker
        .publish(BusEvent::RoomRemoved {
            user: zoe.id,
            room: RoomId(1),
        })
        .await
        .expect("publish");
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let next = tokio::time::timeout(WAIT, seen.recv())
            .await
            .expect("event in time")
            .expect("open");
        match next {
            Seen::Event(BusEvent::Message { message }) => {
                assert_eq!(message.seq, Seq(1));
                kinds.push("message");
            }
            Seen::Event(BusEvent::RoomRemoved { user, .. }) => {
                assert_eq!(user, zoe.id);
                kinds.push("room_removed");
            }
            _ => {}
        }
    }
    assert!(
        broker.presence_down(&zoe).await.expect("down"),
        "last: offline"
    );
    assert!(
        !broker.presence_down(&zoe).await.expect("down"),
        "not twice"
    );
    assert_eq!(
        broker.online_users().await.expect("online"),
        vec![al.clone()]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn the_in_process_broker_keeps_the_contract() {
    let broker: Arc<dyn Broker> = Arc::new(natter_core::LocalBroker::new());
    let (tx, mut seen) = mpsc::unbounded_channel();
    let handler: Arc<dyn BusHandler> = Arc::new(Recorder(tx));
    broker.set_handler(Arc::downgrade(&handler));
    single_node_contract(broker, &mut seen).await;
}

#[tokio::test]
async fn the_redis_broker_keeps_the_contract() {
    let Some(url) = redis_url("the_redis_broker_keeps_the_contract") else {
        return;
    };
    let node = TestNode::start(&url, &unique_prefix(), 200, 2000).await;
    let TestNode {
        broker,
        _handler,
        mut seen,
    } = node;
    single_node_contract(Arc::new(broker), &mut seen).await;
}

#[tokio::test]
async fn events_cross_between_nodes_in_publish_order() {
    let Some(url) = redis_url("events_cross_between_nodes_in_publish_order") else {
        return;
    };
    let prefix = unique_prefix();
    let mut a = TestNode::start(&url, &prefix, 200, 2000).await;
    let mut b = TestNode::start(&url, &prefix, 200, 2000).await;
    let room = RoomId(7);
    a.subscribe_room(room).await;
    b.subscribe_room(room).await;
    for seq in 1..=20 {
        a.broker.publish(message(room, seq)).await.expect("publish");
    }
    for node in [&mut a, &mut b] {
        for seq in 1..=20 {
            let got = node
                .expect("message", |s| match s {
                    Seen::Event(BusEvent::Message { message }) => Some(message.seq.0),
                    _ => None,
                })
                .await;
            assert_eq!(got, seq);
        }
    }
    // An unsubscribed room stops arriving (commands apply in order: once room 8's
    // subscription is in effect, room 7's is gone).
    b.broker.unsubscribe(Topic::Room(room));
    b.subscribe_room(RoomId(8)).await;
    a.broker.publish(message(room, 21)).await.expect("publish");
    a.broker
        .publish(message(RoomId(8), 1))
        .await
        .expect("publish");
    let first = b
        .expect("a message", |s| match s {
            Seen::Event(BusEvent::Message { message }) => Some(message.room),
            _ => None,
        })
        .await;
    assert_eq!(first, RoomId(8), "room 7 no longer reaches b");
}

#[tokio::test]
async fn presence_counts_nodes_and_dead_nodes_expire() {
    let Some(url) = redis_url("presence_counts_nodes_and_dead_nodes_expire") else {
        return;
    };
    let prefix = unique_prefix();
    let mut a = TestNode::start(&url, &prefix, 100, 600).await;
    let b = TestNode::start(&url, &prefix, 100, 600).await;
    a.broker.subscribe(Topic::Presence);
    let ana = user(1, "ana");
    let bob = user(2, "Bob");
    assert!(
        a.broker.presence_up(&ana).await.expect("up"),
        "first node: online"
    );
    assert!(
        !b.broker.presence_up(&ana).await.expect("up"),
        "second node: already online"
    );
    assert!(b.broker.presence_up(&bob).await.expect("up"));
    assert_eq!(online_names(&a).await, vec!["ana", "Bob"]);
    assert!(
        !a.broker.presence_down(&ana).await.expect("down"),
        "still on b"
    );
    assert_eq!(online_names(&b).await, vec!["ana", "Bob"]);
    // b dies without a word: its users go offline once its heartbeat key expires, and a
    // catches its rooms up (b may have died between storing a message and publishing it).
    a.subscribe_room(RoomId(4)).await;
    let died = std::time::Instant::now();
    drop(b);
    a.expect_presence(ana.id, false).await;
    a.expect_presence(bob.id, false).await;
    a.expect("catch-up after a node died", |s| match s {
        Seen::Missed(rooms) if rooms.contains(&RoomId(4)) => Some(()),
        _ => None,
    })
    .await;
    let took = died.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "not before expiry: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "soon after expiry: {took:?}");
    assert!(online_names(&a).await.is_empty());
}

#[tokio::test]
async fn a_stopping_node_takes_its_users_offline_at_once() {
    let Some(url) = redis_url("a_stopping_node_takes_its_users_offline_at_once") else {
        return;
    };
    let prefix = unique_prefix();
    // Long expiry: only a graceful leave can be this quick.
    let mut a = TestNode::start(&url, &prefix, 200, 30_000).await;
    let b = TestNode::start(&url, &prefix, 200, 30_000).await;
    a.broker.subscribe(Topic::Presence);
    let cid = user(3, "cid");
    let dee = user(4, "dee");
    assert!(b.broker.presence_up(&cid).await.expect("up"));
    assert!(b.broker.presence_up(&dee).await.expect("up"));
    assert!(!a.broker.presence_up(&dee).await.expect("up"));
    // Let a's presence subscription settle before b leaves.
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.broker.shutdown().await;
    a.expect_presence(cid.id, false).await;
    assert_eq!(online_names(&a).await, vec!["dee"], "dee is still on a");
}

/// A Redis of our own on a spare loopback port, restartable.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("spare port")
            .port();
        let mut redis = OwnRedis { port, child: None };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (install redis-server)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn nodes_survive_a_redis_restart() {
    if redis_url("nodes_survive_a_redis_restart").is_none() {
        return;
    }
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let prefix = unique_prefix();
    let mut a = TestNode::start(&url, &prefix, 100, 1000).await;
    let mut b = TestNode::start(&url, &prefix, 100, 1000).await;
    let room = RoomId(3);
    a.subscribe_room(room).await;
    b.subscribe_room(room).await;
    b.broker.subscribe(Topic::Presence);
    let ana = user(1, "ana");
    assert!(a.broker.presence_up(&ana).await.expect("up"));

    redis.kill();
    // While Redis is down: publishing fails, presence degrades to this node's users.
    assert!(a.broker.publish(message(room, 1)).await.is_err());
    assert_eq!(online_names(&a).await, vec!["ana"]);
    redis.spawn();

    // Both subscribers come back and ask for the room to be caught up from the store.
    for node in [&mut a, &mut b] {
        node.expect("catch-up after reconnect", |s| match s {
            Seen::Missed(rooms) if rooms.contains(&room) => Some(()),
            _ => None,
        })
        .await;
    }
    // Redis forgot everything: a's heartbeat registers ana again. (Its announcement may
    // reach b before b has subscribed again, so ask rather than wait for the event.)
    let deadline = std::time::Instant::now() + WAIT;
    while online_names(&b).await != vec!["ana"] {
        assert!(std::time::Instant::now() < deadline, "ana registered again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And delivery goes on.
    a.broker
        .publish(message(room, 2))
        .await
        .expect("publish after restart");
    b.expect("message after restart", |s| match s {
        Seen::Event(BusEvent::Message { message }) if message.seq == Seq(2) => Some(()),
        _ => None,
    })
    .await;
}
