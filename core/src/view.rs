//! Borrowed, zero-copy access to AVL records (Codec 8, 8 Extended and 16).
//!
//! [`AvlDataView::parse`] validates a whole data array in one pass without allocating, then
//! [`AvlDataView::records`] hands out [`RecordView`]s that read their fields from the caller's
//! buffer on access. Use it where records are looked at once and thrown away (filtering, counting,
//! forwarding a few values); the owned [`crate::decode`] is simpler when records are kept.
//!
//! Views are always strict: input that the owned decoder rejects in strict mode is rejected here
//! with the same [`DecodeError`] (kind, field and offset), and input it accepts gives the same
//! records (see [`RecordView::to_record`]). Codec 7 (GH3000) records are bit-masked and only the
//! owned decoder reads them; command codecs carry messages, not records. Both are rejected with
//! [`crate::ErrorKind::UnexpectedCodec`].
//!
//! ```
//! use fleetview::view::{FrameView, IoValueRef};
//! use fleetview::Status;
//! let hex = "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF";
//! let bytes = fleetview::hex::decode(hex).unwrap();
//! let Status::Complete(frame, used) = FrameView::parse(&bytes).unwrap() else { panic!("partial") };
//! assert_eq!(used, bytes.len());
//! let record = frame.data().records().next().unwrap();
//! assert_eq!(record.timestamp_ms(), 1_560_161_086_000);
//! assert!(record.io().any(|(id, v)| id == 66 && v == IoValueRef::U16(0x5E0F)));
//! ```

use alloc::vec::Vec;

use crate::avl::{AvlRecord, GenerationType, GpsElement, IoElement, IoValue, Priority};
use crate::codec::Codec;
use crate::data::{read_avl_data, AvlData};
use crate::error::{DecodeError, ErrorKind};
use crate::field::Field;
use crate::frame::{read_header, received_crc, Layout as FrameLayout, Status};
use crate::layout::{
    gps_of, step_validated, take_var, timestamp_of, validate_records, Layout, RecordHead, HEAD_LEN,
};
use crate::options::DecodeOptions;
use crate::reader::Reader;

/// A validated AVL data array of Codec 8, 8 Extended or 16, borrowed from the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvlDataView<'a> {
    codec: Codec,
    count: u8,
    /// The records, back to back.
    records: &'a [u8],
    /// Offset of the first record in the caller's input.
    offset: usize,
}

impl<'a> AvlDataView<'a> {
    /// Validate a data array (codec id, Number of Data 1, records, Number of Data 2) that fills
    /// `data` exactly, as [`crate::decode_bare`] does in strict mode; error offsets count from
    /// the start of `data`.
    pub fn parse(data: &'a [u8]) -> Result<Self, DecodeError> {
        Self::parse_at(data, 0, Field::Data)
    }

    /// `base`: offset of `data` in the caller's input; `trailing`: the field named when bytes
    /// are left after the array.
    fn parse_at(data: &'a [u8], base: usize, trailing: Field) -> Result<Self, DecodeError> {
        match Self::validate(data, base) {
            Some(view) => Ok(view),
            None => Err(exact_error(data, base, trailing)),
        }
    }

    #[inline(always)]
    fn validate(data: &'a [u8], base: usize) -> Option<Self> {
        let (&[id, count], body) = data.split_first_chunk::<2>()?;
        let (codec, rest) = match id {
            0x08 => (Codec::Codec8, validate_records::<0x08>(count, body)?),
            0x8E => (Codec::Codec8Ext, validate_records::<0x8E>(count, body)?),
            0x10 => (Codec::Codec16, validate_records::<0x10>(count, body)?),
            _ => return None,
        };
        let records = &body[..body.len() - rest.len()];
        (rest == [count]).then_some(Self {
            codec,
            count,
            records,
            offset: base + 2,
        })
    }

