//! One `/ws` connection of the floor: frames in through natter's decoder, requests answered
//! (`auth`, `room.create`, `room.join`, `message.send`), and everything ready to go out (acks
//! and the events other connections queued) written with one `writev` per batch of up to 256
//! frames, as natter's pump does. Each connection is one task; its [`Peer`] is the bounded
//! queue other connections' sends fill.

use crate::rooms::{State, User};
use bytes::Bytes;
use natter_server::transport::wsframe::{self, opcode, Decoder, Frame, ServerHeader};
use serde::Deserialize;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// natter's defaults: the largest frame, the outbound queue, the batch of one `writev`.
const MAX_FRAME_BYTES: usize = 64 * 1024;
const OUTBOUND_QUEUE: usize = 1024;
const MAX_BATCH: usize = 256;
/// natter's close code for a full outbound queue.
const SLOW_CONSUMER: u16 = 4008;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection as other connections see it: its queue of encoded events.
#[derive(Default)]
pub struct Peer {
    queue: Mutex<VecDeque<Bytes>>,
    notify: Notify,
    /// Set when the queue overflowed: the connection closes with 4008.
    closed: AtomicBool,
    rooms: Mutex<Vec<u64>>,
}

impl Peer {
    pub fn deliver(&self, frame: Bytes) {
        {
            let mut queue = lock(&self.queue);
            if queue.len() >= OUTBOUND_QUEUE {
                self.closed.store(true, Ordering::Release);
            } else {
                queue.push_back(frame);
            }
        }
        self.notify.notify_one();
    }

    /// Records membership of room `id`; false if it was a member already.
    pub fn joined(&self, id: u64) -> bool {
        let mut rooms = lock(&self.rooms);
        match rooms.binary_search(&id) {
            Ok(_) => false,
            Err(at) => {
                rooms.insert(at, id);
                true
            }
        }
    }

    pub fn is_member(&self, id: u64) -> bool {
        lock(&self.rooms).binary_search(&id).is_ok()
    }

    pub fn rooms(&self) -> Vec<u64> {
        lock(&self.rooms).clone()
    }

    fn take(&self, batch: &mut Vec<(u8, Bytes)>) {
        let mut queue = lock(&self.queue);
        while batch.len() < MAX_BATCH {
            match queue.pop_front() {
                Some(frame) => batch.push((opcode::TEXT, frame)),
                None => break,
            }
        }
    }
}

/// A request frame: every field any of the four requests has.
#[derive(Deserialize)]
struct Request<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "ref", default, borrow)]
    reference: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Data<'a>,
}

#[derive(Deserialize, Default)]
struct Data<'a> {
    #[serde(default, borrow)]
    token: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    room: Option<u64>,
    #[serde(default, borrow)]
    body: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    client_id: Option<Cow<'a, str>>,
}

