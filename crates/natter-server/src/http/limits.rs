//! Abuse limits on the account endpoints: sign-ins per client address and per username,
//! sign-ups and guests per address (docs/protocol.md section 1). Each limit is a token bucket
//! of `N` requests refilled at `N` per period, kept in memory per key.
//!
//! Memory is bounded: each table holds at most `limiter_table_size` keys. When a new key
//! finds it full, the keys whose buckets have refilled (they are as good as new) are
//! forgotten first; if that frees less than an eighth of the table, the least recently seen
//! eighth goes too, so every pass makes room for many keys (amortised O(1) per request). A
//! flood of distinct addresses therefore costs a fixed amount of memory; its price is that
//! under such a flood an address may be forgotten early and get a fresh bucket.
//!
//! Each limit counts what it refuses ([`AccountRefusals`], shown at `/metrics`).

use crate::http::client::limit_key;
use crate::Config;
use natter_core::metrics::Counter;
use natter_core::{ChatError, ErrorCode};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// One key's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date (and the key last seen).
    last: Instant,
}

/// One limit: `burst` requests, refilled at `per_sec`, per key.
#[derive(Debug)]
pub struct Keyed<K> {
    per_sec: f64,
    burst: f64,
    cap: usize,
    table: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    /// `count` requests per `period`, for at most `cap` keys.
    pub fn new(count: u32, period: Duration, cap: usize) -> Self {
        let burst = f64::from(count.max(1));
        Keyed {
            per_sec: burst / period.as_secs_f64().max(0.001),
            burst,
            cap: cap.max(1),
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket, or says in how many ms one will be there.
    pub fn take(&self, key: &K) -> Result<(), u64> {
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if !table.contains_key(key) && table.len() >= self.cap {
            self.make_room(&mut table, now);
        }
        let bucket = table.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - bucket.tokens) / self.per_sec) * 1000.0).ceil() as u64)
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frees at least an eighth of a full table: refilled buckets first, then the least
    /// recently seen.
    fn make_room(&self, table: &mut HashMap<K, Bucket>, now: Instant) {
        let (per_sec, burst) = (self.per_sec, self.burst);
        table.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * per_sec < burst);
        let target = self.cap - (self.cap / 8).max(1);
        if table.len() <= target {
            return;
        }
        let mut seen: Vec<Instant> = table.values().map(|b| b.last).collect();
        let k = table.len() - target - 1;
        let (_, cutoff, _) = seen.select_nth_unstable(k);
        let cutoff = *cutoff;
        table.retain(|_, b| b.last > cutoff);
    }
}

/// The account endpoints' limits.
#[derive(Debug)]
pub struct AccountLimits {
    login_by_address: Keyed<IpAddr>,
    login_by_user: Keyed<String>,
    register_by_address: Keyed<IpAddr>,
    guest_by_address: Keyed<IpAddr>,
    /// Requests each limit refused (for `/metrics`).
    pub refused: AccountRefusals,
}

/// Refusals per account limit, as `/metrics` shows them (`natter_rate_limited_total`).
#[derive(Debug, Default)]
pub struct AccountRefusals {
    pub login_address: Counter,
    pub login_user: Counter,
    pub register_address: Counter,
    pub guest_address: Counter,
}

