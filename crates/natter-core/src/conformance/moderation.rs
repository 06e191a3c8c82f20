//! The `Store` rules of rooms and people (migrations 0008-0009): private rooms, room events
//! applied with their stream entry (kick, ban, unban, mute, unmute, role, settings), the
//! checks an append makes for a node that could not vouch for its sender (`check_rules`),
//! invitations, bans, admin flags, deactivation, the audit log, and group DMs. Stamped for
//! every backend by `store_conformance!` (re-exported from `store`).

use crate::error::{Refusal, StoreError};
use crate::model::*;
use crate::store::Store;
use std::sync::Arc;

async fn user(store: &Arc<dyn Store>, name: &str, tag: &str) -> User {
    store
        .create_user(&format!("{name}{tag}"), Some("hash"), false)
        .await
        .expect("user")
}

fn event(room: RoomId, by: &User, client_id: &str, change: Change) -> NewChange {
    NewChange {
        room,
        sender: by.clone(),
        client_id: client_id.into(),
        ts: now_millis(),
        change,
        body: String::new(),
        max_reactions: 0,
    }
}

async fn applied(store: &Arc<dyn Store>, change: NewChange) -> Message {
    match store.change(change).await.expect("change") {
        ChangeOutcome::Applied(entry) => entry,
        other => panic!("not applied: {other:?}"),
    }
}

