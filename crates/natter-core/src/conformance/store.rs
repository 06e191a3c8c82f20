//! The behaviour every `Store` backend must show, one `pub async fn` per rule; each takes a
//! fresh store and a `tag` that makes its names unique (so a shared database works too), and
//! panics with a description of what it found broken. Long (~780 lines) because it is the
//! list of rules itself, one scenario each; newer rules live beside it (`stream`, `search`,
//! `files`).
//!
//! [`store_conformance!`](crate::store_conformance) stamps one test per rule for a backend:
//!
//! ```ignore
//! async fn memory(_rule: &'static str) -> Option<StoreUnderTest> {
//!     Some(StoreUnderTest::new(Arc::new(MemoryStore::new())))
//! }
//! natter_core::store_conformance!(memory_store, memory);
//! ```
//!
//! gives `memory_store::accounts`, `memory_store::rooms_and_membership`, ... Every rule here is
//! listed in [`RULES`] and in the macro (a rule missing from the macro is not run).

use crate::model::*;
use crate::store::{name_key, Store, StoredSession};
use crate::StoreError;
use futures_util::future::BoxFuture;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

/// The rules, in the order the macro stamps them.
pub const RULES: &[&str] = &[
    "accounts",
    "rooms_and_membership",
    "direct_messages",
    "messages_and_history",
    "read_markers",
    "concurrent_appends",
    "pipelined_appends",
    "sessions",
    "room_creators",
    "public_room_pages",
    "edits_and_versions",
    "deletes_leave_tombstones",
    "reactions",
    "threads",
    "unread_and_mentions",
    "search",
    "files_on_messages",
    "file_sweep",
    "server_secrets",
    "operator_views",
    "room_events",
    "membership_events",
    "append_checks_rules",
    "private_rooms_and_invites",
    "admins_and_deactivation",
    "group_dms",
    "profiles",
    "account_deletion",
    "bots_and_owners",
    "api_tokens_and_webhooks",
];

pub use super::bots::{api_tokens_and_webhooks, bots_and_owners};
pub use super::files::{file_sweep, files_on_messages, server_secrets};
pub use super::moderation::{
    account_deletion, admins_and_deactivation, append_checks_rules, group_dms, membership_events,
    private_rooms_and_invites, profiles, room_events,
};
pub use super::operations::operator_views;
pub use super::search::search;
pub use super::stream::{
    deletes_leave_tombstones, edits_and_versions, reactions, threads, unread_and_mentions,
};

/// A fresh store for one rule, and what to do once the rule has passed (shut the store down,
/// drop a scratch database, remove a temporary directory it owns). A rule that panics skips
/// the cleanup, leaving what it found for a look.
pub struct StoreUnderTest {
    pub store: Arc<dyn Store>,
    cleanup: Option<BoxFuture<'static, ()>>,
}

impl StoreUnderTest {
    /// A store with nothing to clean up but a shutdown.
    pub fn new(store: Arc<dyn Store>) -> StoreUnderTest {
        StoreUnderTest {
            store,
            cleanup: None,
        }
    }

    /// Runs `cleanup` after the store's shutdown, once the rule has passed (it may own what
    /// must outlive the store, such as its directory).
    pub fn with_cleanup(
        mut self,
        cleanup: impl Future<Output = ()> + Send + 'static,
    ) -> StoreUnderTest {
        self.cleanup = Some(Box::pin(cleanup));
        self
    }

    /// Shuts the store down, then runs the cleanup.
    pub async fn finish(self) {
        self.store.shutdown().await;
        if let Some(cleanup) = self.cleanup {
            cleanup.await;
        }
    }
}

