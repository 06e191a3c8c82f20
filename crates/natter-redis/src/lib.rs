//! Natter's Redis `Broker`: carries chat events between the nodes of a cluster over Redis
//! pub/sub, and keeps presence across nodes with per-node heartbeat keys that expire.
//!
//! Map:
//! - [`RedisBroker`] (`broker`): connecting, and the `Broker` impl: subscriptions, presence
//!   of this node's users, and leaving the cluster on shutdown.
//! - `settings`: [`RedisSettings`], its defaults, and the fixed timeouts and backoff.
//! - `shared`: what the broker's tasks share (connection, scripts, this node's users and
//!   rooms), and handing what arrives to the node.
//! - `publish`: publishing an event (retried once on a fresh connection) and presence events.
//! - `subscriber`: the subscriber task (one pub/sub connection; it reconnects, subscribes
//!   again and asks the node to catch its rooms up from the store, since events published
//!   meanwhile are lost).
//! - `heartbeat`: the heartbeat task (keeps this node alive, reaps dead nodes, and when a node
//!   has gone has the rooms caught up too, in case it died between storing and publishing).
//! - `presence`: the key layout and the Lua scripts that change presence atomically.
//!
//! Channels and keys all start with a prefix (`natter:` by default), so several clusters or
//! test runs can share one Redis. Standalone Redis only (the scripts touch keys they compute).

#![forbid(unsafe_code)]

mod broker;
mod heartbeat;
mod presence;
mod publish;
mod settings;
mod shared;
mod subscriber;

pub use broker::RedisBroker;
pub use settings::{RedisSettings, DEFAULT_EXPIRY, DEFAULT_HEARTBEAT, DEFAULT_PREFIX};
