//! A set of live connections laid out over rooms (who is where, who publishes), and one
//! measured *step* of traffic over it: publish at a rate or with a window of unacknowledged
//! sends, drain, then count what arrived against what was expected.
//!
//! Expected deliveries of a message = every connection in its room (the sender's own
//! included, as all three servers echo to the sender); a message the server refused (an error
//! reply) is expected nowhere.
//!
//! Modules, by job:
//! - `plan`: the plain data: layouts, build options, step specs and results.
//! - `setup`: accounts, rooms and connections (`Workload::build`, or `prepare` then
//!   `Prepared::connect`).
//! - `step`: one measured step: publish, drain, and the figures it yields.
//! - `publish`: one publisher's sends within a step, at a rate or within a window.
//!
//! This file holds the workload itself and what outlives a step (its connections).

mod plan;
mod publish;
mod setup;
mod step;

pub use plan::{BuildOptions, Layout, Member, Pace, SetupReport, StepResult, StepSpec};
pub use setup::Prepared;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use crate::conn::{LiveConn, Shared};
use crate::target::{Account, RoomRef, Target};

struct Publisher {
    conn: usize,
    sender: u32,
    room: RoomRef,
    /// Messages published so far (the next counter).
    counter: u64,
    window: Option<Arc<Semaphore>>,
    /// Its edits and reactions so far (`--change-percent`).
    changes: publish::ChangeState,
}

/// Live connections over rooms, ready for steps.
pub struct Workload {
    target: Target,
    pub rooms: Vec<RoomRef>,
    conns: Vec<LiveConn>,
    publishers: Vec<Publisher>,
    /// Live connections per room key.
    room_sizes: Vec<u64>,
    shared: Arc<Shared>,
    body_bytes: usize,
    pub setup: SetupReport,
    /// The accounts used (Natter), the setup account first.
    pub accounts: Vec<Account>,
}

impl Workload {
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Connections that have ended so far.
    pub fn closed(&self) -> u64 {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Closes every connection (bounded wait).
    pub async fn close(self) {
        stream::iter(self.conns)
            .for_each_concurrent(256, |c| c.close(Duration::from_secs(2)))
            .await;
    }
}