/// Stamps one `#[tokio::test]` per store rule into a module `$module`, for the backend that
/// `$make` builds: an async function (or closure) taking the test's name (`&'static str`)
/// and returning `Option<StoreUnderTest>`, `None` when the backend is not configured here
/// (it prints its own skip, or panics when services are required). Called once per rule.
///
/// ```ignore
/// natter_core::store_conformance!(sqlite, sqlite_store);
/// ```
#[macro_export]
macro_rules! store_conformance {
    ($module:ident, $make:expr) => {
        $crate::store_conformance!(@rules $module, $make;
            accounts,
            rooms_and_membership,
            direct_messages,
            messages_and_history,
            read_markers,
            concurrent_appends,
            pipelined_appends,
            sessions,
            room_creators,
            public_room_pages,
            edits_and_versions,
            deletes_leave_tombstones,
            reactions,
            threads,
            unread_and_mentions,
            search,
            files_on_messages,
            file_sweep,
            server_secrets,
            operator_views,
            room_events,
            membership_events,
            append_checks_rules,
            private_rooms_and_invites,
            admins_and_deactivation,
            group_dms,
            profiles,
            account_deletion,
            bots_and_owners,
            api_tokens_and_webhooks,
        );
    };
    (@rules $module:ident, $make:expr; $($rule:ident),+ $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $rule() {
                    let test = concat!(stringify!($module), "::", stringify!($rule));
                    let Some(under_test) = ($make)(test).await else {
                        return;
                    };
                    $crate::conformance::store::$rule(&under_test.store, stringify!($rule)).await;
                    under_test.finish().await;
                }
            )+
        }
    };
}

fn new_message(room: RoomId, sender: &User, body: &str, client_id: &str) -> NewMessage {
    NewMessage {
        room,
        sender: sender.clone(),
        body: body.to_string(),
        client_id: client_id.to_string(),
        ts: now_millis(),
        ..NewMessage::default()
    }
}

/// Names are unique case-insensitively and keep their spelling; credentials are found by any
/// case, guests have no password hash; a session token maps to its user until deleted.
pub async fn accounts(store: &Arc<dyn Store>, tag: &str) {
    let name = format!("Ana{tag}");
    let ana = store
        .create_user(&name, Some("hash-a"), false)
        .await
        .expect("create user");
    assert_eq!(ana.name, name, "the name keeps its spelling");
    assert!(!ana.guest);
    let clash = store
        .create_user(&name.to_uppercase(), Some("h"), false)
        .await;
    assert!(
        matches!(clash, Err(StoreError::Conflict(_))),
        "names are unique case-insensitively: {clash:?}"
    );
    let creds = store
        .credentials(&name.to_lowercase())
        .await
        .expect("credentials")
        .expect("found by another case");
    assert_eq!(creds.user, ana);
    assert_eq!(creds.password_hash.as_deref(), Some("hash-a"));
    assert!(store
        .credentials(&format!("nobody{tag}"))
        .await
        .expect("lookup")
        .is_none());
    let guest = store
        .create_user(&format!("guest{tag}"), None, true)
        .await
        .expect("guest");
    assert!(guest.guest);
    let gc = store
        .credentials(&guest.name)
        .await
        .expect("lookup")
        .expect("guest");
    assert!(gc.password_hash.is_none());

    let token = format!("token-hash-{tag}").into_bytes();
    store
        .create_session(&token, ana.id, "", now_millis())
        .await
        .expect("session");
    assert_eq!(
        store.session_user(&token).await.expect("lookup"),
        Some(ana.clone())
    );
    assert_eq!(
        store.delete_session(&token).await.expect("delete"),
        Some(ana.id)
    );
    assert_eq!(store.session_user(&token).await.expect("lookup"), None);
    assert_eq!(store.delete_session(&token).await.expect("again"), None);
}

