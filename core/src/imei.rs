//! The IMEI: the login frame of TCP sessions, the UDP channel header, Codec 14/15 addresses.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::error::{DecodeError, EncodeError, ErrorKind};
use crate::field::Field;
use crate::reader::Reader;

/// Longest IMEI length field accepted. Real devices send 15; a larger value would make a server
/// wait for bytes that never come, so it is rejected at once.
pub const MAX_IMEI_LEN: usize = 32;

/// A device identity: ASCII digits (15 on every Teltonika device).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Imei(String);

impl Imei {
    /// An IMEI from digits; `None` when empty, too long or not all ASCII digits.
    pub fn new(digits: &str) -> Option<Self> {
        let ok = !digits.is_empty()
            && digits.len() <= MAX_IMEI_LEN
            && digits.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self(String::from(digits)))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 8-byte form used by Codec 14 and 15: the digits as BCD, left-padded with zeros
    /// (`352093081452251` → `03 52 09 30 81 45 22 51`).
    pub fn to_bcd(&self) -> Result<[u8; 8], EncodeError> {
        imei_to_bcd(&self.0)
    }

    /// Decode the 8-byte Codec 14/15 form. Each nibble is shown as a hex digit; one leading zero
    /// nibble of a 16-digit value is dropped, as it pads a 15-digit IMEI.
    pub fn from_bcd(bytes: [u8; 8]) -> String {
        let mut s = crate::hex::encode(&bytes);
        if s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) {
            s.remove(0);
        }
        s
    }

    /// The login frame a device sends: 2-byte length then the digits.
    pub fn login_frame(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.0.len());
        out.extend_from_slice(&(self.0.len() as u16).to_be_bytes());
        out.extend_from_slice(self.0.as_bytes());
        out
    }
}

impl fmt::Display for Imei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::str::FromStr for Imei {
    type Err = EncodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s).ok_or(EncodeError::InvalidImei)
    }
}

pub(crate) fn imei_to_bcd(digits: &str) -> Result<[u8; 8], EncodeError> {
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EncodeError::InvalidImei);
    }
    let mut nibbles = [0u8; 16];
    let pad = 16 - digits.len();
    for (i, b) in digits.bytes().enumerate() {
        nibbles[pad + i] = b - b'0';
    }
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibbles[2 * i] << 4) | nibbles[2 * i + 1];
    }
    Ok(out)
}

/// Read a 2-byte length and that many ASCII digits.
pub(crate) fn read_imei(r: &mut Reader<'_, '_>) -> Result<Imei, DecodeError> {
    let at = r.offset();
    let len = usize::from(r.u16(Field::ImeiLength)?);
    if len == 0 || len > MAX_IMEI_LEN {
        return Err(DecodeError::new(
            at,
            Field::ImeiLength,
            ErrorKind::InvalidImeiLength { length: len },
        ));
    }
    let start = r.offset();
    let digits = r.take(len, Field::Imei)?;
    if let Some(i) = digits.iter().position(|b| !b.is_ascii_digit()) {
        return Err(DecodeError::new(
            start + i,
            Field::Imei,
            ErrorKind::InvalidImeiDigit { byte: digits[i] },
        ));
    }
    // All ASCII digits, so valid UTF-8.
    let s = core::str::from_utf8(digits).unwrap_or_default();
    Ok(Imei(String::from(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_round_trip() {
        let imei = Imei::new("352093081452251").unwrap();
        assert_eq!(
            imei.to_bcd().unwrap(),
            [0x03, 0x52, 0x09, 0x30, 0x81, 0x45, 0x22, 0x51]
        );
        assert_eq!(Imei::from_bcd(imei.to_bcd().unwrap()), "352093081452251");
        assert_eq!(
            Imei::from_bcd([0x01, 0x23, 0x45, 0x67, 0x89, 0x12, 0x34, 0x56]),
            "123456789123456"
        );
    }

    #[test]
    fn rejects_non_digits() {
        assert!(Imei::new("35209308145225a").is_none());
        assert!(Imei::new("").is_none());
        assert_eq!(
            Imei::new("12345678901234567").unwrap().to_bcd(),
            Err(EncodeError::InvalidImei)
        );
    }

    #[test]
    fn login_frame() {
        let imei = Imei::new("356307042441013").unwrap();
        assert_eq!(
            crate::hex::encode(&imei.login_frame()),
            "000f333536333037303432343431303133"
        );
    }
}
