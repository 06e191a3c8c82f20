//! The load generator's own WebSocket client (RFC 6455, client side): the opening handshake,
//! masked frames out, and a frame reader that parses in place from one reusable buffer.
//!
//! It replaced tokio-tungstenite on the bench's receive path, where the split stream's lock,
//! the zeroing of the read buffer on every read and a copy per frame cost more CPU per
//! delivery than the servers under test spent: with one core for the load generator, its own
//! cost per delivery is the ceiling of every fanout figure.
//!
//! Modules, by job: `handshake` (the HTTP upgrade), `read` (`FrameReader`: frames in, parsed
//! in place) and `write` (`Outgoing` frames, masked and encoded). The opcodes they share are
//! here.

mod handshake;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use handshake::handshake;
pub use read::{Frame, FrameReader, ReadEnd};
pub use write::{encode_frame, Masks, Outgoing};

/// Frame opcodes (RFC 6455 section 5.2).
mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}
