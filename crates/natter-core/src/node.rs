//! `Node`: the chat service of one server process. It takes requests from connections (any
//! transport), applies the chat's rules against the `Store`, publishes what happened on the
//! `Broker`, and hands what the broker delivers to its local `Hub`.
//!
//! `Connection` is one client connection's view of the node: authentication, the rate
//! limit, and request dispatch. Transports own a `Connection` and pump its `Outbox`.

use crate::accounts;
use crate::broker::{Broker, BusEvent, BusHandler, Topic};
use crate::config::CoreConfig;
use crate::error::{ChatError, ErrorCode, StoreError};
use crate::hub::{Hub, Interest};
use crate::model::*;
use crate::protocol::*;
use crate::ratelimit::TokenBucket;
use crate::session::{self, Outbound, Outbox, SessionHandle, SessionShared};
use crate::store::Store;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A signed-in account: the token to give the client and who it is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignedIn {
    pub token: String,
    pub user: User,
}

/// One typist in one room.
struct TypingLease {
    /// When the last `active: true` was forwarded.
    forwarded: Instant,
    /// When the state ends without a new `active: true`.
    expires: Instant,
    user: User,
}

pub struct Node {
    store: Arc<dyn Store>,
    /// What its sessions share: the store and the presence feed.
    sessions: Arc<SessionShared>,
    broker: Arc<dyn Broker>,
    hub: Arc<Hub>,
    config: CoreConfig,
    general: RoomId,
    /// Local connection count per user (presence is published on 0 <-> 1).
    local_presence: Mutex<HashMap<UserId, usize>>,
    typing: Mutex<HashMap<(RoomId, UserId), TypingLease>>,
    shutdown: CancellationToken,
    /// This node, for work it hands to tasks of its own (resync after a broker outage).
    me: Weak<Node>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Node {
    /// Builds a node over a store and a broker, and starts its background tasks.
    pub async fn start(
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        config: CoreConfig,
    ) -> Result<Arc<Node>, StoreError> {
        let general = store.ensure_public_room("general").await?.id;
        let node = Arc::new_cyclic(|me| Node {
            hub: Hub::with_store(config.gap_wait, store.clone()),
            sessions: SessionShared::with_broker(
                store.clone(),
                broker.clone(),
                config.presence_backlog,
            ),
            store,
            broker,
            config,
            general,
            local_presence: Mutex::default(),
            typing: Mutex::default(),
            shutdown: CancellationToken::new(),
            me: me.clone(),
        });
        let handler: Arc<dyn BusHandler> = node.clone();
        node.broker.set_handler(Arc::downgrade(&handler));
        node.broker.subscribe(Topic::Presence);
        node.spawn_typing_sweeper();
        node.spawn_keepalive();
        Ok(node)
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Number of open sessions on this node.
    pub fn session_count(&self) -> usize {
        self.hub.session_count()
    }

    /// Stops background tasks and closes every session with `code` (1001 on shutdown).
    pub fn close_all(&self, code: u16) {
        self.shutdown.cancel();
        for session in self.hub.all_sessions() {
            session.close(code);
        }
    }

    // ----- accounts -------------------------------------------------------------------

    pub async fn register(&self, username: &str, password: &str) -> Result<SignedIn, ChatError> {
        accounts::check_username(username)?;
        accounts::check_password(password)?;
        let hash = accounts::hash_password(password.to_string()).await?;
        let user = self.create_account(username, Some(&hash), false).await?;
        self.sign_in(user).await
    }

    pub async fn register_guest(&self, nickname: &str) -> Result<SignedIn, ChatError> {
        if !self.config.allow_guests {
            return Err(ChatError::new(
                ErrorCode::GuestsDisabled,
                "this server does not allow guests",
            ));
        }
        accounts::check_username(nickname)?;
        let user = self.create_account(nickname, None, true).await?;
        self.sign_in(user).await
    }

    async fn create_account(
        &self,
        name: &str,
        hash: Option<&str>,
        guest: bool,
    ) -> Result<User, ChatError> {
        let user = match self.store.create_user(name, hash, guest).await {
            Ok(user) => user,
            Err(StoreError::Conflict(_)) => {
                return Err(ChatError::new(ErrorCode::NameTaken, "that name is taken"))
            }
            Err(e) => return Err(e.into()),
        };
        self.add_member(self.general, &user).await?;
        Ok(user)
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<SignedIn, ChatError> {
        let creds = self.store.credentials(username).await?;
        let (user, hash) = match creds {
            Some(c) => (Some(c.user), c.password_hash),
            None => (None, None),
        };
        let ok = accounts::verify_password(password.to_string(), hash).await;
        match user {
            Some(user) if ok => self.sign_in(user).await,
            _ => Err(ChatError::new(
                ErrorCode::InvalidCredentials,
                "wrong username or password",
            )),
        }
    }

    async fn sign_in(&self, user: User) -> Result<SignedIn, ChatError> {
        let token = accounts::new_token();
        self.store
            .create_session(&accounts::token_hash(&token), user.id)
            .await?;
        Ok(SignedIn { token, user })
    }

    /// Who a token belongs to.
    pub async fn user_for_token(&self, token: &str) -> Result<User, ChatError> {
        self.store
            .session_user(&accounts::token_hash(token))
            .await?
            .ok_or_else(|| ChatError::new(ErrorCode::Unauthenticated, "invalid or revoked token"))
    }

    /// Revokes a token and closes the connections that used it.
    pub async fn logout(&self, token: &str) -> Result<(), ChatError> {
        let hash = accounts::token_hash(token);
        let Some(user) = self.store.delete_session(&hash).await? else {
            return Err(ChatError::new(
                ErrorCode::Unauthenticated,
                "invalid or revoked token",
            ));
        };
        self.publish(BusEvent::SessionRevoked {
            user,
            token_hash: accounts::to_hex(&hash),
        })
        .await;
        Ok(())
    }

    // ----- views ----------------------------------------------------------------------

    fn view(room: Room, joined: bool, peer: Option<User>) -> RoomView {
        RoomView {
            id: room.id,
            name: room.name,
            kind: room.kind,
            member_count: room.member_count,
            last_seq: room.last_seq,
            joined,
            peer,
        }
    }

    async fn my_rooms(&self, user: UserId) -> Result<Vec<RoomView>, ChatError> {
        Ok(self
            .store
            .rooms_of(user)
            .await?
            .into_iter()
            .map(|(room, peer)| Self::view(room, true, peer))
            .collect())
    }

    /// The view of a room for `viewer`, or `unknown_room` if it does not exist or is a DM
    /// the viewer is not part of.
    async fn visible_room(&self, room: RoomId, viewer: UserId) -> Result<RoomView, ChatError> {
        let Some(found) = self.store.room(room).await? else {
            return Err(ChatError::unknown_room(room));
        };
        match found.kind {
            RoomKind::Public => {
                let joined = self.store.is_member(room, viewer).await?;
                Ok(Self::view(found, joined, None))
            }
            RoomKind::Dm => self
                .my_rooms(viewer)
                .await?
                .into_iter()
                .find(|r| r.id == room)
                .ok_or_else(|| ChatError::unknown_room(room)),
        }
    }

    // ----- publishing -----------------------------------------------------------------

    async fn publish(&self, event: BusEvent) {
        if let Err(e) = self.broker.publish(event).await {
            tracing::error!(error = %e, "publish failed");
        }
    }

    /// Adds a member in the store and tells the room and the user's connections.
    async fn add_member(&self, room: RoomId, user: &User) -> Result<RoomView, ChatError> {
        let newly = self.store.join(room, user.id).await?;
        let view = self.visible_room(room, user.id).await?;
        if newly {
            self.publish(BusEvent::RoomAdded {
                user: user.id,
                room: view.clone(),
            })
            .await;
            self.publish(BusEvent::MemberJoined {
                room,
                user: user.clone(),
                member_count: view.member_count,
            })
            .await;
        }
        Ok(view)
    }

    // ----- connections ----------------------------------------------------------------

    /// Authenticates a new connection: registers its session, starts its resume, and returns
    /// the `auth` reply data and the session's outbox.
    async fn authenticate(
        self: &Arc<Self>,
        args: AuthArgs,
    ) -> Result<(Arc<SessionHandle>, Outbox, Value), ChatError> {
        let user = self.user_for_token(&args.token).await?;
        let rooms = self.my_rooms(user.id).await?;
        let (handle, mut outbox) = session::session(
            user.clone(),
            accounts::token_hash(&args.token),
            args.presence,
            rooms.iter().map(|r| r.id),
            self.config.outbound_queue,
            self.sessions.clone(),
        );
        let mut reset = Vec::new();
        for room in &rooms {
            outbox.track(room.id, room.last_seq);
            if let Some(seen) = args.resume.get(&room.id.to_string()) {
                // A client cannot have seen more than exists; never skip what comes next.
                let seen = (*seen).clamp(0, room.last_seq.0);
                if room.last_seq.0 - seen
                    > i64::try_from(self.config.resume_limit).unwrap_or(i64::MAX)
                {
                    reset.push(room.id);
                } else {
                    outbox.resume_from(room.id, Seq(seen));
                }
            }
        }
        let interest = self.hub.add_session(&handle);
        self.apply_interest(user.id, interest);
        let first_here = {
            let mut counts = lock(&self.local_presence);
            let n = counts.entry(user.id).or_insert(0);
            *n += 1;
            *n == 1
        };
        let data = match self.welcome(&user, rooms, reset, first_here).await {
            Ok(data) => data,
            Err(e) => {
                // Undo the registration: the connection never got its session.
                self.end_session(handle);
                return Err(e);
            }
        };
        tracing::debug!(user = %user.name, session = handle.id.0, "authenticated");
        Ok((handle, outbox, data))
    }

    /// Announces the user online (if this is their first connection anywhere) and builds the
    /// `auth` reply.
    async fn welcome(
        &self,
        user: &User,
        rooms: Vec<RoomView>,
        reset: Vec<RoomId>,
        first_here: bool,
    ) -> Result<Value, ChatError> {
        if first_here && self.broker.presence_up(user).await? {
            self.publish(BusEvent::Presence {
                user: user.clone(),
                online: true,
            })
            .await;
        }
        let online = self.broker.online_users().await?;
        let read: serde_json::Map<String, Value> = self
            .store
            .read_markers(user.id)
            .await?
            .into_iter()
            .map(|(room, seq)| (room.0.to_string(), json!(seq)))
            .collect();
        Ok(json!({
            "user": user,
            "rooms": rooms,
            "read": read,
            "reset": reset,
            "online": online,
            "limits": {
                "max_message_chars": self.config.max_message_chars,
                "max_frame_bytes": self.config.max_frame_bytes,
                "rate_per_sec": self.config.rate_per_sec,
                "rate_burst": self.config.rate_burst,
            },
        }))
    }

    fn apply_interest(&self, user: UserId, interest: Interest) {
        if interest.user_gained {
            self.broker.subscribe(Topic::User(user));
        }
        if interest.user_lost {
            self.broker.unsubscribe(Topic::User(user));
        }
        for room in interest.rooms_gained {
            self.broker.subscribe(Topic::Room(room));
        }
        for room in interest.rooms_lost {
            self.broker.unsubscribe(Topic::Room(room));
        }
    }

    /// A connection ended: remove its session; the user goes offline with their last one.
    fn end_session(self: &Arc<Self>, session: Arc<SessionHandle>) {
        let interest = self.hub.remove_session(&session);
        self.apply_interest(session.user.id, interest);
        let last_here = {
            let mut counts = lock(&self.local_presence);
            match counts.get_mut(&session.user.id) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    counts.remove(&session.user.id);
                    true
                }
                None => false,
            }
        };
        if !last_here {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let node = self.clone();
        runtime.spawn(async move {
            let user = session.user.clone();
            node.end_typing_of(user.id).await;
            // A new connection may have come in meanwhile.
            if lock(&node.local_presence).contains_key(&user.id) {
                return;
            }
            match node.broker.presence_down(&user).await {
                Ok(true) => {
                    node.publish(BusEvent::Presence {
                        user,
                        online: false,
                    })
                    .await
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "presence_down failed"),
            }
        });
    }

    /// Checks that the session may use `room` for messages, history and typing.
    async fn check_member(&self, session: &SessionHandle, room: RoomId) -> Result<(), ChatError> {
        if session.is_member(room) {
            return Ok(());
        }
        match self.store.room(room).await? {
            Some(r) if r.kind == RoomKind::Public => Err(ChatError::not_member(room)),
            _ => Err(ChatError::unknown_room(room)),
        }
    }

    // ----- requests -------------------------------------------------------------------

    async fn dispatch(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        request: Request,
    ) -> Result<Value, ChatError> {
        match request {
            Request::Auth(_) => Err(ChatError::new(
                ErrorCode::AlreadyAuthenticated,
                "this connection is already authenticated",
            )),
            Request::Ping => Ok(json!({})),
            Request::PresenceList => Ok(json!({ "online": self.broker.online_users().await? })),
            Request::RoomList => self.room_list(session).await,
            Request::RoomCreate(a) => self.room_create(session, &a.name).await,
            Request::RoomJoin(a) => self.room_join(session, a.room).await,
            Request::RoomLeave(a) => self.room_leave(session, a.room).await,
            Request::RoomMembers(a) => self.room_members(session, a.room).await,
            Request::RoomRead(a) => self.room_read(session, a.room, a.seq).await,
            Request::DmOpen(a) => self.dm_open(session, &a.user).await,
            Request::MessageSend(a) => self.send(session, a).await,
            Request::History(a) => self.history(session, a).await,
            Request::Typing(a) => self.typing(session, a).await,
        }
    }

    async fn room_list(&self, session: &SessionHandle) -> Result<Value, ChatError> {
        let me = session.user.id;
        let mine = self.my_rooms(me).await?;
        let mut rooms: Vec<RoomView> = self
            .store
            .public_rooms()
            .await?
            .into_iter()
            .map(|r| {
                let joined = mine.iter().any(|m| m.id == r.id);
                Self::view(r, joined, None)
            })
            .collect();
        rooms.extend(mine.into_iter().filter(|r| r.kind == RoomKind::Dm));
        Ok(json!({ "rooms": rooms }))
    }

    async fn room_create(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        name: &str,
    ) -> Result<Value, ChatError> {
        if !accounts::valid_name(name) {
            return Err(ChatError::new(
                ErrorCode::InvalidName,
                "room names are 1-32 characters of letters, digits, _ - .",
            ));
        }
        let room = match self.store.create_room(name, session.user.id).await {
            Ok(room) => room,
            Err(StoreError::Conflict(_)) => {
                return Err(ChatError::new(
                    ErrorCode::NameTaken,
                    "a room of that name exists",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let view = Self::view(room, true, None);
        self.enter_room(session, &view);
        self.publish(BusEvent::RoomAdded {
            user: session.user.id,
            room: view.clone(),
        })
        .await;
        self.publish(BusEvent::MemberJoined {
            room: view.id,
            user: session.user.clone(),
            member_count: view.member_count,
        })
        .await;
        Ok(json!({ "room": view }))
    }

    /// Makes this session a live member of a room it just joined.
    fn enter_room(&self, session: &Arc<SessionHandle>, view: &RoomView) {
        if session.is_member(view.id) {
            return;
        }
        session.push(Outbound::Track(view.id, view.last_seq));
        if self.hub.join_room(session, view.id) {
            self.broker.subscribe(Topic::Room(view.id));
        }
    }

    async fn room_join(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        room: RoomId,
    ) -> Result<Value, ChatError> {
        let view = self.visible_room(room, session.user.id).await?;
        if view.kind == RoomKind::Dm {
            self.enter_room(session, &view);
            return Ok(json!({ "room": view }));
        }
        let view = self.add_member(room, &session.user).await?;
        self.enter_room(session, &view);
        Ok(json!({ "room": view }))
    }

    async fn room_leave(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        room: RoomId,
    ) -> Result<Value, ChatError> {
        let view = self.visible_room(room, session.user.id).await?;
        if view.kind == RoomKind::Dm {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "a direct message cannot be left",
            ));
        }
        if !self.store.leave(room, session.user.id).await? {
            return Err(ChatError::not_member(room));
        }
        let count = self.store.room(room).await?.map_or(0, |r| r.member_count);
        self.end_typing(room, &session.user).await;
        self.publish(BusEvent::MemberLeft {
            room,
            user: session.user.clone(),
            member_count: count,
        })
        .await;
        self.publish(BusEvent::RoomRemoved {
            user: session.user.id,
            room,
        })
        .await;
        // The `room_removed` event (above) takes this connection out of the room; doing it
        // here already would make it miss its own `member_left` on a networked broker.
        Ok(json!({}))
    }

    /// Moves the user's read marker in `room` forward and tells all their connections.
    async fn room_read(
        &self,
        session: &SessionHandle,
        room: RoomId,
        seq: Seq,
    ) -> Result<Value, ChatError> {
        self.check_member(session, room).await?;
        let Some(read_seq) = self.store.mark_read(room, session.user.id, seq).await? else {
            return Err(ChatError::not_member(room));
        };
        self.publish(BusEvent::RoomRead {
            user: session.user.id,
            room,
            read_seq,
        })
        .await;
        Ok(json!(RoomReadEvent { room, read_seq }))
    }

    async fn room_members(
        &self,
        session: &SessionHandle,
        room: RoomId,
    ) -> Result<Value, ChatError> {
        self.visible_room(room, session.user.id).await?;
        let members = self.store.members(room).await?;
        let online: std::collections::HashSet<UserId> = self
            .broker
            .online_users()
            .await?
            .into_iter()
            .map(|u| u.id)
            .collect();
        let members: Vec<MemberView> = members
            .into_iter()
            .map(|user| MemberView {
                online: online.contains(&user.id),
                user,
            })
            .collect();
        Ok(json!({ "members": members }))
    }

    async fn dm_open(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        name: &str,
    ) -> Result<Value, ChatError> {
        let Some(peer) = self.store.user_by_name(name).await? else {
            return Err(ChatError::new(
                ErrorCode::UnknownUser,
                "no user of that name",
            ));
        };
        let me = session.user.clone();
        if peer.id == me.id {
            return Err(ChatError::invalid("a direct message needs another person"));
        }
        let (room, created) = self.store.open_dm(me.id, peer.id).await?;
        let mine = Self::view(room.clone(), true, Some(peer.clone()));
        self.enter_room(session, &mine);
        if created {
            let theirs = Self::view(room, true, Some(me.clone()));
            self.publish(BusEvent::RoomAdded {
                user: peer.id,
                room: theirs,
            })
            .await;
            self.publish(BusEvent::RoomAdded {
                user: me.id,
                room: mine.clone(),
            })
            .await;
        }
        Ok(json!({ "room": mine }))
    }

    async fn send(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        args: SendArgs,
    ) -> Result<Value, ChatError> {
        if args.body.trim().is_empty() {
            return Err(ChatError::new(
                ErrorCode::EmptyMessage,
                "a message cannot be empty",
            ));
        }
        let chars = args.body.chars().count();
        if chars > self.config.max_message_chars {
            return Err(ChatError::new(
                ErrorCode::MessageTooLong,
                format!(
                    "a message is at most {} characters (this one has {chars})",
                    self.config.max_message_chars
                ),
            ));
        }
        let id_chars = args.client_id.chars().count();
        if id_chars == 0 || id_chars > MAX_CLIENT_ID_CHARS {
            return Err(ChatError::invalid("`client_id` must be 1 to 64 characters"));
        }
        self.check_member(session, args.room).await?;
        let appended = self
            .store
            .append(NewMessage {
                room: args.room,
                sender: session.user.clone(),
                body: args.body,
                client_id: args.client_id,
                ts: now_millis(),
            })
            .await?;
        // A duplicate is published again: the first attempt may have been stored by a node
        // that died before publishing it. Sessions that have it already skip it by seq.
        self.publish(BusEvent::Message {
            message: appended.message.clone(),
        })
        .await;
        if !appended.duplicate {
            self.end_typing(args.room, &session.user).await;
        }
        Ok(json!({ "message": appended.message, "duplicate": appended.duplicate }))
    }

    async fn history(
        &self,
        session: &SessionHandle,
        args: HistoryArgs,
    ) -> Result<Value, ChatError> {
        let limit = args.limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
        if limit == 0 || limit > MAX_HISTORY_LIMIT {
            return Err(ChatError::invalid("`limit` must be 1 to 100"));
        }
        if args.before.is_some() && args.after.is_some() {
            return Err(ChatError::invalid(
                "give at most one of `before` and `after`",
            ));
        }
        self.check_member(session, args.room).await?;
        let mut messages = match args.after {
            Some(after) => {
                self.store
                    .messages_after(args.room, after, limit + 1)
                    .await?
            }
            None => {
                self.store
                    .messages_before(args.room, args.before, limit + 1)
                    .await?
            }
        };
        let has_more = messages.len() > limit as usize;
        if has_more {
            if args.after.is_some() {
                messages.truncate(limit as usize);
            } else {
                messages.remove(0);
            }
        }
        Ok(json!({ "messages": messages, "has_more": has_more }))
    }

    // ----- typing ---------------------------------------------------------------------

    async fn typing(&self, session: &SessionHandle, args: TypingArgs) -> Result<Value, ChatError> {
        self.check_member(session, args.room).await?;
        let user = session.user.clone();
        if !args.active {
            self.end_typing(args.room, &user).await;
            return Ok(json!({}));
        }
        let now = Instant::now();
        let forward = {
            let mut typing = lock(&self.typing);
            let key = (args.room, user.id);
            let expires = now + self.config.typing_expiry;
            match typing.get_mut(&key) {
                Some(lease)
                    if now.duration_since(lease.forwarded) < self.config.typing_throttle =>
                {
                    lease.expires = expires;
                    false
                }
                _ => {
                    typing.insert(
                        key,
                        TypingLease {
                            forwarded: now,
                            expires,
                            user: user.clone(),
                        },
                    );
                    true
                }
            }
        };
        if forward {
            self.publish(BusEvent::Typing {
                room: args.room,
                user,
                active: true,
            })
            .await;
        }
        Ok(json!({}))
    }

    /// Ends a typing state if there is one, telling the room.
    async fn end_typing(&self, room: RoomId, user: &User) {
        let was = lock(&self.typing).remove(&(room, user.id)).is_some();
        if was {
            self.publish(BusEvent::Typing {
                room,
                user: user.clone(),
                active: false,
            })
            .await;
        }
    }

    async fn end_typing_of(&self, user: UserId) {
        let rooms: Vec<(RoomId, User)> = {
            let typing = lock(&self.typing);
            typing
                .iter()
                .filter(|((_, u), _)| *u == user)
                .map(|((r, _), lease)| (*r, lease.user.clone()))
                .collect()
        };
        for (room, user) in rooms {
            self.end_typing(room, &user).await;
        }
    }

    /// Every `keepalive`, asks each local session's transport to check on its connection.
    /// One task for the node, where a timer per connection would cost every idle connection a
    /// timer entry.
    fn spawn_keepalive(self: &Arc<Self>) {
        let node = Arc::downgrade(self);
        let stop = self.shutdown.clone();
        let period = self.config.keepalive.max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(node) = node.upgrade() else { return };
                for session in node.hub.all_sessions() {
                    session.keepalive();
                }
            }
        });
    }

    fn spawn_typing_sweeper(self: &Arc<Self>) {
        let node = Arc::downgrade(self);
        let stop = self.shutdown.clone();
        let period = (self.config.typing_expiry / 8).max(Duration::from_millis(20));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(node) = node.upgrade() else { return };
                let now = Instant::now();
                let expired: Vec<(RoomId, User)> = {
                    let mut typing = lock(&node.typing);
                    let keys: Vec<(RoomId, UserId)> = typing
                        .iter()
                        .filter(|(_, lease)| lease.expires <= now)
                        .map(|(k, _)| *k)
                        .collect();
                    keys.into_iter()
                        .filter_map(|k| typing.remove(&k).map(|lease| (k.0, lease.user)))
                        .collect()
                };
                for (room, user) in expired {
                    node.publish(BusEvent::Typing {
                        room,
                        user,
                        active: false,
                    })
                    .await;
                }
            }
        });
    }
}

