//! The subscriber task: one pub/sub connection subscribed to the topics the node wants; what
//! arrives goes to the node. It reconnects with backoff, subscribes again, and asks the node
//! to catch its rooms up from the store, since events published meanwhile are lost.

use crate::settings::{BACKOFF_MAX, BACKOFF_MIN, PING_EVERY, REDIS_TIMEOUT};
use crate::shared::{backend, Shared};
use futures_util::StreamExt;
use natter_core::broker::Topic;
use natter_core::model::RoomId;
use natter_core::BrokerError;
use redis::aio::PubSubSink;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A subscription change for the subscriber task.
pub(crate) enum SubCommand {
    Subscribe(Topic),
    Unsubscribe(Topic),
}

fn rooms_of(topics: &HashSet<Topic>) -> Vec<RoomId> {
    topics
        .iter()
        .filter_map(|t| match t {
            Topic::Room(room) => Some(*room),
            _ => None,
        })
        .collect()
}

/// Applies a subscription change to the wanted set (while disconnected).
fn apply(wanted: &mut HashSet<Topic>, command: SubCommand) {
    match command {
        SubCommand::Subscribe(topic) => {
            wanted.insert(topic);
        }
        SubCommand::Unsubscribe(topic) => {
            wanted.remove(&topic);
        }
    }
}

/// The subscriber: keeps one pub/sub connection subscribed to the wanted topics, hands what
/// arrives to the node, and reconnects when the connection is lost.
pub(crate) async fn run_subscriber(
    shared: Arc<Shared>,
    client: redis::Client,
    mut commands: mpsc::UnboundedReceiver<SubCommand>,
    stop: CancellationToken,
) {
    let mut wanted: HashSet<Topic> = HashSet::new();
    let mut backoff = BACKOFF_MIN;
    let mut connected_once = false;
    loop {
        let connecting = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub());
        let pubsub = tokio::select! {
            _ = stop.cancelled() => return,
            result = connecting => result,
        };
        let pubsub = match pubsub {
            Ok(Ok(pubsub)) => pubsub,
            failed => {
                shared.subscriber_down.store(true, Ordering::Release);
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_string(),
                };
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "redis subscriber cannot connect");
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = &mut sleep => break,
                        command = commands.recv() => match command {
                            Some(c) => apply(&mut wanted, c),
                            None => return,
                        },
                    }
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        while let Ok(command) = commands.try_recv() {
            apply(&mut wanted, command);
        }
        let channels: Vec<String> = wanted.iter().map(|t| shared.channel(*t)).collect();
        if !channels.is_empty() {
            if let Err(e) = sink.subscribe(&channels).await {
                tracing::warn!(error = %e, "redis subscribe failed");
                shared.subscriber_down.store(true, Ordering::Release);
                continue;
            }
        }
        shared.subscribed(&wanted);
        shared.subscriber_down.store(false, Ordering::Release);
        if connected_once {
            tracing::info!(
                topics = wanted.len(),
                "redis subscriber reconnected; catching rooms up from the store"
            );
            shared.reconnected();
        }
        connected_once = true;
        backoff = BACKOFF_MIN;
        // Events published while this node was not subscribed are lost: read them back.
        shared.missed(rooms_of(&wanted));
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    if let Err(e) = change(&shared, &mut sink, &mut wanted, command).await {
                        tracing::warn!(error = %e, "redis subscription change failed; reconnecting");
                        break;
                    }
                }
                msg = stream.next() => match msg {
                    Some(msg) => shared.deliver(&msg),
                    None => {
                        tracing::warn!("redis subscriber connection lost; reconnecting");
                        break;
                    }
                },
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        tracing::warn!("redis subscriber connection unresponsive; reconnecting");
                        break;
                    }
                }
            }
        }
        shared.subscriber_down.store(true, Ordering::Release);
    }
}

/// Applies one subscription change on a live connection.
pub(crate) async fn change(
    shared: &Shared,
    sink: &mut PubSubSink,
    wanted: &mut HashSet<Topic>,
    command: SubCommand,
) -> Result<(), BrokerError> {
    match command {
        SubCommand::Subscribe(topic) => {
            if wanted.insert(topic) {
                let subscribing = sink.subscribe(shared.channel(topic));
                tokio::time::timeout(REDIS_TIMEOUT, subscribing)
                    .await
                    .map_err(backend)?
                    .map_err(backend)?;
                // Redis replied: this node's publishes from now on come back to it.
                shared.subscribed([&topic]);
                // Messages sent before the subscription took effect did not reach us.
                if let Topic::Room(room) = topic {
                    shared.missed(vec![room]);
                }
            } else {
                shared.subscribed([&topic]);
            }
        }
        SubCommand::Unsubscribe(topic) => {
            if wanted.remove(&topic) {
                let unsubscribing = sink.unsubscribe(shared.channel(topic));
                tokio::time::timeout(REDIS_TIMEOUT, unsubscribing)
                    .await
                    .map_err(backend)?
                    .map_err(backend)?;
            }
        }
    }
    Ok(())
}
