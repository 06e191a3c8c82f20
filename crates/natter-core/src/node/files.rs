//! Files: who may download an upload (its owner, members of a room where a message carries
//! it, and anyone signed in for an avatar; anyone else learns nothing, not even that it
//! exists), how much a user may
//! still upload, which files a message may carry, and the sweep that removes files no message
//! carries (with their blobs once no record names them).

use super::Node;
use crate::error::{ChatError, ErrorCode};
use crate::files::{FileId, FileStore, StoredFile, MAX_FILES_PER_MESSAGE, UNPOSTED_FILE_TTL};
use crate::model::*;
use std::sync::Arc;

impl Node {
    /// Gives the node the store of uploads' bytes (once; later calls are ignored).
    pub fn set_file_store(&self, files: Arc<dyn FileStore>) {
        let _ = self.file_store.set(files);
    }

    /// The store of uploads' bytes, if the server gave one.
    pub fn file_store(&self) -> Option<&Arc<dyn FileStore>> {
        self.file_store.get()
    }

    /// The files of a `message.send`: at most `MAX_FILES_PER_MESSAGE`, each named once, each
    /// shaped like an id (whose they are is the store's check, in the append).
    pub(crate) fn check_files(files: &[FileId]) -> Result<(), ChatError> {
        if files.len() > MAX_FILES_PER_MESSAGE {
            return Err(ChatError::invalid(format!(
                "a message carries at most {MAX_FILES_PER_MESSAGE} files"
            )));
        }
        for (i, id) in files.iter().enumerate() {
            if !FileId::is_valid(id.as_str()) {
                return Err(ChatError::new(ErrorCode::UnknownFile, "no such file"));
            }
            if files[..i].contains(id) {
                return Err(ChatError::invalid("a message names each file once"));
            }
        }
        Ok(())
    }

    /// The file `id` if `user` may download it: they uploaded it, they are a member of a room
    /// with a message that carries it, or it is its owner's avatar. None otherwise, and for an
    /// id that names nothing.
    pub async fn file_for(&self, user: UserId, id: &str) -> Result<Option<StoredFile>, ChatError> {
        if !FileId::is_valid(id) {
            return Ok(None);
        }
        let id = FileId(id.to_string());
        let Some(file) = self.store.file(&id).await? else {
            return Ok(None);
        };
        if file.owner == user {
            return Ok(Some(file));
        }
        for room in self.store.file_rooms(&id).await? {
            if self.store.is_member(room, user).await? {
                return Ok(Some(file));
            }
        }
        // Someone's avatar: any signed-in user may see it.
        let is_avatar = self
            .store
            .profile(file.owner)
            .await?
            .is_some_and(|p| p.avatar.as_ref() == Some(&id));
        Ok(is_avatar.then_some(file))
    }

    /// The user of the session with this token hash, if it still works (not revoked, not
    /// expired): what a download key names. Records no use.
    pub async fn user_for_session_hash(&self, hash: &[u8]) -> Result<Option<User>, ChatError> {
        let Some(session) = self.store.session(hash).await? else {
            return Ok(None);
        };
        let mut ttl = self.config.session_ttl;
        if session.user.guest {
            ttl = ttl.min(self.config.guest_ttl);
        }
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let now = self.config.clock.now_millis();
        Ok((now.saturating_sub(session.last_used_at) <= ttl).then_some(session.user))
    }

    /// Bytes `user` may still upload under `upload_quota_bytes`.
    pub async fn upload_allowance(&self, user: UserId) -> Result<u64, ChatError> {
        let used = self.store.file_bytes_of(user).await?;
        Ok(self.config.upload_quota_bytes.saturating_sub(used))
    }

    /// Records a finished upload (its blobs are in the file store already).
    pub async fn record_upload(&self, file: StoredFile) -> Result<(), ChatError> {
        Ok(self.store.create_file(file).await?)
    }

    /// Removes files no message carries (posted ones at once, unposted uploads after
    /// `UNPOSTED_FILE_TTL`) and the blobs no record names any more. Errors are logged.
    pub(crate) async fn sweep_files(&self) {
        let ttl = i64::try_from(UNPOSTED_FILE_TTL.as_millis()).unwrap_or(i64::MAX);
        let unposted_before = self.config.clock.now_millis().saturating_sub(ttl);
        let hashes = match self.store.sweep_files(unposted_before).await {
            Ok(hashes) => hashes,
            Err(e) => {
                tracing::warn!(error = %e, "file sweep failed");
                return;
            }
        };
        let Some(blobs) = self.file_store.get() else {
            return;
        };
        for hash in hashes {
            // An upload of the same bytes may have arrived since: look again (the window left
            // is between this look and the delete; see docs/security.md).
            match self.store.hash_in_use(&hash).await {
                Ok(false) => {}
                Ok(true) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "file sweep: checking a blob failed");
                    continue;
                }
            }
            if let Err(e) = blobs.delete(&hash).await {
                tracing::warn!(error = %e, "file sweep: deleting a blob failed");
            }
        }
    }
}
