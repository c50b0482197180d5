//! Whole captures: generated ones (tests/capture_common writes them) for every link layer, IP
//! version and file format, reordering, retransmission, sequence wrap, gaps and each problem
//! kind, with the exact sessions expected; the captures recorded with tcpdump
//! (tests/captures/record.sh); and bad files, each with its error kind and byte offset.

mod capture_common;

use capture_common::*;
use fleetview::capture::{CaptureErrorKind, ReplyKind, SessionReport};
use proptest::prelude::*;

/// A session in one line: transport, IMEI, the packets (kind and record count), the replies
/// and the problems, in order.
fn summary(s: &SessionReport) -> String {
    let packets: Vec<String> = s
        .packets
        .iter()
        .map(|p| match &p.decoded() {
            Ok(p) if p.kind().as_str() == "avl" => format!("avl{}", p.records().len()),
            Ok(p) => p.kind().as_str().to_string(),
            Err(e) => format!("error:{}", e.code()),
        })
        .collect();
    let replies: Vec<String> = s
        .replies
        .iter()
        .map(|r| format!("{:?}", r.kind).to_lowercase())
        .collect();
    let problems: Vec<&str> = s.problems.iter().map(|p| p.kind.code()).collect();
    format!(
        "{} {} packets={} replies={} problems={}",
        match s.transport {
            fleetview::capture::SessionTransport::Tcp => "tcp",
            fleetview::capture::SessionTransport::Udp => "udp",
        },
        s.imei.as_deref().unwrap_or("-"),
        packets.join(","),
        replies.join(","),
        problems.join(",")
    )
}

/// A session's payloads in order: (from the device, bytes).
type Steps = Vec<(bool, Vec<u8>)>;

fn dev(h: &str) -> (bool, Vec<u8>) {
    (true, hex(h))
}

fn srv(h: &str) -> (bool, Vec<u8>) {
    (false, hex(h))
}

/// The usual session: login, accepted, two frames acked.
fn good_steps() -> Vec<(bool, Vec<u8>)> {
    vec![
        dev(LOGIN),
        srv("01"),
        dev(AVL_1),
        srv("00000001"),
        dev(AVL_3),
        srv("00000002"),
    ]
}

const GOOD: &str =
    "tcp 356307042441013 packets=imei,avl1,avl2 replies=imeiaccepted,ack,ack problems=";

fn one_session(file: &[u8], port: u16) -> SessionReport {
    let (sessions, result) = analyze(file, port, 4096);
    result.unwrap();
    assert_eq!(
        sessions.len(),
        1,
        "{:?}",
        sessions.iter().map(summary).collect::<Vec<_>>()
    );
    sessions.into_iter().next().unwrap()
}

#[test]
fn every_link_layer_ip_version_and_file_format() {
    for link in [Link::Ethernet, Link::Vlan, Link::Sll, Link::Sll2, Link::Raw] {
        for v6 in [false, true] {
            let mut cap = Capture::new(link);
            let mut conv = if v6 {
                Conv::v6(40_000, 5027, 1000, 9000)
            } else {
                Conv::v4(40_000, 5027, 1000, 9000)
            };
            tcp_session(&mut cap, &mut conv, &good_steps());
            for (name, file) in [("pcap", cap.pcap()), ("pcapng", cap.pcapng())] {
                let s = one_session(&file, 5027);
                assert_eq!(summary(&s), GOOD, "{link:?} v6={v6} {name}");
                let expected_device = if v6 {
                    "[2001:db8::2]:40000"
                } else {
                    "10.0.0.2:40000"
                };
                assert_eq!(s.device.to_string(), expected_device);
                assert_eq!(
                    s.stats.device_bytes as usize,
                    hex(LOGIN).len() + hex(AVL_1).len() + hex(AVL_3).len()
                );
                // Times come from the file: the first packet 1 ms after the capture's start.
                assert_eq!(s.start_ns, 1_767_225_600_001_000_000, "{name}");
            }
        }
    }
}

