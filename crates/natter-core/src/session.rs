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

/// Messages fetched from the store per page while catching up.
const CATCH_UP_PAGE: u32 = 200;

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

/// A session's outbound queue: a plain `VecDeque` under a lock, bounded by `capacity`.
/// Unlike a channel it holds no memory while empty (an idle connection costs a few words):
/// it gives back its allocation whenever it drains.
struct OutboundQueue {
    items: Mutex<VecDeque<Outbound>>,
    /// (A u32 beside the flag below: every connection has one of these.)
    capacity: u32,
    /// Set when the outbox is dropped: nothing is queued any more.
    receiver_gone: AtomicBool,
}

enum Pushed {
    Queued,
    Full,
    Gone,
}

impl OutboundQueue {
    fn new(capacity: usize) -> OutboundQueue {
        OutboundQueue {
            items: Mutex::new(VecDeque::new()),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX).max(1),
            receiver_gone: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Outbound>> {
        // A panic while holding the lock leaves a plain queue behind; keep serving.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, item: Outbound) -> Pushed {
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

    fn pop(&self) -> Option<Outbound> {
        let mut items = self.lock();
        let item = items.pop_front();
        if items.is_empty() {
            // Drained: give the memory back (an idle connection then holds none; the next
            // event allocates again, which costs little next to writing it).
            *items = VecDeque::new();
        }
        item
    }

    fn receiver_dropped(&self) {
        self.receiver_gone.store(true, Ordering::Release);
        let drained = std::mem::take(&mut *self.lock());
        drop(drained);
    }
}

impl SessionHandle {
    /// Queues an event without waiting. A full queue closes the session (slow consumer).
    pub fn deliver(&self, event: Arc<EncodedEvent>) {
        self.push(Outbound::Event(event));
    }

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
}

impl SessionShared {
    /// Shared state without a broker (sessions that fall behind the presence feed are closed).
    pub fn new(store: Arc<dyn Store>, presence_backlog: usize) -> Arc<SessionShared> {
        Arc::new(SessionShared {
            store,
            presence: PresenceFeed::new(presence_backlog),
            broker: None,
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
        })
    }
}

/// The transport's side of a session: yields events in order, filling gaps from the store.
pub struct Outbox {
    handle: Arc<SessionHandle>,
    shared: Arc<SessionShared>,
    /// Last seq handed out per room.
    watermarks: Watermarks,
    /// An event taken by `try_next` that needs a gap filled first.
    stashed: Option<Arc<EncodedEvent>>,
    /// Catching up and filling gaps (boxed, and only while there is some: every idle
    /// connection has an outbox).
    recovery: Option<Box<Recovery>>,
}

/// What the outbox keeps while it catches up or fills a gap from the store.
#[derive(Default)]
struct Recovery {
    /// Events ready to go out before anything else (stored messages fetched to fill a gap or
    /// catch up; a live event in order goes out without passing through here).
    ready: VecDeque<Arc<EncodedEvent>>,
    /// Rooms still catching up (their stored messages above the watermark are not all out),
    /// in order.
    catching_up: Vec<RoomId>,
    /// The store read in flight. It runs as its own task, so a transport that drops `next`
    /// (a `select!` that picked an incoming request) does not restart it: the next call picks
    /// it up, and a client that keeps sending cannot starve catch-up.
    reading: Option<StoreRead>,
}

impl Recovery {
    fn is_idle(&self) -> bool {
        self.ready.is_empty() && self.catching_up.is_empty() && self.reading.is_none()
    }
}

/// The last seq handed out per room: a vector sorted by room. A connection is in few rooms,
/// and every connection keeps one of these: smaller than a map, and as quick at this size.
#[derive(Default)]
struct Watermarks(Vec<(RoomId, Seq)>);

impl Watermarks {
    fn find(&self, room: RoomId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&room, |(r, _)| *r)
    }

    fn get(&self, room: RoomId) -> Option<Seq> {
        self.find(room).ok().map(|at| self.0[at].1)
    }

    fn get_mut(&mut self, room: RoomId) -> Option<&mut Seq> {
        self.find(room).ok().map(|at| &mut self.0[at].1)
    }

    fn insert(&mut self, room: RoomId, seq: Seq) {
        *self.entry(room) = seq;
    }

    /// The room's watermark, zero if it has none yet.
    fn entry(&mut self, room: RoomId) -> &mut Seq {
        let at = match self.find(room) {
            Ok(at) => at,
            Err(at) => {
                // Exactly as long as needed (a first push would reserve room for four).
                self.0.reserve_exact(1);
                self.0.insert(at, (room, Seq::ZERO));
                at
            }
        };
        &mut self.0[at].1
    }
}

/// A `messages_after(room, after, limit)` running as a task.
struct StoreRead {
    room: RoomId,
    after: Seq,
    limit: u32,
    task: JoinHandle<Result<Vec<Message>, StoreError>>,
}

enum Order {
    Next,
    Duplicate,
    Gap,
}

/// What the presence feed has for a session.
enum PresenceStep {
    Change(Arc<EncodedEvent>),
    /// It fell behind what the feed keeps (see `Outbox::presence_reset`).
    Missed,
    Nothing,
}

/// Creates a session's two halves.
pub fn session(
    user: User,
    token_hash: [u8; 32],
    wants_presence: bool,
    rooms: impl IntoIterator<Item = RoomId>,
    queue: usize,
    shared: Arc<SessionShared>,
) -> (Arc<SessionHandle>, Outbox) {
    let handle = Arc::new(SessionHandle {
        id: SessionId::next(),
        user,
        token_hash,
        wants_presence,
        queue: OutboundQueue::new(queue),
        rooms: Mutex::new({
            let mut rooms: Vec<RoomId> = rooms.into_iter().collect();
            rooms.sort_unstable();
            rooms.dedup();
            rooms
        }),
        close_code: AtomicU16::new(0),
        keepalive_due: AtomicBool::new(false),
        presence_due: AtomicBool::new(false),
        presence_cursor: AtomicU64::new(shared.presence.head()),
        wake: AtomicWaker::new(),
    });
    let outbox = Outbox {
        handle: handle.clone(),
        shared,
        watermarks: Watermarks::default(),
        stashed: None,
        recovery: None,
    };
    (handle, outbox)
}

impl Outbox {
    pub fn handle(&self) -> &Arc<SessionHandle> {
        &self.handle
    }

