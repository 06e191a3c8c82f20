//! One authenticated connection as the core sees it: its bounded outbound queue
//! (`SessionHandle` is the sending side, held by the hub; `Outbox` the receiving side, pumped
//! by the transport), the rooms it is in, and per-room order keeping.
//!
//! Slow-consumer policy: the queue holds `outbound_queue` frames. When a push finds it full,
//! the session is closed with 4008 (the transport closes the socket); nobody waits for it and
//! nothing is dropped silently. The client resumes and gets what it missed from the store.
//! Presence changes are not queued but read from the node's feed; a session that falls
//! behind what the feed keeps gets who is online now instead (`presence_reset`).
//!
//! Order keeping: for every room the outbox remembers the last seq it handed out (its
//! watermark). A message at or below it is a duplicate and is skipped; one above the next
//! expected seq means a gap, filled from the store before the message goes out.

mod outbox;
mod queue;
#[cfg(test)]
mod tests;

pub use outbox::{session, Outbox};
use queue::{OutboundQueue, Pushed};

use crate::broker::Broker;
use crate::error::StoreError;
use crate::model::{Message, RoomId, Seq, User};
use crate::presence::{FeedRead, PresenceFeed};
use crate::protocol::{close, EncodedEvent, Event, PresenceResetEvent};
use crate::store::Store;
use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl SessionId {
    pub fn next() -> SessionId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SessionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// What the hub pushes into a session's queue.
#[derive(Debug)]
pub enum Outbound {
    Event(Arc<EncodedEvent>),
    /// Send every stored message of the room above the watermark (resume).
    CatchUp(RoomId),
    /// Start keeping order in a room from this seq (the room was just joined).
    Track(RoomId, Seq),
}

/// The hub's side of a session.
pub struct SessionHandle {
    pub id: SessionId,
    pub user: User,
    /// SHA-256 of the token it authenticated with, for revocation.
    pub token_hash: [u8; 32],
    /// Whether it receives `presence` events.
    pub wants_presence: bool,
    /// The bounded outbound queue (see `OutboundQueue`).
    queue: OutboundQueue,
    /// The rooms it is in, sorted (a user is in few rooms: a short vector is smaller than a
    /// set, and every connection keeps one).
    rooms: Mutex<Vec<RoomId>>,
    /// 0 while open; otherwise the close code the transport should use.
    close_code: AtomicU16,
    /// Set by the node's keepalive sweep; the outbox yields `Keepalive` and clears it.
    keepalive_due: AtomicBool,
    /// Set when the node's presence feed has a change this session has not read (it reads
    /// the feed, not its queue: see `presence.rs`).
    presence_due: AtomicBool,
    /// The feed position of the next change it reads (only its outbox moves it).
    presence_cursor: AtomicU64,
    /// Wakes the outbox: something was queued, or the session was closed.
    /// (A single waker slot, not a `Notify`: the outbox's wait then holds one pointer where
    /// a `Notified` is 70-odd bytes in every idle connection's task.)
    wake: AtomicWaker,
}

impl SessionHandle {
    /// Queues an event without waiting. A full queue closes the session (slow consumer).
    #[inline]
    pub fn deliver(&self, event: Arc<EncodedEvent>) {
        self.push(Outbound::Event(event));
    }

    #[inline]
    pub(crate) fn push(&self, item: Outbound) {
        if self.is_closed() {
            return;
        }
        match self.queue.push(item) {
            Pushed::Queued => self.wake.wake(),
            Pushed::Full => {
                tracing::info!(session = self.id.0, user = %self.user.name, "slow consumer: outbound queue full, closing");
                self.close(close::SLOW_CONSUMER);
            }
            Pushed::Gone => {}
        }
    }

    /// Asks the transport to close the connection with `code` (the first code wins).
    pub fn close(&self, code: u16) {
        if self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.wake.wake();
        }
    }

    /// Resolves once something is queued, the session is closed or a keepalive is due. Every
    /// push, close and keepalive changes its state first and wakes `wake` after; the wait
    /// registers first and checks after, so nothing in between is missed.
    fn news(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            self.wake.register(cx.waker());
            let news = self.is_closed()
                || self.keepalive_due.load(Ordering::Acquire)
                || self.presence_due.load(Ordering::Acquire)
                || !self.queue.lock().is_empty();
            if news {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }

    /// The node's presence feed has a new change: the outbox will read it from there.
    pub(crate) fn presence_news(&self) {
        let due = &self.presence_due;
        if !self.is_closed() && !due.load(Ordering::Acquire) && !due.swap(true, Ordering::AcqRel) {
            self.wake.wake();
        }
    }

    /// Asks the transport to check on the connection (the outbox yields `Keepalive`).
    pub fn keepalive(&self) {
        if !self.is_closed() && !self.keepalive_due.swap(true, Ordering::AcqRel) {
            self.wake.wake();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.close_code.load(Ordering::Acquire) != 0
    }

    /// The code it was closed with (the first one asked for), if it was.
    pub fn close_code(&self) -> Option<u16> {
        match self.close_code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    pub fn is_member(&self, room: RoomId) -> bool {
        self.rooms
            .lock()
            .map(|r| r.binary_search(&room).is_ok())
            .unwrap_or(false)
    }

    pub fn rooms(&self) -> Vec<RoomId> {
        self.rooms
            .lock()
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Records membership; true if it is new.
    pub(crate) fn add_room(&self, room: RoomId) -> bool {
        let Ok(mut rooms) = self.rooms.lock() else {
            return false;
        };
        match rooms.binary_search(&room) {
            Ok(_) => false,
            Err(at) => {
                rooms.reserve_exact(1);
                rooms.insert(at, room);
                true
            }
        }
    }

    pub(crate) fn remove_room(&self, room: RoomId) -> bool {
        let Ok(mut rooms) = self.rooms.lock() else {
            return false;
        };
        match rooms.binary_search(&room) {
            Ok(at) => {
                rooms.remove(at);
                true
            }
            Err(_) => false,
        }
    }
}

/// What the transport should do next.
#[derive(Debug)]
pub enum OutboxItem {
    /// Write this event.
    Event(Arc<EncodedEvent>),
    /// Close the connection with this code.
    Close(u16),
    /// Time to check on the connection: a transport pings it, and closes it if the client
    /// has been silent too long. Comes every `CoreConfig::keepalive`.
    Keepalive,
}

/// What all sessions of a node share: the store (to catch up from), the presence feed, and
/// the broker (who is online now, for a session that fell behind the feed).
pub struct SessionShared {
    pub store: Arc<dyn Store>,
    pub presence: PresenceFeed,
    /// Without one, a session that falls behind the presence feed is closed with 4008.
    pub broker: Option<Arc<dyn Broker>>,
    /// The node's cache of posting rules, forgotten for a room as its room events go out.
    pub(crate) rules: crate::rules::RoomRules,
}

impl SessionShared {
    /// Shared state without a broker (sessions that fall behind the presence feed are closed).
    pub fn new(store: Arc<dyn Store>, presence_backlog: usize) -> Arc<SessionShared> {
        Arc::new(SessionShared {
            store,
            presence: PresenceFeed::new(presence_backlog),
            broker: None,
            rules: Default::default(),
        })
    }

    /// Shared state whose sessions get a `presence_reset` (the broker's list of who is online)
    /// when they fall behind the presence feed.
    pub fn with_broker(
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        presence_backlog: usize,
    ) -> Arc<SessionShared> {
        Arc::new(SessionShared {
            store,
            presence: PresenceFeed::new(presence_backlog),
            broker: Some(broker),
            rules: Default::default(),
        })
    }
}
