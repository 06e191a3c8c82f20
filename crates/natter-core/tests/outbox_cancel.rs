//! `Outbox::next` under a transport that keeps dropping it: a WebSocket pump `select!`s
//! between the outbox and incoming requests, so while a client keeps sending, every call of
//! `next` that waits on the store is cancelled. The store read must still complete (it runs
//! on its own) and no event may be lost, or catch-up starves until the queue overflows.

use async_trait::async_trait;
use natter_core::bots::{ApiToken, Bot, NewApiToken, TokenId, TokensOf};
use natter_core::model::*;
use natter_core::session::{session, OutboxItem, SessionShared};
use natter_core::store::{Credentials, DeletedAccount, Expired, MemoryStore, Store, StoredSession};
use natter_core::{ContentHash, FileId, StoreError, StoredFile};
use std::sync::Arc;
use std::time::Duration;

/// A memory store whose message reads take `delay`.
struct SlowReads {
    inner: MemoryStore,
    delay: Duration,
}

#[async_trait]
impl Store for SlowReads {
    async fn create_user(&self, n: &str, h: Option<&str>, g: bool) -> Result<User, StoreError> {
        self.inner.create_user(n, h, g).await
    }
    async fn credentials(&self, n: &str) -> Result<Option<Credentials>, StoreError> {
        self.inner.credentials(n).await
    }
    async fn user_by_name(&self, n: &str) -> Result<Option<User>, StoreError> {
        self.inner.user_by_name(n).await
    }
    async fn create_session(
        &self,
        t: &[u8],
        u: UserId,
        l: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.inner.create_session(t, u, l, now).await
    }
    async fn session_user(&self, t: &[u8]) -> Result<Option<User>, StoreError> {
        self.inner.session_user(t).await
    }
    async fn session(&self, t: &[u8]) -> Result<Option<StoredSession>, StoreError> {
        self.inner.session(t).await
    }
    async fn touch_sessions(
        &self,
        t: &[Vec<u8>],
        now: Millis,
        s: Millis,
    ) -> Result<(), StoreError> {
        self.inner.touch_sessions(t, now, s).await
    }
    async fn sessions_of(&self, u: UserId) -> Result<Vec<StoredSession>, StoreError> {
        self.inner.sessions_of(u).await
    }
    async fn delete_session(&self, t: &[u8]) -> Result<Option<UserId>, StoreError> {
        self.inner.delete_session(t).await
    }
    async fn delete_sessions_of(
        &self,
        u: UserId,
        k: Option<&[u8]>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.delete_sessions_of(u, k).await
    }
    async fn set_password(&self, u: UserId, h: &str) -> Result<(), StoreError> {
        self.inner.set_password(u, h).await
    }
    async fn expire(&self, used: Millis, guests: Millis) -> Result<Expired, StoreError> {
        self.inner.expire(used, guests).await
    }
    async fn ensure_public_room(&self, n: &str) -> Result<Room, StoreError> {
        self.inner.ensure_public_room(n).await
    }
    async fn create_room(&self, n: &str, c: UserId, k: RoomKind) -> Result<Room, StoreError> {
        self.inner.create_room(n, c, k).await
    }
    async fn room(&self, r: RoomId) -> Result<Option<Room>, StoreError> {
        self.inner.room(r).await
    }
    async fn public_rooms(&self) -> Result<Vec<Room>, StoreError> {
        self.inner.public_rooms().await
    }
    async fn rooms_created_by(&self, u: UserId) -> Result<u64, StoreError> {
        self.inner.rooms_created_by(u).await
    }
    async fn public_rooms_page(
        &self,
        q: &str,
        after: &str,
        limit: u32,
        archived: bool,
    ) -> Result<Vec<Room>, StoreError> {
        self.inner
            .public_rooms_page(q, after, limit, archived)
            .await
    }
    async fn open_group(&self, m: &[UserId]) -> Result<(Room, bool), StoreError> {
        self.inner.open_group(m).await
    }
    async fn profile(&self, u: UserId) -> Result<Option<Profile>, StoreError> {
        self.inner.profile(u).await
    }
    async fn member_profiles(&self, r: RoomId) -> Result<Vec<(Profile, RoomRole)>, StoreError> {
        self.inner.member_profiles(r).await
    }
    async fn set_profile(
        &self,
        u: UserId,
        p: ProfileUpdate,
    ) -> Result<Option<Profile>, StoreError> {
        self.inner.set_profile(u, p).await
    }
    async fn messages_of(
        &self,
        u: UserId,
        a: MessageId,
        l: u32,
    ) -> Result<Vec<(MessageId, RoomId, Seq)>, StoreError> {
        self.inner.messages_of(u, a, l).await
    }
    async fn delete_account(&self, u: UserId) -> Result<DeletedAccount, StoreError> {
        self.inner.delete_account(u).await
    }
    async fn standing(&self, r: RoomId, u: UserId) -> Result<Standing, StoreError> {
        self.inner.standing(r, u).await
    }
    async fn invite(&self, r: RoomId, u: UserId, b: UserId, t: Millis) -> Result<bool, StoreError> {
        self.inner.invite(r, u, b, t).await
    }
    async fn remove_invite(&self, r: RoomId, u: UserId) -> Result<bool, StoreError> {
        self.inner.remove_invite(r, u).await
    }
    async fn invites_of(&self, u: UserId) -> Result<Vec<Invite>, StoreError> {
        self.inner.invites_of(u).await
    }
    async fn bans(&self, r: RoomId) -> Result<Vec<Ban>, StoreError> {
        self.inner.bans(r).await
    }
    async fn user_flags(&self, u: UserId) -> Result<Option<UserFlags>, StoreError> {
        self.inner.user_flags(u).await
    }
    async fn set_admin(&self, u: UserId, a: bool) -> Result<bool, StoreError> {
        self.inner.set_admin(u, a).await
    }
    async fn deactivate(&self, u: UserId) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.deactivate(u).await
    }
    async fn record_audit(&self, e: NewAudit) -> Result<(), StoreError> {
        self.inner.record_audit(e).await
    }
    async fn audit_page(&self, b: Option<i64>, l: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.audit_page(b, l).await
    }
    async fn rooms_of(&self, u: UserId) -> Result<Vec<(Room, Option<User>)>, StoreError> {
        self.inner.rooms_of(u).await
    }
    async fn is_member(&self, r: RoomId, u: UserId) -> Result<bool, StoreError> {
        self.inner.is_member(r, u).await
    }
    async fn mark_read(&self, r: RoomId, u: UserId, s: Seq) -> Result<Option<Seq>, StoreError> {
        self.inner.mark_read(r, u, s).await
    }
    async fn read_markers(&self, u: UserId) -> Result<Vec<(RoomId, Seq)>, StoreError> {
        self.inner.read_markers(u).await
    }
    async fn create_file(&self, f: StoredFile) -> Result<(), StoreError> {
        self.inner.create_file(f).await
    }
    async fn file(&self, id: &FileId) -> Result<Option<StoredFile>, StoreError> {
        self.inner.file(id).await
    }
    async fn files(&self, ids: &[FileId]) -> Result<Vec<StoredFile>, StoreError> {
        self.inner.files(ids).await
    }
    async fn file_bytes_of(&self, u: UserId) -> Result<u64, StoreError> {
        self.inner.file_bytes_of(u).await
    }
    async fn file_rooms(&self, id: &FileId) -> Result<Vec<RoomId>, StoreError> {
        self.inner.file_rooms(id).await
    }
    async fn sweep_files(&self, before: Millis) -> Result<Vec<ContentHash>, StoreError> {
        self.inner.sweep_files(before).await
    }
    async fn hash_in_use(&self, h: &ContentHash) -> Result<bool, StoreError> {
        self.inner.hash_in_use(h).await
    }
    async fn server_secret(&self, n: &str, c: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.inner.server_secret(n, c).await
    }
    async fn all_users(&self) -> Result<Vec<natter_core::store::UserRecord>, StoreError> {
        self.inner.all_users().await
    }
    async fn all_rooms(&self) -> Result<Vec<Room>, StoreError> {
        self.inner.all_rooms().await
    }
    async fn counts(&self) -> Result<natter_core::store::StoreCounts, StoreError> {
        self.inner.counts().await
    }
    async fn add_bot(&self, b: UserId, o: UserId, at: Millis) -> Result<(), StoreError> {
        self.inner.add_bot(b, o, at).await
    }
    async fn bots(&self, o: Option<UserId>) -> Result<Vec<Bot>, StoreError> {
        self.inner.bots(o).await
    }
    async fn bot(&self, u: UserId) -> Result<Option<Bot>, StoreError> {
        self.inner.bot(u).await
    }
    async fn remove_bot(&self, b: UserId) -> Result<bool, StoreError> {
        self.inner.remove_bot(b).await
    }
    async fn create_api_token(&self, t: NewApiToken) -> Result<ApiToken, StoreError> {
        self.inner.create_api_token(t).await
    }
    async fn api_tokens(&self, of: TokensOf) -> Result<Vec<ApiToken>, StoreError> {
        self.inner.api_tokens(of).await
    }
    async fn api_token(&self, h: &[u8]) -> Result<Option<(ApiToken, User)>, StoreError> {
        self.inner.api_token(h).await
    }
    async fn delete_api_token(&self, id: TokenId) -> Result<Option<ApiToken>, StoreError> {
        self.inner.delete_api_token(id).await
    }
    async fn touch_api_token(&self, id: TokenId, now: Millis) -> Result<(), StoreError> {
        self.inner.touch_api_token(id, now).await
    }
    async fn members(&self, r: RoomId) -> Result<Vec<User>, StoreError> {
        self.inner.members(r).await
    }
    async fn open_dm(&self, a: UserId, b: UserId) -> Result<(Room, bool), StoreError> {
        self.inner.open_dm(a, b).await
    }
    async fn append(&self, m: NewMessage) -> Result<Appended, StoreError> {
        self.inner.append(m).await
    }
    async fn messages_after(&self, r: RoomId, a: Seq, l: u32) -> Result<Vec<Message>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.messages_after(r, a, l).await
    }
    async fn message_page(
        &self,
        r: RoomId,
        s: Scope,
        b: Option<Seq>,
        a: Option<Seq>,
        l: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.inner.message_page(r, s, b, a, l).await
    }
    async fn message(&self, r: RoomId, s: Seq) -> Result<Option<Message>, StoreError> {
        self.inner.message(r, s).await
    }
    async fn change(&self, c: NewChange) -> Result<ChangeOutcome, StoreError> {
        self.inner.change(c).await
    }
    async fn versions(&self, r: RoomId, s: Seq) -> Result<Vec<Version>, StoreError> {
        self.inner.versions(r, s).await
    }
    async fn member_states(
        &self,
        u: UserId,
        r: Option<RoomId>,
    ) -> Result<Vec<MemberState>, StoreError> {
        self.inner.member_states(u, r).await
    }
    async fn search(&self, q: &SearchQuery) -> Result<Vec<Message>, StoreError> {
        self.inner.search(q).await
    }
    async fn set_notify(&self, r: RoomId, u: UserId, l: NotifyLevel) -> Result<bool, StoreError> {
        self.inner.set_notify(r, u, l).await
    }
}

