//! `MemoryStore`'s file records: uploads, which messages carry them, and the server secrets.
//! The rules are those of the `Store` trait (`crate::conformance::files`).

use crate::error::{Refusal, StoreError};
use crate::files::{ContentHash, FileId, FileInfo, StoredFile};
use crate::model::*;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Default)]
pub(super) struct FileRecords {
    files: HashMap<FileId, StoredFile>,
    /// Files a message has carried at some time (swept as soon as none does).
    posted: HashSet<FileId>,
    /// The files each message carries, in order.
    refs: BTreeMap<(RoomId, Seq), Vec<FileId>>,
    secrets: HashMap<String, Vec<u8>>,
}

impl FileRecords {
    pub(super) fn create(&mut self, file: StoredFile) -> Result<(), StoreError> {
        if self.files.contains_key(&file.id) {
            return Err(StoreError::Conflict("file id taken".into()));
        }
        self.files.insert(file.id.clone(), file);
        Ok(())
    }

    pub(super) fn get(&self, id: &FileId) -> Option<StoredFile> {
        self.files.get(id).cloned()
    }

    pub(super) fn bytes_of(&self, owner: UserId) -> u64 {
        self.files
            .values()
            .filter(|f| f.owner == owner)
            .map(|f| f.size)
            .sum()
    }

    /// How many records there are, and their sizes added up.
    pub(super) fn totals(&self) -> (u64, u64) {
        (
            self.files.len() as u64,
            self.files.values().map(|f| f.size).sum(),
        )
    }

    pub(super) fn rooms_of(&self, id: &FileId) -> Vec<RoomId> {
        let mut rooms: Vec<RoomId> = self
            .refs
            .iter()
            .filter(|(_, ids)| ids.contains(id))
            .map(|((room, _), _)| *room)
            .collect();
        rooms.dedup();
        rooms
    }

    /// The infos of files `sender` may attach, or the refusal (checked before anything is
    /// stored).
    pub(super) fn check(
        &self,
        sender: UserId,
        ids: &[FileId],
    ) -> Result<Vec<FileInfo>, StoreError> {
        ids.iter()
            .map(|id| match self.files.get(id) {
                Some(f) if f.owner == sender => Ok(f.info()),
                _ => Err(StoreError::Refused(Refusal::UnknownFile)),
            })
            .collect()
    }

    pub(super) fn attach(&mut self, room: RoomId, seq: Seq, ids: Vec<FileId>) {
        if ids.is_empty() {
            return;
        }
        self.posted.extend(ids.iter().cloned());
        self.refs.insert((room, seq), ids);
    }

    pub(super) fn detach(&mut self, room: RoomId, seq: Seq) {
        self.refs.remove(&(room, seq));
    }

    pub(super) fn sweep(
        &mut self,
        unposted_before: Millis,
        avatars: &HashSet<FileId>,
    ) -> Vec<ContentHash> {
        let carried: HashSet<&FileId> = self.refs.values().flatten().collect();
        let doomed: Vec<FileId> = self
            .files
            .values()
            .filter(|f| !carried.contains(&f.id) && !avatars.contains(&f.id))
            .filter(|f| self.posted.contains(&f.id) || f.created_at < unposted_before)
            .map(|f| f.id.clone())
            .collect();
        let mut hashes = Vec::new();
        for id in doomed {
            self.posted.remove(&id);
            if let Some(f) = self.files.remove(&id) {
                hashes.push(f.hash);
                hashes.extend(f.thumb_hash);
            }
        }
        hashes.sort();
        hashes.dedup();
        hashes.retain(|h| !self.in_use(h));
        hashes
    }

    pub(super) fn in_use(&self, hash: &ContentHash) -> bool {
        self.files
            .values()
            .any(|f| &f.hash == hash || f.thumb_hash.as_ref() == Some(hash))
    }

    pub(super) fn secret(&mut self, name: &str, candidate: &[u8]) -> Vec<u8> {
        self.secrets
            .entry(name.to_string())
            .or_insert_with(|| candidate.to_vec())
            .clone()
    }
}