/// `ensure_public_room` is idempotent; room names are unique case-insensitively; the creator
/// is the first member; join and leave say whether they changed anything and keep the member
/// count; members are sorted by name.
pub async fn rooms_and_membership(store: &Arc<dyn Store>, tag: &str) {
    let ana = store
        .create_user(&format!("rm-ana{tag}"), None, false)
        .await
        .expect("user");
    let bob = store
        .create_user(&format!("rm-bob{tag}"), None, false)
        .await
        .expect("user");
    let general = store.ensure_public_room("general").await.expect("general");
    let again = store.ensure_public_room("general").await.expect("general");
    assert_eq!(general.id, again.id, "ensure_public_room is idempotent");

    let name = format!("Club{tag}");
    let club = store
        .create_room(&name, ana.id, RoomKind::Public)
        .await
        .expect("create");
    assert_eq!(club.member_count, 1, "the creator is a member");
    assert_eq!(club.last_seq, Seq::ZERO);
    assert_eq!(club.kind, RoomKind::Public);
    let clash = store
        .create_room(&name.to_lowercase(), bob.id, RoomKind::Public)
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    assert!(store
        .public_rooms()
        .await
        .expect("list")
        .iter()
        .any(|r| r.id == club.id));

    assert!(super::join(&**store, club.id, &bob).await.expect("join"));
    assert!(!super::join(&**store, club.id, &bob)
        .await
        .expect("join twice"));
    assert!(store.is_member(club.id, bob.id).await.expect("member"));
    let room = store.room(club.id).await.expect("room").expect("exists");
    assert_eq!(room.member_count, 2);
    let members: Vec<UserId> = store
        .members(club.id)
        .await
        .expect("members")
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(members, vec![ana.id, bob.id], "sorted by name");
    let bobs: Vec<RoomId> = store
        .rooms_of(bob.id)
        .await
        .expect("rooms")
        .iter()
        .map(|(r, _)| r.id)
        .collect();
    assert!(bobs.contains(&club.id));

    assert!(super::leave(&**store, club.id, &bob).await.expect("leave"));
    assert!(!super::leave(&**store, club.id, &bob)
        .await
        .expect("leave twice"));
    assert!(!store.is_member(club.id, bob.id).await.expect("member"));
    assert_eq!(
        store
            .room(club.id)
            .await
            .expect("room")
            .expect("exists")
            .member_count,
        1
    );
    assert!(store
        .room(RoomId(i64::MAX))
        .await
        .expect("lookup")
        .is_none());
}

