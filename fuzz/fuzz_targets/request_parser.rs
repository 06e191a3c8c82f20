//! The native request parser (`parse_frame`) on arbitrary text, with the general path as the
//! oracle of the `message.send` fast path (as the unit test
//! `the_send_fast_path_agrees_with_the_general_path` does on a fixed list).
//!
//! Checks: no panic; whatever the fast path accepts, the general path accepts with the same
//! `ref` and request; `parse_frame` always answers what the general path answers; a parsed
//! request's name is one of `Request::NAMES`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_core::protocol::{parse_frame, parse_frame_general, parse_send_fast, FrameError};
use natter_core::Request;

fn show(result: &Result<(String, Request), FrameError>) -> String {
    match result {
        Ok((reference, request)) => format!("ok {reference} {request:?}"),
        Err(e) => format!(
            "err {:?} {:?} {}",
            e.reference, e.error.code, e.error.message
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let general = parse_frame_general(text);
    if let Some(fast) = parse_send_fast(text) {
        assert_eq!(show(&Ok(fast)), show(&general), "fast path disagrees");
    }
    let parsed = parse_frame(text);
    assert_eq!(show(&parsed), show(&general), "parse_frame disagrees");
    if let Ok((reference, request)) = &parsed {
        assert!(!reference.is_empty());
        assert!(Request::NAMES.contains(&request.name()));
    }
});
