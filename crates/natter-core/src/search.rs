//! Search queries (docs/protocol.md, `search`): the query language parsed into what a store
//! matches, and the hit/non-hit runs of a result's text that clients highlight.
//!
//! Syntax: bare words (all must match), `"exact phrases"`, `from:<username>`,
//! `in:<room name>`, `before:YYYY-MM-DD` and `after:YYYY-MM-DD` (UTC days). A word in a script
//! written without spaces (Chinese, Japanese, Korean, Thai, ...) is matched as a substring of
//! the text, since it has no word boundaries to index; other words go through the store's
//! word index (with English stemming where the store has it).

use crate::error::ChatError;
use crate::model::Millis;

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 256;
/// The most words and phrases in one query.
pub const MAX_TERMS: usize = 16;

/// A query as written, split into its parts (names not resolved yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Lower-cased words for the word index.
    pub words: Vec<String>,
    /// Lower-cased substrings: phrases and words of scripts without spaces.
    pub substrings: Vec<String>,
    pub from: Option<String>,
    pub room: Option<String>,
    /// Only messages at or after this time (`after:` a day: from its start).
    pub after_ts: Option<Millis>,
    /// Only messages before this time (`before:` a day: before its start).
    pub before_ts: Option<Millis>,
}

impl Parsed {
    /// Whether the query says what to look for (words, phrases or a filter).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
            && self.substrings.is_empty()
            && self.from.is_none()
            && self.room.is_none()
            && self.after_ts.is_none()
            && self.before_ts.is_none()
    }

    /// Every term to highlight: words and substrings.
    pub fn terms(&self) -> impl Iterator<Item = &str> {
        self.words
            .iter()
            .chain(self.substrings.iter())
            .map(String::as_str)
    }
}

/// Whether `phrase` (lower-cased) is found in `text` (lower-cased), as the stores find it: in
/// a script written without spaces, anywhere; otherwise as whole words, so an occurrence that
/// starts or ends inside a longer word does not count ("deploy" is not in "redeployment").
pub fn phrase_in(text: &str, phrase: &str) -> bool {
    if phrase.is_empty() {
        return true;
    }
    if phrase.chars().any(is_unspaced) {
        return text.contains(phrase);
    }
    let first_alnum = phrase.chars().next().is_some_and(char::is_alphanumeric);
    let last_alnum = phrase
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric);
    text.match_indices(phrase).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + phrase.len()..].chars().next();
        let starts_inside = first_alnum && before.is_some_and(char::is_alphanumeric);
        let ends_inside = last_alnum && after.is_some_and(char::is_alphanumeric);
        !starts_inside && !ends_inside
    })
}

/// Whether a character belongs to a script written without spaces between words.
pub fn is_unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF            // Thai, Lao
        | 0x1000..=0x109F          // Myanmar
        | 0x1780..=0x17FF          // Khmer
        | 0x2E80..=0x2FDF          // CJK radicals
        | 0x3040..=0x30FF          // Hiragana, Katakana
        | 0x3100..=0x312F          // Bopomofo
        | 0x3130..=0x318F          // Hangul compatibility jamo
        | 0x31F0..=0x31FF          // Katakana extensions
        | 0x3400..=0x4DBF          // CJK extension A
        | 0x4E00..=0x9FFF          // CJK unified
        | 0xAC00..=0xD7AF          // Hangul syllables
        | 0xF900..=0xFAFF          // CJK compatibility
        | 0xFF66..=0xFF9F          // half-width Katakana
        | 0x20000..=0x2FA1F) // CJK extensions B-F, compatibility supplement
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` as the UTC start of that day, in ms.
fn day_start(s: &str) -> Option<Millis> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let days_in_month = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month[(m - 1) as usize] {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400_000)
}

/// Splits a query into its parts; `invalid_request` with the reason for a bad one.
pub fn parse(query: &str) -> Result<Parsed, ChatError> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(ChatError::invalid(format!(
            "a search is at most {MAX_QUERY_CHARS} characters"
        )));
    }
    // Control characters separate words: none is searchable, and a NUL would end the
    // backend's query string early (SQLite's FTS5 refused `"a<NUL>b"`: found by schemathesis).
    let cleaned: String = query
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = Parsed::default();
    let mut rest = cleaned.as_str();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(after_quote) = rest.strip_prefix('"') {
            let Some(end) = after_quote.find('"') else {
                return Err(ChatError::invalid("a phrase is missing its closing `\"`"));
            };
            let phrase = after_quote[..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if !phrase.is_empty() {
                out.substrings.push(phrase.to_lowercase());
            }
            rest = &after_quote[end + 1..];
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..end];
        rest = &rest[end..];
        if let Some((key, value)) = token.split_once(':') {
            let filter = match key.to_ascii_lowercase().as_str() {
                "from" => Some(&mut out.from),
                "in" => Some(&mut out.room),
                _ => None,
            };
            if let Some(slot) = filter {
                let value = value.trim_start_matches('@').trim_start_matches('#');
                if value.is_empty() {
                    return Err(ChatError::invalid(format!("`{key}:` needs a name")));
                }
                *slot = Some(value.to_string());
                continue;
            }
            let date = match key.to_ascii_lowercase().as_str() {
                "before" => Some(true),
                "after" => Some(false),
                _ => None,
            };
            if let Some(before) = date {
                let Some(ts) = day_start(value) else {
                    return Err(ChatError::invalid(format!(
                        "`{key}:` takes a date as YYYY-MM-DD"
                    )));
                };
                if before {
                    out.before_ts = Some(ts);
                } else {
                    out.after_ts = Some(ts);
                }
                continue;
            }
        }
        // Punctuation around a word is not part of it ("deploy," "(ana)").
        let word: String = token
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        if word.is_empty() {
            continue;
        }
        if word.chars().any(is_unspaced) {
            out.substrings.push(word);
        } else {
            // A word the index splits in two ("e-mail", "v1.2") is matched as its parts.
            for part in word.split(|c: char| !c.is_alphanumeric()) {
                if !part.is_empty() && !out.words.iter().any(|w| w == part) {
                    out.words.push(part.to_string());
                }
            }
        }
    }
    if out.words.len() + out.substrings.len() > MAX_TERMS {
        return Err(ChatError::invalid(format!(
            "a search has at most {MAX_TERMS} words and phrases"
        )));
    }
    Ok(out)
}

