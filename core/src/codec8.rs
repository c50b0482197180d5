//! Records of Codec 8 (0x08), Codec 8 Extended (0x8E) and Codec 16 (0x10).
//!
//! The three share the record head (timestamp, priority, GPS element) and differ in the IO
//! element:
//!
//! | | event id | generation type | counts | IO ids | NX group |
//! |---|---|---|---|---|---|
//! | 8 | 1 byte | – | 1 byte | 1 byte | – |
//! | 8E | 2 bytes | – | 2 bytes | 2 bytes | yes |
//! | 16 | 2 bytes | 1 byte | 1 byte | 2 bytes | – |

use alloc::vec::Vec;

use crate::avl::{
    tolerate, AvlRecord, DecodeOptions, GenerationType, GpsElement, IoElement, IoValue, Priority,
};
use crate::codec::Codec;
use crate::error::{DecodeError, EncodeError, ErrorKind, Warning};
use crate::reader::{be_uint, Reader};

/// Field widths of one codec's IO element.
#[derive(Clone, Copy)]
struct Layout {
    wide_event: bool,
    generation_type: bool,
    wide_counts: bool,
    wide_ids: bool,
    nx: bool,
}

fn layout(codec: Codec) -> Layout {
    match codec {
        Codec::Codec8Ext => Layout {
            wide_event: true,
            generation_type: false,
            wide_counts: true,
            wide_ids: true,
            nx: true,
        },
        Codec::Codec16 => Layout {
            wide_event: true,
            generation_type: true,
            wide_counts: false,
            wide_ids: true,
            nx: false,
        },
        _ => Layout {
            wide_event: false,
            generation_type: false,
            wide_counts: false,
            wide_ids: false,
            nx: false,
        },
    }
}

fn read_var(r: &mut Reader<'_, '_>, wide: bool, field: &'static str) -> Result<u16, DecodeError> {
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
            DecodeError::new(at, "priority", ErrorKind::InvalidPriority { value }),
        )?;
    }
    Ok(Priority(value))
}

pub(crate) fn read_gps(r: &mut Reader<'_, '_>) -> Result<GpsElement, DecodeError> {
    Ok(GpsElement {
        longitude: r.u32("longitude")? as i32,
        latitude: r.u32("latitude")? as i32,
        altitude: r.u16("altitude")? as i16,
        angle: r.u16("angle")?,
        satellites: r.u8("satellites")?,
        speed: r.u16("speed")?,
    })
}

pub(crate) fn read_record(
    r: &mut Reader<'_, '_>,
    codec: Codec,
    opts: &DecodeOptions,
    warnings: &mut Vec<Warning>,
) -> Result<AvlRecord, DecodeError> {
    let l = layout(codec);
    let timestamp_ms = r.u64("timestamp")?;
    let at = r.offset();
    let p = r.u8("priority")?;
    let priority = check_priority(p, at, opts, warnings)?;
    let gps = read_gps(r)?;
    let event_id = read_var(r, l.wide_event, "event io id")?;
    let generation_type = if l.generation_type {
        let at = r.offset();
        let value = r.u8("generation type")?;
        if value > 7 {
            tolerate(
                opts.lenient,
                warnings,
                DecodeError::new(
                    at,
                    "generation type",
                    ErrorKind::InvalidGenerationType { value },
                ),
            )?;
        }
        Some(GenerationType(value))
    } else {
        None
    };
    let total_at = r.offset();
    let total = read_var(r, l.wide_counts, "io count")?;
    // Every element takes at least id + 1 byte: bound the allocation by the bytes present.
    let min_element = if l.wide_ids { 3 } else { 2 };
    let mut io = Vec::with_capacity(usize::from(total).min(r.left() / min_element));
    let mut actual: u16 = 0;
    for (size, field) in [
        (1usize, "io count 1 byte"),
        (2, "io count 2 bytes"),
        (4, "io count 4 bytes"),
        (8, "io count 8 bytes"),
    ] {
        let n = read_var(r, l.wide_counts, field)?;
        actual = actual.wrapping_add(n);
        for _ in 0..n {
            let id = read_var(r, l.wide_ids, "io id")?;
            r.io_id = Some(id);
            let bytes = r.take(size, "io value")?;
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
        let n = r.u16("io count variable")?;
        actual = actual.wrapping_add(n);
        for _ in 0..n {
            let id = r.u16("io id")?;
            r.io_id = Some(id);
            let len = usize::from(r.u16("io length")?);
            let value = IoValue::Bytes(r.take(len, "io value")?.to_vec());
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
                "io count",
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
        codec7: None,
    })
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
    for e in &record.io {
        counts[e.value.group()] += 1;
    }
    if counts[4] > 0 && !l.nx {
        return Err(EncodeError::NotSupported {
            what: "variable-length IO values",
            codec: codec.name(),
        });
    }
    write_var(out, l.wide_counts, counts.iter().sum(), "io count")?;
    for (group, &count) in counts.iter().enumerate() {
        if group == 4 {
            if !l.nx {
                break;
            }
            write_var(out, true, count, "io count variable")?;
        } else {
            write_var(out, l.wide_counts, count, "io group count")?;
        }
        for e in record.io.iter().filter(|e| e.value.group() == group) {
            write_var(out, l.wide_ids, e.id.into(), "io id")?;
            if let IoValue::Bytes(b) = &e.value {
                write_var(out, true, b.len() as u64, "io value length")?;
            }
            out.extend_from_slice(&e.value.to_bytes());
        }
    }
    Ok(())
}
