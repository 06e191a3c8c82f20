//! SQL backends of Natter's `Store`. [`SqliteStore`] is the default: one writer thread that
//! commits the writes arriving together in one transaction (group commit, acknowledged after
//! COMMIT), and a small pool of reader connections (WAL lets them read while it writes).
//! [`PostgresStore`] is for several nodes sharing one database: a connection pool, with the
//! database allocating ids and per-room sequence numbers. [`migrate`] lists each backend's
//! numbered schema migrations and the rules every open follows (baseline, refusal of newer);
//! `entries` what both backends share about stream entries (changes, mentions, refusals);
//! `search` what they share about search terms (which index finds each, quoting);
//! `file_rows` about file records. Uploads' bytes: [`DirFileStore`] (a directory, with
//! SQLite) and [`PostgresFileStore`] (chunks in the database, so any node serves any file).
//! [`sqlite_backup`]: a consistent copy of a live SQLite database (`natter backup`).
//! [`copy`]: a SQLite installation copied onto PostgreSQL, resumably (`natter migrate`).

#![forbid(unsafe_code)]

mod blobs;
pub mod copy;
mod entries;
mod file_rows;
pub mod migrate;
pub mod postgres;
mod search;
mod sqlite;
pub mod sqlite_backup;

pub use blobs::DirFileStore;
pub use postgres::{PostgresFileStore, PostgresStore};
pub use sqlite::{
    add_functions as sqlite_add_functions, index_new_messages as sqlite_index_new_messages,
    SqliteStore, Synchronous,
};
