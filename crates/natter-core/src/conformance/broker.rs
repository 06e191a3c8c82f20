//! The behaviour every `Broker` backend must show, one `pub async fn` per rule, each given a
//! [`BrokerBus`] (the backend's way to make the brokers of one cluster) and panicking with a
//! description of what it found broken. Also the harness the rules use, public so a backend's
//! own tests can use it: [`BrokerNode`] records what a broker hands to its node.
//!
//! Rules come in two groups, and [`broker_conformance!`](crate::broker_conformance) stamps one
//! test per rule of the groups a backend keeps:
//! - `one_node`: what one node sees of its own broker (every backend);
//! - `several_nodes`: what brokers sharing one bus see of each other, and subscriptions that
//!   filter. `LocalBroker` is one node by design and hands every event back to it (its hub
//!   does the filtering), so these are not stamped for it.
//!
//! ```ignore
//! struct Local;
//! impl BrokerBus for Local {
//!     async fn node(&self) -> Arc<dyn Broker> { Arc::new(LocalBroker::new()) }
//! }
//! async fn local(_test: &'static str) -> Option<Local> { Some(Local) }
//! natter_core::broker_conformance!(local_broker, local, one_node);
//! ```
//!
//! Not rules here: `BusHandler::on_missed` and `on_reconnected` (a broker that never misses
//! events, like `LocalBroker`, never calls them), a dead node's users expiring (heartbeats are
//! Redis's), outages. Those are tested with their backend.

use crate::broker::{Broker, BusEvent, BusHandler, Topic};
use crate::model::*;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a rule waits for something it expects.
pub const WAIT: Duration = Duration::from_secs(10);

/// The rules of each group, in the order the macro stamps them.
pub const ONE_NODE_RULES: &[&str] = &[
    "published_events_come_back",
    "a_subscription_holds_for_this_nodes_next_publish",
    "a_rooms_events_arrive_in_publish_order",
    "online_users_are_sorted_by_name",
    "presence_down_takes_a_user_offline_once",
];
pub const SEVERAL_NODES_RULES: &[&str] = &[
    "events_cross_between_nodes_in_publish_order",
    "an_unsubscribed_room_stops_arriving",
    "presence_counts_nodes",
    "a_stopping_node_takes_its_users_offline_at_once",
];

/// A backend under test: makes brokers that share one bus (one Redis and key prefix), as the
/// nodes of a cluster do. A `one_node` rule asks for one node.
pub trait BrokerBus: Send + Sync {
    /// A new node's broker on this bus, its handler not yet set.
    fn node(&self) -> impl Future<Output = Arc<dyn Broker>> + Send;
}

/// Stamps one `#[tokio::test]` per broker rule into a module `$module`, for the backend that
/// `$make` builds: an async function (or closure) taking the test's name (`&'static str`) and
/// returning `Option<impl BrokerBus>`, `None` when the backend is not configured here (it
/// prints its own skip, or panics when services are required). Called once per rule. The
/// groups (`one_node`, `several_nodes`) say which rules the backend keeps; all by default.
///
/// ```ignore
/// natter_core::broker_conformance!(redis_broker, redis_bus);
/// natter_core::broker_conformance!(local_broker, local_bus, one_node);
/// ```
#[macro_export]
macro_rules! broker_conformance {
    ($module:ident, $make:expr) => {
        $crate::broker_conformance!($module, $make, one_node, several_nodes);
    };
    ($module:ident, $make:expr, $($group:ident),+ $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $( $crate::broker_conformance!(@group $module, $make, $group); )+
        }
    };
    (@group $module:ident, $make:expr, one_node) => {
        $crate::broker_conformance!(@rules $module, $make;
            published_events_come_back,
            a_subscription_holds_for_this_nodes_next_publish,
            a_rooms_events_arrive_in_publish_order,
            online_users_are_sorted_by_name,
            presence_down_takes_a_user_offline_once,
        );
    };
    (@group $module:ident, $make:expr, several_nodes) => {
        $crate::broker_conformance!(@rules $module, $make;
            events_cross_between_nodes_in_publish_order,
            an_unsubscribed_room_stops_arriving,
            presence_counts_nodes,
            a_stopping_node_takes_its_users_offline_at_once,
        );
    };
    (@rules $module:ident, $make:expr; $($rule:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let test = concat!(stringify!($module), "::", stringify!($rule));
                let Some(bus) = ($make)(test).await else {
                    return;
                };
                $crate::conformance::broker::$rule(&bus).await;
            }
        )+
    };
}

