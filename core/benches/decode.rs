//! Decoding speed, against nom-teltonika 0.3 on the same frames in the same run.
//!
//! The corpus is built with fleetview's own encoder from a seeded generator: Codec 8, 8 Extended
//! and 16 frames of 1 to 50 records with 5 to 25 IO elements each (Codec 8 Extended with
//! variable-length NX values), priorities 0–2 (nom-teltonika rejects 3). Codec 8 and 8E frames
//! are cut to the 1280 bytes devices send at most (nom-teltonika enforces it); Codec 16 frames
//! may be larger. Three sets are measured: frames of at most 1280 bytes ("small"), Codec 8
//! frames of at most 1280 bytes ("codec8", the codec most devices send) and larger Codec 16
//! frames ("large").
//!
//! Groups: `owned_*` (frames to owned records), `walk_*` (borrowed zero-copy walk reading every
//! value), `crc` (CRC-16 alone), `session` (login and all frames fed in 1460-byte chunks),
//! `encode`. After criterion's report, a table of medians and ratios is printed from criterion's
//! estimates. Run: `make bench` (or `cargo bench -p fleetview --bench decode`).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput};
use fleetview::view::{FrameView, IoValueRef};
use fleetview::{
    decode_frame, AvlData, AvlRecord, Codec, DecodeOptions, Event, GenerationType, GpsElement,
    IoElement, IoValue, Priority, Session, Status,
};
use nom_teltonika::protocol::{FrameView as NomFrame, IoValueView};

/// SplitMix64: a small seeded generator, so every run measures the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn record(rng: &mut Rng, codec: Codec, t: u64) -> AvlRecord {
    let n_io = rng.range(5, 25) as usize;
    let max_id = if codec == Codec::Codec8 { 255 } else { 1500 };
    let io = (0..n_io)
        .map(|_| {
            let id = rng.range(1, max_id) as u16;
            let value = match rng.range(0, 99) {
                0..=44 => IoValue::U8(rng.next() as u8),
                45..=69 => IoValue::U16(rng.next() as u16),
                70..=84 => IoValue::U32(rng.next() as u32),
                85..=94 => IoValue::U64(rng.next()),
                _ if codec == Codec::Codec8Ext => {
                    let len = rng.range(0, 24) as usize;
                    IoValue::Bytes((0..len).map(|_| rng.next() as u8).collect())
                }
                _ => IoValue::U32(rng.next() as u32),
            };
            IoElement { id, value }
        })
        .collect::<Vec<_>>();
    // Group order, as the decoders return them.
    let mut io = io;
    io.sort_by_key(|e| match e.value {
        IoValue::U8(_) => 0,
        IoValue::U16(_) => 1,
        IoValue::U32(_) => 2,
        IoValue::U64(_) => 3,
        IoValue::Bytes(_) => 4,
    });
    AvlRecord {
        timestamp_ms: 1_700_000_000_000 + t * 10_000,
        priority: Priority(rng.range(0, 2) as u8),
        gps: GpsElement {
            longitude: (rng.range(0, 3_600_000_000) as i64 - 1_800_000_000) as i32,
            latitude: (rng.range(0, 1_800_000_000) as i64 - 900_000_000) as i32,
            altitude: rng.range(0, 3000) as i16,
            angle: rng.range(0, 359) as u16,
            satellites: rng.range(0, 20) as u8,
            speed: rng.range(0, 180) as u16,
        },
        event_id: if rng.range(0, 3) == 0 { io[0].id } else { 0 },
        generation_type: (codec == Codec::Codec16).then(|| GenerationType(rng.range(0, 7) as u8)),
        io,
    }
}

struct Corpus {
    small: Vec<Vec<u8>>,
    codec8: Vec<Vec<u8>>,
    large: Vec<Vec<u8>>,
    data: Vec<AvlData>,
}

fn corpus() -> Corpus {
    let mut rng = Rng(0x5EED_F1EE_7F1E_u64);
    let (mut small, mut large, mut data) = (Vec::new(), Vec::new(), Vec::new());
    while small.len() < 240 || large.len() < 60 {
        let codec = [Codec::Codec8, Codec::Codec8Ext, Codec::Codec16][rng.range(0, 2) as usize];
        let n = rng.range(1, 50);
        let mut d = AvlData::new(codec, (0..n).map(|t| record(&mut rng, codec, t)).collect());
        let mut frame = fleetview::encode::avl_frame(&d).expect("encodable");
        // Devices send at most 1280 bytes of Codec 8/8E; half the Codec 16 frames too.
        let capped = codec != Codec::Codec16 || rng.range(0, 1) == 0;
        while capped && frame.len() > 1280 && d.records.len() > 1 {
            d.records.pop();
            frame = fleetview::encode::avl_frame(&d).expect("encodable");
        }
        if frame.len() <= 1280 {
            if small.len() < 240 {
                small.push(frame);
                data.push(d);
            }
        } else if large.len() < 60 {
            large.push(frame);
            data.push(d);
        }
    }
    // Codec 8 only, from its own seed so that the other sets stay the same bytes.
    let mut rng = Rng(0xC0DE_C8C8_u64);
    let mut codec8 = Vec::new();
    while codec8.len() < 240 {
        let n = rng.range(1, 50);
        let mut d = AvlData::new(
            Codec::Codec8,
            (0..n).map(|t| record(&mut rng, Codec::Codec8, t)).collect(),
        );
        let mut frame = fleetview::encode::avl_frame(&d).expect("encodable");
        while frame.len() > 1280 && d.records.len() > 1 {
            d.records.pop();
            frame = fleetview::encode::avl_frame(&d).expect("encodable");
        }
        codec8.push(frame);
    }
    Corpus {
        small,
        codec8,
        large,
        data,
    }
}

