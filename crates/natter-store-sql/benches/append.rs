//! Criterion microbenchmark of the store's hot path: appending messages (dedupe check, seq,
//! insert, acknowledged after COMMIT). Many appends in flight at once, as when many senders
//! share the SQLite writer's group commits; one at a time shows the bare commit cost.
//!
//! `cargo bench -p natter-store-sql --bench append`; figures in bench/README.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use natter_core::model::{NewMessage, RoomId, User};
use natter_core::{MemoryStore, Store};
use natter_store_sql::{SqliteStore, Synchronous};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Fixture {
    store: Arc<dyn Store>,
    sender: User,
    rooms: Vec<RoomId>,
    next_id: AtomicU64,
}

async fn fixture(store: Arc<dyn Store>, rooms: usize) -> Fixture {
    let sender = store
        .create_user("bench", None, false)
        .await
        .expect("create user");
    let mut ids = Vec::with_capacity(rooms);
    for r in 0..rooms {
        let room = store
            .create_room(
                &format!("bench-{r}"),
                sender.id,
                natter_core::RoomKind::Public,
            )
            .await
            .expect("create room");
        ids.push(room.id);
    }
    Fixture {
        store,
        sender,
        rooms: ids,
        next_id: AtomicU64::new(0),
    }
}

impl Fixture {
    fn message(&self, i: usize) -> NewMessage {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        NewMessage {
            room: self.rooms[i % self.rooms.len()],
            sender: self.sender.clone(),
            body: format!("t=1795710831000000000;s={i};n={n};xxxxxxxxxxxxxxxxxxxxxxxx"),
            client_id: format!("c-{n}"),
            ts: 1_795_710_831_000,
            ..NewMessage::default()
        }
    }

    /// Appends `total` messages with `concurrency` in flight; returns the elapsed time.
    async fn run(self: &Arc<Self>, total: u64, concurrency: usize) -> Duration {
        let started = Instant::now();
        let per_task = total.div_ceil(concurrency as u64);
        let mut tasks = Vec::with_capacity(concurrency);
        for t in 0..concurrency {
            let fx = self.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_task {
                    fx.store.append(fx.message(t)).await.expect("append");
                }
            }));
        }
        for task in tasks {
            task.await.expect("append task");
        }
        let done = per_task * concurrency as u64;
        started.elapsed().mul_f64(total as f64 / done as f64)
    }
}

fn append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("store_append");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    let cases: [(&str, Synchronous, usize); 3] = [
        ("sqlite_full/1_in_flight", Synchronous::Full, 1),
        ("sqlite_full/100_in_flight", Synchronous::Full, 100),
        ("sqlite_normal/100_in_flight", Synchronous::Normal, 100),
    ];
    for (i, (name, sync, concurrency)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bench-{i}.db"));
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, sync).expect("open sqlite"));
        let fx = Arc::new(runtime.block_on(fixture(store, concurrency)));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| runtime.block_on(fx.run(iters, concurrency)))
        });
    }
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let fx = Arc::new(runtime.block_on(fixture(memory, 100)));
    group.bench_function("memory/100_in_flight", |b| {
        b.iter_custom(|iters| runtime.block_on(fx.run(iters, 100)))
    });
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
