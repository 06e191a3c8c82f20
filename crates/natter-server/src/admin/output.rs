//! How operator's commands print: text tables (a header, then one row per line, columns
//! padded to line up), times in UTC (`2026-12-04 16:28:49Z`), and JSON documents.

use std::io::Write;

/// Writes one line.
pub(super) fn line(out: &mut (dyn Write + Send), text: &str) -> std::io::Result<()> {
    writeln!(out, "{text}")
}

/// Writes `value` as one line of JSON.
pub(super) fn json_line(
    out: &mut (dyn Write + Send),
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    let text = serde_json::to_string(value).map_err(std::io::Error::other)?;
    line(out, &text)
}

/// Writes `header` and `rows` as a table: each column as wide as its widest cell, two
/// spaces between columns, no trailing spaces.
pub(super) fn table(
    out: &mut (dyn Write + Send),
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let render = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        text.trim_end().to_string()
    };
    line(out, &render(&mut header.iter().copied()))?;
    for row in rows {
        line(out, &render(&mut row.iter().map(String::as_str)))?;
    }
    Ok(())
}

/// Milliseconds since the epoch as a UTC time to the second; `-` for 0 (never recorded).
pub(super) fn utc(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(utc(0), "-");
        assert_eq!(utc(1_000), "1970-01-01 00:00:01Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_796_401_729_999), "2026-12-04 16:28:49Z");
    }

    #[test]
    fn tables_line_up_without_trailing_spaces() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["1".to_string(), "general".to_string(), "x".to_string()],
            vec!["22".to_string(), "dm".to_string(), String::new()],
        ];
        table(&mut out, &["id", "name", "k"], &rows).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "id  name     k\n1   general  x\n22  dm\n"
        );
    }
}
