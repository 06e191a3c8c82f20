//! Natter's Redis `Broker`: carries chat events between the nodes of a cluster over Redis
//! pub/sub, and keeps presence across nodes with per-node heartbeat keys that expire.
//!
//! Map:
//! - [`RedisBroker`] (this file): publishing (one multiplexed connection that reconnects by
//!   itself), the subscriber task (one pub/sub connection; it reconnects, subscribes again and
//!   asks the node to catch its rooms up from the store, since events published meanwhile are
//!   lost), and the heartbeat task (keeps this node alive, reaps dead nodes, and when a node
//!   has gone has the rooms caught up too, in case it died between storing and publishing).
//! - [`presence`]: the key layout and the Lua scripts that change presence atomically.
//!
//! Channels and keys all start with a prefix (`natter:` by default), so several clusters or
//! test runs can share one Redis. Standalone Redis only (the scripts touch keys they compute).

#![forbid(unsafe_code)]

mod presence;

use async_trait::async_trait;
use futures_util::StreamExt;
use natter_core::broker::{Broker, BusEvent, BusHandler, Topic};
use natter_core::model::{RoomId, User, UserId};
use natter_core::BrokerError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::{Msg, Script};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const DEFAULT_PREFIX: &str = "natter:";
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(5);

/// Longest wait for a Redis connection to open, or a command to answer.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection backoff of the subscriber: from the first to the last delay, doubling.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often the subscriber checks its connection with a PING.
const PING_EVERY: Duration = Duration::from_secs(5);

/// How to reach Redis and how presence expires.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host[:port][/db]`.
    pub url: String,
    /// Prepended to every channel and key.
    pub prefix: String,
    /// How often a node refreshes its heartbeat key (and reaps dead nodes).
    pub heartbeat: Duration,
    /// A node whose heartbeat key is this old is dead: its users go offline.
    pub expiry: Duration,
}

impl RedisSettings {
    pub fn new(url: impl Into<String>) -> RedisSettings {
        RedisSettings {
            url: url.into(),
            prefix: DEFAULT_PREFIX.into(),
            heartbeat: DEFAULT_HEARTBEAT,
            expiry: DEFAULT_EXPIRY,
        }
    }
}

