//! Records of Codec 8 (0x08), Codec 8 Extended (0x8E) and Codec 16 (0x10): owned decoding and
//! encoding over the layout of [`crate::layout`].

use alloc::vec::Vec;

use crate::avl::{AvlRecord, GenerationType, GpsElement, IoElement, IoValue, Priority};
use crate::codec::Codec;
use crate::error::{DecodeError, EncodeError, ErrorKind, Warning};
use crate::field::Field;
use crate::layout::{gps_of, take_head, take_var, timestamp_of, Layout};
use crate::options::{tolerate, DecodeOptions};
use crate::reader::{be_uint, Reader};

fn layout(codec: Codec) -> Layout {
    Layout::of(codec)
}

fn read_var(r: &mut Reader<'_, '_>, wide: bool, field: Field) -> Result<u16, DecodeError> {
    if wide {
        r.u16(field)
    } else {
        r.u8(field).map(u16::from)
    }
}

pub(crate) fn check_priority(
    value: u8,
    at: usize,
    opts: &DecodeOptions,
    warnings: &mut Vec<Warning>,
) -> Result<Priority, DecodeError> {
    if value > 3 {
        tolerate(
            opts.lenient,
            warnings,
            DecodeError::new(at, Field::Priority, ErrorKind::InvalidPriority { value }),
        )?;
    }
    Ok(Priority(value))
}

pub(crate) fn read_gps(r: &mut Reader<'_, '_>) -> Result<GpsElement, DecodeError> {
    Ok(GpsElement {
        longitude: r.u32(Field::Longitude)? as i32,
        latitude: r.u32(Field::Latitude)? as i32,
        altitude: r.u16(Field::Altitude)? as i16,
        angle: r.u16(Field::Angle)?,
        satellites: r.u8(Field::Satellites)?,
        speed: r.u16(Field::Speed)?,
    })
}

pub(crate) fn read_record(
    r: &mut Reader<'_, '_>,
    codec: Codec,
    opts: &DecodeOptions,
    warnings: &mut Vec<Warning>,
) -> Result<AvlRecord, DecodeError> {
    let l = layout(codec);
    let timestamp_ms = r.u64(Field::Timestamp)?;
    let at = r.offset();
    let p = r.u8(Field::Priority)?;
    let priority = check_priority(p, at, opts, warnings)?;
    let gps = read_gps(r)?;
    let event_id = read_var(r, l.wide_event, Field::EventIoId)?;
    let generation_type = if l.generation_type {
        let at = r.offset();
        let value = r.u8(Field::GenerationType)?;
        if value > 7 {
            tolerate(
                opts.lenient,
                warnings,
                DecodeError::new(
                    at,
                    Field::GenerationType,
                    ErrorKind::InvalidGenerationType { value },
                ),
            )?;
        }
        Some(GenerationType(value))
    } else {
        None
    };
    let total_at = r.offset();
    let total = read_var(r, l.wide_counts, Field::IoCount)?;
    // Every element takes at least id + 1 byte: bound the allocation by the bytes present.
    let min_element = if l.wide_ids { 3 } else { 2 };
    let mut io = Vec::with_capacity(usize::from(total).min(r.left() / min_element));
    let mut actual: u16 = 0;
    for (size, field) in [
        (1usize, Field::IoCount1),
        (2, Field::IoCount2),
        (4, Field::IoCount4),
        (8, Field::IoCount8),
    ] {
        let n = read_var(r, l.wide_counts, field)?;
        actual = actual.wrapping_add(n);
        for _ in 0..n {
            let id = read_var(r, l.wide_ids, Field::IoId)?;
            r.io_id = Some(id);
            let bytes = r.take(size, Field::IoValue)?;
            let v = be_uint(bytes);
            let value = match size {
                1 => IoValue::U8(v as u8),
                2 => IoValue::U16(v as u16),
                4 => IoValue::U32(v as u32),
                _ => IoValue::U64(v),
            };
            r.io_id = None;
            io.push(IoElement { id, value });
        }
    }
    if l.nx {
        let n = r.u16(Field::IoCountVariable)?;
        actual = actual.wrapping_add(n);
        for _ in 0..n {
            let id = r.u16(Field::IoId)?;
            r.io_id = Some(id);
            let len = usize::from(r.u16(Field::IoLength)?);
            let at = r.offset();
            let value = if crate::composite::CompositeKind::of(id).is_some() {
                // Labelled piece by piece (beacons, parameters) instead of as one value; a
                // malformed value is kept as bytes, with a warning where it goes wrong.
                let bytes = r.sub(len, Field::IoValue)?.rest();
                let mut pieces = Vec::new();
                let decoded = if r.is_traced() {
                    crate::composite::decode_traced(id, bytes, &mut pieces)
                } else {
                    crate::composite::decode(id, bytes)
                };
                if let Some(Err(e)) = decoded {
                    warnings.push(Warning::composite(at + e.offset, id, e.problem));
                }
                r.mark_pieces(at, len, &pieces);
                IoValue::Bytes(bytes.to_vec())
            } else {
                IoValue::Bytes(r.take(len, Field::IoValue)?.to_vec())
            };
            r.io_id = None;
            io.push(IoElement { id, value });
        }
    }
    if actual != total {
        tolerate(
            opts.lenient,
            warnings,
            DecodeError::new(
                total_at,
                Field::IoCount,
                ErrorKind::IoCountMismatch {
                    declared: total,
                    actual,
                },
            ),
        )?;
    }
    Ok(AvlRecord {
        timestamp_ms,
        priority,
        gps,
        event_id,
        generation_type,
        io,
    })
}

