//! The floor's chat state, the least a delivery needs: users by name (the token is the name's
//! id), rooms with their members and next seq. A send takes the room's next seq, encodes the
//! `message` event once and queues the same bytes for every member, under the room's lock so
//! every member gets a room's events in seq order (Natter's outbox reorders instead).

use crate::ws::Peer;
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Serialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub guest: bool,
}

impl User {
    pub fn token(&self) -> String {
        format!("floor-{}", self.id)
    }
}

/// A room as `room.create` and `room.join` describe it.
#[derive(Serialize)]
pub struct RoomView<'a> {
    pub id: u64,
    pub name: &'a str,
    pub kind: &'static str,
    pub member_count: usize,
    pub last_seq: u64,
    pub joined: bool,
}

struct Room {
    name: String,
    last_seq: u64,
    members: Vec<Arc<Peer>>,
}

#[derive(Default)]
pub struct State {
    users: Mutex<HashMap<String, Arc<User>>>,
    by_token: Mutex<HashMap<String, Arc<User>>>,
    rooms: Mutex<HashMap<u64, Arc<Mutex<Room>>>>,
    next_user: AtomicU64,
    next_room: AtomicU64,
    next_message: AtomicU64,
}

/// A lock that survives a panicked holder (there is nothing to repair in this state).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The message of a send, as natter encodes it (docs/protocol.md, `message`).
#[derive(Serialize)]
struct Message<'a> {
    id: u64,
    room: u64,
    seq: u64,
    sender: &'a User,
    body: &'a str,
    ts: u64,
    client_id: &'a str,
}

impl State {
    /// The user of this name, made on first use.
    pub fn user(&self, name: &str) -> Arc<User> {
        let mut users = lock(&self.users);
        if let Some(user) = users.get(name) {
            return user.clone();
        }
        let user = Arc::new(User {
            id: self.next_user.fetch_add(1, Ordering::Relaxed) + 1,
            name: name.to_string(),
            guest: false,
        });
        users.insert(name.to_string(), user.clone());
        lock(&self.by_token).insert(user.token(), user.clone());
        user
    }

    pub fn user_for_token(&self, token: &str) -> Option<Arc<User>> {
        lock(&self.by_token).get(token).cloned()
    }

    fn room(&self, id: u64) -> Option<Arc<Mutex<Room>>> {
        lock(&self.rooms).get(&id).cloned()
    }

    /// A new room with `peer` in it; its view as JSON.
    pub fn create(&self, name: &str, peer: &Arc<Peer>) -> String {
        let id = self.next_room.fetch_add(1, Ordering::Relaxed) + 1;
        let room = Room {
            name: name.to_string(),
            last_seq: 0,
            members: vec![peer.clone()],
        };
        let view = view(id, &room);
        lock(&self.rooms).insert(id, Arc::new(Mutex::new(room)));
        peer.joined(id);
        view
    }

    /// Adds `peer` to room `id`; its view as JSON, or None for an unknown room.
    pub fn join(&self, id: u64, peer: &Arc<Peer>) -> Option<String> {
        let room = self.room(id)?;
        let mut room = lock(&room);
        if peer.joined(id) {
            room.members.push(peer.clone());
        }
        Some(view(id, &room))
    }

    /// Stores nothing: gives the message its seq, queues its event for every member, returns
    /// the message JSON for the ack. None: unknown room, or `peer` is not in it.
    pub fn send(
        &self,
        id: u64,
        peer: &Arc<Peer>,
        sender: &User,
        body: &str,
        client_id: &str,
    ) -> Option<Bytes> {
        if !peer.is_member(id) {
            return None;
        }
        let room = self.room(id)?;
        let mut room = lock(&room);
        room.last_seq += 1;
        let message = Message {
            id: self.next_message.fetch_add(1, Ordering::Relaxed) + 1,
            room: id,
            seq: room.last_seq,
            sender,
            body,
            ts: now_millis(),
            client_id,
        };
        let message = serde_json::to_vec(&message).ok()?;
        let mut event = Vec::with_capacity(message.len() + 30);
        event.extend_from_slice(br#"{"type":"message","data":"#);
        event.extend_from_slice(&message);
        event.push(b'}');
        let event = Bytes::from(event);
        for member in &room.members {
            member.deliver(event.clone());
        }
        Some(Bytes::from(message))
    }

    /// `peer` is gone: out of every room it was in.
    pub fn leave_all(&self, peer: &Arc<Peer>) {
        for id in peer.rooms() {
            if let Some(room) = self.room(id) {
                lock(&room).members.retain(|m| !Arc::ptr_eq(m, peer));
            }
        }
    }
}

fn view(id: u64, room: &Room) -> String {
    serde_json::to_string(&RoomView {
        id,
        name: &room.name,
        kind: "public",
        member_count: room.members.len(),
        last_seq: room.last_seq,
        joined: true,
    })
    .unwrap_or_default()
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
