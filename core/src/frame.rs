//! TCP framing: the IMEI login, the `0xFF` keep-alive, and data frames
//! `00000000 | data field length (4) | data field | CRC-16 (4)`.
//!
//! The data field runs from the codec id to "Number of Data 2"; its CRC-16/IBM travels in the low
//! two bytes of the 4-byte trailer. Detection follows what servers in the field do: a lone `0xFF`
//! is a keep-alive, a non-zero first u16 is an IMEI login, four zero bytes start a data frame.
//! [`crate::decode_frame`] puts this together into packets.

use alloc::vec::Vec;

use crate::data::{read_data_field, Content};
use crate::error::{DecodeError, ErrorKind, Warning};
use crate::field::Field;
use crate::imei::{read_imei, Imei, MAX_IMEI_LEN};
use crate::options::{tolerate, DecodeOptions};
use crate::reader::{Reader, Span};

/// Outcome of decoding from a buffer that may not hold a whole frame yet.
#[derive(Clone, Debug, PartialEq)]
pub enum Status<T> {
    /// Decoded; the value and the number of bytes consumed.
    Complete(T, usize),
    /// The input ends before the frame does: at least `needed` more bytes are required.
    /// Not an error: read more and call again with the longer buffer.
    Partial {
        /// Lower bound of the bytes still missing.
        needed: usize,
    },
}

impl<T> Status<T> {
    /// The complete value transformed, or the same `Partial`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Status<U> {
        match self {
            Self::Complete(v, n) => Status::Complete(f(v), n),
            Self::Partial { needed } => Status::Partial { needed },
        }
    }
}

/// The keep-alive byte devices may send between frames.
pub const KEEP_ALIVE: u8 = 0xFF;

/// Preamble, length and CRC around the data field.
pub const FRAME_OVERHEAD: usize = 12;

/// The CRC of a TCP frame: received and computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrcCheck {
    /// The 4-byte trailer as received.
    pub received: u32,
    /// CRC-16/IBM computed over the data field.
    pub computed: u16,
}

impl CrcCheck {
    /// Whether they agree.
    pub fn ok(&self) -> bool {
        self.received == u32::from(self.computed)
    }
}

/// What lenient recovery of a complete frame overrides in the frame's header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Data field length instead of the declared one.
    pub(crate) len: Option<usize>,
    /// The CRC field has 2 bytes instead of 4.
    pub(crate) short_crc: bool,
}

impl Layout {
    fn crc_len(self) -> usize {
        if self.short_crc {
            2
        } else {
            4
        }
    }
}

/// The data field length of the frame at the front of `input` and the frame's size, once the
/// preamble, the length and the whole frame are there: the one header check of the owned
/// decoder and the borrowed view. `layout` overrides the header (lenient recovery).
pub(crate) fn read_header(
    input: &[u8],
    max_frame_len: usize,
    layout: Layout,
) -> Result<Status<usize>, DecodeError> {
    let Some(&[p0, p1, p2, p3, l0, l1, l2, l3]) = input.first_chunk::<8>() else {
        return Ok(Status::Partial {
            needed: 8 - input.len(),
        });
    };
    let preamble = u32::from_be_bytes([p0, p1, p2, p3]);
    if preamble != 0 {
        return Err(DecodeError::new(
            0,
            Field::Preamble,
            ErrorKind::BadPreamble { found: preamble },
        ));
    }
    let len = layout
        .len
        .unwrap_or(u32::from_be_bytes([l0, l1, l2, l3]) as usize);
    if len > max_frame_len {
        return Err(DecodeError::new(
            4,
            Field::DataFieldLength,
            ErrorKind::FrameTooLarge {
                length: len,
                max: max_frame_len,
            },
        ));
    }
    // Codec id, one count, the other count: nothing valid is shorter.
    if len < 3 {
        return Err(DecodeError::new(
            4,
            Field::DataFieldLength,
            ErrorKind::LengthTooSmall {
                length: len,
                min: 3,
            },
        ));
    }
    let total = len + 8 + layout.crc_len();
    if input.len() < total {
        return Ok(Status::Partial {
            needed: total - input.len(),
        });
    }
    Ok(Status::Complete(len, total))
}

/// The declared data field length of a frame whose 8 header bytes are present.
pub(crate) fn declared_len(input: &[u8]) -> usize {
    u32::from_be_bytes([input[4], input[5], input[6], input[7]]) as usize
}

