//! The UDP channel: every datagram carries its own IMEI and one AVL data array, without CRC.
//!
//! ```text
//! length (2) | packet id (2) | packet type (1) | AVL packet id (1) | IMEI length (2) | IMEI | data array
//! ```
//!
//! The server answers each datagram with `0005 | packet id | 01 | AVL packet id | accepted (1)`.
//! Both ids must be echoed: a device that gets a wrong AVL packet id sends the data again.

use alloc::vec::Vec;

use crate::codec::Codec;
use crate::data::{read_data_field, AvlData, Content};
use crate::error::{DecodeError, EncodeError, ErrorKind, Warning};
use crate::field::Field;
use crate::imei::{read_imei, Imei, MAX_IMEI_LEN};
use crate::options::{tolerate, DecodeOptions};
use crate::reader::{Reader, Span};

/// The UDP channel and AVL packet headers of a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpHeader {
    /// Bytes after the length field, as declared.
    pub length: u16,
    /// Channel packet id (devices commonly use 0xCAFE); echoed in the ack.
    pub packet_id: u16,
    /// 0x01 on every device seen; 0x00 asks for a separate channel ack as well.
    pub packet_type: u8,
    /// AVL packet id; echoed in the ack.
    pub avl_packet_id: u8,
    /// The sending device.
    pub imei: Imei,
}

impl UdpHeader {
    /// Offset of the data field (the codec id) in the datagram: after the 8 header bytes and
    /// the IMEI digits.
    pub fn data_offset(&self) -> usize {
        8 + self.imei.as_str().len()
    }

    /// The 7-byte answer to this datagram for `accepted` records.
    pub fn ack(&self, accepted: u8) -> [u8; 7] {
        ack(self.packet_id, self.avl_packet_id, accepted)
    }
}

/// The 7-byte AVL ack: `0005 | packet id | 01 | AVL packet id | accepted`.
///
/// ```
/// assert_eq!(fleetview::udp::ack(0xCAFE, 0x05, 1), [0x00, 0x05, 0xCA, 0xFE, 0x01, 0x05, 0x01]);
/// ```
pub fn ack(packet_id: u16, avl_packet_id: u8, accepted: u8) -> [u8; 7] {
    let id = packet_id.to_be_bytes();
    [0x00, 0x05, id[0], id[1], 0x01, avl_packet_id, accepted]
}

/// The separate 5-byte channel ack (`0003 | packet id | 02`) that packet type 0x00 asks for in
/// the 2018 protocol text. Devices in the field send type 0x01 and need only [`ack`].
pub fn channel_ack(packet_id: u16) -> [u8; 5] {
    let id = packet_id.to_be_bytes();
    [0x00, 0x03, id[0], id[1], 0x02]
}

/// A decoded datagram: its headers, what it carries, and the problems lenient decoding
/// tolerated. [`crate::Packet`] converts from it (`Packet::from`).
#[derive(Clone, Debug, PartialEq)]
pub struct Datagram {
    /// The channel and AVL packet headers, with the IMEI.
    pub header: UdpHeader,
    /// AVL data or command messages.
    pub content: Content,
    /// Bytes the datagram took.
    pub len: usize,
    /// Tolerated problems (lenient mode) and remarks.
    pub warnings: Vec<Warning>,
}

impl Datagram {
    /// The AVL records (empty for command messages).
    pub fn records(&self) -> &[crate::avl::AvlRecord] {
        match &self.content {
            Content::Avl(d) => &d.records,
            _ => &[],
        }
    }

    /// The AVL data, or the error strict AVL-only decoding gives for command messages
    /// ([`ErrorKind::UnexpectedCodec`] at the codec id).
    pub fn avl_data(&self) -> Result<&AvlData, DecodeError> {
        match &self.content {
            Content::Avl(d) => Ok(d),
            Content::Command(c) => Err(DecodeError::new(
                self.header.data_offset(),
                Field::CodecId,
                ErrorKind::UnexpectedCodec { id: c.codec.id() },
            )),
            // A datagram carries a data field: never a login or a keep-alive.
            Content::Imei(_) | Content::KeepAlive => Err(DecodeError::new(
                self.header.data_offset(),
                Field::CodecId,
                ErrorKind::UnrecognizedInput,
            )),
        }
    }

    /// The sending device.
    pub fn imei(&self) -> Option<&Imei> {
        Some(&self.header.imei)
    }

    /// The 7-byte ack for all records; `None` for command messages, which are never acked.
    pub fn ack(&self) -> Option<[u8; 7]> {
        match &self.content {
            Content::Avl(d) => Some(self.header.ack(d.records.len().min(255) as u8)),
            _ => None,
        }
    }
}

/// Smallest datagram: header (8) + IMEI (1 digit) + codec, count, count.
const MIN_DATAGRAM: usize = 8 + 1 + 3;

/// Decode one whole datagram.
///
/// ```
/// use fleetview::{udp, DecodeOptions};
/// let bytes = fleetview::hex::decode("003DCAFE0105000F33353230393330383634303336353508010000016B4F815B30010000000000000000000000000000000103021503010101425DBC000001").unwrap();
/// let datagram = udp::decode_datagram(&bytes, &DecodeOptions::default()).unwrap();
/// assert_eq!(datagram.records().len(), 1);
/// assert_eq!(datagram.header.imei.as_str(), "352093086403655");
/// assert_eq!(datagram.ack().unwrap(), [0x00, 0x05, 0xCA, 0xFE, 0x01, 0x05, 0x01]);
/// ```
pub fn decode_datagram(input: &[u8], opts: &DecodeOptions) -> Result<Datagram, DecodeError> {
    decode_datagram_traced(input, opts, None)
}

