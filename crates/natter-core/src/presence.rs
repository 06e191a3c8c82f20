//! The node's presence feed: the recent `presence` events, encoded once, in order. Sessions
//! that watch presence read it with a cursor of their own instead of each getting a copy in
//! its outbound queue, so a storm of sign-ins (N people coming online, each change for N
//! watchers) costs one entry per change here and a flag per watcher, not N² queue slots.
//! A session that falls more than `backlog` changes behind gets who is online now instead of
//! the changes it missed (`presence_reset`, see `Outbox::presence_reset`).

use crate::protocol::EncodedEvent;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Presence changes kept for sessions that have not read them yet.
pub const PRESENCE_BACKLOG: usize = crate::config::defaults::PRESENCE_BACKLOG;

pub struct PresenceFeed {
    log: Mutex<Log>,
    backlog: usize,
}

#[derive(Default)]
struct Log {
    /// The position of `events[0]`; positions count every change ever pushed.
    first: u64,
    events: VecDeque<Arc<EncodedEvent>>,
}

/// What a reader at some position finds.
#[derive(Debug)]
pub enum FeedRead {
    /// The change at that position.
    Next(Arc<EncodedEvent>),
    /// Nothing newer (the reader's `due` flag has been cleared under the feed's lock).
    CaughtUp,
    /// The change at that position is no longer kept: the reader fell too far behind.
    Missed,
}

impl PresenceFeed {
    pub fn new(backlog: usize) -> PresenceFeed {
        PresenceFeed {
            log: Mutex::default(),
            // The server refuses a backlog of 0 at start (`config::ranges`); this guard is for
            // a `CoreConfig` built in code.
            backlog: backlog.max(1),
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock leaves a plain deque behind; keep serving.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The position after the newest change: where a new reader starts.
    pub fn head(&self) -> u64 {
        let log = self.log();
        log.first + log.events.len() as u64
    }

    /// Appends a change, forgetting the oldest beyond the backlog.
    pub fn push(&self, event: Arc<EncodedEvent>) {
        let mut log = self.log();
        log.events.push_back(event);
        if log.events.len() > self.backlog {
            log.events.pop_front();
            log.first += 1;
        }
    }

    /// The change at `position`. When there is none yet, `due` is cleared while the lock is
    /// held: a writer pushes under the lock and sets `due` after, so a change is either seen
    /// here or flags the reader again.
    pub fn read(&self, position: u64, due: &AtomicBool) -> FeedRead {
        let log = self.log();
        if position < log.first {
            return FeedRead::Missed;
        }
        match log.events.get((position - log.first) as usize) {
            Some(event) => FeedRead::Next(event.clone()),
            None => {
                due.store(false, Ordering::Release);
                FeedRead::CaughtUp
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(n: u32) -> Arc<EncodedEvent> {
        EncodedEvent::new("presence", &serde_json::json!({ "n": n }))
    }

    fn data(read: FeedRead) -> String {
        match read {
            FeedRead::Next(e) => String::from_utf8_lossy(&e.data).into_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn readers_see_every_change_after_their_start_in_order() {
        let feed = PresenceFeed::new(10);
        feed.push(change(0));
        let start = feed.head();
        assert_eq!(start, 1);
        feed.push(change(1));
        feed.push(change(2));
        let due = AtomicBool::new(true);
        assert_eq!(data(feed.read(start, &due)), r#"{"n":1}"#);
        assert_eq!(data(feed.read(start + 1, &due)), r#"{"n":2}"#);
        assert!(
            due.load(Ordering::Acquire),
            "not cleared while there is more"
        );
        assert!(matches!(feed.read(start + 2, &due), FeedRead::CaughtUp));
        assert!(!due.load(Ordering::Acquire), "cleared when caught up");
    }

    #[test]
    fn a_reader_further_behind_than_the_backlog_is_told_it_missed_changes() {
        let feed = PresenceFeed::new(3);
        let due = AtomicBool::new(true);
        for n in 0..5 {
            feed.push(change(n));
        }
        assert!(matches!(feed.read(0, &due), FeedRead::Missed));
        assert!(matches!(feed.read(1, &due), FeedRead::Missed));
        assert_eq!(data(feed.read(2, &due)), r#"{"n":2}"#);
        assert_eq!(feed.head(), 5);
    }
}
