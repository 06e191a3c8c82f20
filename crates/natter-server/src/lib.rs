//! The Natter server: wires configuration, storage, broker and the chat core together and
//! serves HTTP, the WebSocket transport and the web client.
//!
//! `run(config, listener, shutdown)` is the whole server; `main` parses configuration and
//! calls it, and tests call it on a listener bound to port 0.
//!
//! Modules: [`admin`] (the operator's commands: `natter admin`, `natter backup`), [`config`]
//! (settings and their layers), [`http`] (the accept loop and its
//! timers, API, account limits, health, web files), [`transport`] (the native `/ws` adapter),
//! [`metrics`] (`/metrics`: the Prometheus text of this server's counters).

#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod http;
pub mod metrics;
pub mod transport;

pub use config::{BrokerKind, Config, Database, Settings};

use futures_util::future::OptionFuture;
use natter_core::{close, Broker, FileStore, LocalBroker, Node, Store};
use natter_redis::{RedisBroker, RedisSettings};
use natter_store_sql::{DirFileStore, PostgresStore, SqliteStore};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub node: Arc<Node>,
    pub config: Arc<Config>,
    /// Connection tasks (WebSocket sessions), waited for at shutdown.
    pub tasks: TaskTracker,
    /// Set when shutdown begins (health turns 503).
    pub shutting_down: Arc<AtomicBool>,
    /// The account endpoints' abuse limits.
    pub limits: Arc<http::limits::AccountLimits>,
    /// The file endpoints' blob store, download keys and upload directory.
    pub files: Arc<http::files::Files>,
    /// This server's own measurements (HTTP, Socket.IO); the core's are the node's.
    pub metrics: Arc<metrics::ServerMetrics>,
    /// Disconnected Socket.IO polling sockets waiting for their client's next request.
    pub poll_flushes: Arc<transport::socketio::PollFlushes>,
}

/// A startup failure.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("storage: {0}")]
    Store(#[from] natter_core::StoreError),
    #[error("broker: {0}")]
    Broker(#[from] natter_core::BrokerError),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// How long connections get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for `shutdown`, tells every connection to go (1001), waits for their tasks (at most
/// `DRAIN_TIMEOUT`), then cancels `drained`, which stops the HTTP server.
async fn drain(
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drained: CancellationToken,
) {
    shutdown.await;
    tracing::info!("shutting down");
    state.shutting_down.store(true, Ordering::Release);
    state.node.close_all(close::GOING_AWAY);
    state.tasks.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    drained.cancel();
}

/// The main store, and where uploads' bytes go: the database itself on PostgreSQL (so every
/// node serves every file), else `<data_dir>/files`.
pub(crate) async fn open_store(
    config: &Config,
) -> Result<(Arc<dyn Store>, Arc<dyn FileStore>), RunError> {
    match &config.database {
        Database::Sqlite(path) => {
            let path = path.clone();
            let sync = config.sqlite_synchronous;
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(path, sync))
                .await
                .map_err(|e| natter_core::StoreError::Backend(e.to_string()))??;
            tracing::info!(path = %store.path().display(), "sqlite store open");
            let blobs = DirFileStore::new(config.data_dir.join("files"));
            Ok((Arc::new(store), Arc::new(blobs)))
        }
        Database::Postgres(url) => {
            let store = PostgresStore::connect(url, config.database_pool).await?;
            tracing::info!("postgres store open");
            let blobs = store.file_store();
            Ok((Arc::new(store), Arc::new(blobs)))
        }
    }
}

async fn open_broker(config: &Config) -> Result<Arc<dyn Broker>, RunError> {
    match &config.broker {
        BrokerKind::Local => Ok(Arc::new(LocalBroker::new())),
        BrokerKind::Redis(url) => {
            if matches!(config.database, Database::Sqlite(_)) {
                tracing::warn!("redis broker with a sqlite store: nodes do not share messages; use postgres for several nodes");
            }
            let broker = RedisBroker::connect(RedisSettings {
                url: url.clone(),
                prefix: config.redis_prefix.clone(),
                heartbeat: config.presence_heartbeat,
                expiry: config.presence_expiry,
            })
            .await?;
            Ok(Arc::new(broker))
        }
    }
}

/// Runs a server on `listener` until `shutdown` resolves, then stops gracefully:
///
/// 1. `/healthz` turns 503 and every WebSocket session is told 1001 at once, those still
///    waiting for `auth` included (they watch the node's shutdown signal);
/// 2. the drain: HTTP is still served (so load balancers read the 503 rather than a refused
///    connection; a new `/ws` connection is closed with 1001 at once) until every connection
///    task has ended, or `DRAIN_TIMEOUT`;
/// 3. then the listener closes, in-flight HTTP requests finish, and storage is flushed.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    // Bound first: an address in use stops the server before it opens anything.
    let metrics_listener = match config.metrics_listen.filter(|_| config.metrics) {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await?;
            tracing::info!(addr = %listener.local_addr()?, "metrics listening");
            Some(listener)
        }
        None => None,
    };
    let (store, blobs) = open_store(&config).await?;
    let broker = open_broker(&config).await?;
    let node = Node::start(store.clone(), broker.clone(), config.core()).await?;
    node.set_file_store(blobs.clone());
    let files = http::files::Files::open(&store, blobs, &config.data_dir).await?;
    let state = AppState {
        node: node.clone(),
        config: Arc::new(config.clone()),
        tasks: TaskTracker::new(),
        shutting_down: Arc::new(AtomicBool::new(false)),
        limits: Arc::new(http::limits::AccountLimits::new(&config)),
        files: Arc::new(files),
        metrics: Arc::default(),
        poll_flushes: Arc::default(),
    };
    let app = http::router(state.clone());
    let drained = CancellationToken::new();
    let metrics_apart = metrics_listener.map(|listener| {
        let stop = drained.clone().cancelled_owned();
        tokio::spawn(metrics::serve_apart(state.clone(), listener, stop))
    });
    let drain = tokio::spawn(drain(state.clone(), shutdown, drained.clone()));
    let timeouts = http::serve::Timeouts {
        header: state.config.http_header_timeout,
        idle: state.config.http_idle_timeout,
    };
    // Serves (no-delay sockets, the HTTP timers) until the drain is over.
    http::serve::serve(listener, app, timeouts, drained.cancelled_owned()).await;
    if let Err(e) = drain.await {
        tracing::warn!(error = %e, "the drain task failed");
    }
    if let Some(Err(e)) = OptionFuture::from(metrics_apart).await {
        tracing::warn!(error = %e, "the metrics task failed");
    }
    state.metrics.forget_socket_io();
    drop(state);
    drop(node);
    broker.shutdown().await;
    store.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
