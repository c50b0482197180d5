//! The capture file's blocks, read incrementally: bytes are pushed in pieces of any size (a file
//! read in chunks, a browser `Blob` sliced), complete packet records come out. Only one block
//! is buffered at a time, so memory is bounded by the largest block ([`MAX_BLOCK`]), not the
//! file. Block layouts are parsed by `pcap-parser` (the pcap header and records with either
//! byte order and microsecond or nanosecond timestamps; pcapng section headers and interface
//! descriptions with their options); the fixed headers of pcapng packet blocks are read here,
//! which also tracks offsets, interfaces and timestamps.

use alloc::vec::Vec;

use pcap_parser::pcap::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header};
use pcap_parser::pcapng::{
    parse_interfacedescriptionblock_be, parse_interfacedescriptionblock_le,
    parse_sectionheaderblock,
};

use super::error::{CaptureError, CaptureErrorKind};

/// The largest block accepted (16 MiB): far above any packet (snap lengths are at most
/// 256 KiB), and a bound on what a corrupt length field can make the reader buffer.
pub const MAX_BLOCK: u64 = 16 << 20;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 0x0000_0001;
const PCAPNG_SPB: u32 = 0x0000_0003;
const PCAPNG_EPB: u32 = 0x0000_0006;

/// Whether a file starting with these bytes is a capture (a pcap magic number in either byte
/// order, with microsecond or nanosecond timestamps, or a pcapng section header): how the
/// playground tells a dropped capture from a dropped binary packet.
///
/// ```
/// use fleetview::capture::file::is_capture;
/// assert!(is_capture(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]));
/// assert!(is_capture(&[0x0a, 0x0d, 0x0d, 0x0a]));
/// assert!(!is_capture(&[0x00, 0x0f, 0x33, 0x35]));
/// ```
pub fn is_capture(head: &[u8]) -> bool {
    let Some(magic) = head.get(..4) else {
        return false;
    };
    let magic = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]);
    matches!(
        magic,
        0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1 | PCAPNG_SHB
    )
}

/// One captured packet.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// 1-based number of the packet in the file, as Wireshark counts them.
    pub number: u64,
    /// Nanoseconds since 1970 UTC.
    pub time_ns: u64,
    /// The LINKTYPE_ of its interface.
    pub link_type: u32,
    /// The bytes captured.
    pub data: &'a [u8],
    /// The packet's length on the wire (more than `data` when the snap length cut it).
    pub orig_len: u32,
    /// Offset of its record or block in the file.
    pub offset: u64,
}

