//! Search on each SQL backend beyond the shared rule (`conformance::search`): what the indexes
//! of migrations 0005 and 0007 do that the memory store does not (English stems), substrings shorter
//! than a trigram, terms that are `LIKE` or FTS5 syntax, and that the migration indexes the
//! messages a database already holds (the pre-versions fixtures, upgraded through 0005).
//!
//! The PostgreSQL half runs when `NATTER_TEST_POSTGRES` is a `postgres://` URL (each test on a
//! database of its own) and prints a skip otherwise.

use natter_core::model::*;
use natter_core::Store;
use natter_store_sql::postgres::{unique_database_name, with_database};
use natter_store_sql::{SqliteStore, Synchronous};
use natter_testkit::ScratchDatabase;
use std::path::Path;

fn query(rooms: &[RoomId], words: &[&str], substrings: &[&str]) -> SearchQuery {
    SearchQuery {
        rooms: rooms.to_vec(),
        words: words.iter().map(|w| w.to_string()).collect(),
        substrings: substrings.iter().map(|s| s.to_string()).collect(),
        limit: 50,
        ..SearchQuery::default()
    }
}

async fn bodies(store: &dyn Store, q: SearchQuery) -> Vec<String> {
    let mut found: Vec<String> = store
        .search(&q)
        .await
        .expect("search")
        .into_iter()
        .map(|m| m.body)
        .collect();
    found.sort();
    found
}

/// Stems, short CJK substrings, and terms that mean something to `LIKE` or FTS5.
async fn indexes_find_what_they_should(store: &dyn Store) {
    let ana = store.create_user("ana", None, false).await.expect("user");
    let room = store
        .create_room("ops", ana.id, RoomKind::Public)
        .await
        .expect("room");
    for (i, body) in [
        "We deployed it yesterday",
        "redeploy later",
        "東京で会いましょう",
        "京都に行きます",
        "CPU at 100% again",
        "CPU at 1000 MHz",
        "a_b and a-b",
        r"path C:\temp",
        "say \"NEAR\" OR NOT",
    ]
    .into_iter()
    .enumerate()
    {
        store
            .append(NewMessage {
                room: room.id,
                sender: ana.clone(),
                body: body.into(),
                client_id: format!("c{i}"),
                ts: 1_790_000_000_000 + i as i64,
                ..NewMessage::default()
            })
            .await
            .expect("append");
    }
    let r = [room.id];
    assert_eq!(
        bodies(store, query(&r, &["deploying"], &[])).await,
        vec!["We deployed it yesterday"],
        "English stems: deploying finds deployed, not redeploy"
    );
    assert_eq!(
        bodies(store, query(&r, &[], &["京"])).await,
        vec!["京都に行きます", "東京で会いましょう"],
        "one character"
    );
    assert_eq!(
        bodies(store, query(&r, &[], &["東京"])).await,
        vec!["東京で会いましょう"],
        "two characters, under a trigram"
    );
    assert_eq!(
        bodies(store, query(&r, &[], &["ます"])).await,
        vec!["京都に行きます"],
        "two characters at the very end"
    );
    assert!(
        bodies(store, query(&r, &[], &["e"])).await.is_empty(),
        "a quoted letter is a word of its own: not found inside words (migration 0007)"
    );
    assert_eq!(
        bodies(store, query(&r, &[], &["at"])).await,
        vec!["CPU at 100% again", "CPU at 1000 MHz"],
        "a short word"
    );
    assert_eq!(
        bodies(store, query(&r, &[], &["cpu at 100"])).await,
        vec!["CPU at 100% again"],
        "a phrase ends at a word's end: not inside 1000"
    );
    assert_eq!(
        bodies(store, query(&r, &["yesterday"], &["it"])).await,
        vec!["We deployed it yesterday"],
        "a short substring beside a word"
    );
    assert_eq!(
        bodies(store, query(&r, &[], &["100%"])).await,
        vec!["CPU at 100% again"],
        "% matches only itself"
    );
    assert_eq!(
        bodies(store, query(&r, &[], &["a_b"])).await,
        vec!["a_b and a-b"]
    );
    assert_eq!(
        bodies(store, query(&r, &[], &[r"c:\temp"])).await,
        vec![r"path C:\temp"]
    );
    assert_eq!(
        bodies(store, query(&r, &[], &["\"near\" or not"])).await,
        vec!["say \"NEAR\" OR NOT"],
        "quotes and operators are text"
    );
    assert_eq!(
        bodies(store, query(&r, &["near", "or", "not"], &[])).await,
        vec!["say \"NEAR\" OR NOT"]
    );
    // Relevance with nothing (or only substrings) to rank by: newest first, or the trigram
    // rank, but results all the same.
    for (subs, expected) in [(&[][..], 9), (&["東京"][..], 1), (&["cpu at"][..], 2)] {
        let mut q = query(&r, &[], subs);
        q.order = SearchOrder::Relevance;
        q.from = Some(ana.id);
        let found = store.search(&q).await.expect("relevance without words");
        assert_eq!(found.len(), expected, "{subs:?}");
    }
    // An edit and a delete reach the substring index too.
    let kyoto = store
        .message(room.id, Seq(4))
        .await
        .expect("read")
        .expect("4");
    assert_eq!(kyoto.body, "京都に行きます");
    let change = |change: Change, body: &str, client_id: &str| NewChange {
        room: room.id,
        sender: ana.clone(),
        client_id: client_id.into(),
        ts: 1_790_000_100_000,
        change,
        body: body.into(),
        max_reactions: 20,
    };
    store
        .change(change(
            Change::Edit { target: kyoto.seq },
            "大阪に行きます",
            "e1",
        ))
        .await
        .expect("edit");
    assert!(bodies(store, query(&r, &[], &["京都"])).await.is_empty());
    assert_eq!(
        bodies(store, query(&r, &[], &["大阪"])).await,
        vec!["大阪に行きます"]
    );
    store
        .change(change(Change::Delete { target: kyoto.seq }, "", "d1"))
        .await
        .expect("delete");
    assert!(bodies(store, query(&r, &[], &["大阪"])).await.is_empty());
    assert!(bodies(store, query(&r, &[], &["阪に行"])).await.is_empty());
}

