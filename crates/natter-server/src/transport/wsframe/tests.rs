//! The frame codec against hand-built client frames and property tests: every split of
//! the input decodes the same.

use super::*;

/// A masked client frame, as a browser would send it.
fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Vec<Frame>, DecodeError> {
    let mut out = VecDeque::new();
    decoder.feed(bytes, &mut out)?;
    Ok(out.into_iter().collect())
}

/// A small deterministic PRNG (xorshift) for the property-style tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn accept_key_matches_rfc_example() {
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert!(valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
    assert!(!valid_key(b"short"));
    assert!(!valid_key(b"!!!!!!!!!!!!!!!!!!!!!!!!"));
}

#[test]
fn decodes_text_ping_pong_close_and_binary() {
    let mut d = Decoder::new(1024);
    let mut bytes = client_frame(true, opcode::TEXT, "héllo".as_bytes(), [1, 2, 3, 4]);
    bytes.extend(client_frame(true, opcode::PING, b"p", [9, 9, 9, 9]));
    bytes.extend(client_frame(true, opcode::PONG, b"", [0, 0, 0, 0]));
    bytes.extend(client_frame(true, opcode::BINARY, &[1, 2, 3], [5, 6, 7, 8]));
    bytes.extend(client_frame(
        true,
        opcode::CLOSE,
        &close_payload(1000, "bye"),
        [7, 0, 7, 0],
    ));
    let frames = decode_all(&mut d, &bytes).expect("decodes");
    assert_eq!(
        frames,
        vec![
            Frame::Text("héllo".into()),
            Frame::Ping(b"p".to_vec()),
            Frame::Pong,
            Frame::Binary,
            Frame::Close(Some(1000)),
        ]
    );
    assert_eq!(d.held(), 0);
}

#[test]
fn reassembles_fragments_with_control_frames_between() {
    let mut d = Decoder::new(1024);
    let mut bytes = client_frame(false, opcode::TEXT, b"hel", [1, 2, 3, 4]);
    bytes.extend(client_frame(true, opcode::PING, b"", [1, 1, 1, 1]));
    bytes.extend(client_frame(
        false,
        opcode::CONTINUATION,
        b"lo ",
        [4, 3, 2, 1],
    ));
    bytes.extend(client_frame(
        true,
        opcode::CONTINUATION,
        b"world",
        [8, 8, 8, 8],
    ));
    let frames = decode_all(&mut d, &bytes).expect("decodes");
    assert_eq!(
        frames,
        vec![Frame::Ping(vec![]), Frame::Text("hello world".into())]
    );
    assert_eq!(d.held(), 0);
}

#[test]
fn a_code_point_split_across_fragments_is_fine() {
    let mut d = Decoder::new(1024);
    let e = "é".as_bytes();
    let mut bytes = client_frame(false, opcode::TEXT, &e[..1], [1, 2, 3, 4]);
    bytes.extend(client_frame(
        true,
        opcode::CONTINUATION,
        &e[1..],
        [1, 2, 3, 4],
    ));
    assert_eq!(
        decode_all(&mut d, &bytes).expect("decodes"),
        vec![Frame::Text("é".into())]
    );
}

#[test]
fn protocol_violations_are_refused_with_their_codes() {
    let text = |p: &[u8]| client_frame(true, opcode::TEXT, p, [1, 2, 3, 4]);
    let mut unmasked = text(b"hi");
    unmasked[1] &= 0x7F;
    let mut rsv = text(b"hi");
    rsv[0] |= 0x40;
    let mut reserved_op = text(b"hi");
    reserved_op[0] = 0x83;
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (unmasked, 1002),
        (rsv, 1002),
        (reserved_op, 1002),
        (
            client_frame(true, opcode::TEXT, &[0xFF, 0xFE], [1, 2, 3, 4]),
            1007,
        ),
        (client_frame(false, opcode::PING, b"", [1, 2, 3, 4]), 1002),
        (
            client_frame(true, opcode::PING, &[0; 126], [1, 2, 3, 4]),
            1002,
        ),
        (
            client_frame(true, opcode::CONTINUATION, b"x", [1, 2, 3, 4]),
            1002,
        ),
        (
            client_frame(true, opcode::TEXT, &[b'x'; 101], [1, 2, 3, 4]),
            1009,
        ),
        (client_frame(true, opcode::CLOSE, &[3], [1, 2, 3, 4]), 1002),
        (
            client_frame(true, opcode::CLOSE, &1005u16.to_be_bytes(), [1, 2, 3, 4]),
            1002,
        ),
        (
            client_frame(true, opcode::CLOSE, &[3, 232, 0xFF], [1, 2, 3, 4]),
            1007,
        ),
        (
            [
                client_frame(false, opcode::TEXT, b"a", [1, 2, 3, 4]),
                client_frame(true, opcode::TEXT, b"b", [1, 2, 3, 4]),
            ]
            .concat(),
            1002,
        ),
        (
            [
                client_frame(false, opcode::TEXT, &[b'a'; 60], [1, 2, 3, 4]),
                client_frame(true, opcode::CONTINUATION, &[b'b'; 60], [1, 2, 3, 4]),
            ]
            .concat(),
            1009,
        ),
    ];
    for (bytes, code) in cases {
        let mut d = Decoder::new(100);
        let err = decode_all(&mut d, &bytes).expect_err("refused");
        assert_eq!(err.close_code(), code, "{bytes:?}: {err:?}");
    }
}

