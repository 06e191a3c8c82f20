//! The load generator's own WebSocket client (RFC 6455, client side): the opening handshake,
//! masked frames out, and a frame reader that parses in place from one reusable buffer.
//!
//! It replaced tokio-tungstenite on the bench's receive path, where the split stream's lock,
//! the zeroing of the read buffer on every read and a copy per frame cost more CPU per
//! delivery than the servers under test spent: with one core for the load generator, its own
//! cost per delivery is the ceiling of every fanout figure.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::BenchError;

/// Frame opcodes (RFC 6455 section 5.2).
mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// Bytes read from the socket at a time (the buffer grows for a larger frame).
const READ_CHUNK: usize = 4 * 1024;

/// The largest message the bench accepts (a server's history page is far smaller).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The largest response head accepted during the handshake.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// One whole message or control frame from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Pong,
    /// The server's close frame: its code (if any) and reason.
    Close(Option<(u16, String)>),
}

/// Why reading ended.
#[derive(Debug)]
pub enum ReadEnd {
    /// The peer closed the TCP connection (no close frame).
    Eof,
    Io(io::Error),
    /// The server broke the protocol (a masked frame, a bad length, invalid UTF-8, ...).
    Protocol(String),
}

impl std::fmt::Display for ReadEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadEnd::Eof => f.write_str("connection ended"),
            ReadEnd::Io(e) => write!(f, "error: {e}"),
            ReadEnd::Protocol(why) => write!(f, "protocol error: {why}"),
        }
    }
}

impl From<ReadEnd> for BenchError {
    fn from(end: ReadEnd) -> Self {
        match end {
            ReadEnd::Io(e) => BenchError::Io(e),
            other => BenchError::Protocol(other.to_string()),
        }
    }
}

/// Reads frames from a byte stream: bytes land in `buf[end..]`, whole frames are parsed from
/// `buf[start..end]` and handed out as borrowed slices, so a small frame costs no copy and no
/// allocation. The buffer is zeroed once, when it grows, never per read.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A fragmented message being put together: its opcode and the bytes so far.
    fragments: Option<(u8, Vec<u8>)>,
    /// `fragments` holds a whole message, handed out by the last call.
    fragments_done: bool,
}

/// Where the next frame's payload is.
enum Ready {
    InBuffer { opcode: u8, from: usize, to: usize },
    Fragments,
}

/// A parsed frame header: FIN, opcode, header length and payload length.
struct Header {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

fn parse_header(bytes: &[u8]) -> Result<Option<Header>, ReadEnd> {
    let [b0, b1, rest @ ..] = bytes else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err(ReadEnd::Protocol("the server masked a frame".into()));
    }
    if b0 & 0x70 != 0 {
        return Err(ReadEnd::Protocol("reserved bits set".into()));
    }
    let (extra, payload_len) = match b1 & 0x7F {
        126 => match rest {
            [a, b, ..] => (2, usize::from(u16::from_be_bytes([*a, *b]))),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(len) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(len);
                let len = u64::from_be_bytes(be);
                (8, usize::try_from(len).unwrap_or(usize::MAX))
            }
            None => return Ok(None),
        },
        n => (0, usize::from(n)),
    };
    if payload_len > MAX_MESSAGE {
        return Err(ReadEnd::Protocol(format!("a {payload_len}-byte frame")));
    }
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0F,
        header_len: 2 + extra,
        payload_len,
    }))
}

impl FrameReader {
    /// A reader whose first bytes (read past a handshake response) are `leftover`.
    pub fn new(leftover: &[u8]) -> FrameReader {
        let mut buf = vec![0u8; READ_CHUNK.max(leftover.len())];
        buf[..leftover.len()].copy_from_slice(leftover);
        FrameReader {
            buf,
            start: 0,
            end: leftover.len(),
            fragments: None,
            fragments_done: false,
        }
    }