/// Joins and leaves (`Change::Join`, `Change::Leave`, by the member) change the membership
/// and store the entry in one transaction, read back like any room event; one that would
/// change nothing is `Unchanged` and takes no seq; a banned user's join is refused; an
/// invitation ends with the join; a group left is no longer its member set's group; and
/// neither writes an audit line.
pub async fn membership_events(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "me-ana", tag).await;
    let bob = user(store, "me-bob", tag).await;
    let carol = user(store, "me-carol", tag).await;
    let room = store
        .create_room(&format!("me{tag}"), ana.id, RoomKind::Private)
        .await
        .expect("room");
    let join = |who: &User, id: &str| event(room.id, who, id, Change::Join { user: who.clone() });
    let leave = |who: &User, id: &str| event(room.id, who, id, Change::Leave { user: who.clone() });
    let audit_before = store.audit_page(None, 200).await.expect("audit").len();

    assert!(store
        .invite(room.id, bob.id, ana.id, now_millis())
        .await
        .expect("invite"));
    let joined = applied(store, join(&bob, "j1")).await;
    assert_eq!(joined.change, Some(Change::Join { user: bob.clone() }));
    assert_eq!(joined.sender.id, bob.id);
    let standing = store.standing(room.id, bob.id).await.expect("standing");
    assert!(standing.member && !standing.invited, "{standing:?}");
    let after_join = store.room(room.id).await.expect("room").expect("some");
    assert_eq!(after_join.member_count, 2);
    assert_eq!(after_join.last_seq, joined.seq);
    assert!(matches!(
        store.change(join(&bob, "j2")).await.expect("again"),
        ChangeOutcome::Unchanged
    ));

    let left = applied(store, leave(&bob, "l1")).await;
    assert_eq!(
        left.seq,
        Seq(joined.seq.0 + 1),
        "an unchanged join takes no seq"
    );
    assert!(!store.is_member(room.id, bob.id).await.expect("member"));
    assert!(matches!(
        store.change(leave(&bob, "l2")).await.expect("again"),
        ChangeOutcome::Unchanged
    ));
    let page = store
        .messages_after(room.id, Seq::ZERO, 10)
        .await
        .expect("entries");
    let ops: Vec<&str> = page
        .iter()
        .filter_map(|m| m.change.as_ref().map(Change::op))
        .collect();
    assert_eq!(ops, ["join", "leave"]);
    assert_eq!(page[1].change, Some(Change::Leave { user: bob.clone() }));

    // `history` with `events`: room events among the timeline's messages, in seq order and
    // counted in the limit; an edit is not one, and without `events` they are not there.
    let said = store
        .append(NewMessage {
            room: room.id,
            sender: ana.clone(),
            body: "hi".into(),
            client_id: "me-m1".into(),
            ts: now_millis(),
            ..NewMessage::default()
        })
        .await
        .expect("append")
        .message;
    let mut edit = event(room.id, &ana, "me-e1", Change::Edit { target: said.seq });
    edit.body = "hi all".into();
    applied(store, edit).await;
    let seqs = |page: Vec<Message>| page.iter().map(|m| m.seq.0).collect::<Vec<_>>();
    let page =
        |scope, before, after, limit| store.message_page(room.id, scope, before, after, limit);
    let all = page(Scope::RoomAndEvents, None, None, 10)
        .await
        .expect("page");
    assert_eq!(
        seqs(all.clone()),
        [joined.seq.0, left.seq.0, said.seq.0],
        "{all:?}"
    );
    assert_eq!(all[0].change, Some(Change::Join { user: bob.clone() }));
    assert_eq!(all[0].body, "", "a room event's body is empty");
    assert_eq!(all[2].body, "hi all", "a message in its current state");
    let newest = page(Scope::RoomAndEvents, None, None, 2)
        .await
        .expect("page");
    assert_eq!(seqs(newest), [left.seq.0, said.seq.0]);
    let older = page(Scope::RoomAndEvents, Some(left.seq), None, 2)
        .await
        .expect("page");
    assert_eq!(seqs(older), [joined.seq.0]);
    let newer = page(Scope::RoomAndEvents, None, Some(joined.seq), 1)
        .await
        .expect("page");
    assert_eq!(seqs(newer), [left.seq.0]);
    let plain = page(Scope::Room, None, None, 10).await.expect("page");
    assert_eq!(seqs(plain), [said.seq.0], "no room events without `events`");

    // A ban stops a join; nothing is stored for it.
    applied(
        store,
        event(
            room.id,
            &ana,
            "b1",
            Change::Ban {
                user: carol.clone(),
                reason: String::new(),
            },
        ),
    )
    .await;
    let before = store
        .room(room.id)
        .await
        .expect("room")
        .expect("some")
        .last_seq;
    let refused = store.change(join(&carol, "j3")).await;
    assert!(
        matches!(refused, Err(StoreError::Refused(Refusal::Banned))),
        "{refused:?}"
    );
    let after = store
        .room(room.id)
        .await
        .expect("room")
        .expect("some")
        .last_seq;
    assert_eq!(before, after);
    // Only the ban wrote an audit line.
    let audit = store.audit_page(None, 200).await.expect("audit");
    assert_eq!(audit.len(), audit_before + 1);
    assert_eq!(audit[0].action, "ban");

    // A group one member left is not the group of its member set any more.
    let (group, _) = store
        .open_group(&[ana.id, bob.id, carol.id])
        .await
        .expect("group");
    let by_carol = event(
        group.id,
        &carol,
        "l3",
        Change::Leave {
            user: carol.clone(),
        },
    );
    applied(store, by_carol).await;
    let (again, created) = store
        .open_group(&[ana.id, bob.id, carol.id])
        .await
        .expect("group");
    assert!(created && again.id != group.id);
}

