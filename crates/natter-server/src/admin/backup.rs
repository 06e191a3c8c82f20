//! `natter backup PATH`: a consistent copy of a live SQLite installation as a new data
//! directory, `PATH/natter.db` and `PATH/files/` (so `natter --data-dir PATH` serves it).
//!
//! 1. The database is copied with SQLite's online backup API in one read transaction
//!    (`natter_store_sql::sqlite_backup`): the state one commit left, while the server writes.
//! 2. Then the blobs that copy's file records name are copied from `<data_dir>/files`. That
//!    is consistent: a blob is put (renamed into place, whole) before its record is
//!    committed, and blobs are named by their content, never rewritten. The one thing that
//!    can happen in between is the file sweep deleting a blob whose record was removed after
//!    the snapshot (its message deleted meanwhile): such blobs are counted and reported, and
//!    the copy keeps the record (its download answers 404 once restored).
//! 3. Everything is written under a temporary sibling directory, synced, checked (SQLite's
//!    `integrity_check`), then renamed to PATH in one step. An existing PATH is refused, or
//!    with `--force` replaced only once the new copy is complete.
//!
//! On PostgreSQL (uploads' bytes are in the database there) it prints the `pg_dump` command
//! instead, and exits with 2, since it copied nothing.

use super::output::{json_line, line};
use super::{BackupArgs, OpsError};
use crate::config::{defaults, Config, Database};
use natter_store_sql::sqlite_backup;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What one backup copied.
struct Copied {
    db_bytes: u64,
    blobs: u64,
    blob_bytes: u64,
    /// Blobs named by the copy but gone from `<data_dir>/files` (deleted since the snapshot).
    missing: Vec<String>,
}

pub(super) async fn backup(
    args: &BackupArgs,
    config: &Config,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    let source = match &config.database {
        Database::Sqlite(path) => path.clone(),
        Database::Postgres(url) => {
            for text in pg_dump_advice(url, &args.path) {
                line(out, &text)?;
            }
            return Err(OpsError::Usage(
                "natter backup copies SQLite installations only: on PostgreSQL use pg_dump \
                 (above)"
                    .into(),
            ));
        }
    };
    if !source.exists() {
        return Err(OpsError::Usage(format!(
            "no database at {} (check --data-dir or --database)",
            source.display()
        )));
    }
    if args.path.exists() && !args.force {
        return Err(OpsError::Usage(format!(
            "{} exists: choose a new path, or --force to replace it",
            args.path.display()
        )));
    }
    let blobs_dir = config.data_dir.join("files");
    let dest = args.path.clone();
    let force = args.force;
    let copied = tokio::task::spawn_blocking(move || copy_all(&source, &blobs_dir, &dest, force))
        .await
        .map_err(|e| OpsError::Io(std::io::Error::other(e)))??;
    if args.json {
        report_json(out, &args.path, &copied)?;
        Ok(())
    } else {
        report(out, &args.path, &copied)
    }
}

fn report(out: &mut (dyn Write + Send), path: &Path, c: &Copied) -> Result<(), OpsError> {
    line(
        out,
        &format!(
            "backed up the database ({} bytes, integrity ok) and {} upload blobs ({} bytes) to {}",
            c.db_bytes,
            c.blobs,
            c.blob_bytes,
            path.display()
        ),
    )?;
    if !c.missing.is_empty() {
        line(
            out,
            &format!(
                "warning: {} blobs were deleted after the snapshot (their files were deleted \
                 meanwhile) and are not in the backup: {}",
                c.missing.len(),
                c.missing.join(" ")
            ),
        )?;
    }
    Ok(())
}

/// Prints nothing secret: a password in the URL is replaced by `PGPASSWORD`'s mention.
fn pg_dump_advice(url: &str, path: &Path) -> Vec<String> {
    let shown = without_password(url);
    vec![
        "This server stores everything, uploads included, in PostgreSQL: back it up with \
         PostgreSQL's own tools (docs/deployment.md, \"Backups\"), for example:"
            .into(),
        format!(
            "  pg_dump --format=custom --file={} '{}'",
            path.display(),
            shown
        ),
        "(give the password in PGPASSWORD or ~/.pgpass; pg_dump takes a consistent snapshot \
         while nodes keep writing). Restore into a new, empty database with:"
            .into(),
        format!(
            "  pg_restore --no-owner --dbname='<new database URL>' {}",
            path.display()
        ),
    ]
}

