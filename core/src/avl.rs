//! AVL data: the records that Codec 7, 8, 8E and 16 carry, and the data array around them.
//!
//! Values are kept as on the wire (coordinates in 1e-7 degrees, IO values as unsigned integers
//! or bytes) so that encoding a decoded record gives back the same bytes; the JSON model and the
//! IO catalogue add the human view on top.

use alloc::vec::Vec;

use crate::codec::Codec;
use crate::codec7::Codec7Fields;
use crate::error::{DecodeError, EncodeError, ErrorKind, Warning};
use crate::reader::Reader;

/// The data array of a data codec: codec id, "Number of Data 1", the records, "Number of Data 2".
/// It is the TCP frame's data field and the tail of a UDP datagram.
#[derive(Clone, Debug, PartialEq)]
pub struct AvlData {
    /// Codec 7, 8, 8E or 16.
    pub codec: Codec,
    /// The records, in wire order (devices may send them newest first).
    pub records: Vec<AvlRecord>,
}

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
    /// Codec 7 only: the masks and GH3000 extras (cell, signal, operator).
    pub codec7: Option<Codec7Fields>,
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

/// An IO value; the variant is the wire size, which decides the group it travels in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoValue {
    /// 1-byte group.
    U8(u8),
    /// 2-byte group.
    U16(u16),
    /// 4-byte group.
    U32(u32),
    /// 8-byte group.
    U64(u64),
    /// Variable length (Codec 8 Extended NX group).
    Bytes(Vec<u8>),
}

impl IoValue {
    /// Size on the wire in bytes.
    pub fn size(&self) -> usize {
        match self {
            Self::U8(_) => 1,
            Self::U16(_) => 2,
            Self::U32(_) => 4,
            Self::U64(_) => 8,
            Self::Bytes(b) => b.len(),
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
            Self::Bytes(b) => b.clone(),
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

/// Decoding settings shared by every decoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Tolerate the inconsistencies real devices and published examples contain (CRC, length,
    /// count mismatches, out-of-range priority…), decode what can be decoded and report each as a
    /// [`Warning`]. Off by default: strict decoding rejects them.
    pub lenient: bool,
    /// Largest TCP data field length (and UDP datagram) accepted. Devices send at most 1280 bytes
    /// (512 for FMB640), Codec 12 camera chunks a little over 2 KiB; the default, 64 KiB, leaves
    /// room while bounding what a session buffers.
    pub max_frame_len: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            lenient: false,
            max_frame_len: 65_536,
        }
    }
}

impl DecodeOptions {
    /// Lenient decoding with the default limits.
    pub fn lenient() -> Self {
        Self {
            lenient: true,
            ..Self::default()
        }
    }
}

/// Strict mode returns the error; lenient mode records it as a warning and carries on.
pub(crate) fn tolerate(
    lenient: bool,
    warnings: &mut Vec<Warning>,
    err: DecodeError,
) -> Result<(), DecodeError> {
    if lenient {
        warnings.push(Warning::from_error(&err));
        Ok(())
    } else {
        Err(err)
    }
}

/// Smallest encoded record of each codec, used to bound allocations by the bytes present.
fn min_record_len(codec: Codec) -> usize {
    match codec {
        Codec::Codec7 => 5,
        Codec::Codec8 => 8 + 1 + 15 + 6,
        Codec::Codec8Ext => 8 + 1 + 15 + 2 + 2 + 10,
        Codec::Codec16 => 8 + 1 + 15 + 2 + 1 + 5,
        _ => 1,
    }
}

/// Read an AVL data array that fills `r` exactly (codec id, N1, records, N2).
pub(crate) fn read_avl_data(
    r: &mut Reader<'_, '_>,
    opts: &DecodeOptions,
    warnings: &mut Vec<Warning>,
) -> Result<AvlData, DecodeError> {
    if !r.is_traced() {
        if let Some((data, used)) = crate::codec8::fast_avl_data(r.rest()) {
            r.skip(used);
            return Ok(data);
        }
    }
    let at = r.offset();
    let id = r.u8("codec id")?;
    let codec = data_codec(id, at)?;
    let count = r.u8("number of data 1")?;
    let capacity = usize::from(count).min(r.left() / min_record_len(codec));
    let mut records = Vec::with_capacity(capacity);
    for i in 0..count {
        r.record = Some(u32::from(i));
        let record = match codec {
            Codec::Codec7 => crate::codec7::read_record(r, opts, warnings)?,
            _ => crate::codec8::read_record(r, codec, opts, warnings)?,
        };
        records.push(record);
    }
    r.record = None;
    let trailer_at = r.offset();
    let trailer = r.u8("number of data 2")?;
    if trailer != count {
        tolerate(
            opts.lenient,
            warnings,
            DecodeError::new(
                trailer_at,
                "number of data 2",
                ErrorKind::CountMismatch {
                    header: count,
                    trailer,
                },
            ),
        )?;
    }
    Ok(AvlData { codec, records })
}

/// The codec for a data array's first byte: a data codec, or a specific error.
pub(crate) fn data_codec(id: u8, at: usize) -> Result<Codec, DecodeError> {
    match Codec::from_id(id) {
        Some(c) if !c.is_command() => Ok(c),
        Some(_) => Err(DecodeError::new(
            at,
            "codec id",
            ErrorKind::UnexpectedCodec { id },
        )),
        None => Err(unknown_codec(id, at)),
    }
}

pub(crate) fn unknown_codec(id: u8, at: usize) -> DecodeError {
    let kind = if id == crate::codec::CODEC_4_SMS {
        ErrorKind::UnsupportedCodec { id }
    } else {
        ErrorKind::UnknownCodec { id }
    };
    DecodeError::new(at, "codec id", kind)
}

impl AvlData {
    /// Encode as an AVL data array (codec id, N1, records, N2): the TCP data field, the UDP tail.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(3 + self.records.len() * 64);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Append the encoded data array to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.codec.is_command() {
            return Err(EncodeError::NotSupported {
                what: "AVL records",
                codec: self.codec.name(),
            });
        }
        let count = u8::try_from(self.records.len()).map_err(|_| EncodeError::OutOfRange {
            field: "record count",
            value: self.records.len() as u64,
            max: 255,
        })?;
        out.push(self.codec.id());
        out.push(count);
        for record in &self.records {
            match self.codec {
                Codec::Codec7 => crate::codec7::write_record(record, out)?,
                _ => crate::codec8::write_record(record, self.codec, out)?,
            }
        }
        out.push(count);
        Ok(())
    }
}