    /// Codec 8, 8 Extended or 16.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Number of records (the count to acknowledge).
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether the array holds no record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The records, in wire order.
    pub fn records(&self) -> Records<'a> {
        Records {
            layout: Layout::of(self.codec),
            step: match self.codec {
                Codec::Codec8Ext => step_validated::<0x8E>,
                Codec::Codec16 => step_validated::<0x10>,
                _ => step_validated::<0x08>,
            },
            left: self.count,
            rest: self.records,
            offset: self.offset,
        }
    }

    /// Copy into owned records: the same value the owned decoder returns.
    pub fn to_avl_data(&self) -> AvlData {
        AvlData::new(self.codec, self.records().map(|r| r.to_record()).collect())
    }
}

/// The error strict owned decoding reports for `data`, which the fast validation rejected.
#[cold]
#[inline(never)]
fn exact_error(data: &[u8], base: usize, trailing: Field) -> DecodeError {
    let mut warnings = Vec::new();
    let mut r = Reader::new(data, base);
    let opts = DecodeOptions::default();
    let codec_at = r.offset();
    match read_avl_data(&mut r, &opts, &mut warnings) {
        Err(e) => e,
        Ok(d) if d.codec == Codec::Codec7 => DecodeError::new(
            codec_at,
            Field::CodecId,
            ErrorKind::UnexpectedCodec { id: d.codec.id() },
        ),
        // The only other way the fast validation fails where the owned decoder succeeds.
        Ok(_) => r.error(trailing, ErrorKind::TrailingBytes { count: r.left() }),
    }
}

/// Reads one validated record: head, IO groups, the bytes after it.
type Step = for<'b> fn(&'b [u8]) -> Option<(RecordHead<'b>, &'b [u8], &'b [u8])>;

/// Iterator over the records of an [`AvlDataView`].
#[derive(Clone, Debug)]
pub struct Records<'a> {
    layout: Layout,
    /// Reads one validated record of the codec (monomorphised per codec).
    step: Step,
    left: u8,
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = RecordView<'a>;

    #[inline]
    fn next(&mut self) -> Option<RecordView<'a>> {
        self.left = self.left.checked_sub(1)?;
        // Validated by AvlDataView::parse: the reads below cannot fail.
        let (head, io, after) = (self.step)(self.rest)?;
        let record = RecordView {
            layout: self.layout,
            head: head.head,
            event_id: head.event_id,
            generation_type: head.generation_type,
            total: head.total,
            io,
            offset: self.offset,
        };
        self.offset += self.rest.len() - after.len();
        self.rest = after;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.left);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Records<'_> {}

impl core::iter::FusedIterator for Records<'_> {}

/// One validated record, borrowed. Fields are read from the buffer on access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    layout: Layout,
    head: &'a [u8; HEAD_LEN],
    event_id: u16,
    generation_type: Option<GenerationType>,
    total: u16,
    /// The IO groups, from the first group count to the end of the record.
    io: &'a [u8],
    offset: usize,
}

impl<'a> RecordView<'a> {
    /// Milliseconds since 1970-01-01 UTC.
    pub fn timestamp_ms(&self) -> u64 {
        timestamp_of(self.head)
    }

    /// 0 low, 1 high, 2 panic, 3 security.
    pub fn priority(&self) -> Priority {
        Priority(self.head[8])
    }

    /// Position and motion.
    pub fn gps(&self) -> GpsElement {
        gps_of(self.head)
    }

    /// The IO id that caused the record, 0 when it was not event-generated.
    pub fn event_id(&self) -> u16 {
        self.event_id
    }

    /// Codec 16 only: why the record was generated.
    pub fn generation_type(&self) -> Option<GenerationType> {
        self.generation_type
    }

