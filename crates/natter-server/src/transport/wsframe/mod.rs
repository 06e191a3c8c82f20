//! RFC 6455 framing for the server side of `/ws`, without I/O: the handshake's accept key,
//! the decoder for (masked) client frames with fragment reassembly and every protocol check
//! a server must make, and the headers of (unmasked) server frames.
//!
//! The decoder keeps bytes only while a frame is incomplete: a connection between frames
//! holds no buffer. Errors carry the close code the connection ends with (1002 protocol
//! error, 1007 bad UTF-8, 1009 too big).

use base64::Engine;
use natter_core::close;
use sha1::{Digest, Sha1};
use std::collections::VecDeque;

/// The GUID of RFC 6455 section 1.3, appended to the client's key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Close code for a protocol error.
pub const PROTOCOL_ERROR: u16 = natter_core::close::PROTOCOL_ERROR;
/// Close code for a text frame that is not UTF-8.
pub const BAD_DATA: u16 = natter_core::close::BAD_DATA;

/// The longest header a client frame can have (2 + 8 length + 4 mask).
const MAX_CLIENT_HEADER: usize = 14;
/// The longest payload of a control frame.
const MAX_CONTROL_PAYLOAD: usize = 125;

pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(sha1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Whether a `Sec-WebSocket-Key` is what RFC 6455 asks: base64 of 16 bytes.
pub fn valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|k| k.len() == 16)
}

/// A whole message (or control frame) from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A text message, reassembled and checked to be UTF-8.
    Text(String),
    /// A binary message (its payload is not kept: the protocol refuses it).
    Binary,
    Ping(Vec<u8>),
    Pong,
    /// The client's close frame: its code, if it sent one.
    Close(Option<u16>),
}

/// Why the decoder gave up; the connection closes with [`DecodeError::close_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A frame breaks RFC 6455 (unmasked, reserved bits or opcodes, bad fragmentation, ...).
    Protocol(&'static str),
    /// A text message or close reason that is not UTF-8.
    BadUtf8,
    /// A frame or reassembled message over the size limit.
    TooBig,
}

impl DecodeError {
    pub fn close_code(self) -> u16 {
        match self {
            DecodeError::Protocol(_) => PROTOCOL_ERROR,
            DecodeError::BadUtf8 => BAD_DATA,
            DecodeError::TooBig => close::TOO_BIG,
        }
    }
}

/// A fragmented message being put together.
#[derive(Debug)]
struct Assembly {
    /// Text (kept, checked at the end) or binary (only counted).
    text: bool,
    data: Vec<u8>,
    len: usize,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header length in bytes (payload starts here).
    start: usize,
    payload: usize,
}

/// Incremental decoder of one connection's client frames.
#[derive(Debug)]
pub struct Decoder {
    /// The largest payload of a frame, and of a reassembled message.
    max_message: usize,
    /// Bytes of an incomplete frame (empty and unallocated between frames).
    partial: Vec<u8>,
    /// A fragmented message in progress (boxed: rare, and every connection has a decoder).
    assembly: Option<Box<Assembly>>,
}

