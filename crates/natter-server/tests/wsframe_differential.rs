//! Natter's RFC 6455 frame decoder (transport/wsframe) against tungstenite's, on random client
//! streams: 2,000 seeded cases of masked frames (text and binary, lengths at the 125/126 and
//! 65535/65536 encoding boundaries, fragmented with control frames between the fragments,
//! UTF-8 split across fragments, a close frame at the end), fed to both in random read sizes.
//! A valid stream must decode to the same messages in both, and to the ones generated; a stream
//! with one frame the RFC says to fail on (unmasked, reserved bits or opcodes, fragmented or
//! oversized control frames, bad fragmentation, bad UTF-8, bad close payloads, over the size
//! limit) must be refused by both.
//!
//! One deliberate difference is not generated: close code 1014 (Bad Gateway, in IANA's close
//! code registry) is accepted by Natter and answered as a protocol error by tungstenite 0.29.

use natter_server::transport::wsframe::{DecodeError, Decoder, Frame};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const CASES: u64 = 2000;
/// The size limit of both decoders: above the 64-bit length boundary.
const MAX: usize = 70_000;

/// splitmix64: a small seeded generator, so a failing case can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A message as both decoders report it (binary payloads are not kept by Natter).
#[derive(Clone, PartialEq, Eq)]
enum Msg {
    Text(String),
    Binary,
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

/// Short, so that a failure shows which message differs rather than 64 KiB of text.
impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Text(s) => {
                let head: String = s.chars().take(12).collect();
                write!(f, "Text({} bytes, {head:?}..)", s.len())
            }
            Msg::Binary => write!(f, "Binary"),
            Msg::Ping(p) => write!(f, "Ping({} bytes)", p.len()),
            Msg::Pong => write!(f, "Pong"),
            Msg::Close(code) => write!(f, "Close({code:?})"),
        }
    }
}

/// What a decoder made of a stream: its messages, and whether it refused the stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    messages: Vec<Msg>,
    refused: bool,
}

/// A frame as a client sends it (the shortest length encoding; masked unless told not).
fn frame(rng: &mut Rng, first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if !masked {
        out.extend_from_slice(payload);
        return out;
    }
    let mask: [u8; 4] = if rng.chance(5) {
        [0; 4]
    } else {
        [
            rng.next() as u8,
            rng.next() as u8,
            rng.next() as u8,
            rng.next() as u8,
        ]
    };
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

const FIN: u8 = 0x80;
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A payload length: mostly small, often at an encoding boundary.
fn length(rng: &mut Rng) -> usize {
    if rng.chance(35) {
        rng.pick(&[
            0, 1, 124, 125, 126, 127, 128, 65_534, 65_535, 65_536, 65_537,
        ])
    } else {
        rng.below(300)
    }
}

/// Exactly `len` bytes of UTF-8 text with one- to four-byte characters.
fn text(rng: &mut Rng, len: usize) -> String {
    let mut s = String::with_capacity(len);
    while len - s.len() >= 4 {
        s.push(rng.pick(&['a', 'Z', ' ', '{', '"', 'é', 'ß', '€', '中', '😀', '\u{0}']));
    }
    while s.len() < len {
        s.push(rng.pick(&['x', '7', ' ']));
    }
    s
}

/// Cuts `payload` into 1 to 4 fragments at random byte offsets (empty ones allowed).
fn cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    let mut at: Vec<usize> = (0..rng.below(4)).map(|_| rng.below(len + 1)).collect();
    at.sort_unstable();
    at.push(len);
    at
}

/// A control frame between messages or fragments, with its expected message.
fn control(rng: &mut Rng, out: &mut Vec<u8>, expected: &mut Vec<Msg>) {
    let len = rng.pick(&[0, 1, 4, 125]);
    let payload = rng.bytes(len);
    if rng.chance(60) {
        out.extend(frame(rng, FIN | PING, &payload, true));
        expected.push(Msg::Ping(payload));
    } else {
        out.extend(frame(rng, FIN | PONG, &payload, true));
        expected.push(Msg::Pong);
    }
}

/// One data message, maybe fragmented with control frames between the fragments.
fn message(rng: &mut Rng, out: &mut Vec<u8>, expected: &mut Vec<Msg>) {
    let len = length(rng);
    let is_text = rng.chance(70);
    let payload = if is_text {
        text(rng, len).into_bytes()
    } else {
        rng.bytes(len)
    };
    let mut controls = Vec::new();
    if rng.chance(40) {
        let ends = cuts(rng, len);
        let mut from = 0;
        for (i, &to) in ends.iter().enumerate() {
            let opcode = if i == 0 {
                if is_text {
                    TEXT
                } else {
                    BINARY
                }
            } else {
                CONTINUATION
            };
            let fin = if i + 1 == ends.len() { FIN } else { 0 };
            out.extend(frame(rng, fin | opcode, &payload[from..to], true));
            from = to;
            if fin == 0 && rng.chance(30) {
                control(rng, out, &mut controls);
            }
        }
    } else {
        let opcode = if is_text { TEXT } else { BINARY };
        out.extend(frame(rng, FIN | opcode, &payload, true));
    }
    // Control frames inside a fragmented message arrive before the message completes.
    expected.extend(controls);
    expected.push(match String::from_utf8(payload) {
        Ok(s) if is_text => Msg::Text(s),
        _ => Msg::Binary,
    });
}

