//! natter-bench: the load generator that measures Natter against its Node.js peers
//! (issue 7). It drives the same scenarios over Natter's native protocol, Socket.IO v4 and a
//! plain-`ws` JSON protocol, checks every delivery, and reads the server's CPU and memory.
//!
//! Map of the modules, in the order data flows:
//! - `cli`: arguments; `scenario`: fanout, rooms, ramp, idle, connect, durable.
//! - `workload`: connections laid out over rooms, and one measured step of traffic.
//! - `conn`: one connection (setup requests, then a writer task and a checking reader task).
//! - `proto`: wire protocols (native, Socket.IO codec, Natter-over-Socket.IO, the peers).
//! - `accounts`, `http`: Natter accounts over the HTTP API.
//! - `nodes`: several nodes of a cluster: which node a connection opens on, and delivery
//!   latency split into same-node and cross-node; `redis_stats`: the broker's traffic
//!   per message, from Redis's `INFO`.
//! - `payload`: the stamp in every body; `check`: loss/dup/order/seq checks;
//!   `stats`: latency histograms; `procstat`: CPU and RSS from /proc; `clock`: the time base.
//! - `record`: the JSON result of a run; `report`: docs/performance.md tables and SVG plots.

pub mod accounts;
pub mod check;
pub mod cli;
pub mod clock;
pub mod conn;
pub mod error;
pub mod http;
pub mod nodes;
pub mod payload;
pub mod procstat;
pub mod proto;
pub mod record;
pub mod redis_stats;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod target;
pub mod workload;
pub mod ws;

use cli::Command;
use error::BenchError;
use record::RunRecord;

/// Runs one command; `Ok(false)` when a scenario ran but its delivery checks failed.
pub async fn run(command: Command) -> Result<bool, BenchError> {
    clock::init();
    let (rec, out) = match command {
        Command::Report(args) => {
            report::generate(&args)?;
            return Ok(true);
        }
        Command::Fanout(a) => (scenario::fanout(&a).await?, a.common.out),
        Command::Rooms(a) => (scenario::rooms(&a).await?, a.common.out),
        Command::Ramp(a) => (scenario::ramp(&a).await?, a.common.out),
        Command::Idle(a) => (scenario::idle(&a).await?, a.common.out),
        Command::Connect(a) => (scenario::connect(&a).await?, a.common.out),
        Command::Durable(a) => (scenario::durable(&a).await?, a.common.out),
    };
    println!("{}", headline(&rec));
    for line in cluster_lines(&rec) {
        println!("  {line}");
    }
    for problem in &rec.verdict.problems {
        println!("  PROBLEM: {problem}");
    }
    for note in &rec.verdict.notes {
        println!("  note: {note}");
    }
    if let Some(path) = out {
        std::fs::write(&path, serde_json::to_string_pretty(&rec)?)?;
    }
    Ok(rec.verdict.ok)
}

/// With several nodes or `--redis`: the latency split by node and the broker's traffic.
pub fn cluster_lines(rec: &RunRecord) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(n) = rec.summary.node_split {
        let (s, c) = (n.same_node, n.cross_node);
        lines.push(format!(
            "same-node p50 {:.2} p99 {:.2} ms ({} deliveries); cross-node p50 {:.2} p99 {:.2} ms \
             ({}, {:.0}%): crossing nodes adds p50 {:+.2} ms, p99 {:+.2} ms",
            s.p50_ms,
            s.p99_ms,
            s.count,
            c.p50_ms,
            c.p99_ms,
            c.count,
            100.0 * n.cross_share(),
            n.cross_added_p50_ms,
            n.cross_added_p99_ms
        ));
    }
    if let Some(r) = &rec.summary.redis {
        let per = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        lines.push(format!(
            "redis per stored message ({}): {} PUBLISH, {} commands, {} bytes in, {} bytes out \
             (server-wide counters)",
            r.messages,
            per(r.publish_per_message),
            per(r.commands_per_message),
            per(r.bytes_in_per_message),
            per(r.bytes_out_per_message)
        ));
    }
    lines
}

/// One line saying what a run measured.
pub fn headline(rec: &RunRecord) -> String {
    let s = &rec.summary;
    let mut parts = vec![format!("{} {}", rec.scenario, rec.target)];
    if let Some(d) = s.deliveries_per_sec {
        parts.push(format!("{d:.0} deliveries/s"));
    }
    if let Some(m) = s.msgs_per_sec {
        parts.push(format!("{m:.0} msg/s"));
    }
    if let Some(l) = s.latency {
        parts.push(format!(
            "p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} ms",
            l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
        ));
    }
    if let Some(c) = s.server_cpu_ns_per_delivery {
        parts.push(format!("server {c:.0} ns CPU/delivery"));
    }
    if let Some(a) = s.acked_per_sec {
        parts.push(format!("{a:.0} acked/s"));
    }
    if let Some(m) = s.mem_per_conn_bytes {
        parts.push(format!("{:.1} KiB/conn", m / 1024.0));
    }
    if let Some(h) = s.connections_held {
        parts.push(format!("{h} conns held"));
    }
    if let Some(c) = s.connections_per_sec {
        parts.push(format!("{c:.0} conns/s"));
    }
    if let Some(l) = s.logins_per_sec {
        parts.push(format!("{l:.1} logins/s"));
    }
    if s.bench_limited {
        parts.push("BENCH-LIMITED".into());
    }
    parts.push(
        if rec.verdict.ok {
            "checks ok"
        } else {
            "CHECKS FAILED"
        }
        .into(),
    );
    parts.join(", ")
}