/// The 4-byte CRC field after a data field of `len` bytes (the whole frame is present).
pub(crate) fn received_crc(input: &[u8], len: usize) -> u32 {
    u32::from_be_bytes([
        input[8 + len],
        input[9 + len],
        input[10 + len],
        input[11 + len],
    ])
}

/// Decode an IMEI login (2-byte length, ASCII digits) at the start of `input`.
pub(crate) fn decode_login(
    input: &[u8],
    trace: Option<&mut Vec<Span>>,
) -> Result<Status<Imei>, DecodeError> {
    if input.len() < 2 {
        return Ok(Status::Partial {
            needed: 2 - input.len(),
        });
    }
    let len = usize::from(u16::from_be_bytes([input[0], input[1]]));
    if len == 0 || len > MAX_IMEI_LEN {
        return Err(DecodeError::new(
            0,
            Field::ImeiLength,
            ErrorKind::InvalidImeiLength { length: len },
        ));
    }
    if input.len() < 2 + len {
        return Ok(Status::Partial {
            needed: 2 + len - input.len(),
        });
    }
    let mut r = Reader::traced(&input[..2 + len], 0, trace);
    let imei = read_imei(&mut r)?;
    Ok(Status::Complete(imei, 2 + len))
}

/// A decoded data frame: its content, CRC, and the problems lenient decoding tolerated.
pub(crate) struct DataFrame {
    pub(crate) content: Content,
    pub(crate) crc: CrcCheck,
    pub(crate) warnings: Vec<Warning>,
}

/// Decode a data frame at the start of `input`. `layout` overrides its header (lenient recovery
/// of frames whose length field is wrong or whose CRC field is cut short).
pub(crate) fn decode_data_frame(
    input: &[u8],
    opts: &DecodeOptions,
    layout: Layout,
    trace: Option<&mut Vec<Span>>,
) -> Result<Status<DataFrame>, DecodeError> {
    let (len, total) = match read_header(input, opts.max_frame_len, layout)? {
        Status::Complete(len, total) => (len, total),
        Status::Partial { needed } => return Ok(Status::Partial { needed }),
    };
    let mut warnings = Vec::new();
    let declared = declared_len(input);
    if len != declared {
        warnings.push(Warning::from_error(&DecodeError::new(
            4,
            Field::DataFieldLength,
            ErrorKind::LengthMismatch {
                declared,
                actual: len,
            },
        )));
    }
    let mut r = Reader::traced(input, 0, trace);
    r.take(4, Field::Preamble)?;
    r.take(4, Field::DataFieldLength)?;
    let data = &input[8..8 + len];
    let computed = crate::crc::crc16(data);
    let received = if layout.short_crc {
        warnings.push(Warning::from_error(&DecodeError::new(
            8 + len,
            Field::Crc,
            ErrorKind::ShortCrc { length: 2 },
        )));
        u32::from(u16::from_be_bytes([input[8 + len], input[9 + len]]))
    } else {
        received_crc(input, len)
    };
    if u32::from(computed) != received {
        tolerate(
            opts.lenient,
            &mut warnings,
            DecodeError::new(
                8 + len,
                Field::Crc,
                ErrorKind::CrcMismatch { computed, received },
            ),
        )?;
    }
    let content = {
        let mut body = r.sub(len, Field::DataField)?;
        let content = read_data_field(&mut body, opts, &mut warnings)?;
        if !body.is_empty() {
            tolerate(
                opts.lenient,
                &mut warnings,
                body.error(
                    Field::DataField,
                    ErrorKind::TrailingBytes { count: body.left() },
                ),
            )?;
            let (at, n) = (body.offset(), body.left());
            body.mark(at, n, Field::TrailingBytes);
        }
        content
    };
    r.take(layout.crc_len(), Field::Crc)?;
    let frame = DataFrame {
        content,
        crc: CrcCheck { received, computed },
        warnings,
    };
    Ok(Status::Complete(frame, total))
}

/// Wrap a data field (codec id … Number of Data 2) in a TCP frame: preamble, length, CRC.
pub fn wrap_frame(data_field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data_field.len() + FRAME_OVERHEAD);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(data_field.len() as u32).to_be_bytes());
    out.extend_from_slice(data_field);
    out.extend_from_slice(&u32::from(crate::crc::crc16(data_field)).to_be_bytes());
    out
}
