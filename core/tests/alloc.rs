//! No input makes the decoders allocate more than a small multiple of its own size.
//!
//! A counting global allocator records, per thread, the bytes live at the peak and the bytes
//! requested in total while one call runs. Inputs: seeded random bytes, mutations of valid frames
//! of every codec and transport, and adversarial headers (huge declared counts and lengths over
//! tiny bodies). Bounds: `peak` and `total` ≤ K × input length + C for `decode` (strict and
//! lenient), `udp::decode_datagram`, `decode_bare`, the borrowed view (which allocates nothing on
//! valid input) and `Session::handle_input` (fed whole and in small pieces, events drained).
//!
//! The factor comes from the owned model, not from declared sizes: a Codec 8 IO element of two
//! wire bytes becomes a 32-byte `IoElement` (K = 64 for everything that decodes records), and a
//! lone `0xFF` keep-alive byte a whole 128-byte `Packet` in what `decode` returns (4 × that for
//! `decode`). The test prints the worst ratio seen for each decoder.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use fleetview::encode::{avl_datagram, avl_frame, command_frame, wrap_frame};
use fleetview::view::{AvlDataView, FrameView};
use fleetview::{
    decode, decode_bare, udp, AvlData, AvlRecord, Codec, CommandPacket, DecodeOptions, Event,
    GenerationType, GpsElement, Imei, IoElement, IoValue, Packet, Priority, Session,
};

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn grow(n: usize) {
    // try_with: the thread-locals may be gone while a thread shuts down.
    let _ = LIVE.try_with(|l| {
        let live = l.get() + n;
        l.set(live);
        let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
    });
    let _ = TOTAL.try_with(|t| t.set(t.get() + n));
}

