//! The transport's side of a session (`Outbox`): yields events in order, skipping what the
//! connection has had, filling gaps and catching up from the store, and presence changes from
//! the node's feed.

use super::*;

/// Messages fetched from the store per page while catching up.
const CATCH_UP_PAGE: u32 = 200;

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
                return OutboxItem::Event(self.release(event));
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
                    Order::Next => return OutboxItem::Event(self.release(event)),
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
            return Some(self.release(event));
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
                    Order::Next => return Some(self.release(event)),
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

    /// A stream event on its way to the client: a room event first clears the node's cached
    /// rules of its room, whichever way it came (live, the hub's gap fill, this session's
    /// catch-up), so a send made after seeing a mute is judged by the store.
    fn release(&self, event: Arc<EncodedEvent>) -> Arc<EncodedEvent> {
        self.shared.rules.forget_for(&event);
        event
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
