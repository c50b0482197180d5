//! Errors and warnings.
//!
//! Every decoding failure says *what* went wrong ([`ErrorKind`], with a stable snake_case
//! [`ErrorKind::code`]), *where* (the byte offset from the start of the caller's input and the
//! protocol field being read) and *why* (the values that disagree). The playground highlights the
//! offending byte from `offset`; servers log the whole message.
//!
//! Incomplete input is never an error: decoders return [`crate::Status::Partial`] instead.

use alloc::string::String;
use core::fmt;

use crate::composite::{CompositeKind, CompositeProblem};
use crate::field::Field;

/// A decoding failure: invalid input, never merely incomplete input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset from the start of the input (or of the stream, for sessions).
    pub offset: usize,
    /// The protocol field that was being read, if the error is about one.
    pub field: Option<Field>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl DecodeError {
    pub(crate) fn new(offset: usize, field: Field, kind: ErrorKind) -> Self {
        Self {
            offset,
            field: Some(field),
            kind,
        }
    }

    /// An error about the input as a whole, not one field.
    pub(crate) fn at(offset: usize, kind: ErrorKind) -> Self {
        Self {
            offset,
            field: None,
            kind,
        }
    }

    /// The name of the field, `""` when the error is not about one field (as in the JSON model).
    pub fn field_name(&self) -> &'static str {
        self.field.map_or("", Field::name)
    }

    /// The stable snake_case name of the error kind (`"crc_mismatch"`, …), as used in the JSON model.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// Shift the offset, for errors found in a slice that starts `by` bytes into the caller's input.
    pub fn shifted(mut self, by: usize) -> Self {
        self.offset += by;
        self
    }
}

