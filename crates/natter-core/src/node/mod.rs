//! `Node`: the chat service of one server process. It takes requests from connections (any
//! transport), applies the chat's rules against the `Store`, publishes what happened on the
//! `Broker`, and hands what the broker delivers to its local `Hub`.
//!
//! The node's work is split by job:
//! - [`accounts`]: sign-up, sign-in, tokens and their expiry, session list, password change.
//! - [`bots`]: bot accounts, API tokens and webhooks, and the HTTP API's requests (each run
//!   through `dispatch` on a session that is not registered anywhere).
//! - [`expiry`]: the sweep that deletes expired sessions and guests.
//! - [`sessions`]: authenticating a connection, its broker interest, ending it.
//! - [`rooms`]: room requests and who may see which room.
//! - [`messages`]: `message.send` and `history`.
//! - [`typing`]: typing leases and their sweeper.
//! - [`bus`]: what the broker delivers, and catching up after a broker outage.
//! - [`files`]: who may download an upload, the upload quota, and the sweep of files no
//!   message carries.
//!
//! A client connection drives the node through `crate::connection::Connection`.

mod account_life;
mod accounts;
mod bots;
mod bus;
mod changes;
mod expiry;
mod files;
mod groups;
mod messages;
mod moderation;
mod profiles;
mod rooms;
mod search;
mod sessions;
mod typing;

use crate::broker::{Broker, BusEvent, BusHandler, Topic};
use crate::config::CoreConfig;
use crate::error::{ChatError, ErrorCode, StoreError};
use crate::hub::Hub;
use crate::metrics::{CoreMetrics, RateLimitKind};
use crate::model::*;
use crate::protocol::*;
use crate::session::{SessionHandle, SessionShared};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use account_life::Export;
pub use accounts::SessionView;
pub use bots::{ApiCaller, BotView, NewSecret};

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

/// Per-user buckets (room creations, searches) a node keeps before it forgets the full ones.
const USER_BUCKETS_BEFORE_SWEEP: usize = 4096;

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
    /// Each user's room-creation bucket on this node (`room_create_per_minute`).
    room_creations: crate::ratelimit::PerUserBuckets,
    /// Each user's search bucket on this node (`search_per_minute`).
    searches: crate::ratelimit::PerUserBuckets,
    /// Each API token's (or session token's) bucket on the HTTP API (`api_per_minute`).
    api_calls: crate::ratelimit::PerUserBuckets<bots::ApiKey>,
    /// Held from counting a user's rooms to creating one, so connections creating rooms at
    /// once on this node cannot all pass the count below `max_rooms_per_user` (creations are
    /// rare and rate-limited: one line for the node costs nothing).
    room_cap: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
    /// This node, for work it hands to tasks of its own (resync after a broker outage).
    me: Weak<Node>,
    /// Password hashing: two at once, a bounded queue behind them, fair per client key.
    hashing: crate::accounts::Hashing,
    /// Where uploads' bytes are kept (set by the server; without it the file sweep removes
    /// records only).
    file_store: std::sync::OnceLock<Arc<dyn crate::files::FileStore>>,
    /// This node's counters and histograms (its hub counts deliveries into the same set).
    metrics: Arc<CoreMetrics>,
}