/// A valid stream: messages and control frames, maybe closed at the end.
fn valid_stream(rng: &mut Rng, out: &mut Vec<u8>, expected: &mut Vec<Msg>) {
    for _ in 0..1 + rng.below(4) {
        if rng.chance(20) {
            control(rng, out, expected);
        } else {
            message(rng, out, expected);
        }
    }
}

fn valid_close(rng: &mut Rng, out: &mut Vec<u8>, expected: &mut Vec<Msg>) {
    if rng.chance(25) {
        out.extend(frame(rng, FIN | CLOSE, &[], true));
        expected.push(Msg::Close(None));
        return;
    }
    let code = rng.pick(&[
        1000, 1001, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 3000, 4999,
    ]);
    let mut payload = u16::to_be_bytes(code).to_vec();
    let reason = rng.below(124);
    payload.extend(text(rng, reason).into_bytes());
    out.extend(frame(rng, FIN | CLOSE, &payload, true));
    expected.push(Msg::Close(Some(code)));
}

/// Appends one frame (or frames) the RFC says to fail the connection on; returns the error
/// Natter must give.
fn invalid(rng: &mut Rng, out: &mut Vec<u8>) -> DecodeError {
    let protocol = DecodeError::Protocol("");
    match rng.below(13) {
        0 => {
            out.extend(frame(rng, FIN | TEXT, b"unmasked", false));
            protocol
        }
        1 => {
            let rsv = rng.pick(&[0x40, 0x20, 0x10]);
            out.extend(frame(rng, FIN | rsv | TEXT, b"rsv", true));
            protocol
        }
        2 => {
            let opcode = rng.pick(&[0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]);
            out.extend(frame(rng, FIN | opcode, b"op", true));
            protocol
        }
        3 => {
            let opcode = rng.pick(&[PING, PONG, CLOSE]);
            out.extend(frame(rng, opcode, b"", true));
            protocol
        }
        4 => {
            let opcode = rng.pick(&[PING, PONG]);
            let len = 126 + rng.below(200);
            let payload = rng.bytes(len);
            out.extend(frame(rng, FIN | opcode, &payload, true));
            protocol
        }
        5 => {
            let fin = rng.pick(&[0, FIN]);
            out.extend(frame(rng, fin | CONTINUATION, b"c", true));
            protocol
        }
        6 => {
            out.extend(frame(rng, TEXT, b"first half", true));
            let opcode = rng.pick(&[TEXT, BINARY]);
            out.extend(frame(rng, FIN | opcode, b"new message", true));
            protocol
        }
        7 => {
            let bad: &[u8] = rng.pick(&[
                &b"\xff"[..],
                b"\xc3\x28",
                b"\xed\xa0\x80",
                b"\xf4\x90\x80\x80",
            ]);
            let len = rng.below(20);
            let mut payload = text(rng, len).into_bytes();
            payload.extend_from_slice(bad);
            if rng.chance(50) {
                out.extend(frame(rng, FIN | TEXT, &payload, true));
            } else {
                let at = rng.below(payload.len() + 1);
                out.extend(frame(rng, TEXT, &payload[..at], true));
                out.extend(frame(rng, FIN | CONTINUATION, &payload[at..], true));
            }
            DecodeError::BadUtf8
        }
        8 => {
            out.extend(frame(rng, FIN | CLOSE, &[0x03], true));
            protocol
        }
        9 => {
            let code: u16 = rng.pick(&[0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000]);
            out.extend(frame(rng, FIN | CLOSE, &code.to_be_bytes(), true));
            protocol
        }
        10 => {
            let mut payload = 1000u16.to_be_bytes().to_vec();
            payload.extend_from_slice(b"bye \xc3");
            out.extend(frame(rng, FIN | CLOSE, &payload, true));
            DecodeError::BadUtf8
        }
        11 => {
            let opcode = rng.pick(&[TEXT, BINARY]);
            out.extend(frame(rng, FIN | opcode, &vec![b'a'; MAX + 1], true));
            DecodeError::TooBig
        }
        _ => {
            // Fragments each within the limit, together one byte over it.
            let opcode = rng.pick(&[TEXT, BINARY]);
            out.extend(frame(rng, opcode, &vec![b'a'; MAX / 2], true));
            out.extend(frame(
                rng,
                FIN | CONTINUATION,
                &vec![b'b'; MAX / 2 + 1],
                true,
            ));
            DecodeError::TooBig
        }
    }
}