#[test]
fn a_frame_header_announcing_too_much_is_refused_before_its_payload() {
    let mut d = Decoder::new(100);
    let whole = client_frame(true, opcode::TEXT, &[b'x'; 70_000], [1, 2, 3, 4]);
    let err = decode_all(&mut d, &whole[..14]).expect_err("refused");
    assert_eq!(err, DecodeError::TooBig);
    let mut huge = vec![0x81, 0xFF];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    huge.extend_from_slice(&[0; 4]);
    assert!(matches!(
        decode_all(&mut Decoder::new(100), &huge),
        Err(DecodeError::Protocol(_))
    ));
}

#[test]
fn random_messages_split_at_random_points_round_trip() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..300 {
        let mut expected = Vec::new();
        let mut wire = Vec::new();
        for _ in 0..rng.below(6) + 1 {
            let len = [0, 1, 5, 125, 126, 127, 300, 65_535, 65_536, 70_000][rng.below(10)];
            let text: String = (0..len)
                .map(|_| ['a', 'é', '€', '𝄞', ' '][rng.below(5)])
                .take(len)
                .collect();
            let bytes = text.as_bytes();
            let mask = (rng.next() as u32).to_ne_bytes();
            // Fragment at random byte points (not necessarily char boundaries).
            let pieces = rng.below(4) + 1;
            let mut cuts: Vec<usize> = (1..pieces).map(|_| rng.below(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut from = 0;
            for (i, cut) in cuts.iter().chain(std::iter::once(&bytes.len())).enumerate() {
                let op = if i == 0 {
                    opcode::TEXT
                } else {
                    opcode::CONTINUATION
                };
                wire.extend(client_frame(i == pieces - 1, op, &bytes[from..*cut], mask));
                from = *cut;
                if rng.below(3) == 0 && i < pieces - 1 {
                    wire.extend(client_frame(true, opcode::PONG, b"x", mask));
                    expected.push(Frame::Pong);
                }
            }
            expected.push(Frame::Text(text));
        }
        let mut d = Decoder::new(1 << 20);
        let mut out = VecDeque::new();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let n = (rng.below(if round % 2 == 0 { 7 } else { 5000 }) + 1).min(rest.len());
            d.feed(&rest[..n], &mut out).expect("decodes");
            rest = &rest[n..];
        }
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            expected,
            "round {round}"
        );
        assert_eq!(d.held(), 0, "nothing held between messages");
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let len = rng.below(64);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 && len > 1 {
            bytes[1] |= 0x80;
            bytes[0] &= 0x8F;
        }
        let mut d = Decoder::new(64);
        let mut out = VecDeque::new();
        for chunk in bytes.chunks(rng.below(8) + 1) {
            if d.feed(chunk, &mut out).is_err() {
                break;
            }
        }
    }
}

#[test]
fn server_headers_use_the_shortest_length_form() {
    assert_eq!(ServerHeader::new(opcode::TEXT, 5).as_slice(), &[0x81, 5]);
    assert_eq!(
        ServerHeader::new(opcode::TEXT, 126).as_slice(),
        &[0x81, 126, 0, 126]
    );
    assert_eq!(ServerHeader::new(opcode::PING, 0).as_slice(), &[0x89, 0]);
    assert_eq!(
        ServerHeader::new(opcode::TEXT, 70_000).as_slice(),
        &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
    );
    let long = "é".repeat(100);
    let payload = close_payload(1001, &long);
    assert!(payload.len() <= 125);
    assert!(std::str::from_utf8(&payload[2..]).is_ok());
}

/// Regression (fuzz/ wsframe_decoder): a text message reassembled from growing fragments,
/// fed byte by byte, holds at most one frame and one message, not twice the message limit
/// from the reassembly buffer's amortized growth.
#[test]
fn reassembly_holds_no_more_than_the_message() {
    let max = 125;
    let mut bytes = client_frame(false, 0x1, b"a", [1, 2, 3, 4]);
    for n in [60usize, 60, 4] {
        bytes.extend(client_frame(false, 0x0, &vec![b'b'; n], [5, 6, 7, 8]));
    }
    // A ping between fragments, while the message is at its limit.
    bytes.extend(client_frame(true, 0x9, &[b'p'; 100], [1, 1, 1, 1]));
    bytes.extend(client_frame(true, 0x0, b"", [5, 6, 7, 8]));
    let mut decoder = Decoder::new(max);
    let mut out = VecDeque::new();
    for byte in &bytes {
        decoder
            .feed(std::slice::from_ref(byte), &mut out)
            .expect("valid");
        assert!(
            decoder.held() <= 2 * (max + 14) + 1,
            "holds {} bytes with a limit of {max}",
            decoder.held()
        );
    }
    assert_eq!(out.len(), 2, "a ping and the message");
}