fn backend(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Backend(e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A subscription change for the subscriber task.
enum SubCommand {
    Subscribe(Topic),
    Unsubscribe(Topic),
}

struct Scripts {
    heartbeat: Script,
    up: Script,
    down: Script,
    sync: Script,
    reap: Script,
    publish_presence: Script,
}

/// What the broker's tasks share.
struct Shared {
    settings: RedisSettings,
    /// This node's id in presence keys (random per process).
    node_id: String,
    handler: OnceLock<Weak<dyn BusHandler>>,
    conn: ConnectionManager,
    /// This node's users with a connection, as it registered them in Redis.
    local_users: Mutex<HashMap<UserId, User>>,
    /// A presence update failed: Redis may disagree with `local_users` until the next sync.
    presence_dirty: AtomicBool,
    scripts: Scripts,
    /// The rooms this node is subscribed to (as asked; the subscriber applies it).
    rooms: Mutex<HashSet<RoomId>>,
    /// The nodes registered at the last heartbeat: one gone since died or left.
    peers: Mutex<HashSet<String>>,
}

/// The Redis broker. Build it with [`RedisBroker::connect`].
pub struct RedisBroker {
    shared: Arc<Shared>,
    subscriptions: mpsc::UnboundedSender<SubCommand>,
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.settings.prefix)
    }

    fn channel(&self, topic: Topic) -> String {
        match topic {
            Topic::Room(room) => self.key(&format!("room:{room}")),
            Topic::User(user) => self.key(&format!("user:{user}")),
            Topic::Presence => self.key("presence"),
        }
    }

    fn handler(&self) -> Option<Arc<dyn BusHandler>> {
        self.handler.get().and_then(Weak::upgrade)
    }

    fn node_users_key(&self) -> String {
        self.key(&format!("node:{}:users", self.node_id))
    }

    fn user_nodes_key(&self, user: UserId) -> String {
        self.key(&format!("user:{user}:nodes"))
    }

    /// Publishes an event, trying twice: a connection found broken by the first attempt is
    /// replaced for the second. (A repeat is harmless: sessions skip messages they have.)
    async fn publish(&self, event: &BusEvent) -> Result<(), BrokerError> {
        match self.publish_once(event).await {
            Ok(()) => Ok(()),
            Err(_) => self.publish_once(event).await,
        }
    }

    async fn publish_once(&self, event: &BusEvent) -> Result<(), BrokerError> {
        let payload = serde_json::to_vec(event).map_err(backend)?;
        let channel = self.channel(event.topic());
        let mut conn = self.conn.clone();
        match event {
            BusEvent::Presence { user, online } => {
                let _: i64 = self
                    .scripts
                    .publish_presence
                    .key(self.key("online"))
                    .arg(&channel)
                    .arg(user.id.0)
                    .arg(payload)
                    .arg(if *online { "1" } else { "0" })
                    .invoke_async(&mut conn)
                    .await
                    .map_err(backend)?;
            }
            _ => {
                let _: i64 = redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(payload)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend)?;
            }
        }
        Ok(())
    }

    /// Publishes presence events for users (as JSON from a script).
    async fn announce(&self, users: Vec<String>, online: bool) {
        for json in users {
            let Ok(user) = serde_json::from_str::<User>(&json) else {
                tracing::warn!("unreadable user in redis presence");
                continue;
            };
            let event = BusEvent::Presence { user, online };
            if let Err(e) = self.publish(&event).await {
                tracing::warn!(error = %e, "presence publish failed");
            }
        }
    }

    /// One heartbeat: stay alive, make Redis agree with our users if it may not, reap the
    /// dead nodes and announce who went offline with them.
    async fn heartbeat(&self) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        let expiry_ms = self.settings.expiry.as_millis().max(1) as u64;
        let existed: i64 = self
            .scripts
            .heartbeat
            .key(self.key(&format!("node:{}:alive", self.node_id)))
            .key(self.key("nodes"))
            .arg(&self.node_id)
            .arg(expiry_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        let dirty = self.presence_dirty.swap(false, Ordering::AcqRel);
        if existed == 0 || dirty {
            if let Err(e) = self.sync_presence().await {
                self.presence_dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        let gone: Vec<String> = self
            .scripts
            .reap
            .key(self.key("nodes"))
            .key(self.key("online"))
            .arg(&self.settings.prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        if !gone.is_empty() {
            tracing::info!(users = gone.len(), "reaped a dead node's users");
        }
        self.announce(gone, false).await;
        self.notice_departed_peers().await
    }

    /// When a node has gone (died or left), re-reads this node's rooms from the store: a
    /// node that died between storing a message and publishing it leaves a gap that nothing
    /// else would fill if no later message came.
    async fn notice_departed_peers(&self) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        let now: HashSet<String> = redis::cmd("SMEMBERS")
            .arg(self.key("nodes"))
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let departed = {
            let mut peers = lock(&self.peers);
            let departed = peers.iter().any(|p| !now.contains(p) && *p != self.node_id);
            *peers = now;
            departed
        };
        if departed {
            let rooms: Vec<RoomId> = lock(&self.rooms).iter().copied().collect();
            tracing::info!(
                rooms = rooms.len(),
                "a node left the cluster; re-reading rooms from the store"
            );
            self.missed(rooms);
        }
        Ok(())
    }

    /// Makes Redis's view of this node's users match `local_users`.
    async fn sync_presence(&self) -> Result<(), BrokerError> {
        let users: Vec<(i64, String)> = lock(&self.local_users)
            .values()
            .filter_map(|u| Some((u.id.0, serde_json::to_string(u).ok()?)))
            .collect();
        let mut invocation = self.scripts.sync.prepare_invoke();
        invocation
            .key(self.node_users_key())
            .key(self.key("online"))
            .arg(&self.node_id)
            .arg(&self.settings.prefix);
        for (id, json) in &users {
            invocation.arg(*id).arg(json);
        }
        let mut conn = self.conn.clone();
        let (came, gone): (Vec<String>, Vec<String>) =
            invocation.invoke_async(&mut conn).await.map_err(backend)?;
        if !users.is_empty() {
            tracing::info!(
                users = users.len(),
                "presence of this node registered in redis again"
            );
        }
        self.announce(came, true).await;
        self.announce(gone, false).await;
        Ok(())
    }

    fn deliver(&self, msg: &Msg) {
        match serde_json::from_slice::<BusEvent>(msg.get_payload_bytes()) {
            Ok(event) => {
                if let Some(handler) = self.handler() {
                    handler.on_event(event);
                }
            }
            Err(e) => {
                tracing::warn!(channel = msg.get_channel_name(), error = %e, "unreadable event")
            }
        }
    }

    fn reconnected(&self) {
        if let Some(handler) = self.handler() {
            handler.on_reconnected();
        }
    }

    fn missed(&self, rooms: Vec<RoomId>) {
        if rooms.is_empty() {
            return;
        }
        if let Some(handler) = self.handler() {
            handler.on_missed(rooms);
        }
    }
}

fn rooms_of(topics: &HashSet<Topic>) -> Vec<RoomId> {
    topics
        .iter()
        .filter_map(|t| match t {
            Topic::Room(room) => Some(*room),
            _ => None,
        })
        .collect()
}

/// Applies a subscription change to the wanted set (while disconnected).
fn apply(wanted: &mut HashSet<Topic>, command: SubCommand) {
    match command {
        SubCommand::Subscribe(topic) => {
            wanted.insert(topic);
        }
        SubCommand::Unsubscribe(topic) => {
            wanted.remove(&topic);
        }
    }
}

/// The subscriber: keeps one pub/sub connection subscribed to the wanted topics, hands what
/// arrives to the node, and reconnects when the connection is lost.
async fn run_subscriber(
    shared: Arc<Shared>,
    client: redis::Client,
    mut commands: mpsc::UnboundedReceiver<SubCommand>,
    stop: CancellationToken,
) {
    let mut wanted: HashSet<Topic> = HashSet::new();
    let mut backoff = BACKOFF_MIN;
    let mut connected_once = false;
    loop {
        let connecting = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub());
        let pubsub = tokio::select! {
            _ = stop.cancelled() => return,
            result = connecting => result,
        };
        let pubsub = match pubsub {
            Ok(Ok(pubsub)) => pubsub,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_string(),
                };
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "redis subscriber cannot connect");
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = &mut sleep => break,
                        command = commands.recv() => match command {
                            Some(c) => apply(&mut wanted, c),
                            None => return,
                        },
                    }
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        while let Ok(command) = commands.try_recv() {
            apply(&mut wanted, command);
        }
        let channels: Vec<String> = wanted.iter().map(|t| shared.channel(*t)).collect();
        if !channels.is_empty() {
            if let Err(e) = sink.subscribe(&channels).await {
                tracing::warn!(error = %e, "redis subscribe failed");
                continue;
            }
        }
        if connected_once {
            tracing::info!(
                topics = wanted.len(),
                "redis subscriber reconnected; catching rooms up from the store"
            );
            shared.reconnected();
        }
        connected_once = true;
        backoff = BACKOFF_MIN;
        // Events published while this node was not subscribed are lost: read them back.
        shared.missed(rooms_of(&wanted));
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    if let Err(e) = change(&shared, &mut sink, &mut wanted, command).await {
                        tracing::warn!(error = %e, "redis subscription change failed; reconnecting");
                        break;
                    }
                }
                msg = stream.next() => match msg {
                    Some(msg) => shared.deliver(&msg),
                    None => {
                        tracing::warn!("redis subscriber connection lost; reconnecting");
                        break;
                    }
                },
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        tracing::warn!("redis subscriber connection unresponsive; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

/// Applies one subscription change on a live connection.
async fn change(
    shared: &Shared,
    sink: &mut PubSubSink,
    wanted: &mut HashSet<Topic>,
    command: SubCommand,
) -> Result<(), BrokerError> {
    match command {
        SubCommand::Subscribe(topic) => {
            if wanted.insert(topic) {
                let subscribing = sink.subscribe(shared.channel(topic));
                tokio::time::timeout(REDIS_TIMEOUT, subscribing)
                    .await
                    .map_err(backend)?
                    .map_err(backend)?;
                // Messages sent before the subscription took effect did not reach us.
                if let Topic::Room(room) = topic {
                    shared.missed(vec![room]);
                }
            }
        }
        SubCommand::Unsubscribe(topic) => {
            if wanted.remove(&topic) {
                let unsubscribing = sink.unsubscribe(shared.channel(topic));
                tokio::time::timeout(REDIS_TIMEOUT, unsubscribing)
                    .await
                    .map_err(backend)?
                    .map_err(backend)?;
            }
        }
    }
    Ok(())
}

/// The heartbeat: refreshes this node's key and reaps dead nodes, every `heartbeat`.
async fn run_heartbeat(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(shared.settings.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match shared.heartbeat().await {
            Ok(()) if failing => {
                tracing::info!("redis heartbeat works again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "redis heartbeat failed");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

impl RedisBroker {
    /// Connects to Redis, registers this node and starts the subscriber and heartbeat tasks.
    pub async fn connect(settings: RedisSettings) -> Result<RedisBroker, BrokerError> {
        if settings.expiry <= settings.heartbeat {
            return Err(BrokerError::Backend(
                "presence expiry must be longer than the heartbeat".into(),
            ));
        }
        let client = redis::Client::open(settings.url.as_str()).map_err(backend)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(BACKOFF_MAX);
        let conn = tokio::time::timeout(
            REDIS_TIMEOUT * 3,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| BrokerError::Backend("timed out connecting to redis".into()))?
        .map_err(backend)?;
        let shared = Arc::new(Shared {
            node_id: format!("{:016x}", rand::random::<u64>()),
            settings,
            handler: OnceLock::new(),
            conn,
            local_users: Mutex::default(),
            presence_dirty: AtomicBool::new(false),
            rooms: Mutex::default(),
            peers: Mutex::default(),
            scripts: Scripts {
                heartbeat: presence::heartbeat(),
                up: presence::up(),
                down: presence::down(),
                sync: presence::sync(),
                reap: presence::reap(),
                publish_presence: presence::publish_presence(),
            },
        });
        shared.heartbeat().await?;
        tracing::info!(node = %shared.node_id, prefix = %shared.settings.prefix, "redis broker connected");
        let stop = CancellationToken::new();
        let (subscriptions, commands) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(run_subscriber(
                shared.clone(),
                client,
                commands,
                stop.clone(),
            )),
            tokio::spawn(run_heartbeat(shared.clone(), stop.clone())),
        ];
        Ok(RedisBroker {
            shared,
            subscriptions,
            stop,
            tasks: Mutex::new(tasks),
        })
    }

    /// This node's id in presence keys.
    pub fn node_id(&self) -> &str {
        &self.shared.node_id
    }
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[async_trait]
impl Broker for RedisBroker {
    fn set_handler(&self, handler: Weak<dyn BusHandler>) {
        let _ = self.shared.handler.set(handler);
    }

    async fn publish(&self, event: BusEvent) -> Result<(), BrokerError> {
        let result = self.shared.publish(&event).await;
        if result.is_err() {
            // Redis is unreachable: this node's own sessions still get the event (other
            // nodes catch up from the store when they reconnect).
            if let Some(handler) = self.shared.handler() {
                handler.on_event(event);
            }
        }
        result
    }

    fn subscribe(&self, topic: Topic) {
        if let Topic::Room(room) = topic {
            lock(&self.shared.rooms).insert(room);
        }
        let _ = self.subscriptions.send(SubCommand::Subscribe(topic));
    }

    fn unsubscribe(&self, topic: Topic) {
        if let Topic::Room(room) = topic {
            lock(&self.shared.rooms).remove(&room);
        }
        let _ = self.subscriptions.send(SubCommand::Unsubscribe(topic));
    }

    async fn presence_up(&self, user: &User) -> Result<bool, BrokerError> {
        let shared = &self.shared;
        lock(&shared.local_users).insert(user.id, user.clone());
        let json = serde_json::to_string(user).map_err(backend)?;
        let mut conn = shared.conn.clone();
        let result: Result<i64, _> = shared
            .scripts
            .up
            .key(shared.node_users_key())
            .key(shared.user_nodes_key(user.id))
            .key(shared.key("online"))
            .arg(&shared.node_id)
            .arg(user.id.0)
            .arg(json)
            .invoke_async(&mut conn)
            .await;
        match result {
            Ok(came) => Ok(came == 1),
            // The next heartbeat that reaches Redis registers the user and announces them.
            Err(e) => {
                tracing::warn!(error = %e, "presence update failed; retried at the next heartbeat");
                shared.presence_dirty.store(true, Ordering::Release);
                Ok(false)
            }
        }
    }

    async fn presence_down(&self, user: &User) -> Result<bool, BrokerError> {
        let shared = &self.shared;
        lock(&shared.local_users).remove(&user.id);
        let mut conn = shared.conn.clone();
        let result: Result<i64, _> = shared
            .scripts
            .down
            .key(shared.node_users_key())
            .key(shared.user_nodes_key(user.id))
            .key(shared.key("online"))
            .arg(&shared.node_id)
            .arg(user.id.0)
            .invoke_async(&mut conn)
            .await;
        match result {
            Ok(gone) => Ok(gone == 1),
            Err(e) => {
                tracing::warn!(error = %e, "presence update failed; retried at the next heartbeat");
                shared.presence_dirty.store(true, Ordering::Release);
                Ok(false)
            }
        }
    }

    async fn online_users(&self) -> Result<Vec<User>, BrokerError> {
        let mut conn = self.shared.conn.clone();
        let result: Result<Vec<String>, _> = redis::cmd("HVALS")
            .arg(self.shared.key("online"))
            .query_async(&mut conn)
            .await;
        let mut users: Vec<User> = match result {
            Ok(values) => values
                .iter()
                .filter_map(|json| serde_json::from_str(json).ok())
                .collect(),
            // Degraded: while Redis is unreachable, this node knows only its own users.
            Err(e) => {
                tracing::warn!(error = %e, "online users unavailable from redis; using this node's");
                lock(&self.shared.local_users).values().cloned().collect()
            }
        };
        users.sort_by_key(|u| u.name.to_lowercase());
        Ok(users)
    }

    async fn shutdown(&self) {
        self.stop.cancel();
        let tasks: Vec<JoinHandle<()>> = lock(&self.tasks).drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
        // Leave now rather than when the heartbeat expires: drop our key, then reap
        // ourselves (which announces who went offline with us).
        let shared = &self.shared;
        let mut conn = shared.conn.clone();
        let alive = shared.key(&format!("node:{}:alive", shared.node_id));
        let deleted: Result<i64, _> = redis::cmd("DEL").arg(alive).query_async(&mut conn).await;
        if deleted.is_err() {
            return;
        }
        let gone: Result<Vec<String>, _> = shared
            .scripts
            .reap
            .key(shared.key("nodes"))
            .key(shared.key("online"))
            .arg(&shared.settings.prefix)
            .invoke_async(&mut conn)
            .await;
        if let Ok(gone) = gone {
            shared.announce(gone, false).await;
        }
    }
}
