//! Whole PostgreSQL databases: parsing a `postgres://` URL, creating the database it names
//! when missing, and the helpers tests use to make and drop a database of their own.

use super::error::{backend, is_unique_violation};
use natter_core::StoreError;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

/// Parses a `postgres://` URL, with a connect timeout if it names none.
pub(super) fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
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
pub(super) async fn create_database_if_missing(
    config: &tokio_postgres::Config,
) -> Result<(), StoreError> {
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
