//! Expiry of sessions and guests: one sweep per node every `session_sweep`. It records that
//! the node's open connections are in use (so a session or guest connected for weeks does
//! not expire under them), deletes sessions unused for longer than the session TTL, and
//! expires guests inactive for longer than the guest TTL: their sessions are deleted (open
//! sockets closed with 4003), they leave their public rooms, and their name is freed. The
//! guest's user row stays (under its display name, with a freed name key), so the messages
//! they wrote keep their sender. The same tick sweeps files no message carries
//! (`node/files.rs`).

use super::Node;
use crate::accounts;
use crate::broker::BusEvent;
use crate::config::SESSION_TOUCH_INTERVAL;
use crate::model::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Node {
    pub(crate) fn spawn_session_sweeper(self: &Arc<Self>) {
        let node = Arc::downgrade(self);
        let stop = self.shutdown.clone();
        let period = self.config.session_sweep.max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(node) = node.upgrade() else { return };
                node.sweep_sessions().await;
                node.sweep_files().await;
            }
        });
    }

    /// One sweep (see the module doc). Errors are logged; the next sweep tries again.
    pub(crate) async fn sweep_sessions(&self) {
        let now = self.config.clock.now_millis();
        let mut open: Vec<Vec<u8>> = self
            .hub
            .all_sessions()
            .iter()
            .map(|s| s.token_hash.to_vec())
            .collect();
        open.sort_unstable();
        open.dedup();
        if !open.is_empty() {
            let stale_before = now.saturating_sub(ms(SESSION_TOUCH_INTERVAL));
            if let Err(e) = self.store.touch_sessions(&open, now, stale_before).await {
                tracing::warn!(error = %e, "recording open sessions as used failed");
            }
        }
        let expired = match self
            .store
            .expire(
                now.saturating_sub(ms(self.config.session_ttl)),
                now.saturating_sub(ms(self.config.guest_ttl)),
            )
            .await
        {
            Ok(expired) => expired,
            Err(e) => {
                tracing::warn!(error = %e, "session sweep failed");
                return;
            }
        };
        if !expired.sessions.is_empty() || !expired.guests.is_empty() {
            tracing::info!(
                sessions = expired.sessions.len(),
                guests = expired.guests.len(),
                "expired"
            );
        }
        for (user, hash) in expired.sessions {
            self.publish(BusEvent::SessionRevoked {
                user,
                token_hash: accounts::to_hex(&hash),
            })
            .await;
        }
        for guest in expired.guests {
            self.leave_public_rooms(&guest).await;
        }
    }

    /// Takes an expired guest out of their public rooms, telling each room.
    async fn leave_public_rooms(&self, guest: &User) {
        let rooms = match self.store.rooms_of(guest.id).await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::warn!(error = %e, "listing an expired guest's rooms failed");
                return;
            }
        };
        for (room, _) in rooms
            .into_iter()
            .filter(|(r, _)| r.kind == RoomKind::Public)
        {
            if let Err(e) = self.remove_from_room(room.id, guest, guest).await {
                tracing::warn!(error = %e, "an expired guest's leave failed");
            }
        }
    }
}
