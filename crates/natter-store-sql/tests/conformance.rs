//! The SQLite store keeps every rule of the shared store conformance suite (one test per
//! rule, each on a fresh file), and keeps its data across a reopen of the file.

use natter_core::conformance::store::StoreUnderTest;
use natter_core::model::*;
use natter_core::Store;
use natter_store_sql::{SqliteStore, Synchronous};
use std::sync::Arc;

/// A store on a new file in a directory of its own, removed once the rule has passed.
async fn fresh_sqlite_store(_test: &'static str) -> Option<StoreUnderTest> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("t.db"), Synchronous::Full).expect("open");
    Some(StoreUnderTest::new(Arc::new(store)).with_cleanup(async move { drop(dir) }))
}

natter_core::store_conformance!(sqlite_store, fresh_sqlite_store);

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/t.db");
    let (user, room) = {
        let store = SqliteStore::open(&path, Synchronous::Normal).expect("open");
        let (user, room) = ana_in_club(&store).await;
        send(&store, &room, &user, "c1", "kept").await;
        store.shutdown().await;
        (user, room)
    };
    let store = SqliteStore::open(&path, Synchronous::Normal).expect("reopen");
    let messages = store
        .messages_after(room.id, Seq(0), 10)
        .await
        .expect("read");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body, "kept");
    assert_eq!(messages[0].sender, user);
    assert!(store.is_member(room.id, user.id).await.expect("member"));
    // After shutdown, writes fail cleanly instead of hanging.
    store.shutdown().await;
    let late = store.create_user("bob", None, false).await;
    assert!(late.is_err());
}

/// A user `ana` and a room `club` she created.
async fn ana_in_club(store: &SqliteStore) -> (User, Room) {
    let user = store
        .create_user("ana", Some("h"), false)
        .await
        .expect("user");
    let room = store
        .create_room("club", user.id, RoomKind::Public)
        .await
        .expect("room");
    (user, room)
}

async fn send(
    store: &SqliteStore,
    room: &Room,
    user: &User,
    client_id: &str,
    body: &str,
) -> Appended {
    store
        .append(NewMessage {
            room: room.id,
            sender: user.clone(),
            body: body.into(),
            client_id: client_id.into(),
            ts: now_millis(),
            ..NewMessage::default()
        })
        .await
        .expect("append")
}

#[tokio::test]
async fn seqs_continue_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let (user, room) = {
        let store = SqliteStore::open(&path, Synchronous::Full).expect("open");
        let (user, room) = ana_in_club(&store).await;
        for i in 1..=3 {
            let sent = send(&store, &room, &user, &format!("c{i}"), "b").await;
            assert_eq!(sent.message.seq, Seq(i));
        }
        store.shutdown().await;
        (user, room)
    };
    let store = SqliteStore::open(&path, Synchronous::Full).expect("reopen");
    assert_eq!(
        store
            .room(room.id)
            .await
            .expect("room")
            .expect("room")
            .last_seq,
        Seq(3)
    );
    let retry = send(&store, &room, &user, "c2", "b").await;
    assert!(retry.duplicate);
    assert_eq!(retry.message.seq, Seq(2));
    let next = send(&store, &room, &user, "c4", "b").await;
    assert_eq!((next.message.seq, next.duplicate), (Seq(4), false));
    assert_eq!(
        store
            .room(room.id)
            .await
            .expect("room")
            .expect("room")
            .last_seq,
        Seq(4)
    );
    store.shutdown().await;
}

