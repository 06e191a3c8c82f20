//! The PostgreSQL connection pool's limits, and how a query gets a connection: at once, after
//! a bounded wait, or refused with `Busy` when too many wait already (back-pressure, not a
//! queue that grows until the pool's timeout).

use super::error::backend;
use super::PostgresStore;
use natter_core::StoreError;
use std::time::Duration;

/// Connections per node unless configured otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long a query waits for a free connection, or for a new one to open.
pub(super) const POOL_TIMEOUT: Duration = Duration::from_secs(10);
/// Queries waiting for a pooled connection at most, per connection in the pool, unless
/// configured otherwise (1024 with the default 16 connections). A query that finds that many
/// already waiting is refused at once with `StoreError::Busy` (a client is asked to retry
/// shortly), so a burst beyond what the database keeps up with meets back-pressure instead of
/// a queue, and a latency, that grow until the pool's timeout. At a few milliseconds per
/// append, 64 waiting per connection is a wait of roughly 100-300 ms.
pub const POOL_MAX_WAITING_PER_CONNECTION: usize = 64;

/// How many connections a node keeps and how long a query may queue for one.
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    /// Connections kept open.
    pub size: usize,
    /// Queries waiting for a connection at most; one more is refused with `Busy`.
    pub max_waiting: usize,
    /// How long a query waits for a connection before it is refused with `Busy`.
    pub wait_timeout: Duration,
    /// Appends waiting in one lane of the group commit at most (`appender::LANE_QUEUE`); one
    /// more is refused with `Busy`.
    pub append_queue: usize,
}

impl PoolLimits {
    /// `size` connections with the default queue bound and wait.
    pub fn with_size(size: usize) -> PoolLimits {
        PoolLimits {
            size,
            max_waiting: size.max(1) * POOL_MAX_WAITING_PER_CONNECTION,
            wait_timeout: POOL_TIMEOUT,
            append_queue: super::appender::LANE_QUEUE,
        }
    }
}

impl PostgresStore {
    /// Queries waiting for a pooled connection now.
    pub fn waiting_for_connection(&self) -> usize {
        self.pool.status().waiting
    }

    /// Appends queued in the group commit's lanes now (not yet taken into a batch).
    pub fn appends_waiting(&self) -> usize {
        self.appender.waiting()
    }

    /// A pooled connection; `Busy` when too many queries wait for one already or this one
    /// waited too long (the database is saturated, not down: a new connection that cannot be
    /// opened is still a backend failure).
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        pooled(&self.pool, self.max_waiting).await
    }
}

/// A connection of `pool`, or `Busy` when `max_waiting` queries wait for one already or the
/// wait timed out (see [`PostgresStore::client`]).
pub(super) async fn pooled(
    pool: &deadpool_postgres::Pool,
    max_waiting: usize,
) -> Result<deadpool_postgres::Object, StoreError> {
    if pool.status().waiting >= max_waiting {
        return Err(StoreError::Busy);
    }
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            StoreError::Busy
        }
        other => backend(other),
    })
}
