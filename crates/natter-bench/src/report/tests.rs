//! Unit tests of the report: splicing the section, spreads and plot ticks.

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
