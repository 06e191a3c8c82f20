//! A measurement, not a check (ignored by default): what `room.list` asks of the store with
//! many public rooms, before pages (`public_rooms`: every room) and with them
//! (`public_rooms_page`: 51 rows from the cursor, with and without a filter), on SQLite and,
//! when `NATTER_TEST_POSTGRES` is set, PostgreSQL.
//!
//! ```text
//! cargo test -p natter-store-sql --test room_pages -- --ignored --nocapture
//! ```

use natter_core::Store;
use natter_store_sql::{SqliteStore, Synchronous};
use natter_testkit::ScratchDatabase;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROOMS: usize = 5000;
const RUNS: usize = 21;

async fn median(mut run: impl AsyncFnMut() -> usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut rows = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        rows = run().await;
        times.push(start.elapsed());
    }
    times.sort();
    (times[RUNS / 2], rows)
}

async fn measure(backend: &str, store: Arc<dyn Store>) {
    let ana = store.create_user("ana", None, false).await.expect("user");
    for i in 0..ROOMS {
        store
            .create_room(
                &format!("room-{i:05}"),
                ana.id,
                natter_core::RoomKind::Public,
            )
            .await
            .expect("room");
    }
    let cases: [(&str, &str, &str); 5] = [
        ("every room (before pages)", "", ""),
        ("first page", "", ""),
        ("page deep in the list", "", "room-04000"),
        ("filtered page (\"-012\")", "-012", ""),
        ("filter matching nothing (walks every name)", "zzz", ""),
    ];
    for (i, (what, contains, after)) in cases.into_iter().enumerate() {
        let (time, rows) = median(async || {
            if i == 0 {
                store.public_rooms().await.expect("all").len()
            } else {
                store
                    .public_rooms_page(contains, after, 51, false)
                    .await
                    .expect("page")
                    .len()
            }
        })
        .await;
        println!("{backend}: {what}: {rows} rows, median {time:?} of {RUNS}");
    }
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn room_pages_cost_against_every_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite =
        SqliteStore::open(dir.path().join("t.db"), Synchronous::Normal).expect("open sqlite");
    measure("sqlite", Arc::new(sqlite)).await;
    if let Some(scratch) = ScratchDatabase::for_test("room_pages", "natter_store_test") {
        let store: Arc<dyn Store> = scratch.store(4).await;
        measure("postgres", store).await;
        scratch.drop().await;
    }
}
