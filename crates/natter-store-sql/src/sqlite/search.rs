//! SQLite `search` (migrations 0005 and 0007): words through the FTS5 word index
//! `message_words` (porter stems, bm25 for relevance). A phrase in a script written with
//! spaces goes there too, as an FTS5 phrase (its words in a row), and each row found is checked
//! with `natter_phrase_in` (the exact text, as whole words). A substring with a character of a
//! script without spaces goes through the FTS5 trigram index `message_trigrams`, which holds
//! just the texts with such characters: one of 3 characters or more as a quoted string (its
//! trigrams in a row: exactly the rows holding it, case-folded), a shorter one as the OR of
//! the indexed trigrams that start with it (the index holds each text plus two newlines, so
//! every occurrence starts one). A short substring that starts more than `MAX_SHORT_TERMS` trigrams (a common
//! letter) is checked with `instr` on the rows the rest of the query leaves instead (the
//! searched rooms' messages when nothing else narrows them). Results come in their current
//! state with their reactions, like `message_page`.

use super::error::backend;
use super::rows::{message_from, reaction_from, MESSAGE_COLUMNS};
use super::SqliteStore;
use crate::entries::attach_reactions;
use crate::search::{fts5_string, Terms};
use natter_core::model::*;
use natter_core::search::is_unspaced;
use natter_core::StoreError;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};
use std::fmt::Write as _;

/// The most indexed trigrams a short substring is looked up as (an OR of them); beyond, it is
/// checked on each candidate row instead.
const MAX_SHORT_TERMS: usize = 256;

/// How a short substring is matched: the trigrams that start with it, or a check per row.
enum Short<'a> {
    Trigrams(Vec<String>),
    Check(&'a str),
}

/// The indexed trigrams starting with `prefix`, if there are at most `MAX_SHORT_TERMS`.
fn trigrams_starting(conn: &Connection, prefix: &str) -> Result<Option<Vec<String>>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT term FROM message_trigram_terms
             WHERE term >= ?1 AND term < ?1 || char(1114111) LIMIT ?2",
        )
        .map_err(backend)?;
    let terms = stmt
        .query_map(params![prefix, MAX_SHORT_TERMS as i64 + 1], |r| r.get(0))
        .map_err(backend)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(backend)?;
    Ok((terms.len() <= MAX_SHORT_TERMS).then_some(terms))
}

