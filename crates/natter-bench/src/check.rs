//! Delivery checks for one receiving connection: duplicates, out-of-order, misrouted messages,
//! per-room `seq` gaps and regressions (Natter only), and the distinct count that loss is
//! computed from (expected - distinct received).
//!
//! Nothing here ignores a frame: a body that cannot be decoded is counted as `unparsable`.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::payload::Stamp;

/// Counters that only grow; a step's figures are the difference of two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckCounts {
    /// Every delivery seen, duplicates included.
    pub received: u64,
    /// Deliveries of a (sender, counter) not seen before on this connection.
    pub distinct: u64,
    /// Deliveries of a (sender, counter) already seen on this connection.
    pub duplicates: u64,
    /// Deliveries that arrived after a later message of the same sender.
    pub out_of_order: u64,
    /// Deliveries for a room this connection is not in, or from a sender not publishing there.
    pub misrouted: u64,
    /// Missing `seq` numbers between two consecutive deliveries in a room (Natter only).
    pub seq_gaps: u64,
    /// Deliveries whose `seq` was not above the previous one in that room (Natter only).
    pub seq_regressions: u64,
    /// Message frames whose body was not a bench stamp.
    pub unparsable: u64,
    /// Of `received`: change entries (edits, reactions, deletes), not new messages. They are
    /// checked like messages: each has its room `seq` and the sender's next counter.
    #[serde(default)]
    pub changes: u64,
}

impl CheckCounts {
    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &CheckCounts) -> CheckCounts {
        CheckCounts {
            received: self.received - earlier.received,
            distinct: self.distinct - earlier.distinct,
            duplicates: self.duplicates - earlier.duplicates,
            out_of_order: self.out_of_order - earlier.out_of_order,
            misrouted: self.misrouted - earlier.misrouted,
            seq_gaps: self.seq_gaps - earlier.seq_gaps,
            seq_regressions: self.seq_regressions - earlier.seq_regressions,
            unparsable: self.unparsable - earlier.unparsable,
            changes: self.changes - earlier.changes,
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &CheckCounts) {
        self.received += other.received;
        self.distinct += other.distinct;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        self.misrouted += other.misrouted;
        self.seq_gaps += other.seq_gaps;
        self.seq_regressions += other.seq_regressions;
        self.unparsable += other.unparsable;
        self.changes += other.changes;
    }

    /// Anything that is wrong whatever the load: duplicates, reordering, misrouting, seq faults.
    pub fn integrity_faults(&self) -> u64 {
        self.duplicates
            + self.out_of_order
            + self.misrouted
            + self.seq_gaps
            + self.seq_regressions
            + self.unparsable
    }
}

/// What one receiver has seen from one sender.
#[derive(Debug, Default)]
struct SenderTrack {
    /// Every counter below this one has been received.
    next: u64,
    /// Counters above `next` received early (there is a hole before them).
    ahead: BTreeSet<u64>,
    /// Highest counter received so far, if any.
    max_seen: Option<u64>,
}

/// Which room each sender publishes into: `sender index -> room key`.
pub type SenderRooms = std::sync::Arc<Vec<u32>>;

/// The checks for one receiving connection.
#[derive(Debug)]
pub struct ReceiverCheck {
    /// Room keys this connection is a member of.
    rooms: Vec<u32>,
    sender_rooms: SenderRooms,
    senders: HashMap<u32, SenderTrack>,
    /// room key -> last `seq` delivered in it.
    last_seq: HashMap<u32, u64>,
    counts: CheckCounts,
}

impl ReceiverCheck {
    pub fn new(rooms: Vec<u32>, sender_rooms: SenderRooms) -> Self {
        ReceiverCheck {
            rooms,
            sender_rooms,
            senders: HashMap::new(),
            last_seq: HashMap::new(),
            counts: CheckCounts::default(),
        }
    }

    pub fn counts(&self) -> CheckCounts {
        self.counts
    }

    /// A message frame whose body did not decode.
    pub fn on_unparsable(&mut self) {
        self.counts.received += 1;
        self.counts.unparsable += 1;
    }

    /// Records a change entry (edit, reaction, delete) the bench made: an entry of the room's
    /// stream like a message, stamped with its sender's next counter, so it takes part in the
    /// same seq and per-sender checks.
    pub fn on_change(&mut self, room: u32, seq: Option<u64>, stamp: Stamp) -> bool {
        self.counts.changes += 1;
        self.on_delivery(room, seq, stamp)
    }