    /// Keep order in `room` from `seq` on: later messages come live, gaps from the store.
    pub fn track(&mut self, room: RoomId, seq: Seq) {
        self.watermarks.insert(room, seq);
    }

    /// Resume: the client has seen `room` up to `seq`; send it everything after.
    pub fn resume_from(&mut self, room: RoomId, seq: Seq) {
        self.watermarks.insert(room, seq);
        self.recovery().catching_up.push(room);
    }

    /// The next thing to do. Cancel-safe: an event taken from the queue stays stashed until
    /// it is placed, and store reads change nothing until they complete.
    pub async fn next(&mut self) -> OutboxItem {
        loop {
            if let Some(code) = self.close_code() {
                return OutboxItem::Close(code);
            }
            // A plain load first: this runs for every event, and a swap is a locked write.
            let due = &self.handle.keepalive_due;
            if due.load(Ordering::Acquire) && due.swap(false, Ordering::AcqRel) {
                return OutboxItem::Keepalive;
            }
            if let Some(event) = self.pop_ready() {
                return OutboxItem::Event(event);
            }
            match self.next_presence() {
                PresenceStep::Change(event) => return OutboxItem::Event(event),
                // Rare, and boxed like the store reads below.
                PresenceStep::Missed => return Box::pin(self.presence_reset()).await,
                PresenceStep::Nothing => {}
            }
            let catching_up = self.recovery.as_ref().and_then(|r| r.catching_up.first());
            if let Some(room) = catching_up.copied() {
                // Boxed, as is filling a gap: rare steps that would otherwise make every idle
                // connection's task carry their state.
                match Box::pin(self.catch_up_page(room)).await {
                    Ok(true) => {
                        self.recovery().catching_up.remove(0);
                        self.tidy();
                    }
                    Ok(false) => {}
                    Err(()) => return OutboxItem::Close(close::INTERNAL),
                }
                continue;
            }
            if let Some(event) = self.stashed.clone() {
                // It stays stashed until placed: a transport that drops `next` while the gap
                // is being fetched (a `select!` that picked a request) loses nothing.
                if Box::pin(self.place(&event)).await.is_err() {
                    return OutboxItem::Close(close::INTERNAL);
                }
                self.stashed = None;
                continue;
            }
            let Some(item) = self.handle.queue.pop() else {
                self.handle.news().await;
                continue;
            };
            match item {
                // In order (the usual case) it goes out now; a gap is filled first.
                Outbound::Event(event) => match self.in_order(&event) {
                    Order::Next => return OutboxItem::Event(event),
                    Order::Duplicate => {}
                    Order::Gap => self.stashed = Some(event),
                },
                Outbound::CatchUp(room) => self.recovery().catching_up.push(room),
                Outbound::Track(room, seq) => {
                    self.watermarks.insert(room, seq);
                }
            }
        }
    }

