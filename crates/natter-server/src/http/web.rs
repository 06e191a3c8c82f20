//! The web client's files: embedded in the binary at build time, or read from `--web-dir`
//! for live editing. Unknown paths that look like pages get index.html (the app routes).

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};
use std::path::{Component, Path};

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

fn respond(path: &str, bytes: Vec<u8>) -> Response {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    (
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

async fn load(state: &AppState, path: &str) -> Option<Vec<u8>> {
    match &state.config.web_dir {
        Some(dir) => tokio::fs::read(dir.join(path)).await.ok(),
        None => WEB.get_file(path).map(|f| f.contents().to_vec()),
    }
}

pub async fn serve(State(state): State<AppState>, uri: Uri) -> Response {
    let Some(path) = relative(&uri) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(bytes) = load(&state, &path).await {
        return respond(&path, bytes);
    }
    // A path without an extension is a page of the app: serve the app.
    if !path.contains('.') {
        if let Some(bytes) = load(&state, "index.html").await {
            return respond("index.html", bytes);
        }
    }
    StatusCode::NOT_FOUND.into_response()
}