/// The fast path of strict decoding: Codec 8, 8E or 16 data array at the front of `input`
/// (codec id through Number of Data 2), decoded in one pass without field bookkeeping. `None` for
/// anything strict decoding would reject, or another codec: the caller then runs the [`Reader`]
/// decoder, which names the field and offset (or tolerates the problem in lenient mode). On
/// strictly valid input both give the same records, so the fast path is taken in lenient mode too.
/// Returns the codec, the records and the bytes used.
pub(crate) fn fast_avl_data(input: &[u8]) -> Option<(Codec, Vec<AvlRecord>, usize)> {
    let (&[id, count], body) = input.split_first_chunk::<2>()?;
    let (codec, rest) = match id {
        0x08 => (Codec::Codec8, fast_records::<0x08>(count, body)?),
        0x8E => (Codec::Codec8Ext, fast_records::<0x8E>(count, body)?),
        0x10 => (Codec::Codec16, fast_records::<0x10>(count, body)?),
        _ => return None,
    };
    let (records, after) = rest;
    let (&trailer, after) = after.split_first()?;
    if trailer != count {
        return None;
    }
    Some((codec, records, input.len() - after.len()))
}

/// `count` records of the codec with id `C` at the front of `input`, and the bytes after them.
#[inline(always)]
fn fast_records<const C: u8>(count: u8, input: &[u8]) -> Option<(Vec<AvlRecord>, &[u8])> {
    let codec = match C {
        0x08 => Codec::Codec8,
        0x8E => Codec::Codec8Ext,
        _ => Codec::Codec16,
    };
    let l = Layout::of(codec);
    // Bound the allocation by the bytes present, not by the declared count.
    let mut records = Vec::with_capacity(usize::from(count).min(input.len() / MIN_RECORD));
    let mut rest = input;
    for _ in 0..count {
        let (head, io_start) = take_head(l, rest)?;
        // One pass that validates while it reads: the allocation is the declared count (bounded
        // by the bytes present), and a count that disagrees with the groups sends the input to
        // the exact decoder.
        let min_element = l.id_len() + 1;
        let mut io = Vec::with_capacity(usize::from(head.total).min(io_start.len() / min_element));
        let after = fast_io(l, io_start, &mut io)?;
        if io.len() != usize::from(head.total) {
            return None;
        }
        records.push(AvlRecord {
            timestamp_ms: timestamp_of(head.head),
            priority: Priority(head.head[8]),
            gps: gps_of(head.head),
            event_id: head.event_id,
            generation_type: head.generation_type,
            io,
        });
        rest = after;
    }
    Some((records, rest))
}

/// The smallest record of Codec 8 (24-byte head, event id, io count, four group counts).
const MIN_RECORD: usize = 24 + 1 + 1 + 4;

/// Append the IO elements of the groups at the front of `input`; the bytes after them, or
/// `None` if a group runs past the end.
#[inline(always)]
fn fast_io<'a>(l: Layout, input: &'a [u8], io: &mut Vec<IoElement>) -> Option<&'a [u8]> {
    let rest = if l.wide_ids {
        let rest = fixed_group::<true, 1>(l, input, io, |v| IoValue::U8(v[0]))?;
        let rest = fixed_group::<true, 2>(l, rest, io, |v| IoValue::U16(u16::from_be_bytes(*v)))?;
        let rest = fixed_group::<true, 4>(l, rest, io, |v| IoValue::U32(u32::from_be_bytes(*v)))?;
        fixed_group::<true, 8>(l, rest, io, |v| IoValue::U64(u64::from_be_bytes(*v)))?
    } else {
        let rest = fixed_group::<false, 1>(l, input, io, |v| IoValue::U8(v[0]))?;
        let rest = fixed_group::<false, 2>(l, rest, io, |v| IoValue::U16(u16::from_be_bytes(*v)))?;
        let rest = fixed_group::<false, 4>(l, rest, io, |v| IoValue::U32(u32::from_be_bytes(*v)))?;
        fixed_group::<false, 8>(l, rest, io, |v| IoValue::U64(u64::from_be_bytes(*v)))?
    };
    if l.nx {
        let (n, mut rest) = take_var(true, rest)?;
        for _ in 0..n {
            let (&[i0, i1, l0, l1], r) = rest.split_first_chunk::<4>()?;
            let (value, r) = r.split_at_checked(usize::from(u16::from_be_bytes([l0, l1])))?;
            let id = u16::from_be_bytes([i0, i1]);
            // A malformed composite value gets a warning at its byte: the exact decoder has
            // the offsets.
            if let Some(Err(_)) = crate::composite::decode(id, value) {
                return None;
            }
            io.push(IoElement {
                id,
                value: IoValue::Bytes(value.to_vec()),
            });
            rest = r;
        }
        return Some(rest);
    }
    Some(rest)
}