#[test]
fn any_chunking_of_the_file_gives_the_same_sessions() {
    let mut cap = Capture::new(Link::Ethernet);
    let mut conv = Conv::v4(40_000, 5027, 1000, 9000);
    tcp_session(&mut cap, &mut conv, &good_steps());
    for file in [cap.pcap(), cap.pcapng()] {
        let (whole, r) = analyze(&file, 5027, file.len());
        r.unwrap();
        for chunk in [1, 3, 17, 100] {
            let (pieces, r) = analyze(&file, 5027, chunk);
            r.unwrap();
            assert_eq!(pieces, whole, "chunk {chunk}");
        }
    }
}

#[test]
fn reordered_segments() {
    let mut cap = Capture::new(Link::Ethernet);
    let mut conv = Conv::v4(40_001, 5027, 7, 70);
    handshake(&mut cap, &mut conv);
    for step in [dev(LOGIN), srv("01"), dev(AVL_1), srv("00000001")] {
        let p = conv.tcp(cap.link, step.0, Flags::default(), &step.1);
        cap.push(p);
    }
    // AVL_3 in three segments, captured as 1, 3, 2.
    let frame = hex(AVL_3);
    let base = conv.dev_seq;
    let parts = [(0, 20), (20, 40), (40, frame.len())];
    for i in [0, 2, 1] {
        let (a, b) = parts[i];
        let p = conv.tcp_at(
            cap.link,
            true,
            base.wrapping_add(a as u32),
            Flags::default(),
            &frame[a..b],
        );
        cap.push(p);
    }
    conv.dev_seq = base.wrapping_add(frame.len() as u32);
    let p = conv.tcp(cap.link, false, Flags::default(), &hex("00000002"));
    cap.push(p);
    close(&mut cap, &mut conv);
    let s = one_session(&cap.pcap(), 5027);
    assert_eq!(summary(&s), GOOD);
    assert_eq!(s.stats.out_of_order, 1);
    assert_eq!(s.stats.missing_bytes, 0);
}

#[test]
fn retransmitted_and_overlapping_segments_are_not_resends() {
    let mut cap = Capture::new(Link::Ethernet);
    let mut conv = Conv::v4(40_002, 5027, 100, 200);
    handshake(&mut cap, &mut conv);
    for step in [dev(LOGIN), srv("01")] {
        let p = conv.tcp(cap.link, step.0, Flags::default(), &step.1);
        cap.push(p);
    }
    let frame = hex(AVL_1);
    let base = conv.dev_seq;
    // First half, first half again, then the whole frame (overlapping), then the whole again.
    for (a, b) in [(0, 30), (0, 30), (0, frame.len()), (0, frame.len())] {
        let p = conv.tcp_at(
            cap.link,
            true,
            base + a as u32,
            Flags::default(),
            &frame[a..b],
        );
        cap.push(p);
    }
    conv.dev_seq = base + frame.len() as u32;
    for step in [srv("00000001"), dev(AVL_3), srv("00000002")] {
        let p = conv.tcp(cap.link, step.0, Flags::default(), &step.1);
        cap.push(p);
    }
    close(&mut cap, &mut conv);
    let s = one_session(&cap.pcap(), 5027);
    assert_eq!(summary(&s), GOOD);
    assert_eq!(s.stats.retransmitted, 3);
}

#[test]
fn sequence_numbers_wrapping_around() {
    let mut cap = Capture::new(Link::Ethernet);
    // Both sides wrap within the session.
    let mut conv = Conv::v4(40_003, 5027, u32::MAX - 20, u32::MAX);
    tcp_session(&mut cap, &mut conv, &good_steps());
    let s = one_session(&cap.pcapng(), 5027);
    assert_eq!(summary(&s), GOOD);
}

