//! The Redis broker keeps the `Broker` contract (natter-core's conformance rules, one test
//! per rule, every node of a test on its own key prefix); then what is Redis's own, on a real
//! Redis: a room subscription asks for a catch-up, a dead node's users go offline when its
//! heartbeat expires (and its rooms are caught up), and a Redis restart is survived
//! (resubscribed, rooms caught up, presence registered again).
//!
//! Runs when `NATTER_TEST_REDIS` is a `redis://` URL (keys and channels get a per-test
//! prefix); the restart test starts its own `redis-server` on a spare loopback port. Prints a
//! skip otherwise, and fails instead when `NATTER_REQUIRE_SERVICES=1`.

use natter_core::broker::{Broker, BusEvent, Topic};
use natter_core::conformance::broker::{message, user, BrokerBus, BrokerNode, Seen, WAIT};
use natter_core::model::*;
use natter_redis::{RedisBroker, RedisSettings};
use natter_testkit::{redis_url, unique_redis_prefix, OwnRedis};
use std::sync::Arc;
use std::time::Duration;

/// A Redis broker on `url` under `prefix`, its handler not yet set.
async fn connect(url: &str, prefix: &str, heartbeat_ms: u64, expiry_ms: u64) -> Arc<dyn Broker> {
    let broker = RedisBroker::connect(RedisSettings {
        url: url.to_string(),
        prefix: prefix.to_string(),
        heartbeat: Duration::from_millis(heartbeat_ms),
        expiry: Duration::from_millis(expiry_ms),
    })
    .await
    .expect("connect to redis");
    Arc::new(broker)
}

/// A node: a Redis broker with a recorder for its handler.
async fn start_node(url: &str, prefix: &str, heartbeat_ms: u64, expiry_ms: u64) -> BrokerNode {
    BrokerNode::new(connect(url, prefix, heartbeat_ms, expiry_ms).await)
}

/// Subscribes to a room and waits until Redis says the subscription is in effect (the broker
/// asks for the room to be caught up: what was published before did not reach it).
async fn subscribe_room(node: &mut BrokerNode, room: RoomId) {
    node.broker.subscribe(Topic::Room(room));
    node.expect("room subscription", |s| match s {
        Seen::Missed(rooms) if rooms.contains(&room) => Some(()),
        _ => None,
    })
    .await;
}

/// The nodes of one test: one Redis, one key prefix. A node's presence expires after 30 s,
/// longer than any rule waits, so only a graceful leave takes its users offline in time.
struct RedisBus {
    url: String,
    prefix: String,
}

impl BrokerBus for RedisBus {
    async fn node(&self) -> Arc<dyn Broker> {
        connect(&self.url, &self.prefix, 200, 30_000).await
    }
}

async fn redis_bus(test: &'static str) -> Option<RedisBus> {
    Some(RedisBus {
        url: redis_url(test)?,
        prefix: unique_redis_prefix(),
    })
}

natter_core::broker_conformance!(redis_broker, redis_bus);

#[tokio::test]
async fn a_room_subscription_asks_for_a_catch_up() {
    let Some(url) = redis_url("a_room_subscription_asks_for_a_catch_up") else {
        return;
    };
    let mut node = start_node(&url, &unique_redis_prefix(), 200, 2000).await;
    subscribe_room(&mut node, RoomId(5)).await;
}

#[tokio::test]
async fn dead_nodes_expire() {
    let Some(url) = redis_url("dead_nodes_expire") else {
        return;
    };
    let prefix = unique_redis_prefix();
    let mut a = start_node(&url, &prefix, 100, 600).await;
    let b = start_node(&url, &prefix, 100, 600).await;
    a.subscribe_and_wait(Topic::Presence).await;
    let ana = user(1, "ana");
    let bob = user(2, "Bob");
    for u in [&ana, &bob] {
        b.broker.presence_up(u).await.expect("up");
    }
    assert_eq!(a.online_names().await, vec!["ana", "Bob"]);
    // b dies without a word: its users go offline once its heartbeat key expires, and a
    // catches its rooms up (b may have died between storing a message and publishing it).
    subscribe_room(&mut a, RoomId(4)).await;
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
    assert!(a.online_names().await.is_empty());
}

#[tokio::test]
async fn nodes_survive_a_redis_restart() {
    if redis_url("nodes_survive_a_redis_restart").is_none() {
        return;
    }
    let mut redis = OwnRedis::start().await;
    let url = redis.url();
    let prefix = unique_redis_prefix();
    let mut a = start_node(&url, &prefix, 100, 1000).await;
    let mut b = start_node(&url, &prefix, 100, 1000).await;
    let room = RoomId(3);
    subscribe_room(&mut a, room).await;
    subscribe_room(&mut b, room).await;
    b.broker.subscribe(Topic::Presence);
    let ana = user(1, "ana");
    assert!(a.broker.presence_up(&ana).await.expect("up"));

    redis.kill();
    // While Redis is down: publishing fails, presence degrades to this node's users.
    assert!(a.broker.publish(message(room, 1)).await.is_err());
    assert_eq!(a.online_names().await, vec!["ana"]);
    // A room a subscribes to meanwhile is subscribed when Redis is back (below).
    let later = RoomId(4);
    a.broker.subscribe(Topic::Room(later));
    redis.spawn().await;

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
    while b.online_names().await != vec!["ana"] {
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
    a.broker
        .publish(message(later, 1))
        .await
        .expect("publish to the room subscribed during the outage");
    a.expect("the room subscribed during the outage", |s| match s {
        Seen::Event(BusEvent::Message { message }) if message.room == later => Some(()),
        _ => None,
    })
    .await;
}
