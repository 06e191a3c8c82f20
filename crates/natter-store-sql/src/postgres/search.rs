//! PostgreSQL `search` (migrations 0005 and 0007). Every query is the messages of the
//! caller's rooms (`room_id = ANY`, kind 0, not deleted) narrowed by its terms:
//!
//! - words: the stored column `words` (`to_tsvector('english', body)`, 0007) through its
//!   partial GIN index `messages_word_index`, with one `plainto_tsquery` of all the words
//!   (each must match, stemmed); relevance is `ts_rank` of the stored vector, so ranking a
//!   match reads it instead of running `to_tsvector` again (that was about 9 ms per 900
//!   matches, most of a relevance search for a common word), and the planner has the
//!   column's statistics instead of guessing 5,000 rows for any word;
//! - substrings of 3 characters or more: the `pg_trgm` GIN index with `ILIKE '%...%'`
//!   (`%`, `_` and `\` escaped); in a script written with spaces, a case-insensitive regular
//!   expression (`~*`) then checks that it starts and ends on word edges;
//! - a shorter one has no trigram: in a script written without spaces it goes through the
//!   `natter_grams` GIN index (characters and pairs of them), otherwise `strpos` checks it
//!   on the rows the rest of the query finds.
//!
//! The plan PostgreSQL picks (EXPLAIN ANALYZE on 1M messages, 50 of 1,000 rooms): a bitmap
//! of the term's index ANDed with the bitmap of the rooms (`messages_room_id_seq_key`), then
//! the few hundred pages left, then a top-20 sort. The bitmaps stay exact (no lossy pages at
//! the default `work_mem`), so no row's text is checked again. The rooms' bitmap (~50,000
//! rows) is most of what is left of a word query; a composite GIN index on
//! (`room_id`, words) (`btree_gin`) measured no faster, so there is none.
//!
//! Each query is planned with its own values (an unnamed statement): a generic plan cannot
//! tell a selective pattern from one that matches everything. Results come in their current
//! state with their reactions, like `message_page`.

use super::error::backend;
use super::rows::{message_from, reaction_from, MESSAGE_COLUMNS};
use super::PostgresStore;
use crate::entries::attach_reactions;
use crate::search::{like_escaped, Terms};
use deadpool_postgres::GenericClient;
use natter_core::model::*;
use natter_core::search::is_unspaced;
use natter_core::StoreError;
use std::fmt::Write as _;
use tokio_postgres::types::ToSql;

/// The statement's parameters, in order.
enum Arg {
    Int(i64),
    Ints(Vec<i64>),
    Text(String),
}

impl Arg {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Arg::Int(v) => v,
            Arg::Ints(v) => v,
            Arg::Text(v) => v,
        }
    }
}

/// The stored words column (0007), which `messages_word_index` indexes.
const WORDS: &str = "m.words";

/// The partial index `messages_unspaced_grams`'s predicate on the text, verbatim.
const UNSPACED: &str = "m.body ~ '[\\u0E00-\\u0EFF\\u1000-\\u109F\\u1780-\\u17FF\\u2E80-\\u2FDF\\u3040-\\u30FF\\u3100-\\u312F\\u3130-\\u318F\\u31F0-\\u31FF\\u3400-\\u4DBF\\u4E00-\\u9FFF\\uAC00-\\uD7AF\\uF900-\\uFAFF\\uFF66-\\uFF9F\\U00020000-\\U0002FA1F]'";

/// For a phrase without characters of scripts written without spaces: a case-insensitive
/// regular expression that finds it where it does not start or end inside a longer word.
fn whole_words_regex(phrase: &str) -> Option<String> {
    if phrase.chars().any(is_unspaced) {
        return None;
    }
    let mut re = String::with_capacity(phrase.len() * 2 + 40);
    if phrase.chars().next().is_some_and(char::is_alphanumeric) {
        re.push_str("(^|[^[:alnum:]])");
    }
    for c in phrase.chars() {
        if c.is_alphanumeric() || c == ' ' {
            re.push(c);
        } else {
            re.push('\\');
            re.push(c);
        }
    }
    if phrase
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric)
    {
        re.push_str("($|[^[:alnum:]])");
    }
    Some(re)
}