#[test]
fn a_gap_is_reported_and_decoding_resumes_at_the_next_frame() {
    let mut cap = Capture::new(Link::Ethernet);
    let mut conv = Conv::v4(40_004, 5027, 5000, 6000);
    handshake(&mut cap, &mut conv);
    for step in [dev(LOGIN), srv("01"), dev(AVL_1), srv("00000001")] {
        let p = conv.tcp(cap.link, step.0, Flags::default(), &step.1);
        cap.push(p);
    }
    // AVL_2 in two segments; the capture lost the first one.
    let frame = hex(AVL_2);
    let _lost = conv.tcp(cap.link, true, Flags::default(), &frame[..25]);
    let p = conv.tcp(cap.link, true, Flags::default(), &frame[25..]);
    cap.push(p);
    for step in [srv("00000001"), dev(AVL_3), srv("00000002")] {
        let p = conv.tcp(cap.link, step.0, Flags::default(), &step.1);
        cap.push(p);
    }
    close(&mut cap, &mut conv);
    let s = one_session(&cap.pcap(), 5027);
    assert_eq!(
        summary(&s),
        "tcp 356307042441013 packets=imei,avl1,avl2 replies=imeiaccepted,ack,ack,ack problems=bytes_missing"
    );
    assert_eq!(s.stats.missing_bytes, 25);
    assert!(
        s.problems[0].message.starts_with(
            "25 bytes of the device's stream are missing from the capture at stream offset 83"
        ),
        "{}",
        s.problems[0].message
    );
    assert!(s.replies[2].meaning.contains("missing from the capture"));
}

#[test]
fn a_segment_cut_by_the_snap_length() {
    let mut cap = Capture::new(Link::Ethernet);
    let mut conv = Conv::v4(40_005, 5027, 1, 1);
    handshake(&mut cap, &mut conv);
    for step in [dev(LOGIN), srv("01"), dev(AVL_1)] {
        let p = conv.tcp(cap.link, step.0, Flags::default(), &step.1);
        cap.push(p);
    }
    let last = cap.packets.last_mut().unwrap();
    last.data.truncate(last.data.len() - 10);
    for step in [srv("00000001"), dev(AVL_3), srv("00000002")] {
        let p = conv.tcp(cap.link, step.0, Flags::default(), &step.1);
        cap.push(p);
    }
    close(&mut cap, &mut conv);
    let s = one_session(&cap.pcap(), 5027);
    assert_eq!(
        summary(&s),
        "tcp 356307042441013 packets=imei,avl2 replies=imeiaccepted,ack,ack problems=bytes_missing"
    );
    assert_eq!(s.stats.missing_bytes, 10);
}

/// Each problem kind from a session that shows it.
#[test]
fn each_problem_kind() {
    let corrupt_crc = {
        let mut f = hex(AVL_1);
        let n = f.len();
        f[n - 1] ^= 0xFF;
        fleetview::hex::encode(&f)
    };
    let cases: Vec<(Steps, &str)> = vec![
        (
            vec![dev(LOGIN), srv("01"), dev(AVL_3), srv("00000001")],
            "packets=imei,avl2 replies=imeiaccepted,ack problems=ack_count_mismatch",
        ),
        (
            vec![dev(LOGIN), srv("01"), dev(AVL_1), dev(AVL_1), srv("00000001")],
            "packets=imei,avl1,avl1 replies=imeiaccepted,ack problems=frame_resent,missing_ack",
        ),
        (
            vec![
                dev(LOGIN),
                srv("01"),
                dev(AVL_1),
                srv("00000001"),
                srv(GETINFO),
                dev(GETINFO_RESPONSE),
                srv("00000001"),
            ],
            "packets=imei,avl1,command replies=imeiaccepted,ack,command,ack problems=ack_after_command",
        ),
        (
            vec![dev(LOGIN), srv("01"), dev(AVL_1), srv(GETINFO)],
            "packets=imei,avl1 replies=imeiaccepted,command problems=command_while_unacked,missing_ack,command_unanswered",
        ),
        (vec![dev(LOGIN), srv("00")], "packets=imei replies=imeirejected problems=imei_rejected"),
        (
            vec![dev(LOGIN), srv("01"), dev(&corrupt_crc)],
            "packets=imei,avl1 replies=imeiaccepted problems=invalid_frame",
        ),
        (
            vec![dev(LOGIN), srv("01"), (true, b"hello, server!".to_vec()), dev(AVL_1), srv("00000001")],
            "packets=imei,avl1 replies=imeiaccepted,ack problems=unrecognized_bytes",
        ),
        (
            vec![dev(LOGIN), srv("01"), dev(AVL_1), (false, b"ok\n".to_vec())],
            "packets=imei,avl1 replies=imeiaccepted,unknown problems=unexpected_reply,missing_ack",
        ),
        (
            vec![dev(LOGIN), srv("01"), srv("00000001")],
            "packets=imei replies=imeiaccepted,ack problems=ack_without_frame",
        ),
        (vec![dev(LOGIN)], "packets=imei replies= problems=missing_ack"),
    ];
    for (i, (steps, expected)) in cases.into_iter().enumerate() {
        let mut cap = Capture::new(Link::Ethernet);
        let mut conv = Conv::v4(41_000 + i as u16, 5027, 10, 20);
        tcp_session(&mut cap, &mut conv, &steps);
        let s = one_session(&cap.pcap(), 5027);
        assert_eq!(
            summary(&s),
            format!("tcp 356307042441013 {expected}"),
            "case {i}"
        );
        for p in &s.problems {
            assert!(!p.message.is_empty());
            assert!(p.frame > 0 && p.frame <= cap.packets.len() as u64, "{p:?}");
        }
    }
}

