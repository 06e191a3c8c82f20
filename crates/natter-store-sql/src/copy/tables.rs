//! What `natter migrate` copies: every table of the schema both backends share, its columns
//! with their PostgreSQL types, and its primary key (the order rows are copied in, and where
//! an interrupted copy resumes). Parents come before children, so PostgreSQL's foreign keys
//! hold after every batch.
//!
//! Not copied, on purpose: `schema_migrations` (the target migrates itself), SQLite's search
//! indexes (`message_words`, `message_trigrams` and their shadow tables, `search_progress`:
//! PostgreSQL indexes `messages` as rows arrive), and `messages.words` on PostgreSQL (a
//! generated column). Blobs (`file_chunks` on PostgreSQL) come from the SQLite installation's
//! files directory, not from a table.

/// The PostgreSQL type a column is written as (SQLite stores booleans as 0/1 integers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int8,
    Int4,
    Int2,
    Bool,
    Text,
    Bytes,
}

/// One table to copy.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    /// Every column, in the order read and written.
    pub columns: &'static [(&'static str, Kind)],
    /// The primary key's columns (a prefix of nothing in particular: named, in key order).
    pub key: &'static [&'static str],
    /// The PostgreSQL sequence behind an `id BIGSERIAL` key, moved past the copied ids.
    pub serial: bool,
}

use Kind::*;

/// Every table copied, parents first.
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Int8),
            ("name", Text),
            ("name_key", Text),
            ("password_hash", Text),
            ("guest", Bool),
            ("created_at", Int8),
            ("last_active", Int8),
            ("admin", Bool),
            ("deactivated", Bool),
            ("display_name", Text),
            ("status", Text),
            ("avatar", Text),
            ("bot", Bool),
        ],
        key: &["id"],
        serial: true,
    },
    Table {
        name: "sessions",
        columns: &[
            ("token_hash", Bytes),
            ("user_id", Int8),
            ("created_at", Int8),
            ("last_used_at", Int8),
            ("label", Text),
        ],
        key: &["token_hash"],
        serial: false,
    },
    Table {
        name: "rooms",
        columns: &[
            ("id", Int8),
            ("name", Text),
            ("kind", Text),
            ("name_key", Text),
            ("dm_key", Text),
            ("member_count", Int4),
            ("last_seq", Int8),
            ("created_at", Int8),
            ("created_by", Int8),
            ("topic", Text),
            ("description", Text),
            ("archived", Bool),
        ],
        key: &["id"],
        serial: true,
    },
    Table {
        name: "members",
        columns: &[
            ("room_id", Int8),
            ("user_id", Int8),
            ("joined_at", Int8),
            ("read_seq", Int8),
            ("notify", Text),
            ("role", Text),
            ("muted_until", Int8),
        ],
        key: &["room_id", "user_id"],
        serial: false,
    },
    Table {
        name: "messages",
        columns: &[
            ("id", Int8),
            ("room_id", Int8),
            ("seq", Int8),
            ("sender_id", Int8),
            ("body", Text),
            ("client_id", Text),
            ("created_at", Int8),
            ("kind", Int2),
            ("target", Int8),
            ("emoji", Text),
            ("reaction_add", Bool),
            ("thread", Int8),
            ("also_room", Bool),
            ("mentions", Text),
            ("mentions_room", Bool),
            ("edited_at", Int8),
            ("deleted", Bool),
            ("original_body", Text),
            ("replies", Int4),
            ("last_reply_ts", Int8),
        ],
        key: &["id"],
        serial: true,
    },
    Table {
        name: "reactions",
        columns: &[
            ("room_id", Int8),
            ("seq", Int8),
            ("emoji", Text),
            ("user_id", Int8),
            ("emoji_order", Int8),
            ("user_order", Int8),
        ],
        key: &["room_id", "seq", "emoji", "user_id"],
        serial: false,
    },
    Table {
        name: "mentions",
        columns: &[
            ("room_id", Int8),
            ("user_id", Int8),
            ("seq", Int8),
            ("sender_id", Int8),
        ],
        key: &["room_id", "user_id", "seq"],
        serial: false,
    },
    Table {
        name: "files",
        columns: &[
            ("id", Text),
            ("owner_id", Int8),
            ("name", Text),
            ("size", Int8),
            ("type", Text),
            ("width", Int4),
            ("height", Int4),
            ("hash", Text),
            ("thumb_hash", Text),
            ("created_at", Int8),
            ("posted", Bool),
        ],
        key: &["id"],
        serial: false,
    },
    Table {
        name: "message_files",
        columns: &[
            ("room_id", Int8),
            ("seq", Int8),
            ("n", Int4),
            ("file_id", Text),
        ],
        key: &["room_id", "seq", "n"],
        serial: false,
    },
    Table {
        name: "server_secrets",
        columns: &[("name", Text), ("value", Bytes)],
        key: &["name"],
        serial: false,
    },
    Table {
        name: "bans",
        columns: &[
            ("room_id", Int8),
            ("user_id", Int8),
            ("by_id", Int8),
            ("reason", Text),
            ("created_at", Int8),
        ],
        key: &["room_id", "user_id"],
        serial: false,
    },
    Table {
        name: "invites",
        columns: &[
            ("room_id", Int8),
            ("user_id", Int8),
            ("by_id", Int8),
            ("created_at", Int8),
        ],
        key: &["room_id", "user_id"],
        serial: false,
    },
    Table {
        name: "audit",
        columns: &[
            ("id", Int8),
            ("created_at", Int8),
            ("actor_id", Int8),
            ("action", Text),
            ("room_id", Int8),
            ("target_id", Int8),
            ("detail", Text),
        ],
        key: &["id"],
        serial: true,
    },
    Table {
        name: "bots",
        columns: &[("user_id", Int8), ("owner_id", Int8), ("created_at", Int8)],
        key: &["user_id"],
        serial: false,
    },
    Table {
        name: "api_tokens",
        columns: &[
            ("id", Int8),
            ("token_hash", Bytes),
            ("bot_id", Int8),
            ("name", Text),
            ("rooms", Text),
            ("hook_room", Int8),
            ("created_by", Int8),
            ("created_at", Int8),
            ("last_used_at", Int8),
        ],
        key: &["id"],
        serial: true,
    },
];

