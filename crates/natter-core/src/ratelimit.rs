//! A per-connection token bucket: `burst` requests at once, refilled at `per_sec`. The rates
//! are the node's and passed in: every connection keeps a bucket, so it holds only its state.

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
