//! `POST /api/files?name=<file name>`: the body (any `Content-Type`, `Content-Length`
//! optional) is streamed to a temporary file while it is hashed (SHA-256) and counted, never
//! held whole in memory. Past `max_upload_bytes` (413 `file_too_large`) or the user's quota
//! (413 `quota_exceeded`) it stops reading at once: the temporary file is removed and the
//! response closes the connection, so the rest of the body is never read. Each chunk must
//! arrive within `http_body_timeout`. Then the type is sniffed, an image decoded within bounds
//! with a thumbnail made (400 `invalid_image`), the blobs put in the file store, the record
//! stored, and the file returned (201).

use super::image::{self as images, Decoded};
use super::sniff::{Kind, TextCheck, HEAD_BYTES};
use crate::http::api::{bearer, ApiError};
use crate::AppState;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use natter_core::files::{ContentHash, FileId, StoredFile, MAX_FILE_NAME_CHARS};
use natter_core::{ChatError, ErrorCode, User};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
}

/// A temporary file, removed when dropped (on every error path) unless it was moved away.
struct TempFile(PathBuf);

impl TempFile {
    fn new(dir: &Path) -> TempFile {
        TempFile(dir.join(format!("upload-{}", FileId::random())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The name kept: its last path component, without control characters, at most
/// `MAX_FILE_NAME_CHARS`; "file" when nothing is left.
fn clean_name(name: Option<&str>) -> String {
    let name = name.unwrap_or_default();
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "file".into()
    } else {
        cleaned.to_string()
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "upload failed");
    ApiError::from(ChatError::internal())
}

/// A refusal that ends the request without reading the rest of its body.
fn refuse(code: ErrorCode, message: String) -> ApiError {
    let mut e = ApiError::from(ChatError::new(code, message));
    e.status = Some(match code {
        ErrorCode::FileTooLarge | ErrorCode::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        _ => StatusCode::BAD_REQUEST,
    });
    e.close = true;
    e
}

/// What streaming the body gave.
struct Received {
    size: u64,
    hash: ContentHash,
    head: Vec<u8>,
    text: bool,
}

/// Streams the body to `to`, refusing it once it passes `max` bytes (`too_big` says which
/// limit) or a chunk is late.
async fn receive(
    state: &AppState,
    req: Request,
    to: &Path,
    max_upload: u64,
    allowance: u64,
) -> Result<Received, ApiError> {
    let mut file = tokio::fs::File::create(to).await.map_err(internal)?;
    let mut body = req.into_body().into_data_stream();
    let (mut size, mut hasher, mut head, mut text) =
        (0u64, Sha256::new(), Vec::new(), TextCheck::default());
    loop {
        let chunk = match tokio::time::timeout(state.config.http_body_timeout, body.next()).await {
            Err(_) => {
                return Err(refuse(
                    ErrorCode::RequestTimeout,
                    "the upload stalled: no data arrived in time".into(),
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "upload body failed");
                return Err(refuse(
                    ErrorCode::InvalidRequest,
                    "the upload was cut off".into(),
                ));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        size += chunk.len() as u64;
        if size > max_upload {
            return Err(refuse(
                ErrorCode::FileTooLarge,
                format!("a file is at most {max_upload} bytes"),
            ));
        }
        if size > allowance {
            return Err(refuse(
                ErrorCode::QuotaExceeded,
                "this file would take you over your upload quota".into(),
            ));
        }
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        text.feed(&chunk);
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    file.sync_all().await.map_err(internal)?;
    Ok(Received {
        size,
        hash: ContentHash::from_digest(&hasher.finalize()),
        head,
        text: text.finish(),
    })
}

/// Refuses an upload whose `Content-Length` says already that it cannot fit.
fn check_length(req: &Request, max_upload: u64, allowance: u64) -> Result<(), ApiError> {
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match length {
        Some(n) if n > max_upload => Err(refuse(
            ErrorCode::FileTooLarge,
            format!("a file is at most {max_upload} bytes"),
        )),
        Some(n) if n > allowance => Err(refuse(
            ErrorCode::QuotaExceeded,
            "this file would take you over your upload quota".into(),
        )),
        _ => Ok(()),
    }
}

/// Decodes an image on a blocking thread (at most `DECODES_AT_ONCE` at once).
async fn decode(state: &AppState, path: &Path, kind: Kind) -> Result<Decoded, ApiError> {
    let _permit = state.files.decoding.acquire().await.map_err(internal)?;
    let (path, max) = (path.to_path_buf(), state.config.max_image_pixels);
    tokio::task::spawn_blocking(move || images::decode(&path, kind, max))
        .await
        .map_err(internal)?
        .map_err(|images::Refused(why)| {
            ApiError::from(ChatError::new(
                ErrorCode::InvalidImage,
                format!("this image is refused: {why}"),
            ))
        })
}

/// Puts a thumbnail's bytes in the file store; returns its hash.
async fn put_thumb(state: &AppState, thumb: &[u8]) -> Result<ContentHash, ApiError> {
    let hash = ContentHash::from_digest(&Sha256::digest(thumb));
    let tmp = TempFile::new(state.files.tmp_dir());
    tokio::fs::write(&tmp.0, thumb).await.map_err(internal)?;
    state
        .files
        .blobs
        .put(&hash, &tmp.0)
        .await
        .map_err(internal)?;
    Ok(hash)
}

pub async fn upload(
    State(state): State<AppState>,
    Query(query): Query<UploadQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let user: User = state.node.user_for_token(bearer(req.headers())?).await?;
    let max_upload = state.config.max_upload_bytes;
    let allowance = state.node.upload_allowance(user.id).await?;
    if allowance == 0 {
        return Err(refuse(
            ErrorCode::QuotaExceeded,
            "you have used up your upload quota".into(),
        ));
    }
    check_length(&req, max_upload, allowance)?;
    let tmp = TempFile::new(state.files.tmp_dir());
    let got = receive(&state, req, &tmp.0, max_upload, allowance).await?;
    let kind = Kind::of(&got.head, got.text);
    let (mut width, mut height, mut thumb_hash) = (None, None, None);
    if kind.image_format().is_some() {
        let decoded = decode(&state, &tmp.0, kind).await?;
        width = Some(decoded.width);
        height = Some(decoded.height);
        thumb_hash = Some(put_thumb(&state, &decoded.thumb).await?);
    }
    state
        .files
        .blobs
        .put(&got.hash, &tmp.0)
        .await
        .map_err(internal)?;
    drop(tmp);
    let file = StoredFile {
        id: FileId::random(),
        owner: user.id,
        name: clean_name(query.name.as_deref()),
        size: got.size,
        kind: kind.mime().to_string(),
        width,
        height,
        hash: got.hash,
        thumb_hash,
        created_at: state.node.config().clock.now_millis(),
    };
    state.node.record_upload(file.clone()).await?;
    tracing::info!(user = %user.name, size = file.size, kind = %file.kind, "uploaded");
    let mut response = (StatusCode::CREATED, Json(json!({ "file": file.info() }))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::clean_name;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_name(Some("C:\\x\\shot.png")), "shot.png");
        assert_eq!(clean_name(Some("a\nb.txt")), "ab.txt");
        assert_eq!(clean_name(Some("..")), "file");
        assert_eq!(clean_name(None), "file");
        assert_eq!(clean_name(Some(&"x".repeat(300))).chars().count(), 255);
    }
}
