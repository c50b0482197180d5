//! Composite IO values: the variable-length (NX) IO elements of Codec 8 Extended whose bytes
//! have a structure of their own — the beacon list (IO 385), the advanced BLE and EYE sensor
//! lists (548, 10828, 10829, 10831, 11317), the VIN (256, 325) and the fault codes (281) — and
//! the serving cell spread over several IO elements ([`network`]).
//!
//! The record model keeps these values as bytes (so that a record re-encodes exactly); this
//! module reads them into types on demand. A value that does not follow its layout never fails
//! the record: [`decode`] says what is wrong and where (a [`CompositeError`], its offset counted
//! from the first byte of the value), the packet decoders turn that into a warning at the byte
//! of the input, and the JSON model keeps the value's hex without `decoded`.
//!
//! Allocation is bounded by the value: every item read consumes at least one byte, and nothing
//! is reserved from a length or count field.

use alloc::vec::Vec;
use core::fmt;

pub mod beacon;
pub mod network;
pub mod sensor;
pub mod text;

pub use beacon::{Beacon, BeaconId, BeaconList};
pub use network::{Operator, ServingCell};
pub use sensor::{Advertisement, EyeData, Parameter, Sensor, SensorList, SensorListKind};
pub use text::{FaultCodes, Vin};

/// IO 385: the beacon list of the simple BLE mode.
pub const BEACON_LIST: u16 = 385;
/// IO 548: advanced BLE beacon data (raw advertisements in parameter 2).
pub const ADVANCED_BLE: u16 = 548;
/// IOs 10828, 10829 and 10831: BLE sensor lists (EYE flags in parameter 2).
pub const BLE_SENSOR_LISTS: [u16; 3] = [10828, 10829, 10831];
/// IO 11317: the EYE sensor list.
pub const EYE_SENSOR_LIST: u16 = 11317;
/// IOs 256 and 325: the vehicle identification number.
pub const VIN: [u16; 2] = [256, 325];
/// IO 281: fault codes (DTC).
pub const FAULT_CODES: u16 = 281;

/// A composite IO value, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Composite {
    /// IO 385.
    Beacons(BeaconList),
    /// IO 548, 10828, 10829, 10831, 11317.
    Sensors(SensorList),
    /// IO 256, 325.
    Vin(Vin),
    /// IO 281.
    FaultCodes(FaultCodes),
}

/// What layout an IO id's value has, if it is a composite value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompositeKind {
    /// The beacon list (385).
    Beacons,
    /// A TLV sensor list.
    Sensors(SensorListKind),
    /// A VIN.
    Vin,
    /// Fault codes.
    FaultCodes,
}

impl CompositeKind {
    /// The layout of IO `id`'s value; `None` when it is not a composite value.
    pub fn of(id: u16) -> Option<Self> {
        match id {
            BEACON_LIST => Some(Self::Beacons),
            ADVANCED_BLE => Some(Self::Sensors(SensorListKind::Advanced)),
            EYE_SENSOR_LIST | 10828 | 10829 | 10831 => Some(Self::Sensors(SensorListKind::Eye)),
            256 | 325 => Some(Self::Vin),
            FAULT_CODES => Some(Self::FaultCodes),
            _ => None,
        }
    }

    /// What the value is, for messages: `"beacon list"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Beacons => "beacon list",
            Self::Sensors(_) => "sensor list",
            Self::Vin => "VIN",
            Self::FaultCodes => "fault codes",
        }
    }
}

/// Decode the value of IO `id`: `None` when the id has no composite layout.
///
/// ```
/// use fleetview::composite::{self, BeaconId, Composite};
/// // Part 1 of 1, one iBeacon (flags 0x21: RSSI present), UUID, major 1, minor 2, RSSI -60.
/// let value = fleetview::hex::decode("11 21 e2c56db5dffb48d2b060d0f5a71096e0 0001 0002 c4").unwrap();
/// let Some(Ok(Composite::Beacons(list))) = composite::decode(385, &value) else { panic!() };
/// assert_eq!((list.part, list.parts, list.beacons[0].rssi), (1, 1, Some(-60)));
/// assert!(matches!(list.beacons[0].id, BeaconId::IBeacon { major: 1, minor: 2, .. }));
/// // A cut value: where it goes wrong, from the value's first byte.
/// let e = composite::decode(385, &value[..10]).unwrap().unwrap_err();
/// assert_eq!((e.offset, e.problem.code()), (2, "composite_truncated"));
/// ```
pub fn decode(id: u16, value: &[u8]) -> Option<Result<Composite, CompositeError>> {
    CompositeKind::of(id).map(|kind| decode_as(kind, value, None))
}

/// [`decode`], appending the byte ranges of the value's items to `trace` (offsets from its
/// first byte) up to the first problem: how [`crate::annotate`] labels each beacon and sensor
/// parameter.
pub fn decode_traced(
    id: u16,
    value: &[u8],
    trace: &mut Vec<Piece>,
) -> Option<Result<Composite, CompositeError>> {
    CompositeKind::of(id).map(|kind| decode_as(kind, value, Some(trace)))
}

