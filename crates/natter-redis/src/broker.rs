//! [`RedisBroker`]: connecting (and starting the subscriber and heartbeat tasks), and the
//! `Broker` impl: publishing with a local fallback, subscriptions, presence of this node's
//! users, the online list, and leaving the cluster on shutdown.

use crate::heartbeat::run_heartbeat;
use crate::presence;
use crate::settings::{RedisSettings, BACKOFF_MAX, REDIS_TIMEOUT};
use crate::shared::{backend, lock, Scripts, Shared};
use crate::subscriber::{run_subscriber, SubCommand};
use async_trait::async_trait;
use natter_core::broker::{Broker, BusEvent, BusHandler, Topic};
use natter_core::model::User;
use natter_core::BrokerError;
use redis::aio::ConnectionManagerConfig;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The Redis broker. Build it with [`RedisBroker::connect`].
pub struct RedisBroker {
    shared: Arc<Shared>,
    subscriptions: mpsc::UnboundedSender<SubCommand>,
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
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
            pending: Mutex::default(),
            pending_count: AtomicUsize::new(0),
            confirmed: Notify::new(),
            subscriber_down: AtomicBool::new(false),
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
        self.shared.subscribing(topic);
        if self
            .subscriptions
            .send(SubCommand::Subscribe(topic))
            .is_err()
        {
            // The subscriber has stopped (the broker is shutting down): nothing will confirm.
            self.shared.subscribed([&topic]);
        }
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
