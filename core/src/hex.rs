//! Hex text in and out: what people paste (spaces, newlines, `0x` prefixes, commas) and what the
//! JSON model shows.

use alloc::string::String;
use alloc::vec::Vec;

use core::fmt;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Bytes from hex text as people paste it: whitespace, commas, colons, `0x`/`0X` prefixes and
/// `\x` escapes between bytes are ignored. Errors give the character offset in `text`.
///
/// ```
/// let bytes = fleetview::hex::decode("0x00, 0x0F\n3335").unwrap();
/// assert_eq!(bytes, [0x00, 0x0f, 0x33, 0x35]);
/// ```
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let prefix = (c == b'0' || c == b'\\')
            && high.is_none()
            && matches!(bytes.get(i + 1), Some(b'x' | b'X'));
        if prefix {
            i += 2;
            continue;
        }
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            b' ' | b'\t' | b'\r' | b'\n' | b',' | b':' | b';' | b'-' | b'_' => {
                i += 1;
                continue;
            }
            _ => {
                let character = text[i..].chars().next().unwrap_or('\u{fffd}');
                return Err(HexError {
                    offset: text[..i].chars().count(),
                    kind: HexErrorKind::InvalidCharacter(character),
                });
            }
        };
        digits += 1;
        match high.take() {
            None => high = Some(v),
            Some(h) => out.push((h << 4) | v),
        }
        i += 1;
    }
    if high.is_some() {
        return Err(HexError {
            offset: text.chars().count(),
            kind: HexErrorKind::OddLength { digits },
        });
    }
    Ok(out)
}

/// Text that is not hex: where (the character offset in the text, not a byte offset in a
/// packet) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexError {
    /// Offset in characters from the start of the text.
    pub offset: usize,
    /// What is wrong.
    pub kind: HexErrorKind,
}

/// What is wrong with hex text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HexErrorKind {
    /// A character that is neither a hex digit nor an ignored separator.
    InvalidCharacter(char),
    /// An odd number of hex digits: the last byte is half there.
    OddLength {
        /// Number of hex digits.
        digits: usize,
    },
}

impl HexError {
    /// Stable snake_case name, as in the error JSON: `"invalid_hex"` or `"odd_hex_length"`.
    pub fn code(&self) -> &'static str {
        match self.kind {
            HexErrorKind::InvalidCharacter(_) => "invalid_hex",
            HexErrorKind::OddLength { .. } => "odd_hex_length",
        }
    }
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            HexErrorKind::InvalidCharacter(c) => write!(
                f,
                "Invalid hex at character {}: {c:?} is not a hex digit",
                self.offset
            ),
            HexErrorKind::OddLength { digits } => write!(
                f,
                "Odd hex length at character {}: {digits} hex digits is not whole bytes",
                self.offset
            ),
        }
    }
}

impl core::error::Error for HexError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_forms() {
        assert_eq!(decode("000F 3335").unwrap(), [0, 0x0f, 0x33, 0x35]);
        assert_eq!(decode("0x00,0x0f\r\n0X33").unwrap(), [0, 0x0f, 0x33]);
        assert_eq!(decode("\\x00\\xff").unwrap(), [0, 0xff]);
        assert_eq!(decode("00:ff").unwrap(), [0, 0xff]);
        assert_eq!(encode(&[0, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn errors_name_the_character() {
        let e = decode("00 zz").unwrap_err();
        assert_eq!((e.code(), e.offset), ("invalid_hex", 3));
        let e = decode("000").unwrap_err();
        assert_eq!(e.code(), "odd_hex_length");
        // "0x" inside a byte is not a prefix: the x is invalid.
        assert_eq!(decode("0 0x").unwrap_err().code(), "invalid_hex");
        let e = decode("00 é").unwrap_err();
        assert_eq!((e.offset, e.kind), (3, HexErrorKind::InvalidCharacter('é')));
        assert_eq!(
            e.to_string(),
            "Invalid hex at character 3: 'é' is not a hex digit"
        );
    }
}