fn decode_as(
    kind: CompositeKind,
    value: &[u8],
    trace: Option<&mut Vec<Piece>>,
) -> Result<Composite, CompositeError> {
    let mut c = Cursor::new(value, trace);
    Ok(match kind {
        CompositeKind::Beacons => Composite::Beacons(BeaconList::read(&mut c)?),
        CompositeKind::Sensors(k) => Composite::Sensors(SensorList::read(&mut c, k)?),
        CompositeKind::Vin => Composite::Vin(Vin::decode(value)?),
        CompositeKind::FaultCodes => Composite::FaultCodes(FaultCodes::decode(value)?),
    })
}

impl Composite {
    /// The value's bytes, as a device sends them.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Beacons(b) => b.encode_into(&mut out),
            Self::Sensors(s) => s.encode_into(&mut out),
            Self::Vin(v) => out.extend_from_slice(v.0.as_bytes()),
            Self::FaultCodes(f) => f.encode_into(&mut out),
        }
        out
    }
}

/// Why a composite value could not be decoded, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompositeError {
    /// Offset of the problem from the first byte of the value.
    pub offset: usize,
    /// What is wrong.
    pub problem: CompositeProblem,
}

/// What is wrong with a composite value. Each has a stable snake_case [`CompositeProblem::code`],
/// the `kind` of the warning in the JSON model.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompositeProblem {
    /// The value ends inside a field (a beacon's UUID cut short, a parameter without its length).
    CompositeTruncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the value.
        available: usize,
    },
    /// A length byte (a sensor's, a parameter's) says more bytes than its container has left.
    CompositeLengthOverrun {
        /// The declared length.
        length: usize,
        /// Bytes left.
        available: usize,
    },
    /// The data part byte of a beacon list is not "part N of M" with 1 ≤ N ≤ M.
    CompositeBadPart {
        /// The part number (high nibble).
        part: u8,
        /// The number of parts (low nibble).
        parts: u8,
    },
    /// A known sensor parameter with a length its type cannot have (a 3-byte temperature).
    CompositeBadParameter {
        /// The parameter id.
        parameter: u8,
        /// Its length.
        length: usize,
    },
    /// A byte that is not printable ASCII in a text value (VIN, fault codes), or a sensor name
    /// that is not UTF-8.
    CompositeNotText {
        /// The byte.
        byte: u8,
    },
}

impl CompositeProblem {
    /// Stable snake_case name, part of the JSON contract.
    pub fn code(&self) -> &'static str {
        match self {
            Self::CompositeTruncated { .. } => "composite_truncated",
            Self::CompositeLengthOverrun { .. } => "composite_length_overrun",
            Self::CompositeBadPart { .. } => "composite_bad_part",
            Self::CompositeBadParameter { .. } => "composite_bad_parameter",
            Self::CompositeNotText { .. } => "composite_not_text",
        }
    }
}

impl fmt::Display for CompositeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::CompositeTruncated { needed, available } => {
                write!(f, "needs {needed} bytes, {available} left in the value")
            }
            Self::CompositeLengthOverrun { length, available } => {
                write!(
                    f,
                    "length {length} runs past the end ({available} bytes left)"
                )
            }
            Self::CompositeBadPart { part, parts } => {
                write!(f, "data part {part} of {parts} (expected 1 ≤ part ≤ parts)")
            }
            Self::CompositeBadParameter { parameter, length } => {
                write!(f, "parameter {parameter} cannot be {length} bytes long")
            }
            Self::CompositeNotText { byte } => {
                write!(f, "byte 0x{byte:02x} is not printable text")
            }
        }
    }
}

/// What a traced byte range of a composite value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceKind {
    /// The beacon list's data part byte.
    DataPart,
    /// One whole beacon of the beacon list.
    Beacon,
    /// The first byte of a sensor list.
    SensorListHeader,
    /// A sensor's length byte.
    SensorLength,
    /// One parameter (id, length and value) of a sensor.
    SensorParameter,
}

/// A traced byte range of a composite value ([`decode_traced`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Offset from the first byte of the value.
    pub offset: usize,
    /// Number of bytes.
    pub len: usize,
    /// What it is.
    pub kind: PieceKind,
    /// Index of the beacon or sensor it belongs to.
    pub item: Option<u16>,
}

/// A bounds-checked cursor over a composite value whose errors carry the offset in the value.
pub(crate) struct Cursor<'a, 't> {
    buf: &'a [u8],
    pos: usize,
    trace: Option<&'t mut Vec<Piece>>,
}

impl<'a, 't> Cursor<'a, 't> {
    pub(crate) fn new(buf: &'a [u8], trace: Option<&'t mut Vec<Piece>>) -> Self {
        Self { buf, pos: 0, trace }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn error_at(&self, offset: usize, problem: CompositeProblem) -> CompositeError {
        CompositeError { offset, problem }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CompositeError> {
        let left = self.left();
        if n > left {
            return Err(self.error_at(
                self.pos,
                CompositeProblem::CompositeTruncated {
                    needed: n,
                    available: left,
                },
            ));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CompositeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, CompositeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CompositeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Record a traced range from `start` to the current position.
    pub(crate) fn mark(&mut self, start: usize, kind: PieceKind, item: Option<u16>) {
        if let Some(t) = self.trace.as_deref_mut() {
            t.push(Piece {
                offset: start,
                len: self.pos - start,
                kind,
                item,
            });
        }
    }
}

/// Index of the `i`th item, saturated (a value has at most 65,535 bytes, so at most as many items).
pub(crate) fn item_index(i: usize) -> Option<u16> {
    Some(u16::try_from(i).unwrap_or(u16::MAX))
}