/// The statement and its parameters for `q`.
fn search_sql(q: &SearchQuery) -> (String, Vec<Arg>) {
    let terms = Terms::of(q);
    let rooms: Vec<i64> = q.rooms.iter().map(|r| r.0).collect();
    let mut args = vec![Arg::Ints(rooms)];
    let mut sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.sender_id
         WHERE m.room_id = ANY($1) AND m.kind = 0 AND NOT m.deleted"
    );
    // Relevance without words: nothing to rank by, so newest first.
    let mut rank = None;
    if !terms.words.is_empty() {
        args.push(Arg::Text(terms.words.join(" ")));
        let n = args.len();
        let _ = write!(sql, " AND {WORDS} @@ plainto_tsquery('english', ${n})");
        rank = Some(format!(
            "ts_rank({WORDS}, plainto_tsquery('english', ${n})) DESC, "
        ));
    }
    for s in &terms.long {
        args.push(Arg::Text(format!("%{}%", like_escaped(s))));
        let _ = write!(sql, " AND m.body ILIKE ${} ESCAPE '\\'", args.len());
    }
    for s in &terms.short {
        args.push(Arg::Text(s.to_string()));
        let n = args.len();
        if s.chars().any(is_unspaced) {
            let _ = write!(
                sql,
                " AND {UNSPACED} AND natter_grams(m.body) @> ARRAY[${n}::text]"
            );
        } else {
            let _ = write!(sql, " AND strpos(lower(m.body), ${n}) > 0");
        }
    }
    // A phrase in a script with spaces is found as whole words (`natter_core::search::
    // phrase_in`): the ILIKE (or `strpos`) finds the text, this regular expression its edges.
    for s in terms.long.iter().chain(&terms.short) {
        if let Some(re) = whole_words_regex(s) {
            args.push(Arg::Text(re));
            let _ = write!(sql, " AND m.body ~* ${}", args.len());
        }
    }
    if let Some(from) = q.from {
        args.push(Arg::Int(from.0));
        let _ = write!(sql, " AND m.sender_id = ${}", args.len());
    }
    if let Some(after) = q.after_ts {
        args.push(Arg::Int(after));
        let _ = write!(sql, " AND m.created_at >= ${}", args.len());
    }
    if let Some(before) = q.before_ts {
        args.push(Arg::Int(before));
        let _ = write!(sql, " AND m.created_at < ${}", args.len());
    }
    let offset = match (q.order, q.page) {
        (SearchOrder::Newest, SearchPage::Before { ts, id }) => {
            args.push(Arg::Int(ts));
            args.push(Arg::Int(id.0));
            let (t, i) = (args.len() - 1, args.len());
            let _ = write!(sql, " AND (m.created_at, m.id) < (${t}, ${i})");
            0
        }
        (SearchOrder::Relevance, SearchPage::Offset(n)) => n,
        _ => 0,
    };
    let rank = match q.order {
        SearchOrder::Relevance => rank.unwrap_or_default(),
        SearchOrder::Newest => String::new(),
    };
    let _ = write!(sql, " ORDER BY {rank}m.created_at DESC, m.id DESC");
    args.push(Arg::Int(i64::from(q.limit)));
    args.push(Arg::Int(i64::from(offset)));
    let _ = write!(sql, " LIMIT ${} OFFSET ${}", args.len() - 1, args.len());
    (sql, args)
}

pub(super) async fn search(
    store: &PostgresStore,
    q: &SearchQuery,
) -> Result<Vec<Message>, StoreError> {
    if q.rooms.is_empty() || q.limit == 0 {
        return Ok(Vec::new());
    }
    let (sql, args) = search_sql(q);
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(Arg::as_sql).collect();
    let client = store.client().await?;
    // Unnamed, so planned with this query's values (see the module comment).
    let rows = client.query(sql.as_str(), &params).await.map_err(backend)?;
    let mut found = rows
        .iter()
        .map(message_from)
        .collect::<Result<Vec<_>, _>>()?;
    with_reactions(&client, &mut found).await?;
    Ok(found)
}

