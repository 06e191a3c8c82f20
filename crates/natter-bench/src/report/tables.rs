//! The generated Markdown section of docs/performance.md: one table per scenario group
//! (columns per scenario), the target ratios, the plots, and how each run was made.

use std::fmt::Write as _;

use super::headline::headline_table;
use super::spread::{fmt_spread_of, spread};
use super::targets::targets_table;
use super::{records_of, GROUPS, TARGETS};
use crate::cli::ReportArgs;
use crate::record::RunRecord;
use crate::target::TargetKind;
use crate::workload::StepResult;

pub(super) type Metric = fn(&RunRecord) -> Option<f64>;

/// Columns of each scenario's table.
pub(super) fn columns(grp: &str) -> Vec<(&'static str, Metric)> {
    match grp {
        "fanout" | "rooms" | "ramp-fanout" | "ramp-fanout1" | "ramp-rooms" => vec![
            ("deliveries/s", |r| r.summary.deliveries_per_sec),
            ("msg/s", |r| r.summary.msgs_per_sec),
            ("p50 ms", |r| r.summary.latency.map(|l| l.p50_ms)),
            ("p99 ms", |r| r.summary.latency.map(|l| l.p99_ms)),
            ("p99.9 ms", |r| r.summary.latency.map(|l| l.p999_ms)),
            ("max ms", |r| r.summary.latency.map(|l| l.max_ms)),
            ("server CPU ns/delivery", |r| {
                r.summary.server_cpu_ns_per_delivery
            }),
            ("bench CPU %", |r| {
                best_step(r).map(|s| s.cpu.bench_util * 100.0)
            }),
            ("server CPU %", |r| {
                best_step(r).and_then(|s| s.cpu.server_util.map(|u| u * 100.0))
            }),
            ("other load %", |r| {
                best_step(r).and_then(|s| s.cpu.others_util.map(|u| u * 100.0))
            }),
        ],
        "durable" => vec![
            ("acked msg/s", |r| r.summary.acked_per_sec),
            ("ack p50 ms", |r| r.summary.ack_latency.map(|l| l.p50_ms)),
            ("ack p99 ms", |r| r.summary.ack_latency.map(|l| l.p99_ms)),
            ("delivery p99 ms", |r| r.summary.latency.map(|l| l.p99_ms)),
            ("server CPU µs/msg", |r| {
                best_step(r).and_then(|s| s.server_cpu_ns_per_message.map(|n| n / 1e3))
            }),
        ],
        "idle" => vec![
            ("held", |r| r.summary.connections_held.map(|c| c as f64)),
            ("KiB/conn", |r| {
                r.summary.mem_per_conn_bytes.map(|b| b / 1024.0)
            }),
            ("RSS before MiB", |r| r.summary.rss_before_mb),
            ("RSS after MiB", |r| r.summary.rss_after_mb),
            ("conns/s", |r| r.summary.connections_per_sec),
        ],
        "connect" => vec![
            ("conns/s", |r| r.summary.connections_per_sec),
            ("connect p99 ms", |r| {
                r.summary.connect_latency.map(|l| l.p99_ms)
            }),
            ("server CPU µs/conn", |r| {
                r.summary.server_cpu_us_per_connection
            }),
            ("logins/s", |r| r.summary.logins_per_sec),
            ("login p99 ms", |r| {
                r.summary.login_latency.map(|l| l.p99_ms)
            }),
        ],
        _ => Vec::new(),
    }
}

/// The step a record's summary describes (a ramp's best passing step, else the only one).
pub(super) fn best_step(rec: &RunRecord) -> Option<&StepResult> {
    if rec.scenario == "ramp" {
        let target = rec.summary.p99_target_ms.unwrap_or(f64::INFINITY);
        rec.steps.iter().rev().find(|s| s.holds(target))
    } else {
        rec.steps.first()
    }
}

/// The step of `rec` run at `rate` msg/s, or else its step at the lowest rate above it (ramps
/// refine their limits to different rates; comparing at a higher load is the cautious side).
pub(super) fn step_at_rate(rec: &RunRecord, rate: f64) -> Option<&StepResult> {
    rec.steps
        .iter()
        .filter_map(|s| s.pace.rate().map(|r| (r, s)))
        .filter(|(r, _)| *r >= rate * 0.99)
        .min_by(|(x, _), (y, _)| x.total_cmp(y))
        .map(|(_, s)| s)
}

pub(super) fn title(grp: &str) -> &'static str {
    match grp {
        "ramp-fanout" => "Fanout ramp: one room, highest rate holding the p99 target with nothing lost",
        "ramp-fanout1" => "Fanout ramp with one publisher: one room, one sending connection",
        "ramp-rooms" => "Rooms ramp: R rooms × K clients, every client publishing; highest rate holding the p99 target",
        "fanout" => "Fanout at a fixed rate (same offered load for every server)",
        "rooms" => "Rooms at a fixed rate (same offered load for every server)",
        "idle" => "Idle connections: server memory per connection",
        "connect" => "Connection set-up (and Natter sign-ins)",
        "durable" => "Durable sends: acknowledged, persisted messages from many senders (Natter only)",
        _ => "Other",
    }
}

