//! Several nodes of one Natter cluster: which node each connection of a layout opens on
//! (round-robin over the layout, so every room has members on every node and a sender is
//! often on another node than most of its room), and the delivery latency split by whether
//! the receiver is on the sender's node or not, whose difference is what crossing nodes
//! (through the broker) adds.

use serde::{Deserialize, Serialize};

use crate::stats::{Latency, LatencySummary};

/// Index of a node in the `--url` list (0 = the first, where accounts and rooms are made).
pub type NodeIndex = u16;

/// Node of the connection at `member` (its index in the layout) over `nodes` nodes.
///
/// Round-robin over the whole layout: a room of K consecutive members gets them on K nodes in
/// turn (every node, when K >= nodes), and the next room starts where this one stopped, so
/// the first members of each room (the publishers of a fanout) are spread too.
pub fn node_of(member: usize, nodes: usize) -> NodeIndex {
    (member % nodes.max(1)) as NodeIndex
}

/// Delivery latencies of one receiving connection, split by where the sender was.
#[derive(Debug, Clone, Default)]
pub struct SplitLatency {
    /// Sender and receiver connected to the same node.
    pub same: Latency,
    /// Sender on another node: the message crossed the broker.
    pub cross: Latency,
}

impl SplitLatency {
    /// Records one delivery at `receiver` from the sender whose node is `sender` (`None`:
    /// unknown sender, not recorded; the delivery checks count it as misrouted).
    pub fn record_ns(&mut self, receiver: NodeIndex, sender: Option<NodeIndex>, ns: u64) {
        match sender {
            Some(s) if s == receiver => self.same.record_ns(ns),
            Some(_) => self.cross.record_ns(ns),
            None => {}
        }
    }

    pub fn merge(&mut self, other: &SplitLatency) {
        self.same.merge(&other.same);
        self.cross.merge(&other.cross);
    }

    pub fn reset(&mut self) {
        self.same.reset();
        self.cross.reset();
    }

    /// The two summaries and the difference, once both sides have deliveries.
    pub fn summary(&self) -> Option<NodeSplit> {
        if self.same.count() == 0 || self.cross.count() == 0 {
            return None;
        }
        Some(NodeSplit::new(self.same.summary(), self.cross.summary()))
    }
}

/// Delivery latency by the sender's node, and what crossing nodes adds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NodeSplit {
    pub same_node: LatencySummary,
    pub cross_node: LatencySummary,
    /// Cross-node p50 minus same-node p50, milliseconds (may be negative in noise).
    pub cross_added_p50_ms: f64,
    /// Cross-node p99 minus same-node p99, milliseconds.
    pub cross_added_p99_ms: f64,
}

impl NodeSplit {
    pub fn new(same_node: LatencySummary, cross_node: LatencySummary) -> Self {
        NodeSplit {
            same_node,
            cross_node,
            cross_added_p50_ms: cross_node.p50_ms - same_node.p50_ms,
            cross_added_p99_ms: cross_node.p99_ms - same_node.p99_ms,
        }
    }

    /// Share of the deliveries that crossed nodes.
    pub fn cross_share(&self) -> f64 {
        let all = self.same_node.count + self.cross_node.count;
        self.cross_node.count as f64 / all.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_go_round_robin_and_every_room_reaches_every_node() {
        let nodes = 3;
        let per_room = 4;
        for room in 0..5 {
            let mut seen = [false; 3];
            for i in 0..per_room {
                seen[node_of(room * per_room + i, nodes) as usize] = true;
            }
            assert!(seen.iter().all(|s| *s), "room {room}: {seen:?}");
        }
        assert_eq!(
            (0..6).map(|m| node_of(m, 3)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2]
        );
        assert_eq!(node_of(7, 1), 0);
        assert_eq!(
            node_of(7, 0),
            0,
            "no nodes given: everything on the one server"
        );
    }

    #[test]
    fn deliveries_split_by_the_senders_node() {
        let mut split = SplitLatency::default();
        for _ in 0..100 {
            split.record_ns(1, Some(1), 1_000_000); // same node: 1 ms
            split.record_ns(1, Some(0), 3_000_000); // from node 0: 3 ms
            split.record_ns(1, Some(2), 3_000_000); // from node 2: 3 ms
        }
        split.record_ns(1, None, 50_000_000); // unknown sender: not timed here
        let s = split.summary().expect("both sides");
        assert_eq!(s.same_node.count, 100);
        assert_eq!(s.cross_node.count, 200);
        assert!((s.same_node.p50_ms - 1.0).abs() < 0.02, "{s:?}");
        assert!((s.cross_added_p50_ms - 2.0).abs() < 0.05, "{s:?}");
        assert!((s.cross_added_p99_ms - 2.0).abs() < 0.05, "{s:?}");
        assert!((s.cross_share() - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn merged_and_reset_splits() {
        let mut a = SplitLatency::default();
        let mut b = SplitLatency::default();
        a.record_ns(0, Some(0), 2_000_000);
        assert_eq!(a.summary(), None, "no cross-node delivery yet");
        b.record_ns(0, Some(1), 5_000_000);
        a.merge(&b);
        let s = a.summary().expect("both sides after merge");
        assert!((s.cross_added_p99_ms - 3.0).abs() < 0.05, "{s:?}");
        a.reset();
        assert_eq!(a.summary(), None);
    }
}
