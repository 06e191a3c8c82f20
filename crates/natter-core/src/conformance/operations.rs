//! The operators' views of a store (`natter admin list-users`, `list-rooms`, `stats`): every
//! user row and every room, by id, and the counts of what is stored. One rule, `operator_views`,
//! stamped for every backend by `store_conformance!`.

use crate::files::{ContentHash, FileId, StoredFile};
use crate::model::*;
use crate::store::{Store, StoreCounts};
use std::sync::Arc;

fn upload(owner: UserId, bytes: &str, size: u64) -> StoredFile {
    StoredFile {
        id: FileId::random(),
        owner,
        name: "notes.txt".into(),
        size,
        kind: "text/plain".into(),
        width: None,
        height: None,
        hash: ContentHash::from_digest(&<sha2::Sha256 as sha2::Digest>::digest(bytes)),
        thumb_hash: None,
        created_at: now_millis(),
    }
}

fn entry(room: RoomId, sender: &User, client_id: &str) -> NewMessage {
    NewMessage {
        room,
        sender: sender.clone(),
        body: format!("body {client_id}"),
        client_id: client_id.into(),
        ts: now_millis(),
        ..NewMessage::default()
    }
}

/// `all_users` lists every user row by id, guests and expired guests too, with creation and
/// last-activity times; `all_rooms` lists public rooms and DMs by id with member counts and
/// last seqs; `counts` counts users, guests, rooms, messages (not change entries), sessions,
/// upload records and their bytes. Checked as differences, so earlier rows do not matter.
pub async fn operator_views(store: &Arc<dyn Store>, tag: &str) {
    let before = store.counts().await.expect("counts");
    let users_before = store.all_users().await.expect("users").len();
    let rooms_before = store.all_rooms().await.expect("rooms").len();
    let started = now_millis();

    let ana = store
        .create_user(&format!("opana{tag}"), Some("h"), false)
        .await
        .expect("user");
    let bob = store
        .create_user(&format!("opbob{tag}"), Some("h"), false)
        .await
        .expect("user");
    let guest = store
        .create_user(&format!("opguest{tag}"), None, true)
        .await
        .expect("guest");
    let room = store
        .create_room(&format!("oproom{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    super::join(&**store, room.id, &bob).await.expect("join");
    let (dm, _) = store.open_dm(ana.id, bob.id).await.expect("dm");
    for n in 0..3 {
        store
            .append(entry(room.id, &ana, &format!("op{n}")))
            .await
            .expect("append");
    }
    store
        .append(entry(dm.id, &bob, "opdm"))
        .await
        .expect("append");
    let edited = store
        .change(NewChange {
            room: room.id,
            sender: ana.clone(),
            client_id: "opedit".into(),
            ts: now_millis(),
            // The first message: entry 1 is bob's join.
            change: Change::Edit { target: Seq(2) },
            body: "edited".into(),
            max_reactions: 20,
        })
        .await;
    assert!(edited.is_ok(), "edit: {edited:?}");
    let session = format!("op-session-{tag}").into_bytes();
    store
        .create_session(&session, bob.id, "", now_millis())
        .await
        .expect("session");
    store
        .create_file(upload(ana.id, "one", 100))
        .await
        .expect("file");
    store
        .create_file(upload(bob.id, "two", 23))
        .await
        .expect("file");

    let users = store.all_users().await.expect("users");
    assert_eq!(users.len(), users_before + 3, "three users more: {users:?}");
    assert!(
        users.windows(2).all(|w| w[0].user.id < w[1].user.id),
        "users by id: {users:?}"
    );
    for made in [&ana, &bob, &guest] {
        let row = users
            .iter()
            .find(|r| r.user.id == made.id)
            .unwrap_or_else(|| panic!("{} listed", made.name));
        assert_eq!(&row.user, made, "listed as created");
        assert!(
            row.created_at >= started - 1000 && row.created_at <= now_millis() + 1000,
            "creation time {} near now",
            row.created_at
        );
        assert!(
            row.last_active >= row.created_at,
            "last active after creation"
        );
    }

    let rooms = store.all_rooms().await.expect("rooms");
    assert_eq!(rooms.len(), rooms_before + 2, "a public room and a DM more");
    assert!(
        rooms.windows(2).all(|w| w[0].id < w[1].id),
        "rooms by id: {rooms:?}"
    );
    let listed = rooms.iter().find(|r| r.id == room.id).expect("room listed");
    assert_eq!(listed.kind, RoomKind::Public);
    assert_eq!(listed.name, room.name);
    assert_eq!(listed.member_count, 2, "ana and bob");
    assert_eq!(
        listed.last_seq,
        Seq(5),
        "bob's join, three messages and an edit"
    );
    let listed = rooms.iter().find(|r| r.id == dm.id).expect("dm listed");
    assert_eq!(listed.kind, RoomKind::Dm);
    assert_eq!((listed.member_count, listed.last_seq), (2, Seq(1)));

    let after = store.counts().await.expect("counts");
    let grew = StoreCounts {
        users: after.users - before.users,
        guests: after.guests - before.guests,
        rooms: after.rooms - before.rooms,
        messages: after.messages - before.messages,
        sessions: after.sessions - before.sessions,
        files: after.files - before.files,
        file_bytes: after.file_bytes - before.file_bytes,
    };
    assert_eq!(
        grew,
        StoreCounts {
            users: 3,
            guests: 1,
            rooms: 2,
            messages: 4,
            sessions: 1,
            files: 2,
            file_bytes: 123,
        },
        "what the counts grew by (the edit is no message)"
    );
}