/// Fills in the reactions of results from any rooms with one query.
async fn with_reactions(
    client: &impl GenericClient,
    found: &mut [Message],
) -> Result<(), StoreError> {
    if found.is_empty() {
        return Ok(());
    }
    let rooms: Vec<i64> = found.iter().map(|m| m.room.0).collect();
    let seqs: Vec<i64> = found.iter().map(|m| m.seq.0).collect();
    let stmt = client
        .prepare_cached(
            "SELECT r.seq, r.emoji, u.id, u.name, u.guest, u.bot, r.room_id
             FROM reactions r JOIN users u ON u.id = r.user_id
             JOIN unnest($1::bigint[], $2::bigint[]) AS f(room_id, seq)
               ON f.room_id = r.room_id AND f.seq = r.seq
             ORDER BY r.room_id, r.seq, r.emoji_order, r.user_order",
        )
        .await
        .map_err(backend)?;
    let rows = client
        .query(&stmt, &[&rooms, &seqs])
        .await
        .map_err(backend)?;
    for message in found.iter_mut() {
        let mine = rows
            .iter()
            .filter(|r| r.try_get::<_, i64>(5).ok() == Some(message.room.0))
            .map(reaction_from)
            .collect::<Result<Vec<_>, _>>()?;
        attach_reactions(std::slice::from_mut(message), mine);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_term_and_filter_is_a_parameter() {
        let q = SearchQuery {
            rooms: vec![RoomId(3)],
            words: vec!["deploy".into(), "friday".into()],
            substrings: vec!["100%".into()],
            from: Some(UserId(7)),
            order: SearchOrder::Relevance,
            limit: 20,
            page: SearchPage::Offset(20),
            ..SearchQuery::default()
        };
        let (sql, args) = search_sql(&q);
        assert!(sql.contains("@@ plainto_tsquery('english', $2)"), "{sql}");
        assert!(sql.contains("m.body ILIKE $3 ESCAPE '\\'"), "{sql}");
        assert!(sql.contains("ORDER BY ts_rank("), "{sql}");
        assert!(matches!(&args[1], Arg::Text(t) if t == "deploy friday"));
        assert!(matches!(&args[2], Arg::Text(t) if t == "%100\\%%"));
        assert!(matches!(args.last(), Some(Arg::Int(20))));
    }

    #[test]
    fn phrases_get_word_edges_unless_unspaced() {
        assert_eq!(
            whole_words_regex("v1.2 is").as_deref(),
            Some("(^|[^[:alnum:]])v1\\.2 is($|[^[:alnum:]])")
        );
        assert_eq!(
            whole_words_regex("(ok").as_deref(),
            Some("\\(ok($|[^[:alnum:]])")
        );
        assert_eq!(whole_words_regex("東京"), None);
    }

    #[test]
    fn short_substrings_take_the_grams_index_in_unspaced_scripts() {
        let q = SearchQuery {
            rooms: vec![RoomId(3)],
            substrings: vec!["東京".into(), "ok".into()],
            limit: 20,
            ..SearchQuery::default()
        };
        let (sql, _) = search_sql(&q);
        assert!(
            sql.contains("natter_grams(m.body) @> ARRAY[$2::text]"),
            "{sql}"
        );
        assert!(sql.contains("strpos(lower(m.body), $3) > 0"), "{sql}");
        // "ok" is also checked as a whole word ($4); "東京" has no word edges to check.
        assert!(sql.contains("m.body ~* $4"), "{sql}");
        let migration = include_str!("../../migrations/postgres/0005_search.sql");
        let predicate = UNSPACED.trim_start_matches("m.");
        assert!(
            migration.contains(predicate),
            "the index's predicate, verbatim"
        );
    }

    #[test]
    fn words_use_the_stored_column_and_its_index() {
        let q = SearchQuery {
            rooms: vec![RoomId(3)],
            words: vec!["deploy".into()],
            order: SearchOrder::Relevance,
            limit: 20,
            ..SearchQuery::default()
        };
        let (sql, _) = search_sql(&q);
        assert!(
            sql.contains("m.words @@ plainto_tsquery('english', $2)"),
            "{sql}"
        );
        assert!(sql.contains("ts_rank(m.words, "), "{sql}");
        let migration = include_str!("../../migrations/postgres/0007_search_speed.sql");
        assert!(
            migration.contains("gin (words) WHERE kind = 0"),
            "{migration}"
        );
    }
}
