//! The PostgreSQL `Store` on a real PostgreSQL: the store rules (one test per rule), and what
//! several nodes sharing one database need (seqs allocated by the database under concurrent appends from
//! several pools, concurrent duplicates, nodes migrating at once), and versioned schema
//! migrations (a database from before versions, from the committed `tests/fixtures/
//! postgres-v0.sql`, is recorded as the baseline and keeps its data; a new one gets every
//! migration, once even when nodes open it together; a newer one is refused).
//!
//! Runs when `NATTER_TEST_POSTGRES` is a `postgres://` URL (each test creates and drops its own
//! database); prints a skip otherwise, and fails instead when `NATTER_REQUIRE_SERVICES=1`.
//!
//! Over 500 lines on purpose: every test here needs the same PostgreSQL, scratch databases and
//! skip rule, so they stay one binary (one link, one place for the service's rules).

mod fixtures;

use natter_core::conformance;
use natter_core::conformance::store::StoreUnderTest;
use natter_core::model::*;
use natter_core::{Store, StoreError};
use natter_store_sql::migrate;
use natter_store_sql::postgres::{unique_database_name, with_database};
use natter_store_sql::PostgresStore;
use natter_testkit::{eventually, postgres_url, ScratchDatabase, WAIT};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn new_message(room: RoomId, sender: &User, client_id: &str) -> NewMessage {
    NewMessage {
        room,
        sender: sender.clone(),
        body: format!("body of {client_id}"),
        client_id: client_id.to_string(),
        ts: now_millis(),
        ..NewMessage::default()
    }
}

/// A database of the test's own, or None (a visible skip) when PostgreSQL is not configured.
fn scratch(test: &str) -> Option<ScratchDatabase> {
    ScratchDatabase::for_test(test, "natter_store_test")
}

/// A store on a database of its own, dropped once the rule has passed.
async fn fresh_postgres_store(test: &'static str) -> Option<StoreUnderTest> {
    let scratch = scratch(test)?;
    let store: Arc<dyn Store> = scratch.store(8).await;
    Some(StoreUnderTest::new(store).with_cleanup(scratch.drop()))
}

natter_core::store_conformance!(postgres_store, fresh_postgres_store);

#[tokio::test]
async fn basic_rules_hold() {
    let Some(scratch) = scratch("basic_rules_hold") else {
        return;
    };
    let store = scratch.store(8).await;
    let ana = store
        .create_user("Ana", Some("hash"), false)
        .await
        .expect("ana");
    assert!(matches!(
        store.create_user("ana", None, false).await,
        Err(StoreError::Conflict(_))
    ));
    let creds = store
        .credentials("ANA")
        .await
        .expect("creds")
        .expect("found");
    assert_eq!(creds.user, ana);
    assert_eq!(creds.password_hash.as_deref(), Some("hash"));
    let bob = store.create_user("bob", None, true).await.expect("bob");
    assert!(bob.guest);

    store
        .create_session(b"tok", ana.id, "", now_millis())
        .await
        .expect("session");
    assert_eq!(
        store.session_user(b"tok").await.expect("q"),
        Some(ana.clone())
    );
    assert_eq!(store.delete_session(b"tok").await.expect("q"), Some(ana.id));
    assert_eq!(store.session_user(b"tok").await.expect("q"), None);

    let general = store.ensure_public_room("general").await.expect("general");
    assert_eq!(
        store.ensure_public_room("General").await.expect("again").id,
        general.id
    );
    assert!(conformance::join(&*store, general.id, &ana)
        .await
        .expect("join"));
    assert!(!conformance::join(&*store, general.id, &ana)
        .await
        .expect("join again"));
    assert!(conformance::join(&*store, general.id, &bob)
        .await
        .expect("join"));
    assert_eq!(
        store
            .room(general.id)
            .await
            .expect("q")
            .expect("room")
            .member_count,
        2
    );
    assert!(conformance::leave(&*store, general.id, &bob)
        .await
        .expect("leave"));
    assert!(!conformance::leave(&*store, general.id, &bob)
        .await
        .expect("leave again"));
    assert_eq!(
        store.members(general.id).await.expect("q"),
        vec![ana.clone()]
    );

    let rust = store
        .create_room("rust", bob.id, RoomKind::Public)
        .await
        .expect("room");
    assert_eq!(rust.member_count, 1);
    assert!(matches!(
        store.create_room("RUST", ana.id, RoomKind::Public).await,
        Err(StoreError::Conflict(_))
    ));
    let (dm, created) = store.open_dm(ana.id, bob.id).await.expect("dm");
    assert!(created);
    let (again, created) = store.open_dm(bob.id, ana.id).await.expect("dm again");
    assert!(!created);
    assert_eq!(again.id, dm.id);
    let mine = store.rooms_of(ana.id).await.expect("rooms");
    let dm_peer = mine
        .iter()
        .find(|(r, _)| r.id == dm.id)
        .and_then(|(_, p)| p.clone());
    assert_eq!(dm_peer, Some(bob.clone()));
    let public: Vec<String> = store
        .public_rooms()
        .await
        .expect("public")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(public, vec!["general".to_string(), "rust".to_string()]);

    // Entries 1-3 are ana's and bob's joins and bob's leave; the messages are 4-8.
    for i in 1..=5 {
        let stored = store
            .append(new_message(general.id, &ana, &format!("c{i}")))
            .await
            .expect("append");
        assert_eq!(stored.message.seq, Seq(3 + i));
        assert!(!stored.duplicate);
    }
    let retry = store
        .append(new_message(general.id, &ana, "c3"))
        .await
        .expect("retry");
    assert!(retry.duplicate);
    assert_eq!(retry.message.seq, Seq(6));
    let after = store
        .messages_after(general.id, Seq(5), 2)
        .await
        .expect("after");
    assert_eq!(
        after.iter().map(|m| m.seq.0).collect::<Vec<_>>(),
        vec![6, 7]
    );
    let before = store
        .message_page(general.id, Scope::Room, Some(Seq(8)), None, 2)
        .await
        .expect("before");
    assert_eq!(
        before.iter().map(|m| m.seq.0).collect::<Vec<_>>(),
        vec![6, 7]
    );
    let newest = store
        .message_page(general.id, Scope::Room, None, None, 10)
        .await
        .expect("newest");
    assert_eq!(newest.len(), 5);
    assert_eq!(newest[0].sender, ana);
    assert!(matches!(
        store.append(new_message(RoomId(999_999), &ana, "x")).await,
        Err(StoreError::NotFound)
    ));
    store.shutdown().await;
    scratch.drop().await;
}

