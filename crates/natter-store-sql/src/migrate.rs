//! Schema versions: the numbered migrations of each backend (`migrations/<backend>/NNNN_name.sql`,
//! embedded in the binary), the `schema_migrations` table that records which ones a database
//! has, and the rules both backends follow when they open a database:
//!
//! - migrations run in version order, each in its own transaction together with its row in
//!   `schema_migrations`, so a database is always at a version this list names;
//! - a database made before versions were recorded (natter's tables, no `schema_migrations`)
//!   is recorded as version 1, the schema it already has (the baseline), then upgraded;
//! - a database at a version newer than this binary knows is refused, never touched.
//!
//! Adding a migration is one file and one line per backend: `0002_what.sql` and its entry at
//! the end of [`SQLITE`] and [`POSTGRES`]. A migration, once released, is never edited.
//!
//! The runners themselves live beside each backend's connection code (`sqlite::migrate`,
//! `postgres::migrate`); this module holds what they share.

use natter_core::StoreError;

/// One step of a backend's schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number: 1, 2, 3... in the order applied; recorded in `schema_migrations`.
    pub version: i64,
    /// A short name, recorded beside the version (the file is `NNNN_<name>.sql`).
    pub name: &'static str,
    /// The statements, run in one transaction.
    pub sql: &'static str,
}

/// The SQLite schema, oldest first.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "sessions",
        sql: include_str!("../migrations/sqlite/0002_sessions.sql"),
    },
    Migration {
        version: 3,
        name: "room_creator",
        sql: include_str!("../migrations/sqlite/0003_room_creator.sql"),
    },
    Migration {
        version: 4,
        name: "stream_changes",
        sql: include_str!("../migrations/sqlite/0004_stream_changes.sql"),
    },
    Migration {
        version: 5,
        name: "search",
        sql: include_str!("../migrations/sqlite/0005_search.sql"),
    },
    Migration {
        version: 6,
        name: "files",
        sql: include_str!("../migrations/sqlite/0006_files.sql"),
    },
    Migration {
        version: 7,
        name: "search_speed",
        sql: include_str!("../migrations/sqlite/0007_search_speed.sql"),
    },
    Migration {
        version: 8,
        name: "roles",
        sql: include_str!("../migrations/sqlite/0008_roles.sql"),
    },
    Migration {
        version: 9,
        name: "groups",
        sql: include_str!("../migrations/sqlite/0009_groups.sql"),
    },
    Migration {
        version: 10,
        name: "profiles",
        sql: include_str!("../migrations/sqlite/0010_profiles.sql"),
    },
    Migration {
        version: 11,
        name: "bots",
        sql: include_str!("../migrations/sqlite/0011_bots.sql"),
    },
    Migration {
        version: 12,
        name: "user_bot",
        sql: include_str!("../migrations/sqlite/0012_user_bot.sql"),
    },
];

/// The PostgreSQL schema, oldest first.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "sessions",
        sql: include_str!("../migrations/postgres/0002_sessions.sql"),
    },
    Migration {
        version: 3,
        name: "room_creator",
        sql: include_str!("../migrations/postgres/0003_room_creator.sql"),
    },
    Migration {
        version: 4,
        name: "stream_changes",
        sql: include_str!("../migrations/postgres/0004_stream_changes.sql"),
    },
    Migration {
        version: 5,
        name: "search",
        sql: include_str!("../migrations/postgres/0005_search.sql"),
    },
    Migration {
        version: 6,
        name: "files",
        sql: include_str!("../migrations/postgres/0006_files.sql"),
    },
    Migration {
        version: 7,
        name: "search_speed",
        sql: include_str!("../migrations/postgres/0007_search_speed.sql"),
    },
    Migration {
        version: 8,
        name: "roles",
        sql: include_str!("../migrations/postgres/0008_roles.sql"),
    },
    Migration {
        version: 9,
        name: "groups",
        sql: include_str!("../migrations/postgres/0009_groups.sql"),
    },
    Migration {
        version: 10,
        name: "profiles",
        sql: include_str!("../migrations/postgres/0010_profiles.sql"),
    },
    Migration {
        version: 11,
        name: "bots",
        sql: include_str!("../migrations/postgres/0011_bots.sql"),
    },
    Migration {
        version: 12,
        name: "user_bot",
        sql: include_str!("../migrations/postgres/0012_user_bot.sql"),
    },
];

