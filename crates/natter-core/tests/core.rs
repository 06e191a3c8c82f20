//! The core on its own (memory store, in-process broker, no sockets): ordering, gap filling,
//! slow consumers, resume and typing expiry, with tokio's paused clock where time matters.

use natter_core::hub::Hub;
use natter_core::model::*;
use natter_core::protocol::{AuthArgs, SendArgs, TypingArgs};
use natter_core::session::{session, SessionHandle, SessionShared};
use natter_core::*;
use std::sync::Arc;
use std::time::Duration;

fn msg(room: RoomId, seq: i64, sender: &User) -> Message {
    Message {
        id: MessageId(seq),
        room,
        seq: Seq(seq),
        sender: sender.clone(),
        body: format!("m{seq}"),
        ts: 0,
        client_id: format!("c{seq}"),
        ..Message::default()
    }
}

/// The seq of the next message event (other events are skipped).
async fn next_seq(outbox: &mut Outbox) -> i64 {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), outbox.next()).await {
            Ok(OutboxItem::Event(e)) => match e.room_seq {
                Some((_, seq)) => return seq.0,
                None => continue,
            },
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// A session of `user` in `room` with a queue of `queue`, over `store`.
fn open_session(
    user: &User,
    room: RoomId,
    queue: usize,
    store: Arc<dyn Store>,
) -> (Arc<SessionHandle>, Outbox) {
    session(
        user.clone(),
        [0; 32],
        false,
        [room],
        queue,
        SessionShared::new(store, 16),
    )
}

/// A memory store with ana, her room, and `count` messages of hers in it (seqs 1..=count).
async fn room_with_messages(count: i64) -> (Arc<MemoryStore>, User, RoomId, Vec<Message>) {
    let memory = Arc::new(MemoryStore::new());
    let ana = memory.create_user("ana", None, false).await.expect("user");
    let room = memory
        .create_room("r", ana.id, RoomKind::Public)
        .await
        .expect("room")
        .id;
    let mut stored = Vec::new();
    for i in 1..=count {
        let a = memory
            .append(NewMessage {
                room,
                sender: ana.clone(),
                body: format!("m{i}"),
                client_id: format!("c{i}"),
                ts: 0,
                ..NewMessage::default()
            })
            .await
            .expect("append");
        stored.push(a.message);
    }
    (memory, ana, room, stored)
}

/// A store-less hub with one session of user 1 in room 1, its queue holding `queue`.
fn hub_with_session(
    gap_wait: Duration,
    queue: usize,
) -> (Arc<Hub>, RoomId, User, Arc<SessionHandle>, Outbox) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = Hub::new(gap_wait);
    let room = RoomId(1);
    let ana = user(1);
    let (handle, outbox) = open_session(&ana, room, queue, store);
    hub.add_session(&handle);
    (hub, room, ana, handle, outbox)
}

fn user(id: i64) -> User {
    User {
        id: UserId(id),
        name: format!("u{id}"),
        guest: false,
        bot: false,
    }
}

#[tokio::test(start_paused = true)]
async fn the_hub_delivers_out_of_order_arrivals_in_seq_order() {
    let (hub, room, ana, _handle, mut outbox) = hub_with_session(Duration::from_millis(100), 16);
    hub.deliver_message(EncodedEvent::message(&msg(room, 1, &ana)));
    hub.deliver_message(EncodedEvent::message(&msg(room, 3, &ana)));
    hub.deliver_message(EncodedEvent::message(&msg(room, 2, &ana)));
    hub.deliver_message(EncodedEvent::message(&msg(room, 2, &ana)));
    hub.deliver_message(EncodedEvent::message(&msg(room, 4, &ana)));
    for want in 1..=4 {
        assert_eq!(next_seq(&mut outbox).await, want);
    }
    assert!(outbox.try_next().is_none(), "the duplicate 2 was dropped");
}

/// Each gap gets the whole wait: a gap that opens just before an older gap's time runs out is
/// not given up on with it (under load, reordering is constant, and every early give-up made
/// every session in the room read the store).
#[tokio::test(start_paused = true)]
async fn the_hub_waits_for_each_gap_from_when_it_opened() {
    let (hub, room, ana, _handle, mut outbox) = hub_with_session(Duration::from_millis(100), 16);
    hub.deliver_message(EncodedEvent::message(&msg(room, 1, &ana)));
    hub.deliver_message(EncodedEvent::message(&msg(room, 3, &ana)));
    tokio::time::sleep(Duration::from_millis(90)).await;
    hub.deliver_message(EncodedEvent::message(&msg(room, 2, &ana)));
    // A new gap (4) opens at 90 ms; the first gap's 100 ms are not its.
    hub.deliver_message(EncodedEvent::message(&msg(room, 5, &ana)));
    tokio::time::sleep(Duration::from_millis(60)).await;
    hub.deliver_message(EncodedEvent::message(&msg(room, 4, &ana)));
    for want in 1..=5 {
        assert_eq!(next_seq(&mut outbox).await, want);
    }
    // A gap that stays open is given up on after its own wait: 7 goes out without 6, and the
    // session (its store has no 6) carries on from 7.
    hub.deliver_message(EncodedEvent::message(&msg(room, 7, &ana)));
    tokio::time::sleep(Duration::from_millis(99)).await;
    assert!(
        outbox.try_next().is_none(),
        "7 is held while 6 is waited for"
    );
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(next_seq(&mut outbox).await, 7);
}

