//! What an upload is, from its bytes alone (the client's name and `Content-Type` are never
//! believed): magic numbers for PNG, JPEG, GIF, WebP, PDF and ZIP; text/plain for valid
//! UTF-8 without NUL; application/octet-stream for anything else. HTML, SVG and scripts are
//! valid UTF-8, so they are text/plain, and served as an attachment (see `download`).

/// Bytes of the head kept for the magic numbers.
pub const HEAD_BYTES: usize = 16;

/// A sniffed type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Png,
    Jpeg,
    Gif,
    WebP,
    Pdf,
    Zip,
    Text,
    Binary,
}

impl Kind {
    /// The type from the head of a file and whether the whole file was text.
    pub fn of(head: &[u8], text: bool) -> Kind {
        let starts = |magic: &[u8]| head.starts_with(magic);
        if starts(b"\x89PNG\r\n\x1a\n") {
            Kind::Png
        } else if starts(b"\xff\xd8\xff") {
            Kind::Jpeg
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            Kind::Gif
        } else if head.len() >= 12 && starts(b"RIFF") && &head[8..12] == b"WEBP" {
            Kind::WebP
        } else if starts(b"%PDF-") {
            Kind::Pdf
        } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
            Kind::Zip
        } else if text {
            Kind::Text
        } else {
            Kind::Binary
        }
    }

    /// The `Content-Type` it is served with.
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Gif => "image/gif",
            Kind::WebP => "image/webp",
            Kind::Pdf => "application/pdf",
            Kind::Zip => "application/zip",
            Kind::Text => "text/plain; charset=utf-8",
            Kind::Binary => "application/octet-stream",
        }
    }

    /// The decoder of an image type (None: not an image).
    pub fn image_format(self) -> Option<image::ImageFormat> {
        match self {
            Kind::Png => Some(image::ImageFormat::Png),
            Kind::Jpeg => Some(image::ImageFormat::Jpeg),
            Kind::Gif => Some(image::ImageFormat::Gif),
            Kind::WebP => Some(image::ImageFormat::WebP),
            _ => None,
        }
    }
}

/// Whether a stream of chunks is UTF-8 text without NUL, checked as it passes (an incomplete
/// character at a chunk's end is carried to the next).
#[derive(Debug)]
pub struct TextCheck {
    carry: Vec<u8>,
    text: bool,
}

impl Default for TextCheck {
    fn default() -> Self {
        TextCheck {
            carry: Vec::new(),
            text: true,
        }
    }
}

impl TextCheck {
    pub fn feed(&mut self, chunk: &[u8]) {
        if !self.text {
            return;
        }
        let joined;
        let bytes = if self.carry.is_empty() {
            chunk
        } else {
            joined = [self.carry.as_slice(), chunk].concat();
            &joined
        };
        if bytes.contains(&0) {
            self.text = false;
            return;
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => self.carry.clear(),
            // An incomplete character at the end: wait for the next chunk.
            Err(e) if e.error_len().is_none() => {
                self.carry = bytes[e.valid_up_to()..].to_vec();
            }
            Err(_) => self.text = false,
        }
    }

    /// Whether everything fed was text (an incomplete character at the end is not).
    pub fn finish(self) -> bool {
        self.text && self.carry.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_decide_and_text_is_plain() {
        assert_eq!(Kind::of(b"\x89PNG\r\n\x1a\nrest", false), Kind::Png);
        assert_eq!(Kind::of(b"RIFF\0\0\0\0WEBPVP8 ", false), Kind::WebP);
        assert_eq!(Kind::of(b"<html><script>", true), Kind::Text);
        assert_eq!(Kind::of(b"<svg", true).mime(), "text/plain; charset=utf-8");
        assert_eq!(Kind::of(b"\0\x01", false), Kind::Binary);
    }

    #[test]
    fn text_spans_chunks() {
        let bytes = "héllo wörld".as_bytes();
        for cut in 0..bytes.len() {
            let mut check = TextCheck::default();
            check.feed(&bytes[..cut]);
            check.feed(&bytes[cut..]);
            assert!(check.finish(), "cut at {cut}");
        }
        let mut check = TextCheck::default();
        check.feed(b"ok\xff");
        assert!(!check.finish());
        let mut check = TextCheck::default();
        check.feed(b"a\0b");
        assert!(!check.finish());
    }
}
