//! From a captured packet to a TCP segment or a UDP datagram between two addresses. Each
//! header (Ethernet, 802.1Q/802.1ad VLAN tags, Linux cooked capture v1, IPv4, IPv6, TCP, UDP)
//! is read with `etherparse`'s header slices, one layer at a time: only the layers a device's
//! traffic uses are linked in (the playground's wasm stays small). Linux cooked capture v2 and
//! BSD loopback, which etherparse does not know, are fixed-size headers read here. IPv6
//! extension headers are not followed (devices do not send them).

use core::net::{IpAddr, SocketAddr};

use etherparse::{
    Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice, LinuxSllHeaderSlice,
    LinuxSllProtocolType, SingleVlanHeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};

const IPV4_ETHER_TYPE: u16 = 0x0800;
const IPV6_ETHER_TYPE: u16 = 0x86DD;
/// 802.1Q, 802.1ad and the older QinQ tag.
const VLAN_ETHER_TYPES: [u16; 3] = [0x8100, 0x88A8, 0x9100];

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
    let (ether_type, rest) = match link_type {
        ETHERNET => {
            let eth = Ethernet2HeaderSlice::from_slice(data).map_err(|_| Skip::Malformed)?;
            (eth.ether_type().0, &data[eth.slice().len()..])
        }
        LINUX_SLL => {
            let sll = LinuxSllHeaderSlice::from_slice(data).map_err(|_| Skip::Malformed)?;
            let LinuxSllProtocolType::EtherType(ether_type) = sll.protocol_type() else {
                return Err(Skip::NotTcpOrUdp);
            };
            (ether_type.0, &data[sll.slice().len()..])
        }
        LINUX_SLL2 => {
            // Protocol type (2, big-endian), reserved (2), interface index (4), ARPHRD type
            // (2), packet type (1), address length (1), address (8).
            if data.len() < 20 {
                return Err(Skip::Malformed);
            }
            (u16::from_be_bytes([data[0], data[1]]), &data[20..])
        }
        RAW | IPV4 | IPV6 => match data.first().map(|b| b >> 4) {
            Some(4) => (IPV4_ETHER_TYPE, data),
            Some(6) => (IPV6_ETHER_TYPE, data),
            _ => return Err(Skip::Malformed),
        },
        NULL | LOOP => {
            if data.len() < 4 {
                return Err(Skip::Malformed);
            }
            let family = [data[0], data[1], data[2], data[3]];
            // AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 depending on the OS. The
            // byte order is the capturing host's (NULL) or network order (LOOP): try both.
            match u32::from_le_bytes(family).min(u32::from_be_bytes(family)) {
                2 => (IPV4_ETHER_TYPE, &data[4..]),
                10 | 24 | 28 | 30 => (IPV6_ETHER_TYPE, &data[4..]),
                _ => return Err(Skip::NotTcpOrUdp),
            }
        }
        _ => return Err(Skip::NotTcpOrUdp),
    };
    let (ether_type, rest) = strip_vlan_tags(ether_type, rest)?;
    let (src_ip, dst_ip, protocol, payload, missing) = ip(ether_type, rest, cut)?;
    transport(src_ip, dst_ip, protocol, payload, missing)
}

/// Up to two VLAN tags (802.1Q, or 802.1ad with an inner 802.1Q).
fn strip_vlan_tags(mut ether_type: u16, mut rest: &[u8]) -> Result<(u16, &[u8]), Skip> {
    for _ in 0..2 {
        if !VLAN_ETHER_TYPES.contains(&ether_type) {
            break;
        }
        let vlan = SingleVlanHeaderSlice::from_slice(rest).map_err(|_| Skip::Malformed)?;
        ether_type = vlan.ether_type().0;
        rest = &rest[vlan.slice().len()..];
    }
    Ok((ether_type, rest))
}

/// The IP header: addresses, the transport protocol, its bytes (without link padding), and
/// how many of them the snap length cut off.
fn ip(
    ether_type: u16,
    data: &[u8],
    cut: usize,
) -> Result<(IpAddr, IpAddr, IpNumber, &[u8], usize), Skip> {
    match ether_type {
        IPV4_ETHER_TYPE => {
            let h = Ipv4HeaderSlice::from_slice(data).map_err(|_| Skip::Malformed)?;
            if h.is_fragmenting_payload() {
                return Err(Skip::Fragment);
            }
            let header = h.slice().len();
            // A total length of 0 is what captures of segmentation-offloaded packets show:
            // the payload is then what was captured.
            let total = match usize::from(h.total_len()) {
                0 => data.len() + cut,
                n => n.max(header),
            };
            let end = total.min(data.len());
            let missing = total - end;
            Ok((
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.protocol(),
                &data[header..end],
                missing,
            ))
        }
        IPV6_ETHER_TYPE => {
            let h = Ipv6HeaderSlice::from_slice(data).map_err(|_| Skip::Malformed)?;
            let total = 40 + usize::from(h.payload_length());
            let end = total.min(data.len());
            let next = h.next_header();
            if next == IpNumber::IPV6_FRAGMENTATION_HEADER {
                return Err(Skip::Fragment);
            }
            Ok((
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                next,
                &data[40..end],
                total - end,
            ))
        }
        _ => Err(Skip::NotTcpOrUdp),
    }
}

fn transport<'a>(
    src_ip: IpAddr,
    dst_ip: IpAddr,
    protocol: IpNumber,
    payload: &'a [u8],
    missing: usize,
) -> Result<Segment<'a>, Skip> {
    match protocol {
        IpNumber::TCP => {
            let tcp = TcpHeaderSlice::from_slice(payload).map_err(|_| Skip::Malformed)?;
            Ok(Segment {
                src: SocketAddr::new(src_ip, tcp.source_port()),
                dst: SocketAddr::new(dst_ip, tcp.destination_port()),
                transport: Transport::Tcp {
                    seq: tcp.sequence_number(),
                    ack: tcp.ack().then(|| tcp.acknowledgment_number()),
                    syn: tcp.syn(),
                    fin: tcp.fin(),
                    rst: tcp.rst(),
                    payload: &payload[tcp.slice().len()..],
                    missing,
                },
            })
        }
        IpNumber::UDP => {
            let udp = UdpHeaderSlice::from_slice(payload).map_err(|_| Skip::Malformed)?;
            Ok(Segment {
                src: SocketAddr::new(src_ip, udp.source_port()),
                dst: SocketAddr::new(dst_ip, udp.destination_port()),
                transport: Transport::Udp {
                    payload: &payload[8..],
                    missing,
                },
            })
        }
        _ => Err(Skip::NotTcpOrUdp),
    }
}
