//! The target ratios (Natter against each peer), each computed within one repetition
//! and then summarized over repetitions, so a slow repetition of one server is not compared
//! with a fast one of another.

use std::fmt::Write as _;

use super::records_of;
use super::spread::{fmt_spread_of, spread, Spread};
use super::tables::{best_step, step_at_rate};
use crate::record::RunRecord;
use crate::target::TargetKind;
use crate::workload::StepResult;

/// A figure over repetitions, and how many repetitions there were.
#[derive(Debug, Clone, Copy)]
pub(super) struct Figure {
    pub(super) spread: Option<Spread>,
    pub(super) reps: usize,
}

/// Per-repetition ratio `f(natter, peer)` for one group.
pub(super) fn ratios(
    records: &[RunRecord],
    grp: &str,
    peer: TargetKind,
    f: impl Fn(&RunRecord, &RunRecord) -> Option<f64>,
) -> Figure {
    ratios_of(records, grp, TargetKind::Natter, peer, f)
}

/// `subject`'s figure over `peer`'s, per repetition (as [`ratios`], for any subject).
pub(super) fn ratios_of(
    records: &[RunRecord],
    grp: &str,
    subject: TargetKind,
    peer: TargetKind,
    f: impl Fn(&RunRecord, &RunRecord) -> Option<f64>,
) -> Figure {
    let natter = records_of(records, grp, subject);
    let peers = records_of(records, grp, peer);
    Figure {
        spread: spread(natter.iter().filter_map(|n| {
            peers
                .iter()
                .find(|p| p.label == n.label)
                .and_then(|p| f(n, p))
        })),
        reps: natter.len(),
    }
}

/// Natter's own figure `f` over repetitions.
pub(super) fn natter_figure(
    records: &[RunRecord],
    grp: &str,
    f: impl Fn(&RunRecord) -> Option<f64>,
) -> Figure {
    let natter = records_of(records, grp, TargetKind::Natter);
    Figure {
        spread: spread(natter.iter().filter_map(|r| f(r))),
        reps: natter.len(),
    }
}

pub(super) fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// `rec`'s server CPU per delivery at the offered rate where `natter`'s ramp peaked (the same
/// offered load for every server of a repetition).
pub(super) fn cpu_at_natter_best(rec: &RunRecord, natter: &RunRecord) -> Option<f64> {
    let rate = best_step(natter)?.pace.rate()?;
    step_at_rate(rec, rate)?.server_cpu_ns_per_delivery
}

/// Natter's p99 (or CPU/delivery) at the offered rate where the peer's ramp peaked.
pub(super) fn at_peer_best(
    n: &RunRecord,
    p: &RunRecord,
    f: fn(&StepResult) -> Option<f64>,
) -> Option<f64> {
    let peer_best = best_step(p)?;
    let natter_step = step_at_rate(n, peer_best.pace.rate()?)?;
    div(f(natter_step), f(peer_best))
}

