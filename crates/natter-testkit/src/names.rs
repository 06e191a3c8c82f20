//! Unique names, so that tests sharing one PostgreSQL or Redis (and runs of the suite after
//! each other) never see each other's users, rooms, databases or keys.

use std::sync::atomic::{AtomicU64, Ordering};

/// `prefix` plus a suffix unique to this process and call (short: user and room names have
/// a length limit).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() % 100_000;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() % 1_000_000)
        .unwrap_or(0);
    format!("{prefix}{pid}x{t}x{n}")
}

/// A unique Redis key and channel prefix for one test. It starts `natter_t_`, the prefix CI
/// clears left-over keys by.
pub fn unique_redis_prefix() -> String {
    format!("{}:", unique("natter_t_"))
}

/// A unique PostgreSQL database name starting with `prefix` (lower case, as PostgreSQL folds
/// unquoted names).
pub fn unique_database_name(prefix: &str) -> String {
    natter_store_sql::postgres::unique_database_name(prefix)
}
