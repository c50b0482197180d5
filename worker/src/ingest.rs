//! What one `POST /udp` datagram turns into: the device, the rows to store and the ack to send
//! once they are stored.
//!
//! Retransmits are the normal case on the UDP channel (a device that misses an ack sends the same
//! data again), so every row carries a dedup key: core's record identity
//! (`fleetview::identity`, the same as the native server's: FNV-1a 64 of the record re-encoded
//! alone in its codec's data array, as 16 hex digits). Rows stored before the Worker used core's
//! identity keep their SHA-256 keys (64 hex digits) and stay readable; only a datagram resent
//! across that upgrade could be stored twice. The table's primary key is
//! `(imei, record_key)` and rows go in with `INSERT OR IGNORE`: the same device sending the same
//! record again adds nothing, and gets the same ack, since the ack counts records accepted, and a
//! record already stored is accepted.

use fleetview::identity::record_identity;
use fleetview::json::{ErrorBody, ErrorJson, RecordJson};
use fleetview::{AvlData, AvlRecord, DecodeError, DecodeOptions};

/// A decoded datagram, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct Ingest {
    /// The sending device.
    pub imei: String,
    /// Exactly what the device must get back once the rows are stored.
    pub ack: [u8; 7],
    /// One row per record, in datagram order.
    pub rows: Vec<RecordRow>,
}

/// One `records` row (migrations/0001_records.sql).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordRow {
    /// Core's record key of `data` (16 hex digits): the dedup key.
    pub record_key: String,
    /// Milliseconds since 1970 UTC.
    pub timestamp_ms: u64,
    /// `"8"`, `"8E"`, `"16"` or `"7"`.
    pub codec: &'static str,
    /// 0–3.
    pub priority: u8,
    /// Degrees.
    pub longitude: f64,
    /// Degrees.
    pub latitude: f64,
    /// Metres.
    pub altitude: i16,
    /// Degrees from north.
    pub angle: u16,
    /// Visible satellites.
    pub satellites: u8,
    /// km/h.
    pub speed: u16,
    /// Whether the position is a fix (`GpsElement::has_fix`): only fixes become GeoJSON points.
    pub valid: bool,
    /// IO id that triggered the record.
    pub event_id: u16,
    /// The IO elements as in the JSON model (ids, raw values, and catalogue names for the
    /// common FMB definitions).
    pub io: String,
    /// Hex of the record alone in its codec's data array (codec id, 1, record, 1): lossless, so
    /// it can be decoded again later, e.g. with another model's IO names.
    pub data: String,
}

/// Why a datagram cannot be stored; answered with `400` and this JSON.
#[derive(Clone, Debug)]
pub struct Rejected(pub ErrorJson);

impl From<&DecodeError> for Rejected {
    fn from(e: &DecodeError) -> Self {
        Self(ErrorJson::from(e))
    }
}

/// Decode a datagram strictly and plan its storage.
pub fn ingest(datagram: &[u8]) -> Result<Ingest, Rejected> {
    let packet = fleetview::udp::decode_datagram(datagram, &DecodeOptions::default())
        .map_err(|e| Rejected::from(&e))?;
    let header = &packet.header;
    // Only AVL datagrams are stored and acked: command messages are `unexpected_codec` at the
    // codec id.
    let data = packet.avl_data().map_err(|e| Rejected::from(&e))?;
    let rows = data
        .records
        .iter()
        .map(|r| row(data, r))
        .collect::<Result<Vec<_>, _>>()?;
    // A data array counts its records in one byte, so a decoded datagram has at most 255.
    let accepted = u8::try_from(rows.len()).unwrap_or(u8::MAX);
    Ok(Ingest {
        imei: header.imei.as_str().to_string(),
        ack: header.ack(accepted),
        rows,
    })
}

