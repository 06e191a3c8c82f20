//! Criterion microbenchmarks of the core's hot paths: encoding a message event once,
//! parsing an incoming `message.send`, encoding a reply, and fanning one event out to the
//! sessions of a room (queue push plus the receiving outbox taking it).
//!
//! `cargo bench -p natter-core --bench hot_paths`; figures in bench/README.md.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use natter_core::hub::Hub;
use natter_core::model::{Message, MessageId, RoomId, Seq, User, UserId};
use natter_core::protocol::{encode_ok, parse_frame, Reply, SentReply};
use natter_core::session::{session, SessionShared};
use natter_core::{EncodedEvent, MemoryStore, Outbox};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

fn sample_message(seq: i64) -> Message {
    Message {
        id: MessageId(seq),
        room: RoomId(1),
        seq: Seq(seq),
        sender: User {
            id: UserId(7),
            name: "alice".into(),
            guest: false,
            bot: false,
        },
        body: "t=1795710831000000000;s=12;n=345;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".into(),
        ts: 1_795_710_831_000,
        client_id: "c-12-345".into(),
        ..Message::default()
    }
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frames");
    group.throughput(Throughput::Elements(1));
    let message = sample_message(42);
    group.bench_function("encode_message_event", |b| {
        b.iter(|| EncodedEvent::message(black_box(&message)))
    });
    let send = r#"{"type":"message.send","ref":"17","data":{"room":1,"body":"t=1795710831000000000;s=12;n=345;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","client_id":"c-12-345"}}"#;
    group.bench_function("parse_message_send", |b| {
        b.iter(|| parse_frame(black_box(send)))
    });
    // The reply every send gets (the typed `message.send` reply).
    let reply: Reply = SentReply {
        message: message.clone(),
        duplicate: false,
    }
    .into();
    group.bench_function("encode_ok_reply", |b| {
        b.iter(|| encode_ok(black_box("17"), black_box(&reply)))
    });
    group.finish();
}

/// A room of `n` sessions on one hub, with their outboxes (the transport's side).
fn room_of(n: usize) -> (Arc<Hub>, Vec<Outbox>) {
    let hub = Hub::new(Duration::from_millis(100));
    let shared = SessionShared::new(Arc::new(MemoryStore::new()), 16);
    let mut outboxes = Vec::with_capacity(n);
    for i in 0..n {
        let user = User {
            id: UserId(i as i64 + 1),
            name: format!("u{i}"),
            guest: false,
            bot: false,
        };
        let (handle, outbox) = session(user, [0; 32], false, [], 1024, shared.clone());
        hub.join_room(&handle, RoomId(1));
        outboxes.push(outbox);
    }
    (hub, outboxes)
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub_fan_out");
    for n in [10usize, 1000] {
        let (hub, mut outboxes) = room_of(n);
        let mut seq = 0i64;
        group.throughput(Throughput::Elements(n as u64));
        // Per element: one recipient's queue push and its outbox taking the event.
        group.bench_function(format!("deliver_and_drain/{n}"), |b| {
            b.iter_batched(
                || {
                    seq += 1;
                    EncodedEvent::message(&sample_message(seq))
                },
                |event| {
                    hub.deliver_message(event);
                    for outbox in outboxes.iter_mut() {
                        black_box(outbox.try_next());
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, frames, fan_out);
criterion_main!(benches);
