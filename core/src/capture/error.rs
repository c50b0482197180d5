//! What can be wrong with a capture file as a whole: its bytes are not a capture, it stops in
//! the middle of a block, a block is corrupt, or its link layer is not one this crate reads.
//! Problems of the device sessions inside a readable file are not errors: they are
//! [`super::Problem`]s.

use core::fmt;

/// A capture file that cannot be read on: what, and where (byte offset in the file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureError {
    /// Byte offset from the start of the file.
    pub offset: u64,
    /// What is wrong.
    pub kind: CaptureErrorKind,
}

/// What is wrong with a capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureErrorKind {
    /// The file is empty.
    EmptyFile,
    /// The first bytes are neither a pcap nor a pcapng magic number.
    NotACapture {
        /// The first four bytes (fewer when the file is shorter).
        magic: [u8; 4],
    },
    /// The file ends inside a block (a capture cut while it was written, or a partial download).
    Truncated {
        /// Bytes the block needs beyond the end of the file.
        needed: u64,
    },
    /// A block whose header makes no sense (a length shorter than the header, not a multiple
    /// of four, …).
    CorruptBlock {
        /// Which rule it breaks.
        what: &'static str,
    },
    /// A block larger than any real packet: a corrupt length that would make the reader buffer
    /// the rest of the file.
    BlockTooLarge {
        /// The length announced.
        len: u64,
        /// The largest accepted.
        max: u64,
    },
    /// A link layer other than Ethernet, Linux cooked capture (v1, v2), raw IP and BSD
    /// loopback.
    UnsupportedLinkType {
        /// The LINKTYPE_ number.
        link_type: u32,
    },
    /// A pcapng packet block for an interface that no Interface Description Block declared.
    UnknownInterface {
        /// The interface id in the packet block.
        interface: u32,
    },
}

impl CaptureErrorKind {
    /// The stable snake_case name of the kind, as in the error JSON.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyFile => "empty_file",
            Self::NotACapture { .. } => "not_a_capture",
            Self::Truncated { .. } => "truncated",
            Self::CorruptBlock { .. } => "corrupt_block",
            Self::BlockTooLarge { .. } => "block_too_large",
            Self::UnsupportedLinkType { .. } => "unsupported_link_type",
            Self::UnknownInterface { .. } => "unknown_interface",
        }
    }
}

impl CaptureError {
    pub(crate) fn new(offset: u64, kind: CaptureErrorKind) -> Self {
        Self { offset, kind }
    }

    /// The stable snake_case name of the kind.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match &self.kind {
            CaptureErrorKind::EmptyFile => write!(f, "empty file: no capture header"),
            CaptureErrorKind::NotACapture { magic } => write!(
                f,
                "not a pcap or pcapng file at byte {at}: magic {:02x}{:02x}{:02x}{:02x}",
                magic[0], magic[1], magic[2], magic[3]
            ),
            CaptureErrorKind::Truncated { needed } => write!(
                f,
                "truncated capture at byte {at}: the block starting there needs {needed} more bytes"
            ),
            CaptureErrorKind::CorruptBlock { what } => {
                write!(f, "corrupt block at byte {at}: {what}")
            }
            CaptureErrorKind::BlockTooLarge { len, max } => write!(
                f,
                "block at byte {at} announces {len} bytes, more than the {max} accepted"
            ),
            CaptureErrorKind::UnsupportedLinkType { link_type } => write!(
                f,
                "unsupported link type {link_type} at byte {at}: Ethernet (1), raw IP (101, 228, 229), \
                 Linux cooked capture (113, 276) and BSD loopback (0, 108) are read"
            ),
            CaptureErrorKind::UnknownInterface { interface } => write!(
                f,
                "packet block at byte {at} names interface {interface}, which no interface block declared"
            ),
        }
    }
}

impl std::error::Error for CaptureError {}
