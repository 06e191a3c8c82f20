//! One publisher's part of a step: sends on schedule (rate mode) or as the window allows,
//! counting how far behind schedule they ran.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ws::Outgoing;
use tokio::sync::{mpsc, Semaphore};

use crate::clock;
use crate::payload::{self, Stamp};
use crate::proto::{self, Request};
use crate::target::RoomRef;

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PublishOutcome {
    pub(super) sent: u64,
    pub(super) max_lag_ns: u64,
    /// Sends more than [`LATE_NS`] behind schedule.
    pub(super) late_sends: u64,
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
}

impl PublishJob {
    pub(super) async fn run(self) -> PublishOutcome {
        let started = Instant::now();
        let deadline = started + self.duration;
        let mut out = PublishOutcome::default();
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
        out
    }

    /// Publishes message number `first_counter + i`; false when the connection is gone.
    async fn send(&self, i: u64) -> bool {
        let counter = self.first_counter + i;
        let body = payload::encode(
            Stamp {
                sent_ns: clock::now_ns(),
                sender: self.sender,
                counter,
            },
            self.body_bytes,
        );
        let client_id = format!("c{}-{counter}", self.sender);
        let request = Request::Send {
            room: &self.room,
            body: &body,
            client_id: &client_id,
        };
        match proto::encode(self.kind, request, self.first_ref + i) {
            Some(frame) => self.writer.send(Outgoing::Text(frame)).await.is_ok(),
            None => false,
        }
    }
}