/// A read marker never moves back nor past the last message, is per user, needs membership,
/// and is forgotten when the member leaves.
pub async fn read_markers(store: &Arc<dyn Store>, tag: &str) {
    let ana = store
        .create_user(&format!("rd-ana{tag}"), None, false)
        .await
        .expect("user");
    let bob = store
        .create_user(&format!("rd-bob{tag}"), None, false)
        .await
        .expect("user");
    let room = store
        .create_room(&format!("Reading{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    for i in 0..3 {
        store
            .append(new_message(room.id, &ana, "m", &format!("rd{i}")))
            .await
            .expect("append");
    }
    let markers = |user| async move { store.read_markers(user).await.expect("markers") };
    assert_eq!(markers(ana.id).await, vec![], "nothing read yet");
    let mark = |user, seq| async move {
        store
            .mark_read(room.id, user, Seq(seq))
            .await
            .expect("mark")
    };
    assert_eq!(mark(ana.id, 2).await, Some(Seq(2)));
    assert_eq!(
        mark(ana.id, 1).await,
        Some(Seq(2)),
        "a marker never moves back"
    );
    assert_eq!(
        mark(ana.id, 99).await,
        Some(Seq(3)),
        "nor past the last message"
    );
    assert_eq!(markers(ana.id).await, vec![(room.id, Seq(3))]);
    assert_eq!(mark(bob.id, 1).await, None, "not a member");
    assert_eq!(markers(bob.id).await, vec![]);
    assert!(super::join(&**store, room.id, &bob).await.expect("join"));
    assert_eq!(mark(bob.id, 1).await, Some(Seq(1)));
    assert_eq!(
        markers(ana.id).await,
        vec![(room.id, Seq(3))],
        "markers are per user"
    );
    assert!(super::leave(&**store, room.id, &bob).await.expect("leave"));
    assert!(super::join(&**store, room.id, &bob)
        .await
        .expect("join again"));
    assert_eq!(markers(bob.id).await, vec![], "leaving forgets the marker");
}

/// One DM per pair of users, either way round; DMs are not public; each side sees the other
/// as the peer.
pub async fn direct_messages(store: &Arc<dyn Store>, tag: &str) {
    let ana = store
        .create_user(&format!("dm-ana{tag}"), None, false)
        .await
        .expect("user");
    let bob = store
        .create_user(&format!("dm-bob{tag}"), None, false)
        .await
        .expect("user");
    let (dm, created) = store.open_dm(ana.id, bob.id).await.expect("open");
    assert!(created);
    assert_eq!(dm.kind, RoomKind::Dm);
    assert_eq!(dm.member_count, 2);
    let (same, created) = store.open_dm(bob.id, ana.id).await.expect("open again");
    assert_eq!(same.id, dm.id, "one DM per pair, either way round");
    assert!(!created);
    assert!(
        !store
            .public_rooms()
            .await
            .expect("list")
            .iter()
            .any(|r| r.id == dm.id),
        "DMs are not public"
    );
    let anas = store.rooms_of(ana.id).await.expect("rooms");
    let (_, peer) = anas.iter().find(|(r, _)| r.id == dm.id).expect("ana's DM");
    assert_eq!(peer.as_ref().map(|p| p.id), Some(bob.id), "the peer is bob");
}

/// Appends get seqs 1, 2, 3, ... and unique ids; a retry (same sender, room and client id) is
/// stored once and returns the original; history pages by seq both ways; text round-trips.
pub async fn messages_and_history(store: &Arc<dyn Store>, tag: &str) {
    let ana = store
        .create_user(&format!("msg-ana{tag}"), None, false)
        .await
        .expect("user");
    let room = store
        .create_room(&format!("msgs{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let mut ids = HashSet::new();
    for i in 1..=30 {
        let a = store
            .append(new_message(
                room.id,
                &ana,
                &format!("m{i}"),
                &format!("c{i}"),
            ))
            .await
            .expect("append");
        assert!(!a.duplicate);
        assert_eq!(a.message.seq, Seq(i), "seqs are 1, 2, 3, ...");
        assert_eq!(a.message.sender, ana);
        assert!(ids.insert(a.message.id), "ids are unique");
    }
    let retry = store
        .append(new_message(room.id, &ana, "different body", "c7"))
        .await
        .expect("retry");
    assert!(
        retry.duplicate,
        "same sender, room and client id: stored once"
    );
    assert_eq!(retry.message.seq, Seq(7));
    assert_eq!(retry.message.body, "m7", "the original comes back");
    assert_eq!(
        store
            .room(room.id)
            .await
            .expect("room")
            .expect("exists")
            .last_seq,
        Seq(30)
    );

    let seqs = |ms: Vec<Message>| ms.iter().map(|m| m.seq.0).collect::<Vec<_>>();
    assert_eq!(
        seqs(
            store
                .messages_after(room.id, Seq(25), 100)
                .await
                .expect("after")
        ),
        vec![26, 27, 28, 29, 30]
    );
    assert_eq!(
        seqs(
            store
                .messages_after(room.id, Seq(0), 3)
                .await
                .expect("after")
        ),
        vec![1, 2, 3]
    );
    assert_eq!(
        seqs(
            store
                .message_page(room.id, Scope::Room, Some(Seq(5)), None, 10)
                .await
                .expect("before")
        ),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        seqs(
            store
                .message_page(room.id, Scope::Room, None, None, 3)
                .await
                .expect("newest")
        ),
        vec![28, 29, 30]
    );
    let first = store
        .messages_after(room.id, Seq(0), 1)
        .await
        .expect("first")
        .remove(0);
    assert_eq!(first.body, "m1");
    assert_eq!(first.client_id, "c1");
    assert!(first.ts > 0);
    let unicode = store
        .append(new_message(room.id, &ana, "héllo 👋 <b>&", "uni"))
        .await
        .expect("append");
    let back = store
        .messages_after(room.id, Seq(unicode.message.seq.0 - 1), 1)
        .await
        .expect("read");
    assert_eq!(back[0].body, "héllo 👋 <b>&", "text round-trips exactly");
}

/// Concurrent appends to one room, each sent twice: every retry returns its original's seq,
/// and 200 messages get seqs 1..=200 with no gap.
pub async fn concurrent_appends(store: &Arc<dyn Store>, tag: &str) {
    let ana = store
        .create_user(&format!("conc{tag}"), None, false)
        .await
        .expect("user");
    let room = store
        .create_room(&format!("conc{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        let ana = ana.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                // Every message is sent twice, as a client retry would.
                for _ in 0..2 {
                    let a = store
                        .append(new_message(room.id, &ana, "x", &format!("t{t}-{i}")))
                        .await
                        .expect("append");
                    seqs.push(a.message.seq.0);
                }
            }
            seqs
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        let seqs = t.await.expect("task");
        for pair in seqs.chunks(2) {
            assert_eq!(pair[0], pair[1], "a retry returns the original seq");
            all.insert(pair[0]);
        }
    }
    assert_eq!(
        all,
        (1..=200).collect::<HashSet<i64>>(),
        "200 distinct messages got seqs 1..=200 with no gap"
    );
}

/// A store that keeps issue order (`Store::keeps_issue_order`, which lets transports
/// pipeline sends) stores appends started one after another from one task in that order while
/// many are in flight, gapless per room, and a burst that repeats a `client_id` (of its own,
/// or of a message stored before) gets the original back as a duplicate, spending no seq.
/// (A store that does not claim it has nothing to show here.)
pub async fn pipelined_appends(store: &Arc<dyn Store>, tag: &str) {
    use futures_util::future::maybe_done;
    if !store.keeps_issue_order() {
        return;
    }
    let ana = store
        .create_user(&format!("pipe{tag}"), None, false)
        .await
        .expect("user");
    let mut rooms = Vec::new();
    for i in 0..3 {
        let room = store
            .create_room(&format!("pipe{i}{tag}"), ana.id, RoomKind::Public)
            .await
            .expect("room");
        rooms.push(room.id);
    }
    let early = store
        .append(new_message(rooms[0], &ana, "early", "pipe-early"))
        .await
        .expect("append");
    // 300 sends over three rooms; the 10th again in the middle, the early one again at the end.
    let mut burst: Vec<(RoomId, String)> = (0..300)
        .map(|i| (rooms[i % 3], format!("pipe-{i}")))
        .collect();
    burst.insert(150, (rooms[10 % 3], "pipe-10".to_string()));
    burst.push((rooms[0], "pipe-early".to_string()));
    let mut appends: Vec<_> = burst
        .iter()
        .map(|(room, client_id)| {
            Box::pin(maybe_done(
                store.append(new_message(*room, &ana, client_id, client_id)),
            ))
        })
        .collect();
    // Each takes its place in line when first polled: in issue order, all before any ends.
    for append in &mut appends {
        let _ = futures_util::poll!(append.as_mut());
    }
    let mut results = Vec::new();
    for mut append in appends {
        append.as_mut().await;
        let appended = append
            .as_mut()
            .take_output()
            .expect("an output")
            .expect("append");
        results.push(appended);
    }
    let mut next: std::collections::HashMap<RoomId, i64> = rooms.iter().map(|r| (*r, 1)).collect();
    next.insert(rooms[0], 2);
    let mut first_seq = std::collections::HashMap::new();
    for ((room, client_id), appended) in burst.iter().zip(&results) {
        assert_eq!(appended.message.room, *room);
        if let Some(seq) = first_seq.get(client_id) {
            assert!(appended.duplicate, "{client_id} again is a duplicate");
            assert_eq!(
                appended.message.seq, *seq,
                "{client_id} again: the original"
            );
            continue;
        }
        if client_id == "pipe-early" {
            assert!(
                appended.duplicate,
                "the early message resent is a duplicate"
            );
            assert_eq!(appended.message.seq, early.message.seq);
            continue;
        }
        assert!(!appended.duplicate, "{client_id} is new");
        let expected = next.get_mut(room).expect("room");
        assert_eq!(
            appended.message.seq.0, *expected,
            "{client_id}: stored in issue order, gapless"
        );
        *expected += 1;
        first_seq.insert(client_id.clone(), appended.message.seq);
    }
    for (room, count) in [(rooms[0], 101), (rooms[1], 100), (rooms[2], 100)] {
        let stored = store
            .messages_after(room, Seq(0), 1000)
            .await
            .expect("messages");
        assert_eq!(stored.len(), count, "each message stored once");
    }
}

/// Sessions keep their label and creation time and are listed newest first; a touch moves
/// `last_used_at` only of sessions last used before `stale_before`; `delete_sessions_of`
/// spares the one to keep; `set_password` replaces the hash; `expire` deletes sessions unused
/// since a time and frees the names of guests inactive since another, keeping the guest's
/// row (and the sender of their messages). Times here are in 1970, so sessions of other
/// rules on a shared database are never old enough to be touched by this rule's `expire`.
pub async fn sessions(store: &Arc<dyn Store>, tag: &str) {
    let t0: Millis = 1_000_000;
    let ana = store
        .create_user(&format!("se-ana{tag}"), Some("h1"), false)
        .await
        .expect("user");
    let hash = |n: &str| format!("se-{n}-{tag}").into_bytes();
    let (a1, a2, a3) = (hash("a1"), hash("a2"), hash("a3"));
    for (token, label, at) in [
        (&a1, "Firefox on Linux", t0),
        (&a2, "Chrome on Android", t0 + 10),
        (&a3, "", t0 + 20),
    ] {
        store
            .create_session(token, ana.id, label, at)
            .await
            .expect("session");
    }
    assert_eq!(
        store.session(&a1).await.expect("session"),
        Some(StoredSession {
            token_hash: a1.clone(),
            user: ana.clone(),
            label: "Firefox on Linux".into(),
            created_at: t0,
            last_used_at: t0,
        }),
        "a session keeps its label and times"
    );
    let listed: Vec<Vec<u8>> = store
        .sessions_of(ana.id)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.token_hash)
        .collect();
    assert_eq!(
        listed,
        vec![a3.clone(), a2.clone(), a1.clone()],
        "newest first"
    );

    store
        .touch_sessions(&[a1.clone(), a2.clone(), hash("unknown")], t0 + 100, t0 + 5)
        .await
        .expect("touch");
    let a1_now = store.session(&a1).await.expect("q").expect("a1");
    assert_eq!(
        (a1_now.created_at, a1_now.last_used_at),
        (t0, t0 + 100),
        "a stale session is touched"
    );
    let a2_now = store.session(&a2).await.expect("q").expect("a2");
    assert_eq!(a2_now.last_used_at, t0 + 10, "a recent one is not written");

    let mut deleted = store
        .delete_sessions_of(ana.id, Some(&a1))
        .await
        .expect("delete others");
    deleted.sort();
    let mut expected = vec![a2.clone(), a3.clone()];
    expected.sort();
    assert_eq!(deleted, expected, "every session but the kept one");
    assert_eq!(store.sessions_of(ana.id).await.expect("list").len(), 1);
    assert!(store.session(&a2).await.expect("q").is_none());

    store.set_password(ana.id, "h2").await.expect("password");
    let creds = store.credentials(&ana.name).await.expect("q").expect("ana");
    assert_eq!(creds.password_hash.as_deref(), Some("h2"));

    let guest = store
        .create_user(&format!("se-guest{tag}"), None, true)
        .await
        .expect("guest");
    let g1 = hash("g1");
    store
        .create_session(&g1, guest.id, "guest", t0 + 300)
        .await
        .expect("guest session");
    let room = store
        .ensure_public_room(&format!("se-room{tag}"))
        .await
        .expect("room");
    super::join(&**store, room.id, &guest).await.expect("join");
    store
        .append(new_message(room.id, &guest, "hello", "se-c1"))
        .await
        .expect("append");
    let bob = store
        .create_user(&format!("se-bob{tag}"), None, false)
        .await
        .expect("bob");
    let b1 = hash("b1");
    store
        .create_session(&b1, bob.id, "", t0 + 1000)
        .await
        .expect("bob session");

    let expired = store.expire(t0 + 200, t0 + 400).await.expect("expire");
    assert!(
        expired.sessions.contains(&(ana.id, a1.clone())),
        "a session unused since before the cut is deleted: {expired:?}"
    );
    assert!(
        expired.sessions.contains(&(guest.id, g1.clone())),
        "an expired guest's sessions are deleted: {expired:?}"
    );
    assert!(!expired.sessions.iter().any(|(u, _)| *u == bob.id));
    assert!(expired.guests.iter().any(|g| g.id == guest.id));
    assert!(store.session(&a1).await.expect("q").is_none());
    assert!(store.session(&g1).await.expect("q").is_none());
    assert!(store.session(&b1).await.expect("q").is_some());
    assert!(
        store.credentials(&guest.name).await.expect("q").is_none(),
        "an expired guest's name is free"
    );
    let history = store
        .messages_after(room.id, Seq::ZERO, 10)
        .await
        .expect("history");
    // The guest's join, then its message.
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].sender, guest, "the message keeps its sender");
    let again = store
        .create_user(&guest.name, None, true)
        .await
        .expect("the name can be taken again");
    assert_ne!(again.id, guest.id);
    let twice = store.expire(t0 + 200, t0 + 400).await.expect("expire");
    assert!(
        !twice.guests.iter().any(|g| g.id == guest.id),
        "a guest is expired once"
    );
}

