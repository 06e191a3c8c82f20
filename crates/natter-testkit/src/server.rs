//! A Natter server in this process on port 0 (`natter_server::run`, as main runs it), in a
//! fresh data dir, stopped gracefully or restarted on the same address and data.
//!
//! Backends follow the environment, so the same suite runs on SQLite (default) and on
//! PostgreSQL/Redis: `NATTER_TEST_DATABASE` (a `--database` URL) and `NATTER_TEST_BROKER`
//! (a `--broker` URL).

use crate::client::{register, Client};
use natter_server::{run, Settings};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Settings for a test server: port 0, a data dir, backends from the environment, and
/// rate limits (per connection, on the account endpoints, on room creation) high enough for
/// tests that are not about them.
///
/// On shared services each server (each data dir) gets a database and a Redis prefix of its
/// own, named after the data dir, so tests do not see each other's users, rooms or events,
/// and a restarted server finds its data again.
pub fn settings(data_dir: &Path) -> Settings {
    let own_name = format!(
        "natter_t_{}",
        data_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    let database = std::env::var("NATTER_TEST_DATABASE").ok().map(|url| {
        if url.starts_with("postgres") {
            natter_store_sql::postgres::with_database(&url, &own_name)
        } else {
            url
        }
    });
    let broker = std::env::var("NATTER_TEST_BROKER").ok();
    Settings {
        data_dir: Some(data_dir.to_path_buf()),
        redis_prefix: broker.as_ref().map(|_| format!("{own_name}:")),
        database,
        broker,
        rate_per_sec: Some(100_000.0),
        rate_burst: Some(100_000.0),
        // Suites register many users from 127.0.0.1; the account limits have tests of their own.
        login_per_minute_per_address: Some(1_000_000),
        login_per_minute_per_user: Some(1_000_000),
        register_per_hour_per_address: Some(1_000_000),
        guest_per_hour_per_address: Some(1_000_000),
        room_create_per_minute: Some(100_000),
        search_per_minute: Some(100_000),
        api_per_minute: Some(1_000_000),
        hash_waiting_per_address: Some(100_000),
        hash_wait_ms: Some(600_000),
        log: Some("warn".into()),
        ..Settings::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server with default test settings in a fresh data dir.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `tweak` adjusts the settings.
    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut s = settings(tmp.path());
        tweak(&mut s);
        let mut server = Self::spawn(s, None).await;
        server._tmp = Some(tmp);
        server
    }

    /// Starts a server after `tweak`, whose session and guest expiry read `clock` (move it
    /// forward with `Clock::advance` to cross a TTL without waiting).
    pub async fn start_with_clock(
        clock: natter_core::Clock,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut s = settings(tmp.path());
        tweak(&mut s);
        let mut server = Self::spawn_with_clock(s, None, clock).await;
        server._tmp = Some(tmp);
        server
    }

    /// Starts a server with these settings, on `addr` if given (else port 0).
    pub async fn spawn(settings: Settings, addr: Option<SocketAddr>) -> TestServer {
        Self::spawn_with_clock(settings, addr, natter_core::Clock::system()).await
    }

    /// As [`TestServer::spawn`], with expiry measured by `clock`.
    pub async fn spawn_with_clock(
        settings: Settings,
        addr: Option<SocketAddr>,
        clock: natter_core::Clock,
    ) -> TestServer {
        let data_dir = settings.data_dir.clone().expect("data dir");
        let mut config = settings.resolve().expect("config");
        config.clock = clock;
        let listener =
            TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr")))
                .await
                .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run(config, listener, async move {
                let _ = stopped.await;
            })
            .await
            .expect("server run");
        });
        TestServer {
            addr,
            data_dir,
            stop: Some(stop),
            task: Some(task),
            _tmp: None,
        }
    }

    /// Stops gracefully and waits until it has.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("server stops in time")
                .expect("server task");
        }
    }

    /// Begins a graceful stop without waiting for it (then `stop` waits), for tests that
    /// watch the server while it drains.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops, then starts again on the same address and data (same settings tweak).
    pub async fn restart_with(&mut self, tweak: impl FnOnce(&mut Settings)) {
        self.stop().await;
        let mut s = settings(&self.data_dir);
        tweak(&mut s);
        let tmp = self._tmp.take();
        let mut next = Self::spawn(s, Some(self.addr)).await;
        next._tmp = tmp;
        *self = next;
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Registers a new user with a unique name; returns (token, user).
    pub async fn register(&self, prefix: &str) -> (String, Value) {
        register(self.addr, prefix).await
    }

    /// Registers and connects a user.
    pub async fn user(&self, prefix: &str) -> Client {
        Client::new_user(self.addr, prefix).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
