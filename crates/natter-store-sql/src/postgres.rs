//! The PostgreSQL `Store`: running the schema migrations (`crate::migrate` lists them;
//! serialized across nodes by an advisory lock), a connection pool, and every query. Several
//! nodes share one database: the database allocates ids and per-room sequence numbers, never
//! a node.
//!
//! Sequence numbers: `append` bumps `rooms.last_seq` with `UPDATE ... RETURNING` inside the
//! transaction that inserts the message. The row lock it takes is held until COMMIT, so two
//! appends to one room commit in seq order, and a committed `last_seq` of N means 1..=N are all
//! committed. A retry with the same (sender, room, client_id) returns the original message,
//! also when the two attempts race (the unique index decides, the loser rolls back its seq).

use crate::migrate;
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use natter_core::model::*;
use natter_core::store::{name_key, Credentials, Store};
use natter_core::StoreError;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

/// Connections per node unless configured otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long a query waits for a free connection, or for a new one to open.
const POOL_TIMEOUT: Duration = Duration::from_secs(10);
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
}

impl PoolLimits {
    /// `size` connections with the default queue bound and wait.
    pub fn with_size(size: usize) -> PoolLimits {
        PoolLimits {
            size,
            max_waiting: size.max(1) * POOL_MAX_WAITING_PER_CONNECTION,
            wait_timeout: POOL_TIMEOUT,
        }
    }
}

/// Key of the advisory lock that serializes migrations between nodes starting together.
const MIGRATION_LOCK: i64 = 0x6e61_7474_6572; // "natter"

/// Keeps which schema migrations the database has (`crate::migrate`); `applied_at` is in
/// milliseconds since the Unix epoch, like every time in this schema.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// What a database made before read markers (the first unversioned schema) lacks of
/// migration 1.
const ADD_READ_MARKERS: &str = "ALTER TABLE members ADD COLUMN read_seq BIGINT NOT NULL DEFAULT 0";

/// A failure as the log should show it (the server's own message for database errors).
trait Describe {
    fn describe(&self) -> String;
}

impl Describe for tokio_postgres::Error {
    fn describe(&self) -> String {
        match self.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => match std::error::Error::source(self) {
                Some(source) => format!("{self}: {source}"),
                None => self.to_string(),
            },
        }
    }
}

impl Describe for deadpool_postgres::PoolError {
    fn describe(&self) -> String {
        match self {
            deadpool_postgres::PoolError::Backend(e) => e.describe(),
            other => other.to_string(),
        }
    }
}

impl Describe for deadpool_postgres::BuildError {
    fn describe(&self) -> String {
        self.to_string()
    }
}

