//! What both backends share about file records (migration 0005): the columns a query selects,
//! the record a row maps to, and giving each message of a page its files.

use natter_core::files::{ContentHash, FileId, StoredFile};
use natter_core::model::*;

/// Every column of a file record, `f` being `files`.
pub(crate) const FILE_COLUMNS: &str =
    "f.id, f.owner_id, f.name, f.size, f.type, f.width, f.height, f.hash, f.thumb_hash, f.created_at";

/// A file record's columns as read (`FILE_COLUMNS`, in order).
pub(crate) struct FileRow {
    pub id: String,
    pub owner: i64,
    pub name: String,
    pub size: i64,
    pub kind: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub hash: String,
    pub thumb_hash: Option<String>,
    pub created_at: i64,
}

impl FileRow {
    /// The record; an error names a stored hash that is not one.
    pub(crate) fn into_file(self) -> Result<StoredFile, String> {
        let hash = ContentHash::parse(&self.hash).ok_or("a file row with a bad hash")?;
        let thumb_hash = match self.thumb_hash {
            Some(h) => Some(ContentHash::parse(&h).ok_or("a file row with a bad thumb hash")?),
            None => None,
        };
        Ok(StoredFile {
            id: FileId(self.id),
            owner: UserId(self.owner),
            name: self.name,
            size: self.size.max(0) as u64,
            kind: self.kind,
            width: self.width.and_then(|w| u32::try_from(w).ok()),
            height: self.height.and_then(|h| u32::try_from(h).ok()),
            hash,
            thumb_hash,
            created_at: self.created_at,
        })
    }
}

/// Gives each message of `page` its files from `rows` (seq, file), ordered by seq, then
/// place in the message. A deleted message carries none (its rows are gone already).
pub(crate) fn attach_files(page: &mut [Message], rows: Vec<(Seq, StoredFile)>) {
    for (seq, file) in rows {
        if let Some(message) = page.iter_mut().find(|m| m.seq == seq && m.change.is_none()) {
            message.files.push(file.info());
        }
    }
}

/// The hashes (bytes and thumbnails) of removed records, sorted and once each.
pub(crate) fn hashes_of(files: &[StoredFile]) -> Vec<ContentHash> {
    let mut hashes: Vec<ContentHash> = files
        .iter()
        .flat_map(|f| std::iter::once(f.hash.clone()).chain(f.thumb_hash.clone()))
        .collect();
    hashes.sort();
    hashes.dedup();
    hashes
}