fn bytes(frames: &[Vec<u8>]) -> u64 {
    frames.iter().map(|f| f.len() as u64).sum()
}

/// Fold every field of a borrowed record into a number, so nothing is optimised away. Both walks
/// read the IO elements the same way, through their iterator's `fold` (internal iteration, as
/// `for_each`, `sum` and `count` use it), which fleetview specialises.
fn walk_fleetview(frame: &[u8]) -> u64 {
    let Ok(Status::Complete(f, _)) = FrameView::parse(frame) else {
        panic!("valid frame")
    };
    let mut acc = 0u64;
    for r in f.data().records() {
        let g = r.gps();
        acc = acc
            .wrapping_add(r.timestamp_ms())
            .wrapping_add(u64::from(r.priority().0))
            .wrapping_add(g.longitude as u64)
            .wrapping_add(g.latitude as u64)
            .wrapping_add(g.altitude as u64)
            .wrapping_add(u64::from(g.angle))
            .wrapping_add(u64::from(g.satellites))
            .wrapping_add(u64::from(g.speed))
            .wrapping_add(u64::from(r.event_id()))
            .wrapping_add(r.generation_type().map_or(9, |g| u64::from(g.0)));
        acc = r.io().fold(acc, |acc, (id, v)| {
            acc.wrapping_add(u64::from(id)).wrapping_add(match v {
                IoValueRef::U8(v) => u64::from(v),
                IoValueRef::U16(v) => u64::from(v),
                IoValueRef::U32(v) => u64::from(v),
                IoValueRef::U64(v) => v,
                IoValueRef::Bytes(b) => black_box(b).len() as u64,
            })
        });
    }
    acc
}

/// The same fold over nom-teltonika's views.
fn walk_nom(frame: &[u8]) -> u64 {
    let Ok((_, NomFrame::Avl(p))) = nom_teltonika::decoder::parse_frame(frame) else {
        panic!("valid frame")
    };
    let mut acc = 0u64;
    for r in p.records() {
        let g = r.gps();
        acc = acc
            .wrapping_add(u64::from(r.timestamp()))
            .wrapping_add(u64::from(u8::from(r.priority())))
            .wrapping_add(g.longitude_raw as u64)
            .wrapping_add(g.latitude_raw as u64)
            .wrapping_add(u64::from(g.altitude_meters))
            .wrapping_add(u64::from(g.angle_degrees))
            .wrapping_add(u64::from(g.satellites))
            .wrapping_add(u64::from(g.speed_kph))
            .wrapping_add(r.event_io_id().map_or(0, |i| u64::from(u16::from(i))))
            .wrapping_add(r.generation_type().map_or(9, |g| u64::from(u8::from(g))));
        acc = r.io_elements().fold(acc, |acc, e| {
            acc.wrapping_add(u64::from(u16::from(e.id())))
                .wrapping_add(match e.value() {
                    IoValueView::U8(v) => u64::from(v),
                    IoValueView::U16(v) => u64::from(v),
                    IoValueView::U32(v) => u64::from(v),
                    IoValueView::U64(v) => v,
                    IoValueView::Bytes(b) => black_box(b).len() as u64,
                })
        });
    }
    acc
}

fn owned_fleetview(frame: &[u8], opts: &DecodeOptions) -> fleetview::Packet {
    match decode_frame(frame, opts) {
        Ok(Status::Complete(p, _)) => p,
        other => panic!("valid frame: {other:?}"),
    }
}

fn owned_nom(frame: &[u8]) -> nom_teltonika::protocol::Frame {
    nom_teltonika::decoder::parse_frame(frame)
        .expect("valid frame")
        .1
        .evaluate()
}

