//! The node's wall clock for session and guest expiry: the system time, plus an offset that
//! tests move forward (`Clock::advance`) to cross a 30-day TTL without waiting 30 days.
//! Everything that compares `last_used_at`/`last_active` reads the time here.

use crate::model::{now_millis, Millis};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The system clock, shifted by an offset shared by every clone (zero in production).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Milliseconds since the Unix epoch, as this clock reads them.
    pub fn now_millis(&self) -> Millis {
        now_millis().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now_millis();
        clock.advance(Duration::from_secs(86_400));
        assert!(other.now_millis() >= before + 86_400_000);
    }
}
