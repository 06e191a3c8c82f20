//! One publisher's part of a step: sends on schedule (rate mode) or as the window allows,
//! counting how far behind schedule they ran.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::conn::RecvState;
use crate::ws::Outgoing;
use tokio::sync::{mpsc, Semaphore};

use crate::clock;
use crate::payload::{self, Stamp};
use crate::proto::{self, Request};
use crate::target::RoomRef;

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PublishOutcome {
    /// Operations sent: messages and changes.
    pub(super) sent: u64,
    /// Of `sent`: edits and reactions.
    pub(super) changes: u64,
    /// Where the publisher's changes stand at the end (carried into its next step).
    pub(super) change_state: ChangeState,
    pub(super) max_lag_ns: u64,
    /// Sends more than [`LATE_NS`] behind schedule.
    pub(super) late_sends: u64,
}

/// A publisher's place in its cycle of changes: edits and reactions alternate; a reaction
/// is added to its newest message and removed by its next reaction, so every `reaction.add`
/// and `reaction.remove` changes something (each yields one stream entry) and no message
/// collects more than one reaction from it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ChangeState {
    /// Changes made so far.
    pub(crate) made: u64,
    /// The seq of the message its reaction is on, if one is.
    pub(crate) reacted: Option<u64>,
    /// Changes due but not made yet (no reply to a send had come back).
    pub(crate) owed: u64,
}

/// The emoji the bench reacts with.
const EMOJI: &str = "\u{1F44D}";

/// Whether operation number `counter` of a publisher is a change, for `percent` changes:
/// exactly `percent` of every 100 consecutive operations, spread evenly.
pub(crate) fn is_change(counter: u64, percent: u32) -> bool {
    let p = u64::from(percent.min(100));
    (counter + 1) * p / 100 > counter * p / 100
}

/// A send this far behind its schedule counts as late.
pub(super) const LATE_NS: u64 = 10_000_000;

/// One publisher's part of a step.
pub(super) struct PublishJob {
    pub(super) kind: crate::target::TargetKind,
    pub(super) writer: mpsc::Sender<Outgoing>,
    pub(super) room: RoomRef,
    pub(super) sender: u32,
    pub(super) first_counter: u64,
    pub(super) first_ref: u64,
    /// Messages per second for this publisher (rate mode).
    pub(super) rate: Option<f64>,
    pub(super) window: Option<Arc<Semaphore>>,
    pub(super) duration: Duration,
    pub(super) limit: u64,
    pub(super) body_bytes: usize,
    /// Percent of operations that are edits or reactions instead of sends (Natter native).
    pub(super) change_percent: u32,
    pub(super) change_state: ChangeState,
    /// The publisher's connection state: the seqs of its recent messages.
    pub(super) state: Arc<Mutex<RecvState>>,
}

impl PublishJob {
    pub(super) async fn run(mut self) -> PublishOutcome {
        let started = Instant::now();
        let deadline = started + self.duration;
        let mut out = PublishOutcome::default();
        let changes_before = self.change_state.made;
        match self.rate {
            Some(rate) if rate > 0.0 => {
                // Spread publishers' phases over one interval so they do not fire together.
                let phase = (f64::from(self.sender) * 0.618_033_988_75).fract() / rate;
                let t0 = started + Duration::from_secs_f64(phase);
                while out.sent < self.limit {
                    let due_at = t0 + Duration::from_secs_f64(out.sent as f64 / rate);
                    if due_at >= deadline {
                        break;
                    }
                    let now = Instant::now();
                    if due_at > now {
                        tokio::time::sleep_until(due_at.into()).await;
                    } else {
                        let lag = u64::try_from((now - due_at).as_nanos()).unwrap_or(u64::MAX);
                        out.max_lag_ns = out.max_lag_ns.max(lag);
                        out.late_sends += u64::from(lag > LATE_NS);
                    }
                    if !self.send(out.sent).await {
                        break;
                    }
                    out.sent += 1;
                }
            }
            Some(_) => {}
            None => {
                let Some(window) = self.window.clone() else {
                    return out;
                };
                while out.sent < self.limit && Instant::now() < deadline {
                    match tokio::time::timeout_at(deadline.into(), window.acquire()).await {
                        Ok(Ok(permit)) => permit.forget(),
                        _ => break,
                    }
                    if !self.send(out.sent).await {
                        break;
                    }
                    out.sent += 1;
                }
            }
        }
        out.changes = self.change_state.made - changes_before;
        out.change_state = self.change_state;
        out
    }

    /// The seqs this publisher's recent messages got (oldest first).
    fn recent_seqs(&self) -> Vec<u64> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.recent_seqs.iter().copied().collect()
    }

    /// Publishes operation number `first_counter + i` (a message, or a change of a recent
    /// one); false when the connection is gone.
    async fn send(&mut self, i: u64) -> bool {
        let counter = self.first_counter + i;
        let stamp = Stamp {
            sent_ns: clock::now_ns(),
            sender: self.sender,
            counter,
        };
        let body = payload::encode(stamp, self.body_bytes);
        let mut request = None;
        // A change's client_id is its stamp: a reaction has no body, and its entry carries
        // the client_id, so the receivers time and check it like a message.
        let change_id;
        // Publishers' changes fall at different operations (a phase per sender), so that a
        // short step with few operations per publisher still has its share of changes.
        let phase = u64::from(self.sender).wrapping_mul(7919) % 100;
        if self.change_percent > 0 && is_change(counter + phase, self.change_percent) {
            self.change_state.owed += 1;
        }
        if self.change_state.owed > 0 {
            let recent = self.recent_seqs();
            change_id = payload::encode(stamp, 0);
            // Before the reply to its first send there is nothing to change: the change is
            // owed, and made at the next operation that can.
            if let Some(&newest) = recent.last() {
                let state = &mut self.change_state;
                request = Some(if state.made.is_multiple_of(2) {
                    // Edits go round the recent messages.
                    let target = recent[(state.made / 2) as usize % recent.len()];
                    Request::Edit {
                        room: &self.room,
                        seq: target,
                        body: &body,
                        client_id: &change_id,
                    }
                } else {
                    let (seq, add) = match state.reacted.take() {
                        Some(seq) => (seq, false),
                        None => {
                            state.reacted = Some(newest);
                            (newest, true)
                        }
                    };
                    Request::React {
                        room: &self.room,
                        seq,
                        emoji: EMOJI,
                        add,
                        client_id: &change_id,
                    }
                });
                state.made += 1;
                state.owed -= 1;
            }
        }
        let client_id = format!("c{}-{counter}", self.sender);
        let request = request.unwrap_or(Request::Send {
            room: &self.room,
            body: &body,
            client_id: &client_id,
        });
        match proto::encode(self.kind, request, self.first_ref + i) {
            Some(frame) => self.writer.send(Outgoing::Text(frame)).await.is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_change;

    #[test]
    fn change_share_is_exact_and_spread() {
        for percent in [0, 1, 10, 33, 50, 100] {
            let n = (0..1000).filter(|&c| is_change(c, percent)).count();
            assert_eq!(n, 10 * percent as usize, "{percent}%");
        }
        let at: Vec<u64> = (0..30).filter(|&c| is_change(c, 10)).collect();
        assert_eq!(at, vec![9, 19, 29]);
    }
}
