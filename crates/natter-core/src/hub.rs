//! The local registry: which sessions of this node are in which room, which belong to which
//! user, and who wants presence. It fans an encoded event out to local sessions, and keeps
//! room messages in seq order per room: what arrives out of order waits (`gap_wait`) for the
//! missing seqs; a small gap that outlasts the wait is read from the store once, here, for
//! every local session of the room, and what is left (a wide gap, or what the store does not
//! have either) goes to the sessions, each of which fills or skips it on its own.

use crate::metrics::CoreMetrics;
use crate::model::{RoomId, Seq, UserId};
use crate::protocol::EncodedEvent;
use crate::session::{SessionHandle, SessionId};
use crate::store::Store;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Out-of-order messages held per room before the gap is given up on at once.
const MAX_PENDING: usize = 1024;

/// The largest gap the hub reads for its sessions. What it reads goes into their bounded
/// queues at once, so a larger gap (a broker that lost a burst) is left to each session,
/// which reads it page by page as it writes, outside its queue.
const HUB_GAP_FILL_MAX: i64 = 128;

#[derive(Default)]
struct RoomEntry {
    sessions: HashMap<SessionId, Arc<SessionHandle>>,
    /// The last seq fanned out on this node (None until the first one).
    delivered: Option<Seq>,
    /// Messages that arrived ahead of a missing seq.
    pending: BTreeMap<Seq, Arc<EncodedEvent>>,
    /// Since when the lowest missing seq has been waited for (None while nothing is pending).
    /// The wait is per gap: a gap that closes and a new one that opens start afresh.
    gap_since: Option<Instant>,
    /// Whether a gap timer is running for this room.
    gap_timer: bool,
    /// The room's sessions were told to catch up from the store (`catch_up_room`): the next
    /// message ahead of a gap goes out at once, since they fill the gap themselves.
    sessions_catching_up: bool,
}

impl RoomEntry {
    /// Hands a message to every local session of the room; returns how many it reached.
    fn fan_out(&self, event: &Arc<EncodedEvent>) -> u64 {
        for session in self.sessions.values() {
            session.deliver(event.clone());
        }
        self.sessions.len() as u64
    }

    /// Fans out pending messages that are next in line. What is still pending after that
    /// waits behind a new gap, which starts its wait now. Returns the deliveries made.
    fn drain_in_order(&mut self) -> u64 {
        let mut delivered = 0;
        let mut drained = false;
        while let Some(entry) = self.pending.first_entry() {
            let next = self.delivered.map_or(*entry.key(), Seq::next);
            if *entry.key() > next {
                break;
            }
            drained = true;
            let (seq, event) = entry.remove_entry();
            if Some(seq) > self.delivered {
                delivered += self.fan_out(&event);
                self.delivered = Some(seq);
            }
        }
        if self.pending.is_empty() {
            self.gap_since = None;
        } else if drained {
            self.gap_since = Some(Instant::now());
        }
        delivered
    }

    /// Gives up waiting: fans out all pending messages in order, gaps and all (each session
    /// fills the gaps from the store). Returns the deliveries made.
    fn flush_pending(&mut self) -> u64 {
        self.gap_since = None;
        let mut delivered = 0;
        let pending = std::mem::take(&mut self.pending);
        for (seq, event) in pending {
            if Some(seq) > self.delivered {
                delivered += self.fan_out(&event);
                self.delivered = Some(seq);
            }
        }
        delivered
    }
}

#[derive(Default)]
struct HubState {
    rooms: HashMap<RoomId, RoomEntry>,
    users: HashMap<UserId, HashMap<SessionId, Arc<SessionHandle>>>,
    presence: HashMap<SessionId, Arc<SessionHandle>>,
}

/// What changed in the node's interest when sessions come and go; the node turns these into
/// broker subscriptions.
#[derive(Debug, Default)]
pub struct Interest {
    pub rooms_gained: Vec<RoomId>,
    pub rooms_lost: Vec<RoomId>,
    pub user_gained: bool,
    pub user_lost: bool,
}

#[derive(Default)]
pub struct Hub {
    state: Mutex<HubState>,
    /// How long a missing seq is waited for before it is read from the store.
    gap_wait: Duration,
    /// Where the hub reads a gap that outlasted the wait (without one, the sessions do).
    store: Option<Arc<dyn Store>>,
    /// Where it counts deliveries (`CoreMetrics::deliveries`, one add per fan-out).
    metrics: Arc<CoreMetrics>,
}

