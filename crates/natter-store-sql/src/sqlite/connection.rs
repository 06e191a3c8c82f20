//! Opening a SQLite connection (WAL, foreign keys, and how hard a commit is synced:
//! `Synchronous`), and the checkpointer thread that folds the WAL into the database file off
//! the writer's path.

use super::error::backend;
use natter_core::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How often the checkpointer folds the WAL into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// How hard SQLite works to make a commit survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync the WAL at every commit: survives power loss (the default).
    Full,
    /// fsync at checkpoints only: survives a process crash, not a power cut.
    Normal,
}

impl std::str::FromStr for Synchronous {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            other => Err(format!(
                "sqlite synchronous must be full or normal, not {other}"
            )),
        }
    }
}

pub(super) fn open_connection(path: &Path, sync: Synchronous) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    let sync = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
    ))
    .map_err(backend)?;
    add_functions(&conn).map_err(backend)?;
    Ok(conn)
}

/// The SQL functions search uses, on every connection the store opens (a tool that writes
/// `messages` itself and then calls `index_new_messages` must add them too). Neither is in the
/// schema: a tool that opens the database without them can still read and write everything.
/// - `natter_phrase_in(body, phrase)`: whether a search's phrase (lower-cased) is in a text,
///   exactly as `natter_core::search::phrase_in` says (whole words; any substring in a script
///   without spaces). Search checks its word index's candidates with it.
/// - `natter_unspaced(body)`: whether a text has a character of a script written without
///   spaces (`natter_core::search::is_unspaced`), i.e. belongs in the trigram index. The same
///   test as migration 0007's GLOB, which cost the writer a quarter of its time (SQLite's
///   pattern matcher walks the 14 ranges at every character).
pub fn add_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "natter_unspaced",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let body = ctx.get_raw(0).as_str().unwrap_or_default();
            Ok(body.chars().any(natter_core::search::is_unspaced))
        },
    )?;
    conn.create_scalar_function(
        "natter_phrase_in",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let body = ctx.get_raw(0).as_str().unwrap_or_default();
            let phrase = ctx.get_raw(1).as_str().unwrap_or_default();
            Ok(natter_core::search::phrase_in(&body.to_lowercase(), phrase))
        },
    )
}

/// The WAL file of the database at `path` (SQLite names it `<path>-wal`).
pub(super) fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

/// The WAL file's size in bytes; 0 when it is not there (yet).
pub(super) fn wal_size(wal: &Path) -> u64 {
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// Every `CHECKPOINT_EVERY`: a PASSIVE checkpoint, then the WAL file's size into `wal_bytes`
/// (0 when the file is not there), for the store's `wal_bytes`. Returns, closing its
/// connection, as soon as `stop` gets a message or its sender is dropped.
pub(super) fn run_checkpointer(
    conn: Connection,
    wal: std::path::PathBuf,
    wal_bytes: Arc<AtomicU64>,
    stop: std::sync::mpsc::Receiver<()>,
) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        // PASSIVE: copies what it can without waiting for (or blocking) the writer.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite checkpoint failed");
        }
        wal_bytes.store(wal_size(&wal), Ordering::Relaxed);
    }
}