fn shrink(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: same layout, as the caller guarantees for us.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as a new block while the old one is live: the worst case of a moving realloc.
        grow(new_size);
        shrink(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak live bytes above the level at the call, and all bytes requested, while `f` runs
/// (including dropping its result).
fn measure<R>(f: impl FnOnce() -> R) -> (usize, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let total0 = TOTAL.with(Cell::get);
    drop(f());
    let peak = PEAK.with(Cell::get) - base;
    (peak, TOTAL.with(Cell::get) - total0)
}

/// Bytes per input byte allowed where records are decoded (`decode_bare`, datagrams, the view),
/// and a constant for the fixed structures of one call.
const K: usize = 64;
const C: usize = 16 * 1024;
/// For `decode`, where a single `0xFF` keep-alive byte is a whole `Packet` of output: four
/// packets per byte, room for `Vec` doubling. (The session queues runs of keep-alives as one
/// entry, so it stays within `K`.)
fn k_stream() -> usize {
    4 * size_of::<Packet>()
}

struct Worst {
    name: &'static str,
    k: usize,
    peak: f64,
    total: f64,
}

impl Worst {
    fn new(name: &'static str, k: usize) -> Self {
        Self {
            name,
            k,
            peak: 0.0,
            total: 0.0,
        }
    }

    /// `peak` ≤ k × input + C; `total` ≤ 2 × that, because invalid input is decoded twice: by
    /// the fast path, which gives up at the first problem, then by the reader that names it.
    fn check(&mut self, input: &[u8], (peak, total): (usize, usize)) {
        let bound = self.k * input.len() + C;
        assert!(
            peak <= bound && total <= 2 * bound,
            "{}: {} input bytes, peak {peak} total {total}, bound {bound}: {:02x?}",
            self.name,
            input.len(),
            &input[..input.len().min(64)]
        );
        if input.len() >= 64 {
            let n = input.len() as f64;
            self.peak = self.peak.max(peak as f64 / n);
            self.total = self.total.max(total as f64 / n);
        }
    }
}

/// Every decoder on one input.
fn run_all(input: &[u8], worst: &mut [Worst; 6]) {
    for opts in [DecodeOptions::default(), DecodeOptions::lenient()] {
        worst[0].check(input, measure(|| decode(input, &opts)));
        worst[1].check(input, measure(|| udp::decode_datagram(input, &opts)));
        worst[2].check(input, measure(|| decode_bare(input, &opts)));
    }
    worst[3].check(
        input,
        measure(|| {
            (
                AvlDataView::parse(input).is_ok(),
                FrameView::parse(input).is_ok(),
            )
        }),
    );
    worst[4].check(input, measure(|| session(input, &[input])));
    let pieces: Vec<&[u8]> = input.chunks(7).collect();
    worst[5].check(input, measure(|| session(input, &pieces)));
}

/// A session fed a login and then `pieces`, draining events and transmits after each piece.
fn session(_input: &[u8], pieces: &[&[u8]]) -> usize {
    let mut s = Session::new(DecodeOptions::default());
    let mut n = 0;
    for login in [&Imei::new("356307042441013").unwrap().login_frame()[..]] {
        let _ = s.handle_input(login);
        while let Some(e) = s.poll_event() {
            if matches!(e, Event::Login(_)) {
                s.accept_imei(true);
            }
        }
    }
    for p in pieces {
        if s.handle_input(p).is_err() {
            break;
        }
        while let Some(e) = s.poll_event() {
            n += 1;
            if let Event::Records(p) = e {
                s.ack(p.records().len() as u32);
            }
        }
        while s.poll_transmit().is_some() {}
    }
    n
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn record(rng: &mut Rng, codec: Codec) -> AvlRecord {
    let max_id = if codec == Codec::Codec8 { 255 } else { 65_535 };
    let mut io: Vec<IoElement> = (0..rng.below(20))
        .map(|_| IoElement {
            id: rng.below(max_id + 1) as u16,
            value: match rng.below(if codec == Codec::Codec8Ext { 5 } else { 4 }) {
                0 => IoValue::U8(rng.next() as u8),
                1 => IoValue::U16(rng.next() as u16),
                2 => IoValue::U32(rng.next() as u32),
                3 => IoValue::U64(rng.next()),
                _ => IoValue::Bytes((0..rng.below(9)).map(|i| i as u8).collect()),
            },
        })
        .collect();
    if codec == Codec::Codec7 {
        io.retain(|e| e.id < 256 && !matches!(e.value, IoValue::U64(_) | IoValue::Bytes(_)));
    }
    io.sort_by_key(|e| e.value.size().min(9));
    AvlRecord {
        timestamp_ms: 1_200_000_000_000 + rng.below(1 << 29) * 1000,
        priority: Priority(rng.below(3) as u8),
        gps: GpsElement {
            longitude: rng.next() as i32 / 2,
            latitude: rng.next() as i32 / 4,
            altitude: rng.next() as i16,
            angle: rng.below(360) as u16,
            satellites: rng.next() as u8,
            speed: rng.below(256) as u16,
        },
        event_id: 0,
        generation_type: (codec == Codec::Codec16).then_some(GenerationType(rng.below(8) as u8)),
        io,
    }
}

/// Valid encodings of every kind: TCP AVL frames, datagrams, bare arrays, command frames.
fn valid(rng: &mut Rng) -> Vec<u8> {
    let codec = [
        Codec::Codec7,
        Codec::Codec8,
        Codec::Codec8Ext,
        Codec::Codec16,
    ][rng.below(4) as usize];
    let data = AvlData::new(
        codec,
        (0..1 + rng.below(8)).map(|_| record(rng, codec)).collect(),
    );
    match rng.below(5) {
        0 | 1 => avl_frame(&data).unwrap(),
        2 => avl_datagram(
            &Imei::new("352093086403655").unwrap(),
            0xCAFE,
            rng.next() as u8,
            &data,
        )
        .unwrap(),
        3 => data.encode().unwrap(),
        _ => command_frame(&CommandPacket::codec12("getinfo")).unwrap(),
    }
}

fn mutate(rng: &mut Rng, mut v: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            break;
        }
        let i = rng.below(v.len() as u64) as usize;
        match rng.below(4) {
            0 => v[i] = rng.next() as u8,
            1 => v[i] = 0xFF,
            2 => v.truncate(i),
            _ => v[i] ^= 1 << rng.below(8),
        }
    }
    v
}

fn report(worst: &[Worst]) {
    for w in worst {
        println!(
            "{:<24} worst bytes per input byte (inputs ≥ 64 bytes): peak {:>6.1}, total {:>6.1}; bound {}",
            w.name, w.peak, w.total, w.k
        );
    }
}

fn worst() -> [Worst; 6] {
    [
        Worst::new("decode", k_stream()),
        Worst::new("udp::decode_datagram", K),
        Worst::new("decode_bare", K),
        Worst::new("view", K),
        Worst::new("session (whole)", K),
        Worst::new("session (7-byte pieces)", K),
    ]
}

#[test]
fn random_and_mutated_inputs_allocate_linearly() {
    let mut worst = worst();
    let mut rng = Rng(0xA110C);
    for _ in 0..1500 {
        let len = rng.below(600) as usize;
        let random: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        run_all(&random, &mut worst);
        let v = valid(&mut rng);
        run_all(&v, &mut worst);
        let m = mutate(&mut rng, v);
        run_all(&m, &mut worst);
        // Several units back to back, as a stream carries them.
        let mut stream = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let v = valid(&mut rng);
            stream.extend_from_slice(&mutate(&mut rng, v));
        }
        run_all(&stream, &mut worst);
    }
    report(&worst);
}