thread_local! {
    /// Where reads land before the decoder takes them (one per thread, not per connection).
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

struct Conn {
    tcp: TcpStream,
    decoder: Decoder,
    frames: VecDeque<Frame>,
    user: Option<Arc<User>>,
    peer: Arc<Peer>,
}

pub async fn run(tcp: TcpStream, early: Vec<u8>, state: Arc<State>) {
    let mut conn = Conn {
        tcp,
        decoder: Decoder::new(MAX_FRAME_BYTES),
        frames: VecDeque::new(),
        user: None,
        peer: Arc::new(Peer::default()),
    };
    let code = conn.serve(&early, &state).await;
    state.leave_all(&conn.peer);
    if let Some(code) = code {
        let payload = Bytes::from(wsframe::close_payload(code, ""));
        let _ = write_batch(&mut conn.tcp, &[(opcode::CLOSE, payload)]).await;
    }
    let _ = conn.tcp.shutdown().await;
}

/// What the loop does after reading: go on, or end (with a close frame's code, or none).
enum Read {
    More,
    End(Option<u16>),
}

impl Conn {
    /// The connection's loop; returns the close code to send, if any.
    async fn serve(&mut self, early: &[u8], state: &State) -> Option<u16> {
        if let Err(e) = self.decoder.feed(early, &mut self.frames) {
            return Some(e.close_code());
        }
        let mut batch: Vec<(u8, Bytes)> = Vec::new();
        loop {
            if let Read::End(code) = self.try_read() {
                return code;
            }
            while let Some(frame) = self.frames.pop_front() {
                match frame {
                    Frame::Text(text) => match self.request(&text, state) {
                        Ok(reply) => batch.push((opcode::TEXT, reply)),
                        Err((reply, code)) => {
                            batch.push((opcode::TEXT, reply));
                            let _ = write_batch(&mut self.tcp, &batch).await;
                            return Some(code);
                        }
                    },
                    Frame::Ping(payload) => batch.push((opcode::PONG, Bytes::from(payload))),
                    Frame::Close(_) => return Some(1000),
                    Frame::Binary | Frame::Pong => {}
                }
            }
            self.peer.take(&mut batch);
            if !batch.is_empty() {
                if write_batch(&mut self.tcp, &batch).await.is_err() {
                    return None;
                }
                batch.clear();
                continue;
            }
            if self.peer.closed.load(Ordering::Acquire) {
                return Some(SLOW_CONSUMER);
            }
            tokio::select! {
                ready = self.tcp.readable() => if ready.is_err() { return None },
                () = self.peer.notify.notified() => {}
            }
        }
    }

    /// Reads what the socket has without waiting and decodes it.
    fn try_read(&mut self) -> Read {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            match self.tcp.try_read(&mut scratch) {
                Ok(0) => Read::End(None),
                Ok(n) => match self.decoder.feed(&scratch[..n], &mut self.frames) {
                    Ok(()) => Read::More,
                    Err(e) => Read::End(Some(e.close_code())),
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Read::More,
                Err(_) => Read::End(None),
            }
        })
    }

    /// Answers one request: the reply, or the reply and the close code that follows it.
    fn request(&mut self, text: &str, state: &State) -> Result<Bytes, (Bytes, u16)> {
        let Ok(request) = serde_json::from_str::<Request<'_>>(text) else {
            return Ok(error("", "invalid_json", "not a request"));
        };
        let reference = request.reference.as_deref().unwrap_or("");
        let data = request.data;
        let Some(user) = self.user.clone() else {
            let user = match (request.kind.as_ref(), data.token.as_deref()) {
                ("auth", Some(token)) => state.user_for_token(token),
                _ => None,
            };
            let Some(user) = user else {
                return Err((error(reference, "unauthenticated", "auth first"), 4001));
            };
            let body = serde_json::json!({
                "user": &*user, "rooms": [], "read": {}, "reset": [], "online": [],
                "limits": {"max_message_chars": 4000, "max_frame_bytes": MAX_FRAME_BYTES,
                           "rate_per_sec": 1_000_000, "rate_burst": 1_000_000},
            });
            self.user = Some(user);
            return Ok(ok(reference, body.to_string().as_bytes()));
        };
        match request.kind.as_ref() {
            "room.create" => {
                let view = state.create(data.name.as_deref().unwrap_or("room"), &self.peer);
                Ok(ok(reference, format!(r#"{{"room":{view}}}"#).as_bytes()))
            }
            "room.join" => match data.room.and_then(|id| state.join(id, &self.peer)) {
                Some(view) => Ok(ok(reference, format!(r#"{{"room":{view}}}"#).as_bytes())),
                None => Ok(error(reference, "unknown_room", "no such room")),
            },
            "message.send" => {
                let (Some(room), Some(body), Some(client_id)) =
                    (data.room, data.body.as_deref(), data.client_id.as_deref())
                else {
                    return Ok(error(reference, "invalid_request", "room, body, client_id"));
                };
                match state.send(room, &self.peer, &user, body, client_id) {
                    Some(message) => {
                        let mut data = Vec::with_capacity(message.len() + 32);
                        data.extend_from_slice(br#"{"message":"#);
                        data.extend_from_slice(&message);
                        data.extend_from_slice(br#","duplicate":false}"#);
                        Ok(ok(reference, &data))
                    }
                    None => Ok(error(reference, "not_member", "join the room first")),
                }
            }
            "ping" => Ok(ok(reference, b"{}")),
            _ => Ok(error(reference, "unknown_type", "not served by the floor")),
        }
    }
}

fn ok(reference: &str, data: &[u8]) -> Bytes {
    let reference = serde_json::to_string(reference).unwrap_or_default();
    let mut frame = Vec::with_capacity(data.len() + reference.len() + 24);
    frame.extend_from_slice(br#"{"type":"ok","ref":"#);
    frame.extend_from_slice(reference.as_bytes());
    frame.extend_from_slice(br#","data":"#);
    frame.extend_from_slice(data);
    frame.push(b'}');
    Bytes::from(frame)
}

fn error(reference: &str, code: &str, message: &str) -> Bytes {
    let frame = serde_json::json!({
        "type": "error", "ref": reference, "error": {"code": code, "message": message}
    });
    Bytes::from(frame.to_string())
}

/// Writes a batch of frames with as few `writev` calls as the socket allows.
async fn write_batch(tcp: &mut TcpStream, batch: &[(u8, Bytes)]) -> std::io::Result<()> {
    let headers: Vec<ServerHeader> = batch
        .iter()
        .map(|(op, payload)| ServerHeader::new(*op, payload.len()))
        .collect();
    let parts: Vec<&[u8]> = headers
        .iter()
        .zip(batch)
        .flat_map(|(header, (_, payload))| [header.as_slice(), &payload[..]])
        .collect();
    let (mut part, mut offset) = (0usize, 0usize);
    while part < parts.len() {
        let mut slices = Vec::with_capacity(parts.len() - part);
        slices.push(IoSlice::new(&parts[part][offset..]));
        slices.extend(parts[part + 1..].iter().map(|p| IoSlice::new(p)));
        let mut written = tcp.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while part < parts.len() && written >= parts[part].len() - offset {
            written -= parts[part].len() - offset;
            part += 1;
            offset = 0;
        }
        offset += written;
    }
    Ok(())
}