/// Three pools (three nodes) append to one room at once: the database hands out every seq
/// once, 1..=N, and a reader sees them in order with no gap.
#[tokio::test]
async fn seqs_stay_unique_and_gapless_across_nodes() {
    let Some(scratch) = scratch("seqs_stay_unique_and_gapless_across_nodes") else {
        return;
    };
    let nodes = [
        scratch.store(8).await,
        scratch.store(8).await,
        scratch.store(8).await,
    ];
    let room = nodes[0].ensure_public_room("busy").await.expect("room");
    let mut senders = Vec::new();
    for i in 0..6 {
        senders.push(
            nodes[0]
                .create_user(&format!("sender{i}"), None, false)
                .await
                .expect("user"),
        );
    }
    const PER_SENDER: usize = 40;
    let mut tasks = Vec::new();
    for (i, sender) in senders.iter().enumerate() {
        let store = nodes[i % nodes.len()].clone();
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..PER_SENDER {
                let stored = store
                    .append(new_message(
                        room.id,
                        &sender,
                        &format!("{}-{n}", sender.name),
                    ))
                    .await
                    .expect("append");
                seqs.push(stored.message.seq.0);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.expect("task");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one sender's seqs increase"
        );
        all.extend(seqs);
    }
    let total = senders.len() * PER_SENDER;
    all.sort_unstable();
    assert_eq!(all, (1..=total as i64).collect::<Vec<_>>());
    let stored = nodes[2]
        .messages_after(room.id, Seq::ZERO, 1000)
        .await
        .expect("read");
    assert_eq!(stored.len(), total);
    assert!(stored
        .iter()
        .enumerate()
        .all(|(i, m)| m.seq.0 == i as i64 + 1));
    let room_now = nodes[1].room(room.id).await.expect("q").expect("room");
    assert_eq!(room_now.last_seq, Seq(total as i64));
    for store in &nodes {
        store.shutdown().await;
    }
    scratch.drop().await;
}