    /// An event that is ready now, without waiting or fetching (for batching writes).
    pub fn try_next(&mut self) -> Option<Arc<EncodedEvent>> {
        if self.close_code().is_some() || self.stashed.is_some() {
            return None;
        }
        if let Some(event) = self.pop_ready() {
            return Some(event);
        }
        match self.next_presence() {
            PresenceStep::Change(event) => return Some(event),
            // The reset needs the broker: leave it to `next`.
            PresenceStep::Missed => return None,
            PresenceStep::Nothing => {}
        }
        if self
            .recovery
            .as_ref()
            .is_some_and(|r| !r.catching_up.is_empty())
        {
            return None;
        }
        loop {
            match self.handle.queue.pop() {
                Some(Outbound::Event(event)) => match self.in_order(&event) {
                    Order::Next => return Some(event),
                    Order::Duplicate => continue,
                    Order::Gap => {
                        // Filling it needs the store: leave it to `next`.
                        self.stashed = Some(event);
                        return None;
                    }
                },
                Some(Outbound::CatchUp(room)) => {
                    self.recovery().catching_up.push(room);
                    return None;
                }
                Some(Outbound::Track(room, seq)) => {
                    self.watermarks.insert(room, seq);
                }
                None => return None,
            }
        }
    }

    /// Queues an event as ready, after the stored messages it is ahead of (if any). Safe to
    /// cancel and call again with the same event.
    async fn place(&mut self, event: &Arc<EncodedEvent>) -> Result<(), ()> {
        match self.in_order(event) {
            Order::Next => self.recovery().ready.push_back(event.clone()),
            Order::Duplicate => {}
            Order::Gap => {
                Box::pin(self.fill_gap(event)).await?;
                if let Some((room, seq)) = event.room_seq {
                    let mark = self.watermarks.entry(room);
                    if seq > *mark {
                        *mark = seq;
                        self.recovery().ready.push_back(event.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// Classifies a message against the room's watermark, advancing it for `Next`.
    fn in_order(&mut self, event: &EncodedEvent) -> Order {
        let Some((room, seq)) = event.room_seq else {
            return Order::Next;
        };
        match self.watermarks.get_mut(room) {
            None => {
                self.watermarks.insert(room, seq);
                Order::Next
            }
            Some(mark) if seq <= *mark => Order::Duplicate,
            Some(mark) if seq == mark.next() => {
                *mark = seq;
                Order::Next
            }
            Some(_) => Order::Gap,
        }
    }

    /// Queues the stored messages between the watermark and `event`.
    async fn fill_gap(&mut self, event: &EncodedEvent) -> Result<(), ()> {
        let Some((room, seq)) = event.room_seq else {
            return Ok(());
        };
        loop {
            let mark = self.watermarks.get(room).unwrap_or(Seq::ZERO);
            let missing = seq.0 - mark.0 - 1;
            if missing <= 0 {
                break;
            }
            let limit = missing.min(CATCH_UP_PAGE as i64) as u32;
            let page = self.fetch(room, mark, limit).await?;
            if page.is_empty() {
                tracing::warn!(
                    room = room.0,
                    from = mark.0,
                    to = seq.0,
                    "gap not in store; skipping it"
                );
                break;
            }
        }
        Ok(())
    }

    /// One page of catch-up; true when the room has nothing more to send.
    async fn catch_up_page(&mut self, room: RoomId) -> Result<bool, ()> {
        let mark = self.watermarks.get(room).unwrap_or(Seq::ZERO);
        let page = self.fetch(room, mark, CATCH_UP_PAGE).await?;
        Ok(page.len() < CATCH_UP_PAGE as usize)
    }

    /// Fetches messages above `after`, queues them as ready and advances the watermark.
    async fn fetch(&mut self, room: RoomId, after: Seq, limit: u32) -> Result<Vec<Seq>, ()> {
        let same = |r: &StoreRead| r.room == room && r.after == after && r.limit == limit;
        if !self.recovery().reading.as_ref().is_some_and(same) {
            let store = self.shared.store.clone();
            let task = tokio::spawn(async move { store.messages_after(room, after, limit).await });
            let read = StoreRead {
                room,
                after,
                limit,
                task,
            };
            if let Some(stale) = self.recovery().reading.replace(read) {
                stale.task.abort();
            }
        }
        let Some(read) = self.recovery().reading.as_mut() else {
            return Err(());
        };
        let result = (&mut read.task).await;
        self.recovery().reading = None;
        let messages = result
            .map_err(|e| tracing::error!(error = %e, "catch-up task failed"))?
            .map_err(|e| tracing::error!(error = %e, "catch-up read failed"))?;
        let mut seqs = Vec::with_capacity(messages.len());
        for message in &messages {
            let mark = self.watermarks.entry(room);
            if message.seq > *mark {
                *mark = message.seq;
                self.recovery()
                    .ready
                    .push_back(EncodedEvent::message(message));
            }
            seqs.push(message.seq);
        }
        Ok(seqs)
    }

    /// The recovery state, created when first needed.
    fn recovery(&mut self) -> &mut Recovery {
        self.recovery.get_or_insert_with(Box::default)
    }

    /// Drops the recovery state once it holds nothing.
    fn tidy(&mut self) {
        if self.recovery.as_ref().is_some_and(|r| r.is_idle()) {
            self.recovery = None;
        }
    }

    /// The next stored event ready to go out, if any.
    fn pop_ready(&mut self) -> Option<Arc<EncodedEvent>> {
        let event = self.recovery.as_mut()?.ready.pop_front();
        self.tidy();
        event
    }

    /// The next presence change due to this session, read from the node's feed.
    fn next_presence(&self) -> PresenceStep {
        let handle = &self.handle;
        if !handle.presence_due.load(Ordering::Acquire) {
            return PresenceStep::Nothing;
        }
        let position = handle.presence_cursor.load(Ordering::Relaxed);
        match self.shared.presence.read(position, &handle.presence_due) {
            FeedRead::Next(event) => {
                handle
                    .presence_cursor
                    .store(position + 1, Ordering::Relaxed);
                PresenceStep::Change(event)
            }
            FeedRead::CaughtUp => PresenceStep::Nothing,
            FeedRead::Missed => PresenceStep::Missed,
        }
    }

    /// The session fell further behind the presence feed than it keeps. Presence is state,
    /// not history: instead of the changes it missed it gets who is online now
    /// (`presence_reset`, the broker's list) and reads on from the feed's head. Changes that
    /// come after the head was taken are read again after the list; each says where one user
    /// stands, so the client ends at the latest state either way. Cancel-safe: the cursor
    /// moves only once the list is in. Without a broker, or if it fails, the session is closed
    /// as a slow consumer (it gets the list again with its next `auth`).
    async fn presence_reset(&self) -> OutboxItem {
        let handle = &self.handle;
        if let Some(broker) = self.shared.broker.clone() {
            let head = self.shared.presence.head();
            match broker.online_users().await {
                Ok(online) => {
                    handle.presence_cursor.store(head, Ordering::Relaxed);
                    tracing::info!(session = handle.id.0, user = %handle.user.name, "fell behind the presence feed; sent who is online instead");
                    return OutboxItem::Event(
                        Event::PresenceReset(PresenceResetEvent { online }).encode(),
                    );
                }
                Err(e) => tracing::warn!(error = %e, "presence reset: who is online is unknown"),
            }
        }
        tracing::info!(session = handle.id.0, user = %handle.user.name, "slow consumer: fell behind the presence feed, closing");
        handle.close(close::SLOW_CONSUMER);
        OutboxItem::Close(self.close_code().unwrap_or(close::SLOW_CONSUMER))
    }

    fn close_code(&self) -> Option<u16> {
        match self.handle.close_code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.handle.queue.receiver_dropped();
        if let Some(read) = self.recovery.as_mut().and_then(|r| r.reading.take()) {
            read.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;
    use crate::store::MemoryStore;
    use std::time::Duration;

    fn open(queue: usize) -> (Arc<SessionHandle>, Outbox) {
        open_with(queue, SessionShared::new(Arc::new(MemoryStore::new()), 8))
    }

    fn open_with(queue: usize, shared: Arc<SessionShared>) -> (Arc<SessionHandle>, Outbox) {
        let user = User {
            id: UserId(1),
            name: "ana".into(),
            guest: false,
        };
        session(user, [0; 32], false, [], queue, shared)
    }

    fn event(n: u32) -> Arc<EncodedEvent> {
        EncodedEvent::new("typing", &serde_json::json!({ "n": n }))
    }

    #[test]
    fn a_drained_queue_gives_back_its_memory() {
        let (handle, mut outbox) = open(1000);
        for n in 0..500 {
            handle.deliver(event(n));
        }
        assert!(handle.queue.lock().capacity() >= 500);
        for _ in 0..500 {
            assert!(outbox.try_next().is_some());
        }
        assert!(outbox.try_next().is_none());
        assert_eq!(
            handle.queue.lock().capacity(),
            0,
            "a drained queue holds nothing"
        );
        handle.deliver(event(1));
        assert!(outbox.try_next().is_some());
        assert_eq!(handle.queue.lock().capacity(), 0);
        assert!(!handle.is_closed());
    }

    #[test]
    fn a_full_queue_closes_instead_of_growing() {
        let (handle, _outbox) = open(3);
        for n in 0..3 {
            handle.deliver(event(n));
        }
        assert!(!handle.is_closed());
        handle.deliver(event(3));
        assert!(handle.is_closed());
        assert_eq!(handle.queue.lock().len(), 3);
    }

    #[test]
    fn nothing_is_queued_for_a_dropped_outbox() {
        let (handle, outbox) = open(10);
        handle.deliver(event(0));
        drop(outbox);
        assert_eq!(handle.queue.lock().len(), 0);
        handle.deliver(event(1));
        assert_eq!(handle.queue.lock().len(), 0);
        assert!(!handle.is_closed());
    }

    /// Does `f` to the session 20 ms from now, while the outbox waits.
    fn later(handle: &Arc<SessionHandle>, f: impl FnOnce(&SessionHandle) + Send + 'static) {
        let handle = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            f(&handle);
        });
    }

    async fn next_in_time(outbox: &mut Outbox, why: &str) -> OutboxItem {
        tokio::time::timeout(Duration::from_secs(5), outbox.next())
            .await
            .expect(why)
    }

    #[tokio::test]
    async fn a_waiting_outbox_wakes_for_a_push_and_for_a_close() {
        let (handle, mut outbox) = open(10);
        later(&handle, |h| h.deliver(event(7)));
        let item = next_in_time(&mut outbox, "woken by the push").await;
        assert!(matches!(item, OutboxItem::Event(e) if &e.data[..] == br#"{"n":7}"#));
        later(&handle, |h| h.close(close::REVOKED));
        let item = next_in_time(&mut outbox, "woken by the close").await;
        assert!(matches!(item, OutboxItem::Close(code) if code == close::REVOKED));
    }

    #[tokio::test]
    async fn a_keepalive_wakes_the_outbox_once_and_never_after_close() {
        let (handle, mut outbox) = open(10);
        // Two sweeps before the transport looks: one keepalive.
        later(&handle, |h| {
            h.keepalive();
            h.keepalive();
        });
        let item = next_in_time(&mut outbox, "woken by the keepalive").await;
        assert!(matches!(item, OutboxItem::Keepalive), "got {item:?}");
        handle.deliver(event(3));
        let item = outbox.next().await;
        assert!(matches!(item, OutboxItem::Event(e) if &e.data[..] == br#"{"n":3}"#));
        let idle = tokio::time::timeout(Duration::from_millis(30), outbox.next()).await;
        assert!(idle.is_err(), "a second keepalive: {idle:?}");
        handle.close(close::GOING_AWAY);
        handle.keepalive();
        let item = outbox.next().await;
        assert!(matches!(item, OutboxItem::Close(code) if code == close::GOING_AWAY));
    }

    #[tokio::test]
    async fn a_push_before_the_wait_is_not_lost() {
        let (handle, mut outbox) = open(10);
        // Poll `next` once so it registers, drop it (a select! picked another branch), then
        // push: the next call must see the event.
        let first = tokio::time::timeout(Duration::from_millis(10), outbox.next()).await;
        assert!(first.is_err());
        handle.deliver(event(1));
        let item = tokio::time::timeout(Duration::from_secs(5), outbox.next())
            .await
            .expect("not lost");
        assert!(matches!(item, OutboxItem::Event(_)));
    }

    /// Publishes a presence change as the node does: into the feed, then a flag per watcher.
    fn publish_presence(shared: &SessionShared, watchers: &[&Arc<SessionHandle>], n: u32) {
        shared.presence.push(EncodedEvent::new(
            "presence",
            &serde_json::json!({ "n": n }),
        ));
        for watcher in watchers {
            watcher.presence_news();
        }
    }

    fn data_of(event: &EncodedEvent) -> String {
        String::from_utf8_lossy(&event.data).into_owned()
    }

    #[test]
    fn presence_changes_take_no_queue_slots_and_arrive_in_order() {
        let shared = SessionShared::new(Arc::new(MemoryStore::new()), 1000);
        let (a, mut outbox_a) = open_with(4, shared.clone());
        let (b, mut outbox_b) = open_with(4, shared.clone());
        // A storm: 500 changes before either reads one; a queue of 4 would have closed both.
        for n in 0..500 {
            publish_presence(&shared, &[&a, &b], n);
        }
        a.deliver(event(9));
        assert!(!a.is_closed() && !b.is_closed());
        assert_eq!(a.queue.lock().len(), 1, "presence is not queued");
        for outbox in [&mut outbox_a, &mut outbox_b] {
            let mut presence = Vec::new();
            while let Some(event) = outbox.try_next() {
                if event.name == "presence" {
                    presence.push(data_of(&event));
                }
            }
            let expected: Vec<String> = (0..500).map(|n| format!("{{\"n\":{n}}}")).collect();
            assert_eq!(&presence[..], &expected[..]);
        }
        // Caught up: nothing more until the next change.
        assert!(outbox_a.try_next().is_none());
        publish_presence(&shared, &[&a, &b], 500);
        assert_eq!(
            data_of(&outbox_a.try_next().expect("the new change")),
            r#"{"n":500}"#
        );
    }

    #[test]
    fn a_session_starts_at_the_feed_head_and_sees_only_later_changes() {
        let shared = SessionShared::new(Arc::new(MemoryStore::new()), 100);
        publish_presence(&shared, &[], 1);
        let (a, mut outbox) = open_with(4, shared.clone());
        publish_presence(&shared, &[&a], 2);
        assert_eq!(data_of(&outbox.try_next().expect("change 2")), r#"{"n":2}"#);
        assert!(outbox.try_next().is_none());
    }

    #[tokio::test]
    async fn falling_behind_the_presence_feed_brings_who_is_online_instead() {
        let broker = Arc::new(crate::broker::LocalBroker::new());
        let online = |id: i64| User {
            id: crate::model::UserId(id),
            name: format!("u{id}"),
            guest: false,
        };
        broker.presence_up(&online(7)).await.expect("up");
        let shared = SessionShared::with_broker(Arc::new(MemoryStore::new()), broker.clone(), 8);
        let (a, mut outbox) = open_with(4, shared.clone());
        for n in 0..9 {
            publish_presence(&shared, &[&a], n);
        }
        // Nothing can be read without the broker, so the quick path leaves it to `next`.
        assert!(outbox.try_next().is_none());
        let item = next_in_time(&mut outbox, "the reset").await;
        let OutboxItem::Event(reset) = item else {
            panic!("expected presence_reset, got {item:?}");
        };
        assert_eq!(reset.name, "presence_reset");
        assert_eq!(
            &reset.data[..],
            br#"{"online":[{"id":7,"name":"u7","guest":false}]}"#
        );
        // Then on from the feed's head: nothing old comes after it, new changes do.
        assert!(outbox.try_next().is_none());
        publish_presence(&shared, &[&a], 100);
        assert_eq!(
            data_of(&outbox.try_next().expect("change 100")),
            r#"{"n":100}"#
        );
        assert!(!a.is_closed());
    }

    #[tokio::test]
    async fn falling_behind_the_presence_feed_without_a_broker_closes_as_a_slow_consumer() {
        let shared = SessionShared::new(Arc::new(MemoryStore::new()), 8);
        let (a, mut outbox) = open_with(4, shared.clone());
        for n in 0..9 {
            publish_presence(&shared, &[&a], n);
        }
        let item = next_in_time(&mut outbox, "closed").await;
        assert!(
            matches!(item, OutboxItem::Close(code) if code == close::SLOW_CONSUMER),
            "got {item:?}"
        );
        assert!(a.is_closed());
    }

    #[tokio::test]
    async fn a_waiting_outbox_wakes_for_a_presence_change() {
        let shared = SessionShared::new(Arc::new(MemoryStore::new()), 8);
        let (a, mut outbox) = open_with(4, shared.clone());
        let first = tokio::time::timeout(Duration::from_millis(10), outbox.next()).await;
        assert!(first.is_err());
        {
            let shared = shared.clone();
            later(&a, move |h| {
                shared.presence.push(EncodedEvent::new(
                    "presence",
                    &serde_json::json!({ "n": 1 }),
                ));
                h.presence_news();
            });
        }
        let item = next_in_time(&mut outbox, "woken by the change").await;
        assert!(matches!(item, OutboxItem::Event(e) if &e.data[..] == br#"{"n":1}"#));
    }

    /// Every connection has one, in an `Arc` (16 bytes of counts): keep it within the
    /// allocator's 224-byte class (the next is 256).
    #[test]
    fn a_session_handle_is_small() {
        let size = std::mem::size_of::<SessionHandle>();
        println!("SessionHandle {size} bytes");
        assert!(size + 16 <= 224, "SessionHandle is {size} bytes");
    }
}