/// One group of `SIZE`-byte values with 2-byte (`WIDE`) or 1-byte ids.
#[inline(always)]
fn fixed_group<'a, const WIDE: bool, const SIZE: usize>(
    l: Layout,
    input: &'a [u8],
    io: &mut Vec<IoElement>,
    value: impl Fn(&[u8; SIZE]) -> IoValue,
) -> Option<&'a [u8]> {
    let (n, rest) = take_var(l.wide_counts, input)?;
    let id_len = if WIDE { 2 } else { 1 };
    let (bytes, rest) = rest.split_at_checked(usize::from(n) * (id_len + SIZE))?;
    // `chunks_exact` + `map` has an exact length: `extend` reserves once and writes the
    // elements with the length kept in a register, not stored back after every push.
    io.extend(bytes.chunks_exact(id_len + SIZE).map(|chunk| {
        let (id, v) = chunk.split_at(id_len);
        IoElement {
            id: if WIDE {
                u16::from_be_bytes([id[0], id[1]])
            } else {
                u16::from(id[0])
            },
            value: value(v.try_into().unwrap_or(&[0; SIZE])),
        }
    }));
    Some(rest)
}

fn write_var(
    out: &mut Vec<u8>,
    wide: bool,
    value: u64,
    field: &'static str,
) -> Result<(), EncodeError> {
    let max = if wide {
        u16::MAX as u64
    } else {
        u8::MAX as u64
    };
    if value > max {
        return Err(EncodeError::OutOfRange { field, value, max });
    }
    if wide {
        out.extend_from_slice(&(value as u16).to_be_bytes());
    } else {
        out.push(value as u8);
    }
    Ok(())
}

pub(crate) fn write_gps(gps: &GpsElement, out: &mut Vec<u8>) {
    out.extend_from_slice(&gps.longitude.to_be_bytes());
    out.extend_from_slice(&gps.latitude.to_be_bytes());
    out.extend_from_slice(&gps.altitude.to_be_bytes());
    out.extend_from_slice(&gps.angle.to_be_bytes());
    out.push(gps.satellites);
    out.extend_from_slice(&gps.speed.to_be_bytes());
}

/// One IO element: id, (length,) value.
#[inline(always)]
fn write_element(e: &IoElement, l: Layout, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_var(out, l.wide_ids, e.id.into(), "io id")?;
    // Written in place: `IoValue::to_bytes` would allocate for every value.
    match &e.value {
        IoValue::U8(v) => out.push(*v),
        IoValue::U16(v) => out.extend_from_slice(&v.to_be_bytes()),
        IoValue::U32(v) => out.extend_from_slice(&v.to_be_bytes()),
        IoValue::U64(v) => out.extend_from_slice(&v.to_be_bytes()),
        IoValue::Bytes(b) => {
            write_var(out, true, b.len() as u64, "io value length")?;
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

/// Encode one record. IO elements are written group by group (1, 2, 4, 8 bytes, then
/// variable), keeping their relative order within a group.
pub(crate) fn write_record(
    record: &AvlRecord,
    codec: Codec,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let l = layout(codec);
    out.extend_from_slice(&record.timestamp_ms.to_be_bytes());
    out.push(record.priority.0);
    write_gps(&record.gps, out);
    write_var(out, l.wide_event, record.event_id.into(), "event io id")?;
    if l.generation_type {
        out.push(record.generation_type.unwrap_or_default().0);
    }
    let mut counts = [0u64; 5];
    let mut size = 0;
    // Decoded records, and the devices, keep the groups in order: then one pass writes them.
    let mut sorted = true;
    let mut last = 0;
    for e in &record.io {
        let group = e.value.group();
        counts[group] += 1;
        sorted &= group >= last;
        last = group;
        size += l.id_len() + e.value.size() + if group == 4 { 2 } else { 0 };
    }
    if counts[4] > 0 && !l.nx {
        return Err(EncodeError::NotSupported {
            what: "variable-length IO values",
            codec: codec.name(),
        });
    }
    out.reserve(size + 12);
    write_var(out, l.wide_counts, counts.iter().sum(), "io count")?;
    let mut rest = &record.io[..];
    for (group, &count) in counts.iter().enumerate() {
        if group == 4 {
            if !l.nx {
                break;
            }
            write_var(out, true, count, "io count variable")?;
        } else {
            write_var(out, l.wide_counts, count, "io group count")?;
        }
        if sorted {
            // `count` elements of this group come next (counted above, so in range).
            let (these, after) = rest.split_at(rest.len().min(count as usize));
            rest = after;
            for e in these {
                write_element(e, l, out)?;
            }
        } else {
            for e in record.io.iter().filter(|e| e.value.group() == group) {
                write_element(e, l, out)?;
            }
        }
    }
    Ok(())
}