impl AccountRefusals {
    /// Each counter with its `kind` label.
    pub fn by_kind(&self) -> [(&'static str, u64); 4] {
        [
            ("login_address", self.login_address.get()),
            ("login_user", self.login_user.get()),
            ("register_address", self.register_address.get()),
            ("guest_address", self.guest_address.get()),
        ]
    }
}

/// Counts a refusal of `result` in `counter`.
fn counted(counter: &Counter, result: Result<(), u64>) -> Result<(), u64> {
    if result.is_err() {
        counter.inc();
    }
    result
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn refused(what: &str, retry_after_ms: u64) -> ChatError {
    let mut e = ChatError::new(
        ErrorCode::RateLimited,
        format!("too many {what}; try again later"),
    );
    e.retry_after_ms = Some(retry_after_ms.max(1));
    e
}

impl AccountLimits {
    pub fn new(config: &Config) -> Self {
        let cap = config.limiter_table_size;
        AccountLimits {
            login_by_address: Keyed::new(config.login_per_minute_per_address, MINUTE, cap),
            login_by_user: Keyed::new(config.login_per_minute_per_user, MINUTE, cap),
            register_by_address: Keyed::new(config.register_per_hour_per_address, HOUR, cap),
            guest_by_address: Keyed::new(config.guest_per_hour_per_address, HOUR, cap),
            refused: AccountRefusals::default(),
        }
    }

    /// A sign-in from `addr` as `username`. Only names that could exist have a bucket (an
    /// invalid one cannot sign in, and must not fill the table with junk keys).
    pub fn login(&self, addr: IpAddr, username: &str) -> Result<(), ChatError> {
        let by_address = self.login_by_address.take(&limit_key(addr));
        counted(&self.refused.login_address, by_address)
            .map_err(|ms| refused("sign-ins from this address", ms))?;
        if natter_core::accounts::valid_name(username) {
            let by_user = self.login_by_user.take(&username.to_ascii_lowercase());
            counted(&self.refused.login_user, by_user)
                .map_err(|ms| refused("sign-ins for this account", ms))?;
        }
        Ok(())
    }

    pub fn register(&self, addr: IpAddr) -> Result<(), ChatError> {
        let taken = self.register_by_address.take(&limit_key(addr));
        counted(&self.refused.register_address, taken)
            .map_err(|ms| refused("sign-ups from this address", ms))
    }

    pub fn guest(&self, addr: IpAddr) -> Result<(), ChatError> {
        let taken = self.guest_by_address.take(&limit_key(addr));
        counted(&self.refused.guest_address, taken)
            .map_err(|ms| refused("guests from this address", ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(n))
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_bursts_then_waits_for_its_refill() {
        let limit = Keyed::new(3, MINUTE, 100);
        for _ in 0..3 {
            assert!(limit.take(&ip(1)).is_ok());
        }
        let wait = limit.take(&ip(1)).expect_err("empty");
        assert!((19_000..=20_000).contains(&wait), "{wait}");
        // Another key is not affected.
        assert!(limit.take(&ip(2)).is_ok());
        tokio::time::advance(Duration::from_millis(wait)).await;
        assert!(limit.take(&ip(1)).is_ok());
        assert!(limit.take(&ip(1)).is_err());
    }

    /// A flood of distinct keys never holds more than the cap, and the most recently seen
    /// (still limited) keys are the ones kept.
    #[tokio::test(start_paused = true)]
    async fn the_table_is_bounded_and_forgets_the_oldest() {
        let limit = Keyed::new(1, HOUR, 64);
        assert!(limit.take(&ip(0)).is_ok());
        for n in 1..10_000 {
            tokio::time::advance(Duration::from_millis(1)).await;
            let _ = limit.take(&ip(n));
            assert!(limit.len() <= 64, "{} keys", limit.len());
            // The newest key is remembered: it is refused now.
            if n % 997 == 0 {
                assert!(limit.take(&ip(n)).is_err());
            }
        }
        // The very first key was forgotten long ago: a fresh bucket.
        assert!(limit.take(&ip(0)).is_ok());
    }

    /// Refilled buckets are forgotten before limited ones.
    #[tokio::test(start_paused = true)]
    async fn refilled_keys_go_first() {
        let limit = Keyed::new(2, Duration::from_secs(1), 16);
        // Key 0 is emptied and stays limited; keys 1..15 take one of two and refill.
        assert!(limit.take(&ip(0)).is_ok());
        assert!(limit.take(&ip(0)).is_ok());
        for n in 1..16 {
            assert!(limit.take(&ip(n)).is_ok());
        }
        tokio::time::advance(Duration::from_millis(600)).await;
        assert!(limit.take(&ip(100)).is_ok());
        assert_eq!(limit.len(), 2, "only the limited key and the new one stay");
        assert!(limit.take(&ip(0)).is_ok(), "refilled by one, not forgotten");
        assert!(limit.take(&ip(0)).is_err(), "key 0 was remembered");
    }
}
