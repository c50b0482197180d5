//! Request bodies and query strings.

use fleetview::hex::HexError;

use crate::problem::Problem;

/// The bytes to decode from a `POST /decode` body. `application/octet-stream` is taken as the
/// raw bytes; any other body that is printable text (what `curl --data` and pasting send) is
/// hex, with the spaces, commas and `0x` prefixes people paste; anything else is binary.
/// Packets never look like text: every frame and datagram starts with a zero or length byte.
pub fn decode_body(content_type: Option<&str>, body: &[u8]) -> Result<Vec<u8>, HexError> {
    let binary = content_type
        .map(|c| {
            c.trim()
                .to_ascii_lowercase()
                .starts_with("application/octet-stream")
        })
        .unwrap_or(false);
    if binary || !is_text(body) {
        return Ok(body.to_vec());
    }
    // `is_text` accepted only ASCII: the lossy conversion never replaces anything.
    let text = String::from_utf8_lossy(body);
    fleetview::hex::decode(&text)
}

fn is_text(body: &[u8]) -> bool {
    !body.is_empty()
        && body
            .iter()
            .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
}

/// `GET /devices/{imei}/positions` query: `since` (milliseconds since 1970, exclusive) and
/// `limit` (default [`Positions::DEFAULT_LIMIT`], at most [`Positions::MAX_LIMIT`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Positions {
    /// Only records strictly after this time, in ms; `None`: from the start.
    pub since: Option<u64>,
    /// At most this many features, oldest first.
    pub limit: u32,
}

impl Positions {
    /// Features returned without `limit`.
    pub const DEFAULT_LIMIT: u32 = 1000;
    /// Largest `limit` accepted.
    pub const MAX_LIMIT: u32 = 10_000;

    /// Parse a query string (without `?`). Unknown parameters are ignored; bad values are errors
    /// that name the parameter.
    pub fn parse(query: &str) -> Result<Self, Problem> {
        let mut out = Self {
            since: None,
            limit: Self::DEFAULT_LIMIT,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "since" => {
                    out.since = Some(value.parse().map_err(|_| {
                        Problem::new(
                            400,
                            "invalid_query",
                            format!("since={value:?}: expected milliseconds since 1970 (an unsigned integer)"),
                        )
                    })?)
                }
                "limit" => {
                    out.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=Self::MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            Problem::new(
                                400,
                                "invalid_query",
                                format!("limit={value:?}: expected an integer from 1 to {}", Self::MAX_LIMIT),
                            )
                        })?
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// `POST /decode` query: `lenient` (`1`/`true`) and `model` (IO names, e.g. `FMB920`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeQuery {
    /// Lenient decoding (warnings instead of errors for CRC, length and count mismatches).
    pub lenient: bool,
    /// Device model for IO names.
    pub model: Option<String>,
}

impl DecodeQuery {
    /// Parse a query string (without `?`).
    pub fn parse(query: &str) -> Result<Self, Problem> {
        let mut out = Self::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "lenient" => {
                    out.lenient = match value {
                        "" | "1" | "true" => true,
                        "0" | "false" => false,
                        _ => {
                            return Err(Problem::new(
                                400,
                                "invalid_query",
                                format!("lenient={value:?}: expected 1, true, 0 or false"),
                            ))
                        }
                    }
                }
                "model" if !value.is_empty() => out.model = Some(value.to_string()),
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(decode_body(None, b"00 0F, 0x33").unwrap(), [0, 0x0f, 0x33]);
        assert_eq!(
            decode_body(Some("text/plain"), b"000f\n").unwrap(),
            [0, 0x0f]
        );
        assert_eq!(
            decode_body(Some("application/octet-stream"), b"00").unwrap(),
            b"00"
        );
        assert_eq!(
            decode_body(None, &[0, 0x0f, 0x33]).unwrap(),
            [0, 0x0f, 0x33]
        );
        let e = decode_body(None, b"00zz").unwrap_err();
        assert_eq!((e.code(), e.offset), ("invalid_hex", 2));
        assert_eq!(decode_body(None, b"").unwrap(), b"");
    }

    #[test]
    fn positions_query() {
        assert_eq!(
            Positions::parse("").unwrap(),
            Positions {
                since: None,
                limit: 1000
            }
        );
        assert_eq!(
            Positions::parse("since=1560166592000&limit=5&x=1").unwrap(),
            Positions {
                since: Some(1_560_166_592_000),
                limit: 5
            }
        );
        assert_eq!(
            Positions::parse("since=yesterday").unwrap_err().kind,
            "invalid_query"
        );
        assert_eq!(Positions::parse("limit=0").unwrap_err().status, 400);
        assert_eq!(Positions::parse("limit=10001").unwrap_err().status, 400);
    }

    #[test]
    fn decode_query() {
        assert_eq!(
            DecodeQuery::parse("lenient=1&model=FMB920").unwrap(),
            DecodeQuery {
                lenient: true,
                model: Some("FMB920".into())
            }
        );
        assert!(DecodeQuery::parse("lenient=maybe").is_err());
    }
}
