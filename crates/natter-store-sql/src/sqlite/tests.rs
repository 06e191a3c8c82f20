//! Unit tests of the store itself: its writer queue's back-pressure.

use super::*;
use natter_core::model::{NewMessage, User};
use rusqlite::params;
use std::time::Duration;

fn message(room: RoomId, sender: &User, n: u32) -> NewMessage {
    NewMessage {
        room,
        sender: sender.clone(),
        body: format!("m{n}"),
        client_id: format!("c{n}"),
        ts: 0,
        ..NewMessage::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_writer_queue_refuses_at_once_and_what_it_holds_goes_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open_tuned(
            dir.path().join("q.db"),
            Synchronous::Normal,
            Tuning {
                writer_queue: 2,
                ..Tuning::default()
            },
        )
        .expect("open"),
    );
    let (ana, room) = user_and_room(&store).await;

    // Hold the writer inside a job of its own.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let blocker = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(move |_| {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    Ok(())
                })
                .await
        })
    };
    tokio::task::spawn_blocking(move || started_rx.recv_timeout(Duration::from_secs(10)))
        .await
        .expect("join")
        .expect("the writer took the blocking job");

    // Two appends fill the queue (each is queued at its first poll)...
    let mut first = Box::pin(store.append(message(room, &ana, 1)));
    let mut second = Box::pin(store.append(message(room, &ana, 2)));
    assert!(tokio::time::timeout(Duration::ZERO, &mut first)
        .await
        .is_err());
    assert!(tokio::time::timeout(Duration::ZERO, &mut second)
        .await
        .is_err());
    // ... and the third is refused at once, not queued.
    let third = store.append(message(room, &ana, 3)).await;
    assert!(matches!(third, Err(StoreError::Busy)), "{third:?}");

    release_tx.send(()).expect("release");
    blocker.await.expect("join").expect("blocking job");
    let first = first.await.expect("first append");
    let second = second.await.expect("second append");
    assert_eq!((first.message.seq, second.message.seq), (Seq(1), Seq(2)));
    // The refused one was never stored; sent again, it is the next.
    let again = store.append(message(room, &ana, 3)).await.expect("retry");
    assert_eq!((again.message.seq, again.duplicate), (Seq(3), false));
}

