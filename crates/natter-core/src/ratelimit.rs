//! A per-connection token bucket: `burst` requests at once, refilled at `per_sec`. The rates
//! are the node's and passed in: every connection keeps a bucket, so it holds only its state.
//! And per-user buckets for a node's "N per minute" limits.

use tokio::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: f64) -> Self {
        TokenBucket {
            tokens: burst.max(1.0),
            last: Instant::now(),
        }
    }

    /// Takes a token, or says in how many milliseconds one will be there.
    pub fn take(&mut self, per_sec: f64, burst: f64) -> Result<(), u64> {
        // The server refuses rates outside `config::ranges` at start; this guard only keeps a
        // `CoreConfig` built in code from dividing by zero.
        let (per_sec, burst) = (per_sec.max(0.001), burst.max(1.0));
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * per_sec).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / per_sec) * 1000.0).ceil() as u64)
        }
    }
}

impl TokenBucket {
    /// Whether the bucket would be full now: such a bucket holds nothing worth keeping.
    pub fn is_full(&self, per_sec: f64, burst: f64) -> bool {
        let (per_sec, burst) = (per_sec.max(0.001), burst.max(1.0));
        let elapsed = Instant::now().duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * per_sec >= burst
    }
}

/// One bucket per user, for a node-wide "N per minute" limit (room creations, searches): a
/// bucket of `per_minute` refilled over a minute. Past `sweep_at` users, the buckets that have
/// refilled are forgotten (a full bucket is what a new one would be, so forgetting one changes
/// nothing); one still short of full is kept, so forgetting never gives a user anything back.
/// Keyed by user by default; the HTTP API keys its buckets by token (`crate::bots`).
#[derive(Debug)]
pub struct PerUserBuckets<K = crate::model::UserId> {
    buckets: std::sync::Mutex<std::collections::HashMap<K, TokenBucket>>,
    sweep_at: usize,
}

impl<K: std::hash::Hash + Eq + Copy> PerUserBuckets<K> {
    pub fn new(sweep_at: usize) -> Self {
        PerUserBuckets {
            buckets: std::sync::Mutex::default(),
            sweep_at,
        }
    }

    /// Takes one of `user`'s tokens, or says in how many milliseconds the next one comes.
    pub fn take(&self, user: K, per_minute: u32) -> Result<(), u64> {
        let burst = f64::from(per_minute);
        let per_sec = burst / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= self.sweep_at && !buckets.contains_key(&user) {
            buckets.retain(|_, b| !b.is_full(per_sec, burst));
        }
        buckets
            .entry(user)
            .or_insert_with(|| TokenBucket::new(burst))
            .take(per_sec, burst)
    }

    /// Users with a bucket kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;
    use std::time::Duration;

    /// Past `sweep_at` users, the buckets that have refilled are forgotten; one still empty
    /// is kept, so forgetting never gives a user back a token.
    #[tokio::test(start_paused = true)]
    async fn full_user_buckets_are_forgotten_and_empty_ones_kept() {
        let users: PerUserBuckets = PerUserBuckets::new(64);
        for id in 1..=64 {
            users.take(UserId(id), 1).expect("first");
        }
        tokio::time::advance(Duration::from_secs(61)).await;
        users.take(UserId(1), 1).expect("refilled");
        users.take(UserId(-1), 1).expect("a new user");
        assert_eq!(
            users.len(),
            2,
            "user 1 (empty again) and the new user are kept"
        );
        let wait = users.take(UserId(1), 1).expect_err("still empty");
        assert!(wait > 59_000 && wait <= 60_000, "{wait}");
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_then_refills() {
        let mut b = TokenBucket::new(3.0);
        assert!(b.take(10.0, 3.0).is_ok());
        assert!(b.take(10.0, 3.0).is_ok());
        assert!(b.take(10.0, 3.0).is_ok());
        let wait = b.take(10.0, 3.0).expect_err("empty");
        assert!(wait > 0 && wait <= 100, "{wait}");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(b.take(10.0, 3.0).is_ok());
        assert!(b.take(10.0, 3.0).is_err());
        assert!(!b.is_full(10.0, 3.0));
        tokio::time::advance(Duration::from_millis(300)).await;
        assert!(b.is_full(10.0, 3.0));
    }
}
