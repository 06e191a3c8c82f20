//! Writing WebSocket frames to the server: `Outgoing` frames, masked with a varying key
//! (`Masks`) and encoded several to a buffer.

use super::opcode;

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
