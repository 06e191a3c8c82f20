//! The Socket.IO packet path on arbitrary text: socketioxide's packet decoder (the common
//! parser, as the server runs it) and then Natter's event parser on the event it yields; and
//! the event parser alone on the text as an event payload; and the WebSocket path's own packet
//! reader (ADR 0029) on the text as a frame.
//!
//! Checks: no panic; a parsed request is the one its event name says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_server::transport::socketio::{parse_event, read_ws_event};
use socketioxide_core::packet::PacketData;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_core::{Str, Value};
use socketioxide_parser_common::CommonParser;

fn check(payload: &Value) {
    if let Ok((name, request)) = parse_event(payload) {
        assert_eq!(name, request.name());
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(&Value::Str(Str::from(text.to_owned()), None));
    if let Some((name, Ok(request))) = read_ws_event(text) {
        assert_eq!(name, request.name());
    }
    let packet = CommonParser.decode_str(
        &ParseConfig::default(),
        &ParserState::default(),
        Str::from(text.to_owned()),
    );
    if let Ok(packet) = packet {
        match &packet.inner {
            PacketData::Event(payload, _) | PacketData::BinaryEvent(payload, _) => check(payload),
            _ => {}
        }
    }
});
