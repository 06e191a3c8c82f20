//! Versioned schema migrations on SQLite: a file made before versions were recorded (the
//! committed fixture `tests/fixtures/natter-v0.db`, written by the store as it was) is recorded
//! as the baseline and keeps every row and seq; a new file gets every migration; a file newer
//! than this binary, or one that is only partly natter's, is refused untouched.
//! (The same rules on PostgreSQL are in tests/postgres.rs.)

mod fixtures;

use natter_core::model::Seq;
use natter_core::{Store, StoreError};
use natter_store_sql::migrate::{self, Migration};
use natter_store_sql::{SqliteStore, Synchronous};
use std::path::{Path, PathBuf};

/// The committed database made by natter before versioned migrations.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/natter-v0.db")
}

/// A copy of the fixture in `dir`, so the committed file is never written.
fn copy_of_fixture(dir: &Path) -> PathBuf {
    let path = dir.join("natter.db");
    std::fs::copy(fixture(), &path).expect("copy the fixture");
    path
}

/// The rows of `schema_migrations`: (version, name, applied_at).
fn recorded(path: &Path) -> Vec<(i64, String, i64)> {
    let conn = rusqlite::Connection::open(path).expect("raw open");
    let mut stmt = conn
        .prepare("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

fn versions_and_names(path: &Path) -> Vec<(i64, String)> {
    recorded(path).into_iter().map(|(v, n, _)| (v, n)).collect()
}

fn every_migration(list: &[Migration]) -> Vec<(i64, String)> {
    list.iter()
        .map(|m| (m.version, m.name.to_string()))
        .collect()
}

/// Columns and indexes of natter's tables, as SQLite describes them (not the DDL text).
fn shape(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("raw open");
    let mut out = Vec::new();
    for table in ["users", "sessions", "rooms", "members", "messages"] {
        let mut columns = conn
            .prepare(&format!(
                "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}')"
            ))
            .expect("columns");
        let rows = columns
            .query_map([], |r| {
                Ok(format!(
                    "{table}.{}: {} notnull={} default={:?} pk={}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?
                ))
            })
            .expect("columns");
        out.extend(rows.map(|r| r.expect("column")));
        let mut indexes = conn
            .prepare(&format!(
                "SELECT il.\"unique\", group_concat(ii.name, ',') FROM pragma_index_list('{table}') il,
                 pragma_index_info(il.name) ii GROUP BY il.name ORDER BY 2"
            ))
            .expect("indexes");
        let rows = indexes
            .query_map([], |r| {
                Ok(format!(
                    "{table} index unique={} on {}",
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?
                ))
            })
            .expect("indexes");
        out.extend(rows.map(|r| r.expect("index")));
        let mut keys = conn
            .prepare(&format!(
                "SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list('{table}') ORDER BY 1"
            ))
            .expect("foreign keys");
        let rows = keys
            .query_map([], |r| {
                Ok(format!(
                    "{table}.{} references {}({})",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?
                ))
            })
            .expect("foreign keys");
        out.extend(rows.map(|r| r.expect("foreign key")));
    }
    out
}

#[tokio::test]
async fn a_database_from_before_versions_is_baselined_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = copy_of_fixture(dir.path());
    let store = SqliteStore::open(&path, Synchronous::Normal).expect("open the old database");
    assert_eq!(versions_and_names(&path), every_migration(migrate::SQLITE));
    fixtures::check_fixture_data(&store).await;
    store.shutdown().await;
}

/// A file from the first unversioned schema (no read markers, `user_version` 1) gets them
/// with its baseline.
#[tokio::test]
async fn a_database_from_before_read_markers_gets_them_at_the_baseline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = copy_of_fixture(dir.path());
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch("ALTER TABLE members DROP COLUMN read_seq; PRAGMA user_version = 1;")
            .expect("back to the first schema");
    }
    let store = SqliteStore::open(&path, Synchronous::Normal).expect("open");
    assert_eq!(versions_and_names(&path), every_migration(migrate::SQLITE));
    let ana = store.user_by_name("ana").await.expect("ana").expect("ana");
    assert_eq!(store.read_markers(ana.id).await.expect("markers"), vec![]);
    let general = store.ensure_public_room("general").await.expect("general");
    let marked = store.mark_read(general.id, ana.id, Seq(3)).await;
    assert_eq!(marked.expect("mark"), Some(Seq(3)));
    store.shutdown().await;
}

#[tokio::test]
async fn a_new_database_gets_every_migration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("new.db");
    let store = SqliteStore::open(&path, Synchronous::Normal).expect("open");
    let ana = store
        .create_user("ana", None, false)
        .await
        .expect("schema works");
    store
        .create_room("club", ana.id, natter_core::RoomKind::Public)
        .await
        .expect("schema works");
    store.shutdown().await;
    assert_eq!(versions_and_names(&path), every_migration(migrate::SQLITE));
}

/// Migration 1 is the schema natter had before versions, so a database from before them,
/// upgraded, ends with the same columns, types, defaults, keys and indexes as a new one.
#[tokio::test]
async fn a_new_database_has_the_schema_of_a_database_from_before_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("new.db");
    SqliteStore::open(&path, Synchronous::Normal)
        .expect("open")
        .shutdown()
        .await;
    let old_dir = tempfile::tempdir().expect("tempdir");
    let old_path = copy_of_fixture(old_dir.path());
    let before = shape(&old_path);
    assert!(before.len() > 30, "{before:?}");
    SqliteStore::open(&old_path, Synchronous::Normal)
        .expect("upgrade")
        .shutdown()
        .await;
    let upgraded = shape(&old_path);
    assert!(
        before.iter().all(|line| upgraded.contains(line)),
        "an upgrade only adds: {before:?} -> {upgraded:?}"
    );
    assert_eq!(shape(&path), upgraded);
}

#[tokio::test]
async fn opening_again_applies_nothing_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = copy_of_fixture(dir.path());
    SqliteStore::open(&path, Synchronous::Normal)
        .expect("open")
        .shutdown()
        .await;
    let first = recorded(&path);
    SqliteStore::open(&path, Synchronous::Normal)
        .expect("reopen")
        .shutdown()
        .await;
    assert_eq!(recorded(&path), first);
}

#[tokio::test]
async fn a_database_newer_than_this_natter_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("future.db");
    SqliteStore::open(&path, Synchronous::Normal)
        .expect("open")
        .shutdown()
        .await;
    let known = migrate::latest(migrate::SQLITE);
    let future = known + 5;
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, 'future', 0)",
            [future],
        )
        .expect("stamp a future version");
    }
    let before = recorded(&path);
    match SqliteStore::open(&path, Synchronous::Normal) {
        Ok(_) => panic!("a database at version {future} was opened"),
        Err(StoreError::Backend(message)) => assert_eq!(
            message,
            format!(
                "the database schema is version {future}; this natter knows up to {known}: \
                 upgrade natter"
            )
        ),
        Err(other) => panic!("refused with {other:?}"),
    }
    assert_eq!(
        recorded(&path),
        before,
        "the refused database is left as it was"
    );
}

#[tokio::test]
async fn a_database_with_only_some_of_the_tables_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("partial.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY); CREATE TABLE rooms (id INTEGER PRIMARY KEY);")
            .expect("partial schema");
    }
    match SqliteStore::open(&path, Synchronous::Normal) {
        Ok(_) => panic!("a partial database was opened"),
        Err(StoreError::Backend(message)) => {
            assert!(message.contains("sessions, members, messages"), "{message}")
        }
        Err(other) => panic!("refused with {other:?}"),
    }
}