/// The largest read for a stream: byte by byte, small, or large (tiny reads only for short
/// streams, to keep the test quick).
fn read_sizes(rng: &mut Rng, len: usize) -> usize {
    if len > 4096 {
        rng.pick(&[130, 4096, 1 << 20])
    } else {
        rng.pick(&[1, 7, 130, 4096, 1 << 20])
    }
}

fn natter(bytes: &[u8], rng: &mut Rng, span: usize) -> (Outcome, Option<DecodeError>) {
    let mut decoder = Decoder::new(MAX);
    let mut frames = VecDeque::new();
    let mut error = None;
    let mut rest = bytes;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at((1 + rng.below(span)).min(rest.len()));
        if let Err(e) = decoder.feed(chunk, &mut frames) {
            error = Some(e);
            break;
        }
        rest = tail;
    }
    let mut messages = Vec::new();
    for frame in frames {
        let closing = matches!(frame, Frame::Close(_));
        messages.push(match frame {
            Frame::Text(s) => Msg::Text(s),
            Frame::Binary => Msg::Binary,
            Frame::Ping(p) => Msg::Ping(p),
            Frame::Pong => Msg::Pong,
            Frame::Close(code) => Msg::Close(code),
        });
        // The server reads nothing after the client's close.
        if closing {
            return (
                Outcome {
                    messages,
                    refused: false,
                },
                None,
            );
        }
    }
    let outcome = Outcome {
        messages,
        refused: error.is_some(),
    };
    (outcome, error)
}

/// The client's bytes in reads of 1..=`span` bytes, then "would block"; writes are dropped.
struct Stream {
    bytes: Vec<u8>,
    at: usize,
    span: usize,
    rng: Rng,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.bytes.len() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = (1 + self.rng.below(self.span))
            .min(buf.len())
            .min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tungstenite(bytes: &[u8], rng: Rng, span: usize) -> Outcome {
    let stream = Stream {
        bytes: bytes.to_vec(),
        at: 0,
        span,
        rng,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX))
        .max_frame_size(Some(MAX));
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, Some(config));
    let mut messages = Vec::new();
    loop {
        let message = match ws.read() {
            Ok(message) => message,
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                return Outcome {
                    messages,
                    refused: false,
                }
            }
            Err(_) => {
                return Outcome {
                    messages,
                    refused: true,
                }
            }
        };
        match message {
            Message::Text(s) => messages.push(Msg::Text(s.to_string())),
            Message::Binary(_) => messages.push(Msg::Binary),
            Message::Ping(p) => messages.push(Msg::Ping(p.to_vec())),
            Message::Pong(_) => messages.push(Msg::Pong),
            Message::Frame(_) => unreachable!("read never returns raw frames"),
            Message::Close(close) => {
                // tungstenite answers a close code it does not allow with its own 1002 close
                // (reason "Protocol violation"), not with an error.
                let refused = close.as_ref().is_some_and(|c| {
                    c.code == CloseCode::Protocol && c.reason.as_str() == "Protocol violation"
                });
                if !refused {
                    messages.push(Msg::Close(close.map(|c| u16::from(c.code))));
                }
                return Outcome { messages, refused };
            }
        }
    }
}

fn same_kind(a: DecodeError, b: DecodeError) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
}

#[test]
fn the_frame_decoder_agrees_with_tungstenite_on_random_client_streams() {
    let (mut valid, mut refused) = (0, 0);
    for seed in 0..CASES {
        let mut rng = Rng(seed);
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        valid_stream(&mut rng, &mut bytes, &mut expected);
        let bad = if rng.chance(35) {
            Some(invalid(&mut rng, &mut bytes))
        } else {
            if rng.chance(40) {
                valid_close(&mut rng, &mut bytes, &mut expected);
            }
            None
        };
        let span = read_sizes(&mut rng, bytes.len());
        let (ours, error) = natter(&bytes, &mut Rng(seed ^ 0xABCD), span);
        let theirs = tungstenite(&bytes, Rng(seed ^ 0x1234), span);
        match bad {
            None => {
                valid += 1;
                assert_eq!(ours.messages, expected, "seed {seed}: natter");
                assert!(!ours.refused, "seed {seed}: natter refused {error:?}");
                assert_eq!(theirs, ours, "seed {seed}: tungstenite disagrees");
            }
            Some(want) => {
                refused += 1;
                assert!(
                    theirs.refused,
                    "seed {seed}: tungstenite accepted {theirs:?}"
                );
                assert!(ours.refused, "seed {seed}: natter accepted {ours:?}");
                let got = error.expect("refused with an error");
                assert!(
                    same_kind(got, want),
                    "seed {seed}: {got:?}, expected {want:?}"
                );
                // Everything before the bad frame decodes as the valid stream it follows.
                assert_eq!(
                    ours.messages, expected,
                    "seed {seed}: natter before the error"
                );
                assert_eq!(
                    theirs.messages, expected,
                    "seed {seed}: tungstenite before it"
                );
            }
        }
    }
    assert!(
        valid > CASES / 2 && refused > CASES / 4,
        "{valid} valid, {refused} refused"
    );
}