/// The most messages re-read from the store and delivered through the hub when the broker
/// may have missed some. More than that would go into every session's bounded queue at once
/// (and overflow it): then each session catches up by itself instead.
const RESYNC_THROUGH_HUB: u32 = 200;

impl Node {
    /// Re-delivers a room's stored messages after `after`: a few through the hub (in seq
    /// order; sessions skip what they have); a longer backlog by each session catching up
    /// from its own watermark, page by page as it writes, outside its queue.
    async fn redeliver_from_store(hub: Arc<Hub>, store: Arc<dyn Store>, room: RoomId, after: Seq) {
        let page = match store.messages_after(room, after, RESYNC_THROUGH_HUB).await {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(room = room.0, error = %e, "resync read failed");
                return;
            }
        };
        if page.len() < RESYNC_THROUGH_HUB as usize {
            for message in &page {
                hub.deliver_message(EncodedEvent::message(message));
            }
        } else {
            tracing::info!(
                room = room.0,
                after = after.0,
                "long backlog after a broker outage; sessions catch up from the store"
            );
            hub.catch_up_room(room);
        }
    }
}

impl Node {
    /// After a broker outage: per-user events of that time are lost, so each local user's
    /// rooms, read markers and tokens are read back from the store, and what changed is
    /// applied to their connections here as the lost events would have been.
    async fn resync_users(self: Arc<Self>) {
        let mut by_user: HashMap<UserId, Vec<Arc<SessionHandle>>> = HashMap::new();
        for session in self.hub.all_sessions() {
            by_user.entry(session.user.id).or_default().push(session);
        }
        for (user, sessions) in by_user {
            if let Err(e) = self.resync_user(user, &sessions).await {
                tracing::warn!(user = user.0, error = %e, "resync after broker outage failed");
            }
        }
    }