pub(super) fn targets_table(records: &[RunRecord]) -> String {
    let mut rows: Vec<(String, String, Figure, bool)> = Vec::new();
    let mut add =
        |what: String, goal: &str, fig: Figure, at_least: Option<f64>, at_most: Option<f64>| {
            let met = fig.spread.is_some_and(|s| {
                at_least.is_none_or(|g| s.median >= g) && at_most.is_none_or(|g| s.median <= g)
            });
            rows.push((what, goal.to_string(), fig, met));
        };
    let sustained = |n: &RunRecord, p: &RunRecord| {
        div(n.summary.deliveries_per_sec, p.summary.deliveries_per_sec)
    };
    for (peer, goal) in [(TargetKind::SioPeer, 10.0), (TargetKind::WsPeer, 5.0)] {
        add(
            format!("fanout: sustained deliveries/s at p99 ≤ target, Natter / {peer}"),
            &format!("≥ {goal}x"),
            ratios(records, "ramp-fanout", peer, sustained),
            Some(goal),
            None,
        );
    }
    add(
        "rooms: sustained deliveries/s, Natter / sio-peer".into(),
        "≥ 5x",
        ratios(records, "ramp-rooms", TargetKind::SioPeer, sustained),
        Some(5.0),
        None,
    );
    for grp in ["ramp-fanout", "ramp-rooms"] {
        add(
            format!("{grp}: p99 at sio-peer's best sustainable rate, Natter / sio-peer"),
            "≤ 0.2",
            ratios(records, grp, TargetKind::SioPeer, |n, p| {
                at_peer_best(n, p, |s| Some(s.latency.p99_ms))
            }),
            None,
            Some(0.2),
        );
    }
    for (peer, goal) in [(TargetKind::SioPeer, 0.1), (TargetKind::WsPeer, 1.0 / 3.0)] {
        add(
            format!("idle: memory per connection, Natter / {peer}"),
            &format!("≤ {goal:.2}"),
            ratios(records, "idle", peer, |n, p| {
                div(n.summary.mem_per_conn_bytes, p.summary.mem_per_conn_bytes)
            }),
            None,
            Some(goal),
        );
    }
    add(
        "idle: connections held by Natter".into(),
        "≥ 10000",
        natter_figure(records, "idle", |r| {
            r.summary.connections_held.map(|c| c as f64)
        }),
        Some(10_000.0),
        None,
    );
    add(
        "durable: acknowledged persisted msg/s (Natter)".into(),
        "≥ 50000",
        natter_figure(records, "durable", |r| r.summary.acked_per_sec),
        Some(50_000.0),
        None,
    );
    for grp in ["fanout", "rooms"] {
        add(
            format!("{grp} (same offered rate): server CPU per delivery, Natter / sio-peer"),
            "≤ 0.1",
            ratios(records, grp, TargetKind::SioPeer, |n, p| {
                div(
                    n.summary.server_cpu_ns_per_delivery,
                    p.summary.server_cpu_ns_per_delivery,
                )
            }),
            None,
            Some(0.1),
        );
    }
    for grp in ["ramp-fanout", "ramp-rooms"] {
        add(
            format!("{grp}: server CPU per delivery at sio-peer's best rate, Natter / sio-peer"),
            "≤ 0.1",
            ratios(records, grp, TargetKind::SioPeer, |n, p| {
                at_peer_best(n, p, |s| s.server_cpu_ns_per_delivery)
            }),
            None,
            Some(0.1),
        );
    }
    // Issue 22, item 1: Natter's Socket.IO endpoint against the Express + Socket.IO server,
    // driven by the same client code.
    for (grp, what) in [
        ("ramp-rooms", "rooms"),
        ("ramp-fanout", "fanout, ten publishers"),
        ("ramp-fanout1", "fanout, one publisher"),
    ] {
        add(
            format!("{what}: sustained deliveries/s, natter-sio / sio-peer"),
            "≥ 2x",
            ratios_of(
                records,
                grp,
                TargetKind::NatterSio,
                TargetKind::SioPeer,
                sustained,
            ),
            Some(2.0),
            None,
        );
    }
    add(
        "idle: memory per connection, natter-sio / sio-peer".into(),
        "≤ 0.33",
        ratios_of(
            records,
            "idle",
            TargetKind::NatterSio,
            TargetKind::SioPeer,
            |n, p| div(n.summary.mem_per_conn_bytes, p.summary.mem_per_conn_bytes),
        ),
        None,
        Some(1.0 / 3.0),
    );
    // Issue 22: the physical floor (bench/peers/floor) at the same offered rate. bench/run
    // keeps fsync at every commit on, so the goal here is issue 22's durable one (1.5x); the
    // 1.2x goal is for runs with `--sqlite-synchronous normal`.
    for grp in ["fanout", "rooms"] {
        add(
            format!("{grp} (same offered rate): server CPU per delivery, Natter / floor"),
            "≤ 1.5",
            ratios(records, grp, TargetKind::Floor, |n, p| {
                div(
                    n.summary.server_cpu_ns_per_delivery,
                    p.summary.server_cpu_ns_per_delivery,
                )
            }),
            None,
            Some(1.5),
        );
    }
    // The same at load: every server's ramp step at the rate where Natter's peaked, where
    // commits are shared by many messages as they are in a busy chat.
    add(
        "ramp-rooms: server CPU per delivery at Natter's best rate, Natter / floor".into(),
        "≤ 1.5",
        ratios(records, "ramp-rooms", TargetKind::Floor, |n, p| {
            div(cpu_at_natter_best(n, n), cpu_at_natter_best(p, n))
        }),
        None,
        Some(1.5),
    );
    let mut md = String::from(
        "### Targets of issues 7 and 22\n\n| figure | goal | measured: median [range] | met |\n|---|---|---|---|\n",
    );
    for (what, goal, fig, met) in rows {
        let complete = fig.spread.is_some_and(|s| s.n == fig.reps);
        let verdict = match (fig.spread, met) {
            (None, _) if fig.reps == 0 => "not measured",
            (None, _) => "no value (see notes)",
            (Some(_), true) if complete => "yes",
            (Some(_), true) => "inconclusive",
            (Some(_), false) => "**no**",
        };
        let _ = writeln!(
            md,
            "| {what} | {goal} | {} | {verdict} |",
            fmt_spread_of(fig.spread, fig.reps)
        );
    }
    md
}