fn backend(e: impl Describe) -> StoreError {
    StoreError::Backend(e.describe())
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// The PostgreSQL store. Cheap to share: queries take a pooled connection each.
pub struct PostgresStore {
    pool: Pool,
    /// Queries allowed to wait for a connection (`PoolLimits::max_waiting`).
    max_waiting: usize,
}

/// Parses a `postgres://` URL, with a connect timeout if it names none.
fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Backend(format!("bad postgres url: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name("natter");
    }
    Ok(config)
}

/// Creates the database `config` names if it does not exist (connecting to `postgres`).
async fn create_database_if_missing(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    let Some(name) = config.get_dbname().map(str::to_string) else {
        return Ok(());
    };
    let mut admin = config.clone();
    admin.dbname("postgres");
    let (client, conn) = admin.connect(NoTls).await.map_err(backend)?;
    let driver = tokio::spawn(conn);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(backend)?
        .is_some();
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
        {
            Ok(()) => tracing::info!(database = %name, "postgres database created"),
            // Another node created it meanwhile.
            Err(e)
                if e.code() == Some(&SqlState::DUPLICATE_DATABASE) || is_unique_violation(&e) => {}
            Err(e) => return Err(backend(e)),
        }
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// Brings the schema to the newest version this binary knows (`crate::migrate`), one
/// migration per transaction. Each transaction first takes the advisory lock and then reads
/// the version, so nodes starting together take turns and never apply a migration twice.
async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(backend)?;
    loop {
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(backend)?;
        tx.batch_execute(VERSION_TABLE).await.map_err(backend)?;
        let applied: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(backend)?
            .get(0);
        migrate::refuse_if_newer(applied, migrate::POSTGRES)?;
        if applied == 0 && migrate::is_baseline(&baseline_tables_present(&tx).await?)? {
            add_read_markers_if_missing(&tx).await?;
            record(&tx, migrate::BASELINE, migrate::BASELINE_NAME).await?;
            tx.commit().await.map_err(backend)?;
            tracing::info!(
                version = migrate::BASELINE,
                "postgres schema from before versioned migrations recorded as its version"
            );
            continue;
        }
        if applied == migrate::BASELINE && add_read_markers_if_missing(&tx).await? {
            tx.commit().await.map_err(backend)?;
            tracing::info!("postgres schema at version 1 given the read markers it lacked");
            continue;
        }
        let Some(next) = migrate::next_after(migrate::POSTGRES, applied) else {
            return tx.commit().await.map_err(backend);
        };
        tx.batch_execute(next.sql).await.map_err(backend)?;
        record(&tx, next.version, next.name).await?;
        tx.commit().await.map_err(backend)?;
        tracing::info!(
            version = next.version,
            name = next.name,
            "postgres schema migrated"
        );
    }
}

/// Which of migration 1's tables the database has (in the schema its tables go to).
async fn baseline_tables_present(client: &impl GenericClient) -> Result<Vec<String>, StoreError> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_name::text = ANY($1::text[])",
            &[&migrate::BASELINE_TABLES],
        )
        .await
        .map_err(backend)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Adds `members.read_seq` to a database of the first unversioned schema (see
/// `migrate::BASELINE`); true if it was missing.
async fn add_read_markers_if_missing(client: &impl GenericClient) -> Result<bool, StoreError> {
    let has_read_markers = client
        .query_opt(
            "SELECT 1 FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'members'
               AND column_name = 'read_seq'",
            &[],
        )
        .await
        .map_err(backend)?
        .is_some();
    if !has_read_markers {
        client
            .batch_execute(ADD_READ_MARKERS)
            .await
            .map_err(backend)?;
    }
    Ok(!has_read_markers)
}

/// Adds `version`'s row to `schema_migrations`.
async fn record(client: &impl GenericClient, version: i64, name: &str) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&version, &name, &now_millis()],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

fn user_from(row: &Row, at: usize) -> User {
    User {
        id: UserId(row.get(at)),
        name: row.get(at + 1),
        guest: row.get(at + 2),
    }
}

const ROOM_COLUMNS: &str = "r.id, r.name, r.kind, r.member_count, r.last_seq";

fn room_from(row: &Row) -> Room {
    let kind: &str = row.get(2);
    Room {
        id: RoomId(row.get(0)),
        name: row.get(1),
        kind: if kind == "dm" {
            RoomKind::Dm
        } else {
            RoomKind::Public
        },
        member_count: row.get::<_, i32>(3).max(0) as u32,
        last_seq: Seq(row.get(4)),
    }
}

const MESSAGE_COLUMNS: &str =
    "m.id, m.room_id, m.seq, m.body, m.created_at, m.client_id, u.id, u.name, u.guest";

fn message_from(row: &Row) -> Message {
    Message {
        id: MessageId(row.get(0)),
        room: RoomId(row.get(1)),
        seq: Seq(row.get(2)),
        body: row.get(3),
        ts: row.get(4),
        client_id: row.get(5),
        sender: user_from(row, 6),
    }
}

async fn room_by_id(client: &impl GenericClient, id: RoomId) -> Result<Option<Room>, StoreError> {
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = $1");
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    Ok(client
        .query_opt(&stmt, &[&id.0])
        .await
        .map_err(backend)?
        .map(|r| room_from(&r)))
}

async fn add_member(
    client: &impl GenericClient,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO members (room_id, user_id, joined_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(backend)?;
    let added = client
        .execute(&stmt, &[&room.0, &user.0, &now_millis()])
        .await
        .map_err(backend)?
        == 1;
    if added {
        let stmt = client
            .prepare_cached("UPDATE rooms SET member_count = member_count + 1 WHERE id = $1")
            .await
            .map_err(backend)?;
        client.execute(&stmt, &[&room.0]).await.map_err(backend)?;
    }
    Ok(added)
}

async fn find_message(
    client: &impl GenericClient,
    sender: UserId,
    room: RoomId,
    client_id: &str,
) -> Result<Option<Message>, StoreError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE m.sender_id = $1 AND m.room_id = $2 AND m.client_id = $3"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
    Ok(client
        .query_opt(&stmt, &[&sender.0, &room.0, &client_id])
        .await
        .map_err(backend)?
        .map(|r| message_from(&r)))
}

