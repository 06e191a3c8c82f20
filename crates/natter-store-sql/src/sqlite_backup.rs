//! A consistent copy of a live SQLite database (`natter backup`), and the checks made on it.
//!
//! The copy is SQLite's online backup API with every page in one step (`step(-1)`): one read
//! transaction, so it is the database as one commit left it, whatever the server writes
//! meanwhile. In WAL mode that read blocks no writer, and a single step never restarts (a
//! copy in several steps starts over whenever another connection, such as the server's,
//! writes). Why this rather than `VACUUM INTO`: docs/adr/0022-sqlite-backup-api-in-one-step.md.
//!
//! Blocking calls (they run for as long as the copy takes): call them on a blocking thread.

use natter_core::files::ContentHash;
use natter_core::StoreError;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// How long the copy waits for a lock (the server's writer holds none that stop a WAL reader;
/// this covers a checkpoint or a migration in progress).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a busy or locked step is tried again, at most.
const BUSY_RETRIES: u32 = 50;

/// What [`snapshot`] copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Database pages copied.
    pub pages: u64,
    /// The copy's size in bytes.
    pub bytes: u64,
}

/// Copies the database at `source` (live or not) to a new file `dest`, consistently (see
/// the module doc), synced to disk. `dest` must not exist.
pub fn snapshot(source: &Path, dest: &Path) -> Result<Snapshot, StoreError> {
    if !source.exists() {
        return Err(StoreError::Backend(format!(
            "no database at {}",
            source.display()
        )));
    }
    if dest.exists() {
        return Err(StoreError::Backend(format!(
            "{} exists already",
            dest.display()
        )));
    }
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend)?;
    from.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    let mut to = Connection::open(dest).map_err(backend)?;
    // Synced when the copy commits.
    to.execute_batch("PRAGMA synchronous = FULL")
        .map_err(backend)?;
    {
        let backup = Backup::new(&from, &mut to).map_err(backend)?;
        let mut tries = 0;
        loop {
            match backup.step(-1).map_err(backend)? {
                StepResult::Done => break,
                StepResult::More => continue,
                // Busy, Locked: a checkpoint or a migration holds the file; try again soon.
                _ if tries < BUSY_RETRIES => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    return Err(StoreError::Backend(
                        "the database stayed locked; try again".into(),
                    ))
                }
            }
        }
    }
    // The pages carry the source's WAL flag: make the copy one self-contained file, which a
    // read-only open needs no `-shm` for (the server turns WAL on again when it opens it).
    to.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
        .map_err(backend)?;
    let pages: i64 = to
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(backend)?;
    drop(to);
    drop(from);
    let file = std::fs::File::open(dest).map_err(backend)?;
    file.sync_all().map_err(backend)?;
    let bytes = file.metadata().map_err(backend)?.len();
    Ok(Snapshot {
        pages: pages.max(0) as u64,
        bytes,
    })
}

/// Opens a copy made by [`snapshot`] without writing to it (no WAL, no migration).
fn open_copy(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend)?;
    crate::sqlite::add_functions(&conn).map_err(backend)?;
    Ok(conn)
}

/// SQLite's `PRAGMA integrity_check` of the database at `path`: `["ok"]` when it is sound,
/// else the problems found.
pub fn integrity_check(path: &Path) -> Result<Vec<String>, StoreError> {
    let conn = open_copy(path)?;
    let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(backend)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

/// The blobs the file records of the database at `path` name (bytes and thumbnails), each
/// once, sorted. None before the files migration (0006).
pub fn referenced_blobs(path: &Path) -> Result<Vec<ContentHash>, StoreError> {
    let conn = open_copy(path)?;
    let has_files: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'files')",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if !has_files {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare(
            "SELECT hash FROM files UNION
             SELECT thumb_hash FROM files WHERE thumb_hash IS NOT NULL
             ORDER BY 1",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(backend)?;
    let mut hashes = Vec::new();
    for hex in rows {
        let hex = hex.map_err(backend)?;
        let hash = ContentHash::parse(&hex)
            .ok_or_else(|| StoreError::Backend(format!("a file record names {hex:?}")))?;
        hashes.push(hash);
    }
    Ok(hashes)
}
