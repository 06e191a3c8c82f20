//! `natter migrate --from sqlite:PATH --to postgres://...`: a stopped SQLite installation
//! copied onto PostgreSQL (`natter_store_sql::copy` does the copying), then the counts of
//! both sides printed as a table. Exit 0 when every count, every room's seqs and every blob
//! agree; 1 on a mismatch or a failure; 2 for a source or target it will not copy (a target
//! that holds other data, a source of another schema version).
//!
//! PATH is a data directory (its `natter.db`, uploads in its `files/`) or the database file
//! (uploads in `files/` beside it unless `--files DIR`). Re-running the same command after an
//! interruption continues the copy.

use super::output::{json_line, line, table};
use super::{MigrateArgs, OpsError};
use crate::config::defaults;
use natter_store_sql::copy::{self, CopyError, CopyOptions, CopyReport, SqliteInstallation};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

pub(super) async fn migrate(
    args: &MigrateArgs,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    let from = installation(args)?;
    if !(args.to.starts_with("postgres://") || args.to.starts_with("postgresql://")) {
        return Err(OpsError::Usage(
            "--to takes a postgres:// URL (the new database)".into(),
        ));
    }
    let options = CopyOptions {
        batch_rows: args.batch_rows.max(1),
        stop_after: args.stop_after,
    };
    let report = copy::sqlite_to_postgres(&from, &args.to, &options)
        .await
        .map_err(|e| match e {
            CopyError::Refused(why) => OpsError::Usage(why),
            other => OpsError::Failed(other.to_string()),
        })?;
    if args.json {
        json_line(out, &report_json(&report))?;
    } else {
        report_text(out, &report)?;
    }
    if report.verified() {
        Ok(())
    } else {
        Err(OpsError::Failed(
            "the copy does not match its source (see the table): is a server still writing \
             to the SQLite database, or to the target?"
                .into(),
        ))
    }
}

/// The database file and uploads directory `--from` (and `--files`) name.
fn installation(args: &MigrateArgs) -> Result<SqliteInstallation, OpsError> {
    let path = match args.from.strip_prefix("sqlite:") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            return Err(OpsError::Usage(
                "--from takes sqlite:PATH (a data directory or its database file)".into(),
            ))
        }
    };
    let (database, beside) = if path.is_dir() {
        (path.join(defaults::SQLITE_FILE), path.clone())
    } else {
        let parent = path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        (path.clone(), parent)
    };
    if !database.is_file() {
        return Err(OpsError::Usage(format!(
            "no SQLite database at {} (--from sqlite:DATA_DIR or sqlite:FILE)",
            database.display()
        )));
    }
    let files = args.files.clone().unwrap_or_else(|| beside.join("files"));
    Ok(SqliteInstallation { database, files })
}

fn report_text(out: &mut (dyn Write + Send), r: &CopyReport) -> std::io::Result<()> {
    if r.source_wal {
        line(
            out,
            "warning: the SQLite database has a write-ahead log beside it: if a server is still \
             running on it, stop it and run this again (writes made meanwhile are not copied)",
        )?;
    }
    if r.resumed {
        line(out, "continued an interrupted copy")?;
    }
    let mut rows: Vec<Vec<String>> = r
        .tables
        .iter()
        .map(|t| {
            vec![
                t.table.to_string(),
                t.source.to_string(),
                t.target.to_string(),
                t.copied_now.to_string(),
                if t.source == t.target {
                    "ok"
                } else {
                    "MISMATCH"
                }
                .to_string(),
            ]
        })
        .collect();
    let blobs_there = r.blobs - r.blobs_missing_at_source.len();
    rows.push(vec![
        "(blobs)".into(),
        blobs_there.to_string(),
        (blobs_there - r.blobs_missing_at_target.len().min(blobs_there)).to_string(),
        r.blobs_copied_now.to_string(),
        if r.blobs_missing_at_target.is_empty() {
            "ok"
        } else {
            "MISMATCH"
        }
        .to_string(),
    ]);
    table(
        out,
        &["table", "source", "target", "copied now", "check"],
        &rows,
    )?;
    line(
        out,
        &format!(
            "rooms: {} compared, {} with the same last seq and highest seq on both sides",
            r.rooms,
            r.rooms - r.rooms_differing.len().min(r.rooms)
        ),
    )?;
    if !r.rooms_differing.is_empty() {
        line(out, &format!("rooms that differ: {:?}", r.rooms_differing))?;
    }
    if !r.blobs_missing_at_source.is_empty() {
        line(
            out,
            &format!(
                "warning: {} blobs named by file records are not in the files directory (their \
                 downloads answer 404 on either side): {}",
                r.blobs_missing_at_source.len(),
                r.blobs_missing_at_source.join(" ")
            ),
        )?;
    }
    line(
        out,
        if r.verified() {
            "verified: every count matches; start the nodes on the PostgreSQL database"
        } else {
            "NOT verified: the counts above differ"
        },
    )
}

fn report_json(r: &CopyReport) -> serde_json::Value {
    let tables: serde_json::Map<String, serde_json::Value> = r
        .tables
        .iter()
        .map(|t| {
            (
                t.table.to_string(),
                json!({"source": t.source, "target": t.target, "copied_now": t.copied_now}),
            )
        })
        .collect();
    json!({
        "verified": r.verified(),
        "resumed": r.resumed,
        "source_wal": r.source_wal,
        "tables": tables,
        "rooms": r.rooms,
        "rooms_differing": r.rooms_differing,
        "blobs": r.blobs,
        "blobs_copied_now": r.blobs_copied_now,
        "blobs_missing_at_source": r.blobs_missing_at_source,
        "blobs_missing_at_target": r.blobs_missing_at_target,
    })
}
