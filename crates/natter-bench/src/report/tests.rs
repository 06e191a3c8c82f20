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