#[test]
fn the_command_reply_links_to_its_answer() {
    let mut cap = Capture::new(Link::Ethernet);
    let mut conv = Conv::v4(40_010, 5027, 10, 20);
    let steps = vec![
        dev(LOGIN),
        srv("01"),
        dev(AVL_1),
        srv("00000001"),
        srv(GETINFO),
        dev(GETINFO_RESPONSE),
    ];
    tcp_session(&mut cap, &mut conv, &steps);
    let s = one_session(&cap.pcap(), 5027);
    assert_eq!(
        summary(&s),
        "tcp 356307042441013 packets=imei,avl1,command replies=imeiaccepted,ack,command problems="
    );
    let cmd = &s.replies[2];
    assert_eq!(cmd.kind, ReplyKind::Command);
    assert_eq!(cmd.answered_by, Some(2));
    assert_eq!(cmd.meaning, "Codec 12 0x05 command \"getinfo\"");
    assert_eq!(s.replies[1].answers, Some(1));
}

#[test]
fn udp_datagrams_and_their_acks() {
    let ack = |id: u8, n: u8| (false, vec![0x00, 0x05, 0xCA, 0xFE, 0x01, id, n]);
    let cases: Vec<(Steps, &str)> = vec![
        (
            vec![dev(UDP_AVL), ack(5, 1)],
            "packets=avl1 replies=udpack problems=",
        ),
        (
            vec![dev(UDP_AVL)],
            "packets=avl1 replies= problems=missing_ack",
        ),
        (
            vec![dev(UDP_AVL), ack(5, 0)],
            "packets=avl1 replies=udpack problems=ack_count_mismatch",
        ),
        (
            vec![dev(UDP_AVL), ack(6, 1)],
            "packets=avl1 replies=udpack problems=ack_without_frame,missing_ack",
        ),
        (
            vec![dev(UDP_AVL), dev(UDP_AVL), ack(5, 1)],
            "packets=avl1,avl1 replies=udpack problems=frame_resent,missing_ack",
        ),
        (
            vec![dev(UDP_AVL), (false, b"nope".to_vec())],
            "packets=avl1 replies=unknown problems=unexpected_reply,missing_ack",
        ),
    ];
    for (i, (steps, expected)) in cases.into_iter().enumerate() {
        for link in [Link::Ethernet, Link::Sll2] {
            let mut cap = Capture::new(link);
            let conv = Conv::v4(42_000 + i as u16, 5027, 0, 0);
            for (from_device, payload) in &steps {
                let p = conv.udp(link, *from_device, payload);
                cap.push(p);
            }
            let s = one_session(&cap.pcap(), 5027);
            assert_eq!(
                summary(&s),
                format!("udp 352093086403655 {expected}"),
                "case {i} {link:?}"
            );
        }
    }
}

