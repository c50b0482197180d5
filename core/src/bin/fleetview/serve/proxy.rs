//! The PROXY protocol header (`--proxy-protocol`) on the plain TCP port, for operators who
//! terminate TLS in HAProxy (`send-proxy-v2`) or stunnel (`protocol = proxy`, version 1): the
//! proxy sends the device's address first, and the logs and the per-address admission cap use
//! it instead of the proxy's. Parsed by the `ppp` crate; versions 1 and 2 are both accepted.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use ppp::{v1, v2, HeaderResult, PartialResult};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Longest header read: version 2 is 16 bytes plus at most 216 of addresses plus the TLVs a
/// proxy adds (HAProxy's are a few hundred bytes); version 1 is at most 107 bytes.
const MAX_HEADER: usize = 4096;

/// Why a connection's PROXY header was not accepted (the connection is closed).
#[derive(Debug)]
pub(crate) enum ProxyError {
    /// The peer closed before a complete header.
    Closed {
        read: usize,
    },
    Io(io::Error),
    /// Not a PROXY header, or a malformed one (the byte count read so far, and why).
    Invalid {
        read: usize,
        why: String,
    },
    TooLong,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed { read } => write!(
                f,
                "closed after {read} bytes, before a complete PROXY header"
            ),
            Self::Io(e) => write!(f, "reading the PROXY header: {e}"),
            Self::Invalid { read, why } => write!(
                f,
                "no valid PROXY header at byte 0 ({read} bytes read): {why} \
                 (--proxy-protocol expects every connection to come through the proxy)"
            ),
            Self::TooLong => write!(f, "PROXY header longer than {MAX_HEADER} bytes at byte 0"),
        }
    }
}

/// A parsed header: the client's address (`None` for a `LOCAL`/`UNKNOWN` header, a health check
/// of the proxy itself) and the header's length in bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) source: Option<SocketAddr>,
    pub(crate) len: usize,
}

/// Parse a header at the start of `buf`: `Ok(None)` while incomplete.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<Header>, String> {
    let result = HeaderResult::parse(buf);
    if result.is_incomplete() {
        return Ok(None);
    }
    match result {
        HeaderResult::V2(Ok(h)) => {
            let source = match (h.command, h.addresses) {
                (v2::Command::Local, _) => None,
                (_, v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (_, v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (_, v2::Addresses::Unix(_) | v2::Addresses::Unspecified) => None,
            };
            Ok(Some(Header {
                source,
                len: h.len(),
            }))
        }
        HeaderResult::V1(Ok(h)) => {
            let source = match h.addresses {
                v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Unknown => None,
            };
            Ok(Some(Header {
                source,
                len: h.header.len(),
            }))
        }
        HeaderResult::V2(Err(e)) => Err(e.to_string()),
        HeaderResult::V1(Err(e)) => Err(e.to_string()),
    }
}

/// Read the header from a new connection. Returns it with the bytes read past it (the start of
/// the device's own data). The caller bounds the time it may take.
pub(crate) async fn read_header(stream: &mut TcpStream) -> Result<(Header, Vec<u8>), ProxyError> {
    let mut buf = Vec::with_capacity(256);
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len());
        }
        let n = stream.read_buf(&mut buf).await.map_err(ProxyError::Io)?;
        if n == 0 {
            return Err(ProxyError::Closed { read: buf.len() });
        }
        match parse(&buf) {
            Ok(Some(h)) => {
                let rest = buf.split_off(h.len);
                return Ok((h, rest));
            }
            Ok(None) if buf.len() >= MAX_HEADER => return Err(ProxyError::TooLong),
            Ok(None) => {}
            Err(why) => {
                return Err(ProxyError::Invalid {
                    read: buf.len(),
                    why,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_header(src: &str, dst: &str) -> Vec<u8> {
        let src: SocketAddr = src.parse().unwrap();
        let dst: SocketAddr = dst.parse().unwrap();
        v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (src, dst),
        )
        .write_tlv(v2::Type::NoOp, &[0; 5])
        .unwrap()
        .build()
        .unwrap()
    }

    #[test]
    fn version_2_gives_the_client_address_and_its_length() {
        let h = v2_header("203.0.113.7:40000", "10.0.0.1:5027");
        assert_eq!(h.len(), 16 + 12 + 8);
        let mut stream = h.clone();
        stream.extend_from_slice(&[0, 0x0F, 0x33]);
        // Incomplete at every cut, then complete with the device's bytes after it.
        for cut in 0..h.len() {
            assert_eq!(parse(&stream[..cut]), Ok(None), "cut at {cut}");
        }
        let got = parse(&stream).unwrap().unwrap();
        assert_eq!(got.source, Some("203.0.113.7:40000".parse().unwrap()));
        assert_eq!(got.len, h.len());

        let h6 = v2_header("[2001:db8::1]:1234", "[2001:db8::2]:5027");
        assert_eq!(
            parse(&h6).unwrap().unwrap().source,
            Some("[2001:db8::1]:1234".parse().unwrap())
        );
    }

    #[test]
    fn version_1_from_stunnel_and_local_headers() {
        let h = b"PROXY TCP4 198.51.100.2 10.0.0.1 51000 5027\r\n\x00\x0f";
        let got = parse(h).unwrap().unwrap();
        assert_eq!(got.source, Some("198.51.100.2:51000".parse().unwrap()));
        assert_eq!(got.len, h.len() - 2);
        assert_eq!(parse(b"PROXY TCP4 198.51"), Ok(None));
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n").unwrap().unwrap(),
            Header {
                source: None,
                len: 15
            }
        );
        let local = v2::Builder::new(
            v2::Version::Two | v2::Command::Local,
            v2::AddressFamily::Unspecified | v2::Protocol::Unspecified,
        )
        .build()
        .unwrap();
        assert_eq!(parse(&local).unwrap().unwrap().source, None);
    }

    #[test]
    fn a_device_connecting_directly_is_not_a_proxy_header() {
        // The IMEI login a device sends when it bypasses the proxy.
        let login = fleetview::hex::decode("000F333536333037303432343431303133").unwrap();
        assert!(parse(&login).is_err());
        assert!(parse(b"GET / HTTP/1.1\r\n").is_err());
    }
}
