//! Property tests: encode → decode gives back the input for every codec and transport; a byte
//! stream cut at random points into a `Session` gives the same events as one-shot decoding;
//! truncated or random input never panics.

use fleetview::codec7::{Codec7Fields, GH3000_EPOCH_S};
use fleetview::encode::{avl_datagram, avl_frame, command_frame};
use fleetview::{
    decode, decode_bare, decode_frame, udp, AvlData, AvlRecord, Codec, CommandMessage,
    CommandPacket, Content, DecodeOptions, Event, GenerationType, GpsElement, Imei, IoElement,
    IoValue, Priority, Session, Status,
};
use proptest::prelude::*;

fn gps() -> impl Strategy<Value = GpsElement> {
    (
        -1_800_000_000i32..=1_800_000_000,
        -900_000_000i32..=900_000_000,
        any::<i16>(),
        0u16..360,
        any::<u8>(),
        any::<u16>(),
    )
        .prop_map(
            |(longitude, latitude, altitude, angle, satellites, speed)| GpsElement {
                longitude,
                latitude,
                altitude,
                angle,
                satellites,
                speed,
            },
        )
}

/// IO elements grouped as on the wire (1, 2, 4, 8 bytes, then variable).
fn io(
    max_id: u16,
    max_per_group: usize,
    nx: bool,
    eight: bool,
) -> impl Strategy<Value = Vec<IoElement>> {
    let id = 0..=max_id;
    let g1 = prop::collection::vec((id.clone(), any::<u8>()), 0..=max_per_group);
    let g2 = prop::collection::vec((id.clone(), any::<u16>()), 0..=max_per_group);
    let g4 = prop::collection::vec((id.clone(), any::<u32>()), 0..=max_per_group);
    let g8 = prop::collection::vec(
        (id.clone(), any::<u64>()),
        0..=if eight { max_per_group } else { 0 },
    );
    let gx = prop::collection::vec(
        (id, prop::collection::vec(any::<u8>(), 0..40)),
        0..=if nx { max_per_group } else { 0 },
    );
    (g1, g2, g4, g8, gx).prop_map(|(g1, g2, g4, g8, gx)| {
        let mut v = Vec::new();
        v.extend(g1.into_iter().map(|(id, x)| IoElement {
            id,
            value: IoValue::U8(x),
        }));
        v.extend(g2.into_iter().map(|(id, x)| IoElement {
            id,
            value: IoValue::U16(x),
        }));
        v.extend(g4.into_iter().map(|(id, x)| IoElement {
            id,
            value: IoValue::U32(x),
        }));
        v.extend(g8.into_iter().map(|(id, x)| IoElement {
            id,
            value: IoValue::U64(x),
        }));
        v.extend(gx.into_iter().map(|(id, x)| IoElement {
            id,
            value: IoValue::Bytes(x),
        }));
        v
    })
}

fn record(codec: Codec) -> BoxedStrategy<AvlRecord> {
    let (max_id, nx) = match codec {
        Codec::Codec8 => (255, false),
        Codec::Codec8Ext => (u16::MAX, true),
        _ => (u16::MAX, false),
    };
    let max_event = if codec == Codec::Codec8 {
        255
    } else {
        u16::MAX
    };
    (
        any::<u64>(),
        0u8..=3,
        gps(),
        0..=max_event,
        0u8..=7,
        io(max_id, 6, nx, true),
    )
        .prop_map(move |(timestamp_ms, p, gps, event_id, g, io)| AvlRecord {
            timestamp_ms,
            priority: Priority(p),
            gps,
            event_id,
            generation_type: (codec == Codec::Codec16).then_some(GenerationType(g)),
            io,
        })
        .boxed()
}

fn avl_data() -> impl Strategy<Value = AvlData> {
    prop_oneof![
        Just(Codec::Codec8),
        Just(Codec::Codec8Ext),
        Just(Codec::Codec16)
    ]
    .prop_flat_map(|codec| {
        prop::collection::vec(record(codec), 0..6)
            .prop_map(move |records| AvlData::new(codec, records))
    })
}

fn codec7_record() -> impl Strategy<Value = (AvlRecord, Codec7Fields)> {
    (
        0u64..0x3FFF_FFFF,
        0u8..=3,
        any::<bool>(),
        any::<u8>(),
        (-90.0f32..90.0, -180.0f32..180.0),
        any::<u8>(),
        (any::<u16>(), any::<u16>(), any::<u8>(), any::<u32>()),
        (any::<i16>(), 0u16..=255, any::<u8>()),
        io(255, 5, false, false),
    )
        .prop_map(
            |(
                secs,
                p,
                has_gps,
                gps_mask,
                coords,
                angle_raw,
                (lac, cell, sq, op),
                (alt, speed, sats),
                io,
            )| {
                let fields = Codec7Fields {
                    global_mask: u8::from(has_gps),
                    gps_mask,
                    coordinates: Some(coords),
                    angle_raw,
                    cell: Some((lac, cell)),
                    signal_quality: Some(sq),
                    operator: Some(op),
                };
                let record = AvlRecord {
                    timestamp_ms: (secs + GH3000_EPOCH_S) * 1000,
                    priority: Priority(p),
                    gps: GpsElement {
                        altitude: alt,
                        speed,
                        satellites: sats,
                        ..GpsElement::default()
                    },
                    io,
                    ..AvlRecord::default()
                };
                (record, fields)
            },
        )
}

