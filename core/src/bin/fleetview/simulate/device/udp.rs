//! The UDP channel: one datagram per batch with the IMEI in its header, the 7-byte ack matched
//! on both packet ids, the same datagram again when no ack comes.

use std::net::SocketAddr;

use fleetview::{Content, UdpHeader};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use super::{far_future, kind, Device, End};
use crate::simulate::stats::Stats;

/// Run one device over UDP: each datagram carries the IMEI; an unacked datagram is sent again
/// after the ack timeout, a short ack makes the rest go in the next datagram.
pub(crate) async fn run_udp(mut dev: Device, mut stop: watch::Receiver<bool>) {
    if !dev.wait_for_ramp(&mut stop).await {
        return;
    }
    let bind: SocketAddr = if dev.cfg.server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            Stats::add(&dev.stats.c.connect_errors, 1);
            eprintln!("device {}: cannot open a UDP socket: {e}", dev.index);
            return;
        }
    };
    if let Err(e) = socket.connect(dev.cfg.server).await {
        Stats::add(&dev.stats.c.connect_errors, 1);
        eprintln!(
            "device {}: UDP connect to {}: {e}",
            dev.index, dev.cfg.server
        );
        return;
    }
    dev.stats.connect();
    dev.connected_at = Some(Instant::now());
    let mut packet_id: u16 = (dev.jitter.next_u64() & 0xFFFF) as u16;
    let mut avl_packet_id: u8 = 0;
    let mut datagram: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 2048];
    let end = loop {
        if dev.should_send() {
            packet_id = packet_id.wrapping_add(1);
            avl_packet_id = avl_packet_id.wrapping_add(1);
            let data = dev.take_frame();
            datagram = fleetview::encode::avl_datagram(&dev.imei, packet_id, avl_packet_id, &data)
                .unwrap_or_else(|e| panic!("the simulator built an unencodable datagram: {e}"));
            if let Err(e) = socket.send(&datagram).await {
                dev.protocol_error(&format!("send: {e}"));
            } else {
                Stats::add(&dev.stats.c.bytes_sent, datagram.len() as u64);
            }
            continue;
        }
        if dev.finished() && dev.in_flight.is_none() {
            break End::Done;
        }
        let wake = dev.next_wake();
        let deadline = dev.ack_deadline();
        tokio::select! {
            _ = sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {
                dev.generate_due(Instant::now());
            }
            _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                // No ack: the same datagram again, as devices do.
                Stats::add(&dev.stats.c.ack_timeouts, 1);
                if let Some(f) = dev.in_flight.as_mut() {
                    f.sent_at = Instant::now();
                    Stats::add(&dev.stats.c.resent, f.records as u64);
                    Stats::add(&dev.stats.c.frames, 1);
                }
                if socket.send(&datagram).await.is_ok() {
                    Stats::add(&dev.stats.c.bytes_sent, datagram.len() as u64);
                }
            }
            r = socket.recv(&mut buf) => match r {
                Ok(n) => {
                    if let Some(reply) = udp_input(&mut dev, &buf[..n], packet_id, avl_packet_id) {
                        if socket.send(&reply).await.is_ok() {
                            Stats::add(&dev.stats.c.bytes_sent, reply.len() as u64);
                        }
                    }
                }
                // ICMP port unreachable and the like: the server is not there yet; the ack
                // timeout resends.
                Err(e) => dev.protocol_error(&format!("recv: {e}")),
            },
            _ = stop.changed() => break End::Stop,
        }
    };
    dev.stats.disconnect();
    if matches!(end, End::Done) {
        Stats::add(&dev.stats.c.finished, 1);
    }
}

/// One datagram from the server: an ack (7 bytes) or a command datagram. Returns the answer.
fn udp_input(dev: &mut Device, bytes: &[u8], packet_id: u16, avl_packet_id: u8) -> Option<Vec<u8>> {
    if bytes.len() == 7 && bytes[..2] == [0, 5] {
        let expected = fleetview::udp::ack(packet_id, avl_packet_id, bytes[6]);
        if bytes == expected && dev.in_flight.is_some() {
            dev.on_ack(bytes[6].into());
        } else {
            // An ack for an older datagram (its resend was already answered) or garbage:
            // devices match both ids and ignore the rest.
            dev.protocol_error(&format!(
                "ignored ack {} (waiting for packet {packet_id:04x}/{avl_packet_id:02x})",
                fleetview::hex::encode(bytes)
            ));
        }
        return None;
    }
    match fleetview::udp::decode_datagram(bytes, &dev.cfg.decode) {
        Ok(p) => match &p.content {
            Content::Command(c) => {
                let answer = dev.answer(c)?;
                let header = UdpHeader {
                    length: 0,
                    packet_id: p.header.packet_id,
                    packet_type: 1,
                    avl_packet_id: p.header.avl_packet_id,
                    imei: dev.imei.clone(),
                };
                fleetview::encode::encode_datagram(&header, &Content::Command(answer)).ok()
            }
            other => {
                dev.protocol_error(&format!(
                    "unexpected {} datagram from the server",
                    kind(other)
                ));
                None
            }
        },
        Err(e) => {
            dev.protocol_error(&format!("undecodable datagram from the server: {e}"));
            None
        }
    }
}