#[test]
fn devices_on_another_port_are_found_by_their_login_and_other_traffic_is_skipped() {
    let mut cap = Capture::new(Link::Ethernet);
    let mut conv = Conv::v4(40_020, 6000, 10, 20);
    tcp_session(&mut cap, &mut conv, &good_steps());
    let mut http = Conv::v4(40_021, 80, 10, 20);
    tcp_session(
        &mut cap,
        &mut http,
        &[
            (true, b"GET / HTTP/1.1\r\n\r\n".to_vec()),
            (false, b"HTTP/1.1 200 OK\r\n\r\n".to_vec()),
        ],
    );
    let mut a = fleetview::capture::Analyzer::new(5027);
    a.handle_input(&cap.pcap()).unwrap();
    a.finish().unwrap();
    let s = a.poll_session().unwrap();
    assert_eq!(summary(&s), GOOD);
    assert_eq!(s.server.to_string(), "10.0.0.1:6000");
    assert!(a.poll_session().is_none());
    let stats = a.stats();
    assert_eq!(stats.sessions, 1);
    // The HTTP request, its answer and the first FIN, after which the conversation is
    // forgotten (the rest are bare segments, which start nothing).
    assert_eq!(stats.other_traffic, 3, "{stats:?}");
}

#[test]
fn a_device_resending_after_reconnecting_is_recognized() {
    let mut cap = Capture::new(Link::Ethernet);
    let mut first = Conv::v4(40_030, 5027, 10, 20);
    tcp_session(&mut cap, &mut first, &[dev(LOGIN), srv("01"), dev(AVL_3)]);
    let mut second = Conv::v4(40_031, 5027, 10, 20);
    tcp_session(
        &mut cap,
        &mut second,
        &[dev(LOGIN), srv("01"), dev(AVL_3), srv("00000002")],
    );
    let (sessions, r) = analyze(&cap.pcap(), 5027, 1000);
    r.unwrap();
    let lines: Vec<String> = sessions.iter().map(summary).collect();
    assert_eq!(
        lines,
        [
            "tcp 356307042441013 packets=imei,avl2 replies=imeiaccepted problems=missing_ack",
            "tcp 356307042441013 packets=imei,avl2 replies=imeiaccepted,ack problems=frame_resent",
        ]
    );
}

#[test]
fn the_json_and_text_renderings() {
    let mut cap = Capture::new(Link::Ethernet);
    let mut conv = Conv::v4(40_040, 5027, 10, 20);
    tcp_session(
        &mut cap,
        &mut conv,
        &[dev(LOGIN), srv("01"), dev(AVL_3), srv("00000001")],
    );
    let s = one_session(&cap.pcap(), 5027);
    let v = serde_json::to_value(s.to_json(&Default::default())).unwrap();
    assert_eq!(v["transport"], "tcp");
    assert_eq!(v["device"], "10.0.0.2:40040");
    assert_eq!(v["server"], "10.0.0.1:5027");
    assert_eq!(v["imei"], "356307042441013");
    assert_eq!(v["packets"][0]["kind"], "imei");
    assert_eq!(v["packets"][1]["records"].as_array().unwrap().len(), 2);
    assert_eq!(v["packets"][1]["hex"], AVL_3.to_lowercase());
    assert_eq!(v["packets"][1]["time"], "2026-01-01T00:00:00.006000Z");
    assert_eq!(v["replies"][1]["hex"], "00000001");
    assert_eq!(v["replies"][1]["kind"], "ack");
    assert_eq!(
        v["replies"][1]["meaning"],
        "ack: 1 of the 2 records of packet [1] accepted"
    );
    assert_eq!(v["problem_details"][0]["kind"], "ack_count_mismatch");
    assert_eq!(v["problems"][0], v["problem_details"][0]["message"]);
    let mut text = String::new();
    s.write_text(&mut text);
    assert!(
        text.starts_with(
            "session 1: TCP device 10.0.0.2:40040 → server 10.0.0.1:5027, IMEI 356307042441013"
        ),
        "{text}"
    );
    assert!(
        text.contains("PROBLEM ack_count_mismatch: the server acked 1 records"),
        "{text}"
    );
}