fn imei() -> impl Strategy<Value = Imei> {
    "[0-9]{15}".prop_map(|s| Imei::new(&s).unwrap())
}

fn command_packet() -> impl Strategy<Value = CommandPacket> {
    let codec = prop_oneof![
        Just(Codec::Codec12),
        Just(Codec::Codec13),
        Just(Codec::Codec14),
        Just(Codec::Codec15)
    ];
    (
        codec,
        prop::collection::vec(
            (
                any::<u8>(),
                any::<u32>(),
                "[0-9]{15}",
                prop::collection::vec(any::<u8>(), 0..60),
            ),
            1..4,
        ),
    )
        .prop_map(|(codec, msgs)| CommandPacket {
            codec,
            messages: msgs
                .into_iter()
                .map(|(kind, ts, imei, payload)| CommandMessage {
                    kind,
                    timestamp_s: matches!(codec, Codec::Codec13 | Codec::Codec15).then_some(ts),
                    imei: matches!(codec, Codec::Codec14 | Codec::Codec15)
                        .then(|| Imei::new(&imei).unwrap().to_bcd().unwrap()),
                    payload,
                })
                .collect(),
        })
}

fn one(bytes: &[u8]) -> fleetview::Packet {
    let mut packets = decode(bytes, &DecodeOptions::default()).unwrap();
    assert_eq!(packets.len(), 1);
    packets.remove(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn avl_tcp_round_trip(data in avl_data()) {
        let frame = avl_frame(&data).unwrap();
        let p = one(&frame);
        prop_assert_eq!(&p.content, &Content::Avl(data.clone()));
        // Random bytes under a composite id (385, 548, …) are a malformed composite value: a
        // warning, never anything else.
        let composite_only = p
            .warnings
            .iter()
            .all(|w| matches!(w.kind, fleetview::WarningKind::MalformedComposite { .. }));
        prop_assert!(composite_only, "{:?}", p.warnings);
        prop_assert_eq!(p.ack().unwrap(), (data.records.len() as u32).to_be_bytes().to_vec());
        prop_assert_eq!(p.encode().unwrap(), frame);
    }

    #[test]
    fn avl_udp_round_trip(data in avl_data(), imei in imei(), id in any::<u16>(), avl_id in any::<u8>()) {
        let datagram = avl_datagram(&imei, id, avl_id, &data).unwrap();
        let p = udp::decode_datagram(&datagram, &DecodeOptions::default()).unwrap();
        prop_assert_eq!(&p.content, &Content::Avl(data.clone()));
        prop_assert_eq!(p.imei(), Some(&imei));
        prop_assert_eq!(p.ack().unwrap(), udp::ack(id, avl_id, data.records.len() as u8));
        // Auto-detection finds the datagram too.
        prop_assert_eq!(one(&datagram), fleetview::Packet::from(p));
    }

    #[test]
    fn avl_bare_round_trip(data in avl_data()) {
        let bytes = data.encode().unwrap();
        let p = decode_bare(&bytes, &DecodeOptions::default()).unwrap();
        prop_assert_eq!(&p.content, &Content::Avl(data));
    }

    #[test]
    fn codec7_round_trip(records in prop::collection::vec(codec7_record(), 0..5)) {
        let (records, codec7): (Vec<_>, Vec<_>) = records.into_iter().unzip();
        let data = AvlData { codec7, ..AvlData::new(Codec::Codec7, records) };
        let frame = avl_frame(&data).unwrap();
        let p = one(&frame);
        let Content::Avl(back) = &p.content else { panic!("not AVL data") };
        // Fields that survive exactly; the GPS element is derived from the masks.
        prop_assert_eq!(back.records.len(), data.records.len());
        prop_assert_eq!(back.codec7.len(), data.records.len());
        for (i, (a, b)) in data.records.iter().zip(&back.records).enumerate() {
            prop_assert_eq!(a.timestamp_ms, b.timestamp_ms);
            prop_assert_eq!(a.priority, b.priority);
            prop_assert_eq!(&a.io, &b.io);
            let (fa, fb) = (&data.codec7[i], &back.codec7[i]);
            prop_assert_eq!(fa.global_mask & 1, fb.global_mask & 1);
            if fa.global_mask & 1 == 1 {
                prop_assert_eq!(fa.gps_mask, fb.gps_mask);
            }
        }
        // And the decoded form encodes to the same bytes.
        prop_assert_eq!(p.encode().unwrap(), frame);
    }

    #[test]
    fn command_round_trip(packet in command_packet()) {
        let frame = command_frame(&packet).unwrap();
        let p = one(&frame);
        prop_assert_eq!(&p.content, &Content::Command(packet));
        prop_assert_eq!(p.ack(), None);
        prop_assert_eq!(p.encode().unwrap(), frame);
    }

    /// Every prefix of a valid frame is Partial (never an error, never a panic), and the whole
    /// frame is Complete with every byte consumed.
    #[test]
    fn truncated_frames_are_partial(data in avl_data(), cmd in command_packet()) {
        for frame in [avl_frame(&data).unwrap(), command_frame(&cmd).unwrap()] {
            for cut in 0..frame.len() {
                match decode_frame(&frame[..cut], &DecodeOptions::default()) {
                    Ok(Status::Partial { needed }) => prop_assert!(needed >= 1 && cut + needed <= frame.len()),
                    other => prop_assert!(false, "cut {} of {}: {:?}", cut, frame.len(), other),
                }
                // One-shot decoding of a truncated frame is an error, never a panic.
                prop_assert!(decode(&frame[..cut], &DecodeOptions::default()).is_err());
            }
            let Ok(Status::Complete(_, used)) = decode_frame(&frame, &DecodeOptions::default()) else {
                panic!("complete frame")
            };
            prop_assert_eq!(used, frame.len());
        }
    }

    /// A stream (login, keep-alives, data and command frames) cut at random points gives the
    /// same events as one-shot decoding of the whole stream.
    #[test]
    fn split_stream_same_events(
        imei in imei(),
        frames in prop::collection::vec(prop_oneof![avl_data().prop_map(Content::Avl), command_packet().prop_map(Content::Command), Just(Content::KeepAlive)], 1..6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut stream = imei.login_frame();
        for f in &frames {
            stream.extend(fleetview::encode::encode_tcp(f).unwrap());
        }
        let expected = decode(&stream, &DecodeOptions::default()).unwrap();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len())).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut s = Session::new(DecodeOptions::default());
        let mut got = Vec::new();
        for w in points.windows(2) {
            s.handle_input(&stream[w[0]..w[1]]).unwrap();
            while let Some(e) = s.poll_event() {
                if let Event::Login(_) = e {
                    s.accept_imei(true);
                }
                got.push(e);
            }
        }
        prop_assert_eq!(got.len(), expected.len());
        for (e, p) in got.iter().zip(&expected) {
            match (e, &p.content) {
                (Event::Login(i), Content::Imei(j)) => prop_assert_eq!(i, j),
                (Event::KeepAlive { offset }, Content::KeepAlive) => prop_assert_eq!(*offset, p.offset),
                (Event::Records(q) | Event::Message(q), _) => prop_assert_eq!(q, p),
                other => prop_assert!(false, "mismatch {:?}", other),
            }
        }
        prop_assert_eq!(s.poll_transmit(), Some(vec![1]));
    }

    /// Arbitrary bytes: every decoder returns, without panicking, and never claims more bytes
    /// than it was given.
    #[test]
    fn random_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), lenient in any::<bool>()) {
        let opts = DecodeOptions { lenient, ..DecodeOptions::default() };
        if let Ok(Status::Complete(_, used)) = decode_frame(&bytes, &opts) {
            prop_assert!(used <= bytes.len());
        }
        let _ = decode(&bytes, &opts);
        let _ = udp::decode_datagram(&bytes, &opts);
        let _ = decode_bare(&bytes, &opts);
        let _ = fleetview::annotate(&bytes, &opts);
        let mut s = Session::new(opts);
        let _ = s.handle_input(&bytes);
        s.accept_imei(true);
        while s.poll_event().is_some() {}
    }

    /// Random bytes after a valid preamble and length reach the body decoders.
    #[test]
    fn random_bodies_never_panic(codec in prop::sample::select(vec![7u8, 8, 0x8E, 0x10, 0x0C, 0x0D, 0x0E, 0x0F]), body in prop::collection::vec(any::<u8>(), 0..200), lenient in any::<bool>()) {
        let mut field = vec![codec];
        field.extend(body);
        let frame = fleetview::encode::wrap_frame(&field);
        let opts = DecodeOptions { lenient, ..DecodeOptions::default() };
        let _ = decode(&frame, &opts);
        let mut datagram = vec![0, 0, 0xCA, 0xFE, 1, 1, 0, 1, b'1'];
        datagram.extend(&field);
        let n = (datagram.len() - 2) as u16;
        datagram[..2].copy_from_slice(&n.to_be_bytes());
        let _ = udp::decode_datagram(&datagram, &opts);
    }
}