/// The same send retried on several nodes at once is stored once; every attempt gets the
/// original back, and the room's seq is not spent twice.
#[tokio::test]
async fn concurrent_duplicates_return_the_original() {
    let Some(scratch) = scratch("concurrent_duplicates_return_the_original") else {
        return;
    };
    let nodes = [scratch.store(8).await, scratch.store(8).await];
    let room = nodes[0].ensure_public_room("dupes").await.expect("room");
    let ana = nodes[0].create_user("ana", None, false).await.expect("ana");
    for round in 0..10 {
        let client_id = format!("retry-{round}");
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = nodes[i % 2].clone();
            let message = new_message(room.id, &ana, &client_id);
            tasks.push(tokio::spawn(async move { store.append(message).await }));
        }
        let mut originals = 0;
        let mut ids = HashSet::new();
        for task in tasks {
            let appended = task.await.expect("task").expect("append");
            if !appended.duplicate {
                originals += 1;
            }
            ids.insert((appended.message.id, appended.message.seq));
        }
        assert_eq!(originals, 1, "round {round}: stored once");
        assert_eq!(
            ids.len(),
            1,
            "round {round}: every attempt sees the original"
        );
        let (_, seq) = ids.into_iter().next().expect("one");
        assert_eq!(seq, Seq(round + 1), "no seq spent on a duplicate");
    }
    for store in &nodes {
        store.shutdown().await;
    }
    scratch.drop().await;
}

/// Nodes starting together against a new database migrate it once, without errors.
#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let Some(scratch) = scratch("nodes_starting_together_migrate_once") else {
        return;
    };
    let url = scratch.url.clone();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            PostgresStore::connect(&url, 2).await.map(|_| ())
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("connect and migrate");
    }
    let store = scratch.store(8).await;
    store
        .ensure_public_room("general")
        .await
        .expect("schema works");
    store.shutdown().await;
    scratch.drop().await;
}

/// A second session on the test's database that takes the `rooms` table's lock and holds it
/// until `release`: every append behind it blocks inside its transaction, with its pooled
/// connection taken (what a saturated database looks like to the pool).
struct RoomsLock {
    client: tokio_postgres::Client,
}

impl RoomsLock {
    async fn take(url: &str) -> RoomsLock {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("lock session");
        tokio::spawn(connection);
        client
            .batch_execute("BEGIN; LOCK TABLE rooms IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock rooms");
        RoomsLock { client }
    }

    /// Sessions of this database waiting for a lock (the blocked appends).
    async fn blocked(&self) -> i64 {
        self.client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0)
    }

    async fn release(self) {
        self.client.batch_execute("COMMIT").await.expect("unlock");
    }
}