    /// The next whole frame. Cancel-safe: bytes read are kept in the buffer.
    pub async fn next<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<Frame<'_>, ReadEnd> {
        let ready = loop {
            if let Some(ready) = self.take_frame()? {
                break ready;
            }
            self.read_more(io).await?;
        };
        let (opcode, payload): (u8, &[u8]) = match ready {
            Ready::InBuffer { opcode, from, to } => (opcode, &self.buf[from..to]),
            Ready::Fragments => match &self.fragments {
                Some((opcode, bytes)) => (*opcode, bytes.as_slice()),
                None => return Err(ReadEnd::Protocol("no fragmented message".into())),
            },
        };
        Ok(match opcode {
            opcode::TEXT => Frame::Text(
                std::str::from_utf8(payload)
                    .map_err(|_| ReadEnd::Protocol("a text frame is not UTF-8".into()))?,
            ),
            opcode::BINARY => Frame::Binary(payload),
            opcode::PING => Frame::Ping(payload),
            opcode::PONG => Frame::Pong,
            opcode::CLOSE => Frame::Close(match payload {
                [a, b, reason @ ..] => Some((
                    u16::from_be_bytes([*a, *b]),
                    String::from_utf8_lossy(reason).into_owned(),
                )),
                _ => None,
            }),
            other => return Err(ReadEnd::Protocol(format!("opcode {other}"))),
        })
    }

    /// Takes the next complete frame from the buffer, if there is one; a fragment is moved
    /// into `fragments` and parsing goes on.
    fn take_frame(&mut self) -> Result<Option<Ready>, ReadEnd> {
        // A finished fragmented message was handed out by the previous call.
        if self.fragments_done {
            self.fragments = None;
            self.fragments_done = false;
        }
        loop {
            let Some(header) = parse_header(&self.buf[self.start..self.end])? else {
                return Ok(None);
            };
            let total = header.header_len + header.payload_len;
            if self.end - self.start < total {
                return Ok(None);
            }
            let from = self.start + header.header_len;
            let to = from + header.payload_len;
            self.start += total;
            let control = header.opcode & 0x8 != 0;
            if control || (header.fin && header.opcode != opcode::CONTINUATION) {
                if !control && self.fragments.is_some() {
                    return Err(ReadEnd::Protocol(
                        "a new message inside a fragmented one".into(),
                    ));
                }
                return Ok(Some(Ready::InBuffer {
                    opcode: header.opcode,
                    from,
                    to,
                }));
            }
            // A fragment: the first names the opcode, continuations add to it.
            let payload = &self.buf[from..to];
            match (&mut self.fragments, header.opcode) {
                (None, opcode::CONTINUATION) => {
                    return Err(ReadEnd::Protocol("a continuation with no message".into()))
                }
                (None, op) => self.fragments = Some((op, payload.to_vec())),
                (Some(_), op) if op != opcode::CONTINUATION => {
                    return Err(ReadEnd::Protocol(
                        "a new message inside a fragmented one".into(),
                    ))
                }
                (Some((_, bytes)), _) => {
                    if bytes.len() + payload.len() > MAX_MESSAGE {
                        return Err(ReadEnd::Protocol("a fragmented message too large".into()));
                    }
                    bytes.extend_from_slice(payload);
                }
            }
            if header.fin {
                // Handed out now, dropped on the next call.
                self.fragments_done = true;
                return Ok(Some(Ready::Fragments));
            }
        }
    }

    /// Reads more bytes, first making room (moving a partial frame to the front, or growing
    /// the buffer for a frame larger than it).
    async fn read_more<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<(), ReadEnd> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            let pending = self.end - self.start;
            let needed = match parse_header(&self.buf[self.start..self.end])? {
                Some(h) => h.header_len + h.payload_len,
                None => pending + 14,
            };
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.start = 0;
                self.end = pending;
            }
            if needed > self.buf.len() {
                self.buf.resize(needed.max(READ_CHUNK), 0);
            }
        }
        match io.read(&mut self.buf[self.end..]).await {
            Ok(0) => Err(ReadEnd::Eof),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(e) => Err(ReadEnd::Io(e)),
        }
    }
}

/// A frame for the server, before masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    Pong(Vec<u8>),
    /// A close frame with no code.
    Close,
}

