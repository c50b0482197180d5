//! UTC timestamps as ISO 8601 text, without a date library (the crate is no_std).

use alloc::string::String;

/// `2019-06-10T11:36:32.000Z` for milliseconds since 1970.
///
/// ```
/// assert_eq!(fleetview::time::iso8601(1_560_166_592_000), "2019-06-10T11:36:32.000Z");
/// ```
pub fn iso8601(timestamp_ms: u64) -> String {
    let secs = timestamp_ms / 1000;
    let ms = timestamp_ms % 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    alloc::format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Milliseconds since 1970 of `YYYY-MM-DD[THH:MM[:SS[.F]]][Z]` (UTC; a date alone is
/// midnight; a space may stand for the `T`; 1 to 9 digits of fraction), or `None`. Strict:
/// exactly these digit counts, nothing else, so that a pattern can describe what is accepted
/// (the HTTP API's OpenAPI document does).
///
/// ```
/// assert_eq!(fleetview::time::parse_iso8601("2019-06-10T11:36:32.000Z"), Some(1_560_166_592_000));
/// assert_eq!(fleetview::time::parse_iso8601("2019-06-10"), Some(1_560_124_800_000));
/// assert_eq!(fleetview::time::parse_iso8601("2019-6-10"), None);
/// ```
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (y, m, day) = (
        digits(d.next()?, 4)?,
        digits(d.next()?, 2)?,
        digits(d.next()?, 2)?,
    );
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut ms = 0i64;
    if let Some(time) = time {
        let (hms, frac) = match time.split_once('.') {
            Some((hms, f)) => (hms, Some(f)),
            None => (time, None),
        };
        let mut t = hms.split(':');
        let h = digits(t.next()?, 2)?;
        let min = digits(t.next()?, 2)?;
        let sec = match t.next() {
            Some(x) => digits(x, 2)?,
            // A fraction needs seconds.
            None if frac.is_some() => return None,
            None => 0,
        };
        if t.next().is_some() || h > 23 || min > 59 || sec > 60 {
            return None;
        }
        let frac_ms = match frac {
            None => 0,
            Some(f) => {
                if !(1..=9).contains(&f.len()) || !f.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                // The first three digits, padded: ".5" is 500 ms.
                let digits = f.as_bytes();
                (0..3).fold(0i64, |acc, i| {
                    acc * 10 + digits.get(i).map_or(0, |b| i64::from(b - b'0'))
                })
            }
        };
        ms = ((h * 60 + min) * 60 + sec) * 1000 + frac_ms;
    }
    Some(days_from_civil(y, m, day) * 86_400_000 + ms)
}

/// Exactly `n` ASCII digits as a number.
fn digits(s: &str, n: usize) -> Option<i64> {
    if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        s.bytes()
            .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')),
    )
}

/// Howard Hinnant's days-from-civil (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_447_804_801_000), "2015-11-18T00:00:01.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
        // The largest u64 still formats (year far beyond 9999).
        assert!(iso8601(u64::MAX).ends_with('Z'));
    }
}
