//! Unit tests of the report: splicing the section, spreads, plot ticks and grouping.

use super::plots::log_ticks;
use super::spread::{fmt_spread, spread};
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

#[test]
fn runs_over_several_nodes_are_a_group_of_their_own() {
    let text = r#"{"scenario":"rooms","target":"natter","label":"","command":"","command_note":null,
        "started_unix_s":0,"bench_cpus":1,"params":{"rooms":6,"nodes":3},
        "setup":{"accounts":0,"accounts_s":0,"connections":0,"connections_failed":0,
        "connection_errors":[],"connect_s":0,"connect_latency":{"count":0,"mean_ms":0,
        "p50_ms":0,"p90_ms":0,"p99_ms":0,"p999_ms":0,"max_ms":0}},
        "steps":[],"summary":{"bench_limited":false},"verdict":{"ok":true,"problems":[]}}"#;
    let mut rec: RunRecord = serde_json::from_str(text).expect("a record");
    assert_eq!(
        group(&rec),
        "cluster-rooms",
        "kept out of the one-server rooms table"
    );
    rec.params = serde_json::json!({"rooms": 6});
    assert_eq!(group(&rec), "rooms");
}

fn rooms_record(target: &str, label: &str, ns_per_delivery: f64) -> RunRecord {
    let text = format!(
        r#"{{"scenario":"rooms","target":"{target}","label":"{label}","command":"","command_note":null,
        "started_unix_s":0,"bench_cpus":1,"params":{{"rooms":100}},
        "setup":{{"accounts":0,"accounts_s":0,"connections":0,"connections_failed":0,
        "connection_errors":[],"connect_s":0,"connect_latency":{{"count":0,"mean_ms":0,
        "p50_ms":0,"p90_ms":0,"p99_ms":0,"p999_ms":0,"max_ms":0}}}},
        "steps":[],"summary":{{"bench_limited":false,"server_cpu_ns_per_delivery":{ns_per_delivery}}},
        "verdict":{{"ok":true,"problems":[]}}}}"#
    );
    serde_json::from_str(&text).expect("a record")
}

#[test]
fn headline_ratios_are_taken_within_each_repetition() {
    // rep1: natter 30k / floor 10k = 3.0; rep2: 20k / 20k = 1.0. Pooled medians would give
    // 25k / 15k = 1.67; per repetition, the median ratio is 2.0 over [1.0-3.0].
    let records = vec![
        rooms_record("natter", "rep1", 30_000.0),
        rooms_record("floor", "rep1", 10_000.0),
        rooms_record("natter", "rep2", 20_000.0),
        rooms_record("floor", "rep2", 20_000.0),
    ];
    let md = headline::headline_table(&records);
    let row = md
        .lines()
        .find(|l| l.starts_with("| rooms at a fixed rate"))
        .expect("the rooms row");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // figure, natter, natter-sio, sio-peer, ws-peer, floor, then the four ratios.
    assert_eq!(cells[2], "25k [20k–30k]", "{row}");
    assert_eq!(cells[3], "–", "no natter-sio runs: {row}");
    assert_eq!(cells[6], "15k [10k–20k]", "{row}");
    assert_eq!(cells[9], "2.00 [1.00–3.00]", "natter / floor: {row}");
    assert_eq!(cells[7], "–", "no sio-peer runs: {row}");
    assert!(
        !md.contains("| fanout at a fixed rate"),
        "rows with no runs are left out"
    );
}
