//! The record layout of Codec 8, 8 Extended and 16 and the walk over it that every decoder of
//! these codecs shares: the owned decoder ([`crate::codec8`]), the borrowed view
//! ([`crate::view`]) and the npm package's tape read records with these functions, so that the
//! three agree on what a valid record is.
//!
//! The three codecs share the record head (timestamp, priority, GPS element) and differ in the IO
//! element:
//!
//! | | event id | generation type | counts | IO ids | NX group |
//! |---|---|---|---|---|---|
//! | 8 | 1 byte | – | 1 byte | 1 byte | – |
//! | 8E | 2 bytes | – | 2 bytes | 2 bytes | yes |
//! | 16 | 2 bytes | 1 byte | 1 byte | 2 bytes | – |

use crate::avl::{GenerationType, GpsElement};
use crate::codec::Codec;

/// Field widths of one codec's record (Codec 8, 8 Extended, 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) wide_event: bool,
    pub(crate) generation_type: bool,
    pub(crate) wide_counts: bool,
    pub(crate) wide_ids: bool,
    pub(crate) nx: bool,
}

impl Layout {
    pub(crate) const fn of(codec: Codec) -> Self {
        match codec {
            Codec::Codec8Ext => Self {
                wide_event: true,
                generation_type: false,
                wide_counts: true,
                wide_ids: true,
                nx: true,
            },
            Codec::Codec16 => Self {
                wide_event: true,
                generation_type: true,
                wide_counts: false,
                wide_ids: true,
                nx: false,
            },
            _ => Self {
                wide_event: false,
                generation_type: false,
                wide_counts: false,
                wide_ids: false,
                nx: false,
            },
        }
    }

    /// Bytes of an IO id.
    pub(crate) const fn id_len(self) -> usize {
        if self.wide_ids {
            2
        } else {
            1
        }
    }
}

/// Timestamp (8), priority (1) and the GPS element (15): the same in every codec here.
pub(crate) const HEAD_LEN: usize = 24;

/// Read a 1- or 2-byte big-endian number from the front of `input`.
#[inline(always)]
pub(crate) fn take_var(wide: bool, input: &[u8]) -> Option<(u16, &[u8])> {
    if wide {
        let (b, rest) = input.split_first_chunk::<2>()?;
        Some((u16::from_be_bytes(*b), rest))
    } else {
        let (b, rest) = input.split_first()?;
        Some((u16::from(*b), rest))
    }
}

/// The fields of a record head that need no IO walk.
#[inline(always)]
pub(crate) fn gps_of(head: &[u8; HEAD_LEN]) -> GpsElement {
    let [_, _, _, _, _, _, _, _, _, lo0, lo1, lo2, lo3, la0, la1, la2, la3, al0, al1, an0, an1, sat, sp0, sp1] =
        *head;
    GpsElement {
        longitude: i32::from_be_bytes([lo0, lo1, lo2, lo3]),
        latitude: i32::from_be_bytes([la0, la1, la2, la3]),
        altitude: i16::from_be_bytes([al0, al1]),
        angle: u16::from_be_bytes([an0, an1]),
        satellites: sat,
        speed: u16::from_be_bytes([sp0, sp1]),
    }
}

#[inline(always)]
pub(crate) fn timestamp_of(head: &[u8; HEAD_LEN]) -> u64 {
    let [t0, t1, t2, t3, t4, t5, t6, t7, ..] = *head;
    u64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7])
}

/// The part of a record before its IO groups, validated as strict decoding does.
pub(crate) struct RecordHead<'a> {
    pub(crate) head: &'a [u8; HEAD_LEN],
    pub(crate) event_id: u16,
    pub(crate) generation_type: Option<GenerationType>,
    pub(crate) total: u16,
}

/// Read and check a record head; `None` for anything strict decoding rejects.
#[inline(always)]
pub(crate) fn take_head(l: Layout, input: &[u8]) -> Option<(RecordHead<'_>, &[u8])> {
    read_head::<true>(l, input)
}

/// A record head; `CHECK`: reject what strict decoding rejects (off for records validated
/// before).
#[inline(always)]
fn read_head<const CHECK: bool>(l: Layout, input: &[u8]) -> Option<(RecordHead<'_>, &[u8])> {
    let (head, rest) = input.split_first_chunk::<HEAD_LEN>()?;
    if CHECK && head[8] > 3 {
        return None;
    }
    let (event_id, rest) = take_var(l.wide_event, rest)?;
    let (generation_type, rest) = if l.generation_type {
        let (&g, rest) = rest.split_first()?;
        if CHECK && g > 7 {
            return None;
        }
        (Some(GenerationType(g)), rest)
    } else {
        (None, rest)
    };
    let (total, rest) = take_var(l.wide_counts, rest)?;
    Some((
        RecordHead {
            head,
            event_id,
            generation_type,
            total,
        },
        rest,
    ))
}

/// Walk the IO groups at the front of `input` without reading values: `None` if they run past
/// the end or their counts disagree with `total`. Returns the bytes after them.
#[inline(always)]
pub(crate) fn skip_io(l: Layout, total: u16, input: &[u8]) -> Option<&[u8]> {
    walk_io::<true>(l, total, input)
}

/// [`skip_io`]; `CHECK` off skips the count check (records validated before).
#[inline(always)]
fn walk_io<const CHECK: bool>(l: Layout, total: u16, input: &[u8]) -> Option<&[u8]> {
    let id = l.id_len();
    let mut rest = input;
    let mut actual: u16 = 0;
    for size in [1usize, 2, 4, 8] {
        let (n, r) = take_var(l.wide_counts, rest)?;
        rest = r.get(usize::from(n) * (id + size)..)?;
        actual = actual.wrapping_add(n);
    }
    if l.nx {
        let (n, r) = take_var(true, rest)?;
        rest = r;
        for _ in 0..n {
            let (&[_, _, l0, l1], r) = rest.split_first_chunk::<4>()?;
            rest = r.get(usize::from(u16::from_be_bytes([l0, l1]))..)?;
        }
        actual = actual.wrapping_add(n);
    }
    (!CHECK || actual == total).then_some(rest)
}

impl Layout {
    /// The layout for a data codec id (`0x08`, `0x8E`, `0x10`), for functions monomorphised
    /// per codec: with the id a constant, every width test below folds away.
    #[inline(always)]
    pub(crate) const fn of_id(id: u8) -> Self {
        match id {
            0x8E => Self::of(Codec::Codec8Ext),
            0x10 => Self::of(Codec::Codec16),
            _ => Self::of(Codec::Codec8),
        }
    }
}

/// One validated record at the front of `input`: its head, its IO groups and the bytes after
/// it. The checks of [`take_head`] and the count of [`skip_io`] are not repeated: the caller
/// validated the record before.
#[inline(always)]
pub(crate) fn step_validated<const C: u8>(input: &[u8]) -> Option<(RecordHead<'_>, &[u8], &[u8])> {
    let l = Layout::of_id(C);
    let (head, io) = read_head::<false>(l, input)?;
    let rest = walk_io::<false>(l, head.total, io)?;
    let io = &io[..io.len() - rest.len()];
    Some((head, io, rest))
}

/// Validate `count` records at the front of `input` as strict decoding does; the bytes after
/// them. Monomorphised per codec id `C`.
#[inline(always)]
pub(crate) fn validate_records<const C: u8>(count: u8, input: &[u8]) -> Option<&[u8]> {
    let l = Layout::of_id(C);
    let mut rest = input;
    for _ in 0..count {
        let (head, r) = take_head(l, rest)?;
        rest = skip_io(l, head.total, r)?;
    }
    Some(rest)
}
