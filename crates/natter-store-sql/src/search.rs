//! What both backends share about `search` (migration 0005): a query's terms sorted by the
//! index that can find them, and the quoting of a term for FTS5 and for `LIKE`.

use natter_core::model::SearchQuery;

/// The fewest characters the trigram indexes (FTS5 `trigram`, `pg_trgm`) can look up.
pub(crate) const TRIGRAM: usize = 3;

/// A query's terms by how they are found.
pub(crate) struct Terms<'a> {
    /// Words, for the word index.
    pub words: Vec<&'a str>,
    /// Substrings of `TRIGRAM` characters or more, for the trigram index.
    pub long: Vec<&'a str>,
    /// Shorter substrings: checked on the rows the rest of the query finds.
    pub short: Vec<&'a str>,
}

impl<'a> Terms<'a> {
    pub(crate) fn of(q: &'a SearchQuery) -> Terms<'a> {
        Terms::of_parts(&q.words, q.substrings.iter().map(String::as_str))
    }

    /// `words` and, of the query's substrings, those given.
    pub(crate) fn of_parts(
        words: &'a [String],
        substrings: impl Iterator<Item = &'a str>,
    ) -> Terms<'a> {
        let words = words
            .iter()
            .map(String::as_str)
            .filter(|w| !w.is_empty())
            .collect();
        let (long, short) = substrings
            .filter(|s| !s.is_empty())
            .partition(|s| s.chars().count() >= TRIGRAM);
        Terms { words, long, short }
    }
}

/// `term` as an FTS5 string: quoted, quotes doubled (no operator inside has any meaning).
pub(crate) fn fts5_string(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// `term` for `LIKE ... ESCAPE '\'`: `%`, `_` and `\` match only themselves.
pub(crate) fn like_escaped(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 2);
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_go_to_the_index_that_finds_them() {
        let q = SearchQuery {
            words: vec!["deploy".into()],
            substrings: vec!["東京".into(), "東京都".into(), "a b".into()],
            ..SearchQuery::default()
        };
        let t = Terms::of(&q);
        assert_eq!(t.words, vec!["deploy"]);
        assert_eq!(t.long, vec!["東京都", "a b"]);
        assert_eq!(t.short, vec!["東京"]);
    }

    #[test]
    fn quoting() {
        assert_eq!(fts5_string(r#"say "hi""#), r#""say ""hi""""#);
        assert_eq!(like_escaped(r"100%_a\b"), r"100\%\_a\\b");
    }
}