/// The search indexes are filled by index passes (migration 0007, ADR 0032): a message stored
/// and edited before a pass is indexed by its final text only, an edit after it goes through
/// the update trigger, only texts in scripts without spaces reach the trigram index,
/// and both FTS5 indexes pass their integrity checks afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_indexes_follow_each_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, ana, room) = store_with_room(&dir.path().join("s.db")).await;
    let (user, room_id) = (ana.id.0, room.0);
    store
        .write(move |conn| {
            let insert = |seq: i64, body: &str| {
                conn.execute(
                    "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                    params![room_id, seq, user, body, format!("c{seq}")],
                )
            };
            insert(1, "first draft").map_err(backend)?;
            conn.execute("UPDATE messages SET body = 'final words' WHERE seq = 1", [])
                .map_err(backend)?;
            insert(2, "東京で会いましょう").map_err(backend)?;
            insert(3, "plain english").map_err(backend)?;
            Ok(())
        })
        .await
        .expect("batch");
    // Indexed now, so the edit below goes through the update trigger.
    store.catch_up_index().await.expect("index pass");
    store
        .write(|conn| {
            conn.execute(
                "UPDATE messages SET body = 'plain edited' WHERE seq = 3",
                [],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
        .expect("edit");
    store.catch_up_index().await.expect("index pass");
    let checks = store
        .read(|conn| {
            let count = |sql: &str| -> Result<i64, StoreError> {
                conn.query_row(sql, [], |r| r.get(0)).map_err(backend)
            };
            conn.execute_batch(
                "INSERT INTO message_words (message_words) VALUES ('integrity-check');
                 INSERT INTO message_trigrams (message_trigrams) VALUES ('integrity-check');",
            )
            .map_err(backend)?;
            Ok([
                count("SELECT count(*) FROM message_words('final')")?,
                count("SELECT count(*) FROM message_words('draft')")?,
                count("SELECT count(*) FROM message_words('edited')")?,
                count("SELECT count(*) FROM message_words('english')")?,
                count("SELECT count(*) FROM message_trigrams('会いま')")?,
                count("SELECT count(*) FROM message_trigrams('pla')")?,
                count("SELECT indexed_up_to FROM search_progress")?,
            ])
        })
        .await
        .expect("read");
    assert_eq!(checks, [1, 0, 1, 0, 1, 0, 3]);
    store.shutdown().await;
}

/// A user, "ana", and a room of hers in `store`.
async fn user_and_room(store: &SqliteStore) -> (User, RoomId) {
    let ana = store.create_user("ana", None, false).await.expect("user");
    let room = store
        .create_room("r", ana.id, RoomKind::Public)
        .await
        .expect("room")
        .id;
    (ana, room)
}

/// The WAL limits the WAL tests run with: SQLite's default checkpoint (1,000 pages) and an
/// 8 MB file kept, an eighth of Natter's, so that a test reaches them in a few thousand
/// messages.
const SMALL_WAL: Tuning = Tuning {
    writer_queue: WRITER_QUEUE,
    wal_checkpoint_pages: 1_000,
    wal_keep_bytes: 8 << 20,
};

/// A store at `path` (no fsync, `SMALL_WAL`) with `user_and_room`.
async fn store_with_room(path: &std::path::Path) -> (SqliteStore, User, RoomId) {
    let store = SqliteStore::open_tuned(path, Synchronous::Normal, SMALL_WAL).expect("open");
    let (ana, room) = user_and_room(&store).await;
    (store, ana, room)
}

/// Waits until the store's `wal_bytes` says `file` (its checkpointer measures every 250 ms).
async fn until_reported(store: &SqliteStore, file: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.wal_bytes() != Some(file) {
        assert!(
            std::time::Instant::now() < deadline,
            "wal_bytes {:?}, the file {file}",
            store.wal_bytes()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Under a steady stream of commits the WAL starts over (ADR 0034): the checkpointer thread's
/// PASSIVE pass alone never finds a moment without a new commit, so without the writer's own
/// checkpoint the file grew by ~4 pages per message, without bound. 4,000 messages, one commit
/// each, write ~16,000 WAL pages (64 MB); the file must stay near the checkpoint's 1,000 pages
/// (`SMALL_WAL`; Natter's 8,000 works the same way, only later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_steady_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, ana, room) = store_with_room(&dir.path().join("w.db")).await;
    let mut wal_pages_max = 0;
    for n in 0..4_000 {
        let appended = store.append(message(room, &ana, n)).await.expect("append");
        assert_eq!(appended.message.seq, Seq(i64::from(n) + 1));
        if n % 100 == 99 {
            let bytes = std::fs::metadata(dir.path().join("w.db-wal"))
                .expect("the WAL exists")
                .len();
            wal_pages_max = wal_pages_max.max(bytes / 4_120);
        }
    }
    // The writer's pass runs once the WAL holds 1,000 pages; a batch adds a few more before
    // the next commit starts the file over.
    assert!(
        wal_pages_max <= u64::from(SMALL_WAL.wal_checkpoint_pages) + 200,
        "the WAL reached {wal_pages_max} pages"
    );
    let last = store
        .read(move |conn| {
            conn.query_row(
                "SELECT max(seq) FROM messages WHERE room_id = ?1",
                params![room.0],
                |r| r.get::<_, i64>(0),
            )
            .map_err(backend)
        })
        .await
        .expect("read");
    assert_eq!(last, 4_000);
    // The store reports the file's size (its checkpointer measures it every 250 ms).
    let file = std::fs::metadata(dir.path().join("w.db-wal"))
        .expect("the WAL exists")
        .len();
    until_reported(&store, file).await;
    store.shutdown().await;
}

/// A WAL that grew while a long read held it back (a backup, say) is cut back to the size
/// kept (`SMALL_WAL`'s 8 MB) once the read ends and the WAL starts over, and the store's
/// `wal_bytes` follows it down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_held_back_by_a_long_read_shrinks_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.db");
    let (store, ana, room) = store_with_room(&path).await;
    let wal_file = || {
        std::fs::metadata(dir.path().join("r.db-wal"))
            .expect("the WAL exists")
            .len()
    };
    // A reader holds a snapshot: no checkpoint can pass it, so the WAL cannot start over.
    let reader = Connection::open(&path).expect("reader");
    reader.execute_batch("BEGIN").expect("begin");
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .expect("read");
    assert_eq!(seen, 0);
    let mut n = 0;
    let keep = SMALL_WAL.wal_keep_bytes;
    while wal_file() <= 2 * keep {
        store.append(message(room, &ana, n)).await.expect("append");
        n += 1;
    }
    // The read ends; the next checkpoint completes and the WAL starts over, cut back.
    reader.execute_batch("COMMIT").expect("end the read");
    drop(reader);
    let grown = wal_file();
    let mut more = 0;
    while wal_file() > keep + 200 * 4_120 {
        assert!(more < 20_000, "the WAL stayed at {} bytes", wal_file());
        store
            .append(message(room, &ana, n + more))
            .await
            .expect("append");
        more += 1;
    }
    let file = wal_file();
    assert!(file < grown, "{file} < {grown}");
    until_reported(&store, file).await;
    store.shutdown().await;
}

/// The store Natter opens gets Natter's WAL limits on its writer's connection (ADR 0035),
/// not SQLite's defaults (1,000 pages, no size limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_runs_with_natters_wal_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("d.db"), Synchronous::Normal).expect("open");
    let (pages, keep) = store
        .write(|conn| {
            let pages: i64 = conn
                .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
                .map_err(backend)?;
            let keep: i64 = conn
                .query_row("PRAGMA journal_size_limit", [], |r| r.get(0))
                .map_err(backend)?;
            Ok((pages, keep))
        })
        .await
        .expect("read the pragmas");
    assert_eq!(pages, i64::from(WAL_AUTOCHECKPOINT_PAGES));
    assert_eq!(keep, WAL_KEEP_BYTES as i64);
    store.shutdown().await;
}

/// When `shutdown` returns, every connection is closed and the writer's, the last, has folded
/// the WAL in: the directory holds the database alone, and the file is complete without it.
/// (Before, the checkpointer thread closed its connection up to 250 ms later, so the WAL and
/// `-shm` could still be there; `natter migrate`'s test saw them vanish under it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_the_directory_holds_the_database_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let (store, ana, room) = store_with_room(&path).await;
    for n in 0..50 {
        store.append(message(room, &ana, n)).await.expect("append");
    }
    // A read, so the readers' connections are open too.
    let found = store
        .read(move |conn| {
            conn.query_row(
                "SELECT count(*) FROM messages WHERE room_id = ?1",
                params![room.0],
                |r| r.get::<_, i64>(0),
            )
            .map_err(backend)
        })
        .await
        .expect("read");
    assert_eq!(found, 50);
    store.shutdown().await;
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["s.db"]);
    let alone = Connection::open_with_flags(
        format!("file:{}?immutable=1", path.display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .expect("open the file alone");
    let stored: i64 = alone
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .expect("count");
    assert_eq!(stored, 50);
}