impl PostgresStore {
    /// Connects to the database at `url` (creating it if missing), migrates its schema, and
    /// keeps up to `pool_size` connections.
    pub async fn connect(url: &str, pool_size: usize) -> Result<PostgresStore, StoreError> {
        Self::connect_with(url, PoolLimits::with_size(pool_size)).await
    }

    /// `connect` with every limit of the connection pool given.
    pub async fn connect_with(url: &str, limits: PoolLimits) -> Result<PostgresStore, StoreError> {
        let config = parse_url(url)?;
        create_database_if_missing(&config).await?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(limits.size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(limits.wait_timeout))
            .create_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(backend)?;
        migrate(&pool).await?;
        Ok(PostgresStore {
            pool,
            max_waiting: limits.max_waiting,
        })
    }

    /// Queries waiting for a pooled connection now.
    pub fn waiting_for_connection(&self) -> usize {
        self.pool.status().waiting
    }

    /// A pooled connection; `Busy` when too many queries wait for one already or this one
    /// waited too long (the database is saturated, not down: a new connection that cannot be
    /// opened is still a backend failure).
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        if self.pool.status().waiting >= self.max_waiting {
            return Err(StoreError::Busy);
        }
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                StoreError::Busy
            }
            other => backend(other),
        })
    }

    /// Inserts a message in a transaction that holds the room's row lock: one statement bumps
    /// the room's seq and inserts with it. None if nothing was stored: the same (sender, room,
    /// client_id) is stored already (also by a concurrent attempt) or the room does not exist;
    /// the transaction is then rolled back, so no seq is spent.
    async fn insert_message(
        client: &mut deadpool_postgres::Object,
        message: &NewMessage,
    ) -> Result<Option<Message>, StoreError> {
        let tx = client.transaction().await.map_err(backend)?;
        let insert = tx
            .prepare_cached(
                "WITH bump AS (
                     UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq
                 )
                 INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at)
                 SELECT $1, last_seq, $2, $3, $4, $5 FROM bump
                 ON CONFLICT (sender_id, room_id, client_id) DO NOTHING RETURNING id, seq",
            )
            .await
            .map_err(backend)?;
        let row = tx
            .query_opt(
                &insert,
                &[
                    &message.room.0,
                    &message.sender.id.0,
                    &message.body,
                    &message.client_id,
                    &message.ts,
                ],
            )
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            tx.rollback().await.map_err(backend)?;
            return Ok(None);
        };
        tx.commit().await.map_err(backend)?;
        Ok(Some(Message {
            id: MessageId(row.get(0)),
            room: message.room,
            seq: Seq(row.get(1)),
            sender: message.sender.clone(),
            body: message.body.clone(),
            ts: message.ts,
            client_id: message.client_id.clone(),
        }))
    }
}

/// A database name for tests and scratch use: `prefix` plus a suffix unique to this process
/// and call. Postgres folds unquoted names to lower case, so it is lower case.
pub fn unique_database_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
    format!(
        "{}_{}_{}_{}",
        prefix.to_lowercase(),
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database name replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{database}?{q}"),
        None => format!("{host_part}/{database}"),
    }
}

