//! `DirFileStore`: uploads' bytes as files under a directory, `<dir>/ab/cd/<sha256>` (two
//! levels of fan-out keep each directory small). A blob is put by renaming the finished
//! upload into place (or, across file systems, copying it to a temporary name in the target
//! directory first), so a reader sees the whole blob or none.

use async_trait::async_trait;
use futures_util::StreamExt;
use natter_core::files::{Blob, ContentHash, FileStore};
use natter_core::StoreError;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio_util::io::ReaderStream;

/// Bytes read from a blob file at once.
const READ_CHUNK: usize = 64 * 1024;

fn io(e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("file store: {e}"))
}

/// Blobs under one directory (the server's `<data_dir>/files`).
pub struct DirFileStore {
    root: PathBuf,
}

impl DirFileStore {
    /// A store under `root` (created when the first blob is put).
    pub fn new(root: impl Into<PathBuf>) -> DirFileStore {
        DirFileStore { root: root.into() }
    }

    fn path(&self, hash: &ContentHash) -> PathBuf {
        let h = hash.as_str();
        self.root.join(&h[0..2]).join(&h[2..4]).join(h)
    }
}

#[async_trait]
impl FileStore for DirFileStore {
    async fn put(&self, hash: &ContentHash, from: &Path) -> Result<(), StoreError> {
        let to = self.path(hash);
        if tokio::fs::try_exists(&to).await.map_err(io)? {
            return Ok(());
        }
        let dir = to.parent().ok_or_else(|| io(ErrorKind::NotFound.into()))?;
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        match tokio::fs::rename(from, &to).await {
            Ok(()) => Ok(()),
            Err(_) => {
                // Another file system: copy beside the target, then rename into place.
                let partial = dir.join(format!("{}.partial", hash.as_str()));
                tokio::fs::copy(from, &partial).await.map_err(io)?;
                tokio::fs::rename(&partial, &to).await.map_err(io)
            }
        }
    }

    async fn open(&self, hash: &ContentHash) -> Result<Option<Blob>, StoreError> {
        let file = match tokio::fs::File::open(self.path(hash)).await {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let size = file.metadata().await.map_err(io)?.len();
        Ok(Some(Blob {
            size,
            chunks: ReaderStream::with_capacity(file, READ_CHUNK)
                .map(|r| r.map_err(io))
                .boxed(),
        }))
    }

    async fn delete(&self, hash: &ContentHash) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(hash)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    async fn exists(&self, hash: &ContentHash) -> Result<bool, StoreError> {
        tokio::fs::try_exists(self.path(hash)).await.map_err(io)
    }
}