    /// Records one delivery in room `room` (a room key), with the server's `seq` when it has one.
    /// Returns whether it was the first delivery of that (sender, counter) here.
    pub fn on_delivery(&mut self, room: u32, seq: Option<u64>, stamp: Stamp) -> bool {
        self.counts.received += 1;
        let sender_room = self.sender_rooms.get(stamp.sender as usize).copied();
        if !self.rooms.contains(&room) || sender_room != Some(room) {
            self.counts.misrouted += 1;
        }
        if let Some(seq) = seq {
            self.check_seq(room, seq);
        }
        let track = self.senders.entry(stamp.sender).or_default();
        let n = stamp.counter;
        if n < track.next || track.ahead.contains(&n) {
            self.counts.duplicates += 1;
            return false;
        }
        self.counts.distinct += 1;
        if track.max_seen.is_some_and(|max| n < max) {
            self.counts.out_of_order += 1;
        }
        track.max_seen = Some(track.max_seen.map_or(n, |max| max.max(n)));
        if n == track.next {
            track.next += 1;
            while track.ahead.remove(&track.next) {
                track.next += 1;
            }
        } else {
            track.ahead.insert(n);
        }
        true
    }

    fn check_seq(&mut self, room: u32, seq: u64) {
        match self.last_seq.get(&room).copied() {
            Some(last) if seq <= last => self.counts.seq_regressions += 1,
            Some(last) => {
                self.counts.seq_gaps += seq - last - 1;
                self.last_seq.insert(room, seq);
            }
            None => {
                self.last_seq.insert(room, seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn stamp(sender: u32, counter: u64) -> Stamp {
        Stamp {
            sent_ns: 0,
            sender,
            counter,
        }
    }

    fn check() -> ReceiverCheck {
        ReceiverCheck::new(vec![0], Arc::new(vec![0, 0, 1]))
    }

    #[test]
    fn in_order_deliveries_are_clean() {
        let mut c = check();
        for n in 0..10 {
            c.on_delivery(0, Some(2 * n + 1), stamp(0, n));
            c.on_delivery(0, Some(2 * n + 2), stamp(1, n));
        }
        let counts = c.counts();
        assert_eq!(counts.distinct, 20);
        assert_eq!(counts.integrity_faults(), 0, "{counts:?}");
    }

    #[test]
    fn duplicates_reorders_and_holes_are_counted() {
        let mut c = check();
        c.on_delivery(0, None, stamp(0, 0));
        c.on_delivery(0, None, stamp(0, 0)); // duplicate
        c.on_delivery(0, None, stamp(0, 2)); // hole at 1
        c.on_delivery(0, None, stamp(0, 1)); // late: out of order
        c.on_delivery(0, None, stamp(0, 2)); // duplicate of an early one
        c.on_delivery(0, None, stamp(0, 5)); // 3 and 4 never come: lost (expected - distinct)
        let counts = c.counts();
        assert_eq!(counts.received, 6);
        assert_eq!(counts.distinct, 4);
        assert_eq!(counts.duplicates, 2);
        assert_eq!(counts.out_of_order, 1);
    }

    #[test]
    fn seq_gaps_and_regressions_are_counted() {
        let mut c = check();
        c.on_delivery(0, Some(10), stamp(0, 0));
        c.on_delivery(0, Some(13), stamp(0, 1)); // 11, 12 missing
        c.on_delivery(0, Some(13), stamp(0, 2)); // not increasing
        let counts = c.counts();
        assert_eq!(counts.seq_gaps, 2);
        assert_eq!(counts.seq_regressions, 1);
    }

    #[test]
    fn change_entries_fill_the_seq_sequence() {
        let mut c = check();
        c.on_delivery(0, Some(1), stamp(0, 0));
        c.on_change(0, Some(2), stamp(0, 1)); // an edit of seq 1
        c.on_delivery(0, Some(3), stamp(1, 0));
        c.on_change(0, Some(4), stamp(1, 1)); // a reaction
        c.on_delivery(0, Some(5), stamp(0, 2));
        let counts = c.counts();
        assert_eq!(counts.changes, 2);
        assert_eq!(counts.distinct, 5);
        assert_eq!(counts.integrity_faults(), 0, "{counts:?}");
        // Had the change entries been ignored, the seq check would see gaps at 2 and 4.
        let mut ignoring = check();
        for (seq, s, n) in [(1, 0, 0), (3, 1, 0), (5, 0, 2)] {
            ignoring.on_delivery(0, Some(seq), stamp(s, n));
        }
        assert_eq!(ignoring.counts().seq_gaps, 2);
    }

    #[test]
    fn misrouted_deliveries_are_counted() {
        let mut c = check();
        c.on_delivery(1, None, stamp(2, 0)); // a room this receiver is not in
        c.on_delivery(0, None, stamp(2, 1)); // sender 2 publishes into room 1, not 0
        c.on_delivery(0, None, stamp(9, 0)); // unknown sender
        assert_eq!(c.counts().misrouted, 3);
    }
}
