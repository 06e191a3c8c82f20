//! `natter migrate`: a SQLite installation copied onto PostgreSQL, so one node's data moves
//! to a cluster. Every table of the schema (`tables`), ids and seqs kept exactly, and every
//! upload's blob from the installation's files directory into `file_chunks`; then the
//! PostgreSQL sequences are moved past the copied ids, and the counts of both sides compared.
//!
//! - The source is read only (`source`): opened read-only, in one read transaction, never
//!   migrated; its schema must be this binary's newest.
//! - The target (`target`) is migrated first, then claimed: it must be empty, or hold a copy
//!   of this same source that a previous run left unfinished. Rows go in batches in primary
//!   key order, each batch in one transaction with the progress row that records its last
//!   key, so a run killed at any point resumes where the last commit left off and ends
//!   with the rows an uninterrupted run writes (docs/adr/0025-resumable-sqlite-to-postgres-copy.md).
//! - Blobs are put whole or not at all (`PostgresFileStore::put`), skipped when already there.
//!
//! Source reads are blocking (SQLite): each batch is read on a blocking thread.

mod source;
mod tables;
mod target;

use crate::postgres::PostgresStore;
use natter_core::files::{ContentHash, FileStore};
use natter_core::StoreError;
use rusqlite::types::Value;
use source::Source;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tables::{Table, TABLES};

/// The copy's own table in the target: where each table's copy stands.
pub const PROGRESS: &str = "natter_copy_progress";

/// Rows per batch (per transaction) unless told otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 1000;

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source or target is not one to copy from or into (the message says why).
    #[error("{0}")]
    Refused(String),
    #[error("reading the SQLite database: {0}")]
    Source(String),
    #[error("writing to PostgreSQL: {0}")]
    Target(String),
    #[error("uploads: {0}")]
    Files(String),
    /// Stopped by [`CopyOptions::stop_after`] (tests stand in for a kill with it).
    #[error("interrupted after {0} writes, as asked")]
    Interrupted(u64),
}

impl From<StoreError> for CopyError {
    fn from(e: StoreError) -> Self {
        CopyError::Target(e.to_string())
    }
}

/// What to copy: a SQLite installation.
#[derive(Debug, Clone)]
pub struct SqliteInstallation {
    /// The database file.
    pub database: PathBuf,
    /// The uploads' blobs (`<data_dir>/files`, laid out as `DirFileStore` keeps them).
    pub files: PathBuf,
}

/// How to copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Rows per batch, each batch one transaction (at least 1; fewer for wide tables, so a
    /// statement stays under PostgreSQL's 65535 parameters).
    pub batch_rows: usize,
    /// Stop with [`CopyError::Interrupted`] after this many committed writes (batches and
    /// blobs): what a kill at that moment leaves behind. For tests; None in use.
    pub stop_after: Option<u64>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            batch_rows: DEFAULT_BATCH_ROWS,
            stop_after: None,
        }
    }
}

/// One table's rows on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub source: i64,
    pub target: i64,
    /// Rows this run wrote (the rest came from an interrupted run before).
    pub copied_now: i64,
}

/// What a copy did and found.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// Whether this run continued an interrupted one.
    pub resumed: bool,
    /// Whether the source had a write-ahead log (`-wal`) when opened: a server may have
    /// been running on it, or was killed.
    pub source_wal: bool,
    pub tables: Vec<TableCount>,
    /// Rooms compared (last seq and highest stored seq).
    pub rooms: usize,
    /// Rooms whose last seq or highest seq differ between the two sides.
    pub rooms_differing: Vec<i64>,
    /// Blobs the file records name.
    pub blobs: usize,
    /// Blobs this run copied.
    pub blobs_copied_now: usize,
    /// Blobs named by a record but not in the files directory (their downloads answer 404
    /// on either side).
    pub blobs_missing_at_source: Vec<String>,
    /// Blobs in the files directory that the target lacks.
    pub blobs_missing_at_target: Vec<String>,
}

impl CopyReport {
    /// Whether both sides agree: every count, every room's seqs, every blob the source has.
    pub fn verified(&self) -> bool {
        self.tables.iter().all(|t| t.source == t.target)
            && self.rooms_differing.is_empty()
            && self.blobs_missing_at_target.is_empty()
    }
}

/// Counts committed writes for [`CopyOptions::stop_after`].
struct Writes {
    done: u64,
    stop_after: Option<u64>,
}

impl Writes {
    fn one(&mut self) -> Result<(), CopyError> {
        self.done += 1;
        match self.stop_after {
            Some(n) if self.done >= n => Err(CopyError::Interrupted(self.done)),
            _ => Ok(()),
        }
    }
}

