//! Keeping the SQLite search indexes in step (migration 0007, ADR 0021): the messages stored
//! since `search_progress.indexed_up_to` go into the word index, and those with a character of
//! a script written without spaces into the trigram index, with one statement each per write
//! batch, before its COMMIT. One statement, not one per message, because FTS5 writes its
//! pending terms out at each statement's end: a trigger per row cost a segment per message.

use rusqlite::{params, Connection, OptionalExtension};

/// `natter_core::search::is_unspaced` as a GLOB pattern, as migration 0007's triggers use it
/// (edits are rare; the per-batch insert below uses the faster `natter_unspaced`).
#[cfg(test)]
pub(crate) const UNSPACED_GLOB: &str =
    "*[฀-໿က-႟ក-៿⺀-⿟぀-ヿ㄀-ㄯ㄰-㆏ㇰ-ㇿ㐀-䶿一-鿿가-힯豈-﫿ｦ-ﾟ𠀀-𯨟]*";

/// Indexes the messages stored since the last call (in the caller's transaction); returns how
/// many rows it looked at. Every write goes through the writer, which calls this before each
/// COMMIT; a tool that writes `messages` itself must call it too (the search generator does),
/// on a connection with [`add_functions`](super::connection::add_functions).
pub fn index_new_messages(conn: &Connection) -> rusqlite::Result<u64> {
    let done: i64 = conn
        .prepare_cached("SELECT indexed_up_to FROM search_progress")?
        .query_row([], |r| r.get(0))?;
    let newest: Option<i64> = conn
        .prepare_cached("SELECT max(id) FROM messages")?
        .query_row([], |r| r.get(0))
        .optional()?
        .flatten();
    let Some(newest) = newest.filter(|&n| n > done) else {
        return Ok(0);
    };
    conn.prepare_cached(
        "INSERT INTO message_words (rowid, body)
         SELECT id, body FROM messages WHERE id > ?1 AND id <= ?2 AND kind = 0",
    )?
    .execute(params![done, newest])?;
    conn.prepare_cached(
        "INSERT INTO message_trigrams (rowid, body)
         SELECT id, body || char(10, 10) FROM messages
         WHERE id > ?1 AND id <= ?2 AND kind = 0 AND natter_unspaced(body)",
    )?
    .execute(params![done, newest])?;
    conn.prepare_cached("UPDATE search_progress SET indexed_up_to = ?1")?
        .execute(params![newest])?;
    Ok((newest - done) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::search::is_unspaced;

    /// The GLOB and `is_unspaced` agree at every range's edges and a step outside them, and
    /// the migration's triggers use this very pattern.
    #[test]
    fn the_glob_is_is_unspaced() {
        let conn = Connection::open_in_memory().expect("sqlite");
        let glob = |c: char| -> bool {
            conn.query_row(
                "SELECT ?1 GLOB ?2",
                params![format!("ab{c}cd"), UNSPACED_GLOB],
                |r| r.get(0),
            )
            .expect("glob")
        };
        let inner = UNSPACED_GLOB
            .trim_start_matches("*[")
            .trim_end_matches("]*");
        let chars: Vec<char> = inner.chars().collect();
        let mut edges = Vec::new();
        for range in chars.chunks(3) {
            let (lo, hi) = (range[0] as u32, range[2] as u32);
            edges.extend([lo.saturating_sub(1), lo, hi, hi + 1]);
        }
        for code in edges.into_iter().chain([0x41, 0xE9, 0x4E2D]) {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            assert_eq!(glob(c), is_unspaced(c), "U+{code:04X}");
        }
        let migration = include_str!("../../migrations/sqlite/0007_search_speed.sql");
        assert_eq!(
            migration.matches(UNSPACED_GLOB).count(),
            4,
            "every GLOB of the migration"
        );
    }
}
