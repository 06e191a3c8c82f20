//! PostgreSQL and pool failures as `StoreError`s: the log sees the server's own message for
//! database errors; unique violations are told apart (they become conflicts or retries).

use natter_core::StoreError;
use tokio_postgres::error::SqlState;

/// A failure as the log should show it (the server's own message for database errors).
pub(crate) trait Describe {
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

pub(crate) fn backend(e: impl Describe) -> StoreError {
    StoreError::Backend(e.describe())
}

pub(super) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}