/// Copies `from` into the PostgreSQL database at `to_url` (created if missing, migrated),
/// or continues an interrupted copy of it there; then compares both sides.
pub async fn sqlite_to_postgres(
    from: &SqliteInstallation,
    to_url: &str,
    options: &CopyOptions,
) -> Result<CopyReport, CopyError> {
    let database = std::fs::canonicalize(&from.database).map_err(|e| {
        CopyError::Refused(format!(
            "no SQLite database at {}: {e}",
            from.database.display()
        ))
    })?;
    let source_wal = wal_in_use(&database);
    let path = database.clone();
    let mut source = blocking(move || Source::open(&path)).await?;
    let store = PostgresStore::connect(to_url, 2).await?;
    let result = copy_into(&mut source, &store, &database, from, options, source_wal).await;
    natter_core::Store::shutdown(&store).await;
    result
}

async fn copy_into(
    source: &mut Option<Source>,
    store: &PostgresStore,
    database: &Path,
    from: &SqliteInstallation,
    options: &CopyOptions,
    source_wal: bool,
) -> Result<CopyReport, CopyError> {
    let mut client = store
        .pool()
        .get()
        .await
        .map_err(|e| CopyError::Target(e.to_string()))?;
    let (progress, resumed) = target::claim(&client, &database.display().to_string()).await?;
    let mut writes = Writes {
        done: 0,
        stop_after: options.stop_after,
    };
    let mut copied_now = BTreeMap::new();
    for table in TABLES {
        let at = progress.get(table.name).cloned().unwrap_or_default();
        let n = copy_table(source, &mut client, table, &at, options, &mut writes).await?;
        copied_now.insert(table.name, n);
    }
    let hashes = on_source(source, |s| s.blob_hashes()).await?;
    let blobs = copy_blobs(store, &hashes, &from.files, &mut writes).await?;
    target::advance_sequences(&client).await?;
    let mut report = verify(source, &client, &copied_now, &hashes, store).await?;
    report.resumed = resumed;
    report.source_wal = source_wal;
    report.blobs_copied_now = blobs.0;
    report.blobs_missing_at_source = blobs.1;
    report
        .blobs_missing_at_target
        .retain(|h| !report.blobs_missing_at_source.contains(h));
    Ok(report)
}

/// Copies the rest of `table` after its progress; returns the rows written.
async fn copy_table(
    source: &mut Option<Source>,
    client: &mut deadpool_postgres::Object,
    table: &'static Table,
    at: &target::Progress,
    options: &CopyOptions,
    writes: &mut Writes,
) -> Result<i64, CopyError> {
    if at.done {
        return Ok(0);
    }
    let mut after: Option<Vec<Value>> = match &at.last_key {
        Some(json) => Some(source::key_from_json(table, json)?),
        None => None,
    };
    // PostgreSQL takes at most 65535 parameters per statement.
    let limit = options.batch_rows.clamp(1, 60_000 / table.columns.len());
    let mut written = 0i64;
    loop {
        let key = after.clone();
        let rows = on_source(source, move |s| s.rows_after(table, key.as_deref(), limit)).await?;
        let Some(last) = rows.last() else {
            break;
        };
        let next: Vec<Value> = (0..table.key.len())
            .map(|i| last[table.key_position(i)].clone())
            .collect();
        target::write_batch(client, table, &rows).await?;
        written += i64::try_from(rows.len()).unwrap_or(i64::MAX);
        writes.one()?;
        after = Some(next);
        if rows.len() < limit {
            break;
        }
    }
    target::mark_done(client, table).await?;
    tracing::info!(table = table.name, rows = written, "copied");
    Ok(written)
}

/// Puts every blob not yet in the target; returns (copied now, missing in the directory).
async fn copy_blobs(
    store: &PostgresStore,
    hashes: &[String],
    files: &Path,
    writes: &mut Writes,
) -> Result<(usize, Vec<String>), CopyError> {
    let blobs = store.file_store();
    let mut copied = 0;
    let mut missing = Vec::new();
    for hex in hashes {
        let hash = ContentHash::parse(hex)
            .ok_or_else(|| CopyError::Source(format!("a file record names {hex:?}")))?;
        if blobs.exists(&hash).await? {
            continue;
        }
        let path = blob_path(files, hex);
        if !path.is_file() {
            missing.push(hex.clone());
            continue;
        }
        blobs.put(&hash, &path).await?;
        copied += 1;
        writes.one()?;
    }
    Ok((copied, missing))
}

