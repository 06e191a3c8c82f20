//! The web client's files: embedded in the binary at build time, or read from `--web-dir`
//! for live editing. The app's own pages (`/`, `/r/<room>`, `/r/<room>/<seq>`) get
//! index.html; any other path without an extension gets index.html with status 404, and the
//! app shows its not-found page (a client-side route table would otherwise show the chat).
//! From `--web-dir`, only files that resolve (after symlinks) inside the directory are
//! served; others are 404 like missing ones. A 404 has the JSON error body of the API.

use super::api::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};
use natter_core::{ChatError, ErrorCode};
use std::path::{Component, Path};

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

fn respond(path: &str, bytes: Vec<u8>) -> Response {
    respond_with(axum::http::StatusCode::OK, path, bytes)
}

fn respond_with(status: axum::http::StatusCode, path: &str, bytes: Vec<u8>) -> Response {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    (
        status,
        [
            (header::CONTENT_TYPE, mime.essence_str().to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        bytes,
    )
        .into_response()
}

/// A request path as a safe relative file path ("" becomes index.html).
fn relative(uri: &Uri) -> Option<String> {
    let raw = uri.path().trim_start_matches('/');
    let path = if raw.is_empty() { "index.html" } else { raw };
    let safe = Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    safe.then(|| path.to_string())
}

/// What a web path finds.
enum Found {
    File(Vec<u8>),
    Missing,
    /// In `--web-dir`, a path that resolves (through a symlink) outside it: refused.
    Outside,
}

async fn load(state: &AppState, path: &str) -> Found {
    match &state.config.web_dir {
        Some(dir) => load_within(dir, path).await,
        None => WEB
            .get_file(path)
            .map_or(Found::Missing, |f| Found::File(f.contents().to_vec())),
    }
}

/// Reads `path` under `dir` if, with every symlink resolved, it is still inside `dir`.
async fn load_within(dir: &Path, path: &str) -> Found {
    let (Ok(root), Ok(file)) = (
        tokio::fs::canonicalize(dir).await,
        tokio::fs::canonicalize(dir.join(path)).await,
    ) else {
        return Found::Missing;
    };
    if !file.starts_with(&root) {
        tracing::debug!(path, "web path resolves outside --web-dir: refused");
        return Found::Outside;
    }
    tokio::fs::read(file)
        .await
        .map_or(Found::Missing, Found::File)
}

fn not_found() -> Response {
    ApiError::from(ChatError::new(ErrorCode::NotFound, "no such file")).into_response()
}

pub async fn serve(State(state): State<AppState>, uri: Uri) -> Response {
    let Some(path) = relative(&uri) else {
        return not_found();
    };
    match load(&state, &path).await {
        Found::File(bytes) => return respond(&path, bytes),
        Found::Outside => return not_found(),
        Found::Missing => {}
    }
    // A path without an extension is a page: the app's own routes are found, any other
    // gets the app too, with 404, and the app shows "page not found".
    if !path.contains('.') {
        if let Found::File(bytes) = load(&state, "index.html").await {
            let status = if is_app_route(&path) {
                axum::http::StatusCode::OK
            } else {
                axum::http::StatusCode::NOT_FOUND
            };
            return respond_with(status, "index.html", bytes);
        }
    }
    not_found()
}

/// `r/<room>` or `r/<room>/<seq>` (numbers): a room, or a message in it.
fn is_app_route(path: &str) -> bool {
    let mut parts = path.split('/');
    let number =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if parts.next() != Some("r") || !number(parts.next()) {
        return false;
    }
    match parts.next() {
        None => true,
        seq => number(seq) && parts.next().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_app_route;

    #[test]
    fn app_routes_are_rooms_and_messages() {
        for ok in ["r/1", "r/42/7"] {
            assert!(is_app_route(ok), "{ok}");
        }
        for bad in [
            "r",
            "r/",
            "r/x",
            "r/1/",
            "r/1/2/3",
            "rooms/1",
            "nonexistent",
            "r/1/x",
        ] {
            assert!(!is_app_route(bad), "{bad}");
        }
    }
}
