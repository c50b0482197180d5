//! Codec 7 (0x07): GH3000 personal trackers, as documented in "GH3000 Data protocol v1.08".
//!
//! A record is: 4 bytes whose top 2 bits are the priority and low 30 bits the seconds since
//! 2007-01-01 00:00:00 UTC; a global mask (bit 0 GPS element, bits 1–3 the 1-, 2- and 4-byte IO
//! groups; there is no 8-byte group); the GPS element starting with its own mask (bit 0 latitude
//! and longitude as IEEE-754 floats, latitude first; bit 1 altitude, 2 bytes; bit 2 angle, 1 byte
//! × 360/256; bit 3 speed, 1 byte; bit 4 satellites; bit 5 LAC and cell id, 2 + 2; bit 6 signal
//! quality; bit 7 operator code, 4 bytes); then the IO groups present, each a 1-byte count of
//! 1-byte ids and values.

use alloc::vec::Vec;

use crate::avl::{AvlRecord, GpsElement, IoElement, IoValue, Priority};
use crate::error::{DecodeError, EncodeError};
use crate::field::Field;
use crate::reader::{be_uint, Reader};

/// Seconds from 1970-01-01 to 2007-01-01, the Codec 7 epoch.
pub const GH3000_EPOCH_S: u64 = 1_167_609_600;

/// What a Codec 7 record carries beyond the common record: the masks (which fields are present)
/// and the GH3000-only values. Kept so that encoding gives back the same bytes.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Codec7Fields {
    /// Global mask: bit 0 GPS element, bits 1–3 IO groups of 1, 2 and 4 bytes.
    pub global_mask: u8,
    /// GPS element mask (meaningful when global mask bit 0 is set).
    pub gps_mask: u8,
    /// Latitude and longitude as sent (single-precision floats, degrees).
    pub coordinates: Option<(f32, f32)>,
    /// Angle as sent: 1 byte, units of 360/256 degrees.
    pub angle_raw: u8,
    /// Location area code and cell id.
    pub cell: Option<(u16, u16)>,
    /// GSM signal quality.
    pub signal_quality: Option<u8>,
    /// Operator code (MCC and MNC).
    pub operator: Option<u32>,
}

const GPS: u8 = 1;

/// One record and its Codec 7 extras.
pub(crate) fn read_record(
    r: &mut Reader<'_, '_>,
) -> Result<(AvlRecord, Codec7Fields), DecodeError> {
    // Two bits of priority: always 0..=3, nothing to check.
    let head = r.u32(Field::TimestampAndPriority)?;
    let priority = Priority((head >> 30) as u8);
    let timestamp_ms = (u64::from(head & 0x3FFF_FFFF) + GH3000_EPOCH_S) * 1000;
    let global_mask = r.u8(Field::GlobalMask)?;
    let mut fields = Codec7Fields {
        global_mask,
        ..Codec7Fields::default()
    };
    let mut gps = GpsElement::default();
    if global_mask & GPS != 0 {
        let mask = r.u8(Field::GpsMask)?;
        fields.gps_mask = mask;
        if mask & 0x01 != 0 {
            let lat = f32::from_bits(r.u32(Field::Latitude)?);
            let lon = f32::from_bits(r.u32(Field::Longitude)?);
            fields.coordinates = Some((lat, lon));
            gps.latitude = degrees_to_e7(lat);
            gps.longitude = degrees_to_e7(lon);
        }
        if mask & 0x02 != 0 {
            gps.altitude = r.u16(Field::Altitude)? as i16;
        }
        if mask & 0x04 != 0 {
            fields.angle_raw = r.u8(Field::Angle)?;
            gps.angle = angle_from_raw(fields.angle_raw);
        }
        if mask & 0x08 != 0 {
            gps.speed = r.u8(Field::Speed)?.into();
        }
        if mask & 0x10 != 0 {
            gps.satellites = r.u8(Field::Satellites)?;
        }
        if mask & 0x20 != 0 {
            fields.cell = Some((r.u16(Field::LocationAreaCode)?, r.u16(Field::CellId)?));
        }
        if mask & 0x40 != 0 {
            fields.signal_quality = Some(r.u8(Field::SignalQuality)?);
        }
        if mask & 0x80 != 0 {
            fields.operator = Some(r.u32(Field::OperatorCode)?);
        }
    }
    let mut io = Vec::new();
    for (bit, size, field) in [
        (0x02u8, 1usize, Field::IoCount1),
        (0x04, 2, Field::IoCount2),
        (0x08, 4, Field::IoCount4),
    ] {
        if global_mask & bit == 0 {
            continue;
        }
        let n = r.u8(field)?;
        for _ in 0..n {
            let id = u16::from(r.u8(Field::IoId)?);
            r.io_id = Some(id);
            let v = be_uint(r.take(size, Field::IoValue)?);
            r.io_id = None;
            let value = match size {
                1 => IoValue::U8(v as u8),
                2 => IoValue::U16(v as u16),
                _ => IoValue::U32(v as u32),
            };
            io.push(IoElement { id, value });
        }
    }
    let record = AvlRecord {
        timestamp_ms,
        priority,
        gps,
        event_id: 0,
        generation_type: None,
        io,
    };
    Ok((record, fields))
}

