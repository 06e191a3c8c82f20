//! Publishing to Redis: an event on its topic's channel (tried twice, the second time on a
//! fresh connection), presence changes through their script, and presence events for users
//! a script reports as come or gone. Each payload is the event's JSON with the time it was
//! published beside it (`published_us`), from which receivers measure the broker's lag.

use crate::settings::REDIS_TIMEOUT;
use crate::shared::{backend, Shared};
use natter_core::broker::BusEvent;
use natter_core::model::User;
use natter_core::BrokerError;

/// An event as published: its own fields, and when (microseconds since the Unix epoch).
/// A node that does not know `published_us` ignores it.
#[derive(serde::Serialize)]
struct Stamped<'a> {
    #[serde(flatten)]
    event: &'a BusEvent,
    published_us: u64,
}

impl Shared {
    /// Publishes an event, trying twice: a connection found broken by the first attempt is
    /// replaced for the second. (A repeat is harmless: sessions skip messages they have.)
    pub(crate) async fn publish(&self, event: &BusEvent) -> Result<(), BrokerError> {
        self.until_subscribed(event.topic(), REDIS_TIMEOUT).await;
        match self.publish_once(event).await {
            Ok(()) => Ok(()),
            Err(_) => self.publish_once(event).await,
        }
    }

    pub(crate) async fn publish_once(&self, event: &BusEvent) -> Result<(), BrokerError> {
        let payload = serde_json::to_vec(&Stamped {
            event,
            published_us: crate::shared::now_micros(),
        })
        .map_err(backend)?;
        let channel = self.channel(event.topic());
        let mut conn = self.conn.clone();
        match event {
            BusEvent::Presence { user, online } => {
                let _: i64 = self
                    .scripts
                    .publish_presence
                    .key(self.key("online"))
                    .arg(&channel)
                    .arg(user.id.0)
                    .arg(payload)
                    .arg(if *online { "1" } else { "0" })
                    .invoke_async(&mut conn)
                    .await
                    .map_err(backend)?;
            }
            _ => {
                let _: i64 = redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(payload)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend)?;
            }
        }
        Ok(())
    }

    /// Publishes presence events for users (as JSON from a script).
    pub(crate) async fn announce(&self, users: Vec<String>, online: bool) {
        for json in users {
            let Ok(user) = serde_json::from_str::<User>(&json) else {
                tracing::warn!("unreadable user in redis presence");
                continue;
            };
            let event = BusEvent::Presence { user, online };
            if let Err(e) = self.publish(&event).await {
                tracing::warn!(error = %e, "presence publish failed");
            }
        }
    }
}