/// SQLite tables that are not copied (see the module doc); anything else unknown is refused.
pub(crate) const SQLITE_SKIPPED: &[&str] = &["schema_migrations", "search_progress"];
/// SQLite table name prefixes that are not copied: the FTS5 indexes and their shadow tables.
pub(crate) const SQLITE_SKIPPED_PREFIXES: &[&str] = &[
    "message_words",
    "message_trigrams",
    "message_trigram_terms",
    "sqlite_",
];

/// PostgreSQL tables that are not rows of a copied table: the version table, the blobs
/// (copied from the files directory), and the copy's own progress table.
pub(crate) const POSTGRES_OTHER: &[&str] = &["schema_migrations", "file_chunks", super::PROGRESS];

impl Table {
    /// `"a", "b", "c"`: the columns for SELECT and INSERT.
    pub fn column_list(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(|(c, _)| quote(c)).collect();
        names.join(", ")
    }

    /// `"a", "b"`: the key for ORDER BY.
    pub fn key_list(&self) -> String {
        let names: Vec<String> = self.key.iter().map(|c| quote(c)).collect();
        names.join(", ")
    }

    /// The kind of key column `i`.
    pub fn key_kind(&self, i: usize) -> Kind {
        let name = self.key[i];
        self.columns
            .iter()
            .find(|(c, _)| *c == name)
            .map_or(Int8, |(_, k)| *k)
    }

    /// Where key column `i` sits among the columns.
    pub fn key_position(&self, i: usize) -> usize {
        let name = self.key[i];
        self.columns
            .iter()
            .position(|(c, _)| *c == name)
            .unwrap_or(0)
    }
}

/// A column or table name quoted for SQL (`type` is a keyword in neither backend's way, but
/// quoting costs nothing).
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether a SQLite table is deliberately not copied.
pub(crate) fn sqlite_skipped(name: &str) -> bool {
    SQLITE_SKIPPED.contains(&name) || SQLITE_SKIPPED_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_column_is_a_column() {
        for t in TABLES {
            for k in t.key {
                assert!(
                    t.columns.iter().any(|(c, _)| c == k),
                    "{}.{k} is a key but not a column",
                    t.name
                );
            }
            assert!(!t.key.is_empty(), "{} has no key", t.name);
        }
    }
}
