//! Captures written by test code: a small pcap/pcapng writer and a TCP/UDP conversation
//! builder (packets from etherparse's `PacketBuilder`, link headers prepended here), so that
//! each test states exactly what is on the wire: reordering, retransmissions, sequence wrap,
//! missing segments, IPv6, VLAN, Linux cooked capture.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;

use etherparse::PacketBuilder;

/// The link layer frames are written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// Ethernet with an 802.1Q tag.
    Vlan,
    /// Linux cooked capture v1.
    Sll,
    /// Linux cooked capture v2.
    Sll2,
    /// Raw IP.
    Raw,
}

impl Link {
    pub fn link_type(self) -> u32 {
        match self {
            Self::Ethernet | Self::Vlan => 1,
            Self::Sll => 113,
            Self::Sll2 => 276,
            Self::Raw => 101,
        }
    }

    fn wrap(self, ip: Vec<u8>, v6: bool) -> Vec<u8> {
        let ether_type: u16 = if v6 { 0x86DD } else { 0x0800 };
        let mut out = Vec::new();
        match self {
            Self::Ethernet => {
                out.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
                out.extend_from_slice(&ether_type.to_be_bytes());
            }
            Self::Vlan => {
                out.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
                out.extend_from_slice(&[0x81, 0x00, 0x00, 0x2A]);
                out.extend_from_slice(&ether_type.to_be_bytes());
            }
            Self::Sll => {
                // Packet type (host), ARPHRD_ETHER, address length 6, address (8), protocol.
                out.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
                out.extend_from_slice(&ether_type.to_be_bytes());
            }
            Self::Sll2 => {
                // Protocol, reserved, interface index, ARPHRD_ETHER, packet type, address
                // length, address (8).
                out.extend_from_slice(&ether_type.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            }
            Self::Raw => {}
        }
        out.extend_from_slice(&ip);
        out
    }
}

/// One captured packet.
#[derive(Clone, Debug)]
pub struct Captured {
    pub time_ns: u64,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

/// A capture being written.
#[derive(Clone, Debug)]
pub struct Capture {
    pub link: Link,
    pub packets: Vec<Captured>,
    /// Time of the next packet, nanoseconds since 1970.
    pub now: u64,
}

impl Capture {
    pub fn new(link: Link) -> Self {
        Self {
            link,
            packets: Vec::new(),
            now: 1_767_225_600_000_000_000,
        }
    }

    pub fn push(&mut self, data: Vec<u8>) {
        self.now += 1_000_000;
        let orig_len = data.len() as u32;
        self.packets.push(Captured {
            time_ns: self.now,
            data,
            orig_len,
        });
    }