    /// Offset of the record's first byte in the input given to the parser.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The IO elements as (id, value), in wire order (1, 2, 4, 8 bytes, then variable).
    pub fn io(&self) -> IoIter<'a> {
        IoIter {
            layout: self.layout,
            rest: self.io,
            left: self.total,
            group: 0,
            in_group: 0,
        }
    }

    /// The IO value with this id, if present.
    pub fn io_value(&self, id: u16) -> Option<IoValueRef<'a>> {
        self.io().find(|&(i, _)| i == id).map(|(_, v)| v)
    }

    /// Copy into an owned record: equal to what the owned decoder returns for it.
    pub fn to_record(&self) -> AvlRecord {
        let mut io = Vec::with_capacity(usize::from(self.total));
        io.extend(self.io().map(|(id, v)| IoElement {
            id,
            value: v.to_owned(),
        }));
        AvlRecord {
            timestamp_ms: self.timestamp_ms(),
            priority: self.priority(),
            gps: self.gps(),
            event_id: self.event_id,
            generation_type: self.generation_type,
            io,
        }
    }
}

/// An IO value borrowed from the buffer; the variant is the wire size.
pub type IoValueRef<'a> = IoValue<&'a [u8]>;

/// Iterator over the IO elements of a [`RecordView`].
#[derive(Clone, Debug)]
pub struct IoIter<'a> {
    layout: Layout,
    rest: &'a [u8],
    /// Elements left in all groups.
    left: u16,
    /// Groups entered: 1 to 4 the fixed sizes 1, 2, 4, 8; 5 the variable group; 0 before.
    group: u8,
    /// Elements left in the group entered last.
    in_group: u16,
}

