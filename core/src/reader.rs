//! A bounds-checked cursor over a byte slice that knows its absolute offset.
//!
//! Every read names the protocol field it reads, so that an error says where and what, and so
//! that an optional trace can label every byte of a packet (the playground's annotated hex view).

use alloc::vec::Vec;

use crate::error::{DecodeError, ErrorKind};
use crate::field::Field;

/// One labelled byte range of a decoded packet, produced by [`crate::annotate`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Span {
    /// Offset from the start of the input.
    pub offset: usize,
    /// Number of bytes.
    pub len: usize,
    /// The protocol field, e.g. [`Field::Latitude`].
    pub field: Field,
    /// Index of the record or message the field belongs to, if any.
    pub record: Option<u32>,
    /// The IO element id the field belongs to, if any.
    pub io_id: Option<u16>,
    /// Index of the beacon or sensor of a composite IO value the field belongs to, if any.
    pub item: Option<u16>,
}

pub(crate) struct Reader<'a, 't> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the caller's input.
    base: usize,
    trace: Option<&'t mut Vec<Span>>,
    pub(crate) record: Option<u32>,
    pub(crate) io_id: Option<u16>,
}

impl<'a, 't> Reader<'a, 't> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Self {
            buf,
            pos: 0,
            base,
            trace: None,
            record: None,
            io_id: None,
        }
    }

    pub(crate) fn traced(buf: &'a [u8], base: usize, trace: Option<&'t mut Vec<Span>>) -> Self {
        Self {
            trace,
            ..Self::new(buf, base)
        }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Whether spans are being recorded ([`crate::annotate`]).
    pub(crate) fn is_traced(&self) -> bool {
        self.trace.is_some()
    }

    /// Move past `n` bytes read by other means (at most [`Reader::left`]).
    pub(crate) fn skip(&mut self, n: usize) {
        self.pos += n.min(self.left());
    }

    pub(crate) fn error(&self, field: Field, kind: ErrorKind) -> DecodeError {
        DecodeError::new(self.offset(), field, kind)
    }

    /// Record a span without reading (for fields decoded by hand).
    pub(crate) fn mark(&mut self, offset: usize, len: usize, field: Field) {
        if let Some(trace) = self.trace.as_deref_mut() {
            trace.push(Span {
                offset,
                len,
                field,
                record: self.record,
                io_id: self.io_id,
                item: None,
            });
        }
    }

    /// Record the traced pieces of a composite value that starts at `value_at`, and label the
    /// bytes after the last piece (after a problem) as the IO value.
    pub(crate) fn mark_pieces(
        &mut self,
        value_at: usize,
        len: usize,
        pieces: &[crate::composite::Piece],
    ) {
        use crate::composite::PieceKind;
        let Some(trace) = self.trace.as_deref_mut() else {
            return;
        };
        let mut end = 0;
        for p in pieces {
            trace.push(Span {
                offset: value_at + p.offset,
                len: p.len,
                field: match p.kind {
                    PieceKind::DataPart => Field::DataPart,
                    PieceKind::Beacon => Field::Beacon,
                    PieceKind::SensorListHeader => Field::SensorListHeader,
                    PieceKind::SensorLength => Field::SensorLength,
                    PieceKind::SensorParameter => Field::SensorParameter,
                },
                record: self.record,
                io_id: self.io_id,
                item: p.item,
            });
            end = end.max(p.offset + p.len);
        }
        if end < len {
            trace.push(Span {
                offset: value_at + end,
                len: len - end,
                field: Field::IoValue,
                record: self.record,
                io_id: self.io_id,
                item: None,
            });
        }
    }

    pub(crate) fn take(&mut self, len: usize, field: Field) -> Result<&'a [u8], DecodeError> {
        let left = self.left();
        if len > left {
            return Err(self.error(
                field,
                ErrorKind::UnexpectedEnd {
                    needed: len,
                    available: left,
                },
            ));
        }
        let start = self.pos;
        self.pos += len;
        if self.trace.is_some() {
            self.mark(self.base + start, len, field);
        }
        Ok(&self.buf[start..self.pos])
    }

    pub(crate) fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: Field) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: Field) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: Field) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: Field) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A sub-reader over the next `len` bytes, sharing this reader's trace.
    pub(crate) fn sub<'s>(
        &'s mut self,
        len: usize,
        field: Field,
    ) -> Result<Reader<'a, 's>, DecodeError> {
        let left = self.left();
        if len > left {
            return Err(self.error(
                field,
                ErrorKind::UnexpectedEnd {
                    needed: len,
                    available: left,
                },
            ));
        }
        let start = self.pos;
        self.pos += len;
        Ok(Reader {
            buf: &self.buf[start..start + len],
            pos: 0,
            base: self.base + start,
            trace: self.trace.as_deref_mut(),
            record: self.record,
            io_id: self.io_id,
        })
    }
}

/// Big-endian integer from up to 8 bytes.
pub(crate) fn be_uint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}