/// A saturated pool refuses at once instead of queueing without bound: with its one
/// connection stuck in an append and `max_waiting` appends already waiting for it, the next
/// append gets `Busy` while the others still wait; a wait longer than the pool's wait timeout
/// also ends in `Busy`. The waiting appends then commit, and the refused one, resent, is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_pool_refuses_appends_at_once() {
    let Some(scratch) = scratch("a_saturated_pool_refuses_appends_at_once") else {
        return;
    };
    let limits = |max_waiting, wait_timeout, append_queue| natter_store_sql::postgres::PoolLimits {
        size: 1,
        max_waiting,
        wait_timeout,
        append_queue,
    };
    let store = Arc::new(
        PostgresStore::connect_with(&scratch.url, limits(2, WAIT, 2))
            .await
            .expect("connect"),
    );
    // A second node whose queries wait at most 300 ms for its one connection.
    let impatient = Arc::new(
        PostgresStore::connect_with(&scratch.url, limits(8, Duration::from_millis(300), 64))
            .await
            .expect("connect"),
    );
    // Rooms 1-4: one in each lane of the group commit (lane = room id mod 4).
    let mut rooms = Vec::new();
    for name in ["full", "b", "c", "d"] {
        rooms.push(store.ensure_public_room(name).await.expect("room").id);
    }
    let lanes: HashSet<i64> = rooms.iter().map(|r| r.0 % 4).collect();
    assert_eq!(lanes.len(), 4, "one room per lane: {rooms:?}");
    let room = rooms[0];
    let ana = store.create_user("ana", None, false).await.expect("ana");
    let lock = RoomsLock::take(&scratch.url).await;

    let spawn_append = |room: RoomId, client_id: &str| {
        let store = store.clone();
        let message = new_message(room, &ana, client_id);
        tokio::spawn(async move { store.append(message).await })
    };
    // The first append's batch holds the only connection, blocked on the lock.
    let stuck = spawn_append(room, "stuck");
    eventually("the first append blocks on the lock", async || {
        lock.blocked().await == 1
    })
    .await;
    // Its lane queues two more (the bound here) behind it, and refuses a third at once.
    // Each is issued once the one before it is queued: tasks spawned together may start in
    // either order (CI once saw the second stored first, as issued).
    let first_queued = spawn_append(room, "queued-1");
    eventually("one append queues in the lane", async || {
        store.appends_waiting() == 1
    })
    .await;
    let queued = [first_queued, spawn_append(room, "queued-2")];
    eventually("two appends queue in the lane", async || {
        store.appends_waiting() == 2
    })
    .await;
    let refused = tokio::time::timeout(
        Duration::from_secs(2),
        store.append(new_message(room, &ana, "refused")),
    )
    .await
    .expect("refused without waiting");
    assert!(matches!(refused, Err(StoreError::Busy)), "{refused:?}");
    // Two other lanes wait for the pool's one connection (the bound here); a third is
    // refused at once, well before the pool's wait timeout (WAIT) could end a wait.
    let waiting = [
        spawn_append(rooms[1], "waiting-1"),
        spawn_append(rooms[2], "waiting-2"),
    ];
    eventually("two lanes wait for the connection", async || {
        store.waiting_for_connection() == 2
    })
    .await;
    let refused_pool = tokio::time::timeout(
        Duration::from_secs(2),
        store.append(new_message(rooms[3], &ana, "refused-pool")),
    )
    .await
    .expect("refused without waiting");
    assert!(
        matches!(refused_pool, Err(StoreError::Busy)),
        "{refused_pool:?}"
    );
    assert!(
        !stuck.is_finished(),
        "the refusals did not wait for the stuck append"
    );

    // A wait for a connection longer than the pool's wait timeout is refused too.
    let first = {
        let impatient = impatient.clone();
        let message = new_message(room, &ana, "impatient-1");
        tokio::spawn(async move { impatient.append(message).await })
    };
    eventually(
        "the impatient node's append blocks on the lock",
        async || lock.blocked().await == 2,
    )
    .await;
    let second = tokio::time::timeout(
        WAIT,
        impatient.append(new_message(rooms[1], &ana, "impatient-2")),
    )
    .await;
    let second = second.expect("the wait ended by itself");
    assert!(matches!(second, Err(StoreError::Busy)), "{second:?}");

    lock.release().await;
    let mut seqs = Vec::new();
    for task in std::iter::once(stuck).chain(queued) {
        let appended = task.await.expect("task").expect("a queued append commits");
        seqs.push(appended.message.seq);
    }
    // (The other node's append may commit between them: it waited on the same lock.)
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "a lane stores in the order appends were issued: {seqs:?}"
    );
    for task in waiting {
        let appended = task.await.expect("task").expect("a waiting append commits");
        assert_eq!(appended.message.seq, Seq(1));
    }
    let first = first
        .await
        .expect("task")
        .expect("the impatient node's first append commits");
    let mut seqs: HashSet<Seq> = seqs.into_iter().collect();
    seqs.insert(first.message.seq);
    for client_id in ["refused", "refused-pool"] {
        let target = if client_id == "refused" {
            room
        } else {
            rooms[3]
        };
        let resent = store
            .append(new_message(target, &ana, client_id))
            .await
            .expect("the refused append, resent");
        assert!(
            !resent.duplicate,
            "the refused append was not stored before"
        );
        if target == room {
            seqs.insert(resent.message.seq);
        }
    }
    assert_eq!(
        seqs,
        (1..=5).map(Seq).collect::<HashSet<_>>(),
        "five appends in the locked room, gapless"
    );
    let history = store
        .message_page(room, Scope::Room, None, None, 10)
        .await
        .expect("history");
    assert_eq!(history.len(), 5, "nothing refused was stored");
    impatient.shutdown().await;
    store.shutdown().await;
    scratch.drop().await;
}

/// The documented bound (protocol.md, deployment.md): 64 waiting per pooled connection.
#[test]
fn a_pool_lets_64_queries_per_connection_wait() {
    use natter_store_sql::postgres::{PoolLimits, DEFAULT_POOL_SIZE};
    assert_eq!(PoolLimits::with_size(DEFAULT_POOL_SIZE).max_waiting, 1024);
    assert_eq!(PoolLimits::with_size(4).max_waiting, 256);
    assert_eq!(
        PoolLimits::with_size(0).max_waiting,
        64,
        "a pool has one connection at least"
    );
}

/// A client of its own on the database `url` names (outside the store's pool).
async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("raw connect");
    tokio::spawn(conn);
    client
}