    async fn resync_user(
        &self,
        user: UserId,
        sessions: &[Arc<SessionHandle>],
    ) -> Result<(), ChatError> {
        for session in sessions {
            if self
                .store
                .session_user(&session.token_hash)
                .await?
                .is_none()
            {
                session.close(close::REVOKED);
            }
        }
        let rooms = self.my_rooms(user).await?;
        let now: HashSet<RoomId> = rooms.iter().map(|r| r.id).collect();
        let mut before: Vec<RoomId> = sessions.iter().flat_map(|s| s.rooms()).collect();
        before.sort_unstable();
        before.dedup();
        for room in before.into_iter().filter(|r| !now.contains(r)) {
            self.on_event(BusEvent::RoomRemoved { user, room });
        }
        for room in rooms {
            if sessions.iter().any(|s| !s.is_member(room.id)) {
                self.on_event(BusEvent::RoomAdded { user, room });
            }
        }
        for (room, read_seq) in self.store.read_markers(user).await? {
            self.on_event(BusEvent::RoomRead {
                user,
                room,
                read_seq,
            });
        }
        Ok(())
    }
}

impl BusHandler for Node {
    fn on_reconnected(&self) {
        let (Ok(runtime), Some(node)) = (tokio::runtime::Handle::try_current(), self.me.upgrade())
        else {
            return;
        };
        runtime.spawn(node.resync_users());
    }

