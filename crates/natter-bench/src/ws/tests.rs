//! Unit tests of the WebSocket client: frames read whole however the bytes arrive, protocol
//! violations, outgoing masking and sizes, and the handshake's base64.

use std::io;

use tokio::io::AsyncRead;

use super::handshake::base64;
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