impl Decoder {
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            partial: Vec::new(),
            assembly: None,
        }
    }

    /// Changes the size limit for frames (and reassembled messages) from the next header on:
    /// `/ws` lowers it until the connection has authenticated. A frame over it is refused
    /// from its header, before any of its payload is kept.
    pub fn set_max_message(&mut self, max_message: usize) {
        self.max_message = max_message;
    }

    /// Bytes held for incomplete frames and messages (0 between messages).
    pub fn held(&self) -> usize {
        self.partial.capacity() + self.assembly.as_ref().map_or(0, |a| a.data.capacity())
    }

    /// Decodes `input`, appending every complete message or control frame to `out` and
    /// keeping the tail of an incomplete frame for the next call.
    pub fn feed(&mut self, mut input: &[u8], out: &mut VecDeque<Frame>) -> Result<(), DecodeError> {
        // First finish a frame begun in an earlier read, copying only the bytes it needs.
        while !self.partial.is_empty() && !input.is_empty() {
            let wanted = match self.parse(&self.partial)? {
                Some(h) => h.start + h.payload,
                None => header_len(&self.partial),
            };
            let take = wanted.saturating_sub(self.partial.len()).min(input.len());
            self.partial.reserve_exact(take);
            self.partial.extend_from_slice(&input[..take]);
            input = &input[take..];
            if let Some(h) = self.parse(&self.partial)? {
                if self.partial.len() == h.start + h.payload {
                    let frame = std::mem::take(&mut self.partial);
                    self.frame(h, &frame, out)?;
                }
            }
        }
        // Then decode straight from the input.
        while !input.is_empty() {
            match self.parse(input)? {
                Some(h) if h.start + h.payload <= input.len() => {
                    let (frame, rest) = input.split_at(h.start + h.payload);
                    self.frame(h, frame, out)?;
                    input = rest;
                }
                parsed => {
                    let need = parsed.map_or(MAX_CLIENT_HEADER, |h| h.start + h.payload);
                    self.partial.reserve_exact(need.max(input.len()));
                    self.partial.extend_from_slice(input);
                    break;
                }
            }
        }
        Ok(())
    }

    /// Parses and checks a header; None while it is incomplete.
    fn parse(&self, buf: &[u8]) -> Result<Option<Header>, DecodeError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(DecodeError::Protocol("reserved bits set"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let control = opcode & 0x08 != 0;
        match opcode {
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => {}
            opcode::CLOSE | opcode::PING | opcode::PONG => {}
            _ => return Err(DecodeError::Protocol("reserved opcode")),
        }
        if b1 & 0x80 == 0 {
            return Err(DecodeError::Protocol("client frames must be masked"));
        }
        if control && !fin {
            return Err(DecodeError::Protocol("fragmented control frame"));
        }
        let start = header_len(buf);
        if buf.len() < start {
            return Ok(None);
        }
        let payload = match b1 & 0x7F {
            126 => u16::from_be_bytes([buf[2], buf[3]]) as u64,
            127 => {
                let mut len = [0u8; 8];
                len.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(len);
                if len >> 63 != 0 {
                    return Err(DecodeError::Protocol("payload length's top bit set"));
                }
                len
            }
            short => short as u64,
        };
        if control && payload > MAX_CONTROL_PAYLOAD as u64 {
            return Err(DecodeError::Protocol("control frame over 125 bytes"));
        }
        if payload > self.max_message as u64 {
            return Err(DecodeError::TooBig);
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&buf[start - 4..start]);
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            start,
            payload: payload as usize,
        }))
    }

    /// Handles one whole frame (`bytes` is its header and payload).
    fn frame(
        &mut self,
        h: Header,
        bytes: &[u8],
        out: &mut VecDeque<Frame>,
    ) -> Result<(), DecodeError> {
        let masked = &bytes[h.start..h.start + h.payload];
        match h.opcode {
            opcode::PING => out.push_back(Frame::Ping(unmask(masked, h.mask))),
            opcode::PONG => out.push_back(Frame::Pong),
            opcode::CLOSE => out.push_back(close_frame(&unmask(masked, h.mask))?),
            opcode::TEXT | opcode::BINARY => {
                if self.assembly.is_some() {
                    return Err(DecodeError::Protocol("new message inside a fragmented one"));
                }
                let text = h.opcode == opcode::TEXT;
                let data = if text {
                    unmask(masked, h.mask)
                } else {
                    Vec::new()
                };
                let assembly = Assembly {
                    text,
                    data,
                    len: h.payload,
                };
                if h.fin {
                    out.push_back(finish(assembly)?);
                } else {
                    self.assembly = Some(Box::new(assembly));
                }
            }
            _ => {
                let Some(assembly) = self.assembly.as_mut() else {
                    return Err(DecodeError::Protocol("continuation without a message"));
                };
                assembly.len += h.payload;
                if assembly.len > self.max_message {
                    return Err(DecodeError::TooBig);
                }
                if assembly.text {
                    let from = assembly.data.len();
                    // Exactly what arrived: amortized doubling would let a message of
                    // `max_message` bytes hold twice that (found by fuzz/ wsframe_decoder).
                    assembly.data.reserve_exact(masked.len());
                    assembly.data.extend_from_slice(masked);
                    unmask_in_place(&mut assembly.data[from..], h.mask);
                }
                if h.fin {
                    if let Some(assembly) = self.assembly.take() {
                        out.push_back(finish(*assembly)?);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The header length a frame starting with `buf` has (2 if not even that much is there).
fn header_len(buf: &[u8]) -> usize {
    match buf.get(1).map(|b| b & 0x7F) {
        Some(126) => 2 + 2 + 4,
        Some(127) => 2 + 8 + 4,
        Some(_) => 2 + 4,
        None => 2,
    }
}

fn finish(assembly: Assembly) -> Result<Frame, DecodeError> {
    if !assembly.text {
        return Ok(Frame::Binary);
    }
    String::from_utf8(assembly.data)
        .map(Frame::Text)
        .map_err(|_| DecodeError::BadUtf8)
}

fn close_frame(payload: &[u8]) -> Result<Frame, DecodeError> {
    match payload {
        [] => Ok(Frame::Close(None)),
        [_] => Err(DecodeError::Protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err(DecodeError::Protocol("invalid close code"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(DecodeError::BadUtf8);
            }
            Ok(Frame::Close(Some(code)))
        }
    }
}

fn unmask(masked: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut data = masked.to_vec();
    unmask_in_place(&mut data, mask);
    data
}

/// XORs one frame's payload (`data` starts at its first byte) with the mask, eight bytes at
/// a time.
fn unmask_in_place(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// The header of a server frame (FIN set, unmasked): 2 to 10 bytes.
#[derive(Debug, Clone, Copy)]
pub struct ServerHeader {
    bytes: [u8; 10],
    len: u8,
}

impl ServerHeader {
    pub fn new(opcode: u8, payload: usize) -> ServerHeader {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | (opcode & 0x0F);
        let len = if payload < 126 {
            bytes[1] = payload as u8;
            2
        } else if payload <= u16::MAX as usize {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&(payload as u16).to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload as u64).to_be_bytes());
            10
        };
        ServerHeader { bytes, len }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// The payload of a server close frame: the code and a short reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    // A control frame's payload is at most 125 bytes; cut the reason at a char boundary.
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

#[cfg(test)]
mod tests;
