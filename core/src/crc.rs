//! CRC-16/IBM, the checksum of TCP frames.
//!
//! Teltonika calls it CRC-16/IBM; the catalogue name is CRC-16/ARC: polynomial 0x8005 reflected
//! (0xA001), initial value 0, input and output reflected, no final XOR. It covers exactly the data
//! field (codec id through "Number of Data 2") and travels as 4 bytes whose upper two are zero.
//! The UDP channel has no CRC.

use crc::{Crc, Table, CRC_16_ARC};

/// The `crc` crate's CRC-16/ARC with its slice-by-16 tables. Its `checksum` indexes the input
/// byte by byte in a `const fn`; [`crc16`] reads the same tables 16 bytes at a time from
/// fixed-size chunks, with no bounds checks left: about 2.5 instructions per byte (load the byte,
/// xor its table entry), and only the last two lookups of a step wait for the previous step.
const CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_ARC);

/// `TABLES[k][b]`: the CRC of byte `b` followed by `k` zero bytes.
static TABLES: [[u16; 256]; 16] = *CRC16.table();

/// CRC-16/IBM of `data`.
///
/// ```
/// assert_eq!(fleetview::crc16(b"123456789"), 0xBB3D);
/// ```
pub fn crc16(data: &[u8]) -> u16 {
    let t = &TABLES;
    let mut crc = 0u16;
    let mut chunks = data.chunks_exact(16);
    for chunk in &mut chunks {
        let Ok(c) = <&[u8; 16]>::try_from(chunk) else {
            unreachable_chunk()
        };
        // The 14 lookups that do not depend on the running CRC come first: the xors that wait
        // for the previous step are then the last two, and consecutive steps overlap.
        let independent = t[0][usize::from(c[15])]
            ^ t[1][usize::from(c[14])]
            ^ t[2][usize::from(c[13])]
            ^ t[3][usize::from(c[12])]
            ^ t[4][usize::from(c[11])]
            ^ t[5][usize::from(c[10])]
            ^ t[6][usize::from(c[9])]
            ^ t[7][usize::from(c[8])]
            ^ t[8][usize::from(c[7])]
            ^ t[9][usize::from(c[6])]
            ^ t[10][usize::from(c[5])]
            ^ t[11][usize::from(c[4])]
            ^ t[12][usize::from(c[3])]
            ^ t[13][usize::from(c[2])];
        let [lo, hi] = crc.to_le_bytes();
        crc = independent ^ t[14][usize::from(c[1] ^ hi)] ^ t[15][usize::from(c[0] ^ lo)];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][usize::from(crc as u8 ^ b)];
    }
    crc
}

/// `chunks_exact(16)` yields 16-byte chunks only.
#[cold]
fn unreachable_chunk() -> ! {
    unreachable!("chunks_exact(16) yields 16 bytes")
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
        // The algorithm as Teltonika's documentation states it in words, as an independent oracle.
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
        for len in (0..=100).chain([255, 1000]) {
            assert_eq!(crc16(&data[..len]), bitwise(&data[..len]), "len {len}");
            assert_eq!(
                crc16(&data[..len]),
                CRC16.checksum(&data[..len]),
                "len {len}"
            );
        }
    }
}