impl<'a> Iterator for IoIter<'a> {
    type Item = (u16, IoValueRef<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // The record was validated: no read below falls short.
        self.left = self.left.checked_sub(1)?;
        while self.in_group == 0 {
            let wide = self.layout.wide_counts || self.group == 4;
            let (n, rest) = take_var(wide, self.rest)?;
            self.in_group = n;
            self.rest = rest;
            self.group += 1;
        }
        self.in_group -= 1;
        let (id, rest) = take_var(self.layout.wide_ids, self.rest)?;
        let (value, rest) = match self.group {
            1 => {
                let (&v, rest) = rest.split_first()?;
                (IoValueRef::U8(v), rest)
            }
            2 => {
                let (v, rest) = rest.split_first_chunk::<2>()?;
                (IoValueRef::U16(u16::from_be_bytes(*v)), rest)
            }
            3 => {
                let (v, rest) = rest.split_first_chunk::<4>()?;
                (IoValueRef::U32(u32::from_be_bytes(*v)), rest)
            }
            4 => {
                let (v, rest) = rest.split_first_chunk::<8>()?;
                (IoValueRef::U64(u64::from_be_bytes(*v)), rest)
            }
            _ => {
                let (len, rest) = take_var(true, rest)?;
                let (v, rest) = rest.split_at_checked(usize::from(len))?;
                (IoValueRef::Bytes(v), rest)
            }
        };
        self.rest = rest;
        Some((id, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.left);
        (n, Some(n))
    }

    /// Internal iteration (`fold`, `for_each`, `sum`, `count` …) walks the groups with one
    /// tight loop per value size instead of the element-by-element state machine of `next`.
    #[inline]
    fn fold<B, F>(mut self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        if self.group != 0 || self.in_group != 0 {
            // Partly consumed: finish element by element.
            let mut acc = init;
            for item in self.by_ref() {
                acc = f(acc, item);
            }
            return acc;
        }
        // One instance per codec: the widths are constants in each.
        match (
            self.layout.wide_ids,
            self.layout.wide_counts,
            self.layout.nx,
        ) {
            (false, _, _) => fold_groups::<false, B, F>(Layout::of_id(0x08), self.rest, init, f),
            (true, true, _) => fold_groups::<true, B, F>(Layout::of_id(0x8E), self.rest, init, f),
            (true, false, _) => fold_groups::<true, B, F>(Layout::of_id(0x10), self.rest, init, f),
        }
    }
}

/// The IO groups at the front of `input` (validated), folded: 1-, 2-, 4- and 8-byte values, then
/// the variable-length group. `WIDE`: 2-byte ids.
#[inline(always)]
fn fold_groups<'a, const WIDE: bool, B, F>(l: Layout, input: &'a [u8], init: B, mut f: F) -> B
where
    F: FnMut(B, (u16, IoValueRef<'a>)) -> B,
{
    let (acc, rest) = fold_fixed::<WIDE, 1, B, F>(l, input, init, &mut f, |v| IoValueRef::U8(v[0]));
    let Some(rest) = rest else { return acc };
    let (acc, rest) = fold_fixed::<WIDE, 2, B, F>(l, rest, acc, &mut f, |v| {
        IoValueRef::U16(u16::from_be_bytes(*v))
    });
    let Some(rest) = rest else { return acc };
    let (acc, rest) = fold_fixed::<WIDE, 4, B, F>(l, rest, acc, &mut f, |v| {
        IoValueRef::U32(u32::from_be_bytes(*v))
    });
    let Some(rest) = rest else { return acc };
    let (mut acc, rest) = fold_fixed::<WIDE, 8, B, F>(l, rest, acc, &mut f, |v| {
        IoValueRef::U64(u64::from_be_bytes(*v))
    });
    let Some(rest) = rest else { return acc };
    if l.nx {
        let Some((n, mut rest)) = take_var(true, rest) else {
            return acc;
        };
        for _ in 0..n {
            let Some((&[i0, i1, l0, l1], r)) = rest.split_first_chunk::<4>() else {
                break;
            };
            let Some((value, r)) = r.split_at_checked(usize::from(u16::from_be_bytes([l0, l1])))
            else {
                break;
            };
            acc = f(
                acc,
                (u16::from_be_bytes([i0, i1]), IoValueRef::Bytes(value)),
            );
            rest = r;
        }
    }
    acc
}

/// One group of `SIZE`-byte values, its count then the (id, value) pairs, folded; the bytes
/// after it (`None` if the group does not fit, which validation rules out).
#[inline(always)]
fn fold_fixed<'a, const WIDE: bool, const SIZE: usize, B, F>(
    l: Layout,
    input: &'a [u8],
    init: B,
    f: &mut F,
    value: impl Fn(&[u8; SIZE]) -> IoValueRef<'a>,
) -> (B, Option<&'a [u8]>)
where
    F: FnMut(B, (u16, IoValueRef<'a>)) -> B,
{
    let mut acc = init;
    let Some((n, rest)) = take_var(l.wide_counts, input) else {
        return (acc, None);
    };
    let id_len = if WIDE { 2 } else { 1 };
    let Some((bytes, rest)) = rest.split_at_checked(usize::from(n) * (id_len + SIZE)) else {
        return (acc, None);
    };
    for chunk in bytes.chunks_exact(id_len + SIZE) {
        let (id, v) = chunk.split_at(id_len);
        let id = if WIDE {
            u16::from_be_bytes([id[0], id[1]])
        } else {
            u16::from(id[0])
        };
        if let Ok(v) = <&[u8; SIZE]>::try_from(v) {
            acc = f(acc, (id, value(v)));
        }
    }
    (acc, Some(rest))
}

impl ExactSizeIterator for IoIter<'_> {}

impl core::iter::FusedIterator for IoIter<'_> {}

/// A validated TCP data frame carrying AVL records, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameView<'a> {
    data: AvlDataView<'a>,
    crc: u16,
}

impl<'a> FrameView<'a> {
    /// Validate the data frame at the start of `input` (preamble, length, CRC, records) with
    /// the default frame size limit ([`DecodeOptions::max_frame_len`]). Errors are those of
    /// [`crate::decode_frame`] in strict mode; incomplete input gives [`Status::Partial`].
    pub fn parse(input: &'a [u8]) -> Result<Status<Self>, DecodeError> {
        Self::parse_with_limit(input, DecodeOptions::default().max_frame_len)
    }

    /// [`FrameView::parse`] with another limit on the data field length.
    pub fn parse_with_limit(
        input: &'a [u8],
        max_frame_len: usize,
    ) -> Result<Status<Self>, DecodeError> {
        let (len, total) = match read_header(input, max_frame_len, FrameLayout::default())? {
            Status::Complete(len, total) => (len, total),
            Status::Partial { needed } => return Ok(Status::Partial { needed }),
        };
        let data = &input[8..8 + len];
        let received = received_crc(input, len);
        let computed = crate::crc::crc16(data);
        if u32::from(computed) != received {
            return Err(DecodeError::new(
                8 + len,
                Field::Crc,
                ErrorKind::CrcMismatch { computed, received },
            ));
        }
        let data = AvlDataView::parse_at(data, 8, Field::DataField)?;
        Ok(Status::Complete(
            Self {
                data,
                crc: computed,
            },
            total,
        ))
    }

    /// The AVL data array.
    pub fn data(&self) -> AvlDataView<'a> {
        self.data
    }

    /// The CRC-16 (checked).
    pub fn crc(&self) -> u16 {
        self.crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::avl_frame;
    use crate::{decode_bare, decode_frame};
    use alloc::vec;

    fn sample(codec: Codec) -> AvlData {
        let mut io = vec![
            IoElement {
                id: 239,
                value: IoValue::U8(1),
            },
            IoElement {
                id: 66,
                value: IoValue::U16(12_800),
            },
            IoElement {
                id: 16,
                value: IoValue::U32(123_456),
            },
            IoElement {
                id: 78,
                value: IoValue::U64(0x0102_0304_0506_0708),
            },
        ];
        if codec == Codec::Codec8Ext {
            io.push(IoElement {
                id: 385,
                value: IoValue::Bytes(vec![0xAB; 5]),
            });
            io.push(IoElement {
                id: 386,
                value: IoValue::Bytes(vec![]),
            });
        }
        let record = |i: u64| AvlRecord {
            timestamp_ms: 1_700_000_000_000 + i,
            priority: Priority((i % 4) as u8),
            gps: GpsElement {
                longitude: -252_800_000,
                latitude: 546_900_000,
                altitude: -12,
                angle: 359,
                satellites: 9,
                speed: 42,
            },
            event_id: 239,
            generation_type: (codec == Codec::Codec16).then_some(GenerationType(5)),
            io: io.clone(),
        };
        AvlData::new(codec, (0..3).map(record).collect())
    }

    #[test]
    fn views_equal_owned_records() {
        for codec in [Codec::Codec8, Codec::Codec8Ext, Codec::Codec16] {
            let data = sample(codec);
            let field = data.encode().unwrap();
            let view = AvlDataView::parse(&field).unwrap();
            assert_eq!(view.codec(), codec);
            assert_eq!(view.len(), 3);
            assert_eq!(view.to_avl_data(), data);
            let offsets: Vec<usize> = view.records().map(|r| r.offset()).collect();
            assert_eq!(offsets[0], 2);
            assert!(offsets.windows(2).all(|w| w[0] < w[1]));
            let r = view.records().nth(1).unwrap();
            assert_eq!(r.io_value(66), Some(IoValueRef::U16(12_800)));
            assert_eq!(r.io().len(), data.records[1].io.len());
            // Internal iteration (the group loops of `fold`) gives what `next` gives, also
            // from a partly consumed iterator.
            for r in view.records() {
                let by_next: Vec<_> = r.io().collect();
                let by_fold = r.io().fold(Vec::new(), |mut v, e| {
                    v.push(e);
                    v
                });
                assert_eq!(by_fold, by_next);
                let mut it = r.io();
                let first = it.next();
                let rest = it.fold(Vec::new(), |mut v, e| {
                    v.push(e);
                    v
                });
                assert_eq!(first.into_iter().chain(rest).collect::<Vec<_>>(), by_next);
            }

            let frame = avl_frame(&data).unwrap();
            let Status::Complete(f, used) = FrameView::parse(&frame).unwrap() else {
                panic!("partial")
            };
            assert_eq!(used, frame.len());
            assert_eq!(f.data().to_avl_data(), data);
            assert_eq!(f.data().records().next().unwrap().offset(), 10);
        }
    }

    /// Every prefix, and every single-byte change, gives the strict owned decoder's result.
    #[test]
    fn errors_match_the_owned_decoder() {
        let strict = DecodeOptions::default();
        for codec in [Codec::Codec8, Codec::Codec8Ext, Codec::Codec16] {
            let field = sample(codec).encode().unwrap();
            let frame = avl_frame(&sample(codec)).unwrap();
            let mut inputs: Vec<Vec<u8>> = (0..field.len()).map(|n| field[..n].to_vec()).collect();
            for i in 0..field.len() {
                for delta in [1u8, 0x80, 0xFF] {
                    let mut m = field.clone();
                    m[i] = m[i].wrapping_add(delta);
                    inputs.push(m);
                }
            }
            let mut longer = field.clone();
            longer.push(0);
            inputs.push(longer);
            for input in &inputs {
                let owned = decode_bare(input, &strict);
                match (AvlDataView::parse(input), owned) {
                    (Ok(v), Ok(p)) => assert_eq!(v.to_avl_data(), {
                        let crate::Content::Avl(d) = p.content else {
                            panic!()
                        };
                        d
                    }),
                    (Err(a), Err(b)) => assert_eq!(a, b, "{input:02x?}"),
                    (a, b) => panic!("view {a:?} owned {b:?} for {input:02x?}"),
                }
                let wrapped = crate::encode::wrap_frame(input);
                let owned = decode_frame(&wrapped, &strict);
                match (FrameView::parse(&wrapped), owned) {
                    (Ok(Status::Complete(v, n)), Ok(Status::Complete(p, m))) => {
                        assert_eq!(n, m);
                        assert_eq!(crate::Content::Avl(v.data().to_avl_data()), p.content);
                    }
                    // A command codec: a message for decode_frame, not a view.
                    (Err(a), _) if a.code() == "unexpected_codec" => assert_eq!(a.offset, 8),
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    (Err(a), Ok(Status::Complete(p, _))) => {
                        // Command codecs decode as messages, and Codec 7: not views.
                        assert_eq!(a.code(), "unexpected_codec", "{p:?}");
                    }
                    (a, b) => panic!("view {a:?} owned {b:?} for {input:02x?}"),
                }
            }
            // From 2 bytes on: below that, decode_frame cannot tell a login from a frame yet.
            for n in 2..frame.len() {
                match FrameView::parse(&frame[..n]).unwrap() {
                    Status::Partial { needed } => {
                        assert_eq!(
                            decode_frame(&frame[..n], &strict),
                            Ok(Status::Partial { needed })
                        );
                    }
                    Status::Complete(..) => panic!("complete at {n}"),
                }
            }
            let mut bad = frame.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(
                FrameView::parse(&bad).unwrap_err(),
                decode_frame(&bad, &strict).unwrap_err()
            );
        }
    }

    #[test]
    fn codec7_and_commands_are_not_views() {
        let field = [0x07, 0x00, 0x00];
        let e = AvlDataView::parse(&field).unwrap_err();
        assert_eq!((e.code(), e.offset), ("unexpected_codec", 0));
        let frame =
            crate::encode::command_frame(&crate::CommandPacket::codec12("getinfo")).unwrap();
        let e = FrameView::parse(&frame).unwrap_err();
        assert_eq!((e.code(), e.offset), ("unexpected_codec", 8));
    }
}
