//! Decoding settings shared by every decoder, and the one rule that applies them: strict mode
//! returns an error, lenient mode records it as a warning and carries on.

use alloc::vec::Vec;

use crate::error::{DecodeError, Warning};

/// Decoding settings shared by every decoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Tolerate the inconsistencies real devices and published examples contain (CRC, length,
    /// count mismatches, out-of-range priority…), decode what can be decoded and report each as a
    /// [`Warning`]. Off by default: strict decoding rejects them.
    pub lenient: bool,
    /// Largest TCP data field length (and UDP datagram) accepted. Devices send at most 1280 bytes
    /// (512 for FMB640), Codec 12 camera chunks a little over 2 KiB; the default, 64 KiB, leaves
    /// room while bounding what a session buffers.
    pub max_frame_len: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            lenient: false,
            max_frame_len: 65_536,
        }
    }
}

impl DecodeOptions {
    /// Lenient decoding with the default limits.
    pub fn lenient() -> Self {
        Self {
            lenient: true,
            ..Self::default()
        }
    }
}

/// Strict mode returns the error; lenient mode records it as a warning and carries on.
pub(crate) fn tolerate(
    lenient: bool,
    warnings: &mut Vec<Warning>,
    err: DecodeError,
) -> Result<(), DecodeError> {
    if lenient {
        warnings.push(Warning::from_error(&err));
        Ok(())
    } else {
        Err(err)
    }
}
