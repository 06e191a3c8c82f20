//! Downloads: `GET /api/files/{id}` and `/api/files/{id}/thumb` with `Authorization: Bearer`
//! or a download key (`?k=`), and `GET /api/files/key`, which gives one. Whoever is not
//! allowed (no credentials, a revoked session, an expired or forged key, not the owner nor a
//! member of a room where a message carries the file, or an id that names nothing) gets the
//! same 404. Every file response is `nosniff`, sandboxed by its own CSP, private to the
//! browser's cache, and an attachment unless it is an image (decoded at upload), so nothing
//! uploaded is ever rendered as a page.

use super::image::thumb_mime;
use super::key::{KeyHolder, KEY_TTL_MS};
use crate::http::api::{bearer, ApiError};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt;
use natter_core::files::{ContentHash, StoredFile};
use natter_core::{ChatError, ErrorCode, User};
use serde::Deserialize;
use serde_json::json;

/// The policy of every file response: no script, no plugin, no navigation; a unique origin.
pub const FILE_CSP: &str = "sandbox; default-src 'none'";
/// Files are immutable; a browser may keep them (not a shared cache) for a day.
const CACHE: &str = "private, max-age=86400";

#[derive(Deserialize)]
pub struct KeyQuery {
    k: Option<String>,
}

fn not_found() -> ApiError {
    ApiError::from(ChatError::new(ErrorCode::NotFound, "no such file"))
}

/// Who asks: the bearer's user, else the key's (if its session still works); else nobody.
async fn asker(state: &AppState, headers: &HeaderMap, key: Option<&str>) -> Option<User> {
    if headers.contains_key(header::AUTHORIZATION) {
        let token = bearer(headers).ok()?;
        return state.node.user_for_token(token).await.ok();
    }
    let now = state.node.config().clock.now_millis();
    let KeyHolder { user, session_hash } = state.files.keys.check(key?, now)?;
    let found = state
        .node
        .user_for_session_hash(&session_hash)
        .await
        .ok()??;
    (found.id == user).then_some(found)
}

/// The file `id` if the asker may have it.
async fn allowed_file(
    state: &AppState,
    headers: &HeaderMap,
    key: Option<&str>,
    id: &str,
) -> Result<StoredFile, ApiError> {
    let Some(user) = asker(state, headers, key).await else {
        return Err(not_found());
    };
    state
        .node
        .file_for(user.id, id)
        .await?
        .ok_or_else(not_found)
}

/// `filename*=UTF-8''...` (RFC 5987/6266), with an ASCII `filename` beside it.
fn disposition(inline: bool, name: &str) -> HeaderValue {
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Streams a blob with the file headers.
async fn serve_blob(
    state: &AppState,
    hash: &ContentHash,
    mime: &str,
    inline: bool,
    name: &str,
) -> Result<Response, ApiError> {
    let Some(blob) = state
        .files
        .blobs
        .open(hash)
        .await
        .map_err(ChatError::from)?
    else {
        tracing::warn!(%hash, "a file record without its blob");
        return Err(not_found());
    };
    let body = Body::from_stream(blob.chunks.map_err(std::io::Error::other));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, blob.size.into());
    h.insert(header::CONTENT_DISPOSITION, disposition(inline, name));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FILE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    Ok(response)
}

/// Whether a type is served inline: the image types, which were decoded at upload.
fn inline(mime: &str) -> bool {
    matches!(
        mime,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<KeyQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let file = allowed_file(&state, req.headers(), q.k.as_deref(), &id).await?;
    serve_blob(
        &state,
        &file.hash,
        &file.kind,
        inline(&file.kind),
        &file.name,
    )
    .await
}

pub async fn thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<KeyQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let file = allowed_file(&state, req.headers(), q.k.as_deref(), &id).await?;
    let Some(thumb) = &file.thumb_hash else {
        return Err(not_found());
    };
    let mime = thumb_mime(&file.kind);
    serve_blob(&state, thumb, mime, true, &format!("thumb-{}", file.name)).await
}

/// `GET /api/files/key`: a download key for the caller's session, and when it expires.
pub async fn download_key(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)?;
    let user = state.node.user_for_token(token).await?;
    let expires = state.node.config().clock.now_millis() + KEY_TTL_MS;
    let hash = natter_core::accounts::token_hash(token);
    let key = state
        .files
        .keys
        .issue(user.id, &hash, expires)
        .ok_or_else(ChatError::internal)?;
    let mut response = Json(json!({ "key": key, "expires": expires })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn names_are_quoted_safely() {
        let v = disposition(false, "a \"b\"\r\n ä.txt");
        let v = v.to_str().expect("ascii");
        assert!(
            v.starts_with("attachment; filename=\"a _b___ _.txt\""),
            "{v}"
        );
        assert!(
            v.ends_with("filename*=UTF-8''a%20%22b%22%0D%0A%20%C3%A4.txt"),
            "{v}"
        );
    }
}