/// A scratch database holding what natter wrote before versioned migrations (the fixture).
async fn scratch_from_before_versions(base: &str) -> ScratchDatabase {
    let name = unique_database_name("natter_store_test");
    raw_client(&with_database(base, "postgres"))
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let scratch = ScratchDatabase {
        url: with_database(base, &name),
    };
    raw_client(&scratch.url)
        .await
        .batch_execute(include_str!("fixtures/postgres-v0.sql"))
        .await
        .expect("load the fixture");
    scratch
}

/// (version, name) of each row of `schema_migrations`.
async fn recorded_versions(url: &str) -> Vec<(i64, String)> {
    raw_client(url)
        .await
        .query(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("schema_migrations")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn every_postgres_migration() -> Vec<(i64, String)> {
    migrate::POSTGRES
        .iter()
        .map(|m| (m.version, m.name.to_string()))
        .collect()
}

/// Columns, constraints and indexes of natter's tables, as PostgreSQL describes them.
async fn schema_shape(url: &str) -> Vec<String> {
    let client = raw_client(url).await;
    let tables: &[&str] = &["users", "sessions", "rooms", "members", "messages"];
    let columns = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text,
                    COALESCE(column_default::text, '')
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name::text = ANY($1::text[])
             ORDER BY table_name, ordinal_position",
            &[&tables],
        )
        .await
        .expect("columns");
    let constraints = client
        .query(
            "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid)
             FROM pg_constraint
             WHERE conrelid::regclass::text = ANY($1::text[]) ORDER BY 1, 2",
            &[&tables],
        )
        .await
        .expect("constraints");
    let indexes = client
        .query(
            "SELECT tablename::text, indexname::text, indexdef FROM pg_indexes
             WHERE schemaname = current_schema() AND tablename::text = ANY($1::text[])
             ORDER BY 1, 2",
            &[&tables],
        )
        .await
        .expect("indexes");
    let mut out: Vec<String> = columns
        .iter()
        .map(|r| {
            let parts: Vec<String> = (0..5).map(|i| r.get(i)).collect();
            parts.join(" ")
        })
        .collect();
    for row in constraints.iter().chain(indexes.iter()) {
        let parts: Vec<String> = (0..3).map(|i| row.get(i)).collect();
        out.push(parts.join(" "));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_database_from_before_versions_is_baselined_and_keeps_its_data() {
    let Some(base) =
        postgres_url("postgres_a_database_from_before_versions_is_baselined_and_keeps_its_data")
    else {
        return;
    };
    let scratch = scratch_from_before_versions(&base).await;
    let store = scratch.store(8).await;
    assert_eq!(
        recorded_versions(&scratch.url).await,
        every_postgres_migration()
    );
    fixtures::check_fixture_data(store.as_ref()).await;
    store.shutdown().await;
    scratch.drop().await;
}

/// A database from the first unversioned schema (no read markers, `natter_schema` at 1) gets
/// them with its baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_database_from_before_read_markers_gets_them_at_the_baseline() {
    let Some(base) =
        postgres_url("postgres_a_database_from_before_read_markers_gets_them_at_the_baseline")
    else {
        return;
    };
    let scratch = scratch_from_before_versions(&base).await;
    raw_client(&scratch.url)
        .await
        .batch_execute(
            "ALTER TABLE members DROP COLUMN read_seq; UPDATE natter_schema SET version = 1",
        )
        .await
        .expect("back to the first schema");
    let store = scratch.store(8).await;
    assert_eq!(
        recorded_versions(&scratch.url).await,
        every_postgres_migration()
    );
    let ana = store.user_by_name("ana").await.expect("ana").expect("ana");
    assert_eq!(store.read_markers(ana.id).await.expect("markers"), vec![]);
    let general = store.ensure_public_room("general").await.expect("general");
    let marked = store.mark_read(general.id, ana.id, Seq(3)).await;
    assert_eq!(marked.expect("mark"), Some(Seq(3)));
    store.shutdown().await;
    scratch.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_new_database_gets_every_migration() {
    let Some(base) = postgres_url("postgres_a_new_database_gets_every_migration") else {
        return;
    };
    let scratch = ScratchDatabase::new(&base, "natter_store_test");
    let store = scratch.store(8).await;
    let ana = store
        .create_user("ana", None, false)
        .await
        .expect("schema works");
    store
        .create_room("club", ana.id, RoomKind::Public)
        .await
        .expect("schema works");
    assert_eq!(
        recorded_versions(&scratch.url).await,
        every_postgres_migration()
    );
    store.shutdown().await;
    scratch.drop().await;
}

/// Migration 1 is the schema natter had before versions, so the fixture, upgraded, ends with
/// the same columns, types, defaults, constraints and indexes as a new database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_new_database_has_the_schema_of_a_database_from_before_versions() {
    let Some(base) =
        postgres_url("postgres_a_new_database_has_the_schema_of_a_database_from_before_versions")
    else {
        return;
    };
    let old = scratch_from_before_versions(&base).await;
    let new = ScratchDatabase::new(&base, "natter_store_test");
    new.store(8).await.shutdown().await;
    let old_shape = schema_shape(&old.url).await;
    assert!(old_shape.len() > 30, "{old_shape:?}");
    old.store(8).await.shutdown().await;
    let upgraded = schema_shape(&old.url).await;
    // An upgrade only adds, but for the one constraint migration 0008 widens (private rooms).
    assert!(
        old_shape
            .iter()
            .filter(|line| !line.starts_with("rooms rooms_kind_check"))
            .all(|line| upgraded.contains(line)),
        "an upgrade only adds: {old_shape:?} -> {upgraded:?}"
    );
    assert_eq!(schema_shape(&new.url).await, upgraded);
    old.drop().await;
    new.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_database_newer_than_this_natter_is_refused() {
    let Some(base) = postgres_url("postgres_a_database_newer_than_this_natter_is_refused") else {
        return;
    };
    let scratch = ScratchDatabase::new(&base, "natter_store_test");
    scratch.store(8).await.shutdown().await;
    let known = migrate::latest(migrate::POSTGRES);
    let future = known + 5;
    raw_client(&scratch.url)
        .await
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future', 0)",
            &[&future],
        )
        .await
        .expect("stamp a future version");
    let before = recorded_versions(&scratch.url).await;
    match PostgresStore::connect(&scratch.url, 2).await {
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
    assert_eq!(recorded_versions(&scratch.url).await, before);
    scratch.drop().await;
}

/// Two nodes opening a new database at the same moment both start, and each migration is
/// applied (and recorded) once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_opening_a_new_database_together_apply_each_migration_once() {
    let Some(base) =
        postgres_url("postgres_nodes_opening_a_new_database_together_apply_each_migration_once")
    else {
        return;
    };
    let scratch = ScratchDatabase::new(&base, "natter_store_test");
    let (a, b) = tokio::join!(
        PostgresStore::connect(&scratch.url, 2),
        PostgresStore::connect(&scratch.url, 2)
    );
    let (a, b) = (a.expect("first node"), b.expect("second node"));
    assert_eq!(
        recorded_versions(&scratch.url).await,
        every_postgres_migration()
    );
    let room = a.ensure_public_room("general").await.expect("schema works");
    assert_eq!(
        b.ensure_public_room("general")
            .await
            .expect("schema works")
            .id,
        room.id
    );
    a.shutdown().await;
    b.shutdown().await;
    scratch.drop().await;
}

/// Rows are read with `try_get`: a column whose type drifted from what the code reads (here
/// `rooms.member_count` widened to BIGINT, read as INTEGER) fails the call with a backend
/// error that names the mismatch, where `Row::get` would panic the node's task.
#[tokio::test]
async fn a_column_of_an_unexpected_type_is_a_backend_error_not_a_panic() {
    let Some(scratch) = scratch("a_column_of_an_unexpected_type_is_a_backend_error_not_a_panic")
    else {
        return;
    };
    let store = scratch.store(2).await;
    let ana = store.create_user("ana", None, false).await.expect("ana");
    raw_client(&scratch.url)
        .await
        .batch_execute(
            "ALTER TABLE rooms ALTER COLUMN member_count TYPE BIGINT;
             INSERT INTO rooms (name, kind, name_key, created_at) VALUES ('old', 'public', 'old', 0)",
        )
        .await
        .expect("alter");
    let names_the_types = |result: Result<_, StoreError>| match result {
        Err(StoreError::Backend(message)) => assert!(
            message.contains("`i32`") && message.contains("int8"),
            "the error names the types: {message}"
        ),
        Err(other) => panic!("expected a backend error, got {other:?}"),
        Ok(_) => panic!("expected a backend error, got a value"),
    };
    names_the_types(
        store
            .create_room("drift", ana.id, RoomKind::Public)
            .await
            .map(drop),
    );
    names_the_types(store.public_rooms().await.map(drop));
    // Columns of the expected types still read.
    assert_eq!(
        store
            .credentials("ana")
            .await
            .expect("read")
            .map(|c| c.user),
        Some(ana)
    );
    drop(store);
    scratch.drop().await;
}