/// What went wrong while decoding. Marked non-exhaustive: new checks may add kinds.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ends inside a field that a length or count said was there.
    UnexpectedEnd {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The input is empty.
    EmptyInput,
    /// A TCP data frame must start with four zero bytes.
    BadPreamble {
        /// The four bytes found instead.
        found: u32,
    },
    /// A declared length is above the configured maximum.
    FrameTooLarge {
        /// The declared length.
        length: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A declared length is too small to hold the fixed fields of the structure.
    LengthTooSmall {
        /// The declared length.
        length: usize,
        /// The smallest valid length.
        min: usize,
    },
    /// The declared data field length disagrees with the bytes actually present.
    LengthMismatch {
        /// The length on the wire.
        declared: usize,
        /// The length the content has.
        actual: usize,
    },
    /// CRC-16/IBM over the data field does not match the trailer.
    CrcMismatch {
        /// CRC computed over the received data field.
        computed: u16,
        /// The 4-byte CRC field as received.
        received: u32,
    },
    /// The CRC field is shorter than its 4 bytes (some devices and examples send only the
    /// CRC-16 itself). Only lenient decoding of complete input reports it, as a warning.
    ShortCrc {
        /// Bytes of CRC present.
        length: usize,
    },
    /// A codec id this crate does not know.
    UnknownCodec {
        /// The codec id byte.
        id: u8,
    },
    /// A codec that is known but not decodable here (Codec 4, SMS data).
    UnsupportedCodec {
        /// The codec id byte.
        id: u8,
    },
    /// The codec is valid but not where it was found (a command codec in a bare AVL array, …).
    UnexpectedCodec {
        /// The codec id byte.
        id: u8,
    },
    /// "Number of Data 1" and "Number of Data 2" differ.
    CountMismatch {
        /// Count before the records.
        header: u8,
        /// Count after the records.
        trailer: u8,
    },
    /// The total IO count disagrees with the sum of the group counts.
    IoCountMismatch {
        /// The declared total N.
        declared: u16,
        /// N1 + N2 + N4 + N8 (+ NX).
        actual: u16,
    },
    /// Bytes are left after the last field of a length-delimited structure.
    TrailingBytes {
        /// How many bytes are left over.
        count: usize,
    },
    /// The IMEI length field is zero or implausibly long.
    InvalidImeiLength {
        /// The declared length.
        length: usize,
    },
    /// An IMEI byte is not an ASCII digit.
    InvalidImeiDigit {
        /// The byte found.
        byte: u8,
    },
    /// Priority above 3 (0 low, 1 high, 2 panic, 3 security).
    InvalidPriority {
        /// The value found.
        value: u8,
    },
    /// Codec 16 generation type above 7.
    InvalidGenerationType {
        /// The value found.
        value: u8,
    },
    /// A command/response size too small for the fields it must include (timestamp, IMEI).
    InvalidCommandSize {
        /// The declared size.
        size: u32,
        /// The smallest valid size for this codec.
        min: u32,
    },
    /// UDP channel packet type other than 0x00 or 0x01.
    InvalidPacketType {
        /// The value found.
        value: u8,
    },
    /// The input does not look like any Teltonika packet.
    UnrecognizedInput,
    /// The session got bytes it cannot accept in its current state (after an IMEI reject, …).
    UnexpectedData {
        /// The session state, e.g. `"rejected"`.
        state: &'static str,
    },
    /// The session's input buffer would exceed its configured maximum.
    BufferFull {
        /// The configured maximum.
        max: usize,
    },
}

impl ErrorKind {
    /// Stable snake_case identifier, part of the JSON contract.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnexpectedEnd { .. } => "unexpected_end",
            Self::EmptyInput => "empty_input",
            Self::BadPreamble { .. } => "bad_preamble",
            Self::FrameTooLarge { .. } => "frame_too_large",
            Self::LengthTooSmall { .. } => "length_too_small",
            Self::LengthMismatch { .. } => "length_mismatch",
            Self::CrcMismatch { .. } => "crc_mismatch",
            Self::ShortCrc { .. } => "short_crc",
            Self::UnknownCodec { .. } => "unknown_codec",
            Self::UnsupportedCodec { .. } => "unsupported_codec",
            Self::UnexpectedCodec { .. } => "unexpected_codec",
            Self::CountMismatch { .. } => "count_mismatch",
            Self::IoCountMismatch { .. } => "io_count_mismatch",
            Self::TrailingBytes { .. } => "trailing_bytes",
            Self::InvalidImeiLength { .. } => "invalid_imei_length",
            Self::InvalidImeiDigit { .. } => "invalid_imei_digit",
            Self::InvalidPriority { .. } => "invalid_priority",
            Self::InvalidGenerationType { .. } => "invalid_generation_type",
            Self::InvalidCommandSize { .. } => "invalid_command_size",
            Self::InvalidPacketType { .. } => "invalid_packet_type",
            Self::UnrecognizedInput => "unrecognized_input",
            Self::UnexpectedData { .. } => "unexpected_data",
            Self::BufferFull { .. } => "buffer_full",
        }
    }

    /// Whether lenient decoding ([`crate::DecodeOptions::lenient`]) decodes past this problem
    /// and reports it as a warning instead.
    pub fn is_tolerated_when_lenient(&self) -> bool {
        matches!(
            self,
            Self::CrcMismatch { .. }
                | Self::CountMismatch { .. }
                | Self::LengthMismatch { .. }
                | Self::TrailingBytes { .. }
                | Self::IoCountMismatch { .. }
                | Self::InvalidPriority { .. }
                | Self::InvalidGenerationType { .. }
                | Self::InvalidPacketType { .. }
        )
    }

    /// What and why, without the position (the caller adds "at byte N").
    fn what(&self) -> &'static str {
        match self {
            Self::UnexpectedEnd { .. } => "Unexpected end of input",
            Self::EmptyInput => "Empty input",
            Self::BadPreamble { .. } => "Bad preamble",
            Self::FrameTooLarge { .. } => "Frame too large",
            Self::LengthTooSmall { .. } => "Length too small",
            Self::LengthMismatch { .. } => "Length mismatch",
            Self::CrcMismatch { .. } => "CRC mismatch",
            Self::ShortCrc { .. } => "Short CRC",
            Self::UnknownCodec { .. } => "Unknown codec",
            Self::UnsupportedCodec { .. } => "Unsupported codec",
            Self::UnexpectedCodec { .. } => "Unexpected codec",
            Self::CountMismatch { .. } => "Count mismatch",
            Self::IoCountMismatch { .. } => "IO count mismatch",
            Self::TrailingBytes { .. } => "Trailing bytes",
            Self::InvalidImeiLength { .. } => "Invalid IMEI length",
            Self::InvalidImeiDigit { .. } => "Invalid IMEI digit",
            Self::InvalidPriority { .. } => "Invalid priority",
            Self::InvalidGenerationType { .. } => "Invalid generation type",
            Self::InvalidCommandSize { .. } => "Invalid command size",
            Self::InvalidPacketType { .. } => "Invalid UDP packet type",
            Self::UnrecognizedInput => "Unrecognized input",
            Self::UnexpectedData { .. } => "Unexpected data",
            Self::BufferFull { .. } => "Buffer full",
        }
    }

    fn why(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnexpectedEnd { needed, available } => {
                write!(f, "needs {needed} bytes, {available} available")
            }
            Self::EmptyInput => f.write_str("nothing to decode"),
            Self::BadPreamble { found } => {
                write!(f, "expected 0x00000000, found 0x{found:08x}")
            }
            Self::FrameTooLarge { length, max } => {
                write!(f, "declared length {length} exceeds the maximum {max}")
            }
            Self::LengthTooSmall { length, min } => {
                write!(f, "declared length {length} is below the minimum {min}")
            }
            Self::LengthMismatch { declared, actual } => {
                write!(f, "declared {declared} bytes, content has {actual}")
            }
            Self::CrcMismatch { computed, received } => {
                write!(f, "computed 0x{computed:04x}, received 0x{received:04x}")
            }
            Self::ShortCrc { length } => {
                write!(f, "the CRC field has {length} bytes, not 4")
            }
            Self::UnknownCodec { id } => write!(f, "codec id 0x{id:02x} is not a Teltonika codec"),
            Self::UnsupportedCodec { id } => {
                write!(f, "codec id 0x{id:02x} (SMS data) is not supported")
            }
            Self::UnexpectedCodec { id } => {
                write!(f, "codec id 0x{id:02x} is not allowed here")
            }
            Self::CountMismatch { header, trailer } => {
                write!(f, "count before the data is {header}, after it {trailer}")
            }
            Self::IoCountMismatch { declared, actual } => {
                write!(
                    f,
                    "total says {declared} IO elements, the groups hold {actual}"
                )
            }
            Self::TrailingBytes { count } => write!(f, "{count} bytes left after the last field"),
            Self::InvalidImeiLength { length } => {
                write!(f, "IMEI length {length} is not between 1 and 32")
            }
            Self::InvalidImeiDigit { byte } => {
                write!(f, "byte 0x{byte:02x} is not an ASCII digit")
            }
            Self::InvalidPriority { value } => write!(f, "{value} is not 0..=3"),
            Self::InvalidGenerationType { value } => write!(f, "{value} is not 0..=7"),
            Self::InvalidCommandSize { size, min } => {
                write!(f, "size {size} is below the minimum {min} for this codec")
            }
            Self::InvalidPacketType { value } => {
                write!(f, "0x{value:02x} is neither 0x00 nor 0x01")
            }
            Self::UnrecognizedInput => f.write_str(
                "not an IMEI login, TCP frame, UDP datagram, AVL data array or keep-alive",
            ),
            Self::UnexpectedData { state } => write!(f, "the session is {state}"),
            Self::BufferFull { max } => write!(f, "more than {max} bytes buffered"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}: ", self.kind.what(), self.offset)?;
        self.kind.why(f)?;
        if let Some(field) = self.field {
            write!(f, " (field: {field})")?;
        }
        Ok(())
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.what())?;
        self.why(f)
    }
}

