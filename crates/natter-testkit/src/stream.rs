//! A room as a client builds it from its stream (docs/protocol.md section 6): messages, the
//! edits, deletes, reactions and thread replies applied to them, and the room events
//! (joins, leaves, settings, roles, mutes, bans, kicks) applied to the room. Tests compare the view
//! of a client that stayed online, of one that resumed, and `history`'s current state.

use crate::client::Client;
use crate::WAIT;
use serde_json::Value;
use std::collections::BTreeMap;

/// The events that are entries of a room's stream.
pub const STREAM_EVENTS: [&str; 5] = [
    "message",
    "message_edited",
    "message_deleted",
    "reaction",
    "room_event",
];

/// What room events set, as a client keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomState {
    pub name: Option<String>,
    pub topic: String,
    pub description: String,
    pub archived: bool,
    /// Roles given by `role` events, by user id.
    pub roles: BTreeMap<i64, String>,
    /// Mutes in force, by user id: until when.
    pub muted: BTreeMap<i64, i64>,
    pub banned: std::collections::BTreeSet<i64>,
    /// Users kicked or banned, in the order it happened.
    pub removed: Vec<i64>,
    /// Membership as the stream told it, by user id: true after a `join`, false after a
    /// `leave`, `kick` or `ban` (users the stream said nothing of are absent).
    pub members: BTreeMap<i64, bool>,
}

/// One message as shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    pub sender: i64,
    pub body: String,
    pub deleted: bool,
    /// Ignored once deleted (a tombstone shows no edit).
    pub edited_at: Option<i64>,
    /// Emoji in order of first use, each with the ids of who put it there.
    pub reactions: Vec<(String, Vec<i64>)>,
    pub replies: u64,
    pub last_reply_ts: Option<i64>,
    pub thread: Option<i64>,
    pub also_room: bool,
    pub mentions: Vec<i64>,
    pub mentions_room: bool,
}

/// A room's messages by seq, and the last stream seq applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub messages: BTreeMap<i64, Shown>,
    pub last_seq: i64,
    pub room: RoomState,
    /// The room events applied, as (seq, op), in order: the "bob joined" lines of a timeline.
    pub events: Vec<(i64, String)>,
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn shown(m: &Value) -> Shown {
    let reactions = m["reactions"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let users = r["users"]
                        .as_array()
                        .map(|us| us.iter().filter_map(|u| int(&u["id"])).collect())
                        .unwrap_or_default();
                    (r["emoji"].as_str().unwrap_or_default().to_string(), users)
                })
                .collect()
        })
        .unwrap_or_default();
    Shown {
        sender: int(&m["sender"]["id"]).unwrap_or_default(),
        body: m["body"].as_str().unwrap_or_default().to_string(),
        deleted: m["deleted"].as_bool().unwrap_or(false),
        edited_at: int(&m["edited_at"]),
        reactions,
        replies: m["replies"].as_u64().unwrap_or(0),
        last_reply_ts: int(&m["last_reply_ts"]),
        thread: int(&m["thread"]),
        also_room: m["also_room"].as_bool().unwrap_or(false),
        mentions: m["mentions"]
            .as_array()
            .map(|a| a.iter().filter_map(int).collect())
            .unwrap_or_default(),
        mentions_room: m["mentions_room"].as_bool().unwrap_or(false),
    }
}