/// Drops the database `url` names (for tests cleaning up after themselves).
pub async fn drop_database(url: &str) -> Result<(), StoreError> {
    let config = parse_url(url)?;
    let Some(name) = config.get_dbname().map(str::to_string) else {
        return Ok(());
    };
    let mut admin = config.clone();
    admin.dbname("postgres");
    let (client, conn) = admin.connect(NoTls).await.map_err(backend)?;
    let driver = tokio::spawn(conn);
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    let result = client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        .await
        .map_err(backend);
    drop(client);
    let _ = driver.await;
    result
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        guest: bool,
    ) -> Result<User, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO users (name, name_key, password_hash, guest, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .await
            .map_err(backend)?;
        let key = name_key(name);
        match client
            .query_one(&stmt, &[&name, &key, &password_hash, &guest, &now_millis()])
            .await
        {
            Ok(row) => Ok(User {
                id: UserId(row.get(0)),
                name: name.to_string(),
                guest,
            }),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict("name taken".into())),
            Err(e) => Err(backend(e)),
        }
    }

    async fn credentials(&self, name: &str) -> Result<Option<Credentials>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT id, name, guest, password_hash FROM users WHERE name_key = $1")
            .await
            .map_err(backend)?;
        Ok(client
            .query_opt(&stmt, &[&name_key(name)])
            .await
            .map_err(backend)?
            .map(|row| Credentials {
                user: user_from(&row, 0),
                password_hash: row.get(3),
            }))
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        Ok(self.credentials(name).await?.map(|c| c.user))
    }

    async fn create_session(&self, token_hash: &[u8], user: UserId) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO sessions (token_hash, user_id, created_at) VALUES ($1, $2, $3)",
            )
            .await
            .map_err(backend)?;
        client
            .execute(&stmt, &[&token_hash, &user.0, &now_millis()])
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn session_user(&self, token_hash: &[u8]) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT u.id, u.name, u.guest FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1",
            )
            .await
            .map_err(backend)?;
        Ok(client
            .query_opt(&stmt, &[&token_hash])
            .await
            .map_err(backend)?
            .map(|row| user_from(&row, 0)))
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<Option<UserId>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id")
            .await
            .map_err(backend)?;
        Ok(client
            .query_opt(&stmt, &[&token_hash])
            .await
            .map_err(backend)?
            .map(|row| UserId(row.get(0))))
    }

    async fn ensure_public_room(&self, name: &str) -> Result<Room, StoreError> {
        let client = self.client().await?;
        let key = name_key(name);
        let insert = client
            .prepare_cached(
                "INSERT INTO rooms (name, kind, name_key, created_at) VALUES ($1, 'public', $2, $3)
                 ON CONFLICT (name_key) DO NOTHING",
            )
            .await
            .map_err(backend)?;
        client
            .execute(&insert, &[&name, &key, &now_millis()])
            .await
            .map_err(backend)?;
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.name_key = $1");
        let select = client.prepare_cached(&sql).await.map_err(backend)?;
        let row = client.query_one(&select, &[&key]).await.map_err(backend)?;
        Ok(room_from(&row))
    }

    async fn create_room(&self, name: &str, creator: UserId) -> Result<Room, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO rooms (name, kind, name_key, created_at) VALUES ($1, 'public', $2, $3)
                 RETURNING id",
            )
            .await
            .map_err(backend)?;
        let id = match tx
            .query_one(&insert, &[&name, &name_key(name), &now_millis()])
            .await
        {
            Ok(row) => RoomId(row.get(0)),
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict("room name taken".into()))
            }
            Err(e) => return Err(backend(e)),
        };
        add_member(&tx, id, creator).await?;
        let room = room_by_id(&tx, id).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(backend)?;
        Ok(room)
    }

    async fn room(&self, room: RoomId) -> Result<Option<Room>, StoreError> {
        room_by_id(&self.client().await?, room).await
    }

    async fn public_rooms(&self) -> Result<Vec<Room>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.kind = 'public' ORDER BY r.name_key"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
        let rows = client.query(&stmt, &[]).await.map_err(backend)?;
        Ok(rows.iter().map(room_from).collect())
    }

    async fn rooms_of(&self, user: UserId) -> Result<Vec<(Room, Option<User>)>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {ROOM_COLUMNS}, p.id, p.name, p.guest
             FROM members me JOIN rooms r ON r.id = me.room_id
             LEFT JOIN members pm ON r.kind = 'dm' AND pm.room_id = r.id AND pm.user_id != me.user_id
             LEFT JOIN users p ON p.id = pm.user_id
             WHERE me.user_id = $1 ORDER BY r.id"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
        let rows = client.query(&stmt, &[&user.0]).await.map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| {
                let peer = row.get::<_, Option<i64>>(5).map(|_| user_from(row, 5));
                (room_from(row), peer)
            })
            .collect())
    }

    async fn join(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let added = add_member(&tx, room, user).await?;
        tx.commit().await.map_err(backend)?;
        Ok(added)
    }

    async fn leave(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let delete = tx
            .prepare_cached("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
            .await
            .map_err(backend)?;
        let removed = tx
            .execute(&delete, &[&room.0, &user.0])
            .await
            .map_err(backend)?
            == 1;
        if removed {
            let update = tx
                .prepare_cached("UPDATE rooms SET member_count = member_count - 1 WHERE id = $1")
                .await
                .map_err(backend)?;
            tx.execute(&update, &[&room.0]).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(removed)
    }

    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<Seq>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE members m SET read_seq = GREATEST(m.read_seq, LEAST($3, r.last_seq))
                 FROM rooms r WHERE r.id = m.room_id AND m.room_id = $1 AND m.user_id = $2
                 RETURNING m.read_seq",
            )
            .await
            .map_err(backend)?;
        Ok(client
            .query_opt(&stmt, &[&room.0, &user.0, &seq.0])
            .await
            .map_err(backend)?
            .map(|row| Seq(row.get(0))))
    }

    async fn read_markers(&self, user: UserId) -> Result<Vec<(RoomId, Seq)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT room_id, read_seq FROM members
                 WHERE user_id = $1 AND read_seq > 0 ORDER BY room_id",
            )
            .await
            .map_err(backend)?;
        Ok(client
            .query(&stmt, &[&user.0])
            .await
            .map_err(backend)?
            .iter()
            .map(|row| (RoomId(row.get(0)), Seq(row.get(1))))
            .collect())
    }

    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2")
            .await
            .map_err(backend)?;
        Ok(client
            .query_opt(&stmt, &[&room.0, &user.0])
            .await
            .map_err(backend)?
            .is_some())
    }

    async fn members(&self, room: RoomId) -> Result<Vec<User>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT u.id, u.name, u.guest FROM members m JOIN users u ON u.id = m.user_id
                 WHERE m.room_id = $1 ORDER BY u.name_key",
            )
            .await
            .map_err(backend)?;
        let rows = client.query(&stmt, &[&room.0]).await.map_err(backend)?;
        Ok(rows.iter().map(|row| user_from(row, 0)).collect())
    }

    async fn open_dm(&self, a: UserId, b: UserId) -> Result<(Room, bool), StoreError> {
        let key = format!("{}:{}", a.min(b).0, a.max(b).0);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO rooms (name, kind, dm_key, created_at) VALUES ('dm', 'dm', $1, $2)
                 ON CONFLICT (dm_key) DO NOTHING RETURNING id",
            )
            .await
            .map_err(backend)?;
        let created = tx
            .query_opt(&insert, &[&key, &now_millis()])
            .await
            .map_err(backend)?;
        let (id, created) = match created {
            Some(row) => (RoomId(row.get(0)), true),
            None => {
                let select = tx
                    .prepare_cached("SELECT id FROM rooms WHERE dm_key = $1")
                    .await
                    .map_err(backend)?;
                let row = tx.query_one(&select, &[&key]).await.map_err(backend)?;
                (RoomId(row.get(0)), false)
            }
        };
        if created {
            add_member(&tx, id, a).await?;
            add_member(&tx, id, b).await?;
        }
        let room = room_by_id(&tx, id).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(backend)?;
        Ok((room, created))
    }

    async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        // One connection for the whole append: once it has one, an append is not refused
        // halfway for a busy pool. The insert comes first (a retry is the rare case): three
        // round trips (BEGIN, the insert, COMMIT) where a lookup first made five.
        let mut client = self.client().await?;
        if let Some(stored) = Self::insert_message(&mut client, &message).await? {
            return Ok(Appended {
                message: stored,
                duplicate: false,
            });
        }
        // Stored already (by an earlier attempt, or a concurrent one that won); or no room.
        let original = find_message(&client, message.sender.id, message.room, &message.client_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(Appended {
            message: original,
            duplicate: true,
        })
    }

    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
             WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
        let rows = client
            .query(&stmt, &[&room.0, &after.0, &i64::from(limit)])
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(message_from).collect())
    }

    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let before = before.map_or(i64::MAX, |s| s.0);
        let client = self.client().await?;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
             WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(backend)?;
        let rows = client
            .query(&stmt, &[&room.0, &before, &i64::from(limit)])
            .await
            .map_err(backend)?;
        let mut out: Vec<Message> = rows.iter().map(message_from).collect();
        out.reverse();
        Ok(out)
    }

    async fn shutdown(&self) {
        self.pool.close();
    }
}
