//! Images at upload: their size read from the header, refused before decoding when too big
//! (`max_image_pixels`, or a side over `MAX_SIDE`), then decoded within `image::Limits` (a
//! bound on what the decoder may allocate) and shrunk to a thumbnail of at most
//! `THUMB_SIDE` a side: a JPEG for a JPEG, a PNG for the others. Runs on a blocking thread.

use super::sniff::Kind;
use image::{ImageFormat, ImageReader, Limits};
use std::io::Cursor;
use std::path::Path;

/// The longest side an image may have.
pub const MAX_SIDE: u32 = 20_000;
/// The longest side of a thumbnail.
pub const THUMB_SIDE: u32 = 360;

/// A decoded image's size and its thumbnail, encoded.
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    pub thumb: Vec<u8>,
}

/// Why an image was refused (the message is safe to show).
#[derive(Debug)]
pub struct Refused(pub String);

fn limits(max_pixels: u64) -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // RGBA at 8 bits a channel, plus room for the decoder's own buffers.
    limits.max_alloc = Some(
        max_pixels
            .saturating_mul(4)
            .saturating_add(64 * 1024 * 1024),
    );
    limits
}

fn reader(
    path: &Path,
    format: ImageFormat,
    max_pixels: u64,
) -> Result<ImageReader<std::io::BufReader<std::fs::File>>, Refused> {
    let mut reader = ImageReader::open(path).map_err(|e| Refused(format!("unreadable: {e}")))?;
    reader.set_format(format);
    reader.limits(limits(max_pixels));
    Ok(reader)
}

/// Decodes the image at `path` (sniffed as `kind`) and makes its thumbnail.
pub fn decode(path: &Path, kind: Kind, max_pixels: u64) -> Result<Decoded, Refused> {
    let Some(format) = kind.image_format() else {
        return Err(Refused("not an image".into()));
    };
    let (width, height) = reader(path, format, max_pixels)?
        .into_dimensions()
        .map_err(|e| Refused(format!("the image cannot be read: {e}")))?;
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > max_pixels {
        return Err(Refused(format!(
            "the image is {width} x {height}: at most {max_pixels} pixels and {MAX_SIDE} a side"
        )));
    }
    let image = reader(path, format, max_pixels)?
        .decode()
        .map_err(|e| Refused(format!("the image cannot be decoded: {e}")))?;
    let thumb = image.thumbnail(THUMB_SIDE, THUMB_SIDE);
    let mut out = Cursor::new(Vec::new());
    let written = if kind == Kind::Jpeg {
        image::DynamicImage::ImageRgb8(thumb.to_rgb8()).write_to(&mut out, ImageFormat::Jpeg)
    } else {
        thumb.write_to(&mut out, ImageFormat::Png)
    };
    written.map_err(|e| Refused(format!("no thumbnail could be made: {e}")))?;
    Ok(Decoded {
        width,
        height,
        thumb: out.into_inner(),
    })
}

/// The type of an image's thumbnail.
pub fn thumb_mime(kind: &str) -> &'static str {
    if kind == "image/jpeg" {
        "image/jpeg"
    } else {
        "image/png"
    }
}