    /// Classic pcap, little-endian, microseconds.
    pub fn pcap(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&262_144u32.to_le_bytes());
        out.extend_from_slice(&self.link.link_type().to_le_bytes());
        for p in &self.packets {
            out.extend_from_slice(&((p.time_ns / 1_000_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((p.time_ns / 1000 % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&p.orig_len.to_le_bytes());
            out.extend_from_slice(&p.data);
        }
        out
    }

    /// pcapng, big-endian: a section header, one interface (nanosecond timestamps), an
    /// enhanced packet block per packet, and a statistics-like unknown block to skip.
    pub fn pcapng(&self) -> Vec<u8> {
        fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
            let padded = body.len().div_ceil(4) * 4;
            let len = (12 + padded) as u32;
            out.extend_from_slice(&kind.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(body);
            out.resize(out.len() + padded - body.len(), 0);
            out.extend_from_slice(&len.to_be_bytes());
        }
        let mut out = Vec::new();
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_be_bytes());
        shb.extend_from_slice(&1u16.to_be_bytes());
        shb.extend_from_slice(&0u16.to_be_bytes());
        shb.extend_from_slice(&(-1i64).to_be_bytes());
        block(&mut out, 0x0A0D_0D0A, &shb);
        let mut idb = Vec::new();
        idb.extend_from_slice(&(self.link.link_type() as u16).to_be_bytes());
        idb.extend_from_slice(&0u16.to_be_bytes());
        idb.extend_from_slice(&262_144u32.to_be_bytes());
        // if_tsresol = 9 (nanoseconds), then end of options.
        idb.extend_from_slice(&9u16.to_be_bytes());
        idb.extend_from_slice(&1u16.to_be_bytes());
        idb.extend_from_slice(&[9, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
        block(&mut out, 1, &idb);
        // A block the reader skips (an interface statistics block of type 5 it does not need).
        block(&mut out, 0x0000_0BAD, &[1, 2, 3, 4]);
        for p in &self.packets {
            let mut epb = Vec::new();
            epb.extend_from_slice(&0u32.to_be_bytes());
            epb.extend_from_slice(&((p.time_ns >> 32) as u32).to_be_bytes());
            epb.extend_from_slice(&(p.time_ns as u32).to_be_bytes());
            epb.extend_from_slice(&(p.data.len() as u32).to_be_bytes());
            epb.extend_from_slice(&p.orig_len.to_be_bytes());
            epb.extend_from_slice(&p.data);
            epb.resize(epb.len().div_ceil(4) * 4, 0);
            block(&mut out, 6, &epb);
        }
        out
    }
}

/// TCP flags of a segment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

/// One TCP connection (or UDP conversation) between a device and a server.
#[derive(Clone, Debug)]
pub struct Conv {
    pub device: (IpAddr, u16),
    pub server: (IpAddr, u16),
    /// Next sequence number of each side.
    pub dev_seq: u32,
    pub srv_seq: u32,
}

impl Conv {
    pub fn v4(device_port: u16, server_port: u16, dev_isn: u32, srv_isn: u32) -> Self {
        Self {
            device: ("10.0.0.2".parse().unwrap(), device_port),
            server: ("10.0.0.1".parse().unwrap(), server_port),
            dev_seq: dev_isn,
            srv_seq: srv_isn,
        }
    }

    pub fn v6(device_port: u16, server_port: u16, dev_isn: u32, srv_isn: u32) -> Self {
        Self {
            device: ("2001:db8::2".parse().unwrap(), device_port),
            server: ("2001:db8::1".parse().unwrap(), server_port),
            dev_seq: dev_isn,
            srv_seq: srv_isn,
        }
    }

    /// A TCP segment as link-level bytes, without changing the sequence numbers.
    pub fn tcp_at(
        &self,
        link: Link,
        from_device: bool,
        seq: u32,
        flags: Flags,
        payload: &[u8],
    ) -> Vec<u8> {
        let (src, dst, ack) = if from_device {
            (self.device, self.server, self.srv_seq)
        } else {
            (self.server, self.device, self.dev_seq)
        };
        let (ip, v6) = ip_builder(src.0, dst.0);
        let mut b = ip.tcp(src.1, dst.1, seq, 64_240);
        if flags.syn {
            b = b.syn();
        }
        if flags.fin {
            b = b.fin();
        }
        if flags.rst {
            b = b.rst();
        }
        if !(flags.syn && from_device) {
            b = b.ack(ack);
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        link.wrap(out, v6)
    }

    /// A segment in order: the sender's sequence number advances.
    pub fn tcp(&mut self, link: Link, from_device: bool, flags: Flags, payload: &[u8]) -> Vec<u8> {
        let seq = if from_device {
            self.dev_seq
        } else {
            self.srv_seq
        };
        let bytes = self.tcp_at(link, from_device, seq, flags, payload);
        let advance = payload.len() as u32 + u32::from(flags.syn) + u32::from(flags.fin);
        if from_device {
            self.dev_seq = self.dev_seq.wrapping_add(advance);
        } else {
            self.srv_seq = self.srv_seq.wrapping_add(advance);
        }
        bytes
    }

    /// A UDP datagram.
    pub fn udp(&self, link: Link, from_device: bool, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = if from_device {
            (self.device, self.server)
        } else {
            (self.server, self.device)
        };
        let (ip, v6) = ip_builder(src.0, dst.0);
        let mut out = Vec::new();
        ip.udp(src.1, dst.1).write(&mut out, payload).unwrap();
        link.wrap(out, v6)
    }
}

fn ip_builder(
    src: IpAddr,
    dst: IpAddr,
) -> (etherparse::PacketBuilderStep<etherparse::IpHeaders>, bool) {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (PacketBuilder::ipv4(s.octets(), d.octets(), 64), false),
        (IpAddr::V6(s), IpAddr::V6(d)) => (PacketBuilder::ipv6(s.octets(), d.octets(), 64), true),
        _ => panic!("mixed IP versions"),
    }
}

/// A whole TCP session on `cap`: handshake, then `steps` (device or server payloads), then
/// FIN from both sides.
pub fn tcp_session(cap: &mut Capture, conv: &mut Conv, steps: &[(bool, Vec<u8>)]) {
    handshake(cap, conv);
    for (from_device, payload) in steps {
        let p = conv.tcp(cap.link, *from_device, Flags::default(), payload);
        cap.push(p);
    }
    close(cap, conv);
}

pub fn handshake(cap: &mut Capture, conv: &mut Conv) {
    let syn = Flags {
        syn: true,
        ..Flags::default()
    };
    let p = conv.tcp(cap.link, true, syn, &[]);
    cap.push(p);
    let p = conv.tcp(cap.link, false, syn, &[]);
    cap.push(p);
    let p = conv.tcp(cap.link, true, Flags::default(), &[]);
    cap.push(p);
}

pub fn close(cap: &mut Capture, conv: &mut Conv) {
    let fin = Flags {
        fin: true,
        ..Flags::default()
    };
    let p = conv.tcp(cap.link, true, fin, &[]);
    cap.push(p);
    let p = conv.tcp(cap.link, false, fin, &[]);
    cap.push(p);
    let p = conv.tcp(cap.link, true, Flags::default(), &[]);
    cap.push(p);
}

pub fn hex(s: &str) -> Vec<u8> {
    fleetview::hex::decode(s).unwrap()
}

/// Login of IMEI 356307042441013.
pub const LOGIN: &str = "000F333536333037303432343431303133";
/// Codec 8, one record.
pub const AVL_1: &str = "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF";
/// Codec 8, one record (another).
pub const AVL_2: &str = "000000000000002808010000016B40D9AD80010000000000000000000000000000000103021503010101425E100000010000F22A";
/// Codec 8, two records.
pub const AVL_3: &str = "000000000000004308020000016B40D57B480100000000000000000000000000000001010101000000000000016B40D5C198010000000000000000000000000000000101010101000000020000252C";
/// Codec 12 getinfo command.
pub const GETINFO: &str = "000000000000000F0C010500000007676574696E666F0100004312";
/// Codec 12 response to getinfo.
pub const GETINFO_RESPONSE: &str = "00000000000000900C010600000088494E493A323031392F372F323220373A3232205254433A323031392F372F323220373A3533205253543A32204552523A312053523A302042523A302043463A302046473A3020464C3A302054553A302F302055543A3020534D533A30204E4F4750533A303A3330204750533A31205341543A302052533A332052463A36352053463A31204D443A30010000C78F";
/// UDP channel datagram, Codec 8, one record, packet id 0xCAFE, AVL packet id 0x05.
pub const UDP_AVL: &str = "003DCAFE0105000F33353230393330383634303336353508010000016B4F815B30010000000000000000000000000000000103021503010101425DBC000001";

/// Run a whole file through the analyzer in pieces of `chunk` bytes.
pub fn analyze(
    file: &[u8],
    port: u16,
    chunk: usize,
) -> (
    Vec<fleetview::capture::SessionReport>,
    Result<(), fleetview::capture::CaptureError>,
) {
    let a = fleetview::capture::analyze(port, file.chunks(chunk.max(1)));
    (a.sessions, a.result)
}