impl core::error::Error for DecodeError {}

/// A problem that lenient decoding tolerated, or a detail worth a look in strict mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Byte offset from the start of the input.
    pub offset: usize,
    /// What: matchable, with the values involved; [`WarningKind::code`] is its stable name.
    pub kind: WarningKind,
    /// What, where and why.
    pub message: String,
}

/// What a [`Warning`] is about.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarningKind {
    /// A problem that strict decoding rejects with this error, tolerated in lenient mode (or,
    /// for a few harmless ones such as a Codec 12 quantity 2 mismatch, in both modes).
    Tolerated(ErrorKind),
    /// A Codec 13 timestamp before 2000 whose 8 bytes read as a plausible millisecond time:
    /// the message was most likely written with an 8-byte millisecond timestamp.
    TimestampSuspicious {
        /// The 4-byte seconds as decoded (per the spec).
        seconds: u32,
        /// The 8 bytes from the timestamp read as milliseconds since 1970.
        millis: u64,
    },
    /// A composite IO value (beacon list, sensor list, VIN, fault codes) that does not follow
    /// its layout: the record is decoded, the value kept as bytes (hex in the JSON model, no
    /// `decoded`). The code is the problem's ([`CompositeProblem::code`]).
    MalformedComposite {
        /// The IO id.
        io_id: u16,
        /// What is wrong.
        problem: CompositeProblem,
    },
}

impl WarningKind {
    /// Stable snake_case name, part of the JSON contract: the [`ErrorKind::code`] of a tolerated
    /// error, or `timestamp_suspicious`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Tolerated(k) => k.code(),
            Self::TimestampSuspicious { .. } => "timestamp_suspicious",
            Self::MalformedComposite { problem, .. } => problem.code(),
        }
    }
}

impl Warning {
    pub(crate) fn from_error(e: &DecodeError) -> Self {
        Self {
            offset: e.offset,
            kind: WarningKind::Tolerated(e.kind.clone()),
            message: alloc::format!("{e}"),
        }
    }

    /// The stable snake_case name of the kind.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// A malformed composite value of IO `io_id` whose problem lies at byte `offset` of the
    /// input.
    pub(crate) fn composite(offset: usize, io_id: u16, problem: CompositeProblem) -> Self {
        let what = CompositeKind::of(io_id).map_or("composite value", CompositeKind::name);
        Self {
            offset,
            message: alloc::format!(
                "Malformed {what} at byte {offset}: {problem} (IO {io_id}, kept as hex)"
            ),
            kind: WarningKind::MalformedComposite { io_id, problem },
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a value cannot be encoded.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// A value does not fit the field the codec gives it (an IO id above 255 in Codec 8, …).
    OutOfRange {
        /// The field, e.g. `"io id"`.
        field: &'static str,
        /// The value.
        value: u64,
        /// The largest value the field holds.
        max: u64,
    },
    /// The codec cannot carry this kind of value (a variable-length IO value in Codec 8, …).
    NotSupported {
        /// What cannot be carried.
        what: &'static str,
        /// The codec's name.
        codec: &'static str,
    },
    /// An IMEI that is not 1..=16 ASCII digits where 8 BCD bytes are required.
    InvalidImei,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { field, value, max } => {
                write!(f, "{field} {value} does not fit (maximum {max})")
            }
            Self::NotSupported { what, codec } => write!(f, "Codec {codec} cannot carry {what}"),
            Self::InvalidImei => f.write_str("IMEI must be 1 to 16 ASCII digits"),
        }
    }
}

impl core::error::Error for EncodeError {}