/// `postgres://user:secret@host/db` as `postgres://user@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.into(),
    };
    let user = auth.split(':').next().unwrap_or_default();
    format!("{scheme}://{user}@{host}")
}

/// Steps 1 to 3 of the module doc, on a blocking thread.
fn copy_all(source: &Path, blobs_dir: &Path, dest: &Path, force: bool) -> Result<Copied, OpsError> {
    let staging = sibling(dest, "partial")?;
    let result = fill(source, blobs_dir, &staging).and_then(|copied| {
        put_in_place(&staging, dest, force)?;
        Ok(copied)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// A hidden name beside `path` for work in progress: `.NAME.TAG-PID`.
fn sibling(path: &Path, tag: &str) -> Result<PathBuf, OpsError> {
    let name = path
        .file_name()
        .ok_or_else(|| OpsError::Usage(format!("{} names no directory", path.display())))?;
    let parent = path.parent().unwrap_or_else(|| Path::new(""));
    Ok(parent.join(format!(
        ".{}.{tag}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Writes the snapshot and its blobs into `staging` (new), synced and checked.
fn fill(source: &Path, blobs_dir: &Path, staging: &Path) -> Result<Copied, OpsError> {
    std::fs::create_dir(staging)?;
    let db = staging.join(defaults::SQLITE_FILE);
    let snapshot = sqlite_backup::snapshot(source, &db)?;
    let problems = sqlite_backup::integrity_check(&db)?;
    if problems != ["ok"] {
        return Err(OpsError::Usage(format!(
            "the copy failed SQLite's integrity check: {}",
            problems.join("; ")
        )));
    }
    let files = staging.join("files");
    std::fs::create_dir(&files)?;
    let mut copied = Copied {
        db_bytes: snapshot.bytes,
        blobs: 0,
        blob_bytes: 0,
        missing: Vec::new(),
    };
    for hash in sqlite_backup::referenced_blobs(&db)? {
        let h = hash.as_str();
        let relative = Path::new(&h[0..2]).join(&h[2..4]).join(h);
        let from = blobs_dir.join(&relative);
        let to = files.join(&relative);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::copy(&from, &to) {
            Ok(bytes) => {
                std::fs::File::open(&to)?.sync_all()?;
                copied.blobs += 1;
                copied.blob_bytes += bytes;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => copied.missing.push(h.into()),
            Err(e) => return Err(e.into()),
        }
    }
    sync_dir(&files)?;
    sync_dir(staging)?;
    Ok(copied)
}

/// Renames `staging` to `dest`; with `force` an existing `dest` is first moved aside, and
/// removed once the new one is in place.
fn put_in_place(staging: &Path, dest: &Path, force: bool) -> Result<(), OpsError> {
    let old = if dest.exists() {
        if !force {
            return Err(OpsError::Usage(format!(
                "{} appeared during the backup; not replaced",
                dest.display()
            )));
        }
        let aside = sibling(dest, "old")?;
        std::fs::rename(dest, &aside)?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(staging, dest)?;
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    if let Some(old) = old {
        if old.is_dir() {
            std::fs::remove_dir_all(&old)?;
        } else {
            std::fs::remove_file(&old)?;
        }
    }
    Ok(())
}

/// Makes a directory's entries durable (its new names survive a power cut).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The report as one JSON document (`--json`).
fn report_json(out: &mut (dyn Write + Send), path: &Path, c: &Copied) -> std::io::Result<()> {
    json_line(
        out,
        &json!({
            "path": path.display().to_string(),
            "database_bytes": c.db_bytes,
            "blobs": c.blobs,
            "blob_bytes": c.blob_bytes,
            "missing_blobs": c.missing,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn advice_shows_no_password() {
        assert_eq!(
            without_password("postgres://natter:s3cret@db:5432/natter"),
            "postgres://natter@db:5432/natter"
        );
        assert_eq!(
            without_password("postgres://natter@db/natter"),
            "postgres://natter@db/natter"
        );
        assert_eq!(without_password("postgresql://db/x"), "postgresql://db/x");
    }
}