/// What the node holds now, read for `/metrics` (under the locks that guard it, at scrape
/// time only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeGauges {
    /// Authenticated sessions on this node.
    pub sessions: usize,
    /// Rooms with at least one local session.
    pub rooms: usize,
    /// Users with at least one connection to this node.
    pub online_users: usize,
    /// Typing states held by this node (one per user and room).
    pub typing: usize,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
        let metrics = Arc::new(CoreMetrics::default());
        let node = Arc::new_cyclic(|me| Node {
            hashing: crate::accounts::Hashing::new(
                config.hash_queue,
                config.hash_waiting_per_key,
                config.hash_wait,
            ),
            hub: Hub::counted(config.gap_wait, store.clone(), metrics.clone()),
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
            room_creations: crate::ratelimit::PerUserBuckets::new(USER_BUCKETS_BEFORE_SWEEP),
            searches: crate::ratelimit::PerUserBuckets::new(USER_BUCKETS_BEFORE_SWEEP),
            api_calls: crate::ratelimit::PerUserBuckets::new(USER_BUCKETS_BEFORE_SWEEP),
            room_cap: tokio::sync::Mutex::new(()),
            shutdown: CancellationToken::new(),
            me: me.clone(),
            file_store: std::sync::OnceLock::new(),
            metrics,
        });
        let handler: Arc<dyn BusHandler> = node.clone();
        node.broker.set_handler(Arc::downgrade(&handler));
        node.broker.subscribe(Topic::Presence);
        node.spawn_typing_sweeper();
        node.spawn_keepalive();
        node.spawn_session_sweeper();
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

    /// This node's counters and histograms.
    pub fn metrics(&self) -> &Arc<CoreMetrics> {
        &self.metrics
    }

    /// Sessions, rooms with local members, users online here and typing states, now.
    pub fn gauges(&self) -> NodeGauges {
        let (sessions, rooms) = self.hub.counts();
        NodeGauges {
            sessions,
            rooms,
            online_users: lock(&self.local_presence).len(),
            typing: lock(&self.typing).len(),
        }
    }

    /// Counts `result`'s refusal under `kind` if it is one (`rate_limited`).
    pub(crate) fn count_refusal<T>(
        &self,
        kind: RateLimitKind,
        result: Result<T, ChatError>,
    ) -> Result<T, ChatError> {
        if let Err(e) = &result {
            if e.code == ErrorCode::RateLimited {
                self.metrics.rate_limited(kind).inc();
            }
        }
        result
    }

    /// Resolves once `close_all` has been called (the server is shutting down).
    pub fn stopping(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.shutdown.clone().cancelled_owned()
    }

    /// Whether `close_all` has been called.
    pub fn is_stopping(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Stops background tasks and closes every session with `code` (1001 on shutdown).
    pub fn close_all(&self, code: u16) {
        self.shutdown.cancel();
        for session in self.hub.all_sessions() {
            session.close(code);
        }
    }

    // ----- views ----------------------------------------------------------------------

    pub(crate) fn view(room: Room, joined: bool, peer: Option<User>) -> RoomView {
        RoomView {
            id: room.id,
            name: room.name,
            kind: room.kind,
            member_count: room.member_count,
            last_seq: room.last_seq,
            joined,
            topic: room.topic,
            description: room.description,
            archived: room.archived,
            role: None,
            muted_until: None,
            peer,
            peers: Vec::new(),
            unread: None,
            mentions: None,
            notify: None,
        }
    }

    /// The user's rooms, each with their unread and mention counts and notification level.
    pub(crate) async fn my_rooms(&self, user: UserId) -> Result<Vec<RoomView>, ChatError> {
        let states: HashMap<RoomId, MemberState> = self
            .store
            .member_states(user, None)
            .await?
            .into_iter()
            .map(|s| (s.room, s))
            .collect();
        let mut views = Vec::new();
        for (room, peer) in self.store.rooms_of(user).await? {
            let state = states.get(&room.id).cloned().unwrap_or_default();
            let kind = room.kind;
            let mut view = Self::view(room, true, peer);
            match kind {
                RoomKind::Group => view.peers = self.peers(view.id, user).await?,
                RoomKind::Dm => {}
                RoomKind::Public | RoomKind::Private => {
                    view.role = Some(state.role);
                    view.muted_until = state.muted_until;
                }
            }
            view.unread = Some(state.unread);
            view.mentions = Some(state.mentions);
            view.notify = Some(state.notify);
            views.push(view);
        }
        Ok(views)
    }

    /// A group DM's members but `viewer`, by name.
    pub(crate) async fn peers(&self, room: RoomId, viewer: UserId) -> Result<Vec<User>, ChatError> {
        let mut members = self.store.members(room).await?;
        members.retain(|m| m.id != viewer);
        Ok(members)
    }

    /// The view of a room for `viewer`, or `unknown_room` if it does not exist or is a DM
    /// the viewer is not part of.
    pub(crate) async fn visible_room(
        &self,
        room: RoomId,
        viewer: UserId,
    ) -> Result<RoomView, ChatError> {
        let Some(found) = self.store.room(room).await? else {
            return Err(ChatError::unknown_room(room));
        };
        match found.kind {
            RoomKind::Public => {
                let standing = self.store.standing(room, viewer).await?;
                let mut view = Self::view(found, standing.member, None);
                if standing.member {
                    view.role = Some(standing.role);
                    view.muted_until = standing.muted_until;
                }
                Ok(view)
            }
            RoomKind::Private => self.private_view(found, viewer).await,
            RoomKind::Dm | RoomKind::Group => self
                .my_rooms(viewer)
                .await?
                .into_iter()
                .find(|r| r.id == room)
                .ok_or_else(|| ChatError::unknown_room(room)),
        }
    }

    // ----- publishing -----------------------------------------------------------------

    pub(crate) async fn publish(&self, event: BusEvent) {
        if let Err(e) = self.broker.publish(event).await {
            tracing::error!(error = %e, "publish failed");
        }
    }

    /// Stores a member joining or leaving (`Change::Join`, `Change::Leave`, by `user`) as an
    /// entry of the room's stream and publishes it (event `room_event`); None when nothing
    /// changed (already a member, or not one). The store applies the membership and stores
    /// the entry in one transaction, so a client that resumes learns of it like one online.
    pub(crate) async fn membership_entry(
        &self,
        room: RoomId,
        user: &User,
        change: Change,
    ) -> Result<Option<Message>, ChatError> {
        let outcome = self
            .store
            .change(NewChange {
                room,
                sender: user.clone(),
                // Never sent by a client, so it never meets a retry: only unique.
                client_id: format!("natter:{}:{:016x}", change.op(), rand::random::<u64>()),
                ts: self.config.clock.now_millis(),
                change,
                body: String::new(),
                max_reactions: 0,
            })
            .await?;
        let ChangeOutcome::Applied(entry) = outcome else {
            return Ok(None);
        };
        self.sessions.rules.forget(room);
        self.publish(BusEvent::Message {
            message: entry.clone(),
        })
        .await;
        Ok(Some(entry))
    }

    /// Takes `user` out of `room` (a `Change::Leave` entry, shown from `shown_as`) and tells
    /// the room (`member_left`); false if they were not a member.
    pub(crate) async fn remove_from_room(
        &self,
        room: RoomId,
        user: &User,
        shown_as: &User,
    ) -> Result<bool, ChatError> {
        let leave = Change::Leave {
            user: shown_as.clone(),
        };
        if self
            .membership_entry(room, shown_as, leave)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        self.end_typing(room, user).await;
        let member_count = self.store.room(room).await?.map_or(0, |r| r.member_count);
        self.publish(BusEvent::MemberLeft {
            room,
            user: shown_as.clone(),
            member_count,
        })
        .await;
        Ok(true)
    }

    /// Adds a member (a `Change::Join` entry) and tells the room and the user's connections.
    pub(crate) async fn add_member(
        &self,
        room: RoomId,
        user: &User,
    ) -> Result<RoomView, ChatError> {
        let join = Change::Join { user: user.clone() };
        let newly = self.membership_entry(room, user, join).await?.is_some();
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

    // ----- requests -------------------------------------------------------------------

    pub(crate) async fn dispatch(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        request: Request,
    ) -> Result<Reply, ChatError> {
        match request {
            Request::Auth(_) => Err(ChatError::new(
                ErrorCode::AlreadyAuthenticated,
                "this connection is already authenticated",
            )),
            Request::Ping => Ok(Empty {}.into()),
            Request::PresenceList => Ok(OnlineReply {
                online: self.broker.online_users().await?,
            }
            .into()),
            Request::RoomList(a) => self.room_list(session, a).await,
            Request::RoomCreate(a) => self.room_create(session, a).await,
            Request::RoomJoin(a) => self.room_join(session, a.room).await,
            Request::RoomLeave(a) => self.room_leave(session, a.room).await,
            Request::RoomMembers(a) => self.room_members(session, a.room).await,
            Request::RoomRead(a) => Ok(self.room_read(session, a.room, a.seq).await?.into()),
            Request::DmOpen(a) => self.dm_open(session, &a.user).await,
            Request::MessageSend(a) => self.send(session, a).await,
            Request::MessageEdit(a) => self.edit(session, a).await,
            Request::MessageDelete(a) => self.delete(session, a).await,
            Request::MessageEdits(a) => self.edits(session, a).await,
            Request::ReactionAdd(a) => self.react(session, a, true).await,
            Request::ReactionRemove(a) => self.react(session, a, false).await,
            Request::History(a) => self.history(session, a).await,
            Request::RoomNotify(a) => self.room_notify(session, a).await,
            Request::Search(a) => Ok(self.search_as(&session.user, a).await?.into()),
            Request::Typing(a) => self.typing(session, a).await,
            Request::RoomInvite(a) => self.room_invite(session, a).await,
            Request::GroupOpen(a) => self.group_open(session, &a.users).await,
            Request::ProfileGet(a) => self.profile_get(&a.user).await,
            Request::ProfileUpdate(a) => self.profile_update(session, a).await,
            Request::GroupAdd(a) => self.group_add(session, a).await,
            Request::InviteList => self.invite_list(session).await,
            Request::InviteDecline(a) => self.invite_decline(session, a.room).await,
            Request::RoomUpdate(a) => self.room_update(session, a).await,
            Request::RoomKick(a) => self.moderate(session, a, "kick").await,
            Request::RoomBan(a) => self.moderate(session, a, "ban").await,
            Request::RoomUnban(a) => self.moderate(session, a, "unban").await,
            Request::RoomMute(a) => self.moderate(session, a, "mute").await,
            Request::RoomUnmute(a) => self.moderate(session, a, "unmute").await,
            Request::RoomRole(a) => self.set_role(session, a).await,
            Request::RoomBans(a) => self.room_bans(session, a.room).await,
            Request::AdminAudit(a) => self.admin_audit(session, a).await,
            Request::AdminSetAdmin(a) => self.admin_set_admin(session, a).await,
            Request::AdminDeactivate(a) => self.admin_deactivate(session, &a.user).await,
        }
    }

    /// Every `keepalive`, asks each local session's transport to check on its connection.
    /// One task for the node, where a timer per connection would cost every idle connection a
    /// timer entry.
    pub(crate) fn spawn_keepalive(self: &Arc<Self>) {
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
}
