//! `RoomRules`: a node's cache of what restricts a post (archived room, muted member), so a
//! send costs no extra store read. Filled on first use; forgotten before a room event of
//! that room reaches any local session (however it came: the broker, the hub's gap fill, a
//! session's own catch-up from the store), when the node subscribes to the room anew, and
//! after a broker outage. So a member who has seen a mute is refused from then on, on every
//! node.

use crate::model::*;
use crate::node::lock;
use crate::protocol::EncodedEvent;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The node's cache of archived rooms and muted members (see the module comment).
#[derive(Default)]
pub(crate) struct RoomRules {
    /// Moves on every forget: a read from the store started before it is not cached.
    generation: AtomicU64,
    rooms: Mutex<HashMap<RoomId, CachedRules>>,
}

#[derive(Default)]
struct CachedRules {
    archived: bool,
    muted: HashMap<UserId, Option<Millis>>,
}

impl RoomRules {
    /// Where forgetting stands now: taken before a store read whose answer is then `put`.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
    /// Forgets the room's rules if `event` is one of its room events (a mute, a setting,
    /// a kick...): called for every event on its way out to a client, so no client sees a
    /// change its node's sends do not yet honour. One string comparison for other events.
    pub(crate) fn forget_for(&self, event: &EncodedEvent) {
        if event.name == ROOM_EVENT {
            if let Some((room, _)) = event.room_seq {
                self.forget(room);
            }
        }
    }
    pub(crate) fn forget(&self, room: RoomId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        lock(&self.rooms).remove(&room);
    }
    pub(crate) fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        lock(&self.rooms).clear();
    }
    pub(crate) fn get(&self, room: RoomId, user: UserId) -> Option<(bool, Option<Millis>)> {
        let rooms = lock(&self.rooms);
        let rules = rooms.get(&room)?;
        Some((rules.archived, *rules.muted.get(&user)?))
    }
    pub(crate) fn put(
        &self,
        generation: u64,
        room: RoomId,
        user: UserId,
        archived: bool,
        muted: Option<Millis>,
    ) {
        let mut rooms = lock(&self.rooms);
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let rules = rooms.entry(room).or_default();
        rules.archived = archived;
        rules.muted.insert(user, muted);
    }
}