/// Calls `next` with a deadline shorter than a store read, as a busy transport would, until
/// it yields an event; returns its seq.
async fn next_seq_impatiently(outbox: &mut natter_core::Outbox) -> i64 {
    for _ in 0..200 {
        if let Ok(item) = tokio::time::timeout(Duration::from_millis(5), outbox.next()).await {
            match item {
                OutboxItem::Event(e) => return e.room_seq.expect("a message").1 .0,
                OutboxItem::Close(code) => panic!("closed with {code}"),
                OutboxItem::Keepalive => panic!("no keepalive sweep runs here"),
            }
        }
    }
    panic!("the outbox made no progress while being cancelled");
}

#[tokio::test]
async fn catch_up_and_gap_fills_progress_when_next_is_cancelled() {
    let slow = Arc::new(SlowReads {
        inner: MemoryStore::new(),
        delay: Duration::from_millis(30),
    });
    let ana = slow.create_user("ana", None, false).await.expect("user");
    let room = slow
        .create_room("r", ana.id, RoomKind::Public)
        .await
        .expect("room")
        .id;
    let mut stored = Vec::new();
    for i in 1..=6 {
        let new = NewMessage {
            room,
            sender: ana.clone(),
            body: format!("m{i}"),
            client_id: format!("c{i}"),
            ts: 0,
            ..NewMessage::default()
        };
        stored.push(slow.append(new).await.expect("append").message);
    }
    let store: Arc<dyn Store> = slow;
    let (handle, mut outbox) = session(
        ana,
        [0; 32],
        false,
        [room],
        16,
        SessionShared::new(store, 16),
    );
    // Resume from 2 (catch-up reads 3..=6) ...
    outbox.resume_from(room, Seq(2));
    for want in 3..=6 {
        assert_eq!(next_seq_impatiently(&mut outbox).await, want);
    }
    // ... then a live message arrives ahead of a gap: it is stashed, not lost, while the gap
    // is read.
    outbox.track(room, Seq(1));
    handle.deliver(natter_core::EncodedEvent::message(&stored[3]));
    for want in 2..=4 {
        assert_eq!(next_seq_impatiently(&mut outbox).await, want);
    }
}

