//! Store rules for the room stream's changes (edits, deletes, reactions), threads, unread
//! and mention counts and notification levels. Re-exported by `conformance::store`, whose
//! macro runs them with the rest. Long because each rule is a whole scenario (~110 lines).

use crate::model::*;
use crate::store::Store;
use crate::{Refusal, StoreError};
use std::sync::Arc;

async fn user(store: &Arc<dyn Store>, name: &str, tag: &str) -> User {
    store
        .create_user(&format!("{name}{tag}"), None, false)
        .await
        .expect("user")
}

async fn send(store: &Arc<dyn Store>, room: RoomId, who: &User, body: &str, cid: &str) -> Message {
    send_with(store, room, who, body, cid, |_| {}).await
}

async fn send_with(
    store: &Arc<dyn Store>,
    room: RoomId,
    who: &User,
    body: &str,
    cid: &str,
    f: impl FnOnce(&mut NewMessage),
) -> Message {
    let mut m = NewMessage {
        room,
        sender: who.clone(),
        body: body.into(),
        client_id: cid.into(),
        ts: now_millis(),
        ..NewMessage::default()
    };
    f(&mut m);
    store.append(m).await.expect("append").message
}

fn change(room: RoomId, who: &User, cid: &str, change: Change) -> NewChange {
    NewChange {
        room,
        sender: who.clone(),
        client_id: cid.into(),
        ts: now_millis(),
        change,
        body: String::new(),
        max_reactions: 20,
    }
}

fn edit(room: RoomId, who: &User, cid: &str, target: Seq, body: &str) -> NewChange {
    let mut c = change(room, who, cid, Change::Edit { target });
    c.body = body.into();
    c
}

fn react(room: RoomId, who: &User, cid: &str, target: Seq, emoji: &str, add: bool) -> NewChange {
    change(
        room,
        who,
        cid,
        Change::React {
            target,
            emoji: emoji.into(),
            add,
        },
    )
}

fn applied(outcome: ChangeOutcome) -> Message {
    match outcome {
        ChangeOutcome::Applied(m) => m,
        other => panic!("expected a stored entry, got {other:?}"),
    }
}