/// Declared sizes far beyond the bytes present: the allocation follows the bytes.
#[test]
fn huge_declared_counts_and_lengths_allocate_by_the_bytes_present() {
    let mut worst = worst();
    let head = [0u8; 24];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    // 255 records declared, none present; with a valid CRC so the body is reached.
    for codec in [0x07u8, 0x08, 0x8E, 0x10] {
        inputs.push(wrap_frame(&[codec, 0xFF, 0xFF]));
        inputs.push(vec![codec, 0xFF, 0xFF]);
    }
    // A record whose IO groups declare the maximum counts over an empty body.
    let mut c8 = vec![0x08, 0x01];
    c8.extend_from_slice(&head);
    c8.extend_from_slice(&[0x00, 0xFF, 0xFF, 0xFF]);
    inputs.push(wrap_frame(&c8));
    let mut c8e = vec![0x8E, 0x01];
    c8e.extend_from_slice(&head);
    c8e.extend_from_slice(&[
        0, 0, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 1, 0xFF, 0xFF,
    ]);
    inputs.push(wrap_frame(&c8e));
    inputs.push(c8e.clone());
    // NX elements of zero length, as many as fit: the densest owned expansion of 8E.
    let mut nx = vec![0x8E, 0x01];
    nx.extend_from_slice(&head);
    let n: u16 = 4000;
    nx.extend_from_slice(&[0, 0]);
    nx.extend_from_slice(&n.to_be_bytes());
    nx.extend_from_slice(&[0; 8]);
    nx.extend_from_slice(&n.to_be_bytes());
    for i in 0..n {
        nx.extend_from_slice(&i.to_be_bytes());
        nx.extend_from_slice(&[0, 0]);
    }
    nx.push(0x01);
    inputs.push(wrap_frame(&nx));
    inputs.push(nx);
    // Codec 8 records of 1-byte values: 2 wire bytes per 32-byte element.
    let mut dense = vec![0x08, 0x01];
    dense.extend_from_slice(&head);
    dense.extend_from_slice(&[0, 255, 255]);
    for i in 0..255u8 {
        dense.extend_from_slice(&[i, i]);
    }
    dense.extend_from_slice(&[0, 0, 0, 0x01]);
    inputs.push(wrap_frame(&dense));
    inputs.push(dense);
    // Command frames: 255 messages of 4 GiB declared.
    for codec in [0x0Cu8, 0x0D, 0x0E, 0x0F] {
        inputs.push(wrap_frame(&[
            codec, 0xFF, 0x05, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
        ]));
    }
    // A 4 GiB data field declared in a frame header; and 64 KiB.
    inputs.push(vec![0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x08, 0x01]);
    inputs.push(vec![0, 0, 0, 0, 0x00, 0x01, 0x00, 0x00, 0x08, 0x01]);
    // A datagram declaring a long IMEI and a long body.
    inputs.push(vec![0xFF, 0xFF, 0xCA, 0xFE, 0x01, 0x05, 0xFF, 0xFF, 0x33]);
    // An IMEI login declaring 65535 digits.
    inputs.push(vec![0xFF, 0xFF, 0x33, 0x35]);
    // Keep-alives: one owned packet, or one session event, per input byte.
    inputs.push(vec![0xFF; 4096]);
    let mut after_login = Imei::new("356307042441013").unwrap().login_frame();
    after_login.extend_from_slice(&[0xFF; 4096]);
    inputs.push(after_login);
    for input in &inputs {
        run_all(input, &mut worst);
        for n in [1, 2, 3, 10, 17, 100] {
            if n < input.len() {
                run_all(&input[..input.len() - n], &mut worst);
            }
        }
    }
    report(&worst);
}