/// Where `DirFileStore` keeps the blob `hex` under `files`: `ab/cd/<hex>`.
fn blob_path(files: &Path, hex: &str) -> PathBuf {
    files
        .join(hex.get(0..2).unwrap_or_default())
        .join(hex.get(2..4).unwrap_or_default())
        .join(hex)
}

/// Counts, rooms' seqs and blobs on both sides.
async fn verify(
    source: &mut Option<Source>,
    client: &deadpool_postgres::Object,
    copied_now: &BTreeMap<&'static str, i64>,
    hashes: &[String],
    store: &PostgresStore,
) -> Result<CopyReport, CopyError> {
    let source_counts = on_source(source, |s| {
        TABLES
            .iter()
            .map(|t| Ok((t.name, s.count(t.name)?)))
            .collect::<Result<Vec<_>, CopyError>>()
    })
    .await?;
    let mut tables = Vec::new();
    for (table, count) in source_counts {
        tables.push(TableCount {
            table,
            source: count,
            target: target::count(client, table).await?,
            copied_now: copied_now.get(table).copied().unwrap_or(0),
        });
    }
    let source_rooms = on_source(source, |s| s.room_seqs()).await?;
    let target_rooms = target::room_seqs(client).await?;
    let rooms_differing = source_rooms
        .iter()
        .filter(|(id, seqs)| target_rooms.get(id) != Some(seqs))
        .map(|(id, _)| *id)
        .chain(
            target_rooms
                .keys()
                .filter(|id| !source_rooms.contains_key(id))
                .copied(),
        )
        .collect();
    let blobs = store.file_store();
    let mut missing_at_target = Vec::new();
    for hex in hashes {
        let there = match ContentHash::parse(hex) {
            Some(hash) => blobs.exists(&hash).await?,
            None => false,
        };
        if !there {
            missing_at_target.push(hex.clone());
        }
    }
    Ok(CopyReport {
        resumed: false,
        source_wal: false,
        tables,
        rooms: source_rooms.len(),
        rooms_differing,
        blobs: hashes.len(),
        blobs_copied_now: 0,
        blobs_missing_at_source: Vec::new(),
        blobs_missing_at_target: missing_at_target,
    })
}

/// Whether the database has a non-empty write-ahead log beside it (SQLite removes it when
/// the last connection closes cleanly: one is there while a server runs, or after a kill).
fn wal_in_use(database: &Path) -> bool {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0)
}

/// Runs `read` on the source on a blocking thread, handing the source back after.
async fn on_source<T: Send + 'static>(
    source: &mut Option<Source>,
    read: impl FnOnce(&Source) -> Result<T, CopyError> + Send + 'static,
) -> Result<T, CopyError> {
    let taken = source
        .take()
        .ok_or_else(|| CopyError::Source("the source was lost after an error".into()))?;
    let (back, result) = tokio::task::spawn_blocking(move || {
        let result = read(&taken);
        (taken, result)
    })
    .await
    .map_err(|e| CopyError::Source(e.to_string()))?;
    *source = Some(back);
    result
}

/// Runs `open` on a blocking thread.
async fn blocking(
    open: impl FnOnce() -> Result<Source, CopyError> + Send + 'static,
) -> Result<Option<Source>, CopyError> {
    tokio::task::spawn_blocking(open)
        .await
        .map_err(|e| CopyError::Source(e.to_string()))?
        .map(Some)
}

/// The schema as the copy sees it on each side, for the test that `tables` lists every table
/// and column: (SQLite tables not skipped, PostgreSQL tables), each with its columns.
#[doc(hidden)]
pub async fn schemas_for_test(
    sqlite: &Path,
    postgres_url: &str,
) -> Result<(BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>), CopyError> {
    let path = sqlite.to_path_buf();
    let mut source = blocking(move || Source::open(&path)).await?;
    let mut lite = on_source(&mut source, |s| s.schema()).await?;
    lite.retain(|name, _| !tables::sqlite_skipped(name));
    let store = PostgresStore::connect(postgres_url, 1).await?;
    let client = store
        .pool()
        .get()
        .await
        .map_err(|e| CopyError::Target(e.to_string()))?;
    let pg = target::schema(&client).await?;
    drop(client);
    natter_core::Store::shutdown(&store).await;
    Ok((lite, pg))
}

/// The tables copied and their columns, in order (for tests and the docs).
pub fn copied_tables() -> Vec<(&'static str, Vec<&'static str>)> {
    TABLES
        .iter()
        .map(|t| (t.name, t.columns.iter().map(|(c, _)| *c).collect()))
        .collect()
}
