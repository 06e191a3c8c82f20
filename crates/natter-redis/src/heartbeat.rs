//! The heartbeat task: every `heartbeat`, refresh this node's `alive` key, make Redis agree
//! with this node's users when it may not, reap dead nodes (announcing who went offline with
//! them), and when a node has gone have the rooms caught up from the store.

use crate::shared::{backend, lock, Shared};
use natter_core::model::RoomId;
use natter_core::BrokerError;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

impl Shared {
    /// One heartbeat: stay alive, make Redis agree with our users if it may not, reap the
    /// dead nodes and announce who went offline with them.
    pub(crate) async fn heartbeat(&self) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        let expiry_ms = self.settings.expiry.as_millis().max(1) as u64;
        let existed: i64 = self
            .scripts
            .heartbeat
            .key(self.key(&format!("node:{}:alive", self.node_id)))
            .key(self.key("nodes"))
            .arg(&self.node_id)
            .arg(expiry_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        let dirty = self.presence_dirty.swap(false, Ordering::AcqRel);
        if existed == 0 || dirty {
            if let Err(e) = self.sync_presence().await {
                self.presence_dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        let gone: Vec<String> = self
            .scripts
            .reap
            .key(self.key("nodes"))
            .key(self.key("online"))
            .arg(&self.settings.prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        if !gone.is_empty() {
            tracing::info!(users = gone.len(), "reaped a dead node's users");
        }
        self.announce(gone, false).await;
        self.notice_departed_peers().await
    }

    /// When a node has gone (died or left), re-reads this node's rooms from the store: a
    /// node that died between storing a message and publishing it leaves a gap that nothing
    /// else would fill if no later message came.
    pub(crate) async fn notice_departed_peers(&self) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        let now: HashSet<String> = redis::cmd("SMEMBERS")
            .arg(self.key("nodes"))
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let departed = {
            let mut peers = lock(&self.peers);
            let departed = peers.iter().any(|p| !now.contains(p) && *p != self.node_id);
            *peers = now;
            departed
        };
        if departed {
            let rooms: Vec<RoomId> = lock(&self.rooms).iter().copied().collect();
            tracing::info!(
                rooms = rooms.len(),
                "a node left the cluster; re-reading rooms from the store"
            );
            self.missed(rooms);
        }
        Ok(())
    }

    /// Makes Redis's view of this node's users match `local_users`.
    pub(crate) async fn sync_presence(&self) -> Result<(), BrokerError> {
        let users: Vec<(i64, String)> = lock(&self.local_users)
            .values()
            .filter_map(|u| Some((u.id.0, serde_json::to_string(u).ok()?)))
            .collect();
        let mut invocation = self.scripts.sync.prepare_invoke();
        invocation
            .key(self.node_users_key())
            .key(self.key("online"))
            .arg(&self.node_id)
            .arg(&self.settings.prefix);
        for (id, json) in &users {
            invocation.arg(*id).arg(json);
        }
        let mut conn = self.conn.clone();
        let (came, gone): (Vec<String>, Vec<String>) =
            invocation.invoke_async(&mut conn).await.map_err(backend)?;
        if !users.is_empty() {
            tracing::info!(
                users = users.len(),
                "presence of this node registered in redis again"
            );
        }
        self.announce(came, true).await;
        self.announce(gone, false).await;
        Ok(())
    }
}

/// The heartbeat: refreshes this node's key and reaps dead nodes, every `heartbeat`.
pub(crate) async fn run_heartbeat(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(shared.settings.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match shared.heartbeat().await {
            Ok(()) if failing => {
                tracing::info!("redis heartbeat works again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "redis heartbeat failed");
                failing = true;
            }
            Err(_) => {}
        }
    }
}