async fn refused(store: &Arc<dyn Store>, c: NewChange) -> Refusal {
    match store.change(c).await {
        Err(StoreError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn last_seq(store: &Arc<dyn Store>, room: RoomId) -> Seq {
    store
        .room(room)
        .await
        .expect("room")
        .expect("exists")
        .last_seq
}

async fn current(store: &Arc<dyn Store>, room: RoomId, seq: Seq) -> Message {
    store
        .message(room, seq)
        .await
        .expect("message")
        .expect("exists")
}

/// An edit is the room's next entry; the message shows the new text and `edited_at`; its
/// versions are the original and each edit; a retry is stored once; a change to a change
/// entry or to no message is refused and spends no seq.
pub async fn edits_and_versions(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "ed-ana", tag).await;
    let room = store
        .create_room(&format!("edits{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let m = send(store, room.id, &ana, "helo", "m1").await;
    let e = applied(
        store
            .change(edit(room.id, &ana, "e1", m.seq, "hello"))
            .await
            .expect("edit"),
    );
    assert_eq!(e.seq, Seq(2), "an edit takes the next seq");
    assert_eq!(e.change, Some(Change::Edit { target: m.seq }));
    assert_eq!(e.body, "hello");
    assert_eq!(e.sender, ana);
    let now = current(store, room.id, m.seq).await;
    assert_eq!(now.body, "hello", "the message shows its new text");
    assert_eq!(now.edited_at, Some(e.ts));
    let again = store
        .change(edit(room.id, &ana, "e1", m.seq, "other"))
        .await
        .expect("retry");
    assert_eq!(
        again,
        ChangeOutcome::Duplicate(e.clone()),
        "a retry is stored once"
    );
    applied(
        store
            .change(edit(room.id, &ana, "e2", m.seq, "hello!"))
            .await
            .expect("edit 2"),
    );
    let versions: Vec<String> = store
        .versions(room.id, m.seq)
        .await
        .expect("versions")
        .into_iter()
        .map(|v| v.body)
        .collect();
    assert_eq!(versions, vec!["helo", "hello", "hello!"]);
    let before = last_seq(store, room.id).await;
    assert_eq!(before, Seq(3));
    assert_eq!(
        refused(store, edit(room.id, &ana, "e3", e.seq, "x")).await,
        Refusal::UnknownMessage,
        "an edit entry is not a message"
    );
    assert_eq!(
        refused(store, edit(room.id, &ana, "e4", Seq(99), "x")).await,
        Refusal::UnknownMessage
    );
    assert_eq!(
        last_seq(store, room.id).await,
        before,
        "a refusal spends no seq"
    );
    assert!(
        store.message(room.id, e.seq).await.expect("get").is_none(),
        "`message` returns messages only"
    );
    let entries = store
        .messages_after(room.id, Seq::ZERO, 10)
        .await
        .expect("after");
    let ops: Vec<(i64, &str, bool)> = entries
        .iter()
        .map(|m| (m.seq.0, m.body.as_str(), m.change.is_some()))
        .collect();
    assert_eq!(
        ops,
        vec![
            (1, "hello!", false),
            (2, "hello", true),
            (3, "hello!", true)
        ],
        "the stream holds every entry; a message shows its current text"
    );
}

/// A delete leaves a tombstone: no text (in the message, its versions and its edit
/// entries), `deleted` set, its reactions gone; it cannot be edited, reacted to or deleted
/// again.
pub async fn deletes_leave_tombstones(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "del-ana", tag).await;
    let room = store
        .create_room(&format!("deletes{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let m = send(store, room.id, &ana, "secret one", "m1").await;
    let keep = send(store, room.id, &ana, "stays", "m2").await;
    applied(
        store
            .change(edit(room.id, &ana, "e1", m.seq, "secret two"))
            .await
            .expect("edit"),
    );
    applied(
        store
            .change(react(room.id, &ana, "r1", m.seq, "👍", true))
            .await
            .expect("react"),
    );
    let d = applied(
        store
            .change(change(
                room.id,
                &ana,
                "d1",
                Change::Delete { target: m.seq },
            ))
            .await
            .expect("delete"),
    );
    assert_eq!(d.change, Some(Change::Delete { target: m.seq }));
    let tomb = current(store, room.id, m.seq).await;
    assert!(tomb.deleted);
    assert_eq!(tomb.body, "");
    assert!(tomb.reactions.is_empty());
    assert!(store.versions(room.id, m.seq).await.expect("v").is_empty());
    for entry in store
        .messages_after(room.id, Seq::ZERO, 10)
        .await
        .expect("after")
    {
        assert!(
            !entry.body.contains("secret"),
            "no trace of the text in the stream: {entry:?}"
        );
    }
    let page = store
        .message_page(room.id, Scope::Room, None, None, 10)
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|m| (m.seq, m.deleted)).collect::<Vec<_>>(),
        vec![(m.seq, true), (keep.seq, false)],
        "the tombstone stays in history, change entries do not show"
    );
    for c in [
        edit(room.id, &ana, "e2", m.seq, "back"),
        react(room.id, &ana, "r2", m.seq, "🎉", true),
        change(room.id, &ana, "d2", Change::Delete { target: m.seq }),
    ] {
        assert_eq!(refused(store, c).await, Refusal::Deleted);
    }
    let retry = store
        .change(change(
            room.id,
            &ana,
            "d1",
            Change::Delete { target: m.seq },
        ))
        .await
        .expect("retry");
    assert_eq!(
        retry,
        ChangeOutcome::Duplicate(d),
        "a retried delete is stored once"
    );
}

/// Reactions: each (user, emoji) once, by first use; adding one already there or removing
/// one that is not changes nothing and stores nothing; a new emoji beyond `max_reactions`
/// is refused, another person's use of an emoji already there is not.
pub async fn reactions(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "re-ana", tag).await;
    let bob = user(store, "re-bob", tag).await;
    let room = store
        .create_room(&format!("reacts{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    super::join(&**store, room.id, &bob).await.expect("join");
    let m = send(store, room.id, &ana, "vote", "m1").await;
    for (who, cid, emoji) in [(&ana, "r1", "👍"), (&bob, "r2", "👍"), (&ana, "r3", "🎉")] {
        let e = applied(
            store
                .change(react(room.id, who, cid, m.seq, emoji, true))
                .await
                .expect("react"),
        );
        assert_eq!(
            e.change,
            Some(Change::React {
                target: m.seq,
                emoji: emoji.into(),
                add: true
            })
        );
    }
    let shown = |m: &Message| {
        m.reactions
            .iter()
            .map(|r| {
                (
                    r.emoji.clone(),
                    r.users.iter().map(|u| u.id).collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        shown(&current(store, room.id, m.seq).await),
        vec![
            ("👍".to_string(), vec![ana.id, bob.id]),
            ("🎉".to_string(), vec![ana.id])
        ]
    );
    let before = last_seq(store, room.id).await;
    assert_eq!(
        store
            .change(react(room.id, &ana, "r4", m.seq, "👍", true))
            .await
            .expect("again"),
        ChangeOutcome::Unchanged
    );
    assert_eq!(
        store
            .change(react(room.id, &bob, "r5", m.seq, "🎉", false))
            .await
            .expect("not there"),
        ChangeOutcome::Unchanged
    );
    assert_eq!(last_seq(store, room.id).await, before, "nothing stored");
    applied(
        store
            .change(react(room.id, &ana, "r6", m.seq, "👍", false))
            .await
            .expect("remove"),
    );
    applied(
        store
            .change(react(room.id, &ana, "r7", m.seq, "🎉", false))
            .await
            .expect("remove last"),
    );
    assert_eq!(
        shown(&current(store, room.id, m.seq).await),
        vec![("👍".to_string(), vec![bob.id])],
        "an emoji nobody uses any more is gone"
    );
    let mut limited = react(room.id, &ana, "r8", m.seq, "🚀", true);
    limited.max_reactions = 1;
    assert_eq!(refused(store, limited).await, Refusal::TooManyReactions);
    let mut same = react(room.id, &ana, "r9", m.seq, "👍", true);
    same.max_reactions = 1;
    applied(store.change(same).await.expect("an emoji already there"));
    let page = store
        .message_page(room.id, Scope::Room, None, None, 10)
        .await
        .expect("page");
    assert_eq!(page.len(), 1, "reactions are not messages");
    assert_eq!(page[0].reactions.len(), 1, "history carries reactions");
    let raw = store
        .messages_after(room.id, Seq::ZERO, 1)
        .await
        .expect("after");
    assert!(raw[0].reactions.is_empty(), "the stream carries none");
}

/// A thread reply: its parent counts it (and its time), the reply carries the count; a
/// reply to a reply or to no message is refused; pages of the room show the parent and
/// `also_room` replies, pages of the thread its replies.
pub async fn threads(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "th-ana", tag).await;
    let room = store
        .create_room(&format!("threads{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let parent = send(store, room.id, &ana, "topic", "m1").await;
    let r1 = send_with(store, room.id, &ana, "first", "t1", |m| {
        m.thread = Some(parent.seq)
    })
    .await;
    assert_eq!(r1.thread, Some(parent.seq));
    assert_eq!(r1.replies, 1, "a reply carries its thread's count");
    let r2 = send_with(store, room.id, &ana, "second", "t2", |m| {
        m.thread = Some(parent.seq);
        m.also_room = true;
    })
    .await;
    assert!(r2.also_room);
    assert_eq!(r2.replies, 2);
    let retry = store
        .append(NewMessage {
            room: room.id,
            sender: ana.clone(),
            body: "second".into(),
            client_id: "t2".into(),
            ts: now_millis(),
            thread: Some(parent.seq),
            ..NewMessage::default()
        })
        .await
        .expect("retry");
    assert!(retry.duplicate);
    let p = current(store, room.id, parent.seq).await;
    assert_eq!(p.replies, 2, "a retry is not counted");
    assert_eq!(p.last_reply_ts, Some(r2.ts));
    let before = last_seq(store, room.id).await;
    for (thread, why) in [
        (r1.seq, Refusal::InvalidThread),
        (Seq(99), Refusal::UnknownMessage),
    ] {
        let r = store
            .append(NewMessage {
                room: room.id,
                sender: ana.clone(),
                body: "x".into(),
                client_id: format!("bad{}", thread.0),
                ts: now_millis(),
                thread: Some(thread),
                ..NewMessage::default()
            })
            .await;
        assert!(
            matches!(r, Err(StoreError::Refused(got)) if got == why),
            "thread {thread}: {r:?}"
        );
    }
    assert_eq!(
        last_seq(store, room.id).await,
        before,
        "refusals spend no seq"
    );
    let timeline: Vec<Seq> = store
        .message_page(room.id, Scope::Room, None, None, 10)
        .await
        .expect("room")
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(timeline, vec![parent.seq, r2.seq]);
    let thread: Vec<Seq> = store
        .message_page(room.id, Scope::Thread(parent.seq), None, None, 10)
        .await
        .expect("thread")
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(thread, vec![r1.seq, r2.seq]);
    let older: Vec<Seq> = store
        .message_page(room.id, Scope::Thread(parent.seq), Some(r2.seq), None, 10)
        .await
        .expect("older")
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(older, vec![r1.seq]);
    let newer: Vec<Seq> = store
        .message_page(room.id, Scope::Room, None, Some(parent.seq), 10)
        .await
        .expect("newer")
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(newer, vec![r2.seq]);
}

/// Unread counts timeline messages from others after the marker (not deleted); mentions
/// count those naming the user or `@room`, thread replies included, and in a DM every
/// message. Notification levels are kept per member.
pub async fn unread_and_mentions(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "un-ana", tag).await;
    let bob = user(store, "un-bob", tag).await;
    let room = store
        .create_room(&format!("unread{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    super::join(&**store, room.id, &bob).await.expect("join");
    let first = send(store, room.id, &bob, "plain", "b1").await;
    let mention = send_with(store, room.id, &bob, "@ana look", "b2", |m| {
        m.mentions = vec![ana.id]
    })
    .await;
    send_with(store, room.id, &bob, "@room all", "b3", |m| {
        m.mentions_room = true
    })
    .await;
    send_with(store, room.id, &bob, "in thread @ana", "b4", |m| {
        m.thread = Some(first.seq);
        m.mentions = vec![ana.id];
    })
    .await;
    let gone = send(store, room.id, &bob, "oops", "b5").await;
    applied(
        store
            .change(change(
                room.id,
                &bob,
                "d5",
                Change::Delete { target: gone.seq },
            ))
            .await
            .expect("delete"),
    );
    send(store, room.id, &ana, "mine", "a1").await;
    let state = |v: Vec<MemberState>| {
        v.into_iter()
            .find(|s| s.room == room.id)
            .map(|s| (s.unread, s.mentions, s.notify))
            .expect("a member")
    };
    assert_eq!(
        state(store.member_states(ana.id, None).await.expect("states")),
        (3, 3, NotifyLevel::Mentions),
        "three timeline messages from bob; two mentions and a thread mention"
    );
    store
        .mark_read(room.id, ana.id, mention.seq)
        .await
        .expect("read");
    let only = store
        .member_states(ana.id, Some(room.id))
        .await
        .expect("one room");
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].read_seq, mention.seq);
    assert_eq!(
        state(only),
        (1, 2, NotifyLevel::Mentions),
        "after the marker"
    );
    assert_eq!(
        state(store.member_states(bob.id, None).await.expect("bob")),
        (1, 0, NotifyLevel::Mentions),
        "bob has ana's one message unread"
    );
    assert!(store
        .set_notify(room.id, ana.id, NotifyLevel::All)
        .await
        .expect("notify"));
    assert_eq!(
        state(store.member_states(ana.id, None).await.expect("states")).2,
        NotifyLevel::All
    );
    let carol = user(store, "un-carol", tag).await;
    assert!(!store
        .set_notify(room.id, carol.id, NotifyLevel::None)
        .await
        .expect("not a member"));
    let (dm, _) = store.open_dm(ana.id, bob.id).await.expect("dm");
    send(store, dm.id, &bob, "psst", "p1").await;
    send(store, dm.id, &bob, "psst 2", "p2").await;
    let dm_state = store
        .member_states(ana.id, Some(dm.id))
        .await
        .expect("dm state");
    assert_eq!(
        (dm_state[0].unread, dm_state[0].mentions),
        (2, 2),
        "a DM counts as mentions"
    );
}