/// The version a database made before versioned migrations is recorded at: its tables are
/// those of migration 1. The first unversioned schema lacked one column of it,
/// `members.read_seq` (read markers, its second step); a database at the baseline that lacks
/// it gets it, when it is recorded or whenever it is found missing at version 1.
pub(crate) const BASELINE: i64 = 1;
/// Migration 1's name, recorded with a baseline.
pub(crate) const BASELINE_NAME: &str = "initial";

/// The tables of migration 1. A database with all of them and no `schema_migrations` is a
/// baseline; with none of them, a fresh database; with some, neither (refused).
pub(crate) const BASELINE_TABLES: &[&str] = &["users", "sessions", "rooms", "members", "messages"];

/// The newest version in `migrations` (0 for none).
pub fn latest(migrations: &[Migration]) -> i64 {
    migrations.last().map_or(0, |m| m.version)
}

/// Refuses a database whose schema is newer than `migrations` reach: this binary would not
/// know what the newer migrations changed.
pub(crate) fn refuse_if_newer(found: i64, migrations: &[Migration]) -> Result<(), StoreError> {
    let known = latest(migrations);
    if found > known {
        return Err(StoreError::Backend(format!(
            "the database schema is version {found}; this natter knows up to {known}: \
             upgrade natter"
        )));
    }
    Ok(())
}

/// The first migration after version `applied`, if any.
pub(crate) fn next_after(migrations: &[Migration], applied: i64) -> Option<&Migration> {
    migrations.iter().find(|m| m.version > applied)
}

/// Whether a database without `schema_migrations` that holds `present` (of
/// [`BASELINE_TABLES`]) is a baseline (true) or fresh (false); refused if it holds only some.
pub(crate) fn is_baseline(present: &[String]) -> Result<bool, StoreError> {
    let missing: Vec<&str> = BASELINE_TABLES
        .iter()
        .copied()
        .filter(|t| !present.iter().any(|p| p == t))
        .collect();
    if missing.is_empty() {
        Ok(true)
    } else if missing.len() == BASELINE_TABLES.len() {
        Ok(false)
    } else {
        Err(StoreError::Backend(format!(
            "the database has some of natter's tables but not {}, and no schema_migrations \
             table: not a natter database this version can upgrade",
            missing.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From 1, strictly increasing (a number may be skipped while changes in flight take
    /// theirs; runners apply whatever comes after a database's version).
    fn numbered_from_one(migrations: &[Migration]) {
        assert_eq!(migrations.first().map(|m| m.version), Some(1));
        for pair in migrations.windows(2) {
            assert!(
                pair[0].version < pair[1].version,
                "{} is out of order",
                pair[1].name
            );
        }
        for m in migrations {
            assert!(!m.sql.trim().is_empty(), "{} is empty", m.name);
        }
    }

    #[test]
    fn versions_count_up_from_one_in_both_backends() {
        numbered_from_one(SQLITE);
        numbered_from_one(POSTGRES);
    }

    #[test]
    fn the_baseline_is_migration_one() {
        for list in [SQLITE, POSTGRES] {
            assert_eq!((list[0].version, list[0].name), (BASELINE, BASELINE_NAME));
        }
    }

    #[test]
    fn both_backends_have_the_same_steps() {
        let steps = |ms: &[Migration]| ms.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(steps(SQLITE), steps(POSTGRES));
    }

    #[test]
    fn a_newer_schema_is_refused_with_both_versions_named() {
        assert!(refuse_if_newer(latest(SQLITE), SQLITE).is_ok());
        let err = refuse_if_newer(latest(SQLITE) + 1, SQLITE).expect_err("refused");
        assert!(
            err.to_string().contains(&format!(
                "the database schema is version {}; this natter knows up to {}: upgrade natter",
                latest(SQLITE) + 1,
                latest(SQLITE)
            )),
            "{err}"
        );
    }

    #[test]
    fn only_all_or_none_of_the_tables_is_a_database_to_open() {
        let all: Vec<String> = BASELINE_TABLES.iter().map(|t| t.to_string()).collect();
        assert!(is_baseline(&all).expect("all"));
        assert!(!is_baseline(&[]).expect("none"));
        assert!(is_baseline(&all[..2]).is_err());
    }
}
