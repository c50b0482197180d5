//! The TCP session state machine: handshake, acks, keep-alives, skipped invalid frames, fatal
//! errors with stream offsets, commands.

use fleetview::{hex, CommandPacket, DecodeOptions, Event, Session};

const LOGIN: &str = "000F333536333037303432343431303133";
const T2: &str = "000000000000002808010000016B40D9AD80010000000000000000000000000000000103021503010101425E100000010000F22A";
const T3: &str = "000000000000004308020000016B40D57B480100000000000000000000000000000001010101000000000000016B40D5C198010000000000000000000000000000000101010101000000020000252C";
const T7: &str = "00000000000000370C01060000002F4449313A31204449323A30204449333A302041494E313A302041494E323A313639323420444F313A3020444F323A3101000066E3";

fn b(h: &str) -> Vec<u8> {
    hex::decode(h).unwrap()
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn logged_in() -> Session {
    let mut s = Session::new(DecodeOptions::default());
    s.handle_input(&b(LOGIN)).unwrap();
    assert!(matches!(events(&mut s)[..], [Event::Login(_)]));
    s.accept_imei(true);
    assert_eq!(s.poll_transmit(), Some(vec![1]));
    s
}

#[test]
fn handshake_records_and_ack() {
    let mut s = logged_in();
    let mut stream = b(T2);
    stream.push(0xFF);
    stream.extend(b(T3));
    // One byte at a time: the needed count never claims more than the frame has left.
    for (i, byte) in stream.iter().enumerate() {
        let needed = s.handle_input(&[*byte]).unwrap();
        assert!(needed >= 1, "byte {i}");
    }
    let ev = events(&mut s);
    assert_eq!(ev.len(), 3);
    let Event::Records(p) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!((p.offset, p.records().len()), (17, 1));
    assert_eq!(ev[1], Event::KeepAlive { offset: 17 + 52 });
    let Event::Records(p) = &ev[2] else { panic!() };
    assert_eq!(p.records().len(), 2);
    // Nothing is sent until the application acks.
    assert_eq!(s.poll_transmit(), None);
    s.ack(2);
    assert_eq!(s.poll_transmit(), Some(vec![0, 0, 0, 2]));
    assert_eq!(s.buffered(), 0);
}

#[test]
fn frames_sent_with_the_login_wait_for_the_decision() {
    let mut s = Session::new(DecodeOptions::default());
    let mut stream = b(LOGIN);
    stream.extend(b(T2));
    s.handle_input(&stream).unwrap();
    assert!(matches!(events(&mut s)[..], [Event::Login(_)]));
    assert_eq!(s.buffered(), 52);
    s.accept_imei(true);
    assert!(matches!(events(&mut s)[..], [Event::Records(_)]));
}

#[test]
fn reject_closes() {
    let mut s = Session::new(DecodeOptions::default());
    s.handle_input(&b(LOGIN)).unwrap();
    s.accept_imei(false);
    assert_eq!(s.poll_transmit(), Some(vec![0]));
    assert!(s.is_closed());
    let e = s.handle_input(&b(T2)).unwrap_err();
    assert_eq!(e.code(), "unexpected_data");
}

#[test]
fn bad_crc_frame_is_skipped_and_the_next_one_decoded() {
    let mut s = logged_in();
    let mut bad = b(T2);
    let n = bad.len();
    bad[n - 1] ^= 0x01;
    bad.extend(b(T3));
    s.handle_input(&bad).unwrap();
    let ev = events(&mut s);
    let Event::Invalid(e) = &ev[0] else {
        panic!("{ev:?}")
    };
    // Offsets count from the start of the stream: login (17) + CRC field at 8 + 40.
    assert_eq!((e.code(), e.offset), ("crc_mismatch", 17 + 48));
    assert!(matches!(&ev[1], Event::Records(p) if p.records().len() == 2));
    assert!(!s.is_closed());
}

#[test]
fn garbage_is_fatal_with_its_stream_offset() {
    let mut s = logged_in();
    s.handle_input(&b(T2)).unwrap();
    let e = s.handle_input(b"GET / HTTP/1.1\r\n").unwrap_err();
    assert_eq!((e.code(), e.offset), ("bad_preamble", 17 + 52));
    assert!(s.is_closed());
    // Records decoded before the garbage are still handed out.
    assert!(matches!(events(&mut s)[..], [Event::Records(_)]));
}

#[test]
fn oversized_frame_is_refused_before_buffering() {
    let opts = DecodeOptions {
        max_frame_len: 1280,
        ..DecodeOptions::default()
    };
    let mut s = Session::new(opts);
    s.handle_input(&b(LOGIN)).unwrap();
    s.accept_imei(true);
    let e = s.handle_input(&[0, 0, 0, 0, 0, 0, 0x05, 0x01]).unwrap_err();
    assert_eq!((e.code(), e.offset), ("frame_too_large", 17 + 4));
}

#[test]
fn invalid_login() {
    let mut s = Session::new(DecodeOptions::default());
    let e = s.handle_input(b"\x00\x0F35630704244101X").unwrap_err();
    assert_eq!((e.code(), e.offset), ("invalid_imei_digit", 16));
    let mut s = Session::new(DecodeOptions::default());
    let e = s.handle_input(&[0x12, 0x34]).unwrap_err();
    assert_eq!(e.code(), "invalid_imei_length");
}

#[test]
fn buffer_is_bounded_while_waiting_for_the_decision() {
    let opts = DecodeOptions {
        max_frame_len: 100,
        ..DecodeOptions::default()
    };
    let mut s = Session::new(opts);
    s.handle_input(&b(LOGIN)).unwrap();
    let e = s.handle_input(&[0u8; 1000]).unwrap_err();
    assert_eq!(e.code(), "buffer_full");
}

#[test]
fn command_out_response_in_never_acked() {
    let mut s = logged_in();
    s.send_command(&CommandPacket::codec12("getio")).unwrap();
    assert_eq!(
        hex::encode(&s.poll_transmit().unwrap()),
        "000000000000000d0c010500000005676574696f01000000cb"
    );
    s.handle_input(&b(T7)).unwrap();
    let ev = events(&mut s);
    let Event::Message(p) = &ev[0] else { panic!() };
    assert_eq!(p.ack(), None);
    let fleetview::Content::Command(c) = &p.content else {
        panic!()
    };
    assert_eq!(
        c.messages[0].text(),
        Some("DI1:1 DI2:0 DI3:0 AIN1:0 AIN2:16924 DO1:0 DO2:1")
    );
    assert_eq!(s.poll_transmit(), None);
}

#[test]
fn codec14_command_encoding_matches_the_official_example() {
    let c = CommandPacket::codec14("getver", "352093081452251").unwrap();
    let frame = fleetview::encode::command_frame(&c).unwrap();
    assert_eq!(
        hex::encode(&frame),
        "00000000000000160e01050000000e0352093081452251676574766572010000d2c1"
    );
}

#[test]
fn one_shot_garbage_is_unrecognized() {
    let e = fleetview::decode(b"GET / HTTP/1.1\r\n", &DecodeOptions::default()).unwrap_err();
    assert_eq!((e.code(), e.offset), ("unrecognized_input", 0));
    let mut stream = b(T2);
    stream.extend(b"garbage");
    let results: Vec<_> = fleetview::decode_each(&stream, &DecodeOptions::default()).collect();
    assert!(results[0].is_ok());
    let e = results[1].as_ref().unwrap_err();
    assert_eq!((e.code(), e.offset), ("unrecognized_input", 52));
}
