//! The result of one scenario run as written to JSON (`--out`): parameters, setup, every
//! step, the headline figures and the verdict of the delivery checks.

use serde::{Deserialize, Serialize};

use crate::nodes::NodeSplit;
use crate::redis_stats::RedisTraffic;
use crate::stats::LatencySummary;
use crate::target::TargetKind;
use crate::workload::{SetupReport, StepResult};

/// One run of one scenario against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub scenario: String,
    pub target: TargetKind,
    pub label: String,
    /// The natter-bench command line.
    pub command: String,
    /// The outer command that ran it (e.g. `bench/run --full`), when given.
    pub command_note: Option<String>,
    pub started_unix_s: u64,
    /// CPUs the load generator could use (its affinity mask).
    pub bench_cpus: usize,
    pub params: serde_json::Value,
    pub setup: SetupReport,
    pub steps: Vec<StepResult>,
    pub summary: Summary,
    pub verdict: Verdict,
}

/// Headline figures; which are set depends on the scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Distinct deliveries per second (fanout, rooms; ramp: at the best passing step).
    pub deliveries_per_sec: Option<f64>,
    /// Messages per second offered (ramp: the best passing step's rate).
    pub msgs_per_sec: Option<f64>,
    pub latency: Option<LatencySummary>,
    /// Several nodes: `latency` split into same-node and cross-node deliveries, and what
    /// crossing nodes added (cross minus same, p50 and p99).
    #[serde(default)]
    pub node_split: Option<NodeSplit>,
    /// `--redis`: the broker's traffic over the measured step, per stored message.
    #[serde(default)]
    pub redis: Option<RedisTraffic>,
    pub server_cpu_ns_per_delivery: Option<f64>,
    /// Durable: acknowledged sends per second.
    pub acked_per_sec: Option<f64>,
    pub ack_latency: Option<LatencySummary>,
    /// Idle: server RSS growth per held connection, bytes.
    pub mem_per_conn_bytes: Option<f64>,
    pub rss_before_mb: Option<f64>,
    pub rss_after_mb: Option<f64>,
    /// Idle/connect: connections held at the end.
    pub connections_held: Option<usize>,
    pub connections_per_sec: Option<f64>,
    pub connect_latency: Option<LatencySummary>,
    pub server_cpu_us_per_connection: Option<f64>,
    pub logins_per_sec: Option<f64>,
    pub login_latency: Option<LatencySummary>,
    /// Ramp: the p99 target, and whether a step failed it (false: the ramp ran out of steps).
    pub p99_target_ms: Option<f64>,
    pub ramp_hit_limit: Option<bool>,
    /// Ramp: the step after the best one failed while the bench itself was the bottleneck.
    pub limit_is_bench: Option<bool>,
    /// Any measured step (the best one, for ramp) had the bench as its own bottleneck.
    pub bench_limited: bool,
    /// Other work on the machine took more than a quarter of a core during that step.
    #[serde(default)]
    pub noisy: bool,
}

/// What the delivery checks concluded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Verdict {
    /// No duplicates, reordering, misrouting, seq faults, malformed frames, and no loss where
    /// none is allowed (every scenario but the overload steps of a ramp).
    pub ok: bool,
    pub problems: Vec<String>,
    /// Findings that are measurements, not faults (e.g. no ramp step met the p99 target).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Verdict {
    /// Judges `steps`; `loss_allowed(i)` says whether step `i` may lose messages (a ramp's
    /// failing step at overload, where the server may close slow consumers).
    pub fn judge(steps: &[StepResult], loss_allowed: impl Fn(usize) -> bool) -> Verdict {
        let mut problems = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            let c = &s.checks;
            let mut say = |what: &str, n: u64| {
                if n > 0 {
                    problems.push(format!("step {i}: {n} {what}"));
                }
            };
            say("duplicate deliveries", c.duplicates);
            say("out-of-order deliveries", c.out_of_order);
            say("misrouted deliveries", c.misrouted);
            say("missing seq numbers", c.seq_gaps);
            say("seq regressions", c.seq_regressions);
            say("unparsable bodies", c.unparsable);
            say("malformed frames", s.malformed_frames);
            if !loss_allowed(i) {
                say("lost deliveries", s.lost);
                say("refused sends", s.replies_err);
                say("disconnects", s.disconnects);
            }
        }
        Verdict {
            ok: problems.is_empty(),
            problems,
            notes: Vec::new(),
        }
    }
}
