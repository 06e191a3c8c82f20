//! SQL backends of Natter's `Store`. [`SqliteStore`] is the default: one writer thread that
//! commits the writes arriving together in one transaction (group commit, acknowledged after
//! COMMIT), and a small pool of reader connections (WAL lets them read while it writes).

#![deny(clippy::unwrap_used)]

mod sqlite;

pub use sqlite::{SqliteStore, Synchronous};