/// A gap that outlasts the wait is read from the store by the hub, once for every session
/// of the room. The sessions here read an empty store of their own, so what they get can only
/// have come from the hub.
#[tokio::test]
async fn the_hub_reads_a_lasting_gap_once_for_all_its_sessions() {
    let (memory, ana, room, stored) = room_with_messages(6).await;
    let hub = Hub::with_store(Duration::from_millis(20), memory);
    let mut outboxes = Vec::new();
    for _ in 0..3 {
        let empty: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (handle, outbox) = open_session(&ana, room, 16, empty);
        hub.add_session(&handle);
        outboxes.push(outbox);
    }
    // 2..=4 were lost on the way; 5 and 6 wait for them, then the hub reads them.
    hub.deliver_message(EncodedEvent::message(&stored[0]));
    hub.deliver_message(EncodedEvent::message(&stored[4]));
    hub.deliver_message(EncodedEvent::message(&stored[5]));
    for outbox in &mut outboxes {
        for want in 1..=6 {
            assert_eq!(next_seq(outbox).await, want);
        }
    }
}

/// A wide gap is not pushed through the sessions' bounded queues by the hub: each session
/// reads it page by page as it writes. (A queue of 16 would overflow, 4008, if the hub had
/// delivered the 298 missing messages itself.)
#[tokio::test]
async fn a_wide_gap_is_left_to_the_sessions() {
    let (memory, ana, room, stored) = room_with_messages(300).await;
    let store: Arc<dyn Store> = memory;
    let hub = Hub::with_store(Duration::from_millis(10), store.clone());
    let (handle, mut outbox) = open_session(&ana, room, 16, store);
    hub.add_session(&handle);
    hub.deliver_message(EncodedEvent::message(&stored[0]));
    hub.deliver_message(EncodedEvent::message(&stored[299]));
    for want in 1..=300 {
        assert_eq!(next_seq(&mut outbox).await, want);
    }
    assert!(!handle.is_closed());
}

#[tokio::test]
async fn a_session_fills_a_gap_from_the_store() {
    let (memory, ana, room, stored) = room_with_messages(5).await;
    let store: Arc<dyn Store> = memory;
    let hub = Hub::new(Duration::from_millis(10));
    let (handle, mut outbox) = open_session(&ana, room, 16, store);
    outbox.track(room, Seq(1));
    hub.add_session(&handle);
    // Only 5 arrives live (2..4 were lost on the way): the session fetches them.
    hub.deliver_message(EncodedEvent::message(&stored[4]));
    for want in 2..=5 {
        assert_eq!(next_seq(&mut outbox).await, want);
    }
}

#[tokio::test]
async fn a_full_queue_closes_the_session_as_a_slow_consumer() {
    let (hub, room, ana, _handle, mut outbox) = hub_with_session(Duration::from_millis(10), 2);
    for seq in 1..=3 {
        hub.deliver_message(EncodedEvent::message(&msg(room, seq, &ana)));
    }
    match outbox.next().await {
        OutboxItem::Close(code) => assert_eq!(code, close::SLOW_CONSUMER),
        other => panic!("expected close, got {other:?}"),
    }
}

async fn node_with_users() -> (Arc<Node>, Vec<(String, User)>) {
    node_with_users_and(CoreConfig {
        typing_expiry: Duration::from_secs(6),
        ..CoreConfig::default()
    })
    .await
}

async fn node_with_users_and(config: CoreConfig) -> (Arc<Node>, Vec<(String, User)>) {
    let node = Node::start(
        Arc::new(MemoryStore::new()),
        Arc::new(LocalBroker::new()),
        config,
    )
    .await
    .expect("node");
    let mut users = Vec::new();
    for name in ["ana", "bob"] {
        let signed = node
            .register(
                std::net::Ipv4Addr::LOCALHOST.into(),
                name,
                "correct horse",
                "test",
            )
            .await
            .expect("register");
        users.push((signed.token, signed.user));
    }
    (node, users)
}

