//! Unit tests of the session: the queue bound, order keeping, gap filling, catch-up and
//! presence.

use super::*;
use crate::model::UserId;
use crate::store::MemoryStore;
use std::time::Duration;

fn open(queue: usize) -> (Arc<SessionHandle>, Outbox) {
    open_with(queue, SessionShared::new(Arc::new(MemoryStore::new()), 8))
}

fn open_with(queue: usize, shared: Arc<SessionShared>) -> (Arc<SessionHandle>, Outbox) {
    let user = User {
        id: UserId(1),
        name: "ana".into(),
        guest: false,
        bot: false,
    };
    session(user, [0; 32], false, [], queue, shared)
}

fn event(n: u32) -> Arc<EncodedEvent> {
    EncodedEvent::new("typing", &serde_json::json!({ "n": n }))
}

#[test]
fn a_drained_queue_gives_back_its_memory() {
    let (handle, mut outbox) = open(1000);
    for n in 0..500 {
        handle.deliver(event(n));
    }
    assert!(handle.queue.lock().capacity() >= 500);
    for _ in 0..500 {
        assert!(outbox.try_next().is_some());
    }
    assert!(outbox.try_next().is_none());
    assert_eq!(
        handle.queue.lock().capacity(),
        0,
        "a drained queue holds nothing"
    );
    handle.deliver(event(1));
    assert!(outbox.try_next().is_some());
    assert_eq!(handle.queue.lock().capacity(), 0);
    assert!(!handle.is_closed());
}

#[test]
fn a_full_queue_closes_instead_of_growing() {
    let (handle, _outbox) = open(3);
    for n in 0..3 {
        handle.deliver(event(n));
    }
    assert!(!handle.is_closed());
    handle.deliver(event(3));
    assert!(handle.is_closed());
    assert_eq!(handle.queue.lock().len(), 3);
}

#[test]
fn nothing_is_queued_for_a_dropped_outbox() {
    let (handle, outbox) = open(10);
    handle.deliver(event(0));
    drop(outbox);
    assert_eq!(handle.queue.lock().len(), 0);
    handle.deliver(event(1));
    assert_eq!(handle.queue.lock().len(), 0);
    assert!(!handle.is_closed());
}

/// Does `f` to the session 20 ms from now, while the outbox waits.
fn later(handle: &Arc<SessionHandle>, f: impl FnOnce(&SessionHandle) + Send + 'static) {
    let handle = handle.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        f(&handle);
    });
}

async fn next_in_time(outbox: &mut Outbox, why: &str) -> OutboxItem {
    tokio::time::timeout(Duration::from_secs(5), outbox.next())
        .await
        .expect(why)
}

