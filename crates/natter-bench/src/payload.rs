//! The body every published message carries: `t=<send ns>;s=<sender>;n=<counter>;` then padding.
//!
//! The receiver decodes it to measure latency (send -> receive) and to check delivery per
//! (sender, counter): lost, duplicated and out-of-order messages are all detected from it.

use std::fmt::Write as _;

/// What a published body says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Send time, [`crate::clock::now_ns`] of the sending process.
    pub sent_ns: u64,
    /// Global index of the sending connection in this run.
    pub sender: u32,
    /// The sender's message counter, 0, 1, 2, ... in send order.
    pub counter: u64,
}

/// Encodes `stamp` and pads the body with `x` up to `body_bytes` (never shorter than the stamp).
pub fn encode(stamp: Stamp, body_bytes: usize) -> String {
    let mut body = String::with_capacity(body_bytes.max(48));
    // Writing into a String cannot fail.
    let _ = write!(
        body,
        "t={};s={};n={};",
        stamp.sent_ns, stamp.sender, stamp.counter
    );
    while body.len() < body_bytes {
        body.push('x');
    }
    body
}

/// Decodes a body written by [`encode`]; `None` for anything else.
pub fn decode(body: &str) -> Option<Stamp> {
    let rest = body.strip_prefix("t=")?;
    let (t, rest) = rest.split_once(';')?;
    let rest = rest.strip_prefix("s=")?;
    let (s, rest) = rest.split_once(';')?;
    let rest = rest.strip_prefix("n=")?;
    let (n, _) = rest.split_once(';')?;
    Some(Stamp {
        sent_ns: t.parse().ok()?,
        sender: s.parse().ok()?,
        counter: n.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_padding() {
        let stamp = Stamp {
            sent_ns: 123_456_789,
            sender: 42,
            counter: 7,
        };
        let body = encode(stamp, 100);
        assert_eq!(body.len(), 100);
        assert_eq!(decode(&body), Some(stamp));
        assert_eq!(decode(&encode(stamp, 0)), Some(stamp));
    }

    #[test]
    fn foreign_bodies_are_rejected() {
        assert_eq!(decode("hello"), None);
        assert_eq!(decode("t=1;s=2;"), None);
        assert_eq!(decode("t=x;s=2;n=3;"), None);
    }
}
