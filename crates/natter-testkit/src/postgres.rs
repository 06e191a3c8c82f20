//! A scratch PostgreSQL database for one test: a unique name on the configured server,
//! created by the first store that connects (it migrates), dropped by [`ScratchDatabase::drop`]
//! at the end of a test that passed (a failed test leaves it for a look; CI clears left-overs
//! by their prefixes).

use natter_store_sql::postgres::{drop_database, with_database};
use natter_store_sql::PostgresStore;
use std::sync::Arc;

/// A database of the test's own on the server of `base`.
pub struct ScratchDatabase {
    /// The database's URL (the base URL with the scratch name).
    pub url: String,
}

impl ScratchDatabase {
    /// A new, uniquely named database beside `base`'s (named `prefix_...`).
    pub fn new(base: &str, prefix: &str) -> ScratchDatabase {
        ScratchDatabase {
            url: with_database(base, &crate::unique_database_name(prefix)),
        }
    }

    /// A new database for `test` on the configured PostgreSQL (`NATTER_TEST_POSTGRES`), or
    /// None with a visible skip (a failure when services are required).
    pub fn for_test(test: &str, prefix: &str) -> Option<ScratchDatabase> {
        Some(ScratchDatabase::new(&crate::postgres_url(test)?, prefix))
    }

    /// A store on it with a pool of `pool` connections (the first one creates and migrates).
    pub async fn store(&self, pool: usize) -> Arc<PostgresStore> {
        Arc::new(
            PostgresStore::connect(&self.url, pool)
                .await
                .expect("connect to postgres"),
        )
    }

    /// Drops the database (its stores shut down first).
    pub async fn drop(self) {
        drop_database(&self.url).await.expect("drop database");
    }
}
