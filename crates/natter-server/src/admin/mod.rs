//! The operator's commands of the `natter` binary: `natter admin ...` (accounts, rooms and
//! counts, on the database the server uses) and `natter backup PATH`. `main` parses them
//! with the settings and calls [`execute`]; tests call it in process with a buffer for
//! stdout. Serving (`natter`, `natter serve`) is not here: it is [`crate::run`].
//!
//! Modules: `accounts` (create-user, reset-password, grant-admin, revoke-admin, deactivate), `views` (list-users, list-rooms,
//! stats), `backup` (the SQLite snapshot and its blobs; the pg_dump advice), `migrate` (a
//! SQLite installation copied onto PostgreSQL), `output` (text tables, times, JSON).
//!
//! Passwords are written to `out` only (they are the command's answer), never logged.

mod accounts;
mod backup;
mod migrate;
mod output;
mod views;

use crate::config::{Config, Database};
use natter_core::{ChatError, Store, StoreError};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// What `natter` does: serve (no command, or `serve`), or one operator's command.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Serve: what `natter` with no command does (`natter serve ARGS` is `natter ARGS`).
    Serve,
    /// Manage accounts and look at rooms and counts, on the database the server uses
    /// (`--database`, `--data-dir`); safe while the server runs.
    Admin(AdminArgs),
    /// Copy the SQLite database and the uploads it names into a new directory PATH, while
    /// the server runs; the copy is itself a data directory (`--data-dir PATH` serves it).
    /// On PostgreSQL, prints the `pg_dump` command to use instead.
    Backup(BackupArgs),
    /// Copy a SQLite installation (stop its server first) onto a new PostgreSQL database:
    /// every table, ids and seqs kept, and every upload; resumable (run it again after an
    /// interruption), verified (counts compared at the end). Ignores `--database`.
    Migrate(MigrateArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Print JSON (one document) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: AdminAction,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminAction {
    /// Create an account (the sign-up's name and password rules); it joins `general`.
    CreateUser {
        name: String,
        /// The password; without it one is generated and printed (a password given here is
        /// visible to other users of this machine in the process list).
        #[arg(long)]
        password: Option<String>,
    },
    /// Set a new password (generated and printed, or `--password`) and delete every session
    /// of the user, so their tokens stop working.
    ResetPassword {
        name: String,
        /// The new password; without it one is generated and printed.
        #[arg(long)]
        password: Option<String>,
    },
    /// Every account by id: name, id, guest, created, last active.
    ListUsers,
    /// Every room by id: id, name, kind, members, last seq.
    ListRooms,
    /// Counts: users, guests, rooms, messages, sessions, files and their bytes.
    Stats,
    /// Make an account a server admin (moderates every room, reads the audit log).
    GrantAdmin { name: String },
    /// Take server admin back from an account.
    RevokeAdmin { name: String },
    /// Deactivate an account: sessions deleted, sign-in refused, messages kept.
    Deactivate { name: String },
}

#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// The directory to create (its parent must exist).
    pub path: PathBuf,
    /// Replace PATH if it exists (only once the new copy is complete).
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// `sqlite:PATH`: the data directory (its natter.db and files/) or the database file.
    #[arg(long, value_name = "sqlite:PATH")]
    pub from: String,
    /// `postgres://...`: the database to fill, created if missing; it must be empty, or hold
    /// an interrupted copy of the same source.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The uploads directory, when it is not `files/` beside the database.
    #[arg(long, value_name = "DIR")]
    pub files: Option<PathBuf>,
    /// Rows per batch (one transaction each).
    #[arg(long, default_value_t = natter_store_sql::copy::DEFAULT_BATCH_ROWS)]
    pub batch_rows: usize,
    /// Stop after this many committed batches and blobs, as a kill would (for tests).
    #[arg(long, hide = true)]
    pub stop_after: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Why an operator's command failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// A chat rule refused it (the code and message the HTTP API would give).
    #[error("{}: {}", .0.code.as_str(), .0.message)]
    Refused(ChatError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// What was asked for cannot be done here (the message says why).
    #[error("{0}")]
    Usage(String),
    /// It ran and failed, or found a mismatch (the message says which).
    #[error("{0}")]
    Failed(String),
}

impl From<ChatError> for OpsError {
    fn from(e: ChatError) -> Self {
        OpsError::Refused(e)
    }
}

impl OpsError {
    /// The process exit code: 2 for a command that cannot apply here, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpsError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Runs an operator's command against the store `config` names, writing its answer to
/// `out`. `Command::Serve` is not one (main serves instead): it is refused.
pub async fn execute(
    command: &Command,
    config: &Config,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    match command {
        Command::Serve => Err(OpsError::Usage("serve is not an operator's command".into())),
        Command::Backup(args) => backup::backup(args, config, out).await,
        Command::Migrate(args) => migrate::migrate(args, out).await,
        Command::Admin(args) => {
            let creates = matches!(args.action, AdminAction::CreateUser { .. });
            let store = open_store(config, creates).await?;
            let result = admin(args, config, &store, out).await;
            store.shutdown().await;
            result
        }
    }
}

async fn admin(
    args: &AdminArgs,
    config: &Config,
    store: &Arc<dyn Store>,
    out: &mut (dyn Write + Send),
) -> Result<(), OpsError> {
    let json = args.json;
    match &args.action {
        AdminAction::CreateUser { name, password } => {
            accounts::create_user(store, config, name, password.as_deref(), json, out).await
        }
        AdminAction::ResetPassword { name, password } => {
            accounts::reset_password(store, config, name, password.as_deref(), json, out).await
        }
        AdminAction::ListUsers => views::list_users(store, json, out).await,
        AdminAction::ListRooms => views::list_rooms(store, json, out).await,
        AdminAction::Stats => views::stats(store, json, out).await,
        AdminAction::GrantAdmin { name } => accounts::set_admin(store, name, true, json, out).await,
        AdminAction::RevokeAdmin { name } => {
            accounts::set_admin(store, name, false, json, out).await
        }
        AdminAction::Deactivate { name } => accounts::deactivate(store, name, json, out).await,
    }
}

/// The store the server would open. On SQLite, a database that does not exist yet is
/// created only if `create` (making the first account before the first start); otherwise a
/// wrong `--data-dir` would quietly make an empty one.
async fn open_store(config: &Config, create: bool) -> Result<Arc<dyn Store>, OpsError> {
    if let Database::Sqlite(path) = &config.database {
        if !create && !path.exists() {
            return Err(OpsError::Usage(format!(
                "no database at {} (check --data-dir or --database)",
                path.display()
            )));
        }
    }
    let (store, _blobs) = crate::open_store(config).await.map_err(|e| match e {
        crate::RunError::Store(e) => OpsError::Store(e),
        other => OpsError::Usage(other.to_string()),
    })?;
    Ok(store)
}
