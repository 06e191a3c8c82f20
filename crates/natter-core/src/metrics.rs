//! The chat core's own measurements: counters and latency histograms that the hot paths move
//! with relaxed atomics (no lock, no allocation), one set per [`crate::Node`] so several
//! servers in one process (the tests) never share them. The core only counts; the server
//! renders them (Prometheus text at `/metrics`). Gauges (sessions, rooms, presence, typing)
//! are not kept here: the node reads them from its own state when asked
//! (`Node::gauges`), so they cost the hot paths nothing.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// A count that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A count that goes up and down (open connections).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, in seconds: 100 µs to 10 s, about 2.5x apart (an
/// fsync'd SQLite group commit is ~1-5 ms; a Redis round trip on a LAN well under 1 ms).
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// The same bounds in nanoseconds, for the comparison on the hot path.
const BUCKET_NANOS: [u64; 15] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// A latency histogram with the fixed [`LATENCY_BUCKETS`]: an observation is two relaxed
/// adds (its bucket, and the sum).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket, not cumulative; the last is above every bound (`+Inf`).
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// The sum of all observations, in nanoseconds.
    sum_nanos: AtomicU64,
}

/// A histogram as read at one moment, in Prometheus' terms.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Observations at or below each bound of [`LATENCY_BUCKETS`] (cumulative).
    pub cumulative: Vec<u64>,
    /// All observations (the `+Inf` bucket).
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
}

impl Histogram {
    #[inline]
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKET_NANOS
            .iter()
            .position(|bound| nanos <= *bound)
            .unwrap_or(BUCKET_NANOS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The buckets made cumulative. (Read while observations go on, the count may run one
    /// or two ahead of the sum: Prometheus tolerates that.)
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut cumulative = Vec::with_capacity(LATENCY_BUCKETS.len());
        for count in &self.counts[..LATENCY_BUCKETS.len()] {
            running += count.load(Ordering::Relaxed);
            cumulative.push(running);
        }
        let count = running + self.counts[LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            cumulative,
            count,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Which of the core's limits refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitKind {
    /// A connection's request bucket (`rate_per_sec`, `rate_burst`).
    Request,
    /// A user's room creations (`room_create_per_minute`).
    RoomCreate,
    /// A user's searches (`search_per_minute`).
    Search,
    /// The password-hashing queue (full, too many waiting per address, or waited too long).
    PasswordHash,
}

impl RateLimitKind {
    pub const ALL: [RateLimitKind; 4] = [
        RateLimitKind::Request,
        RateLimitKind::RoomCreate,
        RateLimitKind::Search,
        RateLimitKind::PasswordHash,
    ];

    /// The `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitKind::Request => "request",
            RateLimitKind::RoomCreate => "room_create",
            RateLimitKind::Search => "search",
            RateLimitKind::PasswordHash => "password_hash",
        }
    }
}

/// The core's counters and histograms, one set per node.
#[derive(Debug, Default)]
pub struct CoreMetrics {
    /// Client connections open on this node, any transport, from before authentication
    /// (each core `Connection` counts itself from its creation to its drop).
    pub connections: Gauge,
    /// Messages stored by this node (`message.send` that was not a duplicate).
    pub messages_stored: Counter,
    /// Room messages handed to local sessions' outbound queues: one add per fan-out, of the
    /// number of sessions it reached.
    pub deliveries: Counter,
    /// Sessions ended by the slow-consumer close (4008: outbound queue full, or too far
    /// behind the presence feed).
    pub slow_consumer_closes: Counter,
    /// Requests refused by a core limit, by [`RateLimitKind`] (in `RateLimitKind::ALL`'s order).
    rate_limited: [Counter; 4],
    /// How long `Store::append` of a message took.
    pub store_append: Histogram,
    /// From an event's publication by one node to its arrival from the broker at this one
    /// (the Redis broker reports it; the in-process broker has no transit to measure).
    pub broker_lag: Histogram,
}

impl CoreMetrics {
    #[inline]
    pub fn rate_limited(&self, kind: RateLimitKind) -> &Counter {
        &self.rate_limited[kind as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let s = h.snapshot();
        assert_eq!(s.cumulative.len(), LATENCY_BUCKETS.len());
        assert_eq!(s.cumulative[0], 2, "<= 100 µs, the bound included");
        assert_eq!(s.cumulative[4], 2, "<= 2.5 ms");
        assert_eq!(s.cumulative[5], 3, "<= 5 ms");
        assert_eq!(*s.cumulative.last().expect("buckets"), 3);
        assert_eq!(s.count, 4);
        assert!((s.sum_seconds - 20.00315).abs() < 1e-9, "{}", s.sum_seconds);
    }

    #[test]
    fn nanosecond_bounds_match_the_seconds() {
        for (secs, nanos) in LATENCY_BUCKETS.iter().zip(BUCKET_NANOS) {
            assert_eq!((secs * 1e9).round() as u64, nanos);
        }
    }

    #[test]
    fn rate_limit_kinds_have_their_own_counters() {
        let m = CoreMetrics::default();
        m.rate_limited(RateLimitKind::Search).inc();
        m.rate_limited(RateLimitKind::Search).inc();
        m.rate_limited(RateLimitKind::Request).inc();
        let counts: Vec<u64> = RateLimitKind::ALL
            .iter()
            .map(|k| m.rate_limited(*k).get())
            .collect();
        assert_eq!(counts, [1, 0, 2, 0]);
    }
}
