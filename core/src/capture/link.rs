//! From a captured packet to a TCP segment or a UDP datagram between two addresses. The
//! headers (Ethernet, VLAN, Linux cooked capture v1, IPv4, IPv6, TCP, UDP) are parsed by
//! `etherparse`; Linux cooked capture v2 and BSD loopback, which it does not know, are two
//! fixed-size headers read here.

use core::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, LinuxSllHeaderSlice, TransportSlice};

/// LINKTYPE_NULL: BSD loopback, a 4-byte address family in the capturing host's byte order.
pub const NULL: u32 = 0;
/// LINKTYPE_ETHERNET.
pub const ETHERNET: u32 = 1;
/// LINKTYPE_RAW: IPv4 or IPv6 with no link header.
pub const RAW: u32 = 101;
/// LINKTYPE_LOOP: OpenBSD loopback, the address family in network byte order.
pub const LOOP: u32 = 108;
/// LINKTYPE_LINUX_SLL: Linux cooked capture (`tcpdump -i any`, older libpcap).
pub const LINUX_SLL: u32 = 113;
/// LINKTYPE_IPV4.
pub const IPV4: u32 = 228;
/// LINKTYPE_IPV6.
pub const IPV6: u32 = 229;
/// LINKTYPE_LINUX_SLL2: Linux cooked capture v2 (`tcpdump -i any`, libpcap ≥ 1.10).
pub const LINUX_SLL2: u32 = 276;

/// Whether packets of this link type can be read.
pub fn is_supported(link_type: u32) -> bool {
    matches!(
        link_type,
        NULL | ETHERNET | RAW | LOOP | LINUX_SLL | IPV4 | IPV6 | LINUX_SLL2
    )
}

/// A TCP segment or UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// TCP or UDP, with the payload.
    pub transport: Transport<'a>,
}

/// The transport layer of a [`Segment`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp {
        /// Sequence number of the first payload byte (of the SYN when `syn`).
        seq: u32,
        /// Acknowledgment number, when the ACK flag is set.
        ack: Option<u32>,
        /// SYN flag.
        syn: bool,
        /// FIN flag.
        fin: bool,
        /// RST flag.
        rst: bool,
        /// The payload bytes captured.
        payload: &'a [u8],
        /// Payload bytes the snap length cut off the end.
        missing: usize,
    },
    /// A UDP datagram.
    Udp {
        /// The payload bytes captured.
        payload: &'a [u8],
        /// Payload bytes the snap length cut off the end.
        missing: usize,
    },
}

/// Why a packet is not a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not IP (ARP, LLDP, …), or IP carrying something other than TCP and UDP.
    NotTcpOrUdp,
    /// An IP fragment: not reassembled (devices' packets are far below the MTU).
    Fragment,
    /// Headers that do not parse, or cut before the transport header.
    Malformed,
}

/// The segment in one captured packet.
pub fn parse(link_type: u32, data: &[u8], orig_len: u32) -> Result<Segment<'_>, Skip> {
    let cut = (orig_len as usize).saturating_sub(data.len());
    let sliced = match link_type {
        ETHERNET => LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Malformed)?,
        RAW | IPV4 | IPV6 => LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed)?,
        LINUX_SLL => {
            let sll = LinuxSllHeaderSlice::from_slice(data).map_err(|_| Skip::Malformed)?;
            let proto = sll.protocol_type();
            let etherparse::LinuxSllProtocolType::EtherType(ether_type) = proto else {
                return Err(Skip::NotTcpOrUdp);
            };
            LaxSlicedPacket::from_ether_type(ether_type, &data[sll.slice().len()..])
        }
        LINUX_SLL2 => {
            // Protocol type (2, big-endian), reserved (2), interface index (4), ARPHRD type
            // (2), packet type (1), address length (1), address (8).
            if data.len() < 20 {
                return Err(Skip::Malformed);
            }
            let ether_type = EtherType(u16::from_be_bytes([data[0], data[1]]));
            LaxSlicedPacket::from_ether_type(ether_type, &data[20..])
        }
        NULL | LOOP => {
            if data.len() < 4 {
                return Err(Skip::Malformed);
            }
            let family = [data[0], data[1], data[2], data[3]];
            // AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 depending on the OS. The
            // byte order is the capturing host's (NULL) or network order (LOOP): try both.
            let af = u32::from_le_bytes(family).min(u32::from_be_bytes(family));
            if !matches!(af, 2 | 10 | 24 | 28 | 30) {
                return Err(Skip::NotTcpOrUdp);
            }
            LaxSlicedPacket::from_ip(&data[4..]).map_err(|_| Skip::Malformed)?
        }
        _ => return Err(Skip::NotTcpOrUdp),
    };
    let (src_ip, dst_ip, ip_payload) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
            v4.payload(),
        ),
        Some(LaxNetSlice::Ipv6(v6)) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
            v6.payload(),
        ),
        _ => return Err(Skip::NotTcpOrUdp),
    };
    if ip_payload.fragmented {
        return Err(Skip::Fragment);
    }
    // Cut by the snap length: what is missing is the end of the payload.
    let missing = if ip_payload.incomplete { cut } else { 0 };
    match sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Ok(Segment {
            src: SocketAddr::new(src_ip, tcp.source_port()),
            dst: SocketAddr::new(dst_ip, tcp.destination_port()),
            transport: Transport::Tcp {
                seq: tcp.sequence_number(),
                ack: tcp.ack().then(|| tcp.acknowledgment_number()),
                syn: tcp.syn(),
                fin: tcp.fin(),
                rst: tcp.rst(),
                payload: tcp.payload(),
                missing,
            },
        }),
        Some(TransportSlice::Udp(udp)) => Ok(Segment {
            src: SocketAddr::new(src_ip, udp.source_port()),
            dst: SocketAddr::new(dst_ip, udp.destination_port()),
            transport: Transport::Udp {
                payload: udp.payload(),
                missing,
            },
        }),
        Some(_) => Err(Skip::NotTcpOrUdp),
        None => match ip_payload.ip_number {
            etherparse::IpNumber::TCP | etherparse::IpNumber::UDP => Err(Skip::Malformed),
            _ => Err(Skip::NotTcpOrUdp),
        },
    }
}