/// Appends `frame`, masked with `mask`, to `out` (several frames go out in one write).
pub fn encode_frame(frame: &Outgoing, mask: [u8; 4], out: &mut Vec<u8>) {
    let (op, payload): (u8, &[u8]) = match frame {
        Outgoing::Text(text) => (opcode::TEXT, text.as_bytes()),
        Outgoing::Pong(data) => (opcode::PONG, data),
        Outgoing::Close => (opcode::CLOSE, &[]),
    };
    out.push(0x80 | op);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

/// A mask key per frame (RFC 6455 wants them unpredictable to intermediaries; a load
/// generator on loopback only needs them to vary).
#[derive(Debug)]
pub struct Masks(u64);

impl Masks {
    pub fn new(seed: u64) -> Masks {
        Masks(seed | 1)
    }

    pub fn next_mask(&mut self) -> [u8; 4] {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let [a, b, c, d, ..] = self.0.to_le_bytes();
        [a, b, c, d]
    }
}

/// Performs the opening handshake for `path_and_query` on `host`; returns the bytes read past
/// the response (the first frames, if the server sent any at once).
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    host: &str,
    path_and_query: &str,
    seed: u64,
) -> Result<Vec<u8>, BenchError> {
    let mut masks = Masks::new(seed);
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&masks.next_mask());
    key[4..8].copy_from_slice(&masks.next_mask());
    key[8..12].copy_from_slice(&masks.next_mask());
    key[12..].copy_from_slice(&masks.next_mask());
    let request = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        base64(&key)
    );
    io.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(at) = find(&head, b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > MAX_RESPONSE_HEAD {
            return Err(BenchError::Protocol("handshake response too long".into()));
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(BenchError::Protocol(
                "connection ended during the handshake".into(),
            ));
        }
        head.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]);
    let status = text.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("101") {
        return Err(BenchError::Protocol(format!("handshake refused: {status}")));
    }
    let upgraded = text.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("upgrade")
                && value.trim().eq_ignore_ascii_case("websocket")
        })
    });
    if !upgraded {
        return Err(BenchError::Protocol(
            "handshake response without Upgrade: websocket".into(),
        ));
    }
    Ok(head[end..].to_vec())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | op];
        match payload.len() {
            n @ 0..=125 => out.push(n as u8),
            n @ 126..=0xFFFF => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    /// A reader over `bytes` delivered `step` bytes per read.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let n = self
                .step
                .min(self.bytes.len() - self.at)
                .min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.bytes[at..at + n]);
            self.at += n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    async fn frames_of(bytes: Vec<u8>, step: usize) -> Vec<String> {
        let mut io = Trickle { bytes, at: 0, step };
        let mut reader = FrameReader::new(&[]);
        let mut seen = Vec::new();
        loop {
            match reader.next(&mut io).await {
                Ok(Frame::Text(t)) => seen.push(format!("text:{t}")),
                Ok(Frame::Ping(p)) => seen.push(format!("ping:{}", p.len())),
                Ok(Frame::Close(c)) => seen.push(format!("close:{c:?}")),
                Ok(other) => seen.push(format!("{other:?}")),
                Err(ReadEnd::Eof) => break,
                Err(e) => {
                    seen.push(format!("err:{e}"));
                    break;
                }
            }
        }
        seen
    }

    #[tokio::test]
    async fn frames_are_read_whole_however_the_bytes_arrive() {
        let big = "y".repeat(70_000);
        let mut bytes = server_frame(true, opcode::TEXT, b"hello");
        bytes.extend(server_frame(true, opcode::PING, b"abc"));
        bytes.extend(server_frame(true, opcode::TEXT, "x".repeat(300).as_bytes()));
        bytes.extend(server_frame(true, opcode::TEXT, big.as_bytes()));
        bytes.extend(server_frame(false, opcode::TEXT, b"frag"));
        bytes.extend(server_frame(true, opcode::PING, b""));
        bytes.extend(server_frame(false, opcode::CONTINUATION, b"men"));
        bytes.extend(server_frame(true, opcode::CONTINUATION, b"ted"));
        bytes.extend(server_frame(true, opcode::TEXT, b"after"));
        bytes.extend(server_frame(
            true,
            opcode::CLOSE,
            &[0x03, 0xE9, b'b', b'y', b'e'],
        ));
        for step in [1, 7, 4096, 1 << 20] {
            let seen = frames_of(bytes.clone(), step).await;
            assert_eq!(
                seen,
                vec![
                    "text:hello".to_string(),
                    "ping:3".to_string(),
                    format!("text:{}", "x".repeat(300)),
                    format!("text:{big}"),
                    "ping:0".to_string(),
                    "text:fragmented".to_string(),
                    "text:after".to_string(),
                    "close:Some((1001, \"bye\"))".to_string(),
                ],
                "read {step} bytes at a time"
            );
        }
    }

    #[tokio::test]
    async fn protocol_violations_end_reading_with_a_reason() {
        let masked = vec![0x81, 0x81, 1, 2, 3, 4, b'a' ^ 1];
        let seen = frames_of(masked, 64).await;
        assert_eq!(seen, vec!["err:protocol error: the server masked a frame"]);
        let stray = server_frame(true, opcode::CONTINUATION, b"x");
        let seen = frames_of(stray, 64).await;
        assert_eq!(
            seen,
            vec!["err:protocol error: a continuation with no message"]
        );
        let not_utf8 = server_frame(true, opcode::TEXT, &[0xFF, 0xFE]);
        let seen = frames_of(not_utf8, 64).await;
        assert_eq!(seen, vec!["err:protocol error: a text frame is not UTF-8"]);
    }

    #[test]
    fn outgoing_frames_are_masked_and_sized() {
        let mut out = Vec::new();
        encode_frame(&Outgoing::Text("hi".into()), [1, 2, 3, 4], &mut out);
        assert_eq!(out, vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
        out.clear();
        encode_frame(&Outgoing::Text("z".repeat(200)), [0, 0, 0, 0], &mut out);
        assert_eq!(&out[..4], &[0x81, 0x80 | 126, 0, 200]);
        assert_eq!(out.len(), 4 + 4 + 200);
        out.clear();
        encode_frame(&Outgoing::Close, [9, 9, 9, 9], &mut out);
        assert_eq!(out, vec![0x88, 0x80, 9, 9, 9, 9]);
    }

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