/// Several producers push into one session from other threads while the consumer keeps
/// cancelling `next` (a `select!` against a timer that fires all the time). Every event must
/// come out, none twice: a wake-up lost between "queue empty" and "wait" would strand events
/// until the next push, and the last ones forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_are_never_stranded_by_a_cancelled_wait() {
    const PRODUCERS: usize = 4;
    const EACH: usize = 5_000;
    let user = User {
        id: UserId(1),
        name: "ana".into(),
        guest: false,
        bot: false,
    };
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (handle, mut outbox) = session(
        user,
        [0; 32],
        false,
        [],
        PRODUCERS * EACH,
        SessionShared::new(store, 16),
    );
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let handle = handle.clone();
        producers.push(tokio::spawn(async move {
            for n in 0..EACH {
                let id = (p * EACH + n) as u64;
                handle.deliver(natter_core::EncodedEvent::new("typing", &id));
                if n % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let mut seen = vec![false; PRODUCERS * EACH];
    let mut received = 0;
    let mut ticker = tokio::time::interval(Duration::from_micros(50));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while received < PRODUCERS * EACH {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stranded: {received} of {} events arrived",
            PRODUCERS * EACH
        );
        tokio::select! {
            item = outbox.next() => match item {
                OutboxItem::Event(event) => {
                    let id: usize = serde_json::from_slice(&event.data).expect("id");
                    assert!(!seen[id], "event {id} delivered twice");
                    seen[id] = true;
                    received += 1;
                }
                OutboxItem::Close(code) => panic!("closed with {code}"),
                OutboxItem::Keepalive => panic!("no keepalive sweep runs here"),
            },
            _ = ticker.tick() => {}
        }
    }
    for p in producers {
        p.await.expect("producer");
    }
    assert!(outbox.try_next().is_none());

    // Ping-pong with nothing else to wake the consumer: each push lands while it waits (or
    // is about to), so every one must wake it.
    let (got_tx, mut got_rx) = tokio::sync::mpsc::channel::<()>(1);
    let pusher = handle.clone();
    let ping = tokio::spawn(async move {
        for n in 0..2_000u64 {
            pusher.deliver(natter_core::EncodedEvent::new("typing", &n));
            if got_rx.recv().await.is_none() {
                return;
            }
        }
    });
    for n in 0..2_000u64 {
        let item = tokio::time::timeout(Duration::from_secs(5), outbox.next())
            .await
            .unwrap_or_else(|_| panic!("push {n} did not wake the waiting outbox"));
        match item {
            OutboxItem::Event(event) => {
                let got: u64 = serde_json::from_slice(&event.data).expect("n");
                assert_eq!(got, n);
            }
            OutboxItem::Close(code) => panic!("closed with {code}"),
            OutboxItem::Keepalive => panic!("no keepalive sweep runs here"),
        }
        got_tx.send(()).await.expect("pinger alive");
    }
    ping.await.expect("pinger");
}