pub(super) fn markdown(
    records: &[RunRecord],
    args: &ReportArgs,
    plots: &[(&str, String)],
) -> String {
    let mut md = String::new();
    let labels: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r.label.as_str()).collect();
    let started = records.iter().map(|r| r.started_unix_s).min().unwrap_or(0);
    let _ = writeln!(
        md,
        "_Generated by `natter-bench report` from {} result files in `{}`, produced by \
         `{}` (first run started at Unix time {started}; {} repetition(s): {}). Server pinned to \
         CPU 0, load generator to CPU 1 (`taskset`) on a 2-core machine shared with other work: \
         the figures are noisy, so each cell is the median over repetitions with [min–max], and \
         the ratios are computed within each repetition (servers run one after another) before \
         taking the median._\n",
        records.len(),
        args.results.display(),
        args.command,
        labels.len(),
        labels.iter().copied().collect::<Vec<_>>().join(", ")
    );
    md.push_str(&headline_table(records));
    md.push('\n');
    md.push_str(&targets_table(records));
    if args.brief {
        for (what, file) in plots {
            let alt = match *what {
                "memory" => "memory per idle connection".to_string(),
                shape => format!("throughput vs p99 latency, {shape}"),
            };
            let _ = writeln!(md, "\n![{alt}]({file})");
        }
        let _ = writeln!(
            md,
            "\nEvery table with latencies, CPU and checks per server, the notes and the exact \
             commands: [`{0}/report.md`]({1}{0}/report.md).",
            repo_path(&args.results),
            if args.doc.parent().is_some_and(|d| d.ends_with("docs")) {
                "../"
            } else {
                ""
            }
        );
        return md;
    }
    for grp in GROUPS {
        let cols = columns(grp);
        let present: Vec<TargetKind> = TARGETS
            .into_iter()
            .filter(|t| !records_of(records, grp, *t).is_empty())
            .collect();
        if present.is_empty() {
            continue;
        }
        let _ = writeln!(md, "\n### {}\n", title(grp));
        if let Some(first) = present
            .first()
            .and_then(|t| records_of(records, grp, *t).first().copied())
        {
            let _ = writeln!(md, "Parameters: `{}`\n", first.params);
        }
        md.push_str("| server |");
        for (name, _) in &cols {
            let _ = write!(md, " {name} |");
        }
        md.push_str(" runs | checks ok | bench-limited | noisy |\n|---|");
        for _ in &cols {
            md.push_str("---|");
        }
        md.push_str("---|---|---|---|\n");
        for t in &present {
            let recs = records_of(records, grp, *t);
            let _ = write!(md, "| {t} |");
            for (_, metric) in &cols {
                let _ = write!(
                    md,
                    " {} |",
                    fmt_spread_of(spread(recs.iter().filter_map(|r| metric(r))), recs.len())
                );
            }
            let ok = recs.iter().filter(|r| r.verdict.ok).count();
            let limited = recs.iter().filter(|r| r.summary.bench_limited).count();
            let noisy = recs.iter().filter(|r| r.summary.noisy).count();
            let n = recs.len();
            let _ = writeln!(md, " {n} | {ok}/{n} | {limited}/{n} | {noisy}/{n} |");
        }
        let problems: Vec<String> = present
            .iter()
            .flat_map(|t| records_of(records, grp, *t))
            .flat_map(|r| {
                r.verdict
                    .problems
                    .iter()
                    .map(move |p| format!("{} ({}): {p}", r.target, r.label))
            })
            .collect();
        let notes: Vec<String> = present
            .iter()
            .flat_map(|t| records_of(records, grp, *t))
            .flat_map(|r| {
                r.verdict
                    .notes
                    .iter()
                    .map(move |p| format!("{} ({}): {p}", r.target, r.label))
            })
            .collect();
        if !notes.is_empty() {
            md.push_str("\nNotes:\n");
            for n in notes.iter().take(12) {
                let _ = writeln!(md, "- {n}");
            }
        }
        if !problems.is_empty() {
            md.push_str("\nCheck findings (delivery faults):\n");
            for p in problems.iter().take(12) {
                let _ = writeln!(md, "- {p}");
            }
        }
        if let Some(shape) = grp.strip_prefix("ramp-") {
            if let Some((_, file)) = plots.iter().find(|(s, _)| *s == shape) {
                let _ = writeln!(md, "\n![throughput vs p99 latency, {shape}]({file})");
            }
        }
        if grp == "idle" {
            if let Some((_, file)) = plots.iter().find(|(s, _)| *s == "memory") {
                let _ = writeln!(md, "\n![memory per idle connection]({file})");
            }
        }
        md.push_str("\nCommands (first repetition of each server):\n\n");
        for t in &present {
            if let Some(r) = records_of(records, grp, *t).first() {
                let _ = writeln!(md, "- {t}: `{}`", scrub(&r.command));
            }
        }
    }
    md
}

/// `dir` from `bench/results/` on when it is under the repository's results, else as given.
pub(super) fn repo_path(dir: &std::path::Path) -> String {
    let shown = dir.display().to_string();
    match shown.find("bench/results/") {
        Some(i) => shown[i..].trim_end_matches('/').to_string(),
        None => shown,
    }
}

/// A command line without the machine-specific directory of the binary.
pub(super) fn scrub(command: &str) -> String {
    let mut parts = command.split(' ');
    let bin = parts.next().unwrap_or("");
    let bin = bin.rsplit('/').next().unwrap_or(bin);
    std::iter::once(bin)
        .chain(parts)
        .collect::<Vec<_>>()
        .join(" ")
}
