//! A per-connection token bucket: `burst` requests at once, refilled at `per_sec`.

use tokio::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(per_sec: f64, burst: f64) -> Self {
        TokenBucket {
            per_sec: per_sec.max(0.001),
            burst: burst.max(1.0),
            tokens: burst.max(1.0),
            last: Instant::now(),
        }
    }

    /// Takes a token, or says in how many milliseconds one will be there.
    pub fn take(&mut self) -> Result<(), u64> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / self.per_sec) * 1000.0).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_refills() {
        let mut b = TokenBucket::new(10.0, 3.0);
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        let wait = b.take().expect_err("empty");
        assert!(wait > 0 && wait <= 100, "{wait}");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(b.take().is_ok());
        assert!(b.take().is_err());
    }
}