/// A file made by the first schema (no read markers) is migrated when opened, keeps its data,
/// and read markers then work and survive a reopen.
#[tokio::test]
async fn a_first_schema_file_is_migrated_to_read_markers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    let (user, room) = {
        let store = SqliteStore::open(&path, Synchronous::Normal).expect("open");
        let (user, room) = ana_in_club(&store).await;
        send(&store, &room, &user, "c1", "one").await;
        send(&store, &room, &user, "c2", "two").await;
        store.shutdown().await;
        (user, room)
    };
    {
        // Back to the first schema, as a server of the previous version left it: the later
        // migrations (2: sessions, 3: room creators, 4: stream changes, 5: search, 6: files,
        // 7: search indexed per batch, 8: roles, 9: groups, 10: profiles, 11: bots,
        // 12: users' bot flag) undone, then the read markers dropped.
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch(
            "ALTER TABLE users DROP COLUMN bot; DROP TABLE api_tokens; DROP TABLE bots;
             DROP INDEX users_by_avatar; ALTER TABLE users DROP COLUMN display_name;
             ALTER TABLE users DROP COLUMN status; ALTER TABLE users DROP COLUMN avatar;
             DROP TABLE audit; DROP TABLE invites; DROP TABLE bans;
             ALTER TABLE rooms DROP COLUMN topic; ALTER TABLE rooms DROP COLUMN description;
             ALTER TABLE rooms DROP COLUMN archived; ALTER TABLE members DROP COLUMN role;
             ALTER TABLE members DROP COLUMN muted_until; ALTER TABLE users DROP COLUMN admin;
             ALTER TABLE users DROP COLUMN deactivated;
             DROP TABLE message_files; DROP TABLE files; DROP TABLE server_secrets;
             DROP TRIGGER messages_search_update; DROP TRIGGER messages_search_delete;
             DROP TABLE search_progress;
             DROP TABLE message_trigram_terms; DROP TABLE message_words;
             DROP TABLE message_trigrams;
             DROP INDEX messages_by_thread; DROP INDEX messages_by_target;
             DROP TABLE reactions; DROP TABLE mentions; ALTER TABLE members DROP COLUMN notify;
             ALTER TABLE messages DROP COLUMN kind; ALTER TABLE messages DROP COLUMN target;
             ALTER TABLE messages DROP COLUMN emoji; ALTER TABLE messages DROP COLUMN reaction_add;
             ALTER TABLE messages DROP COLUMN thread; ALTER TABLE messages DROP COLUMN also_room;
             ALTER TABLE messages DROP COLUMN mentions;
             ALTER TABLE messages DROP COLUMN mentions_room;
             ALTER TABLE messages DROP COLUMN edited_at; ALTER TABLE messages DROP COLUMN deleted;
             ALTER TABLE messages DROP COLUMN original_body;
             ALTER TABLE messages DROP COLUMN replies;
             ALTER TABLE messages DROP COLUMN last_reply_ts;
             DROP INDEX sessions_by_user; DROP INDEX sessions_by_last_use;
             DROP INDEX guests_by_last_active;
             ALTER TABLE sessions DROP COLUMN last_used_at;
             ALTER TABLE sessions DROP COLUMN label;
             ALTER TABLE users DROP COLUMN last_active;
             DROP INDEX rooms_by_creator; ALTER TABLE rooms DROP COLUMN created_by;
             DELETE FROM schema_migrations WHERE version > 1;
             ALTER TABLE members DROP COLUMN read_seq; PRAGMA user_version = 1;",
        )
        .expect("downgrade");
    }
    {
        let store = SqliteStore::open(&path, Synchronous::Normal).expect("migrate");
        assert_eq!(store.read_markers(user.id).await.expect("markers"), vec![]);
        let marked = store
            .mark_read(room.id, user.id, Seq(1))
            .await
            .expect("mark");
        assert_eq!(marked, Some(Seq(1)));
        store.shutdown().await;
    }
    let store = SqliteStore::open(&path, Synchronous::Normal).expect("reopen");
    assert_eq!(
        store.read_markers(user.id).await.expect("markers"),
        vec![(room.id, Seq(1))]
    );
    let messages = store
        .messages_after(room.id, Seq(0), 10)
        .await
        .expect("read");
    assert_eq!(messages.len(), 2, "the data of the old file is kept");
    store.shutdown().await;
}
