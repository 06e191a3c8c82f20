//! Uploaded files: their ids, their metadata as stored (`StoredFile`) and as messages carry it
//! (`FileInfo`), and the `FileStore` contract for their bytes.
//!
//! Bytes are content-addressed: a blob is kept once per SHA-256 ([`ContentHash`]) whoever
//! uploaded it, and a file record (in the main `Store`) names the blob it uses. A blob is
//! removed once no record names it (the node's sweep, `node/expiry.rs`). Backends live
//! outside the core (natter-store-sql: a directory, PostgreSQL chunks); their shared rules are
//! `crate::conformance::files`.

use crate::error::StoreError;
use crate::model::{Millis, UserId};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// Files one message may carry at most.
pub const MAX_FILES_PER_MESSAGE: usize = 10;

/// An upload not posted in any message within this long is removed by the sweep.
pub const UNPOSTED_FILE_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A file's public id: `f_` and 22 URL-safe random characters (132 bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileId(pub String);

impl FileId {
    /// Characters after the `f_`.
    pub const RANDOM_CHARS: usize = 22;

    /// A new random id.
    pub fn random() -> FileId {
        use rand::Rng;
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut rng = rand::rng();
        let tail: String = (0..Self::RANDOM_CHARS)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        FileId(format!("f_{tail}"))
    }

    /// Whether `s` has the shape of an id (so a malformed one never reaches a query).
    pub fn is_valid(s: &str) -> bool {
        s.strip_prefix("f_").is_some_and(|t| {
            t.len() == Self::RANDOM_CHARS
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The SHA-256 of a blob's bytes, as 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(String);

impl ContentHash {
    /// The hash of a finished SHA-256 digest.
    pub fn from_digest(digest: &[u8]) -> ContentHash {
        ContentHash(crate::accounts::to_hex(digest))
    }

    /// A stored hash; None unless it is 64 lower-case hex digits.
    pub fn parse(hex: &str) -> Option<ContentHash> {
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| ContentHash(hex.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A file as a message carries it (docs/protocol.md section 3). `url` and `thumb_url` are the
/// same for every reader: a browser adds its download key (`?k=`) or sends its bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub id: FileId,
    /// The name given at upload (at most `MAX_FILE_NAME_CHARS`).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// The type sniffed from the content (never the client's word).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// `/api/files/<id>`.
    pub url: String,
    /// `/api/files/<id>/thumb`, for images with a thumbnail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb_url: Option<String>,
}

/// The longest file name kept, in characters (longer ones are cut).
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// A file record as the main `Store` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub id: FileId,
    /// Who uploaded it (the only one who may post it).
    pub owner: UserId,
    pub name: String,
    pub size: u64,
    /// The sniffed content type.
    pub kind: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The blob with its bytes.
    pub hash: ContentHash,
    /// The blob with its thumbnail (images only).
    pub thumb_hash: Option<ContentHash>,
    pub created_at: Millis,
}

impl StoredFile {
    /// The file as messages carry it.
    pub fn info(&self) -> FileInfo {
        FileInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            kind: self.kind.clone(),
            width: self.width,
            height: self.height,
            url: format!("/api/files/{}", self.id),
            thumb_url: self
                .thumb_hash
                .as_ref()
                .map(|_| format!("/api/files/{}/thumb", self.id)),
        }
    }
}

/// A blob's bytes, as a stream of chunks, with its size.
pub struct Blob {
    pub size: u64,
    pub chunks: BoxStream<'static, Result<Bytes, StoreError>>,
}

/// Where blobs are kept, by content hash. Every method is idempotent: putting a blob that is
/// there already keeps one copy, deleting one that is not there succeeds.
#[async_trait]
pub trait FileStore: Send + Sync + 'static {
    /// Stores the bytes of the local file `from` under `hash` (the caller computed it while
    /// writing the file). The file may be moved away; the caller removes it if it is left.
    /// Once this returns, `open(hash)` gives the bytes, on every node.
    async fn put(&self, hash: &ContentHash, from: &Path) -> Result<(), StoreError>;
    /// The blob's bytes, or None if there is no such blob.
    async fn open(&self, hash: &ContentHash) -> Result<Option<Blob>, StoreError>;
    async fn delete(&self, hash: &ContentHash) -> Result<(), StoreError>;
    async fn exists(&self, hash: &ContentHash) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_valid_and_differ() {
        let a = FileId::random();
        assert!(FileId::is_valid(a.as_str()), "{a}");
        assert_ne!(a, FileId::random());
        for bad in [
            "",
            "f_",
            "x_aaaaaaaaaaaaaaaaaaaaaa",
            "f_aaaaaaaaaaaaaaaaaaaaa/",
            "f_a",
        ] {
            assert!(!FileId::is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn hashes_are_64_lower_hex_digits() {
        assert!(ContentHash::parse(&"a".repeat(64)).is_some());
        assert!(ContentHash::parse(&"A".repeat(64)).is_none());
        assert!(ContentHash::parse("../etc/passwd").is_none());
    }
}