impl View {
    /// The view `history` pages give (messages in their current state, and room events if
    /// the pages hold them: `events`).
    pub fn from_messages<'a>(messages: impl IntoIterator<Item = &'a Value>) -> View {
        let mut view = View::default();
        for m in messages {
            let Some(seq) = int(&m["seq"]) else {
                continue;
            };
            if m["change"].is_object() {
                view.apply("room_event", m);
            } else {
                view.messages.insert(seq, shown(m));
            }
        }
        view
    }

    /// The room events after `seq`, as (seq, op).
    pub fn events_after(&self, seq: i64) -> Vec<(i64, String)> {
        self.events
            .iter()
            .filter(|(s, _)| *s > seq)
            .cloned()
            .collect()
    }

    /// Applies one stream event (`kind`, `data`) as a client does; false if it is not one.
    pub fn apply(&mut self, kind: &str, data: &Value) -> bool {
        if !STREAM_EVENTS.contains(&kind) {
            return false;
        }
        let Some(seq) = int(&data["seq"]) else {
            return false;
        };
        self.last_seq = self.last_seq.max(seq);
        let target = int(&data["change"]["target"]);
        match (kind, target) {
            ("message", _) => {
                let m = shown(data);
                if let Some(parent) = m.thread.and_then(|p| self.messages.get_mut(&p)) {
                    parent.replies = parent.replies.max(m.replies);
                    let ts = int(&data["ts"]);
                    parent.last_reply_ts = parent.last_reply_ts.max(ts);
                }
                self.messages.insert(seq, m);
            }
            ("message_edited", Some(t)) => {
                if let Some(m) = self.messages.get_mut(&t) {
                    m.body = data["body"].as_str().unwrap_or_default().to_string();
                    m.edited_at = int(&data["ts"]);
                }
            }
            ("message_deleted", Some(t)) => {
                if let Some(m) = self.messages.get_mut(&t) {
                    m.deleted = true;
                    m.body.clear();
                    m.reactions.clear();
                }
            }
            ("reaction", Some(t)) => {
                let emoji = data["change"]["emoji"].as_str().unwrap_or_default();
                let add = data["change"]["add"].as_bool().unwrap_or(false);
                let who = int(&data["sender"]["id"]).unwrap_or_default();
                if let Some(m) = self.messages.get_mut(&t) {
                    match m.reactions.iter_mut().find(|(e, _)| e == emoji) {
                        Some((_, users)) if add && !users.contains(&who) => users.push(who),
                        Some(_) if add => {}
                        Some((_, users)) => users.retain(|u| *u != who),
                        None if add => m.reactions.push((emoji.to_string(), vec![who])),
                        None => {}
                    }
                    m.reactions.retain(|(_, users)| !users.is_empty());
                }
            }
            ("room_event", _) => {
                let op = data["change"]["op"].as_str().unwrap_or_default();
                self.events.push((seq, op.to_string()));
                self.apply_room_event(&data["change"]);
            }
            _ => {}
        }
        true
    }

    fn apply_room_event(&mut self, change: &Value) {
        let room = &mut self.room;
        let user = int(&change["user"]["id"]).unwrap_or_default();
        let text = |v: &Value| v.as_str().map(str::to_string);
        match change["op"].as_str().unwrap_or_default() {
            "join" => {
                room.members.insert(user, true);
            }
            "leave" => {
                room.members.insert(user, false);
                room.roles.remove(&user);
                room.muted.remove(&user);
            }
            "kick" => {
                room.removed.push(user);
                room.members.insert(user, false);
            }
            "ban" => {
                room.removed.push(user);
                room.members.insert(user, false);
                room.banned.insert(user);
                room.muted.remove(&user);
                room.roles.remove(&user);
            }
            "unban" => {
                room.banned.remove(&user);
            }
            "mute" => {
                room.muted
                    .insert(user, int(&change["until"]).unwrap_or_default());
            }
            "unmute" => {
                room.muted.remove(&user);
            }
            "role" => {
                room.roles
                    .insert(user, text(&change["role"]).unwrap_or_default());
            }
            "settings" => {
                if let Some(name) = text(&change["name"]) {
                    room.name = Some(name);
                }
                if let Some(topic) = text(&change["topic"]) {
                    room.topic = topic;
                }
                if let Some(description) = text(&change["description"]) {
                    room.description = description;
                }
                if let Some(archived) = change["archived"].as_bool() {
                    room.archived = archived;
                }
            }
            _ => {}
        }
    }

    /// Forgets the membership the stream told so far: two clients that joined a room at
    /// different times saw different joins before the point they then follow together from.
    pub fn from_here(&mut self) {
        self.room.members.clear();
        self.events.clear();
    }

    /// The room's timeline as the client shows it: messages not only in a thread.
    pub fn timeline(&self) -> BTreeMap<i64, Shown> {
        self.normalized(|m| m.thread.is_none() || m.also_room)
    }

    /// The replies of one thread.
    pub fn thread(&self, parent: i64) -> BTreeMap<i64, Shown> {
        self.normalized(|m| m.thread == Some(parent))
    }

    fn normalized(&self, keep: impl Fn(&Shown) -> bool) -> BTreeMap<i64, Shown> {
        self.messages
            .iter()
            .filter(|(_, m)| keep(m))
            .map(|(seq, m)| {
                let mut m = m.clone();
                if m.deleted {
                    m.edited_at = None;
                }
                (*seq, m)
            })
            .collect()
    }

    /// Applies `client`'s stream events of `room` (buffered ones first) until the view has
    /// reached `until`; panics if they stop coming for `WAIT`.
    pub async fn follow(&mut self, client: &mut Client, room: i64, until: i64) {
        let buffered: Vec<Value> = client.events.drain(..).collect();
        for frame in buffered {
            if frame["data"]["room"] == room
                && self.apply(frame["type"].as_str().unwrap_or_default(), &frame["data"])
            {
                continue;
            }
            client.events.push_back(frame);
        }
        while self.last_seq < until {
            let frame = client
                .read_within(WAIT)
                .await
                .unwrap_or_else(|| panic!("stream of room {room} stopped at {}", self.last_seq));
            let applied = frame["data"]["room"] == room
                && self.apply(frame["type"].as_str().unwrap_or_default(), &frame["data"]);
            if !applied {
                client.events.push_back(frame);
            }
        }
    }
}

/// The room's current state from `history` (every page of the timeline with its room events,
/// and each thread).
pub async fn history_view(client: &mut Client, room: i64) -> View {
    let mut all: Vec<Value> = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut data = serde_json::json!({"room": room, "limit": 100, "events": true});
        if let Some(b) = before {
            data["before"] = b.into();
        }
        let page = client.ok("history", data).await;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        before = messages.first().and_then(|m| int(&m["seq"]));
        all.splice(0..0, messages);
        if page["has_more"] != true {
            break;
        }
    }
    let parents: Vec<i64> = all
        .iter()
        .filter(|m| m["replies"].as_u64().unwrap_or(0) > 0 && m["thread"].is_null())
        .filter(|m| m["change"].is_null())
        .filter_map(|m| int(&m["seq"]))
        .collect();
    for parent in parents {
        let page = client
            .ok(
                "history",
                serde_json::json!({"room": room, "thread": parent, "limit": 100}),
            )
            .await;
        all.extend(page["messages"].as_array().cloned().unwrap_or_default());
    }
    View::from_messages(&all)
}