#[test]
fn the_borrowed_view_allocates_nothing_on_valid_input() {
    let mut rng = Rng(7);
    for _ in 0..300 {
        let codec = [Codec::Codec8, Codec::Codec8Ext, Codec::Codec16][rng.below(3) as usize];
        let data = AvlData::new(
            codec,
            (0..1 + rng.below(10))
                .map(|_| record(&mut rng, codec))
                .collect(),
        );
        let frame = avl_frame(&data).unwrap();
        let (peak, total) = measure(|| {
            let fleetview::Status::Complete(f, _) = FrameView::parse(&frame).unwrap() else {
                panic!("partial")
            };
            f.data()
                .records()
                .map(|r| {
                    r.io()
                        .map(|(id, v)| u64::from(id) + v.size() as u64)
                        .sum::<u64>()
                })
                .sum::<u64>()
        });
        assert_eq!((peak, total), (0, 0));
    }
}

#[test]
fn owned_packets_are_the_unit_of_expansion() {
    // Documents where K comes from: a keep-alive byte decodes to a whole Packet.
    println!("size_of Packet {}", size_of::<Packet>());
    println!("size_of Event {}", size_of::<Event>());
    println!("size_of IoElement {}", size_of::<IoElement>());
    assert!(size_of::<Packet>() <= 256, "K follows the size of a packet");
}

/// Composite values made of the smallest items their layouts allow (empty sensors, 2-byte
/// parameters, 18-byte beacons), whole and cut short: decoding them (and dropping what it
/// found) stays within the same bound.
#[test]
fn composite_values_allocate_by_the_bytes_present() {
    let mut worst = worst();
    let mut values: Vec<(u16, Vec<u8>)> = Vec::new();
    for n in [1usize, 100, 1000, 4000] {
        // Empty sensors: a length byte 0 each.
        values.push((548, [vec![1u8], vec![0u8; n]].concat()));
        // One sensor per 255 bytes of 2-byte unknown parameters.
        let mut list = vec![1u8];
        for _ in 0..n / 100 + 1 {
            list.push(254);
            list.extend(std::iter::repeat_n([0x14u8, 0], 127).flatten());
        }
        values.push((11317, list));
        // Eddystone beacons without RSSI: 17 bytes each.
        let mut beacons = vec![0x11u8];
        for _ in 0..n / 17 + 1 {
            beacons.extend_from_slice(&[0u8; 17]);
        }
        values.push((385, beacons));
        values.push((281, vec![b','; n]));
    }
    for (id, value) in values {
        for cut in [value.len(), value.len() / 2] {
            let record = AvlRecord {
                io: vec![IoElement {
                    id,
                    value: IoValue::Bytes(value[..cut].to_vec()),
                }],
                ..AvlRecord::default()
            };
            let frame = avl_frame(&AvlData::new(Codec::Codec8Ext, vec![record])).unwrap();
            run_all(&frame, &mut worst);
        }
    }
    report(&worst);
}
