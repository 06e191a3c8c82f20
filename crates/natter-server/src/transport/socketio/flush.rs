//! Polling sockets the server has just disconnected, until their client has come back for
//! what was left for it. Over long-polling, the `close` event and the namespace disconnect
//! (`41`) wait in the socket's buffer for the client's next GET; at shutdown the HTTP side
//! stopped before that GET came, and the client saw `transport error` instead of
//! `io server disconnect`. Now a disconnected polling socket's task waits (at most
//! [`FLUSH_WAIT`]) for the next request of that Engine.IO session (the GET that fetches the
//! packets, or the client's own close once it has them); the drain waits for the task, and
//! HTTP keeps serving meanwhile (an answer under way is finished at shutdown).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The longest a disconnected polling socket's task waits for its client's next request.
pub const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Engine.IO session ids of disconnected polling sockets, each with what wakes its task.
#[derive(Default)]
pub struct PollFlushes(Mutex<HashMap<String, Arc<Notify>>>);

impl PollFlushes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches for the next request of Engine.IO session `sid` (call before the packets it
    /// is to fetch are queued).
    pub(super) fn watch(&self, sid: String) -> Arc<Notify> {
        let heard = Arc::new(Notify::new());
        self.lock().insert(sid, heard.clone());
        heard
    }

    pub(super) fn forget(&self, sid: &str) {
        self.lock().remove(sid);
    }

    /// A request came for Engine.IO session `sid`.
    fn heard(&self, sid: &str) {
        if let Some(heard) = self.lock().remove(sid) {
            // Stored if the task is not waiting yet.
            heard.notify_one();
        }
    }

    /// Notes a `/socket.io/` request's session (its `sid` query parameter), if watched.
    pub fn note(&self, req: &axum::extract::Request) {
        let Some(query) = req.uri().query() else {
            return;
        };
        if self.lock().is_empty() {
            return;
        }
        if let Some(sid) = query.split('&').find_map(|pair| pair.strip_prefix("sid=")) {
            self.heard(sid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_of_the_session_wakes_its_task_once() {
        let flushes = PollFlushes::default();
        let heard = flushes.watch("abc".into());
        let request = |uri: &str| {
            let mut req = axum::extract::Request::new(axum::body::Body::empty());
            *req.uri_mut() = uri.parse().expect("uri");
            req
        };
        flushes.note(&request("/socket.io/?EIO=4&transport=polling&sid=other"));
        flushes.note(&request("/socket.io/?EIO=4&transport=polling"));
        assert!(!flushes.lock().is_empty(), "still watched");
        flushes.note(&request("/socket.io/?EIO=4&transport=polling&sid=abc&t=1"));
        // The permit was stored: this returns at once.
        tokio::time::timeout(Duration::from_secs(1), heard.notified())
            .await
            .expect("woken");
        assert!(flushes.lock().is_empty(), "forgotten once heard");
    }
}
