//! Reading message text: the `@mentions` a body makes, and whether a reaction is one emoji.
//! Pure functions; the node resolves names against the room's members.

/// The names a body mentions with `@name` (username characters after an `@` that starts the
/// text or follows a character that is not one of them), lower-cased, each once, in order;
/// and whether it mentions `@room`. An e-mail address (`ana@example.org`) mentions no one.
pub fn mentions(body: &str) -> (Vec<String>, bool) {
    let mut names: Vec<String> = Vec::new();
    let mut room = false;
    let bytes = body.as_bytes();
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'@' && (i == 0 || !(name_byte(bytes[i - 1]) || bytes[i - 1] == b'@')) {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && name_byte(bytes[end]) && end - start < 32 {
                end += 1;
            }
            // A sentence may end right after a name: "thanks @ana."
            while end > start && matches!(bytes[end - 1], b'.' | b'-') {
                end -= 1;
            }
            if end > start {
                let name = body[start..end].to_ascii_lowercase();
                if name == "room" {
                    room = true;
                } else if !names.contains(&name) {
                    names.push(name);
                }
            }
            i = end.max(start);
            continue;
        }
        i += 1;
    }
    (names, room)
}

/// The longest reaction accepted, in bytes (a family emoji with skin tones is about 35).
pub const MAX_EMOJI_BYTES: usize = 64;

fn is_modifier(c: char) -> bool {
    matches!(c as u32,
        0xFE0E | 0xFE0F          // variation selectors
        | 0x1F3FB..=0x1F3FF      // skin tones
        | 0x20E3                 // combining keycap
        | 0xE0020..=0xE007F) // tags (subdivision flags)
}

fn is_regional_indicator(c: char) -> bool {
    matches!(c as u32, 0x1F1E6..=0x1F1FF)
}

fn is_pictograph(c: char) -> bool {
    matches!(c as u32,
        0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139
        | 0x2194..=0x21AA | 0x231A..=0x23FF | 0x24C2 | 0x25AA..=0x25FE
        | 0x2600..=0x27BF | 0x2934 | 0x2935 | 0x2B05..=0x2B55 | 0x3030 | 0x303D
        | 0x3297 | 0x3299 | 0x1F000..=0x1FAFF)
}

/// Whether `s` is exactly one emoji: a pictograph with its modifiers, a keycap (`1️⃣`), a
/// flag (two regional indicators), or such pieces joined by zero-width joiners (`👩‍💻`).
pub fn is_single_emoji(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_EMOJI_BYTES {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    if chars.len() == 2 && chars.iter().all(|c| is_regional_indicator(*c)) {
        return true;
    }
    s.split('\u{200D}').all(|part| {
        let mut base = part.chars().filter(|c| !is_modifier(*c));
        let (Some(first), None) = (base.next(), base.next()) else {
            return false;
        };
        if first.is_ascii_digit() || first == '#' || first == '*' {
            return part.ends_with('\u{20E3}');
        }
        is_pictograph(first) && !is_regional_indicator(first)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mentions() {
        let (names, room) = mentions("hi @Ana and @bob.smith, see @ana again; mail x@y.z @room!");
        assert_eq!(names, vec!["ana", "bob.smith"]);
        assert!(room);
        assert_eq!(
            mentions("thanks @carol."),
            (vec!["carol".to_string()], false)
        );
        assert_eq!(mentions("@ @@x a@b"), (vec![], false));
        assert_eq!(mentions("(@dé)"), (vec!["d".to_string()], false));
        assert_eq!(mentions("@rooms"), (vec!["rooms".to_string()], false));
    }

    #[test]
    fn accepts_one_emoji_only() {
        for ok in ["👍", "❤️", "🎉", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🇫🇷", "1️⃣", "✅", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"]
        {
            assert!(is_single_emoji(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            ":+1:",
            "👍👍",
            "👍 ",
            "1",
            "🇫",
            "🇫🇷🇩🇪",
            "<b>",
            "\u{200D}",
            "👍\u{200D}",
        ] {
            assert!(!is_single_emoji(bad), "{bad:?}");
        }
    }
}
