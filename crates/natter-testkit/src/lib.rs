//! Natter's test kit: the helpers that every crate's tests share, in one dev-only crate (never
//! published, only ever a dev-dependency). Everything is re-exported at the root, so a suite
//! says `use natter_testkit::*;`.
//!
//! Modules:
//! - [`env`]: which optional services a test may use (`NATTER_TEST_POSTGRES`,
//!   `NATTER_TEST_REDIS`, ...), and the rule that a skip is a failure under
//!   `NATTER_REQUIRE_SERVICES=1`.
//! - [`names`]: unique names for users, rooms, databases and key prefixes on shared services.
//! - [`wait`]: how long tests wait, polling for a condition, spare ports, waiting for a child
//!   process to listen.
//! - [`postgres`]: a scratch database per test, dropped at its end.
//! - [`redis`]: a `redis-server` of the test's own on a spare port, restartable.
//! - [`server`]: a Natter server in process on port 0 (`natter_server::run`), its settings
//!   from the environment.
//! - [`client`]: registering over HTTP and a client speaking docs/protocol.md over `/ws`.
//!
//! The `Store` and `Broker` conformance suites are not here: they sit beside their traits in
//! `natter_core::conformance`.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]

pub mod client;
pub mod env;
pub mod names;
pub mod postgres;
pub mod redis;
pub mod server;
pub mod stream;
pub mod wait;

pub use client::*;
pub use env::*;
pub use names::*;
pub use postgres::*;
pub use redis::*;
pub use server::*;
pub use wait::*;
