//! The data field: what follows the TCP frame header or the UDP headers. Its first byte, the
//! codec id, decides what it holds: an AVL data array (Codec 7, 8, 8E, 16) or command messages
//! (Codec 12, 13, 14, 15). This module dispatches to the codecs.

use alloc::vec::Vec;

use crate::avl::AvlRecord;
use crate::codec::{Codec, CODEC_4_SMS};
use crate::codec7::Codec7Fields;
use crate::command::{read_command_body, CommandPacket};
use crate::error::{DecodeError, EncodeError, ErrorKind, Warning};
use crate::field::Field;
use crate::imei::Imei;
use crate::options::{tolerate, DecodeOptions};
use crate::reader::Reader;

/// The data array of a data codec: codec id, "Number of Data 1", the records, "Number of Data 2".
/// It is the TCP frame's data field and the tail of a UDP datagram.
#[derive(Clone, Debug, PartialEq)]
pub struct AvlData {
    /// Codec 7, 8, 8E or 16.
    pub codec: Codec,
    /// The records, in wire order (devices may send them newest first).
    pub records: Vec<AvlRecord>,
    /// Codec 7 only: the masks and GH3000 extras (cell, signal, operator) of each record, in the
    /// order of `records`. Empty for the other codecs; when shorter than `records` (records built
    /// by hand), the missing ones are derived from the record when encoding.
    pub codec7: Vec<Codec7Fields>,
}

/// What a packet carries.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// The IMEI login that opens a TCP session.
    Imei(Imei),
    /// The `0xFF` keep-alive byte.
    KeepAlive,
    /// AVL records (Codec 7, 8, 8E, 16).
    Avl(AvlData),
    /// Command messages (Codec 12, 13, 14, 15).
    Command(CommandPacket),
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
        if let Some((codec, records, used)) = crate::codec8::fast_avl_data(r.rest()) {
            r.skip(used);
            return Ok(AvlData::new(codec, records));
        }
    }
    let at = r.offset();
    let id = r.u8(Field::CodecId)?;
    let codec = data_codec(id, at)?;
    let count = r.u8(Field::NumberOfData1)?;
    let capacity = usize::from(count).min(r.left() / min_record_len(codec));
    let mut records = Vec::with_capacity(capacity);
    let mut codec7 = Vec::new();
    for i in 0..count {
        r.record = Some(u32::from(i));
        let record = match codec {
            Codec::Codec7 => {
                let (record, fields) = crate::codec7::read_record(r)?;
                codec7.push(fields);
                record
            }
            _ => crate::codec8::read_record(r, codec, opts, warnings)?,
        };
        records.push(record);
    }
    r.record = None;
    let trailer_at = r.offset();
    let trailer = r.u8(Field::NumberOfData2)?;
    if trailer != count {
        tolerate(
            opts.lenient,
            warnings,
            DecodeError::new(
                trailer_at,
                Field::NumberOfData2,
                ErrorKind::CountMismatch {
                    header: count,
                    trailer,
                },
            ),
        )?;
    }
    Ok(AvlData {
        codec,
        records,
        codec7,
    })
}

/// The codec for a data array's first byte: a data codec, or a specific error.
pub(crate) fn data_codec(id: u8, at: usize) -> Result<Codec, DecodeError> {
    match Codec::from_id(id) {
        Some(c) if !c.is_command() => Ok(c),
        Some(_) => Err(DecodeError::new(
            at,
            Field::CodecId,
            ErrorKind::UnexpectedCodec { id },
        )),
        None => Err(unknown_codec(id, at)),
    }
}

pub(crate) fn unknown_codec(id: u8, at: usize) -> DecodeError {
    let kind = if id == CODEC_4_SMS {
        ErrorKind::UnsupportedCodec { id }
    } else {
        ErrorKind::UnknownCodec { id }
    };
    DecodeError::new(at, Field::CodecId, kind)
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
            Field::CodecId,
            ErrorKind::UnexpectedEnd {
                needed: 1,
                available: 0,
            },
        )
    })?;
    match Codec::from_id(id) {
        Some(c) if c.is_command() => {
            r.u8(Field::CodecId)?;
            Ok(Content::Command(read_command_body(r, c, opts, warnings)?))
        }
        Some(_) => Ok(Content::Avl(read_avl_data(r, opts, warnings)?)),
        None => Err(unknown_codec(id, at)),
    }
}

impl AvlData {
    /// Records of a codec (without Codec 7 extras: they are derived from the records).
    pub fn new(codec: Codec, records: Vec<AvlRecord>) -> Self {
        Self {
            codec,
            records,
            codec7: Vec::new(),
        }
    }

    /// Append a data array holding `record` alone (Codec 7 extras derived from the record).
    pub(crate) fn encode_one(
        codec: Codec,
        record: &AvlRecord,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        check_data_codec(codec)?;
        out.push(codec.id());
        out.push(1);
        write_record(codec, record, None, out)?;
        out.push(1);
        Ok(())
    }

    /// Encode as an AVL data array (codec id, N1, records, N2): the TCP data field, the UDP tail.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(3 + self.records.len() * 64);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Append the encoded data array to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        check_data_codec(self.codec)?;
        let count = u8::try_from(self.records.len()).map_err(|_| EncodeError::OutOfRange {
            field: "record count",
            value: self.records.len() as u64,
            max: 255,
        })?;
        out.push(self.codec.id());
        out.push(count);
        for (i, record) in self.records.iter().enumerate() {
            write_record(self.codec, record, self.codec7.get(i), out)?;
        }
        out.push(count);
        Ok(())
    }
}

fn check_data_codec(codec: Codec) -> Result<(), EncodeError> {
    if codec.is_command() {
        return Err(EncodeError::NotSupported {
            what: "AVL records",
            codec: codec.name(),
        });
    }
    Ok(())
}

fn write_record(
    codec: Codec,
    record: &AvlRecord,
    codec7: Option<&Codec7Fields>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    match codec {
        Codec::Codec7 => crate::codec7::write_record(record, codec7, out),
        _ => crate::codec8::write_record(record, codec, out),
    }
}
