//! `natter-bench report`: reads result files (`--out` JSON), and rewrites the generated
//! section of docs/performance.md (tables with medians and spread over repetitions, the
//! issue's target ratios computed within each repetition) plus two SVG plots: throughput vs
//! p99 latency per server, and idle memory per connection.
//!
//! Modules, by job:
//! - `headline`: the headline table: each server's figures and Natter's ratios to the peers.
//! - `tables`: the generated Markdown section, one table per scenario group.
//! - `targets`: the target ratios, each computed within one repetition.
//! - `plots`: the SVG plots.
//! - `spread`: medians and ranges over repetitions, and how numbers print.
//!
//! This file reads the result files, groups them, and splices the section into the doc.

mod headline;
mod plots;
mod spread;
mod tables;
mod targets;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::ReportArgs;
use crate::error::BenchError;
use crate::record::RunRecord;
use crate::target::TargetKind;
use plots::{memory_plot, throughput_plot};
use tables::markdown;

pub const BEGIN: &str = "<!-- BEGIN GENERATED: natter-bench report; edit outside these markers -->";
pub const END: &str = "<!-- END GENERATED -->";

const TARGETS: [TargetKind; 5] = [
    TargetKind::Natter,
    TargetKind::NatterSio,
    TargetKind::SioPeer,
    TargetKind::WsPeer,
    TargetKind::Floor,
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

/// The group a record belongs to: scenario, and a ramp's shape; a run over several nodes
/// (`params.nodes`) is `cluster-<scenario>`, kept out of the one-server tables and ratios.
fn group(rec: &RunRecord) -> String {
    if rec
        .params
        .get("nodes")
        .and_then(|n| n.as_u64())
        .unwrap_or(1)
        > 1
    {
        return format!("cluster-{}", rec.scenario);
    }
    let one_publisher = rec.params.get("publishers").and_then(|p| p.as_u64()) == Some(1);
    match rec.params.get("shape").and_then(|s| s.as_str()) {
        // Issue 22 asks for fanout with one publisher as well as with ten.
        Some("fanout") if rec.scenario == "ramp" && one_publisher => "ramp-fanout1".into(),
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

const GROUPS: [&str; 8] = [
    "ramp-fanout",
    "ramp-fanout1",
    "ramp-rooms",
    "fanout",
    "rooms",
    "idle",
    "durable",
    "connect",
];

/// Groups present in `records`, for callers that list what a results directory holds.
pub fn groups(records: &[RunRecord]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(group(r)).or_insert(0) += 1;
    }
    m
}
