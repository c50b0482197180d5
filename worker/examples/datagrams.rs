//! Test and bench fixtures: UDP datagrams as devices send them, built with the core encoder
//! (`fleetview::encode::avl_datagram`), one JSON object per line on stdout:
//!
//! ```text
//! {"imei":"…","packet_id":…,"avl_packet_id":…,"hex":"…","ack":"0005…",
//!  "records":[{"timestamp_ms":…,"longitude":…,"latitude":…,"valid":true}]}
//! ```
//!
//! `ack` is computed from the generator's own ids and record count, not by decoding, so the
//! Worker's answer is checked against what a device expects. Deterministic for a given seed.
//!
//! ```text
//! cargo run -p fleetview-worker --example datagrams -- --devices 50 --count 1000 --seed 1
//! ```

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use fleetview::{
    AvlData, AvlRecord, Codec, GenerationType, GpsElement, Imei, IoElement, IoValue, Priority,
};

struct Options {
    devices: u64,
    count: u64,
    seed: u64,
    start_ms: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        devices: 50,
        count: 1000,
        seed: 1,
        start_ms: 1_700_000_000_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag} {value:?}: expected an unsigned integer"))?;
        match flag.as_str() {
            "--devices" if n > 0 => o.devices = n,
            "--count" => o.count = n,
            "--seed" => o.seed = n,
            "--start-ms" => o.start_ms = n,
            _ => return Err(format!("unknown or invalid argument {flag} {value}")),
        }
    }
    Ok(o)
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Device {
    imei: Imei,
    time_ms: u64,
    lon: i32,
    lat: i32,
    packet_id: u16,
    avl_packet_id: u8,
    odometer: u32,
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("datagrams: {e}");
            return ExitCode::from(2);
        }
    };
    let mut rng = Rng(o.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut devices: Vec<Device> = (0..o.devices)
        .map(|i| Device {
            // 15 digits, distinct per device.
            imei: Imei::new(&format!("35{:013}", 3_070_424_410 + i * 7919)).expect("15 digits"),
            time_ms: o.start_ms + i * 1000,
            lon: 252_560_283 + rng.below(2_000_000) as i32,
            lat: 546_674_250 + rng.below(1_000_000) as i32,
            packet_id: rng.below(0x10000) as u16,
            avl_packet_id: rng.below(256) as u8,
            odometer: rng.below(1_000_000) as u32,
        })
        .collect();
    let codecs = [Codec::Codec8, Codec::Codec8Ext, Codec::Codec16];
    let mut out = BufWriter::new(io::stdout().lock());
    for n in 0..o.count {
        let d = &mut devices[(n % o.devices) as usize];
        let codec = codecs[(n % 3) as usize];
        let batch = 1 + rng.below(4);
        let mut records = Vec::new();
        for _ in 0..batch {
            d.time_ms += 10_000 + rng.below(20_000);
            d.lon += rng.below(4001) as i32 - 2000;
            d.lat += rng.below(4001) as i32 - 2000;
            d.odometer += rng.below(300) as u32;
            // One record in ten has no fix, as after a cold start.
            let fix = rng.below(10) != 0;
            let mut io = vec![
                IoElement {
                    id: 239,
                    value: IoValue::U8(1),
                },
                IoElement {
                    id: 66,
                    value: IoValue::U16(12_000 + rng.below(2_000) as u16),
                },
                IoElement {
                    id: 16,
                    value: IoValue::U32(d.odometer),
                },
                IoElement {
                    id: 78,
                    value: IoValue::U64(rng.next()),
                },
            ];
            if codec == Codec::Codec8Ext {
                io.push(IoElement {
                    id: 385,
                    value: IoValue::Bytes((0..rng.below(12) as u8 + 1).collect()),
                });
            }
            records.push(AvlRecord {
                timestamp_ms: d.time_ms,
                priority: Priority(rng.below(2) as u8),
                gps: GpsElement {
                    longitude: if fix { d.lon } else { 0 },
                    latitude: if fix { d.lat } else { 0 },
                    altitude: 100 + rng.below(100) as i16,
                    angle: rng.below(360) as u16,
                    satellites: if fix { 5 + rng.below(10) as u8 } else { 0 },
                    speed: rng.below(120) as u16,
                },
                event_id: if rng.below(4) == 0 { 239 } else { 0 },
                generation_type: (codec == Codec::Codec16)
                    .then_some(GenerationType(rng.below(8) as u8)),
                io,
            });
        }
        d.packet_id = d.packet_id.wrapping_add(1);
        d.avl_packet_id = d.avl_packet_id.wrapping_add(1);
        let data = AvlData::new(codec, records);
        let bytes =
            match fleetview::encode::avl_datagram(&d.imei, d.packet_id, d.avl_packet_id, &data) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("datagrams: encoding datagram {n} failed: {e}");
                    return ExitCode::FAILURE;
                }
            };
        let ack = fleetview::udp::ack(d.packet_id, d.avl_packet_id, data.records.len() as u8);
        let records: Vec<serde_json::Value> = data
            .records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "timestamp_ms": r.timestamp_ms,
                    "longitude": r.gps.longitude_deg(),
                    "latitude": r.gps.latitude_deg(),
                    "valid": r.gps.has_fix(),
                })
            })
            .collect();
        let line = serde_json::json!({
            "imei": d.imei.as_str(),
            "packet_id": d.packet_id,
            "avl_packet_id": d.avl_packet_id,
            "codec": codec.name(),
            "hex": fleetview::hex::encode(&bytes),
            "ack": fleetview::hex::encode(&ack),
            "records": records,
        });
        if writeln!(out, "{line}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    if out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
