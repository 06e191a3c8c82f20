//! Reading WebSocket frames from the server: `FrameReader` parses whole messages and control
//! frames in place from one reusable buffer, and says why reading ended (`ReadEnd`).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::opcode;
use crate::error::BenchError;

/// Bytes read from the socket at a time (the buffer grows for a larger frame).
const READ_CHUNK: usize = 4 * 1024;

/// The largest message the bench accepts (a server's history page is far smaller).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

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