// ===== bad files =====

fn error_of(file: &[u8]) -> (CaptureErrorKind, u64) {
    let (_, r) = analyze(file, 5027, 64);
    let e = r.unwrap_err();
    assert!(!e.to_string().is_empty());
    (e.kind, e.offset)
}

fn small_capture() -> Capture {
    let mut cap = Capture::new(Link::Ethernet);
    let mut conv = Conv::v4(40_050, 5027, 10, 20);
    tcp_session(&mut cap, &mut conv, &good_steps());
    cap
}

#[test]
fn bad_files_fail_with_their_kind_and_offset() {
    assert_eq!(error_of(b""), (CaptureErrorKind::EmptyFile, 0));
    assert_eq!(
        error_of(b"hello world"),
        (CaptureErrorKind::NotACapture { magic: *b"hell" }, 0)
    );
    assert_eq!(
        error_of(b"ab"),
        (
            CaptureErrorKind::NotACapture {
                magic: [b'a', b'b', 0, 0]
            },
            0
        )
    );

    // Cut inside the third record: the error is at that record, and the sessions found before
    // it are still reported.
    let file = small_capture().pcap();
    let third = 24
        + 2 * 16
        + small_capture().packets[..2]
            .iter()
            .map(|p| p.data.len())
            .sum::<usize>();
    let (sessions, r) = analyze(&file[..third + 20], 5027, 64);
    let e = r.unwrap_err();
    assert_eq!(e.offset, third as u64);
    assert!(matches!(e.kind, CaptureErrorKind::Truncated { .. }), "{e}");
    // A connection that carried nothing yet is a session without packets (a device that
    // connected and said nothing).
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].packets.is_empty());
    let fourth_cut = &file[..file.len() - 3];
    let (sessions, r) = analyze(fourth_cut, 5027, 64);
    assert!(matches!(
        r.unwrap_err().kind,
        CaptureErrorKind::Truncated { needed: 3 }
    ));
    assert_eq!(sessions.len(), 1, "the session is reported up to the cut");

    // A link type that is not read.
    let mut file = small_capture().pcap();
    file[20..24].copy_from_slice(&147u32.to_le_bytes());
    assert_eq!(
        error_of(&file),
        (CaptureErrorKind::UnsupportedLinkType { link_type: 147 }, 20)
    );

    // A record announcing 100 MB.
    let mut file = small_capture().pcap();
    file[24 + 8..24 + 12].copy_from_slice(&100_000_000u32.to_le_bytes());
    assert_eq!(
        error_of(&file),
        (
            CaptureErrorKind::BlockTooLarge {
                len: 100_000_000,
                max: 16 << 20
            },
            24
        )
    );

    // pcapng: a block length that is not a multiple of 4 (the interface block at 28).
    let mut file = small_capture().pcapng();
    file[32..36].copy_from_slice(&13u32.to_be_bytes());
    assert!(matches!(
        error_of(&file),
        (CaptureErrorKind::CorruptBlock { .. }, 32)
    ));

    // pcapng: a packet of an interface never declared. Blocks: SHB 28 bytes, IDB 32, the
    // unknown block 16, then the first packet block.
    let mut file = small_capture().pcapng();
    let epb = 28 + 32 + 16;
    file[epb + 8..epb + 12].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(
        error_of(&file),
        (
            CaptureErrorKind::UnknownInterface { interface: 3 },
            epb as u64 + 8
        )
    );

    // pcapng: a section header with a bad byte-order magic.
    let mut file = small_capture().pcapng();
    file[8] = 0x99;
    assert!(matches!(
        error_of(&file),
        (CaptureErrorKind::CorruptBlock { .. }, 8)
    ));
}

// ===== captures recorded with tcpdump (tests/captures/record.sh) =====

