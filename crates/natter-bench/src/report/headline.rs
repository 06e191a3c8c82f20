//! The headline table of docs/performance.md: one row per figure a user compares servers by,
//! each server's median [range] over repetitions, and Natter's ratios to both Node servers
//! and to the floor, each ratio computed within one repetition (servers of one repetition ran
//! one after another) before taking the median.

use std::fmt::Write as _;

use super::records_of;
use super::spread::{fmt_spread_of, spread, Spread};
use super::tables::Metric;
use super::targets::{cpu_at_natter_best, div, ratios_of, Figure};
use crate::record::RunRecord;
use crate::target::TargetKind;

/// One headline figure: its group of runs, what it is, and how it is read from a run.
struct Row {
    grp: &'static str,
    what: &'static str,
    read: Read,
    /// A ramp's throughput: marked when the load generator was the limit.
    ceiling: bool,
}

/// How a row's figure is read from a run.
enum Read {
    /// From the run's summary.
    Summary(Metric),
    /// Server CPU per delivery at the ramp step of the rate where Natter's ramp peaked in the
    /// same repetition (the same offered load).
    CpuAtNatterBest,
}

const ROWS: [Row; 8] = [
    Row {
        grp: "ramp-fanout",
        what: "fanout ramp, ten publishers: deliveries/s at the p99 target",
        read: Read::Summary(|r| r.summary.deliveries_per_sec),
        ceiling: true,
    },
    Row {
        grp: "ramp-fanout1",
        what: "fanout ramp, one publisher: deliveries/s at the p99 target",
        read: Read::Summary(|r| r.summary.deliveries_per_sec),
        ceiling: true,
    },
    Row {
        grp: "ramp-rooms",
        what: "rooms ramp, everyone publishing: deliveries/s at the p99 target",
        read: Read::Summary(|r| r.summary.deliveries_per_sec),
        ceiling: true,
    },
    Row {
        grp: "fanout",
        what: "fanout at a fixed rate: server CPU ns per delivery",
        read: Read::Summary(|r| r.summary.server_cpu_ns_per_delivery),
        ceiling: false,
    },
    Row {
        grp: "rooms",
        what: "rooms at a fixed rate: server CPU ns per delivery",
        read: Read::Summary(|r| r.summary.server_cpu_ns_per_delivery),
        ceiling: false,
    },
    Row {
        grp: "ramp-rooms",
        what: "rooms ramp, at the rate of Natter's best step: server CPU ns per delivery",
        read: Read::CpuAtNatterBest,
        ceiling: false,
    },
    Row {
        grp: "idle",
        what: "idle connections: server memory per connection, KiB",
        read: Read::Summary(|r| r.summary.mem_per_conn_bytes.map(|b| b / 1024.0)),
        ceiling: false,
    },
    Row {
        grp: "durable",
        what: "durable sends: acknowledged persisted msg/s",
        read: Read::Summary(|r| r.summary.acked_per_sec),
        ceiling: false,
    },
];

const SERVERS: [TargetKind; 5] = [
    TargetKind::Natter,
    TargetKind::NatterSio,
    TargetKind::SioPeer,
    TargetKind::WsPeer,
    TargetKind::Floor,
];

/// Natter's ratios: (subject, denominator), printed as `subject / denominator`.
const RATIOS: [(TargetKind, TargetKind); 4] = [
    (TargetKind::Natter, TargetKind::SioPeer),
    (TargetKind::Natter, TargetKind::WsPeer),
    (TargetKind::Natter, TargetKind::Floor),
    (TargetKind::NatterSio, TargetKind::SioPeer),
];

/// `rec`'s figure for `row`.
fn value(records: &[RunRecord], row: &Row, rec: &RunRecord) -> Option<f64> {
    match row.read {
        Read::Summary(metric) => metric(rec),
        Read::CpuAtNatterBest => {
            let natter = records_of(records, row.grp, TargetKind::Natter)
                .into_iter()
                .find(|n| n.label == rec.label)?;
            cpu_at_natter_best(rec, natter)
        }
    }
}

fn cell(records: &[RunRecord], row: &Row, target: TargetKind) -> String {
    let recs = records_of(records, row.grp, target);
    if recs.is_empty() {
        return "–".into();
    }
    let s: Option<Spread> = spread(recs.iter().filter_map(|r| value(records, row, r)));
    let mut out = fmt_spread_of(s, recs.len());
    // A throughput the load generator could not push past is its ceiling, not the server's.
    if row.ceiling && recs.iter().any(|r| r.summary.bench_limited) {
        out.push_str(" (b)");
    }
    out
}

fn ratio_cell(records: &[RunRecord], row: &Row, subject: TargetKind, peer: TargetKind) -> String {
    let fig: Figure = ratios_of(records, row.grp, subject, peer, |n, p| {
        div(value(records, row, n), value(records, row, p))
    });
    match fig.spread {
        None => "–".into(),
        Some(s) if s.n == 1 || s.min == s.max => format!("{:.2}", s.median),
        Some(s) => format!("{:.2} [{:.2}–{:.2}]", s.median, s.min, s.max),
    }
}

/// The headline table, or nothing when the results hold none of its groups.
pub(super) fn headline_table(records: &[RunRecord]) -> String {
    let rows: Vec<&Row> = ROWS
        .iter()
        .filter(|row| {
            SERVERS
                .iter()
                .any(|t| !records_of(records, row.grp, *t).is_empty())
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut md = String::from("### Every server, side by side\n\n| figure |");
    for t in SERVERS {
        let _ = write!(md, " {t} |");
    }
    for (s, p) in RATIOS {
        let _ = write!(md, " {s} / {p} |");
    }
    md.push_str("\n|---|");
    for _ in 0..SERVERS.len() + RATIOS.len() {
        md.push_str("---|");
    }
    md.push('\n');
    for row in rows {
        let _ = write!(md, "| {} |", row.what);
        for t in SERVERS {
            let _ = write!(md, " {} |", cell(records, row, t));
        }
        for (s, p) in RATIOS {
            let _ = write!(md, " {} |", ratio_cell(records, row, s, p));
        }
        md.push('\n');
    }
    md.push_str(
        "\nMedian [min–max] over repetitions; a ratio is taken within each repetition, then its \
         median. (b): in at least one repetition the load generator, not the server, was the \
         limit (its CPU at 85% or more, or sends behind schedule), so the server's own limit \
         is higher. CPU per delivery and memory: lower is better; deliveries/s and msg/s: \
         higher is better. The rooms ramp's CPU row reads every server's step at the rate where \
         Natter's ramp peaked in the same repetition (or its next step above it): the same \
         offered load. The floor does no storage and no chat logic; it has no durable \
         figure. Natter runs with fsync at every commit.\n",
    );
    md
}
