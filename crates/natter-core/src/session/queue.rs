//! A session's bounded outbound queue (the hub pushes, the outbox takes): a `VecDeque`
//! under a lock that gives its memory back whenever it drains.

use super::Outbound;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A session's outbound queue: a plain `VecDeque` under a lock, bounded by `capacity`.
/// Unlike a channel it holds no memory while empty (an idle connection costs a few words):
/// it gives back its allocation whenever it drains.
pub(super) struct OutboundQueue {
    items: Mutex<VecDeque<Outbound>>,
    /// (A u32 beside the flag below: every connection has one of these.)
    capacity: u32,
    /// Set when the outbox is dropped: nothing is queued any more.
    receiver_gone: AtomicBool,
}

pub(super) enum Pushed {
    Queued,
    Full,
    Gone,
}

impl OutboundQueue {
    pub(super) fn new(capacity: usize) -> OutboundQueue {
        OutboundQueue {
            items: Mutex::new(VecDeque::new()),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX).max(1),
            receiver_gone: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Outbound>> {
        // A panic while holding the lock leaves a plain queue behind; keep serving.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[inline]
    pub(super) fn push(&self, item: Outbound) -> Pushed {
        if self.receiver_gone.load(Ordering::Acquire) {
            return Pushed::Gone;
        }
        let mut items = self.lock();
        if items.len() >= self.capacity as usize {
            return Pushed::Full;
        }
        items.push_back(item);
        Pushed::Queued
    }

    #[inline]
    pub(super) fn pop(&self) -> Option<Outbound> {
        let mut items = self.lock();
        let item = items.pop_front();
        if items.is_empty() {
            // Drained: give the memory back (an idle connection then holds none; the next
            // event allocates again, which costs little next to writing it).
            *items = VecDeque::new();
        }
        item
    }

    pub(super) fn receiver_dropped(&self) {
        self.receiver_gone.store(true, Ordering::Release);
        let drained = std::mem::take(&mut *self.lock());
        drop(drained);
    }
}
