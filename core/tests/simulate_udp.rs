//! `fleetview simulate --udp` against a scripted UDP server on 127.0.0.1 that decodes with the
//! library: a short ack makes the rest go again, a missing ack makes the same datagram go again,
//! and a Codec 12 `getver` datagram gets a type-06 response datagram.
#![cfg(feature = "server")]

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fleetview::{AvlRecord, Codec, CommandPacket, Content, DecodeOptions, UdpHeader};

#[derive(Default)]
struct Log {
    /// Per IMEI: (packet id, AVL packet id, records) of every datagram, resends included.
    datagrams: BTreeMap<String, Vec<(u16, u8, Vec<AvlRecord>)>>,
    responses: BTreeMap<String, Vec<(u16, CommandPacket)>>,
}

/// Per device: datagram 0 gets an ack for 1 record; datagram 1 gets no ack the first time;
/// after datagram 2 the server sends `getver`; everything else is acked in full.
fn server() -> (String, Arc<Mutex<Log>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Log::default()));
    let shared = log.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let p = fleetview::udp::decode_datagram(&buf[..n], &DecodeOptions::default())
                .unwrap_or_else(|e| panic!("the simulator sent an invalid datagram: {e}"));
            let header = p.header.clone();
            let imei = header.imei.as_str().to_string();
            let mut log = shared.lock().unwrap();
            match &p.content {
                Content::Avl(data) => {
                    assert_eq!(data.codec, Codec::Codec8Ext);
                    let seen = log.datagrams.entry(imei.clone()).or_default();
                    let k = seen.len();
                    seen.push((header.packet_id, header.avl_packet_id, data.records.clone()));
                    let n = data.records.len() as u8;
                    let ack = match k {
                        0 => Some(header.ack(1)),
                        1 => None,
                        _ => Some(header.ack(n)),
                    };
                    if let Some(ack) = ack {
                        socket.send_to(&ack, from).unwrap();
                    }
                    if k == 3 {
                        let cmd = UdpHeader {
                            length: 0,
                            packet_id: 0x0BAD,
                            packet_type: 1,
                            avl_packet_id: 7,
                            imei: header.imei.clone(),
                        };
                        let bytes = fleetview::encode::encode_datagram(
                            &cmd,
                            &Content::Command(CommandPacket::codec12("getver")),
                        )
                        .unwrap();
                        socket.send_to(&bytes, from).unwrap();
                    }
                }
                Content::Command(c) => {
                    log.responses
                        .entry(imei)
                        .or_default()
                        .push((header.packet_id, c.clone()));
                }
                other => panic!("unexpected datagram {other:?}"),
            }
        }
    });
    (addr, log)
}

fn simulate(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetview"))
        .arg("simulate")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the simulator did not finish within 60 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn udp_devices_resend_and_answer_commands() {
    let (addr, log) = server();
    let out = simulate(&[
        "--udp",
        "--devices",
        "2",
        "--server",
        &addr,
        "--records",
        "24",
        "--batch",
        "4",
        "--rate",
        "40",
        "--ack-timeout",
        "0.3",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = |name: &str| s["counters"][name].as_u64().unwrap();
    assert_eq!(c("acked"), 48);
    assert_eq!(c("short_acks"), 2);
    assert_eq!(c("ack_timeouts"), 2);
    assert_eq!(c("commands"), 2);
    let log = log.lock().unwrap();
    assert_eq!(log.datagrams.len(), 2);
    for (imei, datagrams) in &log.datagrams {
        // Datagram 0 was acked for 1 record: the next one starts with its second record.
        let (_, _, first) = &datagrams[0];
        let (id1, avl1, second) = &datagrams[1];
        assert_eq!(
            second[0], first[1],
            "{imei}: the rest of a short ack goes next"
        );
        // Datagram 1 got no ack: it came again, byte for byte the same ids and records.
        let (id2, avl2, third) = &datagrams[2];
        assert_eq!(
            (id1, avl1, second),
            (id2, avl2, third),
            "{imei}: the unacked datagram again"
        );
        let mut stamps: Vec<u64> = datagrams
            .iter()
            .flat_map(|(_, _, rs)| rs.iter().map(|r| r.timestamp_ms))
            .collect();
        stamps.sort_unstable();
        stamps.dedup();
        assert_eq!(stamps.len(), 24, "{imei}: every record arrived");
        let responses = &log.responses[imei];
        assert_eq!(responses.len(), 1);
        let (packet_id, response) = &responses[0];
        assert_eq!(
            *packet_id, 0x0BAD,
            "the response echoes the command's packet id"
        );
        assert_eq!(response.codec, Codec::Codec12);
        assert_eq!(response.messages[0].kind, 0x06);
        let text = response.messages[0].text().unwrap();
        assert!(
            text.starts_with("Ver:") && text.contains(&format!("IMEI:{imei}")),
            "{text}"
        );
    }
}
