//! How much one request may make the Worker read and decode. A Worker has 128 MB of memory and
//! a CPU budget per request; without bounds, one large paste to `/decode` (or a stream of
//! one-byte keep-alives, each a packet with its own JSON object) would spend both.
//!
//! - Bodies: `/decode` at most [`MAX_DECODE_BODY`] bytes (a 64 KiB frame as hex with spaces
//!   fits), `/udp` at most [`MAX_UDP_BODY`] (the largest UDP payload); more is `413`. The body
//!   is read as a stream and abandoned past the cap, so a client that sends more costs no
//!   memory for it.
//! - Work: `/decode` decodes at most [`MAX_DECODE_PACKETS`] packets and
//!   [`MAX_DECODE_RECORDS`] records per request (a capture of a whole session belongs in
//!   `fleetview decode`); past either, `413` says where it stopped.

use fleetview::{DecodeError, DecodeOptions, Packet};

use crate::problem::Problem;

/// Largest `/decode` body in bytes (256 KiB).
pub const MAX_DECODE_BODY: usize = 256 * 1024;
/// Largest `/udp` body in bytes: the largest UDP payload (devices send about 1.3 KB).
pub const MAX_UDP_BODY: usize = 65_535;
/// Packets decoded per `/decode` request.
pub const MAX_DECODE_PACKETS: usize = 1_000;
/// AVL records decoded per `/decode` request.
pub const MAX_DECODE_RECORDS: usize = 2_000;

/// The `413` for a body over `cap` bytes on `route`.
pub fn body_too_large(route: &str, cap: usize) -> Problem {
    Problem::new(
        413,
        "body_too_large",
        format!("{route}: the body is larger than {cap} bytes, the most this route reads"),
    )
}

/// Decode `bytes` packet by packet, like `fleetview::decode_each`, within the work bounds:
/// every result (the last may be an error), or the `413` naming the bound and the byte offset
/// where decoding stopped.
pub fn decode_bounded(
    bytes: &[u8],
    opts: &DecodeOptions,
) -> Result<Vec<Result<Packet, DecodeError>>, Problem> {
    let mut out = Vec::new();
    let mut records = 0usize;
    for result in fleetview::decode_each(bytes, opts) {
        if let Ok(p) = &result {
            if out.len() == MAX_DECODE_PACKETS {
                return Err(too_much(format!(
                    "more than {MAX_DECODE_PACKETS} packets (packet {} starts at byte {})",
                    MAX_DECODE_PACKETS + 1,
                    p.offset
                )));
            }
            records += p.records().len();
            if records > MAX_DECODE_RECORDS {
                return Err(too_much(format!(
                    "more than {MAX_DECODE_RECORDS} records (reached in the packet at byte {})",
                    p.offset
                )));
            }
        }
        out.push(result);
    }
    Ok(out)
}

fn too_much(what: String) -> Problem {
    Problem::new(
        413,
        "too_much_to_decode",
        format!(
            "POST /decode: the input holds {what}; one request decodes at most {MAX_DECODE_PACKETS} packets \
             and {MAX_DECODE_RECORDS} records: split it, or use `fleetview decode` for whole captures"
        ),
    )
}

#[cfg(test)]
mod tests {
    use fleetview::{AvlData, AvlRecord, Codec, GpsElement, Priority};

    use super::*;

    fn frame(n: usize) -> Vec<u8> {
        let record = |i: usize| AvlRecord {
            timestamp_ms: 1_560_000_000_000 + i as u64 * 1000,
            priority: Priority(0),
            gps: GpsElement {
                longitude: 0,
                latitude: 0,
                altitude: 0,
                angle: 0,
                satellites: 0,
                speed: 0,
            },
            event_id: 0,
            generation_type: None,
            io: Vec::new(),
        };
        fleetview::encode::avl_frame(&AvlData::new(Codec::Codec8, (0..n).map(record).collect()))
            .unwrap()
    }

    #[test]
    fn packets_are_bounded() {
        let opts = DecodeOptions::default();
        let keepalives = vec![0xFF; MAX_DECODE_PACKETS];
        assert_eq!(
            decode_bounded(&keepalives, &opts).unwrap().len(),
            MAX_DECODE_PACKETS
        );
        let one_more = vec![0xFF; MAX_DECODE_PACKETS + 1];
        let e = decode_bounded(&one_more, &opts).unwrap_err();
        assert_eq!((e.status, e.kind), (413, "too_much_to_decode"));
        assert!(
            e.message.contains("packet 1001 starts at byte 1000"),
            "{}",
            e.message
        );
    }

    #[test]
    fn records_are_bounded() {
        let opts = DecodeOptions::default();
        let f = frame(200);
        let ten = f.repeat(10);
        assert_eq!(decode_bounded(&ten, &opts).unwrap().len(), 10);
        let eleven = f.repeat(11);
        assert!(
            eleven.len() < MAX_DECODE_BODY / 2,
            "fits the body cap as hex"
        );
        let e = decode_bounded(&eleven, &opts).unwrap_err();
        assert_eq!(e.status, 413);
        assert!(
            e.message
                .contains(&format!("reached in the packet at byte {}", f.len() * 10)),
            "{}",
            e.message
        );
    }

    #[test]
    fn errors_end_the_list_as_before() {
        let opts = DecodeOptions::default();
        let mut bytes = vec![0xFF];
        bytes.extend_from_slice(b"\x00\x00\x00\x00\x00\x00\x00\x01\x99");
        let out = decode_bounded(&bytes, &opts).unwrap();
        assert!(out[0].is_ok());
        assert!(out.last().unwrap().is_err());
    }
}
