//! Sessions on the node: authenticating a connection (its resume, its presence, the `auth`
//! reply), which rooms and users the broker must carry for them, and ending a session.

use super::{lock, Node};
use crate::accounts;
use crate::broker::{BusEvent, Topic};
use crate::error::ChatError;
use crate::hub::Interest;
use crate::model::*;
use crate::protocol::*;
use crate::session::{self, Outbox, SessionHandle};
use std::sync::Arc;

impl Node {
    // ----- connections ----------------------------------------------------------------

    /// Authenticates a new connection: registers its session, starts its resume, and returns
    /// the `auth` reply data and the session's outbox.
    pub(crate) async fn authenticate(
        self: &Arc<Self>,
        args: AuthArgs,
    ) -> Result<(Arc<SessionHandle>, Outbox, AuthReply), ChatError> {
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
    pub(crate) async fn welcome(
        &self,
        user: &User,
        rooms: Vec<RoomView>,
        reset: Vec<RoomId>,
        first_here: bool,
    ) -> Result<AuthReply, ChatError> {
        if first_here && self.broker.presence_up(user).await? {
            self.publish(BusEvent::Presence {
                user: user.clone(),
                online: true,
            })
            .await;
        }
        let online = self.broker.online_users().await?;
        let read = self
            .store
            .read_markers(user.id)
            .await?
            .into_iter()
            .collect();
        Ok(AuthReply {
            user: user.clone(),
            rooms,
            read,
            reset,
            online,
            limits: Limits {
                max_message_chars: self.config.max_message_chars,
                max_frame_bytes: self.config.max_frame_bytes,
                rate_per_sec: self.config.rate_per_sec,
                rate_burst: self.config.rate_burst,
            },
        })
    }

    pub(crate) fn apply_interest(&self, user: UserId, interest: Interest) {
        if interest.user_gained {
            self.broker.subscribe(Topic::User(user));
        }
        if interest.user_lost {
            self.broker.unsubscribe(Topic::User(user));
        }
        for room in interest.rooms_gained {
            self.sessions.rules.forget(room);
            self.broker.subscribe(Topic::Room(room));
        }
        for room in interest.rooms_lost {
            self.broker.unsubscribe(Topic::Room(room));
        }
    }

    /// A connection ended: remove its session; the user goes offline with their last one.
    pub(crate) fn end_session(self: &Arc<Self>, session: Arc<SessionHandle>) {
        if session.close_code() == Some(close::SLOW_CONSUMER) {
            self.metrics.slow_consumer_closes.inc();
        }
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
    pub(crate) async fn check_member(
        &self,
        session: &SessionHandle,
        room: RoomId,
    ) -> Result<(), ChatError> {
        if session.is_member(room) {
            return Ok(());
        }
        match self.store.room(room).await? {
            Some(r) if r.kind == RoomKind::Public => Err(ChatError::not_member(room)),
            Some(r)
                if r.kind == RoomKind::Private
                    && self.store.standing(room, session.user.id).await?.invited =>
            {
                Err(ChatError::not_member(room))
            }
            _ => Err(ChatError::unknown_room(room)),
        }
    }
}
