//! TCP framing: the IMEI login, the `0xFF` keep-alive, and data frames
//! `00000000 | data field length (4) | data field | CRC-16 (4)`.
//!
//! The data field runs from the codec id to "Number of Data 2"; its CRC-16/IBM travels in the low
//! two bytes of the 4-byte trailer. Detection follows what servers in the field do: a lone `0xFF`
//! is a keep-alive, a non-zero first u16 is an IMEI login, four zero bytes start a data frame.

use alloc::vec::Vec;

use crate::avl::{read_avl_data, tolerate, unknown_codec, DecodeOptions};
use crate::codec::Codec;
use crate::command::read_command_body;
use crate::error::{DecodeError, ErrorKind, Warning};
use crate::imei::{read_imei, MAX_IMEI_LEN};
use crate::packet::{Content, CrcCheck, Packet, Transport};
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

/// The keep-alive byte devices may send between frames.
pub const KEEP_ALIVE: u8 = 0xFF;

/// Preamble, length and CRC around the data field.
pub const FRAME_OVERHEAD: usize = 12;

/// Decode one TCP unit at the start of `input`: keep-alive, IMEI login or data frame.
///
/// ```
/// use fleetview::{decode_frame, DecodeOptions, Status};
/// let hex = "000F333536333037303432343431303133";
/// let bytes = fleetview::hex::decode(hex).unwrap();
/// let Status::Complete(packet, used) = decode_frame(&bytes, &DecodeOptions::default()).unwrap() else {
///     panic!("partial")
/// };
/// assert_eq!((packet.kind(), used), ("imei", 17));
/// assert_eq!(packet.ack(), Some(vec![0x01]));
/// ```
pub fn decode_frame(input: &[u8], opts: &DecodeOptions) -> Result<Status<Packet>, DecodeError> {
    match input {
        [] => Ok(Status::Partial { needed: 1 }),
        [KEEP_ALIVE, ..] => Ok(Status::Complete(keep_alive(0), 1)),
        [_] => Ok(Status::Partial { needed: 1 }),
        [0, 0, ..] => decode_data_frame(input, opts, None, None),
        _ => decode_login(input, None),
    }
}

pub(crate) fn keep_alive(offset: usize) -> Packet {
    Packet {
        offset,
        len: 1,
        transport: Transport::Tcp,
        content: Content::KeepAlive,
        crc: None,
        udp: None,
        warnings: Vec::new(),
    }
}

/// Decode an IMEI login (2-byte length, ASCII digits) at the start of `input`.
pub fn decode_login(
    input: &[u8],
    trace: Option<&mut Vec<Span>>,
) -> Result<Status<Packet>, DecodeError> {
    if input.len() < 2 {
        return Ok(Status::Partial {
            needed: 2 - input.len(),
        });
    }
    let len = usize::from(u16::from_be_bytes([input[0], input[1]]));
    if len == 0 || len > MAX_IMEI_LEN {
        return Err(DecodeError::new(
            0,
            "imei length",
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
    let packet = Packet {
        offset: 0,
        len: 2 + len,
        transport: Transport::Tcp,
        content: Content::Imei(imei),
        crc: None,
        udp: None,
        warnings: Vec::new(),
    };
    Ok(Status::Complete(packet, 2 + len))
}

/// Decode a data frame at the start of `input`. `force_len` replaces the declared data field
/// length (lenient recovery of frames whose length field is wrong).
pub(crate) fn decode_data_frame(
    input: &[u8],
    opts: &DecodeOptions,
    force_len: Option<usize>,
    trace: Option<&mut Vec<Span>>,
) -> Result<Status<Packet>, DecodeError> {
    if input.len() < 8 {
        return Ok(Status::Partial {
            needed: 8 - input.len(),
        });
    }
    let mut r = Reader::traced(input, 0, trace);
    let preamble = r.u32("preamble")?;
    if preamble != 0 {
        return Err(DecodeError::new(
            0,
            "preamble",
            ErrorKind::BadPreamble { found: preamble },
        ));
    }
    let declared = r.u32("data field length")? as usize;
    let len = force_len.unwrap_or(declared);
    let mut warnings = Vec::new();
    if len != declared {
        warnings.push(Warning::from_error(&DecodeError::new(
            4,
            "data field length",
            ErrorKind::LengthMismatch {
                declared,
                actual: len,
            },
        )));
    }
    if len > opts.max_frame_len {
        return Err(DecodeError::new(
            4,
            "data field length",
            ErrorKind::FrameTooLarge {
                length: len,
                max: opts.max_frame_len,
            },
        ));
    }
    // Codec id, one count, the other count: nothing valid is shorter.
    if len < 3 {
        return Err(DecodeError::new(
            4,
            "data field length",
            ErrorKind::LengthTooSmall {
                length: len,
                min: 3,
            },
        ));
    }
    let total = len + FRAME_OVERHEAD;
    if input.len() < total {
        return Ok(Status::Partial {
            needed: total - input.len(),
        });
    }
    let data = &input[8..8 + len];
    let computed = crate::crc::crc16(data);
    let received = u32::from_be_bytes([
        input[8 + len],
        input[9 + len],
        input[10 + len],
        input[11 + len],
    ]);
    if u32::from(computed) != received {
        tolerate(
            opts.lenient,
            &mut warnings,
            DecodeError::new(
                8 + len,
                "crc",
                ErrorKind::CrcMismatch { computed, received },
            ),
        )?;
    }
    let content = {
        let mut body = r.sub(len, "data field")?;
        let content = read_data_field(&mut body, opts, &mut warnings)?;
        if !body.is_empty() {
            tolerate(
                opts.lenient,
                &mut warnings,
                body.error(
                    "data field",
                    ErrorKind::TrailingBytes { count: body.left() },
                ),
            )?;
            let (at, n) = (body.offset(), body.left());
            body.mark(at, n, "trailing bytes");
        }
        content
    };
    r.take(4, "crc")?;
    let packet = Packet {
        offset: 0,
        len: total,
        transport: Transport::Tcp,
        content,
        crc: Some(CrcCheck { received, computed }),
        udp: None,
        warnings,
    };
    Ok(Status::Complete(packet, total))
}

/// Read a data field or UDP tail: any codec, AVL data or command messages.
pub(crate) fn read_data_field(
    r: &mut Reader<'_, '_>,
    opts: &DecodeOptions,
    warnings: &mut Vec<Warning>,
) -> Result<Content, DecodeError> {
    let at = r.offset();
    let id = *r.rest().first().ok_or_else(|| {
        r.error(
            "codec id",
            ErrorKind::UnexpectedEnd {
                needed: 1,
                available: 0,
            },
        )
    })?;
    match Codec::from_id(id) {
        Some(c) if c.is_command() => {
            r.u8("codec id")?;
            Ok(Content::Command(read_command_body(r, c, opts, warnings)?))
        }
        Some(_) => Ok(Content::Avl(read_avl_data(r, opts, warnings)?)),
        None => Err(unknown_codec(id, at)),
    }
}