impl Hub {
    /// A hub that leaves lasting gaps to its sessions.
    pub fn new(gap_wait: Duration) -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::default(),
            gap_wait,
            store: None,
            metrics: Arc::default(),
        })
    }

    /// A hub that reads a lasting gap from `store` once for all its sessions.
    pub fn with_store(gap_wait: Duration, store: Arc<dyn Store>) -> Arc<Hub> {
        Self::counted(gap_wait, store, Arc::default())
    }

    /// As [`Hub::with_store`], counting its deliveries in `metrics` (the node's).
    pub fn counted(
        gap_wait: Duration,
        store: Arc<dyn Store>,
        metrics: Arc<CoreMetrics>,
    ) -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::default(),
            gap_wait,
            store: Some(store),
            metrics,
        })
    }

    fn state(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock leaves plain maps behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session in its user's set, its rooms and (if it wants) presence.
    pub fn add_session(&self, session: &Arc<SessionHandle>) -> Interest {
        let mut st = self.state();
        let mut interest = Interest::default();
        let by_user = st.users.entry(session.user.id).or_default();
        interest.user_gained = by_user.is_empty();
        by_user.insert(session.id, session.clone());
        if session.wants_presence {
            st.presence.insert(session.id, session.clone());
        }
        for room in session.rooms() {
            let entry = st.rooms.entry(room).or_default();
            if entry.sessions.is_empty() {
                interest.rooms_gained.push(room);
            }
            entry.sessions.insert(session.id, session.clone());
        }
        interest
    }

    /// Removes a session everywhere.
    pub fn remove_session(&self, session: &SessionHandle) -> Interest {
        let mut st = self.state();
        let mut interest = Interest::default();
        if let Some(by_user) = st.users.get_mut(&session.user.id) {
            by_user.remove(&session.id);
            if by_user.is_empty() {
                st.users.remove(&session.user.id);
                interest.user_lost = true;
            }
        }
        st.presence.remove(&session.id);
        for room in session.rooms() {
            if Self::unlink(&mut st, room, session.id) {
                interest.rooms_lost.push(room);
            }
        }
        interest
    }

    /// Removes a session from one room; true if the room has no local session left.
    fn unlink(st: &mut HubState, room: RoomId, session: SessionId) -> bool {
        let Some(entry) = st.rooms.get_mut(&room) else {
            return false;
        };
        entry.sessions.remove(&session);
        if entry.sessions.is_empty() {
            st.rooms.remove(&room);
            return true;
        }
        false
    }

    /// Adds a session to a room; true if it is the room's first local session.
    pub fn join_room(&self, session: &Arc<SessionHandle>, room: RoomId) -> bool {
        session.add_room(room);
        let mut st = self.state();
        let entry = st.rooms.entry(room).or_default();
        let first = entry.sessions.is_empty();
        entry.sessions.insert(session.id, session.clone());
        first
    }

    /// Removes a session from a room; true if the room has no local session left.
    pub fn leave_room(&self, session: &SessionHandle, room: RoomId) -> bool {
        session.remove_room(room);
        Self::unlink(&mut self.state(), room, session.id)
    }

    /// The local sessions of a user.
    pub fn sessions_of(&self, user: UserId) -> Vec<Arc<SessionHandle>> {
        self.state()
            .users
            .get(&user)
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether this node has a session of the user.
    pub fn has_user(&self, user: UserId) -> bool {
        self.state().users.contains_key(&user)
    }

    /// Every local session (for shutdown).
    pub fn all_sessions(&self) -> Vec<Arc<SessionHandle>> {
        self.state()
            .users
            .values()
            .flat_map(|s| s.values().cloned())
            .collect()
    }

    pub fn session_count(&self) -> usize {
        self.state().users.values().map(HashMap::len).sum()
    }

    /// Sessions, and rooms with at least one local session, in one look.
    pub fn counts(&self) -> (usize, usize) {
        let st = self.state();
        (st.users.values().map(HashMap::len).sum(), st.rooms.len())
    }

    /// The last seq fanned out in a room (None if none yet, or no local session is in it),
    /// and the room's local sessions.
    pub fn room_state(&self, room: RoomId) -> (Option<Seq>, Vec<Arc<SessionHandle>>) {
        self.state()
            .rooms
            .get(&room)
            .map_or((None, Vec::new()), |entry| {
                (entry.delivered, entry.sessions.values().cloned().collect())
            })
    }

    /// Tells every local session of a room to send what the store has above its watermark
    /// (after a broker outage with a long backlog). Live messages go on at once, past the gap
    /// the sessions are filling; each session skips what it has.
    pub fn catch_up_room(&self, room: RoomId) {
        if let Some(entry) = self.state().rooms.get_mut(&room) {
            for session in entry.sessions.values() {
                session.push(crate::session::Outbound::CatchUp(room));
            }
            entry.sessions_catching_up = true;
        }
    }

    /// Delivers a non-message event to a room's sessions, except those of `except`.
    pub fn to_room(&self, room: RoomId, event: &Arc<EncodedEvent>, except: Option<UserId>) {
        let st = self.state();
        if let Some(entry) = st.rooms.get(&room) {
            for session in entry.sessions.values() {
                if Some(session.user.id) != except {
                    session.deliver(event.clone());
                }
            }
        }
    }

    /// Tells every session that wants presence that the feed has a new change.
    pub fn presence_changed(&self) {
        for session in self.state().presence.values() {
            session.presence_news();
        }
    }

    /// Delivers an event to a user's sessions.
    pub fn to_user(&self, user: UserId, event: &Arc<EncodedEvent>) {
        if let Some(sessions) = self.state().users.get(&user) {
            for session in sessions.values() {
                session.deliver(event.clone());
            }
        }
    }

    /// Delivers a room message in seq order. Out-of-order arrivals wait (at most `gap_wait`)
    /// for the missing ones.
    pub fn deliver_message(self: &Arc<Self>, event: Arc<EncodedEvent>) {
        let Some((room, seq)) = event.room_seq else {
            return;
        };
        let mut st = self.state();
        let Some(entry) = st.rooms.get_mut(&room) else {
            return;
        };
        match entry.delivered {
            Some(done) if seq <= done => {}
            Some(done) if seq != done.next() => {
                entry.pending.insert(seq, event);
                if std::mem::take(&mut entry.sessions_catching_up) {
                    // The sessions read the gap from the store themselves: nothing to wait for.
                    self.metrics.deliveries.add(entry.flush_pending());
                    return;
                }
                tracing::trace!(room = room.0, seq = seq.0, "message ahead of a gap; held");
                if entry.pending.len() > MAX_PENDING {
                    self.metrics.deliveries.add(entry.flush_pending());
                    return;
                }
                entry.gap_since.get_or_insert_with(Instant::now);
                if !entry.gap_timer {
                    entry.gap_timer = true;
                    self.arm_gap_timer(room);
                }
            }
            _ => {
                entry.sessions_catching_up = false;
                let reached = entry.fan_out(&event);
                entry.delivered = Some(seq);
                self.metrics
                    .deliveries
                    .add(reached + entry.drain_in_order());
            }
        }
    }

    /// Watches the room's gaps until none is pending: a gap younger than `gap_wait` is
    /// waited for the rest of its time; an older one is read from the store (once, for every
    /// local session), and what the store does not have either is given up on (flushed).
    fn arm_gap_timer(self: &Arc<Self>, room: RoomId) {
        let hub = Arc::downgrade(self);
        let gap_wait = self.gap_wait;
        tokio::spawn(async move {
            let mut wait = gap_wait;
            loop {
                tokio::time::sleep(wait).await;
                let Some(hub) = hub.upgrade() else { return };
                let gap = {
                    let mut st = hub.state();
                    let Some(entry) = st.rooms.get_mut(&room) else {
                        return;
                    };
                    let Some(since) = entry.gap_since else {
                        entry.gap_timer = false;
                        return;
                    };
                    let waited = since.elapsed();
                    if waited < gap_wait {
                        wait = gap_wait - waited;
                        continue;
                    }
                    entry.delivered.zip(entry.pending.keys().next().copied())
                };
                if let Some((after, until)) = gap {
                    hub.fill_gap(room, after, until).await;
                }
                let mut st = hub.state();
                let Some(entry) = st.rooms.get_mut(&room) else {
                    return;
                };
                let still_open = gap.is_some_and(|(_, until)| {
                    entry.delivered.is_some_and(|done| done.next() < until)
                });
                if gap.is_none() || still_open {
                    tracing::debug!(room = room.0, "seq gap persisted; flushing");
                    hub.metrics.deliveries.add(entry.flush_pending());
                    entry.gap_timer = false;
                    return;
                }
                // Filled: a gap behind it (if any) has its own wait, from now.
                wait = Duration::ZERO;
            }
        });
    }

    /// Reads the messages between `after` and `until` (both exclusive) from the store and
    /// delivers them, which releases what waited behind them. Gaps wider than
    /// `HUB_GAP_FILL_MAX` are not read here (see there), nor any without a store.
    async fn fill_gap(self: &Arc<Self>, room: RoomId, after: Seq, until: Seq) {
        let missing = until.0 - after.0 - 1;
        let Some(store) = self.store.as_ref() else {
            return;
        };
        if !(1..=HUB_GAP_FILL_MAX).contains(&missing) {
            return;
        }
        let limit = u32::try_from(missing).unwrap_or(u32::MAX);
        match store.messages_after(room, after, limit).await {
            Ok(page) => {
                for message in page.iter().take_while(|m| m.seq < until) {
                    self.deliver_message(EncodedEvent::message(message));
                }
            }
            Err(e) => tracing::warn!(room = room.0, error = %e, "reading a seq gap failed"),
        }
    }
}
