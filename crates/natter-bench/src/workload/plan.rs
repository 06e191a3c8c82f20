//! The plain data of a workload: where connections go (`Layout`), how it is built, how a step
//! publishes (`Pace`, `StepSpec`), and what a setup and a step measured.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::CheckCounts;
use crate::nodes::NodeSplit;
use crate::procstat::CpuWindow;
use crate::stats::LatencySummary;

/// One connection of a layout.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    /// Room index (0..rooms).
    pub room: u32,
    pub publishes: bool,
}

/// Where connections go.
#[derive(Debug, Clone)]
pub struct Layout {
    pub rooms: u32,
    pub members: Vec<Member>,
}

impl Layout {
    /// `rooms` rooms of `per_room` connections; the first `publishers_per_room` of each publish.
    pub fn grid(rooms: u32, per_room: usize, publishers_per_room: usize) -> Layout {
        let members = (0..rooms)
            .flat_map(|room| {
                (0..per_room).map(move |i| Member {
                    room,
                    publishes: i < publishers_per_room,
                })
            })
            .collect();
        Layout { rooms, members }
    }
}

/// How a workload is set up.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Connections sharing one Natter account (all in the same room).
    pub conns_per_user: usize,
    /// Connections opened at once.
    pub concurrency: usize,
    pub users_file: Option<PathBuf>,
    /// Unique per run: room and user names start with it.
    pub run_id: String,
    pub timeout: Duration,
    /// In window mode, the unacknowledged sends each publisher may have.
    pub window: Option<usize>,
    /// Every node of a cluster, the first being where accounts and rooms are made; the
    /// layout's connections go to them round-robin (`nodes::node_of`). Empty: the one target.
    pub nodes: Vec<crate::target::Target>,
}

/// Setup figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SetupReport {
    pub accounts: usize,
    pub accounts_s: f64,
    pub connections: usize,
    pub connections_failed: usize,
    /// The first few connection errors.
    pub connection_errors: Vec<String>,
    pub connect_s: f64,
    /// Time to open, sign in and join, per connection.
    pub connect_latency: LatencySummary,
}

/// How a step publishes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    /// Messages per second across all publishers, spread evenly (open loop).
    Rate(f64),
    /// As fast as replies allow, with this many unacknowledged sends per publisher.
    Window(usize),
}

impl Pace {
    /// The offered rate (msg/s), for a rate-paced step.
    pub fn rate(self) -> Option<f64> {
        match self {
            Pace::Rate(r) => Some(r),
            Pace::Window(_) => None,
        }
    }
}

/// One step's plan.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub pace: Pace,
    pub duration: Duration,
    /// How long to wait after publishing for replies and deliveries still in flight.
    pub drain: Duration,
    /// At most this many messages per publisher.
    pub max_per_publisher: Option<u64>,
    /// The server processes to measure (every node of a cluster; empty: none).
    pub server_pids: Vec<u32>,
    /// Percent of each publisher's operations that are a `message.edit` of one of its recent
    /// messages or a `reaction.add`/`reaction.remove` instead of a `message.send` (Natter's
    /// native protocol only; 0 = sends only). Each change is a stream entry delivered to the
    /// whole room, so it is expected, counted and timed like a message.
    pub change_percent: u32,
}

/// What a step measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub pace: Pace,
    pub publishers: usize,
    pub connections: usize,
    /// Seconds of publishing.
    pub publish_s: f64,
    /// Seconds from the first send until everything arrived (or the drain gave up).
    pub window_s: f64,
    pub sent: u64,
    /// Of `sent`: edits and reactions (`--change-percent`).
    #[serde(default)]
    pub changes_sent: u64,
    pub replies_ok: u64,
    pub replies_err: u64,
    pub error_codes: BTreeMap<String, u64>,
    pub expected_deliveries: u64,
    pub checks: CheckCounts,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    pub malformed_frames: u64,
    /// Connections that ended during the step, and the first few reasons.
    pub disconnects: u64,
    pub disconnect_reasons: Vec<String>,
    /// Whether every reply and delivery arrived before the drain timed out.
    pub drained: bool,
    /// Messages sent per second of publishing.
    pub msgs_per_sec: f64,
    /// Successful replies per second of the window (Natter's durable sends).
    pub acked_per_sec: f64,
    /// Distinct deliveries per second of the window.
    pub deliveries_per_sec: f64,
    pub latency: LatencySummary,
    /// Several nodes: `latency` split by whether the receiver was on the sender's node, and
    /// what crossing nodes added (None with one node, or when a side had no delivery).
    #[serde(default)]
    pub node_split: Option<NodeSplit>,
    pub ack_latency: Option<LatencySummary>,
    pub cpu: CpuWindow,
    pub server_cpu_ns_per_delivery: Option<f64>,
    pub server_cpu_ns_per_message: Option<f64>,
    /// Worst delay of a send behind its schedule (rate mode): the bench falling behind.
    pub max_schedule_lag_ms: f64,
    /// Sends more than 10 ms behind their schedule (rate mode).
    pub late_sends: u64,
    /// The bench was its own bottleneck: its CPU saturated, or more than 1% of sends were
    /// more than 10 ms late (it could not offer the load it was asked to) while the server
    /// was not saturated.
    pub bench_limited: bool,
}

impl StepResult {
    /// Nothing lost, duplicated, reordered or refused, no disconnects, everything drained.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.checks.integrity_faults() == 0
            && self.replies_err == 0
            && self.disconnects == 0
            && self.malformed_frames == 0
            && self.drained
    }

    /// Clean, and within the latency target: a ramp step that passes.
    pub fn holds(&self, p99_ms: f64) -> bool {
        self.clean() && self.latency.p99_ms <= p99_ms
    }
}