/// A result's text split into runs, each a hit of a term or not (concatenated: the text).
/// A word hit covers the whole word it starts (a search for "deploy" marks "deployed").
pub fn parts(text: &str, parsed: &Parsed) -> Vec<(String, bool)> {
    let lower: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let chars: Vec<char> = text.chars().collect();
    // Lower-casing can change the length (rarely: İ); mark nothing rather than misplace.
    if lower.len() != chars.len() {
        return vec![(text.to_string(), false)];
    }
    let mut hit = vec![false; chars.len()];
    let mut mark = |needle: &str, whole_word: bool| {
        let needle: Vec<char> = needle.chars().collect();
        if needle.is_empty() || needle.len() > lower.len() {
            return;
        }
        for start in 0..=lower.len() - needle.len() {
            if lower[start..start + needle.len()] != needle[..] {
                continue;
            }
            if whole_word {
                if start > 0 && lower[start - 1].is_alphanumeric() {
                    continue;
                }
                let mut end = start + needle.len();
                while end < lower.len() && lower[end].is_alphanumeric() {
                    end += 1;
                }
                hit[start..end].iter_mut().for_each(|h| *h = true);
            } else {
                hit[start..start + needle.len()]
                    .iter_mut()
                    .for_each(|h| *h = true);
            }
        }
    };
    for w in &parsed.words {
        // The stem's first letters: "deploying" finds "deployed" (both start "deploy").
        let stem: String = w.chars().take(w.chars().count().clamp(1, 5)).collect();
        mark(if w.chars().count() > 5 { &stem } else { w }, true);
    }
    for s in &parsed.substrings {
        mark(s, false);
    }
    let mut out: Vec<(String, bool)> = Vec::new();
    for (c, h) in chars.into_iter().zip(hit) {
        match out.last_mut() {
            Some((run, last)) if *last == h => run.push(c),
            _ => out.push((c.to_string(), h)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_are_whole_words_except_in_unspaced_scripts() {
        assert!(phrase_in("release notes are out", "release notes"));
        assert!(phrase_in("see: release notes!", "release notes"));
        assert!(!phrase_in("prerelease notes", "release notes"));
        assert!(!phrase_in("release notebook", "release notes"));
        assert!(phrase_in("redeployment; deploy", "deploy"));
        assert!(!phrase_in("redeployment", "deploy"));
        assert!(phrase_in("v1.2 is out", "v1.2"));
        assert!(!phrase_in("v1.23 is out", "v1.2"));
        assert!(
            phrase_in("ship it.", "it."),
            "a phrase that ends in punctuation"
        );
        assert!(
            phrase_in("東京で会いましょう", "会い"),
            "CJK: any substring"
        );
        assert!(phrase_in("café crème", "crème"));
    }

    #[test]
    fn control_characters_separate_words() {
        let parsed = parse("deploy\u{0}ed\u{15}x \"a\u{0}b\"").expect("parsed");
        let terms: Vec<&str> = parsed.terms().collect();
        assert!(
            terms.iter().all(|t| !t.chars().any(char::is_control)),
            "{terms:?}"
        );
        assert!(terms.contains(&"deploy"), "{terms:?}");
    }

    #[test]
    fn parses_words_phrases_and_filters() {
        let p = parse(r#"Deploy  "Release Notes" from:@ana in:#general after:2026-11-01 before:2026-12-01 e-mail, 東京"#)
            .expect("parses");
        assert_eq!(p.words, vec!["deploy", "e", "mail"]);
        assert_eq!(p.substrings, vec!["release notes", "東京"]);
        assert_eq!(p.from.as_deref(), Some("ana"));
        assert_eq!(p.room.as_deref(), Some("general"));
        assert_eq!(p.after_ts, Some(1_793_491_200_000));
        assert_eq!(p.before_ts, Some(1_796_083_200_000));
        assert!(parse("").expect("empty").is_empty());
        assert!(parse("  ...  ").expect("punctuation only").is_empty());
    }

    #[test]
    fn refuses_bad_queries() {
        for bad in [
            "\"open",
            "before:2026-13-01",
            "after:yesterday",
            "from:",
            &"x".repeat(MAX_QUERY_CHARS + 1),
            &(0..=MAX_TERMS)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" "),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn marks_the_hits() {
        let p = parse(r#"deploying "Friday" 東京"#).expect("parses");
        let runs = parts("We deployed on friday in 東京都.", &p);
        let marked: Vec<&str> = runs
            .iter()
            .filter(|(_, h)| *h)
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(marked, vec!["deployed", "friday", "東京"]);
        let text: String = runs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(text, "We deployed on friday in 東京都.");
    }
}
