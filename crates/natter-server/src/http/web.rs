//! The web client's files: embedded in the binary at build time, or read from `--web-dir`
//! for live editing. The app's own pages (`/`, `/r/<room>`, `/r/<room>/<seq>`) get
//! index.html; any other path without an extension gets index.html with status 404, and the
//! app shows its not-found page (a client-side route table would otherwise show the chat).
//! From `--web-dir`, only files that resolve (after symlinks) inside the directory are
//! served; others are 404 like missing ones. A 404 has the JSON error body of the API.
//!
//! Caching (docs/deployment.md): every file has a strong `ETag` (its content hash, with a
//! suffix per encoding) and `Last-Modified`, and a matching `If-None-Match` (or, without one,
//! `If-Modified-Since`) gets 304 with no body. index.html and other unversioned paths are
//! `no-cache` (always revalidated); index.html points at the scripts and the stylesheet under
//! `/v/<version>/` ([`assets`](super::assets)), served `immutable` for a year while that is the
//! current version. Text is sent brotli- or gzip-compressed as `Accept-Encoding` allows
//! (`Vary: Accept-Encoding`). `/favicon.ico` is the SVG icon.

use super::api::ApiError;
use super::assets::{Asset, Found, Source};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use natter_core::{ChatError, ErrorCode};
use std::path::{Component, Path};

/// Revalidated on every use.
const NO_CACHE: &str = "no-cache";
/// A file under the current `/v/<version>/`: its URL changes whenever any file does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A request path as a safe relative file path ("" becomes index.html).
fn relative(uri: &Uri) -> Option<String> {
    let raw = uri.path().trim_start_matches('/');
    let path = if raw.is_empty() { "index.html" } else { raw };
    let safe = Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    safe.then(|| path.to_string())
}

fn not_found() -> Response {
    ApiError::from(ChatError::new(ErrorCode::NotFound, "no such file")).into_response()
}

pub async fn serve(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(path) = relative(&uri) else {
        return not_found();
    };
    let source = match &state.config.web_dir {
        Some(dir) => Source::Dir(dir),
        None => Source::Embedded,
    };
    if let Some(rest) = path.strip_prefix("v/") {
        return versioned(source, rest, &headers).await;
    }
    let found = match path.as_str() {
        "index.html" => source.index().await,
        "favicon.ico" => source.load("favicon.svg").await,
        _ => source.load(&path).await,
    };
    match found {
        Found::File(asset) => return respond(&headers, StatusCode::OK, &asset, NO_CACHE),
        Found::Outside => return not_found(),
        Found::Missing => {}
    }
    // A path without an extension is a page: the app's own routes are found, any other
    // gets the app too, with 404, and the app shows "page not found".
    if !path.contains('.') {
        if let Found::File(page) = source.index().await {
            let status = if is_app_route(&path) {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            return respond(&headers, status, &page, NO_CACHE);
        }
    }
    not_found()
}

/// `v/<version>/<file>`: immutable while `<version>` is the current one. An older version's
/// URL (a page loaded before a deploy) gets today's file, revalidated like any other.
async fn versioned(source: Source<'_>, rest: &str, headers: &HeaderMap) -> Response {
    let Some((version, file)) = rest.split_once('/') else {
        return not_found();
    };
    if file.is_empty() || file == "index.html" {
        return not_found();
    }
    let Found::File(asset) = source.load(file).await else {
        return not_found();
    };
    let current = source.version().await.is_some_and(|v| v.id == version);
    let cache = if current { IMMUTABLE } else { NO_CACHE };
    respond(headers, StatusCode::OK, &asset, cache)
}

/// A content coding the server has, and the suffix it gives the entity tag.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Coding {
    Identity,
    Gzip,
    Brotli,
}

/// The client's weight for `coding` in `Accept-Encoding` (absent header: identity only).
fn weight(accept: &str, coding: &str) -> f32 {
    let mut star = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return q;
        }
        if name == "*" {
            star = Some(q);
        }
    }
    star.unwrap_or(0.0)
}

/// Brotli, else gzip, when the asset has it and the client takes it.
fn negotiate(headers: &HeaderMap, asset: &Asset) -> Coding {
    let accept = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if asset.br.is_some() && weight(&accept, "br") > 0.0 {
        Coding::Brotli
    } else if asset.gzip.is_some() && weight(&accept, "gzip") > 0.0 {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

fn etag(asset: &Asset, coding: Coding) -> String {
    match coding {
        Coding::Identity => format!("\"{}\"", asset.hash),
        Coding::Gzip => format!("\"{}-gz\"", asset.hash),
        Coding::Brotli => format!("\"{}-br\"", asset.hash),
    }
}

/// Whether the client's copy is current: `If-None-Match` (weak comparison, as for GET), or
/// without it `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, etag: &str, modified: std::time::SystemTime) -> bool {
    let mut tags = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .peekable();
    if tags.peek().is_some() {
        return tags.flat_map(|v| v.split(',')).any(|t| {
            let t = t.trim();
            t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
        });
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| modified <= since)
}

fn respond(
    headers: &HeaderMap,
    status: StatusCode,
    asset: &Asset,
    cache: &'static str,
) -> Response {
    let coding = negotiate(headers, asset);
    let tag = etag(asset, coding);
    let mut out = HeaderMap::new();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if asset.gzip.is_some() || asset.br.is_some() {
        out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    // Validators only on the file's own 200 (a 404 page is not a version of anything).
    if status == StatusCode::OK {
        if let Ok(v) = HeaderValue::from_str(&tag) {
            out.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(asset.modified)) {
            out.insert(header::LAST_MODIFIED, v);
        }
        if not_modified(headers, &tag, asset.modified) {
            return (StatusCode::NOT_MODIFIED, out).into_response();
        }
    }
    if let Ok(v) = HeaderValue::from_str(&asset.mime) {
        out.insert(header::CONTENT_TYPE, v);
    }
    let body = match coding {
        Coding::Identity => asset.body.clone(),
        Coding::Gzip => asset.gzip.clone().unwrap_or_default(),
        Coding::Brotli => asset.br.clone().unwrap_or_default(),
    };
    match coding {
        Coding::Identity => {}
        Coding::Gzip => {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        Coding::Brotli => {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        }
    }
    (status, out, body).into_response()
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
    use super::{is_app_route, weight};

    #[test]
    fn accept_encoding_weights() {
        assert_eq!(weight("gzip, deflate, br, zstd", "br"), 1.0);
        assert_eq!(weight("gzip;q=0.5, br;q=0", "br"), 0.0);
        assert_eq!(weight("gzip;q=0.5, br;q=0", "gzip"), 0.5);
        assert_eq!(weight("*", "br"), 1.0);
        assert_eq!(weight("br;q=0, *", "br"), 0.0);
        assert_eq!(weight("", "gzip"), 0.0);
        assert_eq!(weight("GZIP", "gzip"), 1.0);
    }

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
