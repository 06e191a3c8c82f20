//! `natter-bench report`: reads result files (`--out` JSON), and rewrites the generated
//! section of docs/performance.md (tables with medians and spread over repetitions, the
//! issue's target ratios computed within each repetition) plus two SVG plots: throughput vs
//! p99 latency per server, and idle memory per connection.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::ReportArgs;
use crate::error::BenchError;
use crate::record::RunRecord;
use crate::target::TargetKind;
use crate::workload::StepResult;

pub const BEGIN: &str = "<!-- BEGIN GENERATED: natter-bench report; edit outside these markers -->";
pub const END: &str = "<!-- END GENERATED -->";

const TARGETS: [TargetKind; 4] = [
    TargetKind::Natter,
    TargetKind::NatterSio,
    TargetKind::SioPeer,
    TargetKind::WsPeer,
];

pub fn generate(args: &ReportArgs) -> Result<(), BenchError> {
    let records = load(&args.results)?;
    if records.is_empty() {
        return Err(BenchError::Config(format!(
            "no result files in {}",
            args.results.display()
        )));
    }
    let svg_dir = args
        .svg_dir
        .clone()
        .or_else(|| args.doc.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&svg_dir)?;
    let mut plots = Vec::new();
    for shape in ["fanout", "rooms"] {
        if let Some(svg) = throughput_plot(&records, shape) {
            let name = format!("performance-{shape}.svg");
            std::fs::write(svg_dir.join(&name), svg)?;
            plots.push((shape, name));
        }
    }
    if let Some(svg) = memory_plot(&records) {
        std::fs::write(svg_dir.join("performance-memory.svg"), svg)?;
        plots.push(("memory", "performance-memory.svg".to_string()));
    }
    let section = markdown(&records, args, &plots);
    let doc = std::fs::read_to_string(&args.doc).unwrap_or_default();
    std::fs::write(&args.doc, splice(&doc, &section))?;
    println!(
        "report: {} result files -> {} ({} plots)",
        records.len(),
        args.doc.display(),
        plots.len()
    );
    Ok(())
}

/// Every `*.json` under `dir` that is a run record.
pub fn load(dir: &Path) -> Result<Vec<RunRecord>, BenchError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path)?;
                match serde_json::from_str::<RunRecord>(&text) {
                    Ok(rec) => out.push(rec),
                    Err(e) => eprintln!("report: skipping {}: {e}", path.display()),
                }
            }
        }
    }
    Ok(out)
}

/// Replaces the generated section of `doc` (or appends one).
pub fn splice(doc: &str, section: &str) -> String {
    let block = format!("{BEGIN}\n{section}\n{END}");
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{block}{}", &doc[..b], &doc[e + END.len()..])
        }
        _ if doc.trim().is_empty() => format!("# Performance\n\n{block}\n"),
        _ => format!("{}\n\n{block}\n", doc.trim_end()),
    }
}

/// The group a record belongs to: scenario, and a ramp's shape.
fn group(rec: &RunRecord) -> String {
    match rec.params.get("shape").and_then(|s| s.as_str()) {
        Some(shape) if rec.scenario == "ramp" => format!("ramp-{shape}"),
        _ => rec.scenario.clone(),
    }
}

fn records_of<'a>(records: &'a [RunRecord], grp: &str, target: TargetKind) -> Vec<&'a RunRecord> {
    records
        .iter()
        .filter(|r| group(r) == grp && r.target == target)
        .collect()
}

/// Median and range of some values.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn spread(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn fmt_spread(s: Option<Spread>) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n == 1 || s.min == s.max => fmt_num(s.median),
        Some(s) => format!(
            "{} [{}–{}]",
            fmt_num(s.median),
            fmt_num(s.min),
            fmt_num(s.max)
        ),
    }
}

/// [`fmt_spread`], saying how many of `total` repetitions gave a value when not all did.
fn fmt_spread_of(s: Option<Spread>, total: usize) -> String {
    match s {
        Some(sp) if sp.n < total => format!("{} ({} of {total} runs)", fmt_spread(s), sp.n),
        _ => fmt_spread(s),
    }
}

type Metric = fn(&RunRecord) -> Option<f64>;

