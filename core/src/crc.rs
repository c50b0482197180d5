//! CRC-16/IBM, the checksum of TCP frames.
//!
//! Teltonika calls it CRC-16/IBM; the catalogue name is CRC-16/ARC: polynomial 0x8005 reflected
//! (0xA001), initial value 0, input and output reflected, no final XOR. It covers exactly the data
//! field (codec id through "Number of Data 2") and travels as 4 bytes whose upper two are zero.
//! The UDP channel has no CRC.

use crc::{Crc, Table, CRC_16_ARC};

/// Slice-by-16 tables: several bytes per step, the fastest portable variant of the `crc` crate.
const CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_ARC);

/// CRC-16/IBM of `data`.
///
/// ```
/// assert_eq!(fleetview::crc16(b"123456789"), 0xBB3D);
/// ```
pub fn crc16(data: &[u8]) -> u16 {
    CRC16.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn check_value() {
        assert_eq!(crc16(b"123456789"), 0xBB3D);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn matches_the_bitwise_definition() {
        // The algorithm in words from the protocol reference, as an independent oracle.
        fn bitwise(data: &[u8]) -> u16 {
            let mut crc = 0u16;
            for &b in data {
                crc ^= u16::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0xA001
                    } else {
                        crc >> 1
                    };
                }
            }
            crc
        }
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for len in [0, 1, 15, 16, 17, 255, 1000] {
            assert_eq!(crc16(&data[..len]), bitwise(&data[..len]), "len {len}");
        }
    }
}
