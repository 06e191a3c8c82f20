//! The contracts of `Store` and `Broker` as reusable test suites: one `pub async fn` per rule,
//! and a macro per trait that stamps one `#[tokio::test]` per rule for a backend, so the first
//! broken rule does not hide the rest. Two backends, one behaviour.
//!
//! - [`store`]: the `Store` rules and [`store_conformance!`](crate::store_conformance), run
//!   for `MemoryStore` (natter-core's tests), SQLite and PostgreSQL (natter-store-sql's).
//! - [`broker`]: the `Broker` rules and [`broker_conformance!`](crate::broker_conformance),
//!   run for `LocalBroker` (natter-core's tests) and Redis (natter-redis's).
//! - [`files`]: the `Store`'s file rules (run by `store_conformance!`) and the `FileStore`
//!   rules with [`file_store_conformance!`](crate::file_store_conformance), run for the
//!   directory and PostgreSQL blob stores (natter-store-sql's tests).
//! - [`moderation`]: rooms and people (room events, private rooms, invitations, admins,
//!   group DMs), run by `store_conformance!`.
//! - [`bots`]: bots, API tokens and webhooks, run by `store_conformance!`.
//! - [`operations`]: the operators' views (every user, every room, counts), run by
//!   `store_conformance!`.
//!
//! The stamped tests name the tokio runtime as `tokio::test`: the crate that uses a macro
//! needs `tokio` (with `macros` and `rt-multi-thread`) among its dev-dependencies.

pub mod bots;
pub mod broker;
pub mod files;
pub mod moderation;
pub mod operations;
pub mod search;
pub mod store;
pub mod stream;

use crate::error::StoreError;
use crate::model::{Change, ChangeOutcome, NewChange, RoomId, User};
use crate::store::Store;

/// `user` joins `room` as the node makes them (`Store::change` with `Change::Join`: the
/// membership and the room's `join` entry in one transaction): true if they became a
/// member, false if they were one.
pub async fn join(store: &dyn Store, room: RoomId, user: &User) -> Result<bool, StoreError> {
    membership(store, room, user, Change::Join { user: user.clone() }).await
}

/// `user` leaves `room` (`Change::Leave`): true if they were a member.
pub async fn leave(store: &dyn Store, room: RoomId, user: &User) -> Result<bool, StoreError> {
    membership(store, room, user, Change::Leave { user: user.clone() }).await
}

async fn membership(
    store: &dyn Store,
    room: RoomId,
    user: &User,
    change: Change,
) -> Result<bool, StoreError> {
    let outcome = store
        .change(NewChange {
            room,
            sender: user.clone(),
            client_id: format!("conformance:{}:{:016x}", change.op(), rand::random::<u64>()),
            ts: crate::model::now_millis(),
            change,
            body: String::new(),
            max_reactions: 0,
        })
        .await?;
    Ok(matches!(outcome, ChangeOutcome::Applied(_)))
}
