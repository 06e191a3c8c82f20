//! The hot path of the load generator's parsing: Natter's `message` event, read by a small
//! validating JSON scanner instead of serde. At the fanout ceiling the load generator parses
//! about a million of these frames a second on one core, and serde's general machinery was a
//! quarter of its time.
//!
//! The scanner reads the three fields the checks need (`data.room`, `data.seq`, `data.body`),
//! checks everything else is well-formed JSON without building anything, and gives up (`None`)
//! on anything it does not fully understand: another frame type, escapes in a key or the body,
//! a room given as a name or object, `null`s, duplicate fields, a `message` field, deep
//! nesting. The caller then parses the frame with serde, so every answer is serde's answer;
//! the differential test below holds the scanner to that.

use std::borrow::Cow;

use super::{Incoming, ParsedRoom};

/// Nesting deeper than this is left to serde.
const MAX_DEPTH: u32 = 32;

/// Reads a native `message` event, or `None` when serde must decide.
pub fn message_event(frame: &str) -> Option<Incoming<'_>> {
    let mut s = Scanner {
        text: frame,
        bytes: frame.as_bytes(),
        at: 0,
    };
    let mut seen_type = false;
    let mut delivery = None;
    s.object(|s, key| match key {
        "type" if !seen_type => {
            seen_type = true;
            (s.plain_string()? == "message").then_some(())
        }
        "data" if delivery.is_none() => {
            delivery = Some(s.message_data()?);
            Some(())
        }
        // `ref` and `error` are typed fields of the frame; repeats are serde errors.
        "type" | "data" | "ref" | "error" => None,
        _ => s.skip_value(1),
    })?;
    s.whitespace();
    if s.at != s.bytes.len() || !seen_type {
        return None;
    }
    delivery
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Skips whitespace, then takes `byte`.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.whitespace();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// An object; `field` reads each value after its key (which has no escapes) and colon.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.list(b'{', b'}', |s| {
            let key = s.plain_string()?;
            s.expect(b':')?;
            s.whitespace();
            field(s, key)
        })
    }

    /// `open`, items separated by commas (each read by `item`, whitespace around them
    /// allowed), `close`: an object's members or an array's elements.
    fn list(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.expect(open)?;
        self.whitespace();
        if self.peek()? == close {
            self.at += 1;
            return Some(());
        }
        loop {
            self.whitespace();
            item(self)?;
            self.whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b if b == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The `data` of a message event: room id, seq and body, the rest skipped.
    fn message_data(&mut self) -> Option<Incoming<'a>> {
        let (mut room, mut seq, mut body) = (None, None, None);
        self.object(|s, key| match key {
            "room" if room.is_none() => {
                room = Some(s.integer()?.parse::<i64>().ok()?);
                Some(())
            }
            "seq" if seq.is_none() => {
                seq = Some(s.integer()?.parse::<u64>().ok()?);
                Some(())
            }
            "body" if body.is_none() => {
                body = Some(s.plain_string()?);
                Some(())
            }
            "room" | "seq" | "body" | "message" => None,
            _ => s.skip_value(2),
        })?;
        Some(Incoming::Delivery {
            room: room.map(ParsedRoom::Id),
            seq,
            body: body.map(Cow::Borrowed),
        })
    }

    /// A string without escapes, borrowed from the frame.
    fn plain_string(&mut self) -> Option<&'a str> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let len = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        let end = start + len;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        // Both ends are ASCII quotes, so these are character boundaries.
        self.text.get(start..end)
    }

    /// Any string, escapes validated the way serde skips them.
    fn skip_string(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.at += 1;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    self.at += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => {
                            let hex = self.bytes.get(self.at + 1..self.at + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.at += 5;
                        }
                        _ => return None,
                    }
                }
                b if b < 0x20 => return None,
                _ => self.at += 1,
            }
        }
    }

    /// An integer without fraction or exponent, as written.
    fn integer(&mut self) -> Option<&'a str> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        self.digits()?;
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.text.get(start..self.at)
    }

    /// `0` or a digit run not starting with 0.
    fn digits(&mut self) -> Option<()> {
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.at += 1;
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// Any JSON number.
    fn skip_number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        self.digits()?;
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.digit_run()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.digit_run()?;
        }
        Some(())
    }

    /// One or more digits.
    fn digit_run(&mut self) -> Option<()> {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        (self.at > start).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// Any JSON value at nesting `depth`, checked and passed over.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.list(b'{', b'}', |s| {
                s.skip_string()?;
                s.expect(b':')?;
                s.whitespace();
                s.skip_value(depth + 1)
            }),
            b'[' => self.list(b'[', b']', |s| s.skip_value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::native;

    /// Frames the scanner must read itself, as Natter sends them and in other valid shapes.
    const READABLE: &[&str] = &[
        r#"{"type":"message","data":{"id":907,"room":1,"seq":42,"sender":{"id":12,"name":"ana","guest":false},"body":"hello","ts":1764201600123,"client_id":"c-1"}}"#,
        r#"{"type":"message","data":{"id":1,"room":-3,"seq":0,"sender":{"id":2,"name":"Zoë \"z\" \u00e9\n","guest":true},"body":"AAAA-bench-stamp","ts":2,"client_id":"x\\y"}}"#,
        " { \"data\" : { \"body\" : \"b\" , \"seq\" : 7 , \"room\" : 9 , \"extra\" : [1, -2.5e+3, true, null, {\"a\": []}] } , \"type\" : \"message\" , \"v\": 0.5 } \n",
        r#"{"type":"message","data":{}}"#,
        r#"{"type":"message","data":{"room":1,"seq":18446744073709551615,"body":""}}"#,
    ];

    /// Frames with the same meaning that the scanner hands to serde.
    const LEFT_TO_SERDE: &[&str] = &[
        r#"{"type":"message","data":{"room":"general","seq":1,"body":"b"}}"#,
        r#"{"type":"message","data":{"room":{"id":1},"seq":1,"body":"b"}}"#,
        r#"{"type":"message","data":{"room":1,"seq":1,"body":"a\"b"}}"#,
        r#"{"type":"message","data":{"room":1,"seq":null,"body":"b"}}"#,
        r#"{"type":"message","data":{"room":1,"room":2,"seq":1,"body":"b"}}"#,
        r#"{"type":"message","data":{"room":1,"seq":1,"body":"b","message":{"body":"c"}}}"#,
        r#"{"type":"message","ref":"1","data":{"room":1,"seq":1,"body":"b"}}"#,
        r#"{"typ\u0065":"message","data":{"room":1}}"#,
        r#"{"type":"message","data":{"room":1,"seq":1.0,"body":"b"}}"#,
        r#"{"type":"message","data":{"room":1,"seq":-1,"body":"b"}}"#,
        r#"{"type":"message"}"#,
        r#"{"type":"ok","ref":"3","data":{"room":{"id":9}}}"#,
        r#"{"type":"member_joined","data":{"room":1,"user":{"id":1,"name":"a","guest":false},"member_count":2}}"#,
    ];

    fn serde_parse(frame: &str) -> Incoming<'_> {
        native::parse_with_serde(frame)
    }

    #[test]
    fn reads_what_natter_sends_as_serde_does() {
        for frame in READABLE {
            let fast = message_event(frame);
            assert!(fast.is_some(), "the scanner gave up on {frame}");
            assert_eq!(fast.as_ref(), Some(&serde_parse(frame)), "{frame}");
        }
        let Some(Incoming::Delivery { room, seq, body }) = message_event(READABLE[0]) else {
            panic!("not a delivery");
        };
        assert_eq!(room, Some(ParsedRoom::Id(1)));
        assert_eq!(seq, Some(42));
        assert!(matches!(body, Some(Cow::Borrowed("hello"))));
    }

    #[test]
    fn leaves_what_it_does_not_fully_understand_to_serde() {
        for frame in LEFT_TO_SERDE {
            assert_eq!(message_event(frame), None, "{frame}");
        }
    }

    /// Random edits of valid frames: whatever the scanner accepts, serde must read the same.
    #[test]
    fn never_disagrees_with_serde_on_damaged_frames() {
        const EDITS: &[char] = &[
            '{', '}', '[', ']', '"', ',', ':', '\\', ' ', '\n', '0', '1', '9', '-', '+', '.', 'e',
            'u', 'n', 't', 'a', '\u{1}', 'é',
        ];
        let corpus: Vec<Vec<char>> = READABLE
            .iter()
            .chain(LEFT_TO_SERDE)
            .map(|f| f.chars().collect())
            .collect();
        let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            usize::try_from(rng % n as u64).unwrap_or(0)
        };
        let (mut accepted, mut agreed_faults) = (0, 0);
        for _ in 0..40_000 {
            let mut chars = corpus[next(corpus.len())].clone();
            for _ in 0..1 + next(3) {
                let at = next(chars.len() + 1);
                match next(3) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 if at < chars.len() => chars[at] = EDITS[next(EDITS.len())],
                    _ => chars.insert(at, EDITS[next(EDITS.len())]),
                }
            }
            let frame: String = chars.into_iter().collect();
            if let Some(fast) = message_event(&frame) {
                accepted += 1;
                let slow = serde_parse(&frame);
                assert_eq!(fast, slow, "scanner and serde disagree on {frame:?}");
            } else if matches!(serde_parse(&frame), Incoming::Malformed(_)) {
                agreed_faults += 1;
            }
        }
        // The edits must exercise both sides: frames still read, and frames broken.
        assert!(accepted > 1_000, "only {accepted} edited frames were read");
        assert!(
            agreed_faults > 10_000,
            "only {agreed_faults} were malformed"
        );
    }
}