/// Which format, once the magic number has been read.
#[derive(Clone, Debug)]
enum Format {
    Unknown,
    Pcap {
        big_endian: bool,
        nanos: bool,
        link_type: u32,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: u32,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp.
    offset_s: i64,
    snaplen: u32,
}

/// The incremental reader. [`CaptureReader::push`] bytes, then call
/// [`CaptureReader::next_frame`] until it returns `Ok(None)`; at the end of the file,
/// [`CaptureReader::finish`] says whether the file stopped inside a block.
#[derive(Debug)]
pub struct CaptureReader {
    buf: Vec<u8>,
    /// First byte of `buf` not consumed.
    start: usize,
    /// File offset of `buf[0]`.
    base: u64,
    format: Format,
    frames: u64,
    failed: Option<CaptureError>,
}

impl Default for CaptureReader {
    fn default() -> Self {
        Self::new()
    }
}

/// What one step of parsing found.
enum Step {
    Frame {
        time_ns: u64,
        link_type: u32,
        data: (usize, usize),
        orig_len: u32,
    },
    Other,
}

impl CaptureReader {
    /// A reader at the start of a file.
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            base: 0,
            format: Format::Unknown,
            frames: 0,
            failed: None,
        }
    }

    /// `"pcap"`, `"pcapng"`, or `None` before the header was read.
    pub fn format_name(&self) -> Option<&'static str> {
        match self.format {
            Format::Unknown => None,
            Format::Pcap { .. } => Some("pcap"),
            Format::PcapNg { .. } => Some("pcapng"),
        }
    }

    /// Bytes consumed so far (the file offset of the next block).
    pub fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Packets read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes buffered and not consumed: at most one block and the last piece pushed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Append the next bytes of the file.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next packet, `Ok(None)` when more bytes are needed. An error is final: later calls
    /// return it again.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            let at = self.offset();
            match self.step() {
                Ok(Some((Step::Other, used))) => self.start += used,
                Ok(Some((
                    Step::Frame {
                        time_ns,
                        link_type,
                        data,
                        orig_len,
                    },
                    used,
                ))) => {
                    let from = self.start;
                    self.start += used;
                    self.frames += 1;
                    return Ok(Some(Frame {
                        number: self.frames,
                        time_ns,
                        link_type,
                        data: &self.buf[from + data.0..from + data.1],
                        orig_len,
                        offset: at,
                    }));
                }
                Ok(None) => return Ok(None),
                Err(e) => {
                    self.failed = Some(e.clone());
                    return Err(e);
                }
            }
        }
    }

    /// The end of the file: an error when it stopped inside a block (or had no header).
    pub fn finish(&self) -> Result<(), CaptureError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let left = self.buffered();
        if matches!(self.format, Format::Unknown) {
            if self.base == 0 && self.buf.is_empty() {
                return Err(CaptureError::new(0, CaptureErrorKind::EmptyFile));
            }
            let mut magic = [0; 4];
            let n = left.min(4);
            magic[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
            return Err(CaptureError::new(
                self.offset(),
                CaptureErrorKind::NotACapture { magic },
            ));
        }
        if left > 0 {
            let needed = self.needed_for_block().saturating_sub(left as u64).max(1);
            return Err(CaptureError::new(
                self.offset(),
                CaptureErrorKind::Truncated { needed },
            ));
        }
        Ok(())
    }

    /// The length of the block at the read position, as far as its header says.
    fn needed_for_block(&self) -> u64 {
        let rest = &self.buf[self.start..];
        match &self.format {
            Format::Pcap { big_endian, .. } if rest.len() >= 16 => {
                16 + u64::from(read_u32(&rest[8..12], *big_endian))
            }
            Format::Pcap { .. } => 16,
            Format::PcapNg { big_endian, .. } if rest.len() >= 8 => {
                u64::from(read_u32(&rest[4..8], *big_endian))
            }
            _ => 12,
        }
    }

    fn step(&mut self) -> Result<Option<(Step, usize)>, CaptureError> {
        let at = self.offset();
        let rest = &self.buf[self.start..];
        match &mut self.format {
            Format::Unknown => {
                if rest.len() < 4 {
                    return Ok(None);
                }
                let magic = [rest[0], rest[1], rest[2], rest[3]];
                match u32::from_le_bytes(magic) {
                    0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1 => {
                        let header = match parse_pcap_header(rest) {
                            Ok((_, h)) => h,
                            Err(nom_err) => {
                                return incomplete_or(
                                    nom_err,
                                    at,
                                    false,
                                    "the pcap file header does not parse",
                                )
                            }
                        };
                        let link_type = header.network.0 as u32;
                        check_link_type(link_type, at + 20)?;
                        self.format = Format::Pcap {
                            big_endian: header.is_bigendian(),
                            nanos: header.is_nanosecond_precision(),
                            link_type,
                        };
                        Ok(Some((Step::Other, 24)))
                    }
                    PCAPNG_SHB => self.pcapng_block(at),
                    _ => Err(CaptureError::new(
                        at,
                        CaptureErrorKind::NotACapture { magic },
                    )),
                }
            }
            Format::Pcap {
                big_endian,
                nanos,
                link_type,
            } => {
                if rest.len() < 16 {
                    return Ok(None);
                }
                let caplen = u64::from(read_u32(&rest[8..12], *big_endian));
                if caplen > MAX_BLOCK {
                    return Err(CaptureError::new(
                        at,
                        CaptureErrorKind::BlockTooLarge {
                            len: caplen,
                            max: MAX_BLOCK,
                        },
                    ));
                }
                if (rest.len() as u64) < 16 + caplen {
                    return Ok(None);
                }
                let parsed = if *big_endian {
                    parse_pcap_frame_be(rest)
                } else {
                    parse_pcap_frame(rest)
                };
                let block = match parsed {
                    Ok((_, b)) => b,
                    Err(e) => {
                        return incomplete_or(e, at, true, "the pcap packet record does not parse")
                    }
                };
                let frac = u64::from(block.ts_usec);
                let time_ns = u64::from(block.ts_sec) * 1_000_000_000
                    + if *nanos { frac } else { frac * 1000 };
                Ok(Some((
                    Step::Frame {
                        time_ns,
                        link_type: *link_type,
                        data: (16, 16 + caplen as usize),
                        orig_len: block.origlen,
                    },
                    16 + caplen as usize,
                )))
            }
            Format::PcapNg { .. } => self.pcapng_block(at),
        }
    }

    /// One pcapng block: its length is checked before anything is parsed, so that a corrupt
    /// length fails at once instead of making the reader wait for (and buffer) the whole file.
    fn pcapng_block(&mut self, at: u64) -> Result<Option<(Step, usize)>, CaptureError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 12 {
            return Ok(None);
        }
        let block_type = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if block_type == PCAPNG_SHB {
            // The byte-order magic decides how this section's lengths are read.
            let bom = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
            let big_endian =
                match bom {
                    0x1A2B_3C4D => false,
                    0x4D3C_2B1A => true,
                    _ => return Err(CaptureError::new(
                        at + 8,
                        CaptureErrorKind::CorruptBlock {
                            what:
                                "section header byte-order magic is neither 1a2b3c4d nor 4d3c2b1a",
                        },
                    )),
                };
            let len = block_len(rest, big_endian, at)?;
            if rest.len() < len {
                return Ok(None);
            }
            if let Err(e) = parse_sectionheaderblock(&rest[..len]) {
                return incomplete_or(e, at, true, "the section header block does not parse");
            }
            self.format = Format::PcapNg {
                big_endian,
                interfaces: Vec::new(),
            };
            return Ok(Some((Step::Other, len)));
        }
        let Format::PcapNg {
            big_endian,
            interfaces,
        } = &mut self.format
        else {
            return Ok(None);
        };
        let be = *big_endian;
        let block_type = read_u32(&rest[..4], be);
        let len = block_len(rest, be, at)?;
        if rest.len() < len {
            return Ok(None);
        }
        let block = &rest[..len];
        match block_type {
            PCAPNG_IDB => {
                let parsed = if be {
                    parse_interfacedescriptionblock_be(block)
                } else {
                    parse_interfacedescriptionblock_le(block)
                };
                let idb = match parsed {
                    Ok((_, b)) => b,
                    Err(e) => {
                        return incomplete_or(
                            e,
                            at,
                            true,
                            "the interface description block does not parse",
                        )
                    }
                };
                let link_type = idb.linktype.0 as u32;
                check_link_type(link_type, at + 8)?;
                let resolution = idb.ts_resolution().ok_or(CaptureError::new(
                    at,
                    CaptureErrorKind::CorruptBlock {
                        what: "interface timestamp resolution (if_tsresol) out of range",
                    },
                ))?;
                interfaces.push(Interface {
                    link_type,
                    resolution,
                    offset_s: idb.ts_offset(),
                    snaplen: idb.snaplen,
                });
                Ok(Some((Step::Other, len)))
            }
            // Packet blocks have a fixed header before the packet (their options, after it,
            // are not needed), read here rather than through a parser per byte order.
            PCAPNG_EPB => {
                // Type, length, interface, timestamp (high, low), captured and original
                // lengths, then the packet.
                if len < 32 {
                    return Err(CaptureError::new(
                        at + 4,
                        CaptureErrorKind::CorruptBlock {
                            what: "enhanced packet block shorter than its 32-byte header",
                        },
                    ));
                }
                let field = |i: usize| read_u32(&block[i..i + 4], be);
                let if_id = field(8);
                let caplen = field(20) as usize;
                if caplen > len - 32 {
                    return Err(CaptureError::new(
                        at + 20,
                        CaptureErrorKind::CorruptBlock {
                            what: "enhanced packet block: captured length beyond the block",
                        },
                    ));
                }
                let iface = interfaces
                    .get(if_id as usize)
                    .copied()
                    .ok_or(CaptureError::new(
                        at + 8,
                        CaptureErrorKind::UnknownInterface { interface: if_id },
                    ))?;
                let ticks = (u64::from(field(12)) << 32) | u64::from(field(16));
                Ok(Some((
                    Step::Frame {
                        time_ns: to_ns(ticks, iface.resolution, iface.offset_s),
                        link_type: iface.link_type,
                        data: (28, 28 + caplen),
                        orig_len: field(24),
                    },
                    len,
                )))
            }
            PCAPNG_SPB => {
                // Type, length, original length, then the packet (no timestamp).
                if len < 16 {
                    return Err(CaptureError::new(
                        at + 4,
                        CaptureErrorKind::CorruptBlock {
                            what: "simple packet block shorter than its 16-byte header",
                        },
                    ));
                }
                let iface = interfaces.first().copied().ok_or(CaptureError::new(
                    at,
                    CaptureErrorKind::UnknownInterface { interface: 0 },
                ))?;
                let orig_len = read_u32(&block[8..12], be);
                // The captured length is the original length cut to the snap length and to
                // the block (the rest is padding).
                let mut caplen = (orig_len as usize).min(len - 16);
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                Ok(Some((
                    Step::Frame {
                        time_ns: 0,
                        link_type: iface.link_type,
                        data: (12, 12 + caplen),
                        orig_len,
                    },
                    len,
                )))
            }
            // Statistics, name resolution, comments, secrets …: nothing to analyse.
            _ => Ok(Some((Step::Other, len))),
        }
    }
}