/// What a broker handed to its node.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a test probe's channel: boxing would only make its patterns longer"
)]
pub enum Seen {
    Event(BusEvent),
    Missed(Vec<RoomId>),
    Reconnected,
}

struct Recorder(mpsc::UnboundedSender<Seen>);

impl BusHandler for Recorder {
    fn on_event(&self, event: BusEvent) {
        let _ = self.0.send(Seen::Event(event));
    }
    fn on_missed(&self, rooms: Vec<RoomId>) {
        let _ = self.0.send(Seen::Missed(rooms));
    }
    fn on_reconnected(&self) {
        let _ = self.0.send(Seen::Reconnected);
    }
}

/// A broker with a recorder as its node (the handler lives as long as this does).
pub struct BrokerNode {
    pub broker: Arc<dyn Broker>,
    _handler: Arc<dyn BusHandler>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

impl BrokerNode {
    /// Sets a recorder as `broker`'s handler.
    pub fn new(broker: Arc<dyn Broker>) -> BrokerNode {
        let (tx, seen) = mpsc::unbounded_channel();
        let handler: Arc<dyn BusHandler> = Arc::new(Recorder(tx));
        broker.set_handler(Arc::downgrade(&handler));
        BrokerNode {
            broker,
            _handler: handler,
            seen,
        }
    }

    /// Waits for something matching `want`, skipping the rest; panics after [`WAIT`].
    pub async fn expect<T>(&mut self, what: &str, mut want: impl FnMut(&Seen) -> Option<T>) -> T {
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

    /// Subscribes to `topic` and waits until the subscription is in effect: publishes a probe
    /// on the topic until one comes back (skipping all else). Probes are events no rule
    /// looks for: typing of [`probe_user`], a read marker of room 0, presence of the probe.
    pub async fn subscribe_and_wait(&mut self, topic: Topic) {
        self.broker.subscribe(topic);
        let probe = probe(topic);
        let give_up = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(
                tokio::time::Instant::now() < give_up,
                "the subscription to {topic:?} took no effect"
            );
            self.broker.publish(probe.clone()).await.expect("publish");
            let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
            while let Ok(Some(seen)) = tokio::time::timeout_at(deadline, self.seen.recv()).await {
                if matches!(&seen, Seen::Event(e) if is_probe(e)) {
                    return;
                }
            }
        }
    }

