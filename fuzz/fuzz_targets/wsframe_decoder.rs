//! The RFC 6455 frame decoder of `/ws` on arbitrary bytes, fed whole and in arbitrary chunks.
//!
//! Input: a control byte (the size limit), a seed byte (the chunk sizes), then the stream.
//! Checks: no panic; the chunked decode gives exactly the frames and the error of the whole
//! decode (a read boundary never changes what a client's bytes mean); no decoded message is
//! over the limit; and the decoder holds at most about one frame and one message while fed
//! small reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_server::transport::wsframe::{Decoder, Frame};
use std::collections::VecDeque;

/// Size limits around the length encodings' boundaries (7-bit, 16-bit, 64-bit).
const LIMITS: [usize; 4] = [16, 125, 126, 65_536];
/// The longest client frame header.
const MAX_HEADER: usize = 14;

fuzz_target!(|data: &[u8]| {
    let [control, seed, input @ ..] = data else {
        return;
    };
    let max = LIMITS[usize::from(control & 3)];

    let mut whole = Decoder::new(max);
    let mut whole_out = VecDeque::new();
    let whole_result = whole.feed(input, &mut whole_out);

    let mut chunked = Decoder::new(max);
    let mut chunked_out = VecDeque::new();
    let mut chunked_result = Ok(());
    let mut rest = input;
    // xorshift32, never zero.
    let mut state = u32::from(*seed) << 8 | u32::from(*control) | 1;
    // Chunks of 1..=`span` bytes: byte by byte up to whole frames at once.
    let span = [1usize, 3, 17, 300][usize::from(control >> 2 & 3)];
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (1 + state as usize % span).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        chunked_result = chunked.feed(chunk, &mut chunked_out);
        if chunked_result.is_err() {
            break;
        }
        // One incomplete frame (header + payload) and one message being reassembled.
        assert!(
            chunked.held() <= 2 * (max + MAX_HEADER) + span,
            "holds {} bytes with a limit of {max}",
            chunked.held()
        );
        rest = tail;
    }

    assert_eq!(whole_result, chunked_result);
    assert_eq!(whole_out, chunked_out);
    for frame in &whole_out {
        match frame {
            Frame::Text(text) => assert!(text.len() <= max),
            Frame::Ping(payload) => assert!(payload.len() <= 125),
            Frame::Binary | Frame::Pong | Frame::Close(_) => {}
        }
    }
});