/// Columns of each scenario's table.
fn columns(grp: &str) -> Vec<(&'static str, Metric)> {
    match grp {
        "fanout" | "rooms" | "ramp-fanout" | "ramp-rooms" => vec![
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
fn best_step(rec: &RunRecord) -> Option<&StepResult> {
    if rec.scenario == "ramp" {
        let target = rec.summary.p99_target_ms.unwrap_or(f64::INFINITY);
        rec.steps.iter().rev().find(|s| s.holds(target))
    } else {
        rec.steps.first()
    }
}

/// The step of `rec` run at `rate` msg/s, or else its step at the lowest rate above it (ramps
/// refine their limits to different rates; comparing at a higher load is the cautious side).
fn step_at_rate(rec: &RunRecord, rate: f64) -> Option<&StepResult> {
    rec.steps
        .iter()
        .filter_map(|s| s.pace.rate().map(|r| (r, s)))
        .filter(|(r, _)| *r >= rate * 0.99)
        .min_by(|(x, _), (y, _)| x.total_cmp(y))
        .map(|(_, s)| s)
}

fn title(grp: &str) -> &'static str {
    match grp {
        "ramp-fanout" => "Fanout ramp: one room, highest rate holding the p99 target with nothing lost",
        "ramp-rooms" => "Rooms ramp: R rooms × K clients, every client publishing; highest rate holding the p99 target",
        "fanout" => "Fanout at a fixed rate (same offered load for every server)",
        "rooms" => "Rooms at a fixed rate (same offered load for every server)",
        "idle" => "Idle connections: server memory per connection",
        "connect" => "Connection set-up (and Natter sign-ins)",
        "durable" => "Durable sends: acknowledged, persisted messages from many senders (Natter only)",
        _ => "Other",
    }
}

const GROUPS: [&str; 7] = [
    "ramp-fanout",
    "ramp-rooms",
    "fanout",
    "rooms",
    "idle",
    "durable",
    "connect",
];

fn markdown(records: &[RunRecord], args: &ReportArgs, plots: &[(&str, String)]) -> String {
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
    md.push_str(&targets_table(records));
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

/// A command line without the machine-specific directory of the binary.
fn scrub(command: &str) -> String {
    let mut parts = command.split(' ');
    let bin = parts.next().unwrap_or("");
    let bin = bin.rsplit('/').next().unwrap_or(bin);
    std::iter::once(bin)
        .chain(parts)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A figure over repetitions, and how many repetitions there were.
#[derive(Debug, Clone, Copy)]
struct Figure {
    spread: Option<Spread>,
    reps: usize,
}

/// Per-repetition ratio `f(natter, peer)` for one group.
fn ratios(
    records: &[RunRecord],
    grp: &str,
    peer: TargetKind,
    f: impl Fn(&RunRecord, &RunRecord) -> Option<f64>,
) -> Figure {
    let natter = records_of(records, grp, TargetKind::Natter);
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
fn natter_figure(
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

fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Natter's p99 (or CPU/delivery) at the offered rate where the peer's ramp peaked.
fn at_peer_best(n: &RunRecord, p: &RunRecord, f: fn(&StepResult) -> Option<f64>) -> Option<f64> {
    let peer_best = best_step(p)?;
    let natter_step = step_at_rate(n, peer_best.pace.rate()?)?;
    div(f(natter_step), f(peer_best))
}

fn targets_table(records: &[RunRecord]) -> String {
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
    let mut md = String::from(
        "### Targets of issue 7\n\n| figure | goal | measured: median [range] | met |\n|---|---|---|---|\n",
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

fn color(t: TargetKind) -> &'static str {
    match t {
        TargetKind::Natter => "#1f77b4",
        TargetKind::NatterSio => "#9467bd",
        TargetKind::SioPeer => "#ff7f0e",
        TargetKind::WsPeer => "#2ca02c",
    }
}

/// Ramp steps of every server: deliveries/s (x) against p99 ms (y), both log scales.
fn throughput_plot(records: &[RunRecord], shape: &str) -> Option<String> {
    let grp = format!("ramp-{shape}");
    let mut series: Vec<Series> = Vec::new();
    for t in TARGETS {
        for rec in records_of(records, &grp, t) {
            let pts: Vec<(f64, f64)> = rec
                .steps
                .iter()
                .filter(|s| s.deliveries_per_sec > 0.0 && s.latency.p99_ms > 0.0)
                .map(|s| (s.deliveries_per_sec, s.latency.p99_ms))
                .collect();
            if !pts.is_empty() {
                series.push((format!("{t} {}", rec.label), color(t), pts));
            }
        }
    }
    if series.is_empty() {
        return None;
    }
    let target = records
        .iter()
        .filter(|r| group(r) == grp)
        .find_map(|r| r.summary.p99_target_ms);
    Some(log_log_plot(
        &format!("{shape}: p99 latency vs deliveries/s (ramp steps)"),
        "deliveries per second",
        "p99 latency (ms)",
        &series,
        target,
    ))
}

/// One line of a plot: its name, colour and (x, y) points.
type Series = (String, &'static str, Vec<(f64, f64)>);

fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v >= lo * 0.9999 && v <= hi * 1.0001 {
                ticks.push(v);
            }
        }
        decade *= 10.0;
    }
    ticks
}

fn log_log_plot(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    hline: Option<f64>,
) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 460.0, 70.0, 190.0, 40.0, 50.0);
    let pts = series.iter().flat_map(|s| s.2.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if let Some(t) = hline {
        y0 = y0.min(t);
        y1 = y1.max(t);
    }
    let x0 = 10f64.powf(x0.log10().floor());
    let x1 = 10f64.powf(x1.log10().ceil());
    let y0 = 10f64.powf(y0.log10().floor());
    let y1 = 10f64.powf(y1.log10().ceil());
    let px = |x: f64| {
        left + (x.log10() - x0.log10()) / (x1.log10() - x0.log10()).max(1e-9) * (w - left - right)
    };
    let py = |y: f64| {
        h - bottom
            - (y.log10() - y0.log10()) / (y1.log10() - y0.log10()).max(1e-9) * (h - top - bottom)
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="{w}" height="{h}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"#,
        (w - right + left) / 2.0,
        xml(title)
    );
    for t in log_ticks(x0, x1) {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#ddd"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
            px(t),
            top,
            h - bottom,
            h - bottom + 16.0,
            fmt_num(t)
        );
    }
    for t in log_ticks(y0, y1) {
        let _ = writeln!(
            svg,
            r##"<line x1="{0}" y1="{1:.1}" x2="{2}" y2="{1:.1}" stroke="#ddd"/><text x="{3}" y="{4:.1}" text-anchor="end">{5}</text>"##,
            left,
            py(t),
            w - right,
            left - 6.0,
            py(t) + 4.0,
            fmt_num(t)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#444"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"##,
        w - left - right,
        h - top - bottom,
        (w - right + left) / 2.0,
        h - 12.0,
        xml(x_label),
        (h - bottom + top) / 2.0,
        (h - bottom + top) / 2.0,
        xml(y_label)
    );
    if let Some(t) = hline {
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#c00" stroke-dasharray="5,4"/><text x="{2}" y="{3:.1}" fill="#c00">p99 target {4} ms</text>"##,
            py(t),
            w - right,
            left + 4.0,
            py(t) - 4.0,
            fmt_num(t)
        );
    }
    for (i, (name, col, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{col}" stroke-width="1.5"/>"#,
            path.join(" ")
        );
        for &(x, y) in points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{col}"/>"#,
                px(x),
                py(y)
            );
        }
        let ly = top + 14.0 + i as f64 * 18.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{col}"/><text x="{}" y="{}">{}</text>"#,
            w - right + 12.0,
            ly - 10.0,
            w - right + 30.0,
            ly,
            xml(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Idle memory per connection (median over repetitions), one bar per server.
fn memory_plot(records: &[RunRecord]) -> Option<String> {
    let bars: Vec<(TargetKind, f64)> = TARGETS
        .into_iter()
        .filter_map(|t| {
            let recs = records_of(records, "idle", t);
            spread(recs.iter().filter_map(|r| r.summary.mem_per_conn_bytes))
                .map(|s| (t, s.median / 1024.0))
        })
        .collect();
    if bars.is_empty() {
        return None;
    }
    let (w, h, left, top, bottom) = (520.0, 320.0, 70.0, 40.0, 50.0);
    let max = bars.iter().map(|b| b.1).fold(1e-9, f64::max) * 1.15;
    let slot = (w - left - 20.0) / bars.len() as f64;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="{w}" height="{h}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">Server memory per idle connection (KiB, RSS growth)</text>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#444"/>
"##,
        w / 2.0,
        h - bottom,
        w - 20.0,
        h - bottom
    );
    for (i, (t, kib)) in bars.iter().enumerate() {
        let bh = kib / max * (h - top - bottom);
        let x = left + i as f64 * slot + slot * 0.2;
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text x="{:.1}" y="{}" text-anchor="middle">{t}</text>"#,
            h - bottom - bh,
            slot * 0.6,
            color(*t),
            x + slot * 0.3,
            h - bottom - bh - 5.0,
            fmt_num(*kib),
            x + slot * 0.3,
            h - bottom + 18.0
        );
    }
    svg.push_str("</svg>\n");
    Some(svg)
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Groups present in `records`, for callers that list what a results directory holds.
pub fn groups(records: &[RunRecord]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(group(r)).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_the_generated_section() {
        let doc = format!("# P\n\nintro\n\n{BEGIN}\nold\n{END}\n\nafter\n");
        let out = splice(&doc, "new");
        assert!(out.contains("intro") && out.contains("after") && out.contains("\nnew\n"));
        assert!(!out.contains("old"));
        assert!(splice("", "x").contains(BEGIN));
    }

    #[test]
    fn spread_and_ticks() {
        let s = spread([3.0, 1.0, 2.0]).expect("values");
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(
            log_ticks(1.0, 100.0),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        );
        assert_eq!(fmt_spread(spread([1500.0])), "1.5k");
    }
}
