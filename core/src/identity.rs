//! A record's identity, shared by every place that stores records (the server's databases, the
//! Worker's D1): the record encoded alone, as a one-record data array of its codec, and a 64-bit
//! FNV-1a hash of those bytes. A device that resends a batch sends the same bytes, so storage
//! keyed on (device, key) adds no row twice.
//!
//! Why FNV-1a and not a cryptographic hash: the key only separates the records of one device
//! (and, in the server, one timestamp), whose bytes that device chooses anyway, so there is no
//! adversary to resist; FNV is stable across builds and platforms, needs no dependency (core stays
//! light for wasm and `no_std`), and fits an SQL `INTEGER`. A collision would need two different
//! records of one device to hash alike: at 2^-64 per pair, never in practice.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::avl::AvlRecord;
use crate::codec::Codec;
use crate::data::AvlData;
use crate::error::EncodeError;

/// The 64-bit identity of a record's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey(pub u64);

impl RecordKey {
    /// FNV-1a (64 bits) of `bytes`.
    ///
    /// ```
    /// use fleetview::identity::RecordKey;
    /// assert_eq!(RecordKey::of(b"a").0, 0xaf63_dc4c_8601_ec8c);
    /// assert_eq!(RecordKey::of(b"a").to_hex(), "af63dc4c8601ec8c");
    /// ```
    pub fn of(bytes: &[u8]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Self(h)
    }

    /// The same bits as a signed integer, for SQL `INTEGER` columns.
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    /// 16 lowercase hex digits, for text columns.
    pub fn to_hex(self) -> String {
        crate::hex::encode(&self.0.to_be_bytes())
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A record's bytes (alone in a data array of `codec`) and their key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordIdentity {
    /// Codec id, count 1, the record, count 1: what [`AvlData::encode`] gives for it alone.
    pub bytes: Vec<u8>,
    /// [`RecordKey::of`] the bytes.
    pub key: RecordKey,
}

/// The identity of `record` as sent in `codec`. Fails only for a record the codec cannot carry
/// (which a decoded record never is).
pub fn record_identity(codec: Codec, record: &AvlRecord) -> Result<RecordIdentity, EncodeError> {
    let mut bytes = Vec::with_capacity(64 + record.io.len() * 6);
    AvlData::encode_one(codec, record, &mut bytes)?;
    let key = RecordKey::of(&bytes);
    Ok(RecordIdentity { bytes, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        // FNV-1a 64 test vectors (Fowler/Noll/Vo).
        assert_eq!(RecordKey::of(b"").0, 0xcbf2_9ce4_8422_2325);
        assert_eq!(RecordKey::of(b"foobar").0, 0x8594_4171_f739_67e8);
    }

    #[test]
    fn identity_is_the_record_alone_in_a_data_array() {
        let record = AvlRecord::default();
        let id = record_identity(Codec::Codec8, &record).unwrap();
        let alone = AvlData::new(Codec::Codec8, alloc::vec![record])
            .encode()
            .unwrap();
        assert_eq!(id.bytes, alone);
        assert_eq!(id.key, RecordKey::of(&alone));
    }
}