/// Both decoders agree on every frame of the corpus before anything is timed.
fn check(c: &Corpus) {
    for frame in c.small.iter().chain(&c.codec8).chain(&c.large) {
        assert_eq!(walk_fleetview(frame), walk_nom(frame));
        let ours = owned_fleetview(frame, &DecodeOptions::default());
        let nom_teltonika::protocol::Frame::Avl(theirs) = owned_nom(frame) else {
            panic!("AVL")
        };
        assert_eq!(ours.records().len(), theirs.records().len());
        for (a, b) in ours.records().iter().zip(theirs.records()) {
            assert_eq!(a.timestamp_ms, u64::from(b.timestamp()));
            assert_eq!(a.io.len(), b.io_elements().len());
        }
    }
}

fn session(stream: &[u8]) -> usize {
    let mut s = Session::new(DecodeOptions::default());
    let mut records = 0;
    for chunk in stream.chunks(1460) {
        s.handle_input(chunk).expect("valid stream");
        while let Some(e) = s.poll_event() {
            match e {
                Event::Login(_) => s.accept_imei(true),
                Event::Records(p) => {
                    records += p.records().len();
                    s.ack(p.records().len() as u32);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        while let Some(t) = s.poll_transmit() {
            black_box(t);
        }
    }
    records
}

fn benches(c: &mut Criterion, corpus: &Corpus) {
    let opts = DecodeOptions::default();
    for (name, frames) in [
        ("small", &corpus.small),
        ("codec8", &corpus.codec8),
        ("large", &corpus.large),
    ] {
        let mut g = c.benchmark_group(format!("owned_{name}"));
        g.throughput(Throughput::Bytes(bytes(frames)));
        g.bench_function("fleetview", |b| {
            b.iter(|| {
                for f in frames {
                    black_box(owned_fleetview(black_box(f), &opts));
                }
            })
        });
        g.bench_function("nom-teltonika", |b| {
            b.iter(|| {
                for f in frames {
                    black_box(owned_nom(black_box(f)));
                }
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("walk_{name}"));
        g.throughput(Throughput::Bytes(bytes(frames)));
        g.bench_function("fleetview", |b| {
            b.iter(|| {
                frames
                    .iter()
                    .fold(0u64, |a, f| a.wrapping_add(walk_fleetview(black_box(f))))
            })
        });
        g.bench_function("nom-teltonika", |b| {
            b.iter(|| {
                frames
                    .iter()
                    .fold(0u64, |a, f| a.wrapping_add(walk_nom(black_box(f))))
            })
        });
        g.finish();
    }

    for size in [1024usize, 65_536] {
        let data: Vec<u8> = (0..size).map(|i| (i * 131 + i / 7) as u8).collect();
        let mut g = c.benchmark_group(format!("crc_{size}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("fleetview", |b| {
            b.iter(|| fleetview::crc16(black_box(&data)))
        });
        g.bench_function("nom-teltonika", |b| {
            b.iter(|| nom_teltonika::crc16(black_box(&data)))
        });
        g.finish();
    }

    let mut stream = fleetview::Imei::new("356307042441013")
        .expect("imei")
        .login_frame();
    for f in corpus.small.iter().chain(&corpus.large) {
        stream.extend_from_slice(f);
    }
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("fleetview", |b| b.iter(|| session(black_box(&stream))));
    g.finish();

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(
        bytes(&corpus.small) + bytes(&corpus.large),
    ));
    g.bench_function("fleetview", |b| {
        b.iter(|| {
            for d in &corpus.data {
                black_box(fleetview::encode::avl_frame(black_box(d)).expect("encodable"));
            }
        })
    });
    g.finish();
}

/// Where criterion writes its estimates: the logic of criterion itself (CRITERION_HOME, the
/// cargo target directory), found from this executable's path (`<target>/release/deps/…`).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|t| t.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Median in nanoseconds from `<group>/<function>/new/estimates.json`, if written by this run.
fn median(group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let meta = std::fs::metadata(&path).ok()?;
    if meta.modified().ok()? < since {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn summary(corpus: &Corpus, since: SystemTime) {
    let gb = |bytes: u64, ns: f64| bytes as f64 / ns; // bytes per ns = GB/s
    let mut lines = Vec::new();
    for (name, frames, what) in [
        ("small", &corpus.small, "frames ≤ 1280 B"),
        ("codec8", &corpus.codec8, "Codec 8 frames ≤ 1280 B"),
        ("large", &corpus.large, "Codec 16 frames > 1280 B"),
    ] {
        let n = bytes(frames);
        for (kind, goal) in [("owned", 2.5), ("walk", 2.0)] {
            let group = format!("{kind}_{name}");
            let (Some(ours), Some(theirs)) = (
                median(&group, "fleetview", since),
                median(&group, "nom-teltonika", since),
            ) else {
                continue;
            };
            lines.push(format!(
                "| {kind:<7} | {what:<26} | {:>9.1} µs {:>6.2} GB/s | {:>9.1} µs {:>6.2} GB/s | {:>5.2}× | ≥ {goal}× {} |",
                ours / 1e3,
                gb(n, ours),
                theirs / 1e3,
                gb(n, theirs),
                theirs / ours,
                if theirs / ours >= goal { "met" } else { "MISSED" },
            ));
        }
    }
    for size in [1024u64, 65_536] {
        let group = format!("crc_{size}");
        if let (Some(ours), Some(theirs)) = (
            median(&group, "fleetview", since),
            median(&group, "nom-teltonika", since),
        ) {
            lines.push(format!(
                "| crc     | {:<26} | {:>9.3} µs {:>6.2} GB/s | {:>9.3} µs {:>6.2} GB/s | {:>5.2}× | ≥ 2 GB/s {} |",
                format!("{size} bytes"),
                ours / 1e3,
                gb(size, ours),
                theirs / 1e3,
                gb(size, theirs),
                theirs / ours,
                if gb(size, ours) >= 2.0 { "met" } else { "MISSED" },
            ));
        }
    }
    let total = bytes(&corpus.small) + bytes(&corpus.large);
    let stream = total + 17;
    for (group, what, n) in [
        ("session", "login + frames, 1460 B", stream),
        ("encode", "all frames", total),
    ] {
        if let Some(ours) = median(group, "fleetview", since) {
            lines.push(format!(
                "| {group:<7} | {what:<26} | {:>9.1} µs {:>6.2} GB/s | {:>24} | {:>6} | |",
                ours / 1e3,
                gb(n, ours),
                "",
                ""
            ));
        }
    }
    if lines.is_empty() {
        return;
    }
    let records: usize = corpus.data.iter().map(|d| d.records.len()).sum();
    println!();
    println!(
        "Medians (criterion) on {} small + {} Codec 8 + {} large frames ({} records, {} bytes in small + large):",
        corpus.small.len(),
        corpus.codec8.len(),
        corpus.large.len(),
        records,
        total
    );
    println!("| bench   | input                      | fleetview                 | nom-teltonika 0.3         | ratio  | goal |");
    println!("|---------|----------------------------|---------------------------|---------------------------|--------|------|");
    for l in lines {
        println!("{l}");
    }
}

/// `FLEETVIEW_PROFILE=<group>/<function>`: run that workload a fixed number of times
/// (`FLEETVIEW_PROFILE_ITERS`, default 20) without criterion, for
/// `valgrind --tool=callgrind`, whose instruction counts stay repeatable on a loaded machine.
#[inline(never)]
fn profile(name: &str, corpus: &Corpus, data: &[u8]) {
    let iters: usize = std::env::var("FLEETVIEW_PROFILE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let opts = DecodeOptions::default();
    let set = |n: &str| {
        if n.contains("large") {
            &corpus.large
        } else if n.contains("codec8") {
            &corpus.codec8
        } else {
            &corpus.small
        }
    };
    for _ in 0..iters {
        match name {
            n if n.starts_with("owned") && n.ends_with("/fleetview") => {
                for f in set(n) {
                    black_box(owned_fleetview(black_box(f), &opts));
                }
            }
            n if n.starts_with("owned") => {
                for f in set(n) {
                    black_box(owned_nom(black_box(f)));
                }
            }
            n if n.starts_with("walk") && n.ends_with("/fleetview") => {
                for f in set(n) {
                    black_box(walk_fleetview(black_box(f)));
                }
            }
            n if n.starts_with("walk") => {
                for f in set(n) {
                    black_box(walk_nom(black_box(f)));
                }
            }
            "crc/fleetview" => {
                black_box(fleetview::crc16(black_box(data)));
            }
            "crc/nom-teltonika" => {
                black_box(nom_teltonika::crc16(black_box(data)));
            }
            "session/fleetview" => {
                let mut stream = fleetview::Imei::new("356307042441013")
                    .expect("imei")
                    .login_frame();
                for f in corpus.small.iter().chain(&corpus.large) {
                    stream.extend_from_slice(f);
                }
                black_box(session(black_box(&stream)));
            }
            "encode/fleetview" => {
                for d in &corpus.data {
                    black_box(fleetview::encode::avl_frame(black_box(d)).expect("encodable"));
                }
            }
            other => panic!("unknown workload {other}"),
        }
    }
}

fn main() {
    let since = SystemTime::now() - Duration::from_secs(1);
    let corpus = corpus();
    check(&corpus);
    if let Ok(name) = std::env::var("FLEETVIEW_PROFILE") {
        let data: Vec<u8> = (0..65_536usize).map(|i| (i * 131 + i / 7) as u8).collect();
        profile(&name, &corpus, &data);
        return;
    }
    let mut c = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut c, &corpus);
    c.final_summary();
    summary(&corpus, since);
}