fn recorded(name: &str) -> Vec<SessionReport> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/captures")
        .join(name);
    let file = std::fs::read(&path).unwrap();
    let (mut sessions, r) = analyze(&file, 35027, 8192);
    r.unwrap();
    sessions.sort_by_key(|s| s.imei.clone());
    sessions
}

#[test]
fn recorded_tcp_devices() {
    let sessions = recorded("tcp_devices.pcap");
    let lines: Vec<String> = sessions.iter().map(summary).collect();
    let expect = |imei: &str| {
        format!("tcp {imei} packets=imei,avl4,avl4,avl4 replies=imeiaccepted,ack,ack,ack problems=")
    };
    assert_eq!(
        lines,
        [
            expect("352093080000002"),
            expect("352093080000010"),
            expect("352093080000028")
        ]
    );
    for s in &sessions {
        assert_eq!(s.server.to_string(), "127.0.0.1:35027");
        for p in &s.packets[1..] {
            assert_eq!(p.decoded().unwrap().codec().unwrap().name(), "8E");
        }
    }
}

#[test]
fn recorded_udp_devices_on_linux_cooked_capture() {
    let lines: Vec<String> = recorded("udp_devices.pcap").iter().map(summary).collect();
    let expect =
        |imei: &str| format!("udp {imei} packets=avl3,avl3 replies=udpack,udpack problems=");
    assert_eq!(
        lines,
        [expect("352093081000001"), expect("352093081000019")]
    );
}

#[test]
fn recorded_command_exchange() {
    let sessions = recorded("tcp_command.pcap");
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let cmd = s
        .replies
        .iter()
        .find(|r| r.kind == ReplyKind::Command)
        .expect("a command");
    assert_eq!(cmd.meaning, "Codec 12 0x05 command \"getinfo\"");
    let answer = &s.packets[cmd.answered_by.expect("answered")];
    let text = match &answer.decoded().unwrap().content {
        fleetview::Content::Command(c) => c.messages[0].text().unwrap().to_string(),
        other => panic!("{other:?}"),
    };
    assert!(text.starts_with("RTC:"), "{text}");
}

// ===== properties =====

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However the device's bytes are cut into segments, and whichever of them are captured
    /// twice or swapped with the next, the session is the same, without problems.
    #[test]
    fn segmentation_reordering_and_duplicates_do_not_change_the_session(
        cuts in proptest::collection::vec(1usize..40, 1..30),
        swaps in proptest::collection::vec(any::<bool>(), 30),
        dups in proptest::collection::vec(any::<bool>(), 30),
        isn in any::<u32>(),
        chunk in 1usize..600,
    ) {
        let mut cap = Capture::new(Link::Ethernet);
        let mut conv = Conv::v4(40_060, 5027, isn, isn ^ 0x5555_5555);
        handshake(&mut cap, &mut conv);
        let mut cut = cuts.iter().cycle();
        let mut k = 0;
        for (from_device, message) in good_steps() {
            if !from_device {
                let p = conv.tcp(cap.link, false, Flags::default(), &message);
                cap.push(p);
                continue;
            }
            // Cut the device's message into segments, swap some neighbours, capture some twice.
            let mut segments = Vec::new();
            let mut at = 0;
            while at < message.len() {
                let end = (at + cut.next().unwrap()).min(message.len());
                segments.push((at, end));
                at = end;
            }
            let base = conv.dev_seq;
            let mut order: Vec<usize> = (0..segments.len()).collect();
            for i in 0..order.len().saturating_sub(1) {
                if swaps[(k + i) % swaps.len()] {
                    order.swap(i, i + 1);
                }
            }
            for &i in &order {
                let (a, b) = segments[i];
                let p = conv.tcp_at(cap.link, true, base.wrapping_add(a as u32), Flags::default(), &message[a..b]);
                cap.push(p.clone());
                if dups[k % dups.len()] {
                    cap.push(p);
                }
                k += 1;
            }
            conv.dev_seq = base.wrapping_add(message.len() as u32);
        }
        close(&mut cap, &mut conv);
        let (sessions, r) = analyze(&cap.pcap(), 5027, chunk);
        prop_assert!(r.is_ok());
        prop_assert_eq!(sessions.len(), 1);
        prop_assert_eq!(summary(&sessions[0]), GOOD);
        prop_assert_eq!(sessions[0].stats.missing_bytes, 0);
    }

    /// Arbitrary bytes after a valid header, cut anywhere: an error or sessions, never a panic.
    #[test]
    fn arbitrary_files_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2000), chunk in 1usize..300, ng in any::<bool>()) {
        let cap = small_capture();
        let mut file = if ng { cap.pcapng() } else { cap.pcap() };
        let keep = file.len() / 2;
        file.truncate(keep);
        file.extend(tail);
        let _ = analyze(&file, 5027, chunk);
    }
}