/// Room events change what they say in the entry's transaction, are entries of the stream
/// (read back with their change), refuse what needs a member, are `Unchanged` when nothing
/// would change, and each leaves an audit line; a ban stops `join`.
pub async fn room_events(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "re-ana", tag).await;
    let bob = user(store, "re-bob", tag).await;
    let carol = user(store, "re-carol", tag).await;
    let room = store
        .create_room(&format!("re{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let owner = store.standing(room.id, ana.id).await.expect("standing");
    assert_eq!((owner.member, owner.role), (true, RoomRole::Owner));
    super::join(&**store, room.id, &bob).await.expect("join");

    let role = applied(
        store,
        event(
            room.id,
            &ana,
            "r1",
            Change::Role {
                user: bob.clone(),
                role: RoomRole::Moderator,
            },
        ),
    )
    .await;
    // After bob's join, entry 1.
    assert_eq!(role.seq, Seq(2));
    assert_eq!(
        store.standing(room.id, bob.id).await.expect("s").role,
        RoomRole::Moderator
    );
    let same = store
        .change(event(
            room.id,
            &ana,
            "r2",
            Change::Role {
                user: bob.clone(),
                role: RoomRole::Moderator,
            },
        ))
        .await
        .expect("again");
    assert_eq!(same, ChangeOutcome::Unchanged, "a role the member has");
    let retry = store
        .change(event(
            room.id,
            &ana,
            "r1",
            Change::Role {
                user: bob.clone(),
                role: RoomRole::Moderator,
            },
        ))
        .await
        .expect("retry");
    assert_eq!(retry, ChangeOutcome::Duplicate(role.clone()));

    let not_member = store
        .change(event(
            room.id,
            &bob,
            "m0",
            Change::Mute {
                user: carol.clone(),
                until: now_millis() + 60_000,
            },
        ))
        .await;
    assert!(
        matches!(not_member, Err(StoreError::Refused(Refusal::NotMember))),
        "{not_member:?}"
    );
    let until = now_millis() + 60_000;
    let ban = applied(
        store,
        event(
            room.id,
            &bob,
            "b1",
            Change::Ban {
                user: carol.clone(),
                reason: "spam".into(),
            },
        ),
    )
    .await;
    assert_eq!(ban.seq, Seq(3), "refusals spend no seq");
    let joined = super::join(&**store, room.id, &carol).await;
    assert!(
        matches!(joined, Err(StoreError::Refused(Refusal::Banned))),
        "{joined:?}"
    );
    let bans = store.bans(room.id).await.expect("bans");
    assert_eq!(bans.len(), 1);
    assert_eq!((bans[0].user.id, bans[0].by.id), (carol.id, bob.id));
    assert_eq!(bans[0].reason, "spam");
    applied(
        store,
        event(
            room.id,
            &ana,
            "u1",
            Change::Unban {
                user: carol.clone(),
            },
        ),
    )
    .await;
    assert_eq!(
        store
            .change(event(
                room.id,
                &ana,
                "u2",
                Change::Unban {
                    user: carol.clone()
                }
            ))
            .await
            .expect("unban again"),
        ChangeOutcome::Unchanged
    );
    assert!(super::join(&**store, room.id, &carol).await.expect("join"));
    let mute = applied(
        store,
        event(
            room.id,
            &bob,
            "m1",
            Change::Mute {
                user: carol.clone(),
                until,
            },
        ),
    )
    .await;
    assert_eq!(
        store
            .standing(room.id, carol.id)
            .await
            .expect("s")
            .muted_until,
        Some(until)
    );
    let settings = applied(
        store,
        event(
            room.id,
            &ana,
            "s1",
            Change::Settings {
                name: Some(format!("renamed{tag}")),
                topic: Some("Ship it".into()),
                description: None,
                archived: Some(true),
            },
        ),
    )
    .await;
    let now = store.room(room.id).await.expect("room").expect("room");
    assert_eq!(now.name, format!("renamed{tag}"));
    assert_eq!((now.topic.as_str(), now.archived), ("Ship it", true));
    let kick = applied(
        store,
        event(
            room.id,
            &ana,
            "k1",
            Change::Kick {
                user: carol.clone(),
                reason: String::new(),
            },
        ),
    )
    .await;
    assert!(!store.is_member(room.id, carol.id).await.expect("member"));
    assert_eq!(
        store
            .standing(room.id, carol.id)
            .await
            .expect("s")
            .muted_until,
        None,
        "a mute goes with the membership"
    );

    // The stream holds them all, with their changes, in order.
    let entries = store
        .messages_after(room.id, Seq::ZERO, 100)
        .await
        .expect("entries");
    let ops: Vec<&str> = entries
        .iter()
        .map(|e| e.change.as_ref().map_or("message", Change::op))
        .collect();
    assert_eq!(
        ops,
        ["join", "role", "ban", "unban", "join", "mute", "settings", "kick"]
    );
    assert_eq!(entries[5], mute);
    assert_eq!(entries[6], settings);
    assert_eq!(entries[7], kick);
    assert!(entries.iter().all(|e| e.body.is_empty()));
    // A public name stays unique through a rename.
    let other = store
        .create_room(&format!("other{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let clash = store
        .change(event(
            other.id,
            &ana,
            "s2",
            Change::Settings {
                name: Some(format!("RENAMED{tag}")),
                topic: None,
                description: None,
                archived: None,
            },
        ))
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");

    // Each room event left an audit line, newest first.
    let audit = store.audit_page(None, 100).await.expect("audit");
    let mine: Vec<&AuditEntry> = audit.iter().filter(|a| a.room == Some(room.id)).collect();
    let actions: Vec<&str> = mine.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        ["kick", "settings", "mute", "unban", "ban", "role"]
    );
    assert_eq!(mine[4].actor.id, bob.id);
    assert_eq!(mine[4].target.as_ref().map(|t| t.id), Some(carol.id));
    let older = store.audit_page(Some(mine[1].id), 2).await.expect("page");
    assert_eq!(older[0].id, mine[2].id, "pages go back from `before`");
}

/// An append with `check_rules` is refused for a muted sender or an archived room, in its own
/// transaction (nothing stored, no seq spent); without it the store does not look.
pub async fn append_checks_rules(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "ar-ana", tag).await;
    let bob = user(store, "ar-bob", tag).await;
    let room = store
        .create_room(&format!("ar{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    super::join(&**store, room.id, &bob).await.expect("join");
    let until = now_millis() + 60_000;
    applied(
        store,
        event(
            room.id,
            &ana,
            "m",
            Change::Mute {
                user: bob.clone(),
                until,
            },
        ),
    )
    .await;
    let send = |client_id: &str, check_rules: bool| NewMessage {
        room: room.id,
        sender: bob.clone(),
        body: "hi".into(),
        client_id: client_id.into(),
        ts: now_millis(),
        check_rules,
        ..NewMessage::default()
    };
    let refused = store.append(send("c1", true)).await;
    assert!(
        matches!(refused, Err(StoreError::Refused(Refusal::Muted(u))) if u == until),
        "{refused:?}"
    );
    let stored = store.append(send("c2", false)).await.expect("unchecked");
    // After bob's join (1) and the mute (2).
    assert_eq!(stored.message.seq, Seq(3), "the refusal spent no seq");
    applied(
        store,
        event(room.id, &ana, "u", Change::Unmute { user: bob.clone() }),
    )
    .await;
    store.append(send("c3", true)).await.expect("unmuted");
    applied(
        store,
        event(
            room.id,
            &ana,
            "a",
            Change::Settings {
                name: None,
                topic: None,
                description: None,
                archived: Some(true),
            },
        ),
    )
    .await;
    let archived = store.append(send("c4", true)).await;
    assert!(
        matches!(archived, Err(StoreError::Refused(Refusal::Archived))),
        "{archived:?}"
    );
}

/// A private room's name is not unique and it is in no public listing; an invitation is
/// listed for its invitee until they join (or it is removed).
pub async fn private_rooms_and_invites(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "pr-ana", tag).await;
    let bob = user(store, "pr-bob", tag).await;
    let name = format!("secret{tag}");
    let one = store
        .create_room(&name, ana.id, RoomKind::Private)
        .await
        .expect("private");
    let two = store
        .create_room(&name, bob.id, RoomKind::Private)
        .await
        .expect("same name, private");
    store
        .create_room(&name, bob.id, RoomKind::Public)
        .await
        .expect("and public");
    assert_ne!(one.id, two.id);
    assert_eq!(one.kind, RoomKind::Private);
    let listed = store
        .public_rooms_page(&name, "", 100, false)
        .await
        .expect("page");
    assert!(listed.iter().all(|r| r.kind == RoomKind::Public));
    assert!(store
        .invite(one.id, bob.id, ana.id, 1000)
        .await
        .expect("invite"));
    assert!(!store
        .invite(one.id, bob.id, ana.id, 2000)
        .await
        .expect("again"));
    let invites = store.invites_of(bob.id).await.expect("invites");
    assert_eq!(invites.len(), 1);
    assert_eq!((invites[0].room, invites[0].by.id), (one.id, ana.id));
    assert_eq!(
        (invites[0].name.as_str(), invites[0].ts),
        (name.as_str(), 1000)
    );
    assert!(store.standing(one.id, bob.id).await.expect("s").invited);
    super::join(&**store, one.id, &bob).await.expect("join");
    assert_eq!(store.invites_of(bob.id).await.expect("none"), vec![]);
    assert!(store
        .invite(two.id, ana.id, bob.id, 3000)
        .await
        .expect("invite"));
    assert!(store.remove_invite(two.id, ana.id).await.expect("decline"));
    assert!(!store.remove_invite(two.id, ana.id).await.expect("twice"));
}

/// Admin flags and deactivation: `set_admin` sets and clears, a guest is never made admin
/// by its creation, `deactivate` flags the account and deletes every session.
pub async fn admins_and_deactivation(store: &Arc<dyn Store>, tag: &str) {
    user(store, "ad-first", tag).await;
    let bob = user(store, "ad-bob", tag).await;
    let guest = store
        .create_user(&format!("ad-guest{tag}"), None, true)
        .await
        .expect("guest");
    let flags = |u: UserId| async move { store.user_flags(u).await.expect("flags") };
    assert!(
        !flags(bob.id).await.expect("bob").admin,
        "not the first account"
    );
    assert!(!flags(guest.id).await.expect("guest").admin);
    assert!(store.set_admin(bob.id, true).await.expect("grant"));
    assert!(flags(bob.id).await.expect("bob").admin);
    assert!(store.set_admin(bob.id, false).await.expect("revoke"));
    assert!(!flags(bob.id).await.expect("bob").admin);
    assert!(!store
        .set_admin(UserId(i64::MAX), true)
        .await
        .expect("nobody"));
    assert_eq!(flags(UserId(i64::MAX)).await, None);
    store
        .create_session(b"ad-s1", bob.id, "a", 1)
        .await
        .expect("session");
    store
        .create_session(b"ad-s2", bob.id, "b", 2)
        .await
        .expect("session");
    let mut gone = store.deactivate(bob.id).await.expect("deactivate");
    gone.sort();
    assert_eq!(gone, vec![b"ad-s1".to_vec(), b"ad-s2".to_vec()]);
    assert!(flags(bob.id).await.expect("bob").deactivated);
    assert_eq!(store.session_user(b"ad-s1").await.expect("s"), None);
    store
        .record_audit(NewAudit {
            ts: 5,
            actor: bob.id,
            action: "deactivate".into(),
            room: None,
            target: Some(bob.id),
            detail: String::new(),
        })
        .await
        .expect("audit");
    let line = store.audit_page(None, 1).await.expect("audit").remove(0);
    assert_eq!(
        (line.action.as_str(), line.ts, line.room),
        ("deactivate", 5, None)
    );
}

/// One group DM per member set, in any order; a group someone left is no longer the set's;
/// every message in a group counts as a mention, as in a DM.
pub async fn group_dms(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "gr-ana", tag).await;
    let bob = user(store, "gr-bob", tag).await;
    let carol = user(store, "gr-carol", tag).await;
    let (group, created) = store
        .open_group(&[ana.id, bob.id, carol.id])
        .await
        .expect("open");
    assert!(created);
    assert_eq!((group.kind, group.member_count), (RoomKind::Group, 3));
    let (same, created) = store
        .open_group(&[carol.id, ana.id, bob.id])
        .await
        .expect("again");
    assert_eq!((same.id, created), (group.id, false));
    let members: Vec<UserId> = store
        .members(group.id)
        .await
        .expect("members")
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(members.len(), 3);
    assert!([ana.id, bob.id, carol.id]
        .iter()
        .all(|u| members.contains(u)));
    store
        .append(NewMessage {
            room: group.id,
            sender: bob.clone(),
            body: "no mention".into(),
            client_id: "g1".into(),
            ts: now_millis(),
            ..NewMessage::default()
        })
        .await
        .expect("send");
    let state = store
        .member_states(ana.id, Some(group.id))
        .await
        .expect("state")
        .remove(0);
    assert_eq!((state.unread, state.mentions), (1, 1));
    assert!(super::leave(&**store, group.id, &carol)
        .await
        .expect("leave"));
    let (new, created) = store
        .open_group(&[ana.id, bob.id, carol.id])
        .await
        .expect("reopen");
    assert!(created, "a group someone left is not the set's any more");
    assert_ne!(new.id, group.id);
    assert!(!store.is_member(group.id, carol.id).await.expect("member"));
}

/// Profiles: set and read back, `None` leaves a field as it is; file records read several at
/// once (unknown ids left out); an avatar is the user's own
/// image upload (else `Refused(UnknownFile)`, nothing changed); the sweep keeps an avatar's
/// file however old, and lets it go once it is no one's avatar.
pub async fn profiles(store: &Arc<dyn Store>, tag: &str) {
    use crate::files::{ContentHash, FileId, StoredFile};
    use sha2::Digest;
    let ana = user(store, "pf-ana", tag).await;
    let bob = user(store, "pf-bob", tag).await;
    let file = |id: &str, owner: UserId, kind: &str| StoredFile {
        id: FileId::random(),
        owner,
        name: "x".into(),
        size: 10,
        kind: kind.into(),
        width: None,
        height: None,
        hash: ContentHash::from_digest(&sha2::Sha256::digest(format!("{id}{tag}"))),
        thumb_hash: None,
        created_at: 1,
    };
    let picture = file("pic", ana.id, "image/png");
    let text = file("txt", ana.id, "text/plain");
    let bobs = file("bob", bob.id, "image/png");
    for f in [&picture, &text, &bobs] {
        store.create_file(f.clone()).await.expect("file");
    }
    // Several records at once (a member list's avatars): the known ones, unknown ids left out.
    let mut found: Vec<FileId> = store
        .files(&[picture.id.clone(), FileId::random(), bobs.id.clone()])
        .await
        .expect("files")
        .into_iter()
        .map(|f| {
            let want = if f.id == picture.id { &picture } else { &bobs };
            assert_eq!(&f, want, "a record read in a list is as stored");
            f.id
        })
        .collect();
    found.sort();
    let mut want = vec![picture.id.clone(), bobs.id.clone()];
    want.sort();
    assert_eq!(found, want);
    assert!(store.files(&[]).await.expect("no files").is_empty());
    let set = |update: ProfileUpdate| async move { store.set_profile(ana.id, update).await };
    for bad in [&text, &bobs] {
        let refused = set(ProfileUpdate {
            avatar: Some(Some(bad.id.clone())),
            ..ProfileUpdate::default()
        })
        .await;
        assert!(
            matches!(refused, Err(StoreError::Refused(Refusal::UnknownFile))),
            "{refused:?}"
        );
    }
    let profile = set(ProfileUpdate {
        display_name: Some("Ana Lima".into()),
        status: Some("away".into()),
        avatar: Some(Some(picture.id.clone())),
    })
    .await
    .expect("set")
    .expect("ana");
    assert_eq!(profile.display_name, "Ana Lima");
    assert_eq!(profile.avatar, Some(picture.id.clone()));
    let kept = set(ProfileUpdate {
        status: Some(String::new()),
        ..ProfileUpdate::default()
    })
    .await
    .expect("set")
    .expect("ana");
    assert_eq!(
        (kept.display_name.as_str(), kept.status.as_str()),
        ("Ana Lima", "")
    );
    assert_eq!(store.profile(ana.id).await.expect("read"), Some(kept));
    // Swept long after upload: the avatar stays, the others go.
    store.sweep_files(i64::MAX).await.expect("sweep");
    assert!(store.file(&picture.id).await.expect("file").is_some());
    assert!(store.file(&text.id).await.expect("file").is_none());
    set(ProfileUpdate {
        avatar: Some(None),
        ..ProfileUpdate::default()
    })
    .await
    .expect("remove");
    store.sweep_files(i64::MAX).await.expect("sweep");
    assert!(store.file(&picture.id).await.expect("file").is_none());
    let room = store
        .create_room(&format!("pf{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    super::join(&**store, room.id, &bob).await.expect("join");
    let members = store.member_profiles(room.id).await.expect("members");
    assert_eq!(members.len(), 2);
    assert!(members.iter().any(|(p, role)| p.user.id == ana.id
        && p.display_name == "Ana Lima"
        && *role == RoomRole::Owner));
}

/// `messages_of` lists a user's messages (not changes, not deleted) by id, paged;
/// `delete_account` frees the name (the row stays, named "deleted user", so messages keep a
/// sender), deletes sessions and invitations, ends memberships.
pub async fn account_deletion(store: &Arc<dyn Store>, tag: &str) {
    let ana = user(store, "dl-ana", tag).await;
    let bob = user(store, "dl-bob", tag).await;
    let room = store
        .create_room(&format!("dl{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let secret = store
        .create_room(&format!("dls{tag}"), ana.id, RoomKind::Private)
        .await
        .expect("room");
    super::join(&**store, room.id, &bob).await.expect("join");
    store
        .invite(secret.id, bob.id, ana.id, 1)
        .await
        .expect("invite");
    let mut ids = Vec::new();
    for i in 0..3 {
        let sent = store
            .append(NewMessage {
                room: room.id,
                sender: bob.clone(),
                body: format!("m{i}"),
                client_id: format!("dl{i}"),
                ts: now_millis(),
                ..NewMessage::default()
            })
            .await
            .expect("send");
        ids.push(sent.message.id);
    }
    // Entry 1 is bob's join (a room event, not one of his messages); the messages are 2-4.
    applied(
        store,
        event(room.id, &bob, "dl-del", Change::Delete { target: Seq(3) }),
    )
    .await;
    let page = store
        .messages_of(bob.id, MessageId(0), 1)
        .await
        .expect("page");
    assert_eq!(page, vec![(ids[0], room.id, Seq(2))]);
    let rest = store.messages_of(bob.id, ids[0], 10).await.expect("rest");
    assert_eq!(
        rest,
        vec![(ids[2], room.id, Seq(4))],
        "no deleted message, no change"
    );
    store
        .create_session(b"dl-s", bob.id, "x", 1)
        .await
        .expect("session");
    let name = bob.name.clone();
    let deleted = store.delete_account(bob.id).await.expect("delete");
    assert_eq!(deleted.sessions, vec![b"dl-s".to_vec()]);
    let mut rooms = deleted.rooms.clone();
    rooms.sort();
    let mut expected = store
        .rooms_of(ana.id)
        .await
        .expect("rooms")
        .into_iter()
        .map(|(r, _)| r.id)
        .filter(|r| *r == room.id)
        .collect::<Vec<_>>();
    expected.sort();
    assert!(rooms.contains(&room.id));
    assert!(!store.is_member(room.id, bob.id).await.expect("member"));
    assert_eq!(store.invites_of(bob.id).await.expect("invites"), vec![]);
    assert_eq!(
        store.user_by_name(&name).await.expect("lookup"),
        None,
        "name freed"
    );
    let kept = store
        .message(room.id, Seq(2))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(kept.sender.name, crate::store::DELETED_USER_NAME);
    assert!(
        store
            .user_flags(bob.id)
            .await
            .expect("flags")
            .expect("row")
            .deactivated
    );
    store
        .create_user(&name, Some("hash"), false)
        .await
        .expect("the name is free again");
    let _ = expected;
}