fn degrees_to_e7(deg: f32) -> i32 {
    let v = f64::from(deg) * 1e7;
    if v.is_nan() {
        0
    } else {
        // Float-to-int `as` saturates, so out-of-range garbage cannot overflow.
        round(v) as i32
    }
}

fn round(v: f64) -> f64 {
    // core has no f64::round without std; this is round-half-away-from-zero.
    let t = v as i64 as f64;
    let frac = v - t;
    if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

fn angle_from_raw(raw: u8) -> u16 {
    ((u32::from(raw) * 360 + 128) / 256) as u16
}

/// The Codec 7 fields for a record that has none (built by hand or decoded from another
/// codec): every GPS field present, the IO groups that have values.
fn fields_from_gps(gps: &GpsElement) -> Codec7Fields {
    Codec7Fields {
        global_mask: GPS,
        gps_mask: 0x1F,
        coordinates: Some((
            (f64::from(gps.latitude) / 1e7) as f32,
            (f64::from(gps.longitude) / 1e7) as f32,
        )),
        angle_raw: ((u32::from(gps.angle % 360) * 256 + 180) / 360) as u8,
        ..Codec7Fields::default()
    }
}

/// Encode one record with its extras (derived from the record when `None`).
pub(crate) fn write_record(
    record: &AvlRecord,
    fields: Option<&Codec7Fields>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let secs = record.timestamp_ms / 1000;
    let since = secs
        .checked_sub(GH3000_EPOCH_S)
        .filter(|s| *s <= 0x3FFF_FFFF)
        .ok_or(EncodeError::OutOfRange {
            field: "codec 7 timestamp (seconds since 2007)",
            value: secs,
            max: GH3000_EPOCH_S + 0x3FFF_FFFF,
        })?;
    if record.priority.0 > 3 {
        return Err(EncodeError::OutOfRange {
            field: "priority",
            value: record.priority.0.into(),
            max: 3,
        });
    }
    let derived;
    let f = match fields {
        Some(f) => f,
        None => {
            derived = fields_from_gps(&record.gps);
            &derived
        }
    };
    let mut io_mask = 0u8;
    for e in &record.io {
        if e.id > 255 {
            return Err(EncodeError::OutOfRange {
                field: "io id",
                value: e.id.into(),
                max: 255,
            });
        }
        io_mask |= match e.value {
            IoValue::U8(_) => 0x02,
            IoValue::U16(_) => 0x04,
            IoValue::U32(_) => 0x08,
            _ => {
                return Err(EncodeError::NotSupported {
                    what: "8-byte or variable-length IO values",
                    codec: "7",
                })
            }
        };
    }
    // Bits 4–7 have no meaning and no data: kept as received, so that encoding a decoded record
    // gives back its bytes (found by the round-trip fuzz target).
    let global_mask = f.global_mask | io_mask;
    let head = ((record.priority.0 as u32) << 30) | since as u32;
    out.extend_from_slice(&head.to_be_bytes());
    out.push(global_mask);
    if global_mask & GPS != 0 {
        let mask = f.gps_mask;
        out.push(mask);
        let gps = &record.gps;
        if mask & 0x01 != 0 {
            let (lat, lon) = f.coordinates.unwrap_or((
                (f64::from(gps.latitude) / 1e7) as f32,
                (f64::from(gps.longitude) / 1e7) as f32,
            ));
            out.extend_from_slice(&lat.to_bits().to_be_bytes());
            out.extend_from_slice(&lon.to_bits().to_be_bytes());
        }
        if mask & 0x02 != 0 {
            out.extend_from_slice(&gps.altitude.to_be_bytes());
        }
        if mask & 0x04 != 0 {
            out.push(f.angle_raw);
        }
        if mask & 0x08 != 0 {
            out.push(gps.speed.min(255) as u8);
        }
        if mask & 0x10 != 0 {
            out.push(gps.satellites);
        }
        if mask & 0x20 != 0 {
            let (lac, cell) = f.cell.unwrap_or_default();
            out.extend_from_slice(&lac.to_be_bytes());
            out.extend_from_slice(&cell.to_be_bytes());
        }
        if mask & 0x40 != 0 {
            out.push(f.signal_quality.unwrap_or_default());
        }
        if mask & 0x80 != 0 {
            out.extend_from_slice(&f.operator.unwrap_or_default().to_be_bytes());
        }
    }
    for (bit, group) in [(0x02u8, 0usize), (0x04, 1), (0x08, 2)] {
        if global_mask & bit == 0 {
            continue;
        }
        let items: Vec<&IoElement> = record
            .io
            .iter()
            .filter(|e| e.value.group() == group)
            .collect();
        let n = u8::try_from(items.len()).map_err(|_| EncodeError::OutOfRange {
            field: "io group count",
            value: items.len() as u64,
            max: 255,
        })?;
        out.push(n);
        for e in items {
            out.push(e.id as u8);
            out.extend_from_slice(&e.value.to_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{decode_bare, AvlData, Content, DecodeOptions, Packet};

    fn avl(packet: &Packet) -> &AvlData {
        match &packet.content {
            Content::Avl(d) => d,
            _ => panic!("not AVL data"),
        }
    }

    /// Fuzz regression (roundtrip): a global mask with the undefined bits 5 and 6 set.
    #[test]
    fn undefined_global_mask_bits_survive_encoding() {
        let bytes = [0x07, 0x01, 0xFF, 0x23, 0x00, 0x00, 0x68, 0x00, 0x01];
        let packet = decode_bare(&bytes, &DecodeOptions::default()).unwrap();
        assert_eq!(avl(&packet).codec7[0].global_mask, 0x68);
        assert_eq!(packet.encode().unwrap(), bytes);
    }

    /// Fuzz regression (roundtrip): NaN coordinates (every GPS field present, all bits set)
    /// come back bit for bit, although NaN != NaN makes the decoded records compare unequal.
    #[test]
    fn nan_coordinates_round_trip_bit_exactly() {
        let mut bytes = alloc::vec![0x07, 0x01, 0x00, 0x2B, 0x4F, 0xFF, 0x05, 0xFF];
        bytes.extend_from_slice(&[0xFF; 8 + 2 + 1 + 1 + 1 + 4 + 1 + 4]);
        bytes.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x01]);
        let packet = decode_bare(&bytes, &DecodeOptions::default()).unwrap();
        let (lat, lon) = avl(&packet).codec7[0].coordinates.unwrap();
        assert!(lat.is_nan() && lon.is_nan());
        assert_eq!(packet.records()[0].gps.latitude, 0);
        assert_eq!(packet.encode().unwrap(), bytes);
    }
}