fn row(data: &AvlData, r: &AvlRecord) -> Result<RecordRow, Rejected> {
    // Re-encoding what was just decoded fails only if the encoder and decoder disagree.
    let id = record_identity(data.codec, r).map_err(|e| {
        Rejected(ErrorJson {
            error: ErrorBody {
                kind: "internal",
                offset: 0,
                field: "",
                message: format!(
                    "a record at {} ms cannot be encoded again: {e}",
                    r.timestamp_ms
                ),
            },
        })
    })?;
    let json = RecordJson::new(r, None);
    Ok(RecordRow {
        record_key: id.key.to_hex(),
        timestamp_ms: r.timestamp_ms,
        codec: data.codec.name(),
        priority: r.priority.0,
        longitude: json.longitude,
        latitude: json.latitude,
        altitude: json.altitude,
        angle: json.angle,
        satellites: json.satellites,
        speed: json.speed,
        valid: json.valid,
        event_id: json.event_id,
        io: serde_json::to_string(&json.io).unwrap_or_else(|_| String::from("[]")),
        data: fleetview::hex::encode(&id.bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetview::{
        Codec, CommandPacket, Content, GpsElement, Imei, IoElement, IoValue, UdpHeader,
    };

    /// The UDP example of the protocol text.
    const EXAMPLE: &str = "003DCAFE0105000F33353230393330383634303336353508010000016B4F815B30010000000000000000000000000000000103021503010101425DBC000001";

    #[test]
    fn protocol_example() {
        let bytes = fleetview::hex::decode(EXAMPLE).unwrap();
        let plan = ingest(&bytes).unwrap();
        assert_eq!(plan.imei, "352093086403655");
        assert_eq!(plan.ack, [0x00, 0x05, 0xCA, 0xFE, 0x01, 0x05, 0x01]);
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.rows[0].timestamp_ms, 1_560_407_006_000);
        assert_eq!(plan.rows[0].record_key.len(), 16);
        assert!(!plan.rows[0].valid);
    }

    fn record(ts: u64, lon: i32) -> AvlRecord {
        AvlRecord {
            timestamp_ms: ts,
            gps: GpsElement {
                longitude: lon,
                latitude: 546_674_250,
                altitude: 172,
                angle: 248,
                satellites: 11,
                speed: 40,
            },
            io: vec![IoElement {
                id: 66,
                value: IoValue::U16(24_079),
            }],
            ..AvlRecord::default()
        }
    }

    #[test]
    fn keys_follow_record_bytes() {
        let imei = Imei::new("356307042441013").unwrap();
        let data = AvlData::new(
            Codec::Codec8Ext,
            vec![
                record(1_000, 252_560_283),
                record(2_000, 252_560_283),
                record(1_000, 252_560_283),
            ],
        );
        let first = ingest(&fleetview::encode::avl_datagram(&imei, 7, 9, &data).unwrap()).unwrap();
        assert_eq!(first.ack, fleetview::udp::ack(7, 9, 3));
        // Same record, same key (the third row dedups against the first); another time, another key.
        assert_eq!(first.rows[0].record_key, first.rows[2].record_key);
        assert_ne!(first.rows[0].record_key, first.rows[1].record_key);
        // A retransmit under new packet ids plans the same rows.
        let again = ingest(&fleetview::encode::avl_datagram(&imei, 8, 10, &data).unwrap()).unwrap();
        assert_eq!(again.rows, first.rows);
        assert_eq!(again.ack, fleetview::udp::ack(8, 10, 3));
        let row = &first.rows[1];
        assert_eq!(
            (row.codec, row.longitude, row.valid),
            ("8E", 25.2560283, true)
        );
        assert!(row.io.contains("\"raw\":24079"), "{}", row.io);
    }

    #[test]
    fn malformed_is_rejected_with_offset() {
        let mut bytes = fleetview::hex::decode(EXAMPLE).unwrap();
        bytes.truncate(40);
        let Rejected(json) = ingest(&bytes).unwrap_err();
        assert_eq!(json.error.kind, "length_mismatch");
        let Rejected(json) = ingest(&[]).unwrap_err();
        assert_eq!(json.error.kind, "empty_input");
    }

    #[test]
    fn commands_are_not_stored() {
        let header = UdpHeader {
            length: 0,
            packet_id: 1,
            packet_type: 1,
            avl_packet_id: 1,
            imei: Imei::new("356307042441013").unwrap(),
        };
        let bytes = fleetview::encode::encode_datagram(
            &header,
            &Content::Command(CommandPacket::codec12("getinfo")),
        )
        .unwrap();
        let Rejected(json) = ingest(&bytes).unwrap_err();
        assert_eq!(
            (json.error.kind, json.error.offset),
            ("unexpected_codec", 23)
        );
    }
}
