//! The web client's files as HTTP representations: each file once, with its content hash
//! (the strong `ETag`), its modification time (`Last-Modified`) and, for text, its gzip and
//! brotli encodings, made on first use and kept in memory. The **version** of the client is a
//! hash of every file but index.html; index.html is served with its `/js/` and `/css/`
//! references rewritten under `/v/<version>/`, so the browser may keep those for a year.
//!
//! Embedded files never change, so their assets and version are made once. From `--web-dir`
//! (live editing), a file is read again when its size or modification time changes, and the
//! version is worked out on each request that needs it: a walk of the directory that reads
//! only what changed.

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// Brotli's best setting for the embedded files: each is compressed once per process.
const BROTLI_BEST: u32 = 11;
/// From `--web-dir`, a file is compressed again after each edit: a quick setting (the whole
/// client at 11 takes seconds of CPU in a debug build).
const BROTLI_QUICK: u32 = 5;
const BROTLI_WINDOW: u32 = 22;
/// Smaller files are sent as they are: the saving would not pay for the header.
const COMPRESS_MIN_BYTES: usize = 256;

/// One file, ready to send.
#[derive(Debug)]
pub struct Asset {
    pub mime: String,
    pub body: bytes::Bytes,
    pub gzip: Option<bytes::Bytes>,
    pub br: Option<bytes::Bytes>,
    /// The first 16 bytes of the body's SHA-256, in hex: the identity encoding's entity tag.
    pub hash: String,
    /// Whole seconds, as `Last-Modified` and `If-Modified-Since` have.
    pub modified: SystemTime,
}

impl Asset {
    /// Hashes and (for text) compresses `body`: CPU work, for a blocking thread.
    fn build(path: &str, body: Vec<u8>, modified: SystemTime, quality: u32) -> Asset {
        let mime = mime_guess::from_path(path)
            .first_or_octet_stream()
            .essence_str()
            .to_string();
        let (gzip, br) = if compressible(&mime) && body.len() >= COMPRESS_MIN_BYTES {
            let smaller =
                |c: Option<Vec<u8>>| c.filter(|c| c.len() < body.len()).map(bytes::Bytes::from);
            (smaller(gzip(&body)), smaller(brotli(&body, quality)))
        } else {
            (None, None)
        };
        Asset {
            hash: natter_core::accounts::to_hex(&Sha256::digest(&body)[..16]),
            mime,
            body: body.into(),
            gzip,
            br,
            modified: whole_seconds(modified),
        }
    }
}

fn compressible(mime: &str) -> bool {
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript"
                | "application/json"
                | "application/manifest+json"
                | "application/xml"
                | "image/svg+xml"
        )
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(body).ok()?;
    enc.finish().ok()
}

fn brotli(body: &[u8], quality: u32) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = brotli::CompressorWriter::new(&mut out, 4096, quality, BROTLI_WINDOW);
        enc.write_all(body).ok()?;
        enc.flush().ok()?;
    }
    Some(out)
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Assets made so far, by key (an embedded path, or a file's canonical path), each with the
/// stamp of what it was made from (a file's size and modification time).
type Cache = Mutex<HashMap<String, (String, Arc<Asset>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// The cached asset for `key` if its stamp is `stamp`, else one made by `make` (on a
/// blocking thread) and cached.
async fn cached(
    key: String,
    stamp: String,
    make: impl FnOnce() -> Option<Asset> + Send + 'static,
) -> Option<Arc<Asset>> {
    let hit = {
        let map = cache().lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, a)| a.clone())
    };
    if hit.is_some() {
        return hit;
    }
    let asset = Arc::new(tokio::task::spawn_blocking(make).await.ok()??);
    let mut map = cache().lock().unwrap_or_else(|p| p.into_inner());
    map.insert(key, (stamp, asset.clone()));
    Some(asset)
}

/// Where the files come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Embedded,
    Dir(&'a Path),
}

/// What a web path finds.
pub enum Found {
    File(Arc<Asset>),
    Missing,
    /// In `--web-dir`, a path that resolves (through a symlink) outside it: refused.
    Outside,
}

/// The client's version: a hash of every file but index.html (and hidden ones), and the
/// latest modification among them.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub id: String,
    pub modified: SystemTime,
}