pub(crate) fn decode_datagram_traced(
    input: &[u8],
    opts: &DecodeOptions,
    trace: Option<&mut Vec<Span>>,
) -> Result<Datagram, DecodeError> {
    if input.is_empty() {
        return Err(DecodeError::at(0, ErrorKind::EmptyInput));
    }
    if input.len() > opts.max_frame_len {
        return Err(DecodeError::new(
            0,
            Field::Length,
            ErrorKind::FrameTooLarge {
                length: input.len(),
                max: opts.max_frame_len,
            },
        ));
    }
    let mut warnings = Vec::new();
    let mut r = Reader::traced(input, 0, trace);
    let length = r.u16(Field::Length)?;
    let actual = input.len() - 2;
    let mut body_len = usize::from(length);
    if body_len != actual {
        tolerate(
            opts.lenient,
            &mut warnings,
            DecodeError::new(
                0,
                Field::Length,
                ErrorKind::LengthMismatch {
                    declared: body_len,
                    actual,
                },
            ),
        )?;
        body_len = actual;
    }
    if body_len + 2 < MIN_DATAGRAM {
        return Err(DecodeError::new(
            0,
            Field::Length,
            ErrorKind::LengthTooSmall {
                length: body_len,
                min: MIN_DATAGRAM - 2,
            },
        ));
    }
    let packet_id = r.u16(Field::PacketId)?;
    let at = r.offset();
    let packet_type = r.u8(Field::PacketType)?;
    if packet_type > 1 {
        tolerate(
            opts.lenient,
            &mut warnings,
            DecodeError::new(
                at,
                Field::PacketType,
                ErrorKind::InvalidPacketType { value: packet_type },
            ),
        )?;
    }
    let avl_packet_id = r.u8(Field::AvlPacketId)?;
    let imei = read_imei(&mut r)?;
    let content = read_data_field(&mut r, opts, &mut warnings)?;
    if !r.is_empty() {
        tolerate(
            opts.lenient,
            &mut warnings,
            r.error(Field::Data, ErrorKind::TrailingBytes { count: r.left() }),
        )?;
        let (at, n) = (r.offset(), r.left());
        r.mark(at, n, Field::TrailingBytes);
    }
    Ok(Datagram {
        header: UdpHeader {
            length,
            packet_id,
            packet_type,
            avl_packet_id,
            imei,
        },
        content,
        len: input.len(),
        warnings,
    })
}

/// Whether `input` is shaped like a datagram: its length field counts the rest and an IMEI
/// length follows the headers. Used by auto-detection. `any_length` (lenient decoding) accepts
/// a length field that disagrees with the size when the IMEI digits are followed by a codec id.
pub(crate) fn looks_like_datagram(input: &[u8], any_length: bool) -> bool {
    if input.len() < MIN_DATAGRAM {
        return false;
    }
    let length = usize::from(u16::from_be_bytes([input[0], input[1]]));
    let imei_len = usize::from(u16::from_be_bytes([input[6], input[7]]));
    let shaped = (1..=MAX_IMEI_LEN).contains(&imei_len)
        && input.len() > 8 + imei_len
        && input[8..8 + imei_len].iter().all(u8::is_ascii_digit);
    shaped
        && (length == input.len() - 2
            || any_length && Codec::from_id(input[8 + imei_len]).is_some())
}

/// A UDP channel datagram. The length field is computed; `header.length` is ignored.
pub fn encode_datagram(header: &UdpHeader, content: &Content) -> Result<Vec<u8>, EncodeError> {
    let imei = header.imei.as_str().as_bytes();
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&header.packet_id.to_be_bytes());
    out.push(header.packet_type);
    out.push(header.avl_packet_id);
    out.extend_from_slice(&(imei.len() as u16).to_be_bytes());
    out.extend_from_slice(imei);
    match content {
        Content::Avl(d) => d.encode_into(&mut out)?,
        Content::Command(c) => c.encode_body(&mut out)?,
        _ => {
            return Err(EncodeError::NotSupported {
                what: "a login or keep-alive in a datagram",
                codec: "",
            })
        }
    }
    let len = out.len() - 2;
    let len16 = u16::try_from(len).map_err(|_| EncodeError::OutOfRange {
        field: "datagram length",
        value: len as u64,
        max: u16::MAX.into(),
    })?;
    out[..2].copy_from_slice(&len16.to_be_bytes());
    Ok(out)
}

/// A UDP datagram carrying AVL records, as a device sends it.
pub fn avl_datagram(
    imei: &Imei,
    packet_id: u16,
    avl_packet_id: u8,
    data: &AvlData,
) -> Result<Vec<u8>, EncodeError> {
    let header = UdpHeader {
        length: 0,
        packet_id,
        packet_type: 1,
        avl_packet_id,
        imei: imei.clone(),
    };
    encode_datagram(&header, &Content::Avl(data.clone()))
}
