//! Files over HTTP (docs/protocol.md section 1): `POST /api/files` (an upload, streamed to a
//! temporary file while it is hashed and counted), `GET /api/files/key` (a download key for
//! the caller's session), `GET /api/files/{id}` and `/api/files/{id}/thumb` (the bytes, to
//! the owner and to members of a room where a message carries the file; anyone else gets the
//! same 404 as for an id that names nothing).
//!
//! Modules: `upload` (streaming, limits, the record), `download` (who asks, the response
//! headers), `sniff` (the type from the bytes), `image` (decoding within bounds, thumbnails),
//! `key` (download keys). Query strings of `/api/files` hold keys: nothing here logs a URI
//! (and the server has no request log; see docs/security.md).

mod download;
mod image;
mod key;
mod sniff;
mod upload;

pub use download::{download, download_key, thumbnail};
pub use upload::upload;

use natter_core::{FileStore, Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Images decoded at once (each may take `max_image_pixels` x 4 bytes).
const DECODES_AT_ONCE: usize = 2;

/// What the file endpoints share.
pub struct Files {
    /// Where the bytes are kept.
    pub blobs: Arc<dyn FileStore>,
    keys: key::DownloadKeys,
    /// Uploads in progress are written here (under the data dir), then moved to `blobs`.
    tmp: PathBuf,
    decoding: Semaphore,
}

impl Files {
    /// The file endpoints' state: the signing secret from the store (made on first start),
    /// and an empty temporary directory (left-overs of a crash are removed).
    pub async fn open(
        store: &Arc<dyn Store>,
        blobs: Arc<dyn FileStore>,
        data_dir: &std::path::Path,
    ) -> Result<Files, StoreError> {
        let candidate: [u8; 32] = rand::random();
        let secret = store.server_secret(key::SECRET_NAME, &candidate).await?;
        let tmp = data_dir.join("tmp");
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        tokio::fs::create_dir_all(&tmp)
            .await
            .map_err(|e| StoreError::Backend(format!("creating {}: {e}", tmp.display())))?;
        Ok(Files {
            blobs,
            keys: key::DownloadKeys::new(secret),
            tmp,
            decoding: Semaphore::new(DECODES_AT_ONCE),
        })
    }

    /// The directory uploads in progress are written to.
    pub fn tmp_dir(&self) -> &std::path::Path {
        &self.tmp
    }
}