impl Source<'_> {
    /// The file at `path` (relative, already checked to have only normal components).
    pub async fn load(self, path: &str) -> Found {
        match self {
            Source::Embedded => {
                let Some(file) = WEB.get_file(path) else {
                    return Found::Missing;
                };
                let modified = file
                    .metadata()
                    .map_or(UNIX_EPOCH, include_dir::Metadata::modified);
                let contents = file.contents();
                let path = path.to_string();
                let asset = cached(format!("embedded:{path}"), String::new(), move || {
                    Some(Asset::build(
                        &path,
                        contents.to_vec(),
                        modified,
                        BROTLI_BEST,
                    ))
                })
                .await;
                asset.map_or(Found::Missing, Found::File)
            }
            Source::Dir(dir) => load_within(dir, path).await,
        }
    }

    /// The current version (embedded: worked out once).
    pub async fn version(self) -> Option<Version> {
        match self {
            Source::Embedded => {
                static VERSION: OnceLock<Version> = OnceLock::new();
                if let Some(v) = VERSION.get() {
                    return Some(v.clone());
                }
                let v = tokio::task::spawn_blocking(embedded_version).await.ok()?;
                Some(VERSION.get_or_init(|| v).clone())
            }
            Source::Dir(dir) => dir_version(dir).await,
        }
    }

    /// index.html with its `/js/` and `/css/` references under `/v/<version>/`; its
    /// `Last-Modified` is the latest of its own and the version's.
    pub async fn index(self) -> Found {
        let page = match self.load("index.html").await {
            Found::File(page) => page,
            other => return other,
        };
        let Some(version) = self.version().await else {
            return Found::File(page);
        };
        let key = match self {
            Source::Embedded => "index:embedded".to_string(),
            Source::Dir(dir) => format!("index:{}", dir.display()),
        };
        let stamp = format!("{}:{}", page.hash, version.id);
        let quality = match self {
            Source::Embedded => BROTLI_BEST,
            Source::Dir(_) => BROTLI_QUICK,
        };
        let made = cached(key, stamp, move || {
            let text = std::str::from_utf8(&page.body).ok()?;
            let prefix = format!("\"/v/{}/", version.id);
            let text = text
                .replace("\"/js/", &format!("{prefix}js/"))
                .replace("\"/css/", &format!("{prefix}css/"));
            let modified = page.modified.max(version.modified);
            Some(Asset::build(
                "index.html",
                text.into_bytes(),
                modified,
                quality,
            ))
        })
        .await;
        made.map_or(Found::Missing, Found::File)
    }
}

fn versioned(path: &str) -> bool {
    path != "index.html" && !path.split('/').any(|part| part.starts_with('.'))
}

fn embedded_version() -> Version {
    let mut files = Vec::new();
    let mut dirs = vec![&WEB];
    while let Some(dir) = dirs.pop() {
        dirs.extend(dir.dirs());
        files.extend(dir.files());
    }
    let mut hasher = Sha256::new();
    let mut modified = UNIX_EPOCH;
    let mut named: Vec<_> = files
        .into_iter()
        .filter_map(|f| Some((f.path().to_str()?.replace('\\', "/"), f)))
        .filter(|(p, _)| versioned(p))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, file) in named {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(Sha256::digest(file.contents()));
        if let Some(m) = file.metadata() {
            modified = modified.max(whole_seconds(m.modified()));
        }
    }
    Version {
        id: natter_core::accounts::to_hex(&hasher.finalize()[..8]),
        modified,
    }
}

/// Every file under `dir` (relative paths with `/`), sorted; hidden ones left out.
async fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((abs, rel)) = pending.pop() {
        let Ok(mut entries) = tokio::fs::read_dir(&abs).await else {
            continue;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            match entry.file_type().await {
                Ok(t) if t.is_dir() => pending.push((entry.path(), path)),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

async fn dir_version(dir: &Path) -> Option<Version> {
    let mut hasher = Sha256::new();
    let mut modified = UNIX_EPOCH;
    for path in walk(dir).await.into_iter().filter(|p| versioned(p)) {
        if let Found::File(asset) = load_within(dir, &path).await {
            hasher.update(path.as_bytes());
            hasher.update([0]);
            hasher.update(asset.hash.as_bytes());
            modified = modified.max(asset.modified);
        }
    }
    Some(Version {
        id: natter_core::accounts::to_hex(&hasher.finalize()[..8]),
        modified,
    })
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
    let Ok(meta) = tokio::fs::metadata(&file).await else {
        return Found::Missing;
    };
    if !meta.is_file() {
        return Found::Missing;
    }
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let stamp = format!("{}:{nanos}", meta.len());
    let key = file.display().to_string();
    let name = path.to_string();
    let asset = cached(key, stamp, move || read_asset(&file, &name, modified)).await;
    asset.map_or(Found::Missing, Found::File)
}

fn read_asset(file: &PathBuf, name: &str, modified: SystemTime) -> Option<Asset> {
    let body = std::fs::read(file).ok()?;
    Some(Asset::build(name, body, modified, BROTLI_QUICK))
}
