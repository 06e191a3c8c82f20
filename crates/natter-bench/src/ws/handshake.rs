//! The WebSocket opening handshake (client side, RFC 6455 section 4): the upgrade request, the
//! check of the server's accept key, and the bytes read past the response.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Masks;
use crate::error::BenchError;

/// The largest response head accepted during the handshake.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Performs the opening handshake for `path_and_query` on `host`; returns the bytes read past
/// the response (the first frames, if the server sent any at once).
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    host: &str,
    path_and_query: &str,
    seed: u64,
) -> Result<Vec<u8>, BenchError> {
    let mut masks = Masks::new(seed);
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&masks.next_mask());
    key[4..8].copy_from_slice(&masks.next_mask());
    key[8..12].copy_from_slice(&masks.next_mask());
    key[12..].copy_from_slice(&masks.next_mask());
    let request = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        base64(&key)
    );
    io.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(at) = find(&head, b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > MAX_RESPONSE_HEAD {
            return Err(BenchError::Protocol("handshake response too long".into()));
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(BenchError::Protocol(
                "connection ended during the handshake".into(),
            ));
        }
        head.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&head[..end]);
    let status = text.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("101") {
        return Err(BenchError::Protocol(format!("handshake refused: {status}")));
    }
    let upgraded = text.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("upgrade")
                && value.trim().eq_ignore_ascii_case("websocket")
        })
    });
    if !upgraded {
        return Err(BenchError::Protocol(
            "handshake response without Upgrade: websocket".into(),
        ));
    }
    Ok(head[end..].to_vec())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
