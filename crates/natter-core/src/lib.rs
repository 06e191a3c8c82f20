//! Natter's chat core: rooms, membership, messages, presence and typing, with no knowledge of
//! sockets, HTTP, SQL or Redis. Transports drive a [`Connection`]; storage and cross-node
//! fan-out sit behind the [`Store`] and [`Broker`] traits.
//!
//! Modules:
//! - [`config`]: the core's settings and the one source of their defaults.
//! - [`clock`]: the wall clock session and guest expiry read (tests move it forward).
//! - [`model`]: ids and plain data (User, Room, Message, Seq).
//! - [`protocol`]: requests, replies, events and close codes of docs/protocol.md.
//! - [`error`]: error codes and the errors at each boundary.
//! - [`accounts`]: name and password rules, argon2id hashing, session tokens.
//! - [`bots`]: bot accounts, their API tokens and rooms' incoming webhooks (plain data).
//! - [`node`]: the chat service (`Node`), split by job.
//! - [`connection`]: one client connection (`Connection`), its auth phase and close policy.
//! - [`hub`]: which local sessions are in which room; ordered fan-out.
//! - [`session`]: one connection's bounded outbound queue and per-room order keeping.
//! - [`presence`]: the node's feed of presence changes, read by each watching session.
//! - [`store`]: the `Store` trait and an in-memory implementation.
//! - [`files`]: uploaded files' ids and metadata, and the `FileStore` trait for their bytes.
//! - [`broker`]: the `Broker` trait and the in-process implementation.
//! - [`ratelimit`]: the per-connection token bucket.
//! - [`relay`]: relay mode, tutorial clients' events as a guest's messages and back.
//! - [`metrics`]: the node's counters and latency histograms (relaxed atomics), which the
//!   server renders at `/metrics`.
//! - [`conformance`]: the `Store` and `Broker` contracts as test suites, one test per rule per
//!   backend (`store_conformance!`, `broker_conformance!`).

#![forbid(unsafe_code)]

pub mod accounts;
pub mod bots;
pub mod broker;
pub mod clock;
pub mod config;
pub mod conformance;
pub mod connection;
pub mod error;
pub mod files;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod node;
pub mod presence;
pub mod protocol;
pub mod ratelimit;
pub mod relay;
mod rules;
pub mod search;
pub mod session;
pub mod store;
pub mod text;

pub use broker::{Broker, BusEvent, BusHandler, LocalBroker, Topic};
pub use clock::Clock;
pub use config::CoreConfig;
pub use connection::{AuthStep, Connection, KeepaliveStep};
pub use error::{BrokerError, ChatError, ErrorCode, Refusal, StoreError};
pub use files::{ContentHash, FileId, FileInfo, FileStore, StoredFile};
pub use metrics::{CoreMetrics, RateLimitKind};
pub use model::*;
pub use node::{Node, NodeGauges, SessionView, SignedIn};
pub use protocol::{close, EncodedEvent, Request};
pub use session::{Outbox, OutboxItem};
pub use store::{MemoryStore, Store};