/// `create_room` records its creator: `rooms_created_by` counts each user's rooms, and not
/// the rooms of `ensure_public_room`, DMs, or rooms whose creation failed.
pub async fn room_creators(store: &Arc<dyn Store>, tag: &str) {
    let ana = store
        .create_user(&format!("cr-ana{tag}"), None, false)
        .await
        .expect("user");
    let bob = store
        .create_user(&format!("cr-bob{tag}"), None, false)
        .await
        .expect("user");
    assert_eq!(store.rooms_created_by(ana.id).await.expect("count"), 0);
    for i in 0..3 {
        store
            .create_room(&format!("cr{i}{tag}"), ana.id, RoomKind::Public)
            .await
            .expect("create");
    }
    store
        .create_room(&format!("crb{tag}"), bob.id, RoomKind::Public)
        .await
        .expect("create");
    let clash = store
        .create_room(&format!("CR0{tag}"), ana.id, RoomKind::Public)
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    store
        .ensure_public_room(&format!("cr-ensured{tag}"))
        .await
        .expect("ensure");
    store.open_dm(ana.id, bob.id).await.expect("dm");
    let general = store.ensure_public_room("general").await.expect("general");
    assert!(super::join(&**store, general.id, &ana).await.expect("join"));
    assert_eq!(
        store.rooms_created_by(ana.id).await.expect("count"),
        3,
        "ana created three rooms; a failed create, a DM and a join are not creations"
    );
    assert_eq!(store.rooms_created_by(bob.id).await.expect("count"), 1);
}