/// docs/json-model.md lists exactly the problem kinds and reply kinds of the code.
#[test]
fn json_model_md_lists_every_problem_and_reply_kind() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json-model.md"))
        .unwrap();
    let table = |heading: &str| -> Vec<String> {
        doc.split_once(heading)
            .unwrap_or_else(|| panic!("no {heading}"))
            .1
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|l| {
                l.split('|')
                    .nth(1)
                    .unwrap()
                    .trim()
                    .trim_matches('`')
                    .to_string()
            })
            .collect()
    };
    let problems: Vec<&str> = fleetview::capture::ProblemKind::ALL
        .iter()
        .map(|k| k.code())
        .collect();
    assert_eq!(table("Problem kinds:"), problems);
    let replies: Vec<String> = [
        ReplyKind::ImeiAccepted,
        ReplyKind::ImeiRejected,
        ReplyKind::Ack,
        ReplyKind::UdpAck,
        ReplyKind::Command,
        ReplyKind::Unknown,
    ]
    .iter()
    .map(|k| {
        serde_json::to_value(k)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    })
    .collect();
    assert_eq!(table("Reply kinds:"), replies);
}

/// The capture the playground's browser test drops (tests/captures/problems.pcap): three
/// sessions (TCP over IPv4 with a short ack and a resent frame, TCP over IPv6 without problems,
/// UDP with a datagram never acked). The committed file must be what this writes:
/// `FLEETVIEW_BLESS=1 cargo test -p fleetview --features capture --test capture` rewrites it.
#[test]
fn the_playgrounds_test_capture_is_up_to_date() {
    let mut cap = Capture::new(Link::Ethernet);
    let mut a = Conv::v4(40_200, 5027, 100, 200);
    tcp_session(
        &mut cap,
        &mut a,
        &[
            dev(LOGIN),
            srv("01"),
            dev(AVL_3),
            srv("00000001"),
            dev(AVL_3),
            srv("00000002"),
        ],
    );
    // The same device again (frames it had not sent before: no resend).
    let mut b = Conv::v6(40_201, 5027, 300, 400);
    tcp_session(
        &mut cap,
        &mut b,
        &[
            dev(LOGIN),
            srv("01"),
            dev(AVL_1),
            srv("00000001"),
            dev(AVL_2),
            srv("00000001"),
        ],
    );
    let u = Conv::v4(40_202, 5027, 0, 0);
    let p = u.udp(cap.link, true, &hex(UDP_AVL));
    cap.push(p);
    let file = cap.pcap();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/captures/problems.pcap");
    if std::env::var_os("FLEETVIEW_BLESS").is_some() {
        std::fs::write(&path, &file).unwrap();
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        file,
        "run with FLEETVIEW_BLESS=1 to rewrite {}",
        path.display()
    );
    let (sessions, r) = analyze(&file, 5027, 4096);
    r.unwrap();
    let lines: Vec<String> = sessions.iter().map(summary).collect();
    assert_eq!(
        lines,
        [
            "tcp 356307042441013 packets=imei,avl2,avl2 replies=imeiaccepted,ack,ack problems=ack_count_mismatch,frame_resent",
            "tcp 356307042441013 packets=imei,avl1,avl1 replies=imeiaccepted,ack,ack problems=",
            "udp 352093086403655 packets=avl1 replies= problems=missing_ack",
        ]
    );
}
