//! `fleetview pcap` on a ~100 MB capture (not a timed test: it prints figures). Writes a
//! capture of many device sessions (500 connections open at a time, each a login and 30
//! frames of 10 Codec 8E records with their acks, Ethernet/IPv4/TCP), then runs the release
//! binary on it with `--progress` for each output format, and prints the elapsed time, the
//! throughput and the peak memory the binary reports (VmHWM, Linux).
//!
//! `make bench-pcap`, or `cargo bench -p fleetview --features cli --bench pcap`
//! (`FLEETVIEW_BENCH_PCAP=FILE` keeps the capture in FILE).

use std::io::{BufWriter, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use fleetview::avl::{AvlRecord, GpsElement, IoElement, IoValue, Priority};
use fleetview::{AvlData, Codec, Imei};

const TARGET_BYTES: u64 = 100_000_000;
const OPEN: usize = 500;
const FRAMES: usize = 30;
const RECORDS: usize = 10;

/// One device connection being written.
struct Conn {
    device: u32,
    step: usize,
    dev_seq: u32,
    srv_seq: u32,
    frames: Vec<Vec<u8>>,
    login: Vec<u8>,
}

struct Writer<W: Write> {
    out: W,
    time_us: u64,
    bytes: u64,
    packets: u64,
}

impl<W: Write> Writer<W> {
    fn header(&mut self) {
        let mut h = Vec::new();
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        self.write(&h);
    }

    fn write(&mut self, b: &[u8]) {
        self.out.write_all(b).unwrap();
        self.bytes += b.len() as u64;
    }

    /// Ethernet + IPv4 + TCP (ACK set) around `payload`.
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        ack: u32,
        syn: bool,
        fin: bool,
        payload: &[u8],
    ) {
        self.time_us += 37;
        let mut b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, seq, 64_240);
        if syn {
            b = b.syn();
        }
        if fin {
            b = b.fin();
        }
        b = b.ack(ack);
        let mut frame = Vec::with_capacity(payload.len() + 54);
        b.write(&mut frame, payload).unwrap();
        let mut rec = Vec::with_capacity(16);
        rec.extend_from_slice(&((self.time_us / 1_000_000) as u32 + 1_767_225_600).to_le_bytes());
        rec.extend_from_slice(&((self.time_us % 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.write(&rec);
        self.write(&frame);
        self.packets += 1;
    }
}

fn frames_of(device: u32) -> Vec<Vec<u8>> {
    (0..FRAMES)
        .map(|f| {
            let records = (0..RECORDS)
                .map(|r| {
                    let i = (f * RECORDS + r) as u64;
                    AvlRecord {
                        timestamp_ms: 1_767_225_600_000 + i * 1000,
                        priority: Priority(0),
                        gps: GpsElement {
                            longitude: 251_234_567 + (device as i32) * 10 + i as i32,
                            latitude: 546_789_012 - i as i32,
                            altitude: 120,
                            angle: (i * 7 % 360) as u16,
                            satellites: 11,
                            speed: (i % 90) as u16,
                        },
                        event_id: 0,
                        generation_type: None,
                        io: vec![
                            IoElement {
                                id: 239,
                                value: IoValue::U8(1),
                            },
                            IoElement {
                                id: 240,
                                value: IoValue::U8(1),
                            },
                            IoElement {
                                id: 21,
                                value: IoValue::U8(4),
                            },
                            IoElement {
                                id: 66,
                                value: IoValue::U16(12_400 + (i % 50) as u16),
                            },
                            IoElement {
                                id: 67,
                                value: IoValue::U16(4_100),
                            },
                            IoElement {
                                id: 16,
                                value: IoValue::U32(1_000_000 + i as u32 * 13),
                            },
                            IoElement {
                                id: 199,
                                value: IoValue::U32(i as u32 * 13),
                            },
                            IoElement {
                                id: 11,
                                value: IoValue::U64(0x0089_4400_1234_5678),
                            },
                        ],
                    }
                })
                .collect();
            fleetview::encode::avl_frame(&AvlData::new(Codec::Codec8Ext, records)).unwrap()
        })
        .collect()
}

fn imei(device: u32) -> Imei {
    Imei::new(&format!("35209308{device:07}")).unwrap()
}

/// Writes the capture; returns (bytes, packets, sessions, largest session's bytes).
fn generate(path: &std::path::Path) -> (u64, u64, u64, u64) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 20, file),
        time_us: 0,
        bytes: 0,
        packets: 0,
    };
    w.header();
    let server = ([10, 0, 0, 1], 5027);
    let mut next_device = 0u32;
    let mut conns: Vec<Conn> = Vec::new();
    let mut sessions = 0u64;
    let mut largest = 0u64;
    let new_conn = |device: u32| Conn {
        device,
        step: 0,
        dev_seq: device.wrapping_mul(2_654_435_761),
        srv_seq: device.wrapping_mul(40_503),
        frames: frames_of(device),
        login: imei(device).login_frame(),
    };
    while w.bytes < TARGET_BYTES || !conns.is_empty() {
        while conns.len() < OPEN && w.bytes < TARGET_BYTES {
            conns.push(new_conn(next_device));
            next_device += 1;
        }
        let mut i = 0;
        while i < conns.len() {
            let c = &mut conns[i];
            let dev = (
                [10, 1, (c.device >> 8) as u8, c.device as u8],
                40_000 + (c.device % 20_000) as u16,
            );
            // Steps: SYN, SYN-ACK, ACK, login, 01, then (frame, ack) × FRAMES, FIN, FIN, ACK.
            let s = c.step;
            match s {
                0 => {
                    w.tcp(dev, server, c.dev_seq, 0, true, false, &[]);
                    c.dev_seq = c.dev_seq.wrapping_add(1);
                }
                1 => {
                    w.tcp(server, dev, c.srv_seq, c.dev_seq, true, false, &[]);
                    c.srv_seq = c.srv_seq.wrapping_add(1);
                }
                2 => w.tcp(dev, server, c.dev_seq, c.srv_seq, false, false, &[]),
                3 => {
                    let login = c.login.clone();
                    w.tcp(dev, server, c.dev_seq, c.srv_seq, false, false, &login);
                    c.dev_seq = c.dev_seq.wrapping_add(login.len() as u32);
                }
                4 => {
                    w.tcp(server, dev, c.srv_seq, c.dev_seq, false, false, &[1]);
                    c.srv_seq = c.srv_seq.wrapping_add(1);
                }
                _ if s < 5 + 2 * FRAMES => {
                    let f = (s - 5) / 2;
                    if (s - 5) % 2 == 0 {
                        let frame = std::mem::take(&mut c.frames[f]);
                        w.tcp(dev, server, c.dev_seq, c.srv_seq, false, false, &frame);
                        c.dev_seq = c.dev_seq.wrapping_add(frame.len() as u32);
                    } else {
                        w.tcp(
                            server,
                            dev,
                            c.srv_seq,
                            c.dev_seq,
                            false,
                            false,
                            &(RECORDS as u32).to_be_bytes(),
                        );
                        c.srv_seq = c.srv_seq.wrapping_add(4);
                    }
                }
                _ if s == 5 + 2 * FRAMES => {
                    w.tcp(dev, server, c.dev_seq, c.srv_seq, false, true, &[]);
                    c.dev_seq = c.dev_seq.wrapping_add(1);
                }
                _ => {
                    w.tcp(server, dev, c.srv_seq, c.dev_seq, false, true, &[]);
                    c.srv_seq = c.srv_seq.wrapping_add(1);
                    sessions += 1;
                    let size =
                        u64::from(c.dev_seq.wrapping_sub(c.device.wrapping_mul(2_654_435_761)));
                    largest = largest.max(size);
                    conns.swap_remove(i);
                    continue;
                }
            }
            c.step += 1;
            i += 1;
        }
    }
    w.out.flush().unwrap();
    (w.bytes, w.packets, sessions, largest)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument other than "pcap" skips this bench.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && a != "pcap")
    {
        return;
    }
    // FLEETVIEW_BENCH_PCAP=FILE keeps the capture there (to profile, or to try it by hand).
    let keep = std::env::var_os("FLEETVIEW_BENCH_PCAP").map(std::path::PathBuf::from);
    let dir = std::env::temp_dir().join(format!("fleetview-bench-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = keep.clone().unwrap_or_else(|| dir.join("devices.pcap"));
    let t = Instant::now();
    let (bytes, packets, sessions, largest) = generate(&path);
    println!(
        "capture: {:.1} MB, {packets} packets, {sessions} TCP sessions ({OPEN} open at a time, {FRAMES} frames of {RECORDS} records each; largest device stream {:.1} KB), written in {:.1} s",
        bytes as f64 / 1e6,
        largest as f64 / 1e3,
        t.elapsed().as_secs_f64()
    );
    for format in ["json", "text"] {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_fleetview"))
            .args([
                "pcap",
                path.to_str().unwrap(),
                "--format",
                format,
                "--progress",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "fleetview pcap failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let peak = stderr
            .lines()
            .last()
            .and_then(|l| l.split("peak memory ").nth(1))
            .unwrap_or("unknown")
            .to_string();
        println!(
            "fleetview pcap --format {format:<4}: {:.1} MB in {secs:.2} s = {:.0} MB/s, peak RSS {peak}",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