    fn on_missed(&self, rooms: Vec<RoomId>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut redeliver = Vec::new();
        for room in rooms {
            match self.hub.room_state(room) {
                // Nothing fanned out here yet: each session catches up from its own watermark.
                (None, sessions) => {
                    for session in sessions {
                        session.push(Outbound::CatchUp(room));
                    }
                }
                (Some(delivered), _) => redeliver.push((room, delivered)),
            }
        }
        if redeliver.is_empty() {
            return;
        }
        // One room after another: after a Redis outage every room asks at once, and the
        // store's pool should not be flooded.
        let (hub, store) = (self.hub.clone(), self.store.clone());
        runtime.spawn(async move {
            for (room, delivered) in redeliver {
                Self::redeliver_from_store(hub.clone(), store.clone(), room, delivered).await;
            }
        });
    }

    fn on_event(&self, event: BusEvent) {
        match event {
            BusEvent::Message { message } => {
                self.hub.deliver_message(EncodedEvent::message(&message));
            }
            BusEvent::MemberJoined {
                room,
                user,
                member_count,
            } => {
                let event = EncodedEvent::new(
                    "member_joined",
                    &MemberEvent {
                        room,
                        user,
                        member_count,
                    },
                );
                self.hub.to_room(room, &event, None);
            }
            BusEvent::MemberLeft {
                room,
                user,
                member_count,
            } => {
                let event = EncodedEvent::new(
                    "member_left",
                    &MemberEvent {
                        room,
                        user,
                        member_count,
                    },
                );
                self.hub.to_room(room, &event, None);
            }
            BusEvent::Typing { room, user, active } => {
                let except = Some(user.id);
                let event = EncodedEvent::new("typing", &TypingEvent { room, user, active });
                self.hub.to_room(room, &event, except);
            }
            BusEvent::Presence { user, online } => {
                let event = EncodedEvent::new("presence", &PresenceEvent { user, online });
                self.sessions.presence.push(event);
                self.hub.presence_changed();
            }
            BusEvent::RoomAdded { user, room } => {
                let sessions = self.hub.sessions_of(user);
                if sessions.is_empty() {
                    return;
                }
                let event = EncodedEvent::new("room_added", &RoomAddedEvent { room: room.clone() });
                for session in sessions {
                    let new = !session.is_member(room.id);
                    if new {
                        session.push(Outbound::Track(room.id, room.last_seq));
                        if self.hub.join_room(&session, room.id) {
                            self.broker.subscribe(Topic::Room(room.id));
                        }
                    }
                    session.deliver(event.clone());
                }
            }
            BusEvent::RoomRead {
                user,
                room,
                read_seq,
            } => {
                if self.hub.has_user(user) {
                    let event = EncodedEvent::new("room_read", &RoomReadEvent { room, read_seq });
                    self.hub.to_user(user, &event);
                }
            }
            BusEvent::RoomRemoved { user, room } => {
                let event = EncodedEvent::new("room_removed", &RoomRemovedEvent { room });
                for session in self.hub.sessions_of(user) {
                    if self.hub.leave_room(&session, room) {
                        self.broker.unsubscribe(Topic::Room(room));
                    }
                    session.deliver(event.clone());
                }
            }
            BusEvent::SessionRevoked { user, token_hash } => {
                for session in self.hub.sessions_of(user) {
                    if accounts::to_hex(&session.token_hash) == token_hash {
                        session.close(close::REVOKED);
                    }
                }
            }
        }
    }
}

