//! The AVL record model: what Codec 7, 8, 8E and 16 records carry, independent of the codec.
//! The data array around the records is [`crate::data::AvlData`].
//!
//! Values are kept as on the wire (coordinates in 1e-7 degrees, IO values as unsigned integers
//! or bytes) so that encoding a decoded record gives back the same bytes; the JSON model and the
//! IO catalogue add the human view on top.

use alloc::vec::Vec;

/// One AVL record: time, priority, position and IO values.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AvlRecord {
    /// Milliseconds since 1970-01-01 UTC.
    pub timestamp_ms: u64,
    /// 0 low, 1 high, 2 panic, 3 security.
    pub priority: Priority,
    /// Position and motion.
    pub gps: GpsElement,
    /// The IO id that caused the record, 0 when it was not event-generated.
    pub event_id: u16,
    /// Codec 16 only: why the record was generated.
    pub generation_type: Option<GenerationType>,
    /// IO elements, grouped by value size as on the wire (1, 2, 4, 8 bytes, then variable).
    pub io: Vec<IoElement>,
}

impl AvlRecord {
    /// The IO value with this id, if present.
    pub fn io(&self, id: u16) -> Option<&IoValue> {
        self.io.iter().find(|e| e.id == id).map(|e| &e.value)
    }
}

/// The GPS element. Devices without a fix send the last known position with zero satellites,
/// or zeros after a reboot: see [`GpsElement::has_fix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GpsElement {
    /// Degrees × 10^7, west negative.
    pub longitude: i32,
    /// Degrees × 10^7, south negative.
    pub latitude: i32,
    /// Metres above sea level.
    pub altitude: i16,
    /// Degrees clockwise from north.
    pub angle: u16,
    /// Visible satellites.
    pub satellites: u8,
    /// km/h; 0 when GPS data is invalid.
    pub speed: u16,
}

impl GpsElement {
    /// Longitude in degrees.
    pub fn longitude_deg(&self) -> f64 {
        f64::from(self.longitude) / 1e7
    }

    /// Latitude in degrees.
    pub fn latitude_deg(&self) -> f64 {
        f64::from(self.latitude) / 1e7
    }

    /// Whether the position is worth plotting: a (0, 0) position or zero satellites means no fix.
    pub fn has_fix(&self) -> bool {
        self.satellites > 0 && (self.longitude != 0 || self.latitude != 0)
    }
}

/// Record priority. Open: lenient decoding keeps values above 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Priority(pub u8);

impl Priority {
    /// Low.
    pub const LOW: Self = Self(0);
    /// High.
    pub const HIGH: Self = Self(1);
    /// Panic.
    pub const PANIC: Self = Self(2);
    /// Security (RUT955/RUT850).
    pub const SECURITY: Self = Self(3);

    /// Its name, or `None` outside 0..=3.
    pub fn name(self) -> Option<&'static str> {
        ["low", "high", "panic", "security"]
            .get(usize::from(self.0))
            .copied()
    }
}

/// Codec 16 generation type. Open: lenient decoding keeps values above 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct GenerationType(pub u8);

impl GenerationType {
    /// Its name, or `None` outside 0..=7.
    pub fn name(self) -> Option<&'static str> {
        [
            "on_exit",
            "on_entrance",
            "on_both",
            "reserved",
            "hysteresis",
            "on_change",
            "eventual",
            "periodical",
        ]
        .get(usize::from(self.0))
        .copied()
    }
}

/// One IO element: an id and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoElement {
    /// The IO id (AVL id). Its meaning depends on the device model: see the IO catalogue.
    pub id: u16,
    /// The value as on the wire.
    pub value: IoValue,
}

/// An IO value; the variant is the wire size, which decides the group it travels in. `B` holds
/// a variable-length value: owned (`Vec<u8>`, the default, in decoded records) or borrowed
/// from the input (`&[u8]`, [`crate::view::IoValueRef`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoValue<B = Vec<u8>> {
    /// 1-byte group.
    U8(u8),
    /// 2-byte group.
    U16(u16),
    /// 4-byte group.
    U32(u32),
    /// 8-byte group.
    U64(u64),
    /// Variable length (Codec 8 Extended NX group).
    Bytes(B),
}

impl<B: AsRef<[u8]>> IoValue<B> {
    /// Size on the wire in bytes.
    pub fn size(&self) -> usize {
        match self {
            Self::U8(_) => 1,
            Self::U16(_) => 2,
            Self::U32(_) => 4,
            Self::U64(_) => 8,
            Self::Bytes(b) => b.as_ref().len(),
        }
    }

    /// The unsigned integer on the wire, for fixed-size values.
    pub fn raw(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::Bytes(_) => None,
        }
    }

    /// Big-endian bytes as on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::U8(v) => v.to_be_bytes().to_vec(),
            Self::U16(v) => v.to_be_bytes().to_vec(),
            Self::U32(v) => v.to_be_bytes().to_vec(),
            Self::U64(v) => v.to_be_bytes().to_vec(),
            Self::Bytes(b) => b.as_ref().to_vec(),
        }
    }

    /// The value borrowing its bytes.
    pub fn as_borrowed(&self) -> IoValue<&[u8]> {
        match *self {
            Self::U8(v) => IoValue::U8(v),
            Self::U16(v) => IoValue::U16(v),
            Self::U32(v) => IoValue::U32(v),
            Self::U64(v) => IoValue::U64(v),
            Self::Bytes(ref b) => IoValue::Bytes(b.as_ref()),
        }
    }

    /// The owned value.
    pub fn to_owned(&self) -> IoValue {
        match *self {
            Self::U8(v) => IoValue::U8(v),
            Self::U16(v) => IoValue::U16(v),
            Self::U32(v) => IoValue::U32(v),
            Self::U64(v) => IoValue::U64(v),
            Self::Bytes(ref b) => IoValue::Bytes(b.as_ref().to_vec()),
        }
    }

    /// Group index: 0 for 1 byte, 1 for 2, 2 for 4, 3 for 8, 4 for variable.
    pub(crate) fn group(&self) -> usize {
        match self {
            Self::U8(_) => 0,
            Self::U16(_) => 1,
            Self::U32(_) => 2,
            Self::U64(_) => 3,
            Self::Bytes(_) => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_and_borrowed_values_agree() {
        let owned = [
            IoValue::U8(1),
            IoValue::U64(u64::MAX),
            IoValue::Bytes(alloc::vec![0xab, 0xcd]),
        ];
        for v in &owned {
            let b = v.as_borrowed();
            assert_eq!(
                (b.size(), b.raw(), b.to_bytes()),
                (v.size(), v.raw(), v.to_bytes())
            );
            assert_eq!(&b.to_owned(), v);
        }
    }
}