fn read_u32(b: &[u8], big_endian: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big_endian {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

/// A pcapng block's total length, checked: at least the 12 bytes of type and lengths, a
/// multiple of 4, at most [`MAX_BLOCK`].
fn block_len(rest: &[u8], big_endian: bool, at: u64) -> Result<usize, CaptureError> {
    let len = u64::from(read_u32(&rest[4..8], big_endian));
    if len < 12 || len % 4 != 0 {
        return Err(CaptureError::new(
            at + 4,
            CaptureErrorKind::CorruptBlock {
                what: "block total length is below 12 or not a multiple of 4",
            },
        ));
    }
    if len > MAX_BLOCK {
        return Err(CaptureError::new(
            at + 4,
            CaptureErrorKind::BlockTooLarge {
                len,
                max: MAX_BLOCK,
            },
        ));
    }
    Ok(len as usize)
}

/// pcapng timestamp ticks to nanoseconds since 1970.
fn to_ns(ticks: u64, resolution: u64, offset_s: i64) -> u64 {
    let secs = ticks / resolution;
    // A fraction of a second in nanoseconds: f64 is exact to well below a nanosecond here, and
    // avoids 128-bit division (code size in the playground's wasm).
    let frac = ((ticks % resolution) as f64 * 1e9 / resolution as f64) as u64;
    let secs = secs.saturating_add_signed(offset_s);
    secs.saturating_mul(1_000_000_000).saturating_add(frac)
}

fn check_link_type(link_type: u32, at: u64) -> Result<(), CaptureError> {
    if super::link::is_supported(link_type) {
        Ok(())
    } else {
        Err(CaptureError::new(
            at,
            CaptureErrorKind::UnsupportedLinkType { link_type },
        ))
    }
}

/// A parser error: more input needed (only before a block's length is known), or a corrupt
/// block (`complete`: all the bytes its length announced were given).
fn incomplete_or<T, E>(
    e: pcap_parser::nom::Err<E>,
    at: u64,
    complete: bool,
    what: &'static str,
) -> Result<Option<T>, CaptureError> {
    match e {
        pcap_parser::nom::Err::Incomplete(_) if !complete => Ok(None),
        _ => Err(CaptureError::new(
            at,
            CaptureErrorKind::CorruptBlock { what },
        )),
    }
}