/// One client connection, from before authentication to its end. Dropping it ends the
/// session (presence, typing, hub membership).
pub struct Connection {
    node: Arc<Node>,
    session: Option<Arc<SessionHandle>>,
    bucket: TokenBucket,
}

impl Connection {
    pub fn new(node: Arc<Node>) -> Connection {
        let bucket = TokenBucket::new(node.config.rate_burst);
        Connection {
            node,
            session: None,
            bucket,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.session.is_some()
    }

    pub fn user(&self) -> Option<&User> {
        self.session.as_ref().map(|s| &s.user)
    }

    /// Authenticates with `auth` arguments; on success returns the reply data and the
    /// session's outbox, which the transport pumps from then on.
    pub async fn authenticate(&mut self, args: AuthArgs) -> Result<(Value, Outbox), ChatError> {
        if self.session.is_some() {
            return Err(ChatError::new(
                ErrorCode::AlreadyAuthenticated,
                "this connection is already authenticated",
            ));
        }
        let (handle, outbox, data) = self.node.authenticate(args).await?;
        self.session = Some(handle);
        Ok((data, outbox))
    }

    /// Handles a request of an authenticated connection (rate-limited).
    pub async fn request(&mut self, request: Request) -> Result<Value, ChatError> {
        match self.start(request) {
            Ok(work) => work.await,
            Err(e) => Err(e),
        }
    }

    /// Admits a request (authentication and rate limit are checked now) and returns its work
    /// as a future that borrows nothing, so a transport can keep several in flight.
    pub fn start(
        &mut self,
        request: Request,
    ) -> Result<
        impl std::future::Future<Output = Result<Value, ChatError>> + Send + 'static,
        ChatError,
    > {
        let Some(session) = self.session.clone() else {
            return Err(ChatError::new(
                ErrorCode::Unauthenticated,
                "send `auth` first",
            ));
        };
        if let Err(wait) = self
            .bucket
            .take(self.node.config.rate_per_sec, self.node.config.rate_burst)
        {
            let mut e = ChatError::new(ErrorCode::RateLimited, "too many requests, slow down");
            e.retry_after_ms = Some(wait);
            return Err(e);
        }
        let node = self.node.clone();
        Ok(async move { node.dispatch(&session, request).await })
    }

    /// Whether `request` may run while earlier requests of this connection are still in
    /// flight. Only sends qualify, and only on a store that keeps the order in which appends
    /// were issued (so a client's pipelined messages keep their order). Everything else waits
    /// for the requests before it, so a `room.join` is done before the send behind it starts.
    pub fn may_pipeline(&self, request: &Request) -> bool {
        matches!(request, Request::MessageSend(_)) && self.node.store.keeps_issue_order()
    }
}

impl Connection {
    /// Ends the session (as dropping the connection does): its rooms and presence are
    /// released now, though the transport may still be closing the socket.
    pub fn end(&mut self) {
        if let Some(session) = self.session.take() {
            session.close(close::NORMAL);
            self.node.end_session(session);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.end();
    }
}