/// The trigram index's query: every long substring, and each short one as an OR group.
fn trigram_query(long: &[&str], short: &[Short<'_>]) -> Option<String> {
    let mut parts: Vec<String> = long.iter().map(|s| fts5_string(s)).collect();
    for s in short {
        if let Short::Trigrams(terms) = s {
            let any: Vec<String> = terms.iter().map(|t| fts5_string(t)).collect();
            parts.push(format!("({})", any.join(" OR ")));
        }
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

/// The statement and its parameters for `q` (see the module comment for the plan): `terms`
/// are its words and its substrings in scripts without spaces, `phrases` the others.
fn search_sql(
    q: &SearchQuery,
    terms: &Terms<'_>,
    phrases: &[&str],
    short: &[Short<'_>],
) -> (String, Vec<Value>) {
    let mut args: Vec<Value> = Vec::new();
    let trigrams = trigram_query(&terms.long, short);
    // What the word index looks up: the words, and the phrases that have a word to find (one
    // of punctuation alone is only checked, below).
    let word_terms: Vec<String> = terms
        .words
        .iter()
        .copied()
        .chain(
            phrases
                .iter()
                .copied()
                .filter(|p| p.chars().any(char::is_alphanumeric)),
        )
        .map(fts5_string)
        .collect();
    // The index that drives the query: the word index when there are words (its bm25 is the
    // rank), else the trigram index when there is a long substring, else the rooms' rows.
    let (from, rank) = if !word_terms.is_empty() {
        args.push(Value::Text(word_terms.join(" ")));
        (
            "message_words f JOIN messages m ON m.id = f.rowid",
            "f.rank, ",
        )
    } else if trigrams.is_some() {
        (
            "message_trigrams f JOIN messages m ON m.id = f.rowid",
            "f.rank, ",
        )
    } else {
        // Nothing to rank by: relevance is newest first.
        ("messages m", "")
    };
    let mut sql =
        format!("SELECT {MESSAGE_COLUMNS} FROM {from} JOIN users u ON u.id = m.sender_id WHERE ");
    if !word_terms.is_empty() {
        sql.push_str("message_words MATCH ?1 AND ");
    }
    if let Some(trigrams) = trigrams {
        args.push(Value::Text(trigrams));
        if word_terms.is_empty() {
            let _ = write!(sql, "message_trigrams MATCH ?{} AND ", args.len());
        } else {
            let _ = write!(
                sql,
                "m.id IN (SELECT rowid FROM message_trigrams WHERE message_trigrams MATCH ?{}) \
                 AND ",
                args.len()
            );
        }
    }
    // Room ids are integers of ours: written into the statement, so the planner sees them.
    let rooms: Vec<String> = q.rooms.iter().map(|r| r.0.to_string()).collect();
    let _ = write!(
        sql,
        "m.room_id IN ({}) AND m.kind = 0 AND m.deleted = 0",
        rooms.join(",")
    );
    for phrase in phrases {
        args.push(Value::Text(phrase.to_string()));
        let _ = write!(sql, " AND natter_phrase_in(m.body, ?{})", args.len());
    }
    for short in short {
        let Short::Check(short) = short else {
            continue;
        };
        args.push(Value::Text(short.to_string()));
        let _ = write!(sql, " AND instr(lower(m.body), ?{}) > 0", args.len());
    }
    if let Some(from) = q.from {
        args.push(Value::Integer(from.0));
        let _ = write!(sql, " AND m.sender_id = ?{}", args.len());
    }
    if let Some(after) = q.after_ts {
        args.push(Value::Integer(after));
        let _ = write!(sql, " AND m.created_at >= ?{}", args.len());
    }
    if let Some(before) = q.before_ts {
        args.push(Value::Integer(before));
        let _ = write!(sql, " AND m.created_at < ?{}", args.len());
    }
    let offset = match (q.order, q.page) {
        (SearchOrder::Newest, SearchPage::Before { ts, id }) => {
            args.push(Value::Integer(ts));
            args.push(Value::Integer(id.0));
            let (t, i) = (args.len() - 1, args.len());
            let _ = write!(
                sql,
                " AND (m.created_at < ?{t} OR (m.created_at = ?{t} AND m.id < ?{i}))"
            );
            0
        }
        (SearchOrder::Relevance, SearchPage::Offset(n)) => n,
        _ => 0,
    };
    let rank = match q.order {
        SearchOrder::Relevance => rank,
        SearchOrder::Newest => "",
    };
    let _ = write!(sql, " ORDER BY {rank}m.created_at DESC, m.id DESC");
    args.push(Value::Integer(i64::from(q.limit)));
    args.push(Value::Integer(i64::from(offset)));
    let _ = write!(sql, " LIMIT ?{} OFFSET ?{}", args.len() - 1, args.len());
    (sql, args)
}

pub(super) async fn search(
    store: &SqliteStore,
    q: &SearchQuery,
) -> Result<Vec<Message>, StoreError> {
    if q.rooms.is_empty() || q.limit == 0 {
        return Ok(Vec::new());
    }
    // Every message acknowledged before this search is in the indexes it reads.
    store.catch_up_index().await?;
    let q = q.clone();
    store
        .read(move |conn| {
            // Phrases in scripts with spaces go to the word index; the rest are substrings
            // for the trigram index.
            let (phrases, unspaced): (Vec<&str>, Vec<&str>) = q
                .substrings
                .iter()
                .map(String::as_str)
                .partition(|s| !s.chars().any(is_unspaced));
            let terms = Terms::of_parts(&q.words, unspaced.into_iter());
            let mut short = Vec::with_capacity(terms.short.len());
            for s in &terms.short {
                short.push(match trigrams_starting(conn, s)? {
                    // No indexed trigram starts with it: no message holds it.
                    Some(t) if t.is_empty() => return Ok(Vec::new()),
                    Some(t) => Short::Trigrams(t),
                    None => Short::Check(s),
                });
            }
            let (sql, args) = search_sql(&q, &terms, &phrases, &short);
            // Not cached: the room list makes nearly every statement a new one.
            let mut stmt = conn.prepare(&sql).map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter(args), message_from)
                .map_err(backend)?;
            let mut found = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            with_reactions(conn, &mut found)?;
            Ok(found)
        })
        .await
}

/// Fills in the reactions of results from any rooms: one cached query per result.
fn with_reactions(conn: &Connection, found: &mut [Message]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.seq, r.emoji, u.id, u.name, u.guest, u.bot
             FROM reactions r JOIN users u ON u.id = r.user_id
             WHERE r.room_id = ?1 AND r.seq = ?2
             ORDER BY r.emoji_order, r.user_order",
        )
        .map_err(backend)?;
    for message in found.iter_mut() {
        let rows = stmt
            .query_map(params![message.room.0, message.seq.0], reaction_from)
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        attach_reactions(std::slice::from_mut(message), rows);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_phrases_drive_and_unspaced_substrings_narrow() {
        let q = SearchQuery {
            rooms: vec![RoomId(3), RoomId(9)],
            words: vec!["deploy".into()],
            substrings: vec!["東京".into(), "東京都庁".into()],
            limit: 20,
            ..SearchQuery::default()
        };
        let terms = Terms::of(&q);
        let phrases = ["release notes", "?!"];
        let short = [Short::Trigrams(vec!["東京都".into(), "東京\n".into()])];
        let (sql, args) = search_sql(&q, &terms, &phrases, &short);
        assert!(sql.contains("FROM message_words f"), "{sql}");
        assert!(sql.contains("message_trigrams MATCH ?2"), "{sql}");
        assert!(sql.contains("m.room_id IN (3,9)"), "{sql}");
        assert!(sql.contains("natter_phrase_in(m.body, ?3)"), "{sql}");
        assert!(sql.contains("natter_phrase_in(m.body, ?4)"), "{sql}");
        assert!(!sql.contains("instr("), "{sql}");
        assert_eq!(
            args[0],
            Value::Text("\"deploy\" \"release notes\"".into()),
            "a phrase of punctuation alone is only checked"
        );
        assert_eq!(
            args[1],
            Value::Text("\"東京都庁\" AND (\"東京都\" OR \"東京\n\")".into())
        );
        let short = [Short::Check("東京")];
        let (sql, _) = search_sql(&q, &terms, &[], &short);
        assert!(sql.contains("instr(lower(m.body), ?3)"), "{sql}");
    }
}