/// `public_rooms_page` gives public rooms ordered by name key, after the cursor, filtered by
/// a substring of the name key, at most `limit`; no DM ever, and walking the pages visits
/// every match once.
pub async fn public_room_pages(store: &Arc<dyn Store>, tag: &str) {
    let ana = store
        .create_user(&format!("pg-ana{tag}"), None, false)
        .await
        .expect("user");
    let bob = store
        .create_user(&format!("pg-bob{tag}"), None, false)
        .await
        .expect("user");
    store.open_dm(ana.id, bob.id).await.expect("dm");
    // Names spelt in mixed case and created out of order; `_` and `.` must match literally.
    let mut expected = Vec::new();
    for i in [7, 2, 9, 0, 4, 1, 8, 3, 6, 5] {
        let name = format!("Pg{i}_X.{tag}");
        store
            .create_room(&name, ana.id, RoomKind::Public)
            .await
            .expect("create");
        expected.push(name_key(&name));
    }
    store
        .create_room(&format!("pgzother{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("create");
    store
        .create_room(&format!("pg5aX{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("create");
    expected.sort();
    let keys = |rooms: &[Room]| rooms.iter().map(|r| name_key(&r.name)).collect::<Vec<_>>();
    let filter = name_key(&format!("_x.{tag}"));
    let mut walked = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let page = store
            .public_rooms_page(&filter, &after, 4, false)
            .await
            .expect("page");
        assert!(page.len() <= 4, "at most limit: {}", page.len());
        assert!(page.iter().all(|r| r.kind == RoomKind::Public), "no DMs");
        pages += 1;
        let Some(last) = page.last() else { break };
        after = name_key(&last.name);
        walked.extend(keys(&page));
        assert!(pages < 10, "the pages never end: {walked:?}");
    }
    assert_eq!(walked, expected, "every match once, in name order");
    assert_eq!(pages, 4, "4 + 4 + 2, then an empty page");
    let one = store
        .public_rooms_page(&name_key(&format!("pg5_x.{tag}")), "", 100, false)
        .await
        .expect("one");
    assert_eq!(keys(&one), vec![name_key(&format!("pg5_x.{tag}"))]);
    let all = store
        .public_rooms_page("", "", 1000, false)
        .await
        .expect("all");
    let all_keys = keys(&all);
    let mut sorted = all_keys.clone();
    sorted.sort();
    assert_eq!(all_keys, sorted, "ordered by name key");
    assert!(all_keys.len() >= 12, "an empty filter matches every room");
    assert!(all.iter().all(|r| r.kind == RoomKind::Public), "no DMs");
    let rest = store
        .public_rooms_page("", &expected[9], 1000, false)
        .await
        .expect("rest");
    assert!(
        keys(&rest).iter().all(|k| k > &expected[9]),
        "after the cursor"
    );
    assert!(store
        .public_rooms_page("no-room-has-this", "", 10, false)
        .await
        .expect("none")
        .is_empty());
}