#[tokio::test]
async fn a_waiting_outbox_wakes_for_a_push_and_for_a_close() {
    let (handle, mut outbox) = open(10);
    later(&handle, |h| h.deliver(event(7)));
    let item = next_in_time(&mut outbox, "woken by the push").await;
    assert!(matches!(item, OutboxItem::Event(e) if &e.data[..] == br#"{"n":7}"#));
    later(&handle, |h| h.close(close::REVOKED));
    let item = next_in_time(&mut outbox, "woken by the close").await;
    assert!(matches!(item, OutboxItem::Close(code) if code == close::REVOKED));
}

#[tokio::test]
async fn a_keepalive_wakes_the_outbox_once_and_never_after_close() {
    let (handle, mut outbox) = open(10);
    // Two sweeps before the transport looks: one keepalive.
    later(&handle, |h| {
        h.keepalive();
        h.keepalive();
    });
    let item = next_in_time(&mut outbox, "woken by the keepalive").await;
    assert!(matches!(item, OutboxItem::Keepalive), "got {item:?}");
    handle.deliver(event(3));
    let item = outbox.next().await;
    assert!(matches!(item, OutboxItem::Event(e) if &e.data[..] == br#"{"n":3}"#));
    let idle = tokio::time::timeout(Duration::from_millis(30), outbox.next()).await;
    assert!(idle.is_err(), "a second keepalive: {idle:?}");
    handle.close(close::GOING_AWAY);
    handle.keepalive();
    let item = outbox.next().await;
    assert!(matches!(item, OutboxItem::Close(code) if code == close::GOING_AWAY));
}

#[tokio::test]
async fn a_push_before_the_wait_is_not_lost() {
    let (handle, mut outbox) = open(10);
    // Poll `next` once so it registers, drop it (a select! picked another branch), then
    // push: the next call must see the event.
    let first = tokio::time::timeout(Duration::from_millis(10), outbox.next()).await;
    assert!(first.is_err());
    handle.deliver(event(1));
    let item = tokio::time::timeout(Duration::from_secs(5), outbox.next())
        .await
        .expect("not lost");
    assert!(matches!(item, OutboxItem::Event(_)));
}

/// Publishes a presence change as the node does: into the feed, then a flag per watcher.
fn publish_presence(shared: &SessionShared, watchers: &[&Arc<SessionHandle>], n: u32) {
    shared.presence.push(EncodedEvent::new(
        "presence",
        &serde_json::json!({ "n": n }),
    ));
    for watcher in watchers {
        watcher.presence_news();
    }
}

fn data_of(event: &EncodedEvent) -> String {
    String::from_utf8_lossy(&event.data).into_owned()
}

#[test]
fn presence_changes_take_no_queue_slots_and_arrive_in_order() {
    let shared = SessionShared::new(Arc::new(MemoryStore::new()), 1000);
    let (a, mut outbox_a) = open_with(4, shared.clone());
    let (b, mut outbox_b) = open_with(4, shared.clone());
    // A storm: 500 changes before either reads one; a queue of 4 would have closed both.
    for n in 0..500 {
        publish_presence(&shared, &[&a, &b], n);
    }
    a.deliver(event(9));
    assert!(!a.is_closed() && !b.is_closed());
    assert_eq!(a.queue.lock().len(), 1, "presence is not queued");
    for outbox in [&mut outbox_a, &mut outbox_b] {
        let mut presence = Vec::new();
        while let Some(event) = outbox.try_next() {
            if event.name == "presence" {
                presence.push(data_of(&event));
            }
        }
        let expected: Vec<String> = (0..500).map(|n| format!("{{\"n\":{n}}}")).collect();
        assert_eq!(&presence[..], &expected[..]);
    }
    // Caught up: nothing more until the next change.
    assert!(outbox_a.try_next().is_none());
    publish_presence(&shared, &[&a, &b], 500);
    assert_eq!(
        data_of(&outbox_a.try_next().expect("the new change")),
        r#"{"n":500}"#
    );
}

#[test]
fn a_session_starts_at_the_feed_head_and_sees_only_later_changes() {
    let shared = SessionShared::new(Arc::new(MemoryStore::new()), 100);
    publish_presence(&shared, &[], 1);
    let (a, mut outbox) = open_with(4, shared.clone());
    publish_presence(&shared, &[&a], 2);
    assert_eq!(data_of(&outbox.try_next().expect("change 2")), r#"{"n":2}"#);
    assert!(outbox.try_next().is_none());
}

#[tokio::test]
async fn falling_behind_the_presence_feed_brings_who_is_online_instead() {
    let broker = Arc::new(crate::broker::LocalBroker::new());
    let online = |id: i64| User {
        id: crate::model::UserId(id),
        name: format!("u{id}"),
        guest: false,
        bot: false,
    };
    broker.presence_up(&online(7)).await.expect("up");
    let shared = SessionShared::with_broker(Arc::new(MemoryStore::new()), broker.clone(), 8);
    let (a, mut outbox) = open_with(4, shared.clone());
    for n in 0..9 {
        publish_presence(&shared, &[&a], n);
    }
    // Nothing can be read without the broker, so the quick path leaves it to `next`.
    assert!(outbox.try_next().is_none());
    let item = next_in_time(&mut outbox, "the reset").await;
    let OutboxItem::Event(reset) = item else {
        panic!("expected presence_reset, got {item:?}");
    };
    assert_eq!(reset.name, "presence_reset");
    assert_eq!(
        &reset.data[..],
        br#"{"online":[{"id":7,"name":"u7","guest":false}]}"#
    );
    // Then on from the feed's head: nothing old comes after it, new changes do.
    assert!(outbox.try_next().is_none());
    publish_presence(&shared, &[&a], 100);
    assert_eq!(
        data_of(&outbox.try_next().expect("change 100")),
        r#"{"n":100}"#
    );
    assert!(!a.is_closed());
}

#[tokio::test]
async fn falling_behind_the_presence_feed_without_a_broker_closes_as_a_slow_consumer() {
    let shared = SessionShared::new(Arc::new(MemoryStore::new()), 8);
    let (a, mut outbox) = open_with(4, shared.clone());
    for n in 0..9 {
        publish_presence(&shared, &[&a], n);
    }
    let item = next_in_time(&mut outbox, "closed").await;
    assert!(
        matches!(item, OutboxItem::Close(code) if code == close::SLOW_CONSUMER),
        "got {item:?}"
    );
    assert!(a.is_closed());
}

#[tokio::test]
async fn a_waiting_outbox_wakes_for_a_presence_change() {
    let shared = SessionShared::new(Arc::new(MemoryStore::new()), 8);
    let (a, mut outbox) = open_with(4, shared.clone());
    let first = tokio::time::timeout(Duration::from_millis(10), outbox.next()).await;
    assert!(first.is_err());
    {
        let shared = shared.clone();
        later(&a, move |h| {
            shared.presence.push(EncodedEvent::new(
                "presence",
                &serde_json::json!({ "n": 1 }),
            ));
            h.presence_news();
        });
    }
    let item = next_in_time(&mut outbox, "woken by the change").await;
    assert!(matches!(item, OutboxItem::Event(e) if &e.data[..] == br#"{"n":1}"#));
}

/// Every connection has one, in an `Arc` (16 bytes of counts): keep it within the
/// allocator's 224-byte class (the next is 256).
#[test]
fn a_session_handle_is_small() {
    let size = std::mem::size_of::<SessionHandle>();
    println!("SessionHandle {size} bytes");
    assert!(size + 16 <= 224, "SessionHandle is {size} bytes");
}

/// A room event forgets the node's cached rules of its room on its way out, whichever way it
/// reached the session: here from the store (catch-up) and live through the queue. A member
/// who has seen a mute cannot post on a stale cache, even where the broker's copy of the
/// event has not arrived yet.
#[tokio::test]
async fn a_room_event_forgets_the_cached_rules_as_it_goes_out() {
    use crate::model::{Change, NewChange, NewMessage, RoomKind};
    let memory = Arc::new(MemoryStore::new());
    let ana = memory.create_user("ana", None, false).await.expect("user");
    let room = memory
        .create_room("r", ana.id, RoomKind::Public)
        .await
        .expect("room")
        .id;
    let sent = memory
        .append(NewMessage {
            room,
            sender: ana.clone(),
            body: "hi".into(),
            client_id: "c1".into(),
            ..NewMessage::default()
        })
        .await
        .expect("append");
    let topic = |client_id: &str| NewChange {
        room,
        sender: ana.clone(),
        client_id: client_id.into(),
        ts: 0,
        change: Change::Settings {
            name: None,
            topic: Some(client_id.into()),
            description: None,
            archived: None,
        },
        body: String::new(),
        max_reactions: 0,
    };
    let stored = match memory.change(topic("t1")).await.expect("change") {
        crate::model::ChangeOutcome::Applied(m) => m,
        other => panic!("not applied: {other:?}"),
    };
    let shared = SessionShared::new(memory.clone(), 8);
    let cache = |shared: &SessionShared| {
        let generation = shared.rules.generation();
        shared.rules.put(generation, room, ana.id, false, None);
        assert!(shared.rules.get(room, ana.id).is_some());
    };
    let (handle, mut outbox) = open_with(16, shared.clone());
    outbox.resume_from(room, Seq(sent.message.seq.0 - 1));
    cache(&shared);
    match next_in_time(&mut outbox, "the stored message").await {
        OutboxItem::Event(e) => assert_eq!(e.name, "message"),
        other => panic!("{other:?}"),
    }
    assert!(
        shared.rules.get(room, ana.id).is_some(),
        "a plain message leaves the rules cached"
    );
    match next_in_time(&mut outbox, "the stored room event").await {
        OutboxItem::Event(e) => assert_eq!(e.room_seq, Some((room, stored.seq))),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        shared.rules.get(room, ana.id),
        None,
        "forgotten on catch-up"
    );

    cache(&shared);
    let live = match memory.change(topic("t2")).await.expect("change") {
        crate::model::ChangeOutcome::Applied(m) => m,
        other => panic!("not applied: {other:?}"),
    };
    handle.deliver(EncodedEvent::message(&live));
    assert!(outbox.try_next().is_some_and(|e| e.name == "room_event"));
    assert_eq!(shared.rules.get(room, ana.id), None, "forgotten live");
}
