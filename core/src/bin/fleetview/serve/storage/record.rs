//! What is stored of a record: its dedup hash, its compact IO JSON, and the row ready to insert.

use fleetview::{AvlRecord, IoValue};

use crate::serve::fuel::{FuelIds, Reading};

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher, as a key stored on
/// disk must be.
/// Core's record identity (`fleetview::identity`), which the Worker uses too.
pub(crate) fn record_hash(bytes: &[u8]) -> i64 {
    fleetview::identity::RecordKey::of(bytes).as_i64()
}

/// IO elements as compact JSON: `[[id,size,raw],…]` for fixed-size values (the unsigned
/// integer on the wire, exact to 2^64) and `[id,size,"hex"]` for variable-length ones. Enough to
/// rebuild every element exactly; names and scaled values are added when the row is read.
pub(crate) fn io_json(record: &AvlRecord, out: &mut String) {
    // Built as bytes (ASCII only) and checked once: this runs for every IO element stored.
    let mut b = std::mem::take(out).into_bytes();
    b.push(b'[');
    for (i, e) in record.io.iter().enumerate() {
        b.extend_from_slice(if i > 0 { b",[" } else { b"[" });
        push_u64(&mut b, e.id.into());
        b.push(b',');
        push_u64(&mut b, e.value.size() as u64);
        b.push(b',');
        match &e.value {
            IoValue::Bytes(v) => {
                b.push(b'"');
                b.extend_from_slice(fleetview::hex::encode(v).as_bytes());
                b.push(b'"');
            }
            v => push_u64(&mut b, v.raw().unwrap_or_default()),
        }
        b.push(b']');
    }
    b.push(b']');
    *out = String::from_utf8(b).unwrap_or_default();
}

/// Decimal digits of `v`, without the formatting machinery.
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A record ready to insert: the record itself (for live events) and what is stored of it.
#[derive(Clone, Debug)]
pub(crate) struct RecordRow {
    pub(crate) record: AvlRecord,
    /// The record encoded alone in its codec: the dedup key and the exact original.
    pub(crate) raw: Vec<u8>,
    /// [`io_json`].
    pub(crate) io: String,
    pub(crate) fuel: Option<Reading>,
    pub(crate) ignition: Option<u8>,
    pub(crate) movement: Option<u8>,
    /// Total odometer (IO 16), metres: trips read it without the IO JSON.
    pub(crate) odometer: Option<i64>,
}

impl RecordRow {
    pub(crate) fn new(
        record: AvlRecord,
        codec: fleetview::Codec,
        fuel_ids: &FuelIds,
        model: Option<&str>,
    ) -> Self {
        let mut data = fleetview::AvlData::new(codec, vec![record]);
        let encoded = data.encode();
        let record = data.records.pop().unwrap_or_default();
        let mut io = String::with_capacity(16 + record.io.len() * 12);
        io_json(&record, &mut io);
        // Every decoded record re-encodes; should one not, its JSON is the identity instead.
        let raw = encoded.unwrap_or_else(|_| {
            serde_json::to_vec(&fleetview::json::RecordJson::new(&record, model))
                .unwrap_or_default()
        });
        let (fuel, ignition, movement) = fuel_ids.read(&record);
        Self {
            odometer: crate::serve::reports::odometer(&record),
            fuel,
            record,
            raw,
            io,
            ignition,
            movement,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_json_is_compact_and_exact() {
        use fleetview::IoElement;
        let record = AvlRecord {
            io: vec![
                IoElement {
                    id: 239,
                    value: IoValue::U8(1),
                },
                IoElement {
                    id: 16,
                    value: IoValue::U64(u64::MAX),
                },
                IoElement {
                    id: 0,
                    value: IoValue::U16(0),
                },
                IoElement {
                    id: 385,
                    value: IoValue::Bytes(vec![0x0a, 0xff]),
                },
            ],
            ..AvlRecord::default()
        };
        let mut out = String::new();
        io_json(&record, &mut out);
        assert_eq!(
            out,
            r#"[[239,1,1],[16,8,18446744073709551615],[0,2,0],[385,2,"0aff"]]"#
        );
        out.clear();
        io_json(&AvlRecord::default(), &mut out);
        assert_eq!(out, "[]");
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // FNV-1a 64 test vectors (Fowler/Noll/Vo).
        assert_eq!(record_hash(b"") as u64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(record_hash(b"a") as u64, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(record_hash(b"foobar") as u64, 0x8594_4171_f739_67e8);
    }
}
