//! The SVG plots of the report: throughput against p99 latency per server (log-log), and
//! idle memory per connection.

use std::fmt::Write as _;

use super::spread::{fmt_num, spread};
use super::{group, records_of, TARGETS};
use crate::record::RunRecord;
use crate::target::TargetKind;

pub(super) fn color(t: TargetKind) -> &'static str {
    match t {
        TargetKind::Natter => "#1f77b4",
        TargetKind::NatterSio => "#9467bd",
        TargetKind::SioPeer => "#ff7f0e",
        TargetKind::WsPeer => "#2ca02c",
        TargetKind::Floor => "#7f7f7f",
    }
}

/// Ramp steps of every server: deliveries/s (x) against p99 ms (y), both log scales.
pub(super) fn throughput_plot(records: &[RunRecord], shape: &str) -> Option<String> {
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
pub(super) type Series = (String, &'static str, Vec<(f64, f64)>);

pub(super) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
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

pub(super) fn log_log_plot(
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
pub(super) fn memory_plot(records: &[RunRecord]) -> Option<String> {
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

pub(super) fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