/// The node's `general` room, which every account joins.
async fn general_room(node: &Node) -> RoomId {
    node.store()
        .ensure_public_room("general")
        .await
        .expect("general")
        .id
}

fn auth(token: &str) -> AuthArgs {
    serde_json::from_value(serde_json::json!({ "token": token })).expect("args")
}

async fn next_event(outbox: &mut Outbox, name: &str) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), outbox.next()).await {
            Ok(OutboxItem::Event(e)) if e.name == name => {
                return serde_json::from_slice(&e.data).expect("json")
            }
            Ok(OutboxItem::Event(_)) => continue,
            other => panic!("expected {name}, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn typing_expires_on_the_server_clock() {
    let (node, users) = node_with_users().await;
    let general = general_room(&node).await;
    let mut ana = Connection::new(node.clone());
    let mut bob = Connection::new(node.clone());
    let (_, _ana_out) = ana.authenticate(auth(&users[0].0)).await.expect("auth");
    let (_, mut bob_out) = bob.authenticate(auth(&users[1].0)).await.expect("auth");
    ana.request(Request::Typing(TypingArgs {
        room: general,
        active: true,
    }))
    .await
    .expect("typing");
    let started = tokio::time::Instant::now();
    assert_eq!(next_event(&mut bob_out, "typing").await["active"], true);
    let stop = next_event(&mut bob_out, "typing").await;
    assert_eq!(stop["active"], false);
    let after = started.elapsed();
    assert!(
        after >= Duration::from_secs(6) && after < Duration::from_secs(8),
        "expired after {after:?}"
    );
}

#[tokio::test]
async fn resume_replays_what_was_missed_then_goes_live() {
    let (node, users) = node_with_users().await;
    let general = general_room(&node).await;
    let mut ana = Connection::new(node.clone());
    ana.authenticate(auth(&users[0].0)).await.expect("auth");
    for i in 0..5 {
        ana.request(Request::MessageSend(SendArgs {
            room: general,
            body: format!("m{i}"),
            client_id: format!("c{i}"),
            ..SendArgs::default()
        }))
        .await
        .expect("send");
    }
    let mut bob = Connection::new(node.clone());
    let args: AuthArgs = serde_json::from_value(serde_json::json!({
        "token": users[1].0, "resume": { general.to_string(): 2 }
    }))
    .expect("args");
    let (_, mut out) = bob.authenticate(args).await.expect("auth");
    for want in 3..=5 {
        assert_eq!(next_seq(&mut out).await, want);
    }
    ana.request(Request::MessageSend(SendArgs {
        room: general,
        body: "live".into(),
        client_id: "live".into(),
        ..SendArgs::default()
    }))
    .await
    .expect("send");
    assert_eq!(next_seq(&mut out).await, 6);
}

/// After a broker outage, a long backlog is not pushed through the sessions' bounded queues:
/// each session catches up from the store by itself (a queue of 16 would overflow, 4008, if
/// the 300 missed messages were delivered through the hub), then live messages go on at once
/// (not held for `gap_wait` behind the gap the sessions are filling; the clock is tokio's
/// paused one, so a wait would show as elapsed time).
#[tokio::test(start_paused = true)]
async fn a_long_backlog_after_a_broker_outage_is_caught_up_by_each_session() {
    let (node, users) = node_with_users_and(CoreConfig {
        outbound_queue: 16,
        ..CoreConfig::default()
    })
    .await;
    let general = general_room(&node).await;
    let mut ana = Connection::new(node.clone());
    ana.authenticate(auth(&users[0].0)).await.expect("auth");
    let mut bob = Connection::new(node.clone());
    let (_, mut out) = bob.authenticate(auth(&users[1].0)).await.expect("auth");
    let send = |body: &str| {
        Request::MessageSend(SendArgs {
            room: general,
            body: body.into(),
            client_id: body.into(),
            ..SendArgs::default()
        })
    };
    ana.request(send("before")).await.expect("send");
    // After the users' joins of `general`.
    let first = next_seq(&mut out).await;
    // Stored while the broker was away: nobody was told.
    for i in 0..300 {
        node.store()
            .append(NewMessage {
                room: general,
                sender: users[0].1.clone(),
                body: format!("missed {i}"),
                client_id: format!("missed {i}"),
                ts: 0,
                ..NewMessage::default()
            })
            .await
            .expect("append");
    }
    node.on_missed(vec![general]);
    for want in first + 1..=first + 300 {
        assert_eq!(next_seq(&mut out).await, want);
    }
    let sent = tokio::time::Instant::now();
    ana.request(send("after")).await.expect("send");
    assert_eq!(next_seq(&mut out).await, first + 301);
    assert!(
        sent.elapsed() < Duration::from_millis(50),
        "the first live message after the handover waited {:?}",
        sent.elapsed()
    );
}