/// The fixture's messages (written before search existed) are found after the upgrade.
async fn fixture_messages_are_found(store: &dyn Store) {
    let ana = store.user_by_name("ana").await.expect("ana").expect("ana");
    let rooms: Vec<RoomId> = store
        .rooms_of(ana.id)
        .await
        .expect("rooms")
        .into_iter()
        .map(|(r, _)| r.id)
        .collect();
    assert_eq!(
        bodies(store, query(&rooms, &["club"], &[])).await,
        vec!["welcome to the club"]
    );
    assert_eq!(
        bodies(store, query(&rooms, &["says"], &["guest"])).await,
        vec!["a guest says hi"]
    );
    assert_eq!(
        bodies(store, query(&rooms, &[], &["psst"])).await,
        vec!["psst, bob"]
    );
}

#[tokio::test]
async fn sqlite_indexes_find_what_they_should() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("t.db"), Synchronous::Normal).expect("open");
    indexes_find_what_they_should(&store).await;
    store.shutdown().await;
}

#[tokio::test]
async fn sqlite_migration_indexes_existing_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v0.db");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/natter-v0.db");
    std::fs::copy(fixture, &path).expect("copy the fixture");
    let store = SqliteStore::open(&path, Synchronous::Normal).expect("upgrade");
    fixture_messages_are_found(&store).await;
    store.shutdown().await;
}

#[tokio::test]
async fn postgres_indexes_find_what_they_should() {
    let Some(scratch) = ScratchDatabase::for_test("search_indexes", "natter_search_test") else {
        return;
    };
    let store = scratch.store(4).await;
    indexes_find_what_they_should(store.as_ref()).await;
    drop(store);
    scratch.drop().await;
}

#[tokio::test]
async fn postgres_migration_indexes_existing_messages() {
    let Some(base) = natter_testkit::postgres_url("search_fixture") else {
        return;
    };
    let name = unique_database_name("natter_search_test");
    let admin = raw_client(&with_database(&base, "postgres")).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let scratch = ScratchDatabase {
        url: with_database(&base, &name),
    };
    raw_client(&scratch.url)
        .await
        .batch_execute(include_str!("fixtures/postgres-v0.sql"))
        .await
        .expect("load the fixture");
    let store = scratch.store(4).await;
    fixture_messages_are_found(store.as_ref()).await;
    drop(store);
    scratch.drop().await;
}

async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("raw connect");
    tokio::spawn(conn);
    client
}
