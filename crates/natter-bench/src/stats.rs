//! Latency recording (HDR histogram, microseconds) and its summary in milliseconds.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency recorded exactly: two minutes; anything slower is clamped to it.
const MAX_MICROS: u64 = 120_000_000;

/// A latency histogram in microseconds, two significant digits (1% resolution), small enough
/// to keep one per receiving connection.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, MAX_MICROS, 2)
            .expect("constant histogram bounds are valid");
        Latency { hist }
    }

    /// Records one latency given in nanoseconds.
    pub fn record_ns(&mut self, ns: u64) {
        let micros = (ns / 1_000).clamp(1, MAX_MICROS);
        self.hist.saturating_record(micros);
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail; ignore the impossible error.
        let _ = self.hist.add(&other.hist);
    }

    pub fn reset(&mut self) {
        self.hist.reset();
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |q: f64| self.hist.value_at_quantile(q) as f64 / 1_000.0;
        LatencySummary {
            count: self.hist.len(),
            mean_ms: self.hist.mean() / 1_000.0,
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: self.hist.max() as f64 / 1_000.0,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut l = Latency::new();
        for i in 1..=1000u64 {
            l.record_ns(i * 1_000_000); // 1..1000 ms
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() < 10.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 15.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 15.0, "{s:?}");
    }
}