    /// The message of the next `Message` event (other things are skipped).
    pub async fn next_message(&mut self) -> Message {
        self.expect("a message", |s| match s {
            Seen::Event(BusEvent::Message { message }) => Some(message.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for a presence event saying `user` is `online` (or not).
    pub async fn expect_presence(&mut self, user: UserId, online: bool) {
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

    /// The names `online_users` lists, in its order.
    pub async fn online_names(&self) -> Vec<String> {
        self.broker
            .online_users()
            .await
            .expect("online")
            .into_iter()
            .map(|u| u.name)
            .collect()
    }
}

/// The user whose events are probes (never present, never a member).
pub fn probe_user() -> User {
    user(i64::MAX, "probe")
}

fn probe(topic: Topic) -> BusEvent {
    match topic {
        Topic::Room(room) => BusEvent::Typing {
            room,
            user: probe_user(),
            active: true,
        },
        Topic::User(user) => BusEvent::RoomRead {
            unread: None,
            mentions: None,
            user,
            room: RoomId(0),
            read_seq: Seq::ZERO,
        },
        Topic::Presence => BusEvent::Presence {
            user: probe_user(),
            online: false,
        },
    }
}

fn is_probe(event: &BusEvent) -> bool {
    match event {
        BusEvent::Typing { user, .. } | BusEvent::Presence { user, .. } => {
            user.id == probe_user().id
        }
        BusEvent::RoomRead { room, .. } => *room == RoomId(0),
        _ => false,
    }
}

/// A registered user.
pub fn user(id: i64, name: &str) -> User {
    User {
        id: UserId(id),
        name: name.to_string(),
        guest: false,
        bot: false,
    }
}

/// A message event of `room` with seq (and id) `seq`, sent by user 1.
pub fn message(room: RoomId, seq: i64) -> BusEvent {
    BusEvent::Message {
        message: Message {
            id: MessageId(seq),
            room,
            seq: Seq(seq),
            sender: user(1, "ana"),
            body: format!("m{seq}"),
            ts: now_millis(),
            client_id: format!("c{seq}"),
            ..Message::default()
        },
    }
}

/// What is published on a subscribed topic comes back to the node: a room's message, a
/// user's event.
pub async fn published_events_come_back(bus: &impl BrokerBus) {
    let mut node = BrokerNode::new(bus.node().await);
    node.subscribe_and_wait(Topic::Room(RoomId(1))).await;
    node.subscribe_and_wait(Topic::User(UserId(9))).await;
    let zoe = user(9, "zoe");
    node.broker
        .publish(message(RoomId(1), 1))
        .await
        .expect("publish");
    node.broker
        .publish(BusEvent::RoomRemoved {
            user: zoe.id,
            room: RoomId(1),
        })
        .await
        .expect("publish");
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let kind = node
            .expect("the published events", |s| match s {
                Seen::Event(BusEvent::Message { message }) => {
                    assert_eq!(message.seq, Seq(1));
                    Some("message")
                }
                Seen::Event(BusEvent::RoomRemoved { user, .. }) => {
                    assert_eq!(*user, zoe.id);
                    Some("room_removed")
                }
                _ => None,
            })
            .await;
        kinds.push(kind);
    }
    node.broker.shutdown().await;
}

/// A subscription is in effect for this node's own publishes as soon as `subscribe` returns:
/// a room created here and joined at once (its `member_joined` published right after the
/// node subscribed) reaches the creator, who is on this node. Each of 20 fresh rooms and 20
/// fresh users is published to straight after its subscription, with no wait between.
pub async fn a_subscription_holds_for_this_nodes_next_publish(bus: &impl BrokerBus) {
    let mut node = BrokerNode::new(bus.node().await);
    let bob = user(2, "bob");
    for n in 1..=20 {
        let room = RoomId(1000 + n);
        node.broker.subscribe(Topic::Room(room));
        node.broker
            .publish(BusEvent::MemberJoined {
                room,
                user: bob.clone(),
                member_count: 2,
            })
            .await
            .expect("publish");
        node.expect(
            &format!("member_joined of fresh room {room}"),
            |s| match s {
                Seen::Event(BusEvent::MemberJoined { room: r, .. }) if *r == room => Some(()),
                _ => None,
            },
        )
        .await;
        let someone = UserId(2000 + n);
        node.broker.subscribe(Topic::User(someone));
        node.broker
            .publish(BusEvent::RoomRemoved {
                user: someone,
                room,
            })
            .await
            .expect("publish");
        node.expect(
            &format!("room_removed of fresh user {someone}"),
            |s| match s {
                Seen::Event(BusEvent::RoomRemoved { user, .. }) if *user == someone => Some(()),
                _ => None,
            },
        )
        .await;
    }
    node.broker.shutdown().await;
}

/// A room's events come back in the order they were published.
pub async fn a_rooms_events_arrive_in_publish_order(bus: &impl BrokerBus) {
    let mut node = BrokerNode::new(bus.node().await);
    let room = RoomId(7);
    node.subscribe_and_wait(Topic::Room(room)).await;
    for seq in 1..=20 {
        node.broker
            .publish(message(room, seq))
            .await
            .expect("publish");
    }
    for seq in 1..=20 {
        assert_eq!(node.next_message().await.seq, Seq(seq));
    }
    node.broker.shutdown().await;
}

/// `presence_up` is true for a user who was offline; `online_users` lists everyone up, sorted
/// by name case-insensitively.
pub async fn online_users_are_sorted_by_name(bus: &impl BrokerBus) {
    let node = BrokerNode::new(bus.node().await);
    let zoe = user(9, "zoe");
    let al = user(10, "Al");
    assert!(
        node.broker.presence_up(&zoe).await.expect("up"),
        "first: online"
    );
    assert!(node.broker.presence_up(&al).await.expect("up"));
    assert_eq!(
        node.online_names().await,
        vec!["Al", "zoe"],
        "sorted case-insensitively"
    );
    node.broker.shutdown().await;
}

/// `presence_down` of a user's last connection is true once, and the user leaves
/// `online_users`.
pub async fn presence_down_takes_a_user_offline_once(bus: &impl BrokerBus) {
    let node = BrokerNode::new(bus.node().await);
    let zoe = user(9, "zoe");
    let al = user(10, "Al");
    assert!(node.broker.presence_up(&zoe).await.expect("up"));
    assert!(node.broker.presence_up(&al).await.expect("up"));
    assert!(
        node.broker.presence_down(&zoe).await.expect("down"),
        "last: offline"
    );
    assert!(
        !node.broker.presence_down(&zoe).await.expect("down"),
        "not twice"
    );
    assert_eq!(
        node.broker.online_users().await.expect("online"),
        vec![al.clone()]
    );
    node.broker.shutdown().await;
}

/// Several nodes: a room's events reach every subscribed node (the publisher's too), each in
/// publish order. Not for `LocalBroker` (one node).
pub async fn events_cross_between_nodes_in_publish_order(bus: &impl BrokerBus) {
    let mut a = BrokerNode::new(bus.node().await);
    let mut b = BrokerNode::new(bus.node().await);
    let room = RoomId(7);
    a.subscribe_and_wait(Topic::Room(room)).await;
    b.subscribe_and_wait(Topic::Room(room)).await;
    for seq in 1..=20 {
        a.broker.publish(message(room, seq)).await.expect("publish");
    }
    for node in [&mut a, &mut b] {
        for seq in 1..=20 {
            assert_eq!(node.next_message().await.seq, Seq(seq));
        }
    }
}

/// Several nodes: once a node unsubscribes from a room, the room's events stop reaching it
/// (subscription changes apply in order: once a later subscription is in effect, the
/// unsubscription is too). Not for `LocalBroker`: it hands every event back to its one node,
/// whose hub does the filtering.
pub async fn an_unsubscribed_room_stops_arriving(bus: &impl BrokerBus) {
    let a = BrokerNode::new(bus.node().await);
    let mut b = BrokerNode::new(bus.node().await);
    let room = RoomId(7);
    b.subscribe_and_wait(Topic::Room(room)).await;
    b.broker.unsubscribe(Topic::Room(room));
    b.subscribe_and_wait(Topic::Room(RoomId(8))).await;
    a.broker.publish(message(room, 21)).await.expect("publish");
    a.broker
        .publish(message(RoomId(8), 1))
        .await
        .expect("publish");
    assert_eq!(
        b.next_message().await.room,
        RoomId(8),
        "room 7 no longer reaches b"
    );
}

/// Several nodes: presence counts nodes. A user is online from the first node that has them
/// until the last one lets go; every node sees everyone online. Not for `LocalBroker`.
pub async fn presence_counts_nodes(bus: &impl BrokerBus) {
    let a = BrokerNode::new(bus.node().await);
    let b = BrokerNode::new(bus.node().await);
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
    assert_eq!(a.online_names().await, vec!["ana", "Bob"]);
    assert!(
        !a.broker.presence_down(&ana).await.expect("down"),
        "still on b"
    );
    assert_eq!(b.online_names().await, vec!["ana", "Bob"]);
}

/// Several nodes: `shutdown` withdraws the node's presence at once: the users it alone had
/// go offline (the others hear of it), the ones also on another node stay online. The
/// backend's presence expiry must be longer than [`WAIT`], so that only a graceful leave is
/// this quick. Not for `LocalBroker`.
pub async fn a_stopping_node_takes_its_users_offline_at_once(bus: &impl BrokerBus) {
    let mut a = BrokerNode::new(bus.node().await);
    let b = BrokerNode::new(bus.node().await);
    a.subscribe_and_wait(Topic::Presence).await;
    let cid = user(3, "cid");
    let dee = user(4, "dee");
    assert!(b.broker.presence_up(&cid).await.expect("up"));
    assert!(b.broker.presence_up(&dee).await.expect("up"));
    assert!(!a.broker.presence_up(&dee).await.expect("up"));
    b.broker.shutdown().await;
    a.expect_presence(cid.id, false).await;
    assert_eq!(a.online_names().await, vec!["dee"], "dee is still on a");
}
