//! Text values: the VIN (IOs 256 and 325, 17 ASCII characters) and the fault codes (IO 281,
//! ASCII, comma-separated: `P0101,P0300`).

use alloc::string::String;
use alloc::vec::Vec;

use super::{CompositeError, CompositeProblem};

/// A vehicle identification number. Trailing NUL padding is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vin(pub String);

/// Diagnostic trouble codes, in the order sent.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FaultCodes(pub Vec<String>);

/// `v` as printable ASCII (trailing NULs dropped), or the first byte that is not.
fn ascii(v: &[u8]) -> Result<&str, CompositeError> {
    let end = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let v = &v[..end];
    match v.iter().position(|b| !(0x20..=0x7e).contains(b)) {
        Some(at) => Err(CompositeError {
            offset: at,
            problem: CompositeProblem::CompositeNotText { byte: v[at] },
        }),
        // Printable ASCII is UTF-8.
        None => Ok(core::str::from_utf8(v).unwrap_or_default()),
    }
}

impl Vin {
    /// Decode a VIN value.
    pub fn decode(v: &[u8]) -> Result<Self, CompositeError> {
        ascii(v).map(|s| Self(String::from(s)))
    }
}

impl FaultCodes {
    /// Decode a fault code value: codes separated by commas (spaces around them are dropped).
    pub fn decode(v: &[u8]) -> Result<Self, CompositeError> {
        let text = ascii(v)?;
        // ASCII only (checked above): split and trim bytes, without Unicode tables.
        Ok(Self(
            text.as_bytes()
                .split(|&b| b == b',')
                .map(|c| c.trim_ascii())
                .filter(|c| !c.is_empty())
                .map(|c| String::from(core::str::from_utf8(c).unwrap_or_default()))
                .collect(),
        ))
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        for (i, code) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(code.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_split_and_trimmed() {
        let codes = FaultCodes::decode(b"P0101, P0300,,U0100").unwrap();
        assert_eq!(codes.0, ["P0101", "P0300", "U0100"]);
        assert_eq!(FaultCodes::decode(b"").unwrap().0.len(), 0);
    }

    #[test]
    fn a_vin_drops_its_padding_and_refuses_binary() {
        assert_eq!(
            Vin::decode(b"WVWZZZ1KZAW000001\0\0").unwrap().0,
            "WVWZZZ1KZAW000001"
        );
        let e = Vin::decode(b"WVW\x01ZZ").unwrap_err();
        assert_eq!((e.offset, e.problem.code()), (3, "composite_not_text"));
    }
}
