//! The load generator's one time base: nanoseconds since the process started (monotonic).
//!
//! Senders and receivers live in the same process, so a send time stamped into a message body
//! with [`now_ns`] and read back on delivery gives the one-way latency without clock skew.

use std::sync::OnceLock;
use std::time::Instant;

static BASE: OnceLock<Instant> = OnceLock::new();

/// Fixes the time base; call once early (later calls are harmless).
pub fn init() {
    let _ = BASE.get_or_init(Instant::now);
}

/// Nanoseconds since [`init`] (or since the first call to this function).
pub fn now_ns() -> u64 {
    let base = BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
