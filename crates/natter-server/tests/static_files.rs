//! The web client's files over real HTTP (issue 21): strong ETags and Last-Modified with
//! 304s, `no-cache` index.html pointing at `/v/<version>/` files served immutable, gzip and
//! brotli by `Accept-Encoding` (each encoding its own ETag), `/favicon.ico`, the manifest,
//! and `/api/config`. From the embedded copy and from `--web-dir` (a changed file changes
//! the version).

use natter_testkit::*;
use reqwest::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, LAST_MODIFIED, VARY};
use reqwest::{Client, Response};
use std::io::Read;

fn header(r: &Response, name: reqwest::header::HeaderName) -> String {
    r.headers()
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn get(http: &Client, url: String, headers: &[(&str, &str)]) -> Response {
    let mut req = http.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

/// The `/v/<version>/` prefix index.html points its script at.
async fn version_prefix(server: &TestServer, http: &Client) -> String {
    let page = get(http, server.http("/"), &[]).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    let at = html
        .find("src=\"/v/")
        .expect("index.html's script is versioned")
        + 5;
    let end = html[at..].find("/js/app.js").expect("app.js") + at;
    html[at..=end].to_string()
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

fn unbrotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(body, 4096)
        .read_to_end(&mut out)
        .expect("brotli");
    out
}

#[tokio::test]
async fn index_is_revalidated_and_versioned_files_are_immutable() {
    let server = TestServer::start().await;
    let http = Client::new();
    let page = get(&http, server.http("/"), &[]).await;
    assert_eq!(header(&page, CACHE_CONTROL), "no-cache");
    let tag = header(&page, ETAG);
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && tag.len() > 10,
        "strong: {tag}"
    );
    let modified = header(&page, LAST_MODIFIED);
    assert!(modified.ends_with(" GMT"), "{modified}");
    let html = page.text().await.expect("body");
    assert!(
        !html.contains("\"/js/") && !html.contains("\"/css/"),
        "{html}"
    );

    // If-None-Match: 304 with no body; a different tag: 200. If-Modified-Since alike.
    let same = get(&http, server.http("/"), &[("if-none-match", &tag)]).await;
    assert_eq!(same.status(), 304);
    assert_eq!(header(&same, ETAG), tag);
    assert_eq!(header(&same, CACHE_CONTROL), "no-cache");
    assert!(same.bytes().await.expect("body").is_empty());
    let listed = format!("\"nope\", W/{tag}");
    let weak = get(&http, server.http("/"), &[("if-none-match", &listed)]).await;
    assert_eq!(weak.status(), 304);
    let other = get(&http, server.http("/"), &[("if-none-match", "\"other\"")]).await;
    assert_eq!(other.status(), 200);
    let since = get(&http, server.http("/"), &[("if-modified-since", &modified)]).await;
    assert_eq!(since.status(), 304);
    let before = get(
        &http,
        server.http("/"),
        &[("if-modified-since", "Thu, 01 Jan 1970 00:00:01 GMT")],
    )
    .await;
    assert_eq!(before.status(), 200);
    // If-None-Match wins over If-Modified-Since.
    let both = get(
        &http,
        server.http("/"),
        &[
            ("if-none-match", "\"other\""),
            ("if-modified-since", &modified),
        ],
    )
    .await;
    assert_eq!(both.status(), 200);

    let v = version_prefix(&server, &http).await;
    let app = get(&http, server.http(&format!("{v}js/app.js")), &[]).await;
    assert_eq!(app.status(), 200);
    assert_eq!(
        header(&app, CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&app, CONTENT_TYPE), "text/javascript");
    let body = app.text().await.expect("body");
    // Relative imports stay under the prefix: a module it imports is there too.
    assert!(body.contains("from './api.js'"));
    let api = get(&http, server.http(&format!("{v}js/api.js")), &[]).await;
    assert_eq!(api.status(), 200);
    let css = get(&http, server.http(&format!("{v}css/app.css")), &[]).await;
    assert_eq!(header(&css, CONTENT_TYPE), "text/css");
    assert!(header(&css, CACHE_CONTROL).contains("immutable"));
    // Another version's URL gets today's file, but revalidated; the plain URL too.
    let old = get(&http, server.http("/v/0123456789abcdef/js/app.js"), &[]).await;
    assert_eq!(old.status(), 200);
    assert_eq!(header(&old, CACHE_CONTROL), "no-cache");
    let plain = get(&http, server.http("/js/app.js"), &[]).await;
    assert_eq!(header(&plain, CACHE_CONTROL), "no-cache");
    assert_eq!(plain.text().await.expect("body"), body);
    for missing in [
        "/v/",
        "/v/abc",
        &format!("{v}index.html"),
        &format!("{v}nope.js"),
    ] {
        let r = get(&http, server.http(missing), &[]).await;
        assert_eq!(r.status(), 404, "{missing}");
    }
}

#[tokio::test]
async fn text_is_compressed_by_accept_encoding_with_an_etag_per_encoding() {
    let server = TestServer::start().await;
    let http = Client::new();
    let v = version_prefix(&server, &http).await;
    let url = server.http(&format!("{v}css/app.css"));
    let plain = get(&http, url.clone(), &[]).await;
    assert_eq!(header(&plain, CONTENT_ENCODING), "");
    assert_eq!(header(&plain, VARY), "accept-encoding");
    let plain_tag = header(&plain, ETAG);
    let original = plain.bytes().await.expect("body").to_vec();

    let gz = get(&http, url.clone(), &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&gz, CONTENT_ENCODING), "gzip");
    assert_eq!(header(&gz, VARY), "accept-encoding");
    let gz_tag = header(&gz, ETAG);
    let gz_body = gz.bytes().await.expect("body");
    assert!(gz_body.len() < original.len() / 2, "{}", gz_body.len());
    assert_eq!(gunzip(&gz_body), original);

    let br = get(
        &http,
        url.clone(),
        &[("accept-encoding", "gzip, deflate, br")],
    )
    .await;
    assert_eq!(header(&br, CONTENT_ENCODING), "br");
    let br_tag = header(&br, ETAG);
    let br_body = br.bytes().await.expect("body");
    assert!(br_body.len() < gz_body.len(), "brotli is the smaller");
    assert_eq!(unbrotli(&br_body), original);

    // Three encodings, three strong tags; each revalidates only its own encoding.
    assert!(plain_tag != gz_tag && gz_tag != br_tag && plain_tag != br_tag);
    for tag in [&plain_tag, &gz_tag, &br_tag] {
        assert!(!tag.starts_with("W/"), "{tag}");
    }
    let hit = get(
        &http,
        url.clone(),
        &[("accept-encoding", "gzip"), ("if-none-match", &gz_tag)],
    )
    .await;
    assert_eq!(hit.status(), 304);
    let miss = get(
        &http,
        url.clone(),
        &[("accept-encoding", "br"), ("if-none-match", &gz_tag)],
    )
    .await;
    assert_eq!(miss.status(), 200);
    assert_eq!(header(&miss, CONTENT_ENCODING), "br");
    // q=0 refuses a coding.
    let refused = get(&http, url.clone(), &[("accept-encoding", "br;q=0, gzip")]).await;
    assert_eq!(header(&refused, CONTENT_ENCODING), "gzip");
    // An image is sent as it is.
    let png = get(
        &http,
        server.http("/icon-192.png"),
        &[("accept-encoding", "gzip, br")],
    )
    .await;
    assert_eq!(png.status(), 200);
    assert_eq!(header(&png, CONTENT_TYPE), "image/png");
    assert_eq!(header(&png, CONTENT_ENCODING), "");
}

