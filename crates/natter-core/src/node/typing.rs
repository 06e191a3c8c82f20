//! Typing: leases per user and room, the forwarding throttle, and the sweeper that ends
//! expired typing states.

use super::{lock, Node, TypingLease};
use crate::broker::BusEvent;
use crate::error::ChatError;
use crate::model::*;
use crate::protocol::*;
use crate::session::SessionHandle;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

impl Node {
    // ----- typing ---------------------------------------------------------------------

    pub(crate) async fn typing(
        &self,
        session: &SessionHandle,
        args: TypingArgs,
    ) -> Result<Reply, ChatError> {
        self.check_member(session, args.room).await?;
        let user = session.user.clone();
        if !args.active {
            self.end_typing(args.room, &user).await;
            return Ok(Empty {}.into());
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
        Ok(Empty {}.into())
    }

    /// Ends a typing state if there is one, telling the room.
    pub(crate) async fn end_typing(&self, room: RoomId, user: &User) {
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

    pub(crate) async fn end_typing_of(&self, user: UserId) {
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

    pub(crate) fn spawn_typing_sweeper(self: &Arc<Self>) {
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
