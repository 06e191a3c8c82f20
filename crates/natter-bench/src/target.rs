//! What is under test: which server and protocol (`TargetKind`), where it listens, and the
//! rooms a scenario uses there (`RoomRef`: a bench-side key plus the server's own room handle).

use std::fmt;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// The server and protocol a run speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// Natter, native protocol on `/ws` (accounts over HTTP, rooms by id, acks per send).
    Natter,
    /// Natter's Socket.IO endpoint `/socket.io/` (the mapping in `proto::natter_sio`).
    NatterSio,
    /// The Express + Socket.IO 4 peer in `bench/peers/socketio` (events `join`, `chat`).
    SioPeer,
    /// The plain `ws` peer in `bench/peers/ws` (JSON frames `join`, `chat`).
    WsPeer,
    /// The physical floor in `bench/peers/floor`: Natter's native frames and acks on `/ws`,
    /// none of its chat logic or storage (the denominator of the floor ratios).
    Floor,
}

impl TargetKind {
    /// Natter targets need accounts and answer every send with an ack.
    pub fn is_natter(self) -> bool {
        matches!(
            self,
            TargetKind::Natter | TargetKind::NatterSio | TargetKind::Floor
        )
    }

    /// The WebSocket path to open.
    pub fn ws_path(self) -> &'static str {
        match self {
            TargetKind::Natter | TargetKind::Floor => "/ws",
            TargetKind::NatterSio | TargetKind::SioPeer => "/socket.io/?EIO=4&transport=websocket",
            TargetKind::WsPeer => "/",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Natter => "natter",
            TargetKind::NatterSio => "natter-sio",
            TargetKind::SioPeer => "sio-peer",
            TargetKind::WsPeer => "ws-peer",
            TargetKind::Floor => "floor",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A server to load: its kind and `host:port`.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: TargetKind,
    pub host_port: String,
}

impl Target {
    /// Accepts `http://127.0.0.1:3000`, `ws://127.0.0.1:3000/` or `127.0.0.1:3000`.
    pub fn new(kind: TargetKind, url: &str) -> Self {
        let rest = url
            .trim_start_matches("http://")
            .trim_start_matches("ws://")
            .trim_end_matches('/');
        let host_port = rest.split('/').next().unwrap_or(rest).to_string();
        Target { kind, host_port }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.host_port, self.kind.ws_path())
    }
}

/// How the server names a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireRoom {
    /// Natter: the room id.
    Id(i64),
    /// The peers: the room's name.
    Name(String),
}

/// A room of a scenario.
#[derive(Debug, Clone)]
pub struct RoomRef {
    /// Index of the room in the scenario (0..rooms), used by the delivery checks.
    pub key: u32,
    pub wire: WireRoom,
}

/// A signed-in account: what a connection authenticates with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub password: String,
    pub token: String,
}
