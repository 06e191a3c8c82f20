//! What the broker's tasks share: settings, this node's id, the connection and scripts, this
//! node's users and rooms as registered in Redis; the channel and key names; and handing what
//! arrives (events, reconnections, rooms to catch up) to the node's `BusHandler`.

use crate::settings::RedisSettings;
use natter_core::broker::{BusEvent, BusHandler, Topic};
use natter_core::model::{RoomId, User, UserId};
use natter_core::BrokerError;
use redis::aio::ConnectionManager;
use redis::{Msg, Script};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::Notify;

pub(crate) fn backend(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Backend(e.to_string())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) struct Scripts {
    pub(crate) heartbeat: Script,
    pub(crate) up: Script,
    pub(crate) down: Script,
    pub(crate) sync: Script,
    pub(crate) reap: Script,
    pub(crate) publish_presence: Script,
}

/// What the broker's tasks share.
pub(crate) struct Shared {
    pub(crate) settings: RedisSettings,
    /// This node's id in presence keys (random per process).
    pub(crate) node_id: String,
    pub(crate) handler: OnceLock<Weak<dyn BusHandler>>,
    pub(crate) conn: ConnectionManager,
    /// This node's users with a connection, as it registered them in Redis.
    pub(crate) local_users: Mutex<HashMap<UserId, User>>,
    /// A presence update failed: Redis may disagree with `local_users` until the next sync.
    pub(crate) presence_dirty: AtomicBool,
    pub(crate) scripts: Scripts,
    /// The rooms this node is subscribed to (as asked; the subscriber applies it).
    pub(crate) rooms: Mutex<HashSet<RoomId>>,
    /// The nodes registered at the last heartbeat: one gone since died or left.
    pub(crate) peers: Mutex<HashSet<String>>,
    /// Topics this node asked to subscribe to and Redis has not yet confirmed. A publish to
    /// one of them waits for the confirmation (see [`Shared::until_subscribed`]).
    pub(crate) pending: Mutex<HashSet<Topic>>,
    /// How many topics `pending` holds, read without its lock on every publish.
    pub(crate) pending_count: AtomicUsize,
    /// Woken when topics leave `pending`.
    pub(crate) confirmed: Notify,
    /// The subscriber lost its connection, or could not connect, and has not subscribed
    /// again yet. Meanwhile nothing confirms a subscription and publishes do not wait for
    /// one (the reconnection catches rooms up from the store).
    pub(crate) subscriber_down: AtomicBool,
}

/// Microseconds since the Unix epoch, now (0 if the clock is before it).
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The time since a payload's `published_us` (none if it has none: a node of an older
/// version published it). A stamp from a clock ahead of ours counts as no lag.
fn lag_of(payload: &[u8]) -> Option<Duration> {
    #[derive(serde::Deserialize)]
    struct Stamp {
        published_us: Option<u64>,
    }
    let published = serde_json::from_slice::<Stamp>(payload)
        .ok()?
        .published_us?;
    Some(Duration::from_micros(
        now_micros().saturating_sub(published),
    ))
}

impl Shared {
    /// This node asked to subscribe to `topic`: until Redis confirms it, this node's
    /// publishes to it wait.
    pub(crate) fn subscribing(&self, topic: Topic) {
        if lock(&self.pending).insert(topic) {
            self.pending_count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Redis confirmed the subscriptions to `topics` (or this node no longer wants them):
    /// publishes waiting on them go ahead.
    pub(crate) fn subscribed<'a>(&self, topics: impl IntoIterator<Item = &'a Topic>) {
        let mut removed = 0;
        {
            let mut pending = lock(&self.pending);
            if pending.is_empty() {
                return;
            }
            for topic in topics {
                if pending.remove(topic) {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            self.pending_count.fetch_sub(removed, Ordering::AcqRel);
            self.confirmed.notify_waiters();
        }
    }

    /// Waits until this node's subscription to `topic` is in effect, if it asked for one
    /// that Redis has not confirmed yet; at most `limit`. Without this, an event this node
    /// publishes right after subscribing (a room created here and joined at once) can reach
    /// Redis before the SUBSCRIBE does, and this node's own sessions would never see it.
    pub(crate) async fn until_subscribed(&self, topic: Topic, limit: Duration) {
        if self.pending_count.load(Ordering::Acquire) == 0
            || self.subscriber_down.load(Ordering::Acquire)
        {
            return;
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.confirmed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !lock(&self.pending).contains(&topic) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(channel = %self.channel(topic), "publishing before redis confirmed this node's subscription");
                return;
            }
        }
    }

    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.settings.prefix)
    }

    pub(crate) fn channel(&self, topic: Topic) -> String {
        match topic {
            Topic::Room(room) => self.key(&format!("room:{room}")),
            Topic::User(user) => self.key(&format!("user:{user}")),
            Topic::Presence => self.key("presence"),
        }
    }

    pub(crate) fn handler(&self) -> Option<Arc<dyn BusHandler>> {
        self.handler.get().and_then(Weak::upgrade)
    }

    pub(crate) fn node_users_key(&self) -> String {
        self.key(&format!("node:{}:users", self.node_id))
    }

    pub(crate) fn user_nodes_key(&self, user: UserId) -> String {
        self.key(&format!("user:{user}:nodes"))
    }

    pub(crate) fn deliver(&self, msg: &Msg) {
        let payload = msg.get_payload_bytes();
        match serde_json::from_slice::<BusEvent>(payload) {
            Ok(event) => {
                if let Some(handler) = self.handler() {
                    if let Some(lag) = lag_of(payload) {
                        handler.on_lag(lag);
                    }
                    handler.on_event(event);
                }
            }
            Err(e) => {
                tracing::warn!(channel = msg.get_channel_name(), error = %e, "unreadable event")
            }
        }
    }

    pub(crate) fn reconnected(&self) {
        if let Some(handler) = self.handler() {
            handler.on_reconnected();
        }
    }

    pub(crate) fn missed(&self, rooms: Vec<RoomId>) {
        if rooms.is_empty() {
            return;
        }
        if let Some(handler) = self.handler() {
            handler.on_missed(rooms);
        }
    }
}