#[tokio::test]
async fn favicon_and_manifest_are_served() {
    let server = TestServer::start().await;
    let http = Client::new();
    let icon = get(&http, server.http("/favicon.ico"), &[]).await;
    assert_eq!(icon.status(), 200);
    assert_eq!(header(&icon, CONTENT_TYPE), "image/svg+xml");
    assert!(!header(&icon, ETAG).is_empty());
    assert!(icon.text().await.expect("body").starts_with("<svg"));

    let html = get(&http, server.http("/"), &[])
        .await
        .text()
        .await
        .expect("body");
    assert!(html.contains("<link rel=\"manifest\" href=\"/manifest.webmanifest\">"));
    let m = get(&http, server.http("/manifest.webmanifest"), &[]).await;
    assert_eq!(m.status(), 200);
    assert_eq!(header(&m, CONTENT_TYPE), "application/manifest+json");
    let manifest: serde_json::Value = m.json().await.expect("JSON");
    assert_eq!(manifest["name"], "Natter");
    assert_eq!(manifest["start_url"], "/");
    assert_eq!(manifest["display"], "standalone");
    let icons = manifest["icons"].as_array().expect("icons");
    assert!(icons.iter().any(|i| i["sizes"] == "512x512"));
    for i in icons {
        let src = i["src"].as_str().expect("src");
        let r = get(&http, server.http(src), &[]).await;
        assert_eq!(r.status(), 200, "{src}");
        assert_eq!(header(&r, CONTENT_TYPE), i["type"], "{src}");
    }
}

#[tokio::test]
async fn config_tells_what_the_server_allows() {
    let server = TestServer::start_with(|s| {
        s.allow_guests = Some(true);
        s.max_upload_bytes = Some(1_000_000);
    })
    .await;
    let http = Client::new();
    let config: serde_json::Value = get(&http, server.http("/api/config"), &[])
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(config["allow_guests"], true);
    assert_eq!(config["max_upload_bytes"], 1_000_000);
    for key in [
        "max_message_chars",
        "max_frame_bytes",
        "rate_per_sec",
        "rate_burst",
        "upload_quota_bytes",
    ] {
        assert!(config[key].is_number(), "{key}: {config}");
    }
}

/// From `--web-dir`, editing a file changes the version (and index.html's pointer to it);
/// the old version's URL is no longer immutable.
#[tokio::test]
async fn web_dir_edits_change_the_version() {
    let web = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(web.path().join("js")).expect("mkdir");
    std::fs::write(
        web.path().join("index.html"),
        "<script type=\"module\" src=\"/js/app.js\"></script>",
    )
    .expect("write");
    std::fs::write(web.path().join("js/app.js"), "let app = 1;").expect("write");
    let dir = web.path().to_path_buf();
    let server = TestServer::start_with(|s| s.web_dir = Some(dir)).await;
    let http = Client::new();
    let first = version_prefix(&server, &http).await;
    let tag = header(&get(&http, server.http("/"), &[]).await, ETAG);
    std::fs::write(web.path().join("js/app.js"), "let app = 22;").expect("write");
    let second = version_prefix(&server, &http).await;
    assert_ne!(first, second);
    let page = get(&http, server.http("/"), &[("if-none-match", &tag)]).await;
    assert_eq!(page.status(), 200, "index.html changed with the version");
    let new = get(&http, server.http(&format!("{second}js/app.js")), &[]).await;
    assert!(header(&new, CACHE_CONTROL).contains("immutable"));
    assert_eq!(new.text().await.expect("body"), "let app = 22;");
    let old = get(&http, server.http(&format!("{first}js/app.js")), &[]).await;
    assert_eq!(header(&old, CACHE_CONTROL), "no-cache");
}
